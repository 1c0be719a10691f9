/* FUSE request handlers: um_op_<name>() for each operation, referenced
 * only by the table in ops.c, plus the few helpers every handler needs.
 * Handlers are the only callers of fuse_reply_*(), and each replies
 * exactly once. */
#ifndef UM_OPS_H
#define UM_OPS_H

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include "unionmount.h"

struct um_inode;

extern const struct fuse_lowlevel_ops um_ops;

struct um_fs *um_req_fs(fuse_req_t req);
struct um_inode *um_req_inode(fuse_req_t req, fuse_ino_t nodeid);
fuse_ino_t um_nodeid(struct um_fs *fs, struct um_inode *ino);
/* After a change of ino's attributes that the kernel learns of without
 * new ones (rename, xattrs: its ctime) or not at all (a copy-up's new
 * upper file): see ops.c. */
void um_notify_attrs_changed(struct um_fs *fs, struct um_inode *ino);
/* After a change of dir's names, before the reply: count it (its
 * names_version, for listings under way) and make the kernel drop its
 * cached listing of dir (see ops.c). Call without dir's lock. */
void um_notify_names_changed(struct um_fs *fs, struct um_inode *dir);
/* Only the latter: the kernel's listing of dir is to be read again
 * (its fallthrus are to be written, or its files' attributes given),
 * though no name changed. */
void um_notify_listing_dropped(struct um_fs *fs, struct um_inode *dir);
/* How long the kernel may cache ino's attributes: cache_timeout, but 0
 * while ino is open for writing through passthrough, and a second at
 * most once it was (inode.h, pt_writers). */
double um_attr_timeout(struct um_fs *fs, struct um_inode *ino);
/* Fill a lookup reply for ino (which carries the reference passed on). */
void um_fill_entry(struct um_fs *fs, struct um_inode *ino, const struct stat *st, struct fuse_entry_param *e);

/* op_entry.c */
void um_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void um_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void um_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void um_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void um_op_readlink(fuse_req_t req, fuse_ino_t ino);
void um_op_statfs(fuse_req_t req, fuse_ino_t ino);
void um_op_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* op_file.c */
void um_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void um_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void um_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void um_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void um_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void um_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

void um_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off, struct fuse_file_info *fi);
void um_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi);
void um_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			   fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags);

/* op_xattr.c */
void um_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void um_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void um_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags);
void um_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* op_attr.c */
void um_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);

/* op_create.c */
void um_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void um_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void um_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void um_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void um_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);

/* op_remove.c */
void um_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void um_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
/* ino lost a name (unlink, rename over it); was_lower: that name was
 * only in a lower branch. Drops it from the table with its last name. */
int um_name_gone(struct um_fs *fs, struct um_inode *ino, bool was_lower);

/* op_rename.c */
void um_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		  unsigned int flags);

#endif
