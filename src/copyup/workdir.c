#include "copyup/workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "sys.h"

/* Is everything in the workdir ours? Returns 0, or -ENOTEMPTY with the
 * first stranger named in err. */
static int check_only_ours(int fd, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int dfd = um_sys_openat(fd, ".", O_RDONLY | O_DIRECTORY);
	char buf[8192];
	int n;

	if (dfd < 0) {
		snprintf(err, errlen, "workdir: cannot list '%s': %s", path, strerror(-dfd));
		return dfd;
	}
	while ((n = um_sys_getdents(dfd, buf, sizeof(buf))) > 0) {
		for (int off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);

			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
			    !strcmp(e->d_name, UM_WORKDIR_NAME))
				continue;
			snprintf(err, errlen,
				 "workdir: '%s' holds '%s', which is not ours; give an empty directory on the upperdir's filesystem",
				 path, e->d_name);
			return -ENOTEMPTY;
		}
	}
	if (n < 0)
		snprintf(err, errlen, "workdir: cannot list '%s': %s", path, strerror(-n));
	return n;
}

/* Caller passes a directory fd it owns: the tree below dfd is emptied. */
struct remove_ctx {
	dev_t dev;
	unsigned depth;
};

static int remove_contents(int dfd, dev_t dev, unsigned depth);

static int remove_entry(void *ctx, int dfd, struct dirent64 *e)
{
	const struct remove_ctx *c = ctx;
	struct stat st;
	int sub, r = um_sys_lstatat(dfd, e->d_name, &st);

	if (r < 0)
		return r;
	if (!S_ISDIR(st.st_mode)) {
		r = um_sys_unlinkat(dfd, e->d_name, 0);
		return r < 0 ? r : 1;
	}
	if (st.st_dev != c->dev)
		return -EXDEV; /* something is mounted there: leave it */
	sub = um_sys_openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY);
	if (sub < 0)
		return sub;
	r = remove_contents(sub, c->dev, c->depth + 1);
	(void)close(sub);
	if (r == 0)
		r = um_sys_unlinkat(dfd, e->d_name, AT_REMOVEDIR);
	return r < 0 ? r : 1;
}

static int remove_contents(int dfd, dev_t dev, unsigned depth)
{
	struct remove_ctx c = { .dev = dev, .depth = depth };

	/* Leftovers are whiteouts, files and directory trees we built; a tree
	 * deeper than this was not built by us. */
	if (depth > 4096)
		return -ELOOP;
	return um_sys_sweep(dfd, remove_entry, &c);
}

