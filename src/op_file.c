/* open, read, write, release, fsync, fallocate, copy_file_range, lseek
 * on regular files. No flush: writes go straight to the backing file,
 * whose close() reports nothing more, and there are no POSIX locks of
 * ours to drop; without the handler libfuse answers ENOSYS once and the
 * kernel stops sending FLUSH at every close(2) (one round trip fewer per
 * open file: bench/README.md, "Levers"). */
#include "op_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copyup/copyup.h"
#include "inode.h"
#include "log.h"
#include "namespace.h"
#include "ops.h"
#include "passthrough.h"
#include "sys.h"
#include "uring.h"

struct um_file {
	/* Guards fd and layer. Readers hold it across every use of fd (a
	 * splice included), so the fd is never closed under them. */
	pthread_rwlock_t lock;
	/* The open's own reference plus one per request using the handle:
	 * the kernel may send release as soon as it has a read's reply, so
	 * that request's thread can still be unlocking when release runs. */
	_Atomic unsigned refs;
	int fd;
	uint16_t layer; /* of fd: a lower layer, or UM_UPPER for the upper copy */
	int flags;      /* as opened, for reopening after a copy-up */
	struct um_inode *ino; /* holds a reference */
	/* Opened for writing with setuid/setgid set: the next write checks
	 * what it clears (um_file_kill_priv()). */
	atomic_bool priv;
	/* What the kernel does with it (passthrough.h), chosen at open;
	 * pt_id: the backing id for UM_PT_BACKING. */
	enum um_pt_kind pt;
	int32_t pt_id;
	struct um_file *prev, *next; /* fs->files, under fs->files_lock */
};

static struct um_file *file_of(struct fuse_file_info *fi)
{
	return (struct um_file *)(uintptr_t)fi->fh;
}

mode_t um_file_priv_to_clear(fuse_req_t req, const struct stat *st, bool chown)
{
	mode_t kill = 0;

	if (!(st->st_mode & (S_ISUID | S_ISGID)))
		return 0;
	if (!chown && um_ns_caller_capable(req, CAP_FSETID))
		return 0;
	if (st->st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st->st_mode & S_ISGID) &&
	    ((st->st_mode & S_IXGRP) ||
	     !(um_ns_caller_in_group(req, st->st_gid) || (chown && um_ns_caller_capable(req, CAP_FSETID)))))
		kill |= S_ISGID;
	return kill;
}

/* Clear setuid/setgid as a change of the data clears them in the VFS
 * (um_file_priv_to_clear()). Ours to do where the kernel's FUSE client leaves it: an open with
 * O_TRUNC truncates here (FUSE_CAP_ATOMIC_O_TRUNC) and the kernel then
 * sends no setattr at all. On a write, truncate, fallocate or
 * copy_file_range it clears all but a setgid bit without group-execute
 * itself, or, with HANDLE_KILLPRIV_V2 (devio.c), sends an empty
 * SETATTR before the write (op_attr.c) and leaves truncate to us. The
 * kernel is told when the mode changed: no reply to an OPEN or WRITE
 * carries attributes, and its cached mode would show the bits for a day. */
int um_file_kill_priv(fuse_req_t req, struct um_inode *ino, int fd)
{
	struct stat st;
	mode_t kill;
	int r = um_sys_fstat(fd, &st);

	if (r < 0 || !S_ISREG(st.st_mode))
		return r;
	kill = um_file_priv_to_clear(req, &st, false);
	if (!kill)
		return 0;
	r = um_sys_fchmodat(fd, "", st.st_mode & 07777 & ~kill);
	if (r == 0)
		um_notify_attrs_changed(um_req_fs(req), ino);
	return r;
}

static bool open_for_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* A handle through which the kernel may change the backing file's data
 * and times unseen by us: a writable one's shared mappings (inode.h,
 * pt_writers). */
static bool pt_writer(const struct um_file *f)
{
	return f->pt == UM_PT_BACKING && (f->flags & O_ACCMODE) != O_RDONLY;
}

int um_file_attach(struct um_fs *fs, struct um_inode *ino, int fd, uint16_t layer, const struct stat *st_known,
		   struct fuse_file_info *fi)
{
	struct um_file *f = malloc(sizeof(*f));
	struct stat st;
	int pt;

