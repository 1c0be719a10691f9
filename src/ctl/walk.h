/* A depth-first walk over a union view, optionally paired with the
 * lowers' own view: every name visible in either, in byte order, each
 * directory's names before the next directory's (so output comes out
 * sorted and stable). A directory moved with a redirect is paired with
 * the lowers' directory it came from, not with whatever the lowers have
 * under its new name. */
#ifndef UM_CTL_WALK_H
#define UM_CTL_WALK_H

#include <stdbool.h>

#include "view.h"

struct um_ctl_walk_ops {
	/* A name visible in u or in b (the other ABSENT). upath is its path
	 * in the union, bpath the path in the lowers it is compared with.
	 * moved_from: u is a directory moved from there (its base), and b
	 * is the lowers' directory there rather than the one at bpath.
	 * Returns 1 to walk into the directories among u and b, 0 not to,
	 * or -errno to stop the walk. */
	int (*entry)(void *ctx, const char *upath, const char *bpath, const struct um_ctl_obj *u,
		     const struct um_ctl_obj *b, const char *moved_from);
	/* Entering a directory of the union (u) and its lowers' counterpart
	 * (b, NULL when there is none), before its names. Optional. 0 to go
	 * on, 1 to skip its names, -errno to stop. */
	int (*dir)(void *ctx, const char *upath, const struct um_ctl_dir *u, const struct um_ctl_dir *b);
	/* A name that could not be resolved or a directory not listed (err
	 * < 0). Returns 0 to go on without it, -errno to stop. */
	int (*error)(void *ctx, const char *upath, int err);
};

struct um_ctl_walk {
	const struct um_ctl_set *set;
	const struct um_ctl_walk_ops *ops;
	void *ctx;
	unsigned flags;                /* enum um_ctl_resolve_flags, for the union side */
	const struct um_ctl_dir *broot; /* the lowers' root view; NULL: no pairing */
};

/* Walk u (the union's root, may be NULL) paired with b (the lowers'
 * root, may be NULL). 0, or the first -errno a callback stopped with. */
int um_ctl_walk_run(const struct um_ctl_walk *w, const struct um_ctl_dir *u, const struct um_ctl_dir *b);

#endif
