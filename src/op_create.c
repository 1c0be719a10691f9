/* Calls that create names: mknod, mkdir, symlink, create, link. New
 * objects go to the parent's upper part, owned by the caller; over a
 * whiteout they are built in the workdir and swapped in with one rename
 * (a directory there is made opaque, hiding what the whiteout hid). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "copyup/copyup.h"
#include "copyup/workdir.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "namespace.h"
#include "ops.h"
#include "op_file.h"
#include "sys.h"

struct newobj {
	mode_t mode;        /* type and permission bits */
	dev_t rdev;
	const char *target; /* symlinks */
	int open_flags;     /* regular files from create(): the caller's flags */
	int fd;             /* out: the open file for create() */
};

/* Build the object at dirfd/name. */
static int build(int dirfd, const char *name, struct newobj *o)
{
	switch (o->mode & S_IFMT) {
	case S_IFDIR:
		return um_sys_mkdirat(dirfd, name, o->mode & 07777);
	case S_IFLNK:
		return um_sys_symlinkat(o->target, dirfd, name);
	case S_IFREG:
		if (o->open_flags >= 0) {
			int fd = um_sys_createat(dirfd, name, (o->open_flags & ~UM_FD_FLAGS_DROPPED) | O_EXCL,
						 o->mode & 07777);

			if (fd < 0)
				return fd;
			o->fd = fd;
			return 0;
		}
		return um_sys_mknodat(dirfd, name, o->mode, 0);
	default:
		return um_sys_mknodat(dirfd, name, o->mode, o->rdev);
	}
}

static void unbuild(int dirfd, const char *name, struct newobj *o)
{
	if (o->fd >= 0) {
		(void)close(o->fd);
		o->fd = -1;
	}
	(void)um_sys_unlinkat(dirfd, name, S_ISDIR(o->mode) ? AT_REMOVEDIR : 0);
}

#define ACL_DEFAULT_XATTR "system.posix_acl_default"

/* The upper parent's default ACL, raw: what a new object inherits in
 * place of the caller's umask. Its length (*ret malloc'ed), 0 if it has
 * none, or -errno. */
static int default_acl(int upfd, char **ret)
{
	*ret = NULL;
	for (int tries = 0; tries < 4; tries++) {
		int n = um_sys_lgetxattrat(upfd, "", ACL_DEFAULT_XATTR, NULL, 0);

		if (n == -ENODATA || n == -ENOTSUP || n == 0)
			return 0;
		if (n < 0)
			return n;
		free(*ret);
		*ret = malloc((size_t)n);
		if (!*ret)
			return -ENOMEM;
		n = um_sys_lgetxattrat(upfd, "", ACL_DEFAULT_XATTR, *ret, (size_t)n);
		if (n != -ERANGE)
			return n == -ENODATA ? 0 : n; /* ERANGE: it grew meanwhile */
	}
	return -EAGAIN;
}

/* Over a whiteout the object is made in the work dir, which passes
 * nothing on. With a default ACL to inherit, it is made inside a private
 * directory there carrying that ACL, so that the upper filesystem
 * applies it as it would in place, then moved out to work/tmp. */
static int build_in_work(struct um_fs *fs, const char *tmp, struct newobj *o, const char *acl, size_t acl_len)
{
	char dir[UM_TMPNAME_MAX];
	int dfd, r, e;

	if (!acl_len)
		return build(fs->work_fd, tmp, o);
	um_workdir_tmpname(dir);
	r = um_sys_mkdirat(fs->work_fd, dir, 0700);
	if (r < 0)
		return r;
	r = um_sys_lsetxattrat(fs->work_fd, dir, ACL_DEFAULT_XATTR, acl, acl_len, 0);
	dfd = r < 0 ? r : um_sys_open_dir(fs->work_fd, dir);
	r = dfd < 0 ? dfd : build(dfd, "o", o);
	if (r == 0) {
		r = um_sys_renameat(dfd, "o", fs->work_fd, tmp, RENAME_NOREPLACE);
		if (r < 0)
			unbuild(dfd, "o", o);
	}
	if (dfd >= 0)
		(void)close(dfd);
	/* Left over only if it cannot be removed now: the next mount purges
	 * the work dir. */
	e = um_sys_unlinkat(fs->work_fd, dir, AT_REMOVEDIR);
	if (e < 0)
		um_log(UM_LOG_WARN, "cannot remove %s from the workdir: %s", dir, strerror(-e));
	return r;
}