int um_workdir_remove_tree(int dirfd, const char *name)
{
	struct stat st;
	int fd, r = um_sys_lstatat(dirfd, name, &st);

	if (r < 0)
		return r;
	if (!S_ISDIR(st.st_mode))
		return um_sys_unlinkat(dirfd, name, 0);
	fd = um_sys_openat(dirfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = remove_contents(fd, st.st_dev, 0);
	(void)close(fd);
	if (r == 0)
		r = um_sys_unlinkat(dirfd, name, AT_REMOVEDIR);
	return r;
}

/* Only one daemon uses a workdir at a time (its upper is ours while
 * mounted), so pid + counter is unique; the counter is atomic because
 * every worker thread makes temporaries. */
static _Atomic unsigned long tmp_counter;

void um_workdir_tmpname(char buf[UM_TMPNAME_MAX])
{
	(void)snprintf(buf, UM_TMPNAME_MAX, "t%ld.%lu", (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
}

/* Read-only: open what is there, create nothing (-1 for what is not). */
static int open_sub(int fd, const char *path, const char *name, bool readonly, int *ret, char *err,
		    size_t errlen)
{
	int r = readonly ? 0 : um_sys_mkdirat(fd, name, 0700);

	if (r < 0 && r != -EEXIST) {
		snprintf(err, errlen, "workdir: cannot create '%s/%s/%s': %s", path, UM_WORKDIR_NAME, name,
			 strerror(-r));
		return r;
	}
	r = um_sys_openat(fd, name, O_RDONLY | O_DIRECTORY);
	if (r == -ENOENT && readonly) {
		*ret = -1;
		return 0;
	}
	if (r < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s/%s/%s': %s", path, UM_WORKDIR_NAME, name,
			 strerror(-r));
		return r;
	}
	*ret = r;
	return 0;
}

int um_workdir_open(const char *path, dev_t upper_dev, bool readonly, struct um_workdir *ret, char *err,
		    size_t errlen)
{
	_cleanup_close_ int fd = um_sys_open_path(path, O_RDONLY | O_DIRECTORY);
	_cleanup_close_ int ufd = -1;
	struct um_workdir w = { .work_fd = -1, .index_fd = -1, .ft_fd = -1, .wh_fd = -1, .lock_fd = -1 };
	struct stat st;
	int r;

	if (fd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s': %s; give an existing directory", path, strerror(-fd));
		return fd;
	}
	r = um_sys_fstat(fd, &st);
	if (r == 0 && st.st_dev != upper_dev) {
		snprintf(err, errlen, "workdir: '%s' is not on the upperdir's filesystem; give a directory there", path);
		return -EXDEV;
	}
	if (r < 0) {
		snprintf(err, errlen, "workdir: cannot stat '%s': %s", path, strerror(-r));
		return r;
	}
	r = check_only_ours(fd, path, err, errlen);
	if (r < 0)
		return r;
	r = readonly ? 0 : um_sys_mkdirat(fd, UM_WORKDIR_NAME, 0700);
	if (r < 0 && r != -EEXIST) {
		snprintf(err, errlen, "workdir: cannot create '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-r));
		return r;
	}
	ufd = um_sys_openat(fd, UM_WORKDIR_NAME, O_RDONLY | O_DIRECTORY);
	if (ufd == -ENOENT && readonly) {
		*ret = w;
		return 0;
	}
	if (ufd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-ufd));
		return ufd;
	}
	/* The upper's lock (fs.c) does not cover a workdir given with another
	 * upper: a second union would purge this one's work/ and share its
	 * index. Same rule: exclusive read-write, shared read-only. */
	r = um_sys_flock(ufd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB);
	if (r == -EWOULDBLOCK) {
		snprintf(err, errlen,
			 "workdir: '%s' is in use by another mounted union (or by unionctl); give each union its own",
			 path);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "workdir: cannot lock '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-r));
		return r;
	}
	r = open_sub(ufd, path, "work", readonly, &w.work_fd, err, errlen);
	if (r == 0)
		r = open_sub(ufd, path, "index", readonly, &w.index_fd, err, errlen);
	if (r == 0)
		r = open_sub(ufd, path, "fallthru", readonly, &w.ft_fd, err, errlen);
	/* Opened if there, never made here: a mount must not fail for want
	 * of one more inode (namespace.c makes it at the first whiteout). */
	if (r == 0)
		r = open_sub(ufd, path, "whiteout", true, &w.wh_fd, err, errlen);
	if (r == 0 && !readonly) {
		/* A crash can leave half-built copies here; they were never
		 * visible, and must not pile up. */
		r = remove_contents(w.work_fd, upper_dev, 0);
		if (r < 0)
			snprintf(err, errlen, "workdir: cannot remove leftovers in '%s/%s/work': %s", path,
				 UM_WORKDIR_NAME, strerror(-r));
	}
	if (r < 0) {
		um_workdir_close(&w);
		return r;
	}
	w.lock_fd = TAKE_FD(ufd);
	*ret = w;
	return 0;
}

void um_workdir_close(struct um_workdir *w)
{
	if (w->work_fd >= 0)
		(void)close(w->work_fd);
	if (w->index_fd >= 0)
		(void)close(w->index_fd);
	if (w->ft_fd >= 0)
		(void)close(w->ft_fd);
	if (w->wh_fd >= 0)
		(void)close(w->wh_fd);
	if (w->lock_fd >= 0)
		(void)close(w->lock_fd);
	w->work_fd = w->index_fd = w->ft_fd = w->wh_fd = w->lock_fd = -1;
}
