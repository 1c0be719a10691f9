/*
 * floor: the cheapest FUSE filesystem that can run the benchmark's
 * workloads, to measure what the FUSE round trips alone cost here.
 *
 *   floor TREE MOUNTPOINT [-f] [-o OPTS]
 *
 * At start it copies the names and attributes of the tree under TREE into
 * memory (no data); then it answers every request from memory: LOOKUP and
 * GETATTR from a hash table, CREATE/MKDIR/SETATTR by changing it, WRITE by
 * taking the size, READ with zeros, FSYNC with nothing. The kernel is to
 * send it the requests it sends unionmount, so it asks for what unionmount
 * asks: in INIT (src/ops.c; and src/devio.c's HANDLE_KILLPRIV_V2 and
 * passthrough), default_permissions, no OPENDIR (so listings are cached),
 * no FLUSH, day-long timeouts, libfuse's multi-threaded loop with the same
 * thread counts, the same default nice and io_uring worker class
 * (src/nice.h). Files made through the mount are opened through
 * passthrough, as unionmount's default (auto) opens upper files, with one
 * scratch file on tmpfs (/dev/shm) as every inode's backing file; the last
 * writable close drops the kernel's attributes, as unionmount's does.
 * Its time is therefore what a FUSE daemon on this kernel and libfuse pays
 * for unionmount's requests before doing any work of its own
 * (bench/README.md, "The FUSE floor").
 *
 * FLOOR_URING=N in the environment: where the kernel offers FUSE over
 * io_uring, serve through it as unionmount does (src/uring.c, about N
 * threads), for the floor of that transport.
 *
 * Not a filesystem: data is discarded, nothing is checked but what the
 * kernel leaves to it. Not mirrored: readdirplus=adaptive (every listing
 * here carries full attributes), the readahead unionmount raises.
 */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "fuse_proto.h" /* src/ */
#include "nice.h"        /* src/ */
#include "uring.h"       /* src/ */

#define DAY 86400.0
#define NBUCKETS (1u << 20)

struct node {
	struct stat st;
	fuse_ino_t parent;
	char *name;        /* NULL once removed */
	char *target;      /* symlinks */
	fuse_ino_t hnext;  /* next in the hash bucket */
	fuse_ino_t *kids;  /* directories: children by position, 0 once gone */
	uint32_t nkids, capkids;
	uint32_t slot;     /* position in the parent's kids */
	bool made;         /* made through the mount: "upper", passed through */
	unsigned backing;  /* open handles on the backing file */
	unsigned writers;  /* of those, writable ones */
	int32_t bid;       /* backing id while backing > 0 */
};

/* The whole namespace. Nodeid n is nodes[n]; 1 is the root, 0 unused.
 * Nodes are never freed (the kernel's FORGET is ignored), so a nodeid stays
 * valid. The lock guards nodes, nnodes, cap, buckets and every node: all
 * requests read or change them, and the loop is multi-threaded. Positions
 * in a directory only grow (a removed name leaves a 0), so a listing's
 * offsets stay valid while the directory changes. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static fuse_ino_t nnodes, cap;
static fuse_ino_t *buckets;
static char zeros[1 << 20];

/* Set before the session runs, read-only after. */
static struct fuse_session *session;
static int backing_fd = -1;     /* the scratch file every backing id names */
static bool no_opendir;         /* the kernel takes ENOSYS for OPENDIR */

/* What the kernel offered in INIT, written by the thread that read it and
 * read by the one replying (the same one in libfuse 3.14). */
static _Atomic uint64_t init_unique;
static atomic_bool init_killpriv, init_pt, init_done, init_uring;
/* FLOOR_URING=N: serve through io_uring with about N workers. */
static unsigned uring_workers;
/* As unionmount's uring_idle=auto (src/nice.h); set before the loop starts. */
static bool idle_workers;
/* The backing id the reply this thread is writing carries (0: none). */
static _Thread_local int32_t reply_id;

static uint32_t bucket(fuse_ino_t parent, const char *name)
{
	return (uint32_t)XXH3_64bits_withSeed(name, strlen(name), parent) & (NBUCKETS - 1);
}

static fuse_ino_t find(fuse_ino_t parent, const char *name)
{
	fuse_ino_t n;

	for (n = buckets[bucket(parent, name)]; n; n = nodes[n].hnext)
		if (nodes[n].parent == parent && nodes[n].name && !strcmp(nodes[n].name, name))
			return n;
	return 0;
}

