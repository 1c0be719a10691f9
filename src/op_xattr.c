/* getxattr, listxattr, setxattr, removexattr; internal markers never
 * show and cannot be set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "copyup/copyup.h"
#include "inode.h"
#include "marker.h"
#include "ops.h"
#include "sys.h"

void um_op_getxattr(fuse_req_t req, fuse_ino_t nodeid, const char *name, size_t size)
{
	struct um_fs *fs = um_req_fs(req);
	_cleanup_free_ char *buf = NULL;
	struct um_loc loc;
	int r;

	if (um_marker_is_internal_xattr(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = um_inode_locate(fs, um_req_inode(req, nodeid), &loc);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = um_sys_lgetxattrat(loc.dirfd, loc.name, name, buf, size);
	um_loc_release(fs, &loc);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

/* Read the whole list (retrying if it grows meanwhile) and drop the
 * internal names in place. Returns the filtered length. */
static int list_visible(int dirfd, const char *name, char **ret_list)
{
	_cleanup_free_ char *list = NULL;
	int n, len = 0;

	for (;;) {
		n = um_sys_llistxattrat(dirfd, name, NULL, 0);
		if (n <= 0)
			break;
		free(list);
		list = malloc((size_t)n);
		if (!list)
			return -ENOMEM;
		n = um_sys_llistxattrat(dirfd, name, list, (size_t)n);
		if (n != -ERANGE)
			break;
	}
	if (n < 0)
		return n;
	for (int i = 0; i < n;) {
		size_t l = strlen(list + i) + 1;

		if (!um_marker_is_internal_xattr(list + i)) {
			memmove(list + len, list + i, l);
			len += (int)l;
		}
		i += (int)l;
	}
	*ret_list = TAKE_PTR(list);
	return len;
}

void um_op_listxattr(fuse_req_t req, fuse_ino_t nodeid, size_t size)
{
	struct um_fs *fs = um_req_fs(req);
	_cleanup_free_ char *list = NULL;
	struct um_loc loc;
	int r = um_inode_locate(fs, um_req_inode(req, nodeid), &loc);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = list_visible(loc.dirfd, loc.name, &list);
	um_loc_release(fs, &loc);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else if ((size_t)r > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, (size_t)r);
}

/* Copy up, then change the upper object's xattrs. Internal names are
 * the union's own: a user can neither forge nor remove markers. */
static int change_xattr(fuse_req_t req, fuse_ino_t nodeid, const char *name, const char *value, size_t size,
			int flags, bool remove)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid);
	struct um_loc loc;
	int r;

	if (um_marker_is_internal_xattr(name))
		return -EPERM;
	r = um_copyup(fs, ino, UM_COPYUP_META);
	if (r == 0)
		r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		return r;
	/* Not around a metacopy file's data copy, which copies the xattrs
	 * and then replaces the file (op_attr.c apply()). */
	pthread_rwlock_rdlock(&ino->lock);
	if (remove)
		r = um_sys_lremovexattrat(loc.dirfd, loc.name, name);
	else
		r = um_sys_lsetxattrat(loc.dirfd, loc.name, name, value, size, flags);
	pthread_rwlock_unlock(&ino->lock);
	um_loc_release(fs, &loc);
	if (r == 0)
		um_notify_attrs_changed(fs, ino);
	return r;
}

void um_op_setxattr(fuse_req_t req, fuse_ino_t nodeid, const char *name, const char *value, size_t size, int flags)
{
	fuse_reply_err(req, -change_xattr(req, nodeid, name, value, size, flags, false));
}

void um_op_removexattr(fuse_req_t req, fuse_ino_t nodeid, const char *name)
{
	fuse_reply_err(req, -change_xattr(req, nodeid, name, NULL, 0, 0, true));
}
