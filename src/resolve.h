/* Name resolution across layers (DESIGN.md "Name resolution"):
 * walk the parent's parts top-down; a whiteout hides everything below; a
 * non-directory ends the walk; a directory merges with same-named
 * directories below until an opaque one or a non-directory. A layer where
 * the name is absent does not end the merge (as in kernel overlayfs).
 * No FUSE and no inode table here: only the branches. */
#ifndef UM_RESOLVE_H
#define UM_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "inode.h"

struct um_found {
	struct stat st;         /* the object, or a directory's top part */
	uint64_t st_ino;        /* the union's number for it (ino.h) */
	uint16_t layer;         /* layer of the object / the top part, or UM_LAYER_INDEX */
	uint16_t nparts;        /* directories only: how many parts */
	uint16_t lowerlinks;    /* indexed objects: see marker.h */
	uint16_t datalayer;     /* a metacopy file: the layer holding its data (st_blocks are from there) */
	/* Directories only: which of the parent's parts hold a part of it,
	 * top-down. Resolution opens nothing, so looking up an object the
	 * inode table already knows costs no fds. */
	uint16_t *from;
	uint16_t nfrom;
	/* A moved directory (redirect marker): its lower parts, found from
	 * the branch roots and already open; they follow the from[] parts. */
	char *redirect;
	struct um_part *rparts;
	uint16_t nrparts;
};

/* Caller holds dir->lock for reading. */
int um_resolve(const struct um_fs *fs, const struct um_inode *dir, const char *name, struct um_found *ret);
/* The same, told by a listing that name's top-most part is in lower layer
 * from_layer (0: nothing known). Only a directory without an upper part
 * takes the hint: nothing can have changed in it since it was listed
 * (lower branches do not change), so the probes of the parts above,
 * which found nothing for the listing, are skipped. */
int um_resolve_from(const struct um_fs *fs, const struct um_inode *dir, const char *name, unsigned from_layer,
		    struct um_found *ret);
/* A listed upper directory `name` of dir that carries a redirect (moved
 * by kernel overlayfs, which writes no origin of ours) is numbered from
 * where it came from, as lookup numbers it: 1 with *ret set, 0 when it
 * has no redirect, or -errno. Caller holds dir->lock for reading. */
int um_resolve_redirected_ino(const struct um_fs *fs, const struct um_inode *dir, const char *name, uint64_t *ret);
/* Open the parts of a directory found in dir (same lock held): returns
 * a new array of f->nparts parts (taking over f->rparts). */
int um_found_open_parts(const struct um_inode *dir, const char *name, struct um_found *f,
			struct um_part **ret_parts);
void um_found_release(struct um_found *f);

/* The lower parts of the directory at absolute lower path PATH ("/a/b"),
 * as kernel overlayfs resolves a redirect: open, top-down; *ret_n may be
 * 0 when nothing is there any more. */
int um_resolve_lower_path(const struct um_fs *fs, const char *path, struct um_part **ret_parts, uint16_t *ret_n);

#endif
