/* setattr: chmod, chown, truncate, utimens, on a path or through any open
 * descriptor (a read-only one included): the object is copied up first
 * either way, then changed in upper. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "copyup/copyup.h"
#include "inode.h"
#include "op_file.h"
#include "ops.h"
#include "passthrough.h"
#include "sys.h"

/* The kernel's FUSE client leaves setgid without group-execute to us
 * (um_file_kill_priv()), even when it sends a mode with the size. */
static int truncate_fd(fuse_req_t req, struct um_inode *ino, int fd, off_t size)
{
	int r = um_sys_ftruncate(fd, size);

	return r < 0 ? r : um_file_kill_priv(req, ino, fd);
}

static int truncate_loc(fuse_req_t req, struct um_fs *fs, struct um_inode *ino, off_t size,
			struct fuse_file_info *fi)
{
	struct um_loc loc;
	int fd, r;

	if (fi) {
		fd = um_file_get_writable(fs, fi);
		if (fd >= 0) {
			r = truncate_fd(req, ino, fd, size);
			um_file_put(fs, fi);
			return r;
		}
	}
	r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		return r;
	fd = um_sys_openat(loc.dirfd, loc.name, O_WRONLY);
	um_loc_release(fs, &loc);
	if (fd < 0)
		return fd;
	r = truncate_fd(req, ino, fd, size);
	(void)close(fd);
	return r;
}

static struct timespec time_arg(int to_set, int set_bit, int now_bit, struct timespec t)
{
	if (to_set & now_bit)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	if (to_set & set_bit)
		return t;
	return (struct timespec){ .tv_nsec = UTIME_OMIT };
}

/* With HANDLE_KILLPRIV_V2 (devio.c) a SETATTR that sets nothing on a
 * non-directory is the kernel handing over a clearing it no longer does:
 * a chown(f, -1, -1), or, before a write, truncate or fallocate by a
 * caller without CAP_FSETID, the clearing of a setuid file's bits. (The
 * kernel marks FATTR_KILL_SUIDGID only on a SETATTR that also changes
 * the size or the owner.) Cleared as chown clears (um_file_priv_to_clear()).
 * Where that differs from the VFS: a caller with
 * CAP_FSETID changing the data of a setuid or setgid file that also has
 * a file capability (the kernel removes the capability, then sends this
 * same empty request, as for its chown(f, -1, -1)) loses setuid, and
 * setgid if group-executable. */
static int kill_priv_unchanged(fuse_req_t req, int dirfd, const char *name)
{
	struct stat st;
	mode_t kill;
	int r = um_sys_lstatat(dirfd, name, &st);

	/* chown clears them on every non-directory (a symlink has none). */
	if (r < 0 || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))
		return r;
	kill = um_file_priv_to_clear(req, &st, true);
	return kill ? um_sys_fchmodat(dirfd, name, st.st_mode & 07777 & ~kill) : 0;
}

static int apply(fuse_req_t req, struct um_fs *fs, struct um_inode *ino, const struct stat *attr, int to_set,
		 struct fuse_file_info *fi)
{
	const int owner_mode = FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MODE;
	bool kill = atomic_load_explicit(&fs->killpriv_v2, memory_order_relaxed) &&
		    !(to_set & (owner_mode | FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW));
	struct um_loc loc;
	int r = 0;

	if ((to_set & owner_mode) || kill) {
		r = um_inode_locate(fs, ino, &loc);
		if (r < 0)
			return r;
		/* The object's lock, read: a metacopy file's data copy (which
		 * holds it for writing) copies its attributes and then replaces
		 * it, and must not do so around this change (copyup.c). */
		pthread_rwlock_rdlock(&ino->lock);
		if (kill)
			r = kill_priv_unchanged(req, loc.dirfd, loc.name);
		if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
			r = um_sys_fchownat(loc.dirfd, loc.name,
					    to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
					    to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1);
		if (r == 0 && (to_set & FUSE_SET_ATTR_MODE))
			r = um_sys_fchmodat(loc.dirfd, loc.name, attr->st_mode & 07777);
		pthread_rwlock_unlock(&ino->lock);
		um_loc_release(fs, &loc);
	}
	/* Outside any location: truncate_loc() takes its own, and a
	 * handle's lock, which must not nest in a parent's lock. */
	if (r == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		r = S_ISDIR(ino->type) ? -EISDIR : truncate_loc(req, fs, ino, attr->st_size, fi);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
				 FUSE_SET_ATTR_MTIME_NOW))) {
		struct timespec ts[2] = {
			time_arg(to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, attr->st_atim),
			time_arg(to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, attr->st_mtim),
		};

		r = um_inode_locate(fs, ino, &loc);
		if (r < 0)
			return r;
		pthread_rwlock_rdlock(&ino->lock); /* as above */
		r = um_sys_utimensat(loc.dirfd, loc.name, ts);
		pthread_rwlock_unlock(&ino->lock);
		um_loc_release(fs, &loc);
	}
	return r;
}

void um_op_setattr(fuse_req_t req, fuse_ino_t nodeid, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid);
	/* Truncating to zero needs none of the old data; the rest (chmod,
	 * chown, utimens) none of the data at all. */
	unsigned flags = !(to_set & FUSE_SET_ATTR_SIZE) ? UM_COPYUP_META
			 : attr->st_size == 0		  ? UM_COPYUP_NODATA
							  : 0;
	struct stat st;
	/* A truncate changes the data: not under a lower file's passthrough
	 * handles (passthrough.h). */
	bool sizing = (to_set & FUSE_SET_ATTR_SIZE) && !S_ISDIR(ino->type);
	int r = sizing ? um_pt_write_begin(fs, ino) : 0;
	bool reserved = sizing && r == 0;

	if (r == 0 && (flags & UM_COPYUP_NODATA))
		r = um_copyup_may_truncate(fs, ino);
	if (r == 0)
		r = um_copyup(fs, ino, flags);

	if (r == 0)
		r = apply(req, fs, ino, attr, to_set, fi);
	if (reserved)
		um_pt_write_end(fs, ino);
	if (r == 0)
		r = um_inode_stat(fs, ino, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, um_attr_timeout(fs, ino));
}