	if (!f)
		return -ENOMEM;
	if (layer == UM_LAYER_INDEX)
		layer = UM_UPPER; /* indexed files are upper files */
	f->pt_id = 0;
	pt = um_pt_open(fs, ino, fd, layer, fi->flags, &f->pt_id);
	if (pt < 0) {
		free(f);
		return pt;
	}
	f->pt = pt;
	pthread_rwlock_init(&f->lock, NULL);
	atomic_init(&f->refs, 1);
	f->fd = fd;
	f->layer = layer;
	f->flags = fi->flags & ~(UM_FD_FLAGS_DROPPED | O_TRUNC);
	f->ino = um_inode_ref(ino);
	if ((f->flags & O_ACCMODE) != O_RDONLY && !st_known)
		st_known = um_sys_fstat(fd, &st) < 0 ? NULL : &st;
	/* Not knowing counts as setuid: the write then looks. */
	atomic_init(&f->priv, (f->flags & O_ACCMODE) != O_RDONLY &&
				      (!st_known || (st_known->st_mode & (S_ISUID | S_ISGID))));
	atomic_fetch_add(&ino->nopen, 1);
	if (pt_writer(f)) {
		atomic_fetch_add(&ino->pt_writers, 1);
		atomic_store(&ino->pt_written, true);
	}
	pthread_mutex_lock(&fs->files_lock);
	f->prev = NULL;
	f->next = fs->files;
	if (fs->files)
		fs->files->prev = f;
	fs->files = f;
	pthread_mutex_unlock(&fs->files_lock);
	fi->fh = (uintptr_t)f;
	/* File data changes only through this mount: the page cache stays
	 * valid across opens (and across copy-up, which copies it as is).
	 * Except that passthrough writes bypass it: a passthrough open lets
	 * the kernel drop it, and it stays empty while those opens last. */
	fi->keep_cache = f->pt != UM_PT_BACKING;
	return 0;
}

int um_file_reply_open(fuse_req_t req, struct fuse_file_info *fi)
{
	int r;

	um_pt_reply_begin(file_of(fi)->pt_id);
	r = fuse_reply_open(req, fi);
	um_pt_reply_end();
	return r;
}

int um_file_reply_create(fuse_req_t req, const struct fuse_entry_param *e, struct fuse_file_info *fi)
{
	int r;

	um_pt_reply_begin(file_of(fi)->pt_id);
	r = fuse_reply_create(req, e, fi);
	um_pt_reply_end();
	return r;
}

static void file_free(struct um_fs *fs, struct um_file *f)
{
	pthread_mutex_lock(&fs->files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		fs->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&fs->files_lock);
	(void)close(f->fd);
	um_pt_release(fs, f->ino, f->pt);
	/* What the kernel still caches of the attributes would hide the
	 * times the handle's mappings changed (inode.h, pt_writers). */
	if (pt_writer(f) && atomic_fetch_sub(&f->ino->pt_writers, 1) == 1)
		um_notify_attrs_changed(fs, f->ino);
	atomic_fetch_sub(&f->ino->nopen, 1);
	um_inode_unref(fs, f->ino, 1);
	pthread_rwlock_destroy(&f->lock);
	free(f);
}

static void file_unref(struct um_fs *fs, struct um_file *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		file_free(fs, f);
}

void um_file_detach(struct um_fs *fs, struct fuse_file_info *fi)
{
	file_unref(fs, file_of(fi));
	fi->fh = 0;
}

void um_files_free_all(struct um_fs *fs)
{
	/* The session is over: no request holds a handle any more. */
	while (fs->files)
		file_free(fs, fs->files);
}

/* Reopen a handle whose object was copied up since it was opened.
 * Caller holds f->lock for writing. */
static int file_follow(struct um_fs *fs, struct um_file *f)
{
	struct um_loc loc;
	int fd, r = um_inode_locate(fs, f->ino, &loc);

	if (r < 0)
		return r;
	fd = um_sys_openat(loc.dirfd, loc.name, f->flags);
	um_loc_release(fs, &loc);
	if (fd < 0)
		return fd;
	(void)close(f->fd); /* read-only on a lower file: nothing to lose */
	f->fd = fd;
	f->layer = UM_UPPER;
	return 0;
}

/* The handle's current fd, with f->lock held for reading and a
 * reference taken; um_file_put() gives both back. */
