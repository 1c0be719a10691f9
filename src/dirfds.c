#include "dirfds.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "inflight.h"
#include "inode.h"
#include "log.h"
#include "readdir/readdir.h"
#include "sys.h"

/* What reopening a part needs: its handle, and the identity the handle
 * must lead back to (a handle names an object on one filesystem; the
 * check makes sure it is still the directory it was). */
struct um_dirfd_handle {
	dev_t dev;
	ino_t ino;
	struct file_handle fh; /* f_handle: handle_bytes more */
};

/* Parts' fds the inodes hold now (um_dirfds_count()). */
static _Atomic long held;
/* The high-water mark; LONG_MAX until the thread runs. */
static _Atomic long high_mark = LONG_MAX;
/* Half as far again: there requests stop to close fds themselves
 * (um_dirfds_help()), as the thread alone may fall behind a walk. */
static _Atomic long help_mark = LONG_MAX;
/* One round of closing at a time, by the thread or a request. */
static pthread_mutex_t round_lock = PTHREAD_MUTEX_INITIALIZER;
/* Parts' fds ever opened: a clock for how recently a directory was
 * used (see um_dirfds_count()). */
static _Atomic long opened;
/* Set by the request that crossed the mark, cleared by the thread when
 * it starts closing: one wake-up per crossing, not one per open. */
static atomic_bool kicked;

/* The closing thread. Written by um_dirfds_start() before requests run
 * and by um_dirfds_stop() after they ended, except: */
static struct {
	pthread_mutex_t lock; /* guards stop and wake */
	pthread_cond_t cond;
	bool stop, wake;
	bool running;
	pthread_t thread;
	unsigned long max; /* -o max_dirfds, 0: from the limit */
} closer = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void wake_closer(void)
{
	pthread_mutex_lock(&closer.lock);
	closer.wake = true;
	pthread_cond_signal(&closer.cond);
	pthread_mutex_unlock(&closer.lock);
}

void um_dirfds_count(long n)
{
	long now = atomic_fetch_add(&held, n) + n, mark = atomic_load(&high_mark), step, t;

	if (n <= 0)
		return;
	/* A new epoch every eighth of the mark's worth of opens, so that a
	 * walk that crosses the mark finds the directories it went through
	 * first older than the ones it is in: the first round can close
	 * them, instead of finding everything used "now". */
	step = mark / 8 > 0 ? mark / 8 : 1;
	t = atomic_fetch_add(&opened, n) + n;
	if (t / step != (t - n) / step)
		(void)um_inflight_advance();
	if (now > mark && !atomic_exchange(&kicked, true))
		wake_closer();
}

bool um_dirfds_over(void)
{
	return atomic_load(&held) > atomic_load(&high_mark);
}

void um_dirfds_emfile(void)
{
	if (closer.running && !atomic_exchange(&kicked, true))
		wake_closer();
}