/* Puts n (parent and name set) into its directory. */
static int link_node(fuse_ino_t n)
{
	struct node *p = &nodes[nodes[n].parent];
	uint32_t b;

	if (p->nkids == p->capkids) {
		uint32_t ncap = p->capkids ? p->capkids * 2 : 8;
		fuse_ino_t *k = realloc(p->kids, ncap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		p->kids = k;
		p->capkids = ncap;
	}
	nodes[n].slot = p->nkids;
	p->kids[p->nkids++] = n;
	b = bucket(nodes[n].parent, nodes[n].name);
	nodes[n].hnext = buckets[b];
	buckets[b] = n;
	return 0;
}

/* Takes n out of its directory; its name stays. */
static void unlink_node(fuse_ino_t n)
{
	fuse_ino_t *p = &buckets[bucket(nodes[n].parent, nodes[n].name)];

	while (*p != n)
		p = &nodes[*p].hnext;
	*p = nodes[n].hnext;
	nodes[nodes[n].parent].kids[nodes[n].slot] = 0;
}

static void drop(fuse_ino_t n)
{
	unlink_node(n);
	free(nodes[n].name);
	nodes[n].name = NULL;
	if (nodes[n].st.st_nlink)
		nodes[n].st.st_nlink--;
}

static bool has_kids(fuse_ino_t n)
{
	for (uint32_t i = 0; i < nodes[n].nkids; i++)
		if (nodes[n].kids[i])
			return true;
	return false;
}

/* A new node under parent (0 for the root), or 0 without memory. */
static fuse_ino_t add(fuse_ino_t parent, const char *name, const struct stat *st, const char *target)
{
	fuse_ino_t n;

	if (nnodes + 1 >= cap) {
		fuse_ino_t ncap = cap ? cap * 2 : 1024;
		struct node *nn = realloc(nodes, ncap * sizeof(*nn));

		if (!nn)
			return 0;
		memset(nn + cap, 0, (ncap - cap) * sizeof(*nn));
		nodes = nn;
		cap = ncap;
	}
	n = nnodes + 1;
	nodes[n].st = *st;
	nodes[n].st.st_ino = n;
	nodes[n].parent = parent;
	nodes[n].name = strdup(name);
	nodes[n].target = target ? strdup(target) : NULL;
	if (!nodes[n].name || (target && !nodes[n].target) || (parent && link_node(n) < 0)) {
		free(nodes[n].name);
		free(nodes[n].target);
		memset(&nodes[n], 0, sizeof(nodes[n]));
		return 0;
	}
	nnodes = n;
	return n;
}

/* Copies dir (an open directory fd) into the node n; closes dir. */
static int load(int dir, fuse_ino_t n)
{
	DIR *d = fdopendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dir);
		return -errno;
	}
	while (r == 0 && (errno = 0, de = readdir(d))) {
		struct stat st;
		char target[4096];
		ssize_t len = 0;
		fuse_ino_t c;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
			if (len < 0) {
				r = -errno;
				break;
			}
			target[len] = '\0';
		}
		c = add(n, de->d_name, &st, S_ISLNK(st.st_mode) ? target : NULL);
		if (!c)
			r = -ENOMEM;
		else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			r = sub < 0 ? -errno : load(sub, c);
		}
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

static void entry(fuse_ino_t n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n;
	if (n)
		e->attr = nodes[n].st;
	e->attr_timeout = DAY;
	e->entry_timeout = DAY;
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->want |= conn->capable & (FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS |
				       FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_NO_OPENDIR_SUPPORT);
	no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	fuse_ino_t n;

	pthread_mutex_lock(&lock);
	n = find(parent, name);
	entry(n, &e); /* nodeid 0: a negative entry the kernel keeps, as unionmount's */
	pthread_mutex_unlock(&lock);
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino, (void)nlookup;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&lock);
	st = nodes[ino].st;
	pthread_mutex_unlock(&lock);
	fuse_reply_attr(req, &st, DAY);
}

