/* FUSE passthrough bookkeeping: see passthrough.h.
 *
 * The kernel's rules this follows (fs/fuse/iomode.c, Linux 6.9 and
 * later): a passthrough open fails (EIO to the caller) if the inode has
 * page-cache opens or a different backing file, and any other open fails
 * while it has passthrough opens, FOPEN_DIRECT_IO ones included. The
 * kernel forgets a file's mode when the file is released, before it
 * sends RELEASE, so counts here are never below the kernel's.
 *
 * The backing id is registered from the handle's fd, but the kernel
 * keeps only that file's path and our credentials from it: every
 * passthrough open gets its own backing file opened with the caller's
 * flags, so one id per inode serves readers and writers alike. */
#include "passthrough.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/ioctl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include <fuse_lowlevel.h>

#include "fuse_proto.h"
#include "log.h"

/* Only inodes with open handles or write reservations have one. */
struct pt_entry {
	const struct um_inode *ino;
	struct pt_entry *next;
	int32_t id;     /* while backing > 0; 0 otherwise */
	uint16_t layer; /* of the file id was registered from */
	unsigned cached, backing, writers;
};

struct um_pt {
	/* Guards everything below: a new handle's kind and the counts it is
	 * chosen from change in one step. */
	pthread_mutex_t lock;
	/* Signalled when an inode's last passthrough handle on a lower file
	 * is released (um_pt_write_begin() waits for it); CLOCK_MONOTONIC. */
	pthread_cond_t released;
	struct pt_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;
	/* Set when the kernel refused a backing file for a reason that holds
	 * for every file (no CAP_SYS_ADMIN): stop asking. */
	bool broken;
	bool given; /* immutable: -o passthrough= was on the command line */
};

static _Thread_local int32_t reply_id;

/* The initial user namespace maps every id to itself; a container's
 * does not, and the kernel wants CAP_SYS_ADMIN in the initial one. */
static bool initial_userns(void)
{
	unsigned long inside, outside, count;
	FILE *f = fopen("/proc/self/uid_map", "re");
	int n = f ? fscanf(f, "%lu %lu %lu", &inside, &outside, &count) : 0;

	if (f)
		(void)fclose(f);
	return n != 3 || (inside == 0 && outside == 0 && count == 4294967295UL);
}

bool um_pt_permitted(bool given)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	const char *why = NULL;

	if (syscall(SYS_capget, &h, d) < 0)
		why = strerror(errno);
	else if (!(d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) || !initial_userns())
		why = "the kernel gives backing files only to a process with CAP_SYS_ADMIN in the initial user namespace";
	if (!why)
		return true;
	if (given)
		um_log(UM_LOG_WARN, "passthrough: %s; files are read and written through the daemon", why);
	else
		um_debug("no passthrough: %s", why);
	return false;
}

int um_pt_new(struct um_pt **ret, bool given)
{
	struct um_pt *pt = calloc(1, sizeof(*pt));
	pthread_condattr_t ca;

	if (!pt)
		return -ENOMEM;
	pt->given = given;
	pt->nbuckets = 256;
	pt->buckets = calloc(pt->nbuckets, sizeof(*pt->buckets));
	if (!pt->buckets) {
		free(pt);
		return -ENOMEM;
	}
	pthread_mutex_init(&pt->lock, NULL);
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&pt->released, &ca)) {
		pthread_mutex_destroy(&pt->lock);
		free(pt->buckets);
		free(pt);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	*ret = pt;
	return 0;
}

void um_pt_free(struct um_pt *pt)
{
	if (!pt)
		return;
	for (size_t i = 0; i < pt->nbuckets; i++)
		while (pt->buckets[i]) {
			struct pt_entry *e = pt->buckets[i];

			pt->buckets[i] = e->next;
			free(e);
		}
	free(pt->buckets);
	pthread_cond_destroy(&pt->released);
	pthread_mutex_destroy(&pt->lock);
	free(pt);
}

