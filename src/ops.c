/* The operations table, connection setup, and the helpers shared by the
 * handlers. */
#include "ops.h"

#include <errno.h>
#include <string.h>

#include "dirfds.h"
#include "inflight.h"
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

/* The kernel drops ino's cached ctime after a rename or an xattr change
 * (STATX_CTIME), but without the version bump that makes it discard
 * older replies: a GETATTR, LOOKUP or READDIRPLUS reply about ino read
 * before the change (through a file handle, or another name of a
 * hard-linked file, which no directory lock orders with it) and arriving
 * after it would be cached as current for cache_timeout. An invalidation
 * from here bumps that version. ENOENT: the kernel has forgotten ino. */
void um_notify_attrs_changed(struct um_fs *fs, struct um_inode *ino)
{
	int r = fs->se ? fuse_lowlevel_notify_inval_inode(fs->se, um_nodeid(fs, ino), -1, 0) : 0;

	if (r < 0 && r != -ENOENT)
		um_debug("cannot invalidate the kernel's attributes of inode %#llx: %s", (unsigned long long)ino->st_ino,
			 strerror(-r));
}

/* The kernel checks its cached listing of a directory for changes only
 * when a listing starts at position 0 and finds it complete. A listing
 * begun before a change that reads its last (empty) chunk after it marks
 * the cache complete, and a listing opened after the change but started
 * while it was incomplete goes on to read the old names from it. Dropping
 * the cached pages (offset 0) before the change is answered closes that:
 * a listing that misses a page goes on from the daemon at its cookie
 * (where names_version makes a handle that read before the change read
 * again). Only if a READDIR was answered since the last drop: else there
 * is nothing cached. A failed drop leaves the mark for the next change. */
void um_notify_names_changed(struct um_fs *fs, struct um_inode *dir)
{
	/* Not under dir's lock: the kernel runs no READDIR of dir until
	 * this change is answered, and READDIR alone reads the count. */
	atomic_fetch_add(&dir->names_version, 1);
	um_notify_listing_dropped(fs, dir);
}

void um_notify_listing_dropped(struct um_fs *fs, struct um_inode *dir)
{
	int r;

	if (!fs->se || !atomic_exchange(&dir->listed, false))
		return;
	r = fuse_lowlevel_notify_inval_inode(fs->se, um_nodeid(fs, dir), 0, 0);
	if (r < 0 && r != -ENOENT) {
		atomic_store(&dir->listed, true);
		um_debug("cannot drop the kernel's listing of directory %#llx: %s", (unsigned long long)dir->st_ino,
			 strerror(-r));
	}
}

/* inode.h, pt_written: how stale a write through a mapping left after
 * the close may show. */
#define UM_PT_WRITTEN_TIMEOUT 1.0

double um_attr_timeout(struct um_fs *fs, struct um_inode *ino)
{
	if (atomic_load(&ino->pt_writers))
		return 0;
	if (atomic_load(&ino->pt_written) && fs->timeout > UM_PT_WRITTEN_TIMEOUT)
		return UM_PT_WRITTEN_TIMEOUT;
	return fs->timeout;
}

void um_fill_entry(struct um_fs *fs, struct um_inode *ino, const struct stat *st, struct fuse_entry_param *e)
{
	e->ino = um_nodeid(fs, ino);
	e->generation = 0; /* nodeids are addresses, never reused while the kernel knows them */
	e->attr = *st;
	e->attr_timeout = um_attr_timeout(fs, ino);
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
	/* A directory open then costs the kernel no round trip, and its
	 * close none: a listing keeps what it needs in the directory itself
	 * (readdir/op_dir.c). Half of a warm tree walk's requests otherwise. */
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		fs->no_opendir = true;
	}
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
	 * a caller (written back, a WRITE carries no caller to judge; see
	 * devio.c for the HANDLE_KILLPRIV_V2 libfuse 3.14 cannot offer).
	 * libfuse's max_write (1 MiB) stays. */
}

/* Every handler runs as a request in flight (inflight.h): directory fds
 * it reads stay open until it returns, even if dirfds.c closes them
 * meanwhile. Handlers reply before they return. Before that, while it
 * holds nothing, a request may have to close unused directories' fds
 * (dirfds.h). */