/* Is name free in dir for a new object? Caller holds dir->lock. */
static int name_free(struct um_inode *dir, int upfd, const char *name, bool *over_whiteout)
{
	struct stat st;
	int r = um_ns_upper_state(upfd, name, &st);

	if (r < 0)
		return r;
	*over_whiteout = r == UM_UPPER_WHITEOUT;
	if (r == UM_UPPER_PRESENT)
		return -EEXIST;
	if (r == UM_UPPER_FALLTHRU) {
		/* One for a name nothing below shows any more (the lowers
		 * changed) stands for nothing: replace it. */
		r = um_ns_lower_probe(dir, name);
		if (r != 0)
			return r < 0 ? r : -EEXIST;
		*over_whiteout = true;
		return 0;
	}
	if (r == UM_UPPER_ABSENT) {
		r = um_ns_lower_visible(dir, name, UM_UPPER_ABSENT);
		if (r != 0)
			return r < 0 ? r : -EEXIST;
	}
	return 0;
}

static int make_entry(fuse_req_t req, struct um_inode *dir, const char *name, struct newobj *o,
		      struct um_inode **ret, struct stat *ret_st)
{
	struct um_fs *fs = um_req_fs(req);
	char tmp[UM_TMPNAME_MAX];
	bool over_wh = false, is_dir = S_ISDIR(o->mode);
	_cleanup_free_ char *acl = NULL;
	uid_t uid;
	gid_t gid;
	int upfd, r, acl_len = 0;

	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	r = um_copyup(fs, dir, 0);
	if (r < 0)
		return r;
	upfd = um_inode_upper_fd(fs, dir);
	if (upfd < 0)
		return upfd;
	r = um_ns_owner(req, upfd, is_dir, &o->mode, &uid, &gid);
	if (r == 0)
		r = acl_len = default_acl(upfd, &acl);
	if (r < 0)
		return r;
	/* The kernel leaves the umask to us when it checks ACLs (ops.c); a
	 * default ACL, applied by the upper filesystem, takes its place. */
	if (acl_len == 0 && !S_ISLNK(o->mode))
		o->mode &= ~(mode_t)(fuse_req_ctx(req)->umask & 0777);

	r = um_inode_wrlock(fs, dir);
	if (r < 0)
		goto out;
	r = name_free(dir, upfd, name, &over_wh);
	if (r < 0)
		goto unlock;
	if (!over_wh) {
		r = build(upfd, name, o);
		if (r < 0)
			goto unlock;
		r = um_ns_own_new(upfd, name, uid, gid, o->mode, ret_st);
		if (r < 0)
			unbuild(upfd, name, o);
	} else {
		um_workdir_tmpname(tmp);
		r = build_in_work(fs, tmp, o, acl, (size_t)acl_len);
		if (r < 0)
			goto unlock;
		r = um_ns_set_owner(fs->work_fd, tmp, uid, gid, o->mode);
		if (r == 0 && is_dir)
			r = um_marker_set_opaque(fs->work_fd, tmp);
		if (r == 0)
			r = um_ns_place(fs, tmp, upfd, name, is_dir, true);
		if (r < 0)
			unbuild(fs->work_fd, tmp, o);
		/* After the rename, which changed its ctime. */
		if (r == 0)
			r = um_sys_lstatat(upfd, name, ret_st);
	}
unlock:
	pthread_rwlock_unlock(&dir->lock);
	um_notify_names_changed(fs, dir);
out:
	if (r == 0)
		r = um_inode_new_upper(fs, dir, name, ret_st, ret);
	if (r == 0) {
		um_inode_fix_attr(*ret, ret_st);
	} else if (o->fd >= 0) {
		(void)close(o->fd);
		o->fd = -1;
	}
	return r;
}

static void reply_new(fuse_req_t req, fuse_ino_t parent, const char *name, struct newobj *o)
{
	struct um_fs *fs = um_req_fs(req);
	struct fuse_entry_param e = { 0 };
	struct um_inode *ino;
	struct stat st;
	int r = make_entry(req, um_req_inode(req, parent), name, o, &ino, &st);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	um_fill_entry(fs, ino, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		um_inode_unref(fs, ino, 1);
}

void um_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct newobj o = { .mode = mode, .rdev = rdev, .open_flags = -1, .fd = -1 };
	struct stat marker = { .st_mode = mode, .st_rdev = rdev };

	/* Those are the whiteout and fallthru formats: the new object
	 * would vanish, or stand for another one. */
	if (S_ISCHR(mode) && (rdev == 0 || um_marker_fallthru_layer(&marker))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	reply_new(req, parent, name, &o);
}

void um_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct newobj o = { .mode = S_IFDIR | (mode & 07777), .open_flags = -1, .fd = -1 };

	reply_new(req, parent, name, &o);
}

