/*
 * floor: the cheapest FUSE filesystem that can run the benchmark's
 * workloads, to measure what the FUSE round trips alone cost here.
 *
 *   floor TREE MOUNTPOINT [-f] [-o OPTS]
 *
 * At start it copies the names and attributes of the tree under TREE into
 * memory (no data); then it answers every request from memory, without a
 * syscall: LOOKUP and GETATTR from a hash table, CREATE/MKDIR/SETATTR by
 * changing it, WRITE by taking the size, READ with zeros, FSYNC with
 * nothing. It asks the kernel for what unionmount asks (src/ops.c:
 * default_permissions, POSIX ACLs, no OPENDIR, cached symlinks, atomic
 * O_TRUNC, day-long timeouts, libfuse's multi-threaded loop with the same
 * thread counts), so a workload sends it the requests it sends unionmount.
 * Its time is therefore what any FUSE daemon on this kernel and libfuse
 * pays before doing any work; a ratio to kernel overlayfs below it cannot
 * be had over FUSE (bench/README.md, "The FUSE floor").
 *
 * Not a filesystem: data is discarded, names live until unmount, nothing
 * is checked but what the kernel leaves to it.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define DAY 86400.0
#define NBUCKETS (1u << 20)

struct node {
	struct stat st;
	fuse_ino_t parent;
	char *name;        /* NULL once removed */
	char *target;      /* symlinks */
	fuse_ino_t hnext;  /* next in the hash bucket */
	fuse_ino_t child;  /* first child (directories) */
	fuse_ino_t sibling;
};

/* The whole namespace. Nodeid n is nodes[n]; 1 is the root, 0 unused.
 * Nodes are never freed (the kernel's FORGET is ignored), so a nodeid stays
 * valid. The lock guards nodes, nnodes, cap and buckets: every request
 * reads or changes them, and the loop is multi-threaded. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static fuse_ino_t nnodes, cap;
static fuse_ino_t *buckets;
static char zeros[1 << 20];

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

/* A new node under parent (0 for the root), or 0 without memory. */
static fuse_ino_t add(fuse_ino_t parent, const char *name, const struct stat *st, const char *target)
{
	fuse_ino_t n;
	uint32_t b;

	if (nnodes + 1 >= cap) {
		fuse_ino_t ncap = cap ? cap * 2 : 1024;
		struct node *nn = realloc(nodes, ncap * sizeof(*nn));

		if (!nn)
			return 0;
		memset(nn + cap, 0, (ncap - cap) * sizeof(*nn));
		nodes = nn;
		cap = ncap;
	}
	n = ++nnodes;
	nodes[n].st = *st;
	nodes[n].st.st_ino = n;
	nodes[n].parent = parent;
	nodes[n].name = strdup(name);
	nodes[n].target = target ? strdup(target) : NULL;
	if (!nodes[n].name || (target && !nodes[n].target))
		return 0;
	if (parent) {
		b = bucket(parent, name);
		nodes[n].hnext = buckets[b];
		buckets[b] = n;
		nodes[n].sibling = nodes[parent].child;
		nodes[parent].child = n;
	}
	return n;
}

static void drop(fuse_ino_t n)
{
	fuse_ino_t *p = &buckets[bucket(nodes[n].parent, nodes[n].name)];

	while (*p != n)
		p = &nodes[*p].hnext;
	*p = nodes[n].hnext;
	free(nodes[n].name);
	nodes[n].name = NULL;
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
	else
		entry(n, &e);
	pthread_mutex_unlock(&lock);
	if (err)
		fuse_reply_err(req, err);
	else if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
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

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	fi->keep_cache = 1;
	make(req, parent, name, S_IFREG | (mode & 07777), NULL, fi);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t n;

	pthread_mutex_lock(&lock);
	n = find(parent, name);
	if (n)
		drop(n);
	pthread_mutex_unlock(&lock);
	fuse_reply_err(req, n ? 0 : ENOENT);
}

/* Takes n out of its directory (hash and child list), name kept. */
static void unlink_node(fuse_ino_t n)
{
	fuse_ino_t *p = &buckets[bucket(nodes[n].parent, nodes[n].name)];

	while (*p != n)
		p = &nodes[*p].hnext;
	*p = nodes[n].hnext;
	for (p = &nodes[nodes[n].parent].child; *p != n; p = &nodes[*p].sibling)
		;
	*p = nodes[n].sibling;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_ino_t n, old;
	char *dup = strdup(newname);
	uint32_t b;
	int err = 0;

	pthread_mutex_lock(&lock);
	n = find(parent, name);
	old = find(newparent, newname);
	if (!n || flags || !dup)
		err = !n ? ENOENT : flags ? EINVAL : ENOMEM;
	else if (old != n) {
		if (old)
			drop(old);
		unlink_node(n);
		free(nodes[n].name);
		nodes[n].name = dup;
		dup = NULL;
		nodes[n].parent = newparent;
		b = bucket(newparent, newname);
		nodes[n].hnext = buckets[b];
		buckets[b] = n;
		nodes[n].sibling = nodes[newparent].child;
		nodes[newparent].child = n;
	}
	pthread_mutex_unlock(&lock);
	free(dup);
	fuse_reply_err(req, err);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->flags & O_TRUNC) {
		pthread_mutex_lock(&lock);
		nodes[ino].st.st_size = 0;
		pthread_mutex_unlock(&lock);
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
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

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	op_ok(req, ino, fi);
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

/* Offsets: 1 after ".", 2 after "..", then positions in the child list. */
static void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	char *buf = malloc(size);
	size_t used = 0, len;
	off_t i = 2;
	fuse_ino_t c;

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
	for (c = nodes[ino].child; off >= 2 && c; c = nodes[c].sibling) {
		if (!nodes[c].name || ++i <= off)
			continue;
		len = put(req, buf + used, size - used, nodes[c].name, c, i, plus);
		if (len > size - used)
			break;
		used += len;
	}
	pthread_mutex_unlock(&lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
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
	.flush = op_ok,
	.release = op_ok,
	.fsync = op_fsync,
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
	if (fuse_daemonize(o.foreground) != 0)
		goto unmount;
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