static int file_get(struct um_fs *fs, struct um_file *f)
{
	atomic_fetch_add(&f->refs, 1);
	for (;;) {
		uint16_t now;
		int r;

		pthread_rwlock_rdlock(&f->lock);
		if (f->layer == UM_UPPER)
			return f->fd;
		/* A metacopy copy-up leaves the data where the handle reads it. */
		now = um_inode_data_layer(f->ino);
		if (now != UM_UPPER && now != UM_LAYER_INDEX)
			return f->fd;
		pthread_rwlock_unlock(&f->lock);
		pthread_rwlock_wrlock(&f->lock);
		r = f->layer == UM_UPPER ? 0 : file_follow(fs, f);
		pthread_rwlock_unlock(&f->lock);
		if (r < 0) {
			um_log(UM_LOG_WARN, "cannot move an open file to its upper copy: %s", strerror(-r));
			pthread_rwlock_rdlock(&f->lock);
			return f->fd; /* the lower file still has the data it had */
		}
	}
}

int um_file_get(struct um_fs *fs, struct fuse_file_info *fi)
{
	return file_get(fs, file_of(fi));
}

int um_file_get_writable(struct um_fs *fs, struct fuse_file_info *fi)
{
	struct um_file *f = file_of(fi);
	int fd = file_get(fs, f);

	if (f->layer == UM_UPPER && (f->flags & O_ACCMODE) != O_RDONLY)
		return fd;
	um_file_put(fs, fi);
	return -EBADF;
}

void um_file_put(struct um_fs *fs, struct fuse_file_info *fi)
{
	struct um_file *f = file_of(fi);

	pthread_rwlock_unlock(&f->lock);
	file_unref(fs, f);
}

void um_op_open(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid);
	struct um_loc loc;
	bool writing = open_for_write(fi->flags);
	uint16_t data = writing ? um_inode_data_layer(ino) : UM_UPPER;
	int fd, r = writing ? um_pt_write_begin(fs, ino) : 0;

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fi->flags & O_TRUNC)
		r = um_copyup_may_truncate(fs, ino);
	if (r == 0 && open_for_write(fi->flags))
		r = um_copyup(fs, ino, fi->flags & O_TRUNC ? UM_COPYUP_NODATA : 0);
	/* The copy is a new upper file (its ctime, a metacopy file's
	 * blocks), which the kernel hears nothing of if no write follows. */
	if (r == 0 && data != UM_UPPER && data != UM_LAYER_INDEX)
		um_notify_attrs_changed(fs, ino);
	if (r == 0)
		r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		goto fail;
	/* Opened for writing, a metacopy file got its data above; for
	 * reading, the data is still below. */
	fd = um_sys_openat(loc.datalayer ? loc.datadirfd : loc.dirfd, loc.name, fi->flags & ~UM_FD_FLAGS_DROPPED);
	um_loc_release(fs, &loc);
	r = fd >= 0 && (fi->flags & O_TRUNC) ? um_file_kill_priv(req, ino, fd) : fd;
	if (r >= 0)
		r = um_file_attach(fs, ino, fd, loc.datalayer ? loc.datalayer : loc.layer, NULL, fi);
	if (r < 0) {
		if (fd >= 0)
			(void)close(fd);
		goto fail;
	}
	if (writing)
		um_pt_write_end(fs, ino); /* the handle is counted now */
	if (um_file_reply_open(req, fi) < 0)
		um_file_detach(fs, fi); /* not delivered (interrupted, the session ended): no release */
	return;
fail:
	if (writing)
		um_pt_write_end(fs, ino);
	fuse_reply_err(req, -r);
}

/* A READ reply's buffer, one per session thread, kept for the thread's
 * life. Given the fd, libfuse would allocate a fresh page-aligned buffer
 * per request and fault it in: for readahead requests of 1 MiB that cost
 * more daemon CPU than the copy, and the allocator's per-thread arenas
 * held ~55 MiB after a 1 GiB read (bench/README.md, "Levers"). At most
 * max_read (1 MiB) per thread. */
struct rbuf {
	size_t size;
	char data[];
};

static pthread_key_t rbuf_key;
static bool rbuf_ok;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void rbuf_init(void)
{
	rbuf_ok = pthread_key_create(&rbuf_key, free) == 0;
}

static char *read_buffer(size_t size)
{
	struct rbuf *b;

	(void)pthread_once(&rbuf_once, rbuf_init);
	if (!rbuf_ok)
		return NULL;
	b = pthread_getspecific(rbuf_key);
	if (b && b->size >= size)
		return b->data;
	free(b);
	b = malloc(sizeof(*b) + size);
	if (b)
		b->size = size;
	if (pthread_setspecific(rbuf_key, b) != 0) {
		free(b);
		return NULL;
	}
	return b ? b->data : NULL;
}