static void stamp(struct timespec *t, const struct timespec *given, int now)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, t);
	else
		*t = *given;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct stat *st;
	struct stat out;

	(void)fi;
	pthread_mutex_lock(&lock);
	st = &nodes[ino].st;
	if (to_set & FUSE_SET_ATTR_MODE)
		st->st_mode = (st->st_mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		st->st_uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		st->st_gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE)
		st->st_size = attr->st_size;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
		stamp(&st->st_atim, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		stamp(&st->st_mtim, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
	clock_gettime(CLOCK_REALTIME, &st->st_ctim);
	out = *st;
	pthread_mutex_unlock(&lock);
	fuse_reply_attr(req, &out, DAY);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[4096];

	pthread_mutex_lock(&lock);
	snprintf(target, sizeof(target), "%s", nodes[ino].target ? nodes[ino].target : "");
	pthread_mutex_unlock(&lock);
	fuse_reply_readlink(req, target);
}

/* Opens a made file through passthrough (the caller holds the lock): a
 * backing id for the reply, or 0 to answer from the daemon. */
static int32_t backing_get(fuse_ino_t n, int flags)
{
	struct node *nd = &nodes[n];

	/* unionmount's auto: upper files, not O_APPEND (passthrough.c) */
	if (!atomic_load(&init_pt) || !nd->made || (flags & O_APPEND))
		return 0;
	if (!nd->backing) {
		struct um_backing_map map = { .fd = backing_fd };
		int id = ioctl(fuse_session_fd(session), UM_DEV_IOC_BACKING_OPEN, &map);

		if (id <= 0)
			return 0;
		nd->bid = id;
	}
	nd->backing++;
	if ((flags & O_ACCMODE) != O_RDONLY)
		nd->writers++;
	return nd->bid;
}

/* fi->fh: 1 for a passthrough handle, 2 for a writable one too. */
static void opened(fuse_ino_t n, struct fuse_file_info *fi)
{
	int32_t id = backing_get(n, fi->flags);

	/* The kernel takes no FOPEN_KEEP_CACHE with a backing file (EIO). */
	fi->keep_cache = !id;
	fi->fh = id ? 1 + ((fi->flags & O_ACCMODE) != O_RDONLY) : 0;
	reply_id = id;
}

/* A new name in parent, as the caller asked (umask is ours, DONT_MASK). */
static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, const char *target,
		 struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct stat st;
	fuse_ino_t n = 0;
	int err = 0;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_ISLNK(mode) ? (S_IFLNK | 0777) : (mode & (S_IFMT | (07777 & ~ctx->umask)));
	st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	st.st_uid = ctx->uid;
	st.st_gid = ctx->gid;
	st.st_blksize = 4096;
	if (target)
		st.st_size = (off_t)strlen(target);
	clock_gettime(CLOCK_REALTIME, &st.st_mtim);
	st.st_atim = st.st_ctim = st.st_mtim;
	pthread_mutex_lock(&lock);
	if (find(parent, name))
		err = EEXIST;
	else if (!(n = add(parent, name, &st, target)))
		err = ENOMEM;
	else {
		nodes[n].made = true;
		entry(n, &e);
		if (fi)
			opened(n, fi);
	}
	pthread_mutex_unlock(&lock);
	if (err)
		fuse_reply_err(req, err);
	else if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
	reply_id = 0;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)rdev;
	make(req, parent, name, mode, NULL, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | mode, NULL, NULL);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, S_IFLNK, target, NULL);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t n;
	int err = 0;

	pthread_mutex_lock(&lock);
	n = find(parent, name);
	if (!n)
		err = ENOENT;
	else if (S_ISDIR(nodes[n].st.st_mode) && has_kids(n))
		err = ENOTEMPTY;
	else
		drop(n);
	pthread_mutex_unlock(&lock);
	fuse_reply_err(req, err);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_ino_t n, old;
	char *dup = strdup(newname);
	int err = 0;

	pthread_mutex_lock(&lock);
	n = find(parent, name);
	old = find(newparent, newname);
	if (!dup)
		err = ENOMEM;
	else if (!n)
		err = ENOENT;
	else if (flags & ~RENAME_NOREPLACE)
		err = EINVAL; /* no workload exchanges */
	else if (old && (flags & RENAME_NOREPLACE))
		err = EEXIST;
	else if (old && S_ISDIR(nodes[old].st.st_mode) && has_kids(old))
		err = ENOTEMPTY;
	else if (old != n) {
		if (old)
			drop(old);
		unlink_node(n);
		free(nodes[n].name);
		nodes[n].name = dup;
		nodes[n].parent = newparent;
		dup = NULL;
		err = -link_node(n);
	}
	pthread_mutex_unlock(&lock);
	free(dup);
	fuse_reply_err(req, err);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	make(req, parent, name, S_IFREG | (mode & 07777), NULL, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	pthread_mutex_lock(&lock);
	if (fi->flags & O_TRUNC)
		nodes[ino].st.st_size = 0;
	opened(ino, fi);
	pthread_mutex_unlock(&lock);
	fuse_reply_open(req, fi);
	reply_id = 0;
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	bool last_writer = false;
	int32_t id = 0;

	pthread_mutex_lock(&lock);
	if (fi->fh) {
		struct node *nd = &nodes[ino];

		if (fi->fh == 2)
			last_writer = --nd->writers == 0;
		if (--nd->backing == 0)
			id = nd->bid;
	}
	pthread_mutex_unlock(&lock);
	if (id)
		(void)ioctl(fuse_session_fd(session), UM_DEV_IOC_BACKING_CLOSE, &id);
	/* unionmount's file_free(): writes it never saw changed the times */
	if (last_writer)
		(void)fuse_lowlevel_notify_inval_inode(session, ino, -1, 0);
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	off_t end;

	(void)fi;
	pthread_mutex_lock(&lock);
	end = nodes[ino].st.st_size;
	pthread_mutex_unlock(&lock);
	if (size > sizeof(zeros))
		size = sizeof(zeros);
	if (off >= end)
		size = 0;
	else if ((off_t)size > end - off)
		size = (size_t)(end - off);
	fuse_reply_buf(req, zeros, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct stat *st;

	(void)buf, (void)fi;
	pthread_mutex_lock(&lock);
	st = &nodes[ino].st;
	if (off + (off_t)size > st->st_size)
		st->st_size = off + (off_t)size;
	st->st_blocks = (st->st_size + 511) / 512;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_ctim = st->st_mtim;
	pthread_mutex_unlock(&lock);
	fuse_reply_write(req, size);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, 0);
}

