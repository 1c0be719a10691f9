/* A union directory tree as the daemon shows it, computed offline from
 * the branches: the rules of src/resolve.c (DESIGN.md "Name resolution")
 * without an inode table. A whiteout hides everything below it; a
 * non-directory ends the walk; a directory merges with the directories
 * below until an opaque one; a redirect on an upper directory says where
 * its lower parts are; in a complete directory a name upper lacks is
 * absent and a fallthru resolves directly in its layer.
 *
 * Two views are built from one branch set: the union (upper included)
 * and the lowers alone (what the union would show with an empty upper),
 * which is what `unionctl diff` compares it with.
 *
 * Errors are -errno; -EBADMSG means a marker on the way does not decode
 * (the daemon answers EIO there), so the caller can tell a damaged upper
 * from an I/O problem. */
#ifndef UM_CTL_VIEW_H
#define UM_CTL_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "branches.h"

struct um_ctl_part {
	int fd;         /* the directory in that layer, owned */
	uint16_t layer;
	dev_t dev;      /* its identity, to tell whether two views share it */
	ino_t ino;
};

struct um_ctl_dir {
	struct um_ctl_part *parts; /* top-down */
	uint16_t n;
	/* Marks of the upper part, as the daemon reads them when it makes
	 * the directory's inode: complete for this stack, impure (ours, and
	 * kernel overlayfs's, which only makes redirects count). */
	bool complete;
	bool impure;
	bool ovl_impure;
	/* Where its lower parts are: the path in the lowers ("" for the
	 * root, no leading '/') that a redirect, or the names on the way,
	 * lead to. For the lowers' own view, its path. */
	char *base;
};

enum um_ctl_kind {
	UM_CTL_ABSENT,
	UM_CTL_FILE, /* any non-directory */
	UM_CTL_DIR,
};

struct um_ctl_obj {
	enum um_ctl_kind kind;
	struct stat st;      /* the object; a directory's top part */
	uint16_t layer;      /* its layer, or the top part's */
	/* Non-directories: where to read it. dirfd is borrowed from the
	 * parent's part (or the index), valid while the parent is. */
	int dirfd;
	char *name;
	bool indexed;        /* a lower file whose copy in the index is the object */
	char index_key[17];  /* lower files with several names: their index entry name */
	struct um_ctl_dir dir; /* directories */
	char *redirect;      /* directories: the upper part's redirect, when honoured */
	/* Non-directories: a marker on it does not decode (an origin in an
	 * impure directory): the daemon fails lookups of it with EIO. */
	bool damaged;
	/* Absent because a fallthru in a complete directory names a layer
	 * without it (the daemon fails such a lookup with EIO). */
	unsigned lost_layer;
};

/* Resolution flags. */
enum um_ctl_resolve_flags {
	/* Ignore complete marks: every layer is asked (what a fresh listing
	 * would merge). Directories with an upper part get the same parts
	 * either way; only names upper lacks or shows by fallthru differ. */
	UM_CTL_NO_COMPLETE = 1,
	/* The lowers' own view: a lower file is itself, never its copy in
	 * the index. */
	UM_CTL_NO_INDEX = 2,
};

/* The root: upper (when with_upper) over every lowerdir. An opaque mark
 * on a branch root is ignored, as the daemon ignores it. */
int um_ctl_root(const struct um_ctl_set *set, bool with_upper, unsigned flags, struct um_ctl_dir *ret);
/* NAME in dir: *ret (kind UM_CTL_ABSENT when not visible), or -errno. */
int um_ctl_resolve(const struct um_ctl_set *set, const struct um_ctl_dir *dir, const char *name, unsigned flags,
		   struct um_ctl_obj *ret);
/* The lowers' directory at path ("a/b") from the lowers' root view
 * (resolved with UM_CTL_NO_INDEX): *ret ABSENT when there is none. */
int um_ctl_resolve_path(const struct um_ctl_set *set, const struct um_ctl_dir *root, const char *path,
			struct um_ctl_obj *ret);
void um_ctl_obj_release(struct um_ctl_obj *o);
void um_ctl_dir_release(struct um_ctl_dir *d);

/* Do two directories have the same parts (same layers, same objects)? */
bool um_ctl_dir_same_parts(const struct um_ctl_dir *a, const struct um_ctl_dir *b);

#endif