int um_dirfd_save(const struct um_fs *fs, struct um_part *p)
{
	const struct um_layer *l = &fs->layers[p->layer];
	struct um_dirfd_handle *h;
	struct stat st;
	int mnt_id, r;

	if (!l->reopenable)
		return -EOPNOTSUPP;
	if (p->handle)
		return 0;
	h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
	if (!h)
		return -ENOMEM;
	h->fh.handle_bytes = MAX_HANDLE_SZ;
	r = name_to_handle_at(p->fd, "", &h->fh, &mnt_id, AT_EMPTY_PATH) < 0 ? -errno : 0;
	/* Another filesystem mounted inside the branch: open_by_handle_at()
	 * would decode the handle on the branch's own. */
	if (r == 0 && mnt_id != l->mnt_id)
		r = -EXDEV;
	if (r == 0)
		r = um_sys_fstat(p->fd, &st);
	if (r < 0) {
		free(h);
		return r;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	p->handle = h;
	return 0;
}

static int open_handle(int mount_fd, struct file_handle *fh)
{
	int fd = open_by_handle_at(mount_fd, fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* As um_sys_open_dir(): an unreadable directory is still searched. */
	if (fd < 0 && errno == EACCES)
		fd = open_by_handle_at(mount_fd, fh, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int um_dirfd_reopen(const struct um_fs *fs, struct um_part *p)
{
	const struct um_layer *l = &fs->layers[p->layer];
	struct stat st;
	int fd = open_handle(l->fd, &p->handle->fh);
	int r = fd;

	if (fd >= 0) {
		r = um_sys_fstat(fd, &st);
		if (r == 0 && (st.st_dev != p->handle->dev || st.st_ino != p->handle->ino))
			r = -ESTALE;
	}
	if (r == -ESTALE || r == -ENOENT) {
		um_log(UM_LOG_ERR,
		       "a directory in layer %u (inode %llu) is gone or was replaced behind the union's back; "
		       "it fails with EIO",
		       p->layer, (unsigned long long)p->handle->ino);
		r = -EIO;
	} else if (r == -EMFILE) {
		um_dirfds_emfile();
	}
	if (r < 0) {
		if (fd >= 0)
			(void)close(fd);
		return r;
	}
	p->fd = fd;
	return 0;
}

void um_dirfd_handle_free(struct um_dirfd_handle *h)
{
	free(h);
}

/* Can directories of layer l be closed and reopened? Tried on its root:
 * a handle from the filesystem, and the right to open by one. */
static void probe_layer(struct um_layer *l, unsigned layer)
{
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	int fd;

	l->reopenable = false;
	if (l->fd < 0 || !fh)
		return;
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(l->fd, "", fh, &l->mnt_id, AT_EMPTY_PATH) < 0) {
		um_debug("layer %u: directories stay open (no file handles: %m)", layer);
		return;
	}
	fd = open_handle(l->fd, fh);
	if (fd < 0) {
		um_debug("layer %u: directories stay open (open_by_handle_at: %s)", layer, strerror(-fd));
		return;
	}
	(void)close(fd);
	l->reopenable = true;
}

static void set_mark(void)
{
	struct rlimit rl;
	long mark = (long)closer.max;

	if (!mark) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX)
			return;
		mark = (long)(rl.rlim_cur / 2);
	}
	if (mark < 1)
		mark = 1;
	atomic_store(&high_mark, mark);
	atomic_store(&help_mark, mark + mark / 2 + 1);
}

static int by_use(const void *a, const void *b)
{
	uint64_t ua = atomic_load(&(*(struct um_inode *const *)a)->used);
	uint64_t ub = atomic_load(&(*(struct um_inode *const *)b)->used);

	return ua < ub ? -1 : ua > ub;
}

/* One round: close what no running request has locked since it began,
 * least recently used first, down to half the mark. Returns how many fds
 * it closed. */
static long close_round(struct um_fs *fs)
{
	uint64_t now = um_inflight_advance(), oldest = um_inflight_oldest();
	/* Locked before this round and not by a running request. */
	uint64_t before = oldest < now ? oldest : now;
	long target = atomic_load(&high_mark) / 2, closed = 0, over = atomic_load(&held) - target;
	/* What this round means to close, and room for one more directory
	 * (a part per layer at most) as the count moves meanwhile. */
	size_t n = 0, nfds = 0, cap = (size_t)(over > 0 ? over : 0) + fs->n_layers;
	struct um_inode **dirs = NULL;
	int *fds = malloc(cap * sizeof(*fds));

	if (!fds || um_itable_idle_dirs(fs, before, &dirs, &n) < 0) {
		free(fds);
		return 0;
	}
	qsort(dirs, n, sizeof(*dirs), by_use);
	for (size_t i = 0; i < n; i++) {
		struct um_inode *d = dirs[i];

		/* What an idle directory's last listing kept (readdir.h): no
		 * request has it, only the directory. */
		if (atomic_load(&held) > target)
			um_dir_listing_drop(d);
		if (atomic_load(&held) > target && nfds + fs->n_layers <= cap) {
			int k = um_inode_close_parts(fs, d, before, fds + nfds);

			nfds += (size_t)k;
			closed += k;
			um_dirfds_count(-k);
		}
		um_inode_unref(fs, d, 1);
	}
	free(dirs);
	/* Requests that read one of these fds before it was taken away may
	 * still use it: close once they are done, not under them. (One that
	 * runs long, copying up a big file, holds this thread up meanwhile.) */
	um_inflight_wait(um_inflight_advance());
	for (size_t i = 0; i < nfds; i++)
		(void)close(fds[i]);
	free(fds);
	um_debug("closed %ld directory fds; %ld still open", closed, atomic_load(&held));
	return closed;
}

void um_dirfds_help(struct um_fs *fs)
{
	if (atomic_load(&held) <= atomic_load(&help_mark))
		return;
	pthread_mutex_lock(&round_lock);
	if (atomic_load(&held) > atomic_load(&help_mark))
		(void)close_round(fs);
	pthread_mutex_unlock(&round_lock);
}

static void *closer_thread(void *arg)
{
	struct um_fs *fs = arg;

	long backoff_ms = 0;

	pthread_mutex_lock(&closer.lock);
	while (!closer.stop) {
		struct timespec until;
		long wait_ms = 1000;

		set_mark();
		closer.wake = false;
		if (atomic_load(&held) > atomic_load(&high_mark)) {
			long closed;

			atomic_store(&kicked, false);
			pthread_mutex_unlock(&closer.lock);
			pthread_mutex_lock(&round_lock);
			closed = close_round(fs);
			pthread_mutex_unlock(&round_lock);
			pthread_mutex_lock(&closer.lock);
			/* Still over: at first because everything was used since
			 * the last round (a walk in full swing: the next round
			 * finds it older), later because what is left is in use
			 * or cannot be reopened. Try again soon, then less and
			 * less often, rather than scan the table on every open. */
			if (atomic_load(&held) > atomic_load(&high_mark))
				backoff_ms = closed ? 0 : backoff_ms ? backoff_ms * 2 : 10;
			else
				backoff_ms = 0;
			if (backoff_ms > 1000)
				backoff_ms = 1000;
			wait_ms = backoff_ms;
		}
		/* At least once a second, to follow the limit. */
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += wait_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!closer.stop && !(backoff_ms == 0 && closer.wake) && wait_ms > 0)
			if (pthread_cond_timedwait(&closer.cond, &closer.lock, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&closer.lock);
	return NULL;
}

void um_dirfds_start(struct um_fs *fs, unsigned long max)
{
	bool any = false;
	int r;

	for (unsigned i = 0; i < fs->n_layers; i++) {
		probe_layer(&fs->layers[i], i);
		any |= fs->layers[i].reopenable;
	}
	if (!any) {
		um_log(UM_LOG_INFO, "directory fds stay open: no layer can reopen them by file handle");
		return;
	}
	closer.max = max;
	set_mark();
	r = pthread_create(&closer.thread, NULL, closer_thread, fs);
	if (r != 0) {
		um_log(UM_LOG_WARN, "directory fds stay open: no thread to close them: %s", strerror(r));
		atomic_store(&high_mark, LONG_MAX);
		atomic_store(&help_mark, LONG_MAX);
		return;
	}
	closer.running = true;
}

void um_dirfds_stop(void)
{
	if (!closer.running)
		return;
	pthread_mutex_lock(&closer.lock);
	closer.stop = true;
	pthread_cond_signal(&closer.cond);
	pthread_mutex_unlock(&closer.lock);
	(void)pthread_join(closer.thread, NULL);
	closer.running = false;
}
