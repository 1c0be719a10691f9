/* Name resolution across layers (DESIGN.md "Name resolution"):
 * walk the parent's parts top-down; a whiteout hides everything below; a
 * non-directory ends the walk; a directory merges with same-named
 * directories below until an opaque one or a non-directory. A layer where
 * the name is absent does not end the merge (as in kernel overlayfs).
 * No FUSE and no inode table here: only the branches. */
#ifndef UM_RESOLVE_H
#define UM_RESOLVE_H

#include <stdint.h>
#include <sys/stat.h>

#include "inode.h"

struct um_found {
	struct stat st;         /* the object, or a directory's top part */
	uint64_t st_ino;        /* the union's number for it (ino.h) */
	uint16_t layer;         /* layer of the object / the top part */
	uint16_t nparts;        /* directories only: how many parts */
	/* Directories only: which of the parent's parts hold a part of it,
	 * top-down. Resolution opens nothing, so looking up an object the
	 * inode table already knows costs no fds. */
	uint16_t *from;
};

/* Caller holds dir->lock for reading. */
int um_resolve(const struct um_fs *fs, const struct um_inode *dir, const char *name, struct um_found *ret);
/* Open the parts of a directory found in dir (same lock held): returns
 * a new array of f->nparts parts. */
int um_found_open_parts(const struct um_inode *dir, const char *name, const struct um_found *f,
			struct um_part **ret_parts);
void um_found_release(struct um_found *f);

#endif