/* Up to size bytes at off: short only at the end of the file. */
static ssize_t read_full(int fd, char *buf, size_t size, off_t off)
{
	size_t got = 0;

	while (got < size) {
		int n = um_sys_pread(fd, buf + got, size - got, off + (off_t)got);

		if (n < 0)
			return got ? (ssize_t)got : n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

void um_op_read(fuse_req_t req, fuse_ino_t nodeid, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct um_fs *fs = um_req_fs(req); /* req is gone once replied to */
	/* Over io_uring, straight into the request's slot: copied there from
	 * our own buffer, a READ took 60% more daemon CPU (bench/README.md,
	 * "READ into the ring slot"). */
	char *mem = um_uring_reply_area(size);
	ssize_t n;

	(void)nodeid;
	if (!mem)
		mem = read_buffer(size);
	if (!mem) {
		/* No memory for our own: let libfuse read through the fd. */
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = um_file_get(fs, fi);
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		um_file_put(fs, fi);
		return;
	}
	n = read_full(um_file_get(fs, fi), mem, size, off);
	um_file_put(fs, fi);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, mem, (size_t)n);
}

void um_op_write_buf(fuse_req_t req, fuse_ino_t nodeid, struct fuse_bufvec *bufv, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(fuse_buf_size(bufv));
	int fd = um_file_get_writable(um_req_fs(req), fi);
	ssize_t n;

	(void)nodeid;
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	dst.buf[0].fd = fd;
	dst.buf[0].pos = off;
	n = atomic_exchange(&file_of(fi)->priv, false) ? um_file_kill_priv(req, file_of(fi)->ino, fd) : 0;
	if (n == 0)
		n = fuse_buf_copy(&dst, bufv, 0);
	um_file_put(um_req_fs(req), fi);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void um_op_release(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	(void)nodeid;
	um_file_detach(um_req_fs(req), fi);
	fuse_reply_err(req, 0);
}

void um_op_fsync(fuse_req_t req, fuse_ino_t nodeid, int datasync, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	int r = um_sys_fsync(um_file_get(fs, fi), datasync);

	um_file_put(um_req_fs(req), fi);
	/* A handle on a metacopy file's lower data synced the data; its
	 * metadata is in upper. */
	if (r == 0)
		r = um_copyup_sync_metacopy(fs, um_req_inode(req, nodeid));
	/* A copy-up's rename is part of the file's durability. */
	if (r == 0)
		r = um_copyup_sync_parents(fs, um_req_inode(req, nodeid));
	fuse_reply_err(req, -r);
}

void um_op_fsyncdir(fuse_req_t req, fuse_ino_t nodeid, int datasync, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *dir = um_req_inode(req, nodeid);
	int fd = um_inode_upper_fd(fs, dir), r = 0;

	(void)fi;
	/* Only the upper part ever changes. */
	if (fd >= 0)
		r = um_sys_fsync(fd, datasync);
	else if (fd != -EROFS)
		r = fd;
	if (r == 0 && fd >= 0)
		r = um_copyup_sync_parents(fs, dir);
	fuse_reply_err(req, -r);
}

void um_op_lseek(fuse_req_t req, fuse_ino_t nodeid, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t pos;
	int r = um_sys_lseek(um_file_get(um_req_fs(req), fi), off, whence, &pos);

	(void)nodeid;
	um_file_put(um_req_fs(req), fi);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_lseek(req, pos);
}

void um_op_fallocate(fuse_req_t req, fuse_ino_t nodeid, int mode, off_t offset, off_t length, struct fuse_file_info *fi)
{
	int fd = um_file_get_writable(um_req_fs(req), fi), r;

	(void)nodeid;
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	r = um_sys_fallocate(fd, mode, offset, length);
	if (r == 0 && atomic_exchange(&file_of(fi)->priv, false))
		r = um_file_kill_priv(req, file_of(fi)->ino, fd);
	um_file_put(um_req_fs(req), fi);
	fuse_reply_err(req, -r);
}

void um_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			   fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct um_fs *fs = um_req_fs(req);
	int out = um_file_get_writable(fs, fi_out), in;
	ssize_t n;

	(void)ino_in, (void)ino_out;
	if (out < 0) {
		fuse_reply_err(req, -out);
		return;
	}
	in = um_file_get(fs, fi_in);
	n = um_sys_copy_file_range(in, &off_in, out, &off_out, len, (unsigned)flags);
	if (n > 0 && atomic_exchange(&file_of(fi_out)->priv, false)) {
		int r = um_file_kill_priv(req, file_of(fi_out)->ino, out);

		n = r < 0 ? r : n;
	}
	um_file_put(fs, fi_in);
	um_file_put(fs, fi_out);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}
