/* Every call that would change the union. This version has no copy-up
 * yet, so with an upperdir it refuses changes with EROFS (saying so once
 * in the log) rather than touch a lower branch; a union without upperdir
 * is mounted read-only and the kernel refuses before we are asked.
 * NEEDSWORK: replaced call by call by the write path (copy-up issue). */
#include <errno.h>
#include <stdatomic.h>

#include "log.h"
#include "ops.h"

/* Guards nothing but the one-time warning; atomic, no lock needed. */
static atomic_flag warned = ATOMIC_FLAG_INIT;

static void refuse(fuse_req_t req, const char *op)
{
	if (!atomic_flag_test_and_set(&warned))
		um_log(UM_LOG_WARN, "%s: changes are not supported by this version yet, returning EROFS", op);
	um_debug("%s: EROFS", op);
	fuse_reply_err(req, EROFS);
}

void um_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	refuse(req, "setattr");
}

void um_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	refuse(req, "mknod");
}

void um_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	refuse(req, "mkdir");
}

void um_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	refuse(req, "unlink");
}

void um_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	refuse(req, "rmdir");
}

void um_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	refuse(req, "symlink");
}

void um_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		  unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	refuse(req, "rename");
}

void um_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	refuse(req, "link");
}

void um_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	refuse(req, "create");
}

void um_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off, struct fuse_file_info *fi)
{
	(void)ino, (void)bufv, (void)off, (void)fi;
	refuse(req, "write");
}

void um_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	refuse(req, "fallocate");
}

void um_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	refuse(req, "setxattr");
}

void um_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	refuse(req, "removexattr");
}
