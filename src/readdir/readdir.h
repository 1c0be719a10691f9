/* Listing union directories. The in-memory merge (fallthru=off, and
 * read-only unions) builds one snapshot per open handle: every visible
 * name once, whiteouts dropped, opaque directories ending the merge;
 * cookies are positions in the snapshot, so they stay valid for the life
 * of the handle whatever happens to the directory meanwhile. */
#ifndef UM_READDIR_H
#define UM_READDIR_H

#include <stddef.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#include "unionmount.h"

struct um_dirent {
	uint64_t ino;      /* the union's st_ino for the name (ino.h) */
	uint32_t name_off; /* into um_dirsnap.names, NUL-terminated */
	uint8_t type;      /* DT_* */
	uint8_t flags;     /* merge-internal */
};

struct um_dirsnap {
	struct um_dirent *ents; /* [0] ".", [1] "..", then the names */
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
};

/* Merge DIR's parts into *ret. dotdot_ino is the parent's st_ino. */
int um_dir_merge(struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino, struct um_dirsnap *ret);
void um_dirsnap_release(struct um_dirsnap *snap);

static inline const char *um_dirent_name(const struct um_dirsnap *snap, const struct um_dirent *e)
{
	return snap->names + e->name_off;
}

/* FUSE handlers (dirstream.c), referenced by the ops table. */
void um_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void um_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void um_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void um_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

#endif
