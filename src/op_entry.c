/* lookup, forget, getattr, readlink, statfs, access. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "inode.h"
#include "namespace.h"
#include "ops.h"
#include "readdir/rdplus.h"
#include "sys.h"

void um_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct um_fs *fs = um_req_fs(req);
	struct fuse_entry_param e = { 0 };
	struct um_inode *ino;
	struct stat st;
	struct um_inode *dir = um_req_inode(req, parent);
	int r;

	r = um_inode_lookup(fs, dir, name, &ino, &st);
	/* A file the kernel may have from a listing without attributes: the
	 * caller stats or opens what it lists. (Not a directory: a walker
	 * looks up those it descends into when a plain READDIR, which the
	 * kernel sends for a big directory's later chunks, listed them.) */
	if (r == 0 && !S_ISDIR(st.st_mode) && atomic_load(&dir->lean_listed))
		um_rdplus_looked_up(fs, fuse_req_ctx(req)->pid, dir);

	if (r == -ENOENT) {
		/* nodeid 0 with a timeout: the kernel caches the miss too. */
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	um_fill_entry(fs, ino, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		um_inode_unref(fs, ino, 1); /* not delivered: the kernel did not take it */
}

/* The kernel never looks the root up, so it has no count to give back
 * on it; the root's one reference is the mount's. */
static void forget_one(fuse_req_t req, fuse_ino_t nodeid, uint64_t nlookup)
{
	if (nodeid != FUSE_ROOT_ID)
		um_inode_unref(um_req_fs(req), um_req_inode(req, nodeid), nlookup);
}

void um_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(req, ino, nlookup);
	fuse_reply_none(req);
}

void um_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(req, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void um_op_getattr(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid);
	struct stat st;
	/* A file unlinked while open is still reached (its keep_fd): the
	 * kernel's fstat comes without the handle. */
	int r = um_inode_stat(fs, ino, &st);

	(void)fi;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, um_attr_timeout(fs, ino));
}

void um_op_readlink(fuse_req_t req, fuse_ino_t nodeid)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_loc loc;
	char target[PATH_MAX + 1];
	int r = um_inode_locate(fs, um_req_inode(req, nodeid), &loc);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = um_sys_readlinkat(loc.dirfd, loc.name, target, sizeof(target));
	um_loc_release(fs, &loc);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, target);
}

void um_op_statfs(fuse_req_t req, fuse_ino_t nodeid)
{
	struct um_fs *fs = um_req_fs(req);
	/* Space and inodes that matter are where changes go: the upper
	 * branch; a read-only union reports its top-most lower branch. */
	int fd = fs->has_upper ? fs->layers[UM_UPPER].fd : fs->layers[1].fd;
	struct statvfs sv;
	int r = um_sys_fstatvfs(fd, &sv);

	(void)nodeid;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_statfs(req, &sv);
}

/* Only reached without default_permissions (e.g. a non-root mount): the
 * kernel does the checks itself otherwise. Mirrors the classic owner /
 * group / other test on the backing object's mode. */
static int check_access(fuse_req_t req, const struct stat *st, int mask)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int shift = 0;
	mode_t want = 0;

	if (mask == F_OK)
		return 0;
	if (ctx->uid == 0) {
		/* root may execute only what someone may execute */
		if ((mask & X_OK) && !S_ISDIR(st->st_mode) && !(st->st_mode & 0111))
			return -EACCES;
		return 0;
	}
	if (mask & R_OK)
		want |= 4;
	if (mask & W_OK)
		want |= 2;
	if (mask & X_OK)
		want |= 1;
	if (ctx->uid == st->st_uid)
		shift = 6;
	else if (um_ns_caller_in_group(req, st->st_gid))
		shift = 3;
	return ((st->st_mode >> shift) & want) == want ? 0 : -EACCES;
}

void um_op_access(fuse_req_t req, fuse_ino_t nodeid, int mask)
{
	struct um_fs *fs = um_req_fs(req);
	struct stat st;
	int r = um_inode_stat(fs, um_req_inode(req, nodeid), &st);

	if (r == 0 && (mask & W_OK) && fs->readonly)
		r = -EROFS;
	if (r == 0)
		r = check_access(req, &st, mask);
	fuse_reply_err(req, -r);
}