#define IN_FLIGHT(op, params, args)                  \
	static void inflight_##op params                 \
	{                                                \
		um_dirfds_help(fuse_req_userdata(req)); \
		um_inflight_enter();                     \
		um_op_##op args;                         \
		um_inflight_leave();                     \
	}
IN_FLIGHT(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
IN_FLIGHT(forget, (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup), (req, ino, nlookup))
IN_FLIGHT(forget_multi, (fuse_req_t req, size_t count, struct fuse_forget_data *forgets), (req, count, forgets))
IN_FLIGHT(getattr, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
IN_FLIGHT(readlink, (fuse_req_t req, fuse_ino_t ino), (req, ino))
IN_FLIGHT(statfs, (fuse_req_t req, fuse_ino_t ino), (req, ino))
IN_FLIGHT(access, (fuse_req_t req, fuse_ino_t ino, int mask), (req, ino, mask))
IN_FLIGHT(open, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
IN_FLIGHT(read, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi), (req, ino, size, off, fi))
IN_FLIGHT(release, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
IN_FLIGHT(lseek, (fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi), (req, ino, off, whence, fi))
IN_FLIGHT(fsync, (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi), (req, ino, datasync, fi))
IN_FLIGHT(fsyncdir, (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi), (req, ino, datasync, fi))
IN_FLIGHT(write_buf, (fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off, struct fuse_file_info *fi), (req, ino, bufv, off, fi))
IN_FLIGHT(fallocate, (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi), (req, ino, mode, offset, length, fi))
IN_FLIGHT(copy_file_range, (fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags), (req, ino_in, off_in, fi_in, ino_out, off_out, fi_out, len, flags))
IN_FLIGHT(getxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size), (req, ino, name, size))
IN_FLIGHT(listxattr, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
IN_FLIGHT(setxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags), (req, ino, name, value, size, flags))
IN_FLIGHT(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))
IN_FLIGHT(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi), (req, ino, attr, to_set, fi))
IN_FLIGHT(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev), (req, parent, name, mode, rdev))
IN_FLIGHT(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode), (req, parent, name, mode))
IN_FLIGHT(symlink, (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name), (req, link, parent, name))
IN_FLIGHT(link, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname), (req, ino, newparent, newname))
IN_FLIGHT(create, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi), (req, parent, name, mode, fi))
IN_FLIGHT(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
IN_FLIGHT(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
IN_FLIGHT(rename, (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags), (req, parent, name, newparent, newname, flags))
IN_FLIGHT(opendir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
IN_FLIGHT(readdir, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi), (req, ino, size, off, fi))
IN_FLIGHT(readdirplus, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi), (req, ino, size, off, fi))
IN_FLIGHT(releasedir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

const struct fuse_lowlevel_ops um_ops = {
	.init = um_op_init,
	.lookup = inflight_lookup,
	.forget = inflight_forget,
	.forget_multi = inflight_forget_multi,
	.getattr = inflight_getattr,
	.setattr = inflight_setattr,
	.readlink = inflight_readlink,
	.mknod = inflight_mknod,
	.mkdir = inflight_mkdir,
	.unlink = inflight_unlink,
	.rmdir = inflight_rmdir,
	.symlink = inflight_symlink,
	.rename = inflight_rename,
	.link = inflight_link,
	.open = inflight_open,
	.read = inflight_read,
	.write_buf = inflight_write_buf,
	.release = inflight_release,
	.fsync = inflight_fsync,
	.opendir = inflight_opendir,
	.readdir = inflight_readdir,
	.readdirplus = inflight_readdirplus,
	.releasedir = inflight_releasedir,
	.fsyncdir = inflight_fsyncdir,
	.statfs = inflight_statfs,
	.setxattr = inflight_setxattr,
	.getxattr = inflight_getxattr,
	.listxattr = inflight_listxattr,
	.removexattr = inflight_removexattr,
	.access = inflight_access,
	.create = inflight_create,
	.fallocate = inflight_fallocate,
	.lseek = inflight_lseek,
	.copy_file_range = inflight_copy_file_range,
};
