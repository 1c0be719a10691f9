/* Listing union directories. The in-memory merge (fallthru=off, and
 * read-only unions) builds a snapshot when a listing starts: every
 * visible name once, whiteouts dropped, opaque directories ending the
 * merge; op_dir.c lists it by name hash, and the hashes are the cookies,
 * so they stay valid whatever happens to the directory meanwhile, and
 * mean the same in every listing. */
#ifndef UM_READDIR_H
#define UM_READDIR_H

#include <stddef.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#include "unionmount.h"

struct um_dirent {
	uint64_t ino;      /* the union's st_ino for the name (ino.h) */
	uint32_t name_off; /* into um_dirsnap.names, NUL-terminated */
	uint16_t layer;    /* where it was first seen: the object's layer, or a directory's top part's */
	uint8_t type;      /* DT_* */
	uint8_t flags;     /* UM_DIRENT_*, and merge-internal ones */
};

/* An upper directory numbered from a same-named lower one it merges with
 * (it had no origin marker saying so). */
#define UM_DIRENT_NUMBERED_BELOW 2

struct um_dirsnap {
	struct um_dirent *ents; /* [0] ".", [1] "..", then the names */
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
	size_t n_upper_ft;      /* fallthrus met in the upper part (and passed over) */
};

/* A name's value in the merge's name set when it is hidden (whiteout). */
#define UM_DIRENT_HIDDEN UINT32_MAX

struct um_nameset;

/* Merge DIR's parts into *ret. dotdot_ino is the parent's st_ino. */
int um_dir_merge(struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino, struct um_dirsnap *ret);
/* The same with dir->lock held; *ret_seen (if asked for) maps every name
 * met to its index in ret->ents, or UM_DIRENT_HIDDEN. */
int um_dir_merge_locked(struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino, struct um_dirsnap *ret,
			struct um_nameset **ret_seen);
void um_dirsnap_release(struct um_dirsnap *snap);

static inline const char *um_dirent_name(const struct um_dirsnap *snap, const struct um_dirent *e)
{
	return snap->names + e->name_off;
}

/* Write dir's fallthrus and mark it complete, if it is a merged directory
 * with an upper part not complete yet (fill.c). */
int um_dir_fill(struct um_fs *fs, struct um_inode *dir);

/* Reading a directory from its upper part alone (stream.c): complete
 * directories and directories of upper alone. Not thread-safe: one
 * caller at a time per stream. */
struct um_dirstream;

struct um_listent {
	const char *name; /* valid until the stream moves on */
	uint64_t ino;
	off_t next;       /* the cookie that continues after this entry */
	uint8_t type;
	uint16_t layer;   /* snapshots: the layer of its top-most part; else 0 */
};

int um_dirstream_open(const struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino,
		      struct um_dirstream **ret);
void um_dirstream_close(struct um_dirstream *s);
/* Continue at cookie off (0: the start). */
int um_dirstream_seek(struct um_dirstream *s, off_t off);
/* The same on a new open of the directory, after a change of its names:
 * what this one read ahead (and the upper filesystem may keep per open)
 * can hold names that are gone. */
int um_dirstream_reread(struct um_dirstream *s, off_t off);
/* The next visible entry without consuming it: 1, 0 at the end, -errno. */
int um_dirstream_peek(struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s, struct um_listent *e);
void um_dirstream_advance(struct um_dirstream *s);

/* Free what dir's last listing kept for the next READDIR (op_dir.c). */
void um_dir_listing_drop(struct um_inode *dir);

/* FUSE handlers (op_dir.c), referenced by the ops table. */
void um_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void um_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void um_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void um_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

#endif