void um_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct newobj o = { .mode = S_IFLNK | 0777, .target = link, .open_flags = -1, .fd = -1 };

	reply_new(req, parent, name, &o);
}

void um_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct newobj o = { .mode = S_IFREG | (mode & 07777), .open_flags = fi->flags, .fd = -1 };
	struct fuse_entry_param e = { 0 };
	struct um_inode *ino;
	struct stat st;
	int r = make_entry(req, um_req_inode(req, parent), name, &o, &ino, &st);

	if (r == 0) {
		r = um_file_attach(fs, ino, o.fd, UM_UPPER, &st, fi);
		if (r < 0) {
			(void)close(o.fd);
			um_inode_unref(fs, ino, 1);
		}
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	um_fill_entry(fs, ino, &st, &e);
	/* Just made: nothing has mapped it yet (inode.h, pt_writers). */
	e.attr_timeout = fs->timeout;
	if (um_file_reply_create(req, &e, fi) < 0) {
		um_file_detach(fs, fi);
		um_inode_unref(fs, ino, 1);
	}
}

/* Reach ino through the index, so that every name it gets reaches one
 * object whichever of them goes away. */
static int make_indexed(struct um_fs *fs, struct um_inode *ino)
{
	struct um_loc loc;
	char key[17];
	int r;

	if (um_inode_layer(ino) == UM_LAYER_INDEX)
		return 0;
	r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		return r;
	um_inode_index_name(ino->st_ino, key);
	pthread_rwlock_wrlock(&ino->lock);
	if (ino->layer == UM_UPPER) {
		r = um_sys_linkat(loc.dirfd, loc.name, fs->index_fd, key);
		if (r == 0) {
			ino->layer = UM_LAYER_INDEX;
			ino->lowerlinks = 0;
		}
	}
	pthread_rwlock_unlock(&ino->lock);
	um_loc_release(fs, &loc);
	return r;
}

/* Does indexed ino carry an origin marker (1), none (0), or -errno? */
static int has_origin(struct um_fs *fs, struct um_inode *ino)
{
	char key[17];
	uint64_t origin;

	um_inode_index_name(ino->st_ino, key);
	return um_marker_get_origin(fs->index_fd, key, &origin);
}

void um_op_link(fuse_req_t req, fuse_ino_t nodeid, fuse_ino_t newparent, const char *newname)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid), *dir = um_req_inode(req, newparent);
	struct fuse_entry_param e = { 0 };
	char key[17], tmp[UM_TMPNAME_MAX];
	bool over_wh = false;
	struct stat st;
	int upfd = -EROFS, r;

	if (S_ISDIR(ino->type)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (strlen(newname) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	r = um_copyup(fs, ino, 0);
	if (r == 0)
		r = um_copyup(fs, dir, 0);
	if (r == 0)
		r = make_indexed(fs, ino);
	/* The new name carries the object's origin: its directory must say
	 * so for lookups to read it. An object made in upper has no origin
	 * and its directory needs no mark (nor the trusted.* attribute a
	 * daemon not run as root cannot write); when in doubt, mark. */
	if (r == 0)
		r = has_origin(fs, ino) == 0 ? 0 : um_copyup_mark_impure(fs, dir);
	if (r == 0)
		r = upfd = um_inode_upper_fd(fs, dir);
	if (r >= 0)
		r = um_inode_wrlock(fs, dir);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	um_inode_index_name(ino->st_ino, key);
	r = name_free(dir, upfd, newname, &over_wh);
	if (r == 0 && !over_wh) {
		r = um_sys_linkat(fs->index_fd, key, upfd, newname);
	} else if (r == 0) {
		um_workdir_tmpname(tmp);
		r = um_sys_linkat(fs->index_fd, key, fs->work_fd, tmp);
		if (r == 0 && (r = um_ns_place(fs, tmp, upfd, newname, false, true)) < 0)
			(void)um_sys_unlinkat(fs->work_fd, tmp, 0);
	}
	pthread_rwlock_unlock(&dir->lock);
	um_notify_names_changed(fs, dir);
	if (r == 0)
		r = um_inode_stat(fs, ino, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	um_inode_ref(ino); /* the kernel counts a link's reply as a lookup */
	um_fill_entry(fs, ino, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		um_inode_unref(fs, ino, 1);
}