static struct pt_entry **slot_of(struct um_pt *pt, const struct um_inode *ino)
{
	struct pt_entry **p = &pt->buckets[XXH3_64bits(&ino, sizeof(ino)) & (pt->nbuckets - 1)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Double the buckets when entries outnumber them; failing to is harmless
 * (longer chains). */
static void maybe_grow(struct um_pt *pt)
{
	size_t n = pt->nbuckets * 2;
	struct pt_entry **old = pt->buckets, **b;

	if (pt->n <= pt->nbuckets || !(b = calloc(n, sizeof(*b))))
		return;
	pt->buckets = b;
	pt->nbuckets = n;
	for (size_t i = 0; i < n / 2; i++)
		while (old[i]) {
			struct pt_entry *e = old[i], **to;

			old[i] = e->next;
			to = &b[XXH3_64bits(&e->ino, sizeof(e->ino)) & (n - 1)];
			e->next = *to;
			*to = e;
		}
	free(old);
}

/* Can fd's file be read and written with O_DIRECT? The kernel opens
 * each passthrough open's backing file with the caller's flags, and on a
 * branch filesystem without direct I/O (squashfs, iso9660) an O_DIRECT
 * open joining one then fails with EIO. Asked by setting the flag on fd
 * (which only a file that can do direct I/O takes) and clearing it. */
static bool direct_io_ok(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_DIRECT))
		return fl >= 0;
	if (fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		return false;
	if (fcntl(fd, F_SETFL, fl) < 0) {
		/* Never seen: clearing a flag just set. The handle's reads
		 * would then need aligned buffers; at least say so. */
		um_log(UM_LOG_WARN, "cannot clear O_DIRECT on an open file: %s", strerror(errno));
		return false;
	}
	return true;
}

#define PT_REFUSED "the kernel refuses backing files (%s: they need CAP_SYS_ADMIN): files are read and written through the daemon"

static int32_t backing_open(struct um_fs *fs, struct um_pt *pt, int fd)
{
	struct um_backing_map map = { .fd = fd };
	int r = ioctl(fuse_session_fd(fs->se), UM_DEV_IOC_BACKING_OPEN, &map);

	if (r > 0)
		return r;
	r = r < 0 ? errno : EIO;
	if (r == EPERM) {
		/* Past um_pt_permitted(), only a kernel or security module
		 * that refuses anyway. Loud only if asked for. */
		pt->broken = true;
		if (pt->given)
			um_log(UM_LOG_WARN, PT_REFUSED, strerror(r));
		else
			um_log(UM_LOG_INFO, PT_REFUSED, strerror(r));
	} else {
		/* ELOOP: a branch on a stacked filesystem (devio.c,
		 * UM_STACK_DEPTH); EOPNOTSUPP: one the kernel cannot pass
		 * through. The file is read through us. */
		um_debug("no backing file for an open file: %s", strerror(r));
	}
	return 0;
}

/* ino's entry, made if missing; NULL only on ENOMEM. Caller holds
 * pt->lock. */
static struct pt_entry *entry_get(struct um_pt *pt, const struct um_inode *ino)
{
	struct pt_entry **p = slot_of(pt, ino), *e = *p;

	if (e || !(e = calloc(1, sizeof(*e))))
		return e;
	e->ino = ino;
	*p = e;
	pt->n++;
	maybe_grow(pt);
	return e;
}

/* Drop ino's entry once nothing is counted in it. Caller holds pt->lock. */
static void entry_put(struct um_pt *pt, const struct um_inode *ino)
{
	struct pt_entry **p = slot_of(pt, ino), *e = *p;

	if (e && !e->backing && !e->cached && !e->writers) {
		*p = e->next;
		pt->n--;
		free(e);
	}
}

static bool tracking(const struct um_fs *fs)
{
	return fs->pt && atomic_load(&fs->passthrough);
}

/* Write reservations matter only where a lower file can have a backing
 * file: with =all. */
static bool reserving(const struct um_fs *fs)
{
	return tracking(fs) && fs->passthrough_all;
}

/* How long a change of a lower file's data waits for its passthrough
 * handles to go: the kernel sends RELEASE in the background after the
 * last close(2), so `cat f; echo x >> f` would otherwise see ETXTBSY. */
#define RELEASE_GRACE_MS 50

int um_pt_write_begin(struct um_fs *fs, struct um_inode *ino)
{
	struct um_pt *pt = fs->pt;
	struct pt_entry *e;
	struct timespec until;
	int r = 0;

	if (!reserving(fs))
		return 0;
	(void)clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += RELEASE_GRACE_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&pt->lock);
	e = entry_get(pt, ino);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	/* Counted first: keeps e, and new lower opens from passing through. */
	e->writers++;
	while (e->backing && e->layer != UM_UPPER)
		if (pthread_cond_timedwait(&pt->released, &pt->lock, &until) == ETIMEDOUT) {
			r = e->backing && e->layer != UM_UPPER ? -ETXTBSY : 0;
			break;
		}
	if (r < 0) {
		e->writers--;
		entry_put(pt, ino);
	}
out:
	pthread_mutex_unlock(&pt->lock);
	return r;
}

