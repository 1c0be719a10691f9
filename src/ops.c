/* The operations table, connection setup, and the helpers shared by the
 * handlers. */
#include "ops.h"

#include <errno.h>

#include "inode.h"
#include "log.h"
#include "readahead.h"
#include "readdir/readdir.h"

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t), "a nodeid must hold an inode's address");

struct um_fs *um_req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

struct um_inode *um_req_inode(fuse_req_t req, fuse_ino_t nodeid)
{
	if (nodeid == FUSE_ROOT_ID)
		return um_req_fs(req)->root;
	return (struct um_inode *)(uintptr_t)nodeid;
}

fuse_ino_t um_nodeid(struct um_fs *fs, struct um_inode *ino)
{
	return ino == fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)ino;
}

void um_fill_entry(struct um_fs *fs, struct um_inode *ino, const struct stat *st, struct fuse_entry_param *e)
{
	e->ino = um_nodeid(fs, ino);
	e->generation = 0; /* nodeids are addresses, never reused while the kernel knows them */
	e->attr = *st;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
}

static void um_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct um_fs *fs = userdata;

	/* Lookups in one directory may run in parallel: resolution only takes
	 * the directory's lock for reading. (libfuse 3.14 does not pass this
	 * flag on in its INIT reply, flags 0x40d0f069 in the -d log: the
	 * kernel still serializes them; a newer libfuse will not.) */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Symlinks never change in place (lower is immutable, upper changes
	 * only through this mount, which replaces the inode). */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* O_TRUNC arrives with the open, so the copy-up it triggers can skip
	 * the data instead of copying what a truncate then discards. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Permission checks (default_permissions) must honour the branches'
	 * POSIX ACLs, not the mode bits alone. The kernel then leaves the
	 * umask to us (DONT_MASK): a parent's default ACL replaces it, and
	 * only the upper filesystem, applying it, knows (op_create.c). */
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	um_readahead_raise(fs->mountpoint, conn);
	/* readdirplus: libfuse asks for it in "auto" mode (the kernel uses it
	 * for a directory's first chunk and where entries were looked up). */
	if (fs->readdirplus == UM_RDPLUS_ALWAYS)
		conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	else if (fs->readdirplus == UM_RDPLUS_NEVER)
		conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	/*
	 * Measured and left off: splicing READ replies costs more daemon CPU
	 * than copying them; the writeback cache was slower on every writing
	 * workload, and would leave setuid bits on files written back without
	 * a caller (libfuse 3.14 has no HANDLE_KILLPRIV_V2). libfuse's
	 * max_write (1 MiB) stays. */
}

const struct fuse_lowlevel_ops um_ops = {
	.init = um_op_init,
	.lookup = um_op_lookup,
	.forget = um_op_forget,
	.forget_multi = um_op_forget_multi,
	.getattr = um_op_getattr,
	.setattr = um_op_setattr,
	.readlink = um_op_readlink,
	.mknod = um_op_mknod,
	.mkdir = um_op_mkdir,
	.unlink = um_op_unlink,
	.rmdir = um_op_rmdir,
	.symlink = um_op_symlink,
	.rename = um_op_rename,
	.link = um_op_link,
	.open = um_op_open,
	.read = um_op_read,
	.write_buf = um_op_write_buf,
	.release = um_op_release,
	.fsync = um_op_fsync,
	.opendir = um_op_opendir,
	.readdir = um_op_readdir,
	.readdirplus = um_op_readdirplus,
	.releasedir = um_op_releasedir,
	.fsyncdir = um_op_fsyncdir,
	.statfs = um_op_statfs,
	.setxattr = um_op_setxattr,
	.getxattr = um_op_getxattr,
	.listxattr = um_op_listxattr,
	.removexattr = um_op_removexattr,
	.access = um_op_access,
	.create = um_op_create,
	.fallocate = um_op_fallocate,
	.lseek = um_op_lseek,
	.copy_file_range = um_op_copy_file_range,
};