/* One entry of a listing into buf; its size even if it does not fit. */
static size_t put(fuse_req_t req, char *buf, size_t room, const char *name, fuse_ino_t n, off_t next, int plus)
{
	struct fuse_entry_param e;

	entry(n, &e);
	if (plus && name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) {
		/* nodeid 0: no lookup counted; the kernel does not link it */
		e.ino = 0;
		e.attr_timeout = e.entry_timeout = 0;
	}
	if (plus)
		return fuse_add_direntry_plus(req, buf, room, name, &e, next);
	return fuse_add_direntry(req, buf, room, name, &e.attr, next);
}

/* Offsets: 1 after ".", 2 after "..", then 3 + the position in kids. */
static void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	char *buf = malloc(size);
	size_t used = 0, len;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&lock);
	if (off < 1 && (len = put(req, buf, size, ".", ino, 1, plus)) <= size)
		used += len, off = 1;
	if (off == 1 && (len = put(req, buf + used, size - used, "..",
				   ino == FUSE_ROOT_ID ? ino : nodes[ino].parent, 2, plus)) <= size - used)
		used += len, off = 2;
	for (off_t i = off >= 2 ? off - 2 : nodes[ino].nkids; i < nodes[ino].nkids; i++) {
		fuse_ino_t c = nodes[ino].kids[i];

		if (!c)
			continue;
		len = put(req, buf + used, size - used, nodes[c].name, c, i + 3, plus);
		if (len > size - used)
			break;
		used += len;
	}
	pthread_mutex_unlock(&lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* As unionmount: no OPENDIR where the kernel takes that (it then caches
 * listings), else an open whose listing the kernel may cache. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	list(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	list(req, ino, size, off, 1);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino, (void)name, (void)size;
	fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_xattr(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_blocks = 1u << 30,
			      .f_bfree = 1u << 30, .f_bavail = 1u << 30, .f_files = 1u << 30,
			      .f_ffree = 1u << 30, .f_favail = 1u << 30, .f_namemax = 255 };

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

/* The /dev/fuse hooks that ask for what libfuse 3.14 cannot, as
 * src/devio.c does (see there for the protocol). */
static ssize_t hook_read(int fd, void *buf, size_t len, void *ud)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *in = (const void *)(h + 1);

	(void)ud;
	if (n < (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2)) ||
	    atomic_load(&init_done) || h->opcode != FUSE_INIT)
		return n;
	if (in->major == FUSE_KERNEL_VERSION) {
		atomic_store(&init_killpriv, (in->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
		atomic_store(&init_pt, backing_fd >= 0 && (in->flags & FUSE_INIT_EXT) && (in->flags2 & UM_FUSE_PASSTHROUGH_FLAGS2));
		atomic_store(&init_uring, uring_workers && (in->flags & FUSE_INIT_EXT) &&
					  (in->flags2 & UM_FUSE_OVER_IO_URING_FLAGS2));
		atomic_store(&init_unique, h->unique);
	}
	atomic_store(&init_done, true);
	return n;
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *ud)
{
	uint64_t unique = atomic_load(&init_unique);
	const struct fuse_out_header *oh = iov[0].iov_base;
	bool start = false;
	ssize_t n;

	(void)ud;
	if (count != 2 || iov[0].iov_len != sizeof(*oh) || oh->error)
		goto send;
	if (reply_id && iov[1].iov_len >= sizeof(struct fuse_open_out)) {
		char *o = (char *)iov[1].iov_base + iov[1].iov_len - sizeof(struct fuse_open_out);
		uint32_t flags;

		memcpy(&flags, o + offsetof(struct fuse_open_out, open_flags), sizeof(flags));
		flags |= UM_FOPEN_PASSTHROUGH;
		memcpy(o + offsetof(struct fuse_open_out, open_flags), &flags, sizeof(flags));
		memcpy(o + offsetof(struct fuse_open_out, padding), &reply_id, sizeof(reply_id));
	} else if (unique && oh->unique == unique && iov[1].iov_len >= UM_INIT_OUT_STACK_DEPTH + sizeof(uint32_t)) {
		struct fuse_init_out *out = iov[1].iov_base;
		uint32_t depth = 1;

		if (atomic_load(&init_killpriv))
			out->flags |= FUSE_HANDLE_KILLPRIV_V2;
		if (atomic_load(&init_pt)) {
			out->flags |= FUSE_INIT_EXT;
			out->flags2 |= UM_FUSE_PASSTHROUGH_FLAGS2;
			memcpy((char *)out + UM_INIT_OUT_STACK_DEPTH, &depth, sizeof(depth));
		}
		if (atomic_load(&init_uring)) {
			um_uring_accept(out, iov[1].iov_len);
			start = true;
		}
		atomic_store(&init_unique, 0);
	}
send:
	n = um_uring_reply(iov, count);
	if (n >= 0)
		return n;
	n = writev(fd, iov, count);
	if (start && n >= 0 && um_uring_start(session, uring_workers, idle_workers) < 0)
		fprintf(stderr, "floor: io_uring workers did not start\n");
	return n;
}

static const struct fuse_custom_io hooks = {
	.read = hook_read,
	.writev = hook_writev,
};

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_remove,
	.rmdir = op_remove,
	.rename = op_rename,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	/* no .flush: unionmount has none, and the kernel stops asking */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
};

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct fuse_cmdline_opts o = { 0 };
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	struct stat st;
	int dir, r = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: floor TREE MOUNTPOINT [-f] [-o OPTS]\n");
		return 2;
	}
	if (getenv("FLOOR_URING"))
		uring_workers = (unsigned)atoi(getenv("FLOOR_URING"));
	buckets = calloc(NBUCKETS, sizeof(*buckets));
	dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!buckets || dir < 0 || fstat(dir, &st) < 0 || add(0, "", &st, NULL) != FUSE_ROOT_ID) {
		perror(argv[1]);
		return 1;
	}
	r = load(dir, FUSE_ROOT_ID);
	if (r < 0) {
		fprintf(stderr, "floor: loading %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	/* Every passed-through file writes here: tmpfs, so no branch work. */
	{
		char scratch[] = "/dev/shm/floor-backing.XXXXXX";

		backing_fd = mkostemp(scratch, O_CLOEXEC);
		if (backing_fd < 0)
			perror("floor: no passthrough: /dev/shm");
		else
			(void)unlink(scratch);
	}
	args = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	r = 1;
	for (int i = 0; i < argc; i++)
		if (i != 1 && fuse_opt_add_arg(&args, argv[i]) < 0)
			goto out;
	if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=floor,subtype=floor") < 0 ||
	    fuse_parse_cmdline(&args, &o) != 0 || !o.mountpoint)
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, o.mountpoint) != 0)
		goto out;
	session = se;
	if (fuse_session_custom_io(se, &hooks, fuse_session_fd(se)) < 0 || fuse_daemonize(o.foreground) != 0)
		goto unmount;
	/* As unionmount (src/main.c): its default weight. */
	um_nice_setup(-10, false);
	idle_workers = um_sched_own_group();
	lc = fuse_loop_cfg_create();
	if (!lc)
		goto unmount;
	/* As unionmount (src/main.c). */
	fuse_loop_cfg_set_max_threads(lc, 16);
	fuse_loop_cfg_set_idle_threads(lc, 4);
	r = fuse_session_loop_mt(se, lc) ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
unmount:
	fuse_session_unmount(se);
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	free(o.mountpoint);
	fuse_opt_free_args(&args);
	return r;
}