void um_pt_write_end(struct um_fs *fs, struct um_inode *ino)
{
	struct um_pt *pt = fs->pt;
	struct pt_entry *e;

	if (!reserving(fs))
		return;
	pthread_mutex_lock(&pt->lock);
	e = *slot_of(pt, ino);
	if (e && e->writers) {
		e->writers--;
		entry_put(pt, ino);
	}
	pthread_mutex_unlock(&pt->lock);
}

/* May the kernel read a new handle's file on layer itself? A lower file
 * only where it cannot be copied up under the handle (passthrough.h).
 * Not an O_APPEND open: its backing file would be opened O_APPEND, and
 * stay so when fcntl(F_SETFL) clears the flag on the caller's file (the
 * kernel passes on a set O_APPEND with each write, never a cleared
 * one); one that joins an inode's backing file has no choice. */
static bool may_pass(const struct um_fs *fs, const struct pt_entry *e, uint16_t layer, int flags)
{
	if (flags & O_APPEND)
		return false;
	if (layer == UM_UPPER || fs->readonly)
		return true;
	return fs->passthrough_all && !e->writers;
}

int um_pt_open(struct um_fs *fs, struct um_inode *ino, int fd, uint16_t layer, int flags, int32_t *id)
{
	struct um_pt *pt = fs->pt;
	struct pt_entry *e;
	int kind = UM_PT_CACHED;

	if (!tracking(fs))
		return UM_PT_UNTRACKED;
	pthread_mutex_lock(&pt->lock);
	/* As the branch itself and overlayfs answer it. Without passthrough
	 * it would work (the daemon reads without O_DIRECT), but only while
	 * no other open made the file a backing one: one answer for all. */
	if ((flags & O_DIRECT) && !pt->broken && !direct_io_ok(fd)) {
		kind = -EINVAL;
		goto out;
	}
	e = entry_get(pt, ino);
	if (!e) {
		kind = -ENOMEM;
		goto out;
	}
	/* Joining the inode's backing file is right whatever layer this
	 * handle was opened on: with =auto that file is the upper copy (a
	 * lower open raced with a copy-up), with =all it has the same data
	 * as upper (um_pt_write_begin() refuses changes meanwhile). */
	if (!e->cached && !e->backing && !pt->broken && may_pass(fs, e, layer, flags)) {
		e->id = backing_open(fs, pt, fd);
		e->layer = layer;
	}
	if (e->backing || e->id > 0) {
		e->backing++;
		*id = e->id;
		kind = UM_PT_BACKING;
	} else {
		e->cached++;
	}
out:
	pthread_mutex_unlock(&pt->lock);
	return kind;
}

void um_pt_release(struct um_fs *fs, struct um_inode *ino, enum um_pt_kind kind)
{
	struct um_pt *pt = fs->pt;
	struct pt_entry *e;

	if (kind == UM_PT_UNTRACKED)
		return;
	pthread_mutex_lock(&pt->lock);
	e = *slot_of(pt, ino);
	if (e && kind == UM_PT_BACKING && e->backing && --e->backing == 0) {
		uint32_t id = (uint32_t)e->id;

		/* The kernel holds its own reference for each file open on it.
		 * Without a session (handles freed at the end of the mount) the
		 * connection is gone, and every backing id with it. */
		if (fs->se && ioctl(fuse_session_fd(fs->se), UM_DEV_IOC_BACKING_CLOSE, &id) < 0)
			um_log(UM_LOG_WARN, "cannot close backing id %u: %s", id, strerror(errno));
		e->id = 0;
		if (e->layer != UM_UPPER && e->writers)
			pthread_cond_broadcast(&pt->released);
	} else if (e && kind == UM_PT_CACHED && e->cached) {
		e->cached--;
	}
	entry_put(pt, ino);
	pthread_mutex_unlock(&pt->lock);
}

void um_pt_reply_begin(int32_t id)
{
	reply_id = id;
}

void um_pt_reply_end(void)
{
	reply_id = 0;
}

int32_t um_pt_reply_id(void)
{
	return reply_id;
}
