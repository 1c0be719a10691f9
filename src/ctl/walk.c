#include "walk.h"

#include <errno.h>
#include <string.h>

#include "names.h"
#include "output.h"

/* Deeper than this is a loop or a hostile tree, not a directory hierarchy
 * anyone built; each level holds a few fds per layer. */
#define MAX_DEPTH 4096

struct walker {
	const struct um_ctl_walk *w;
	struct um_ctl_path upath;
	struct um_ctl_path bpath;
};

static int walk_dir(struct walker *k, const struct um_ctl_dir *u, const struct um_ctl_dir *b, unsigned depth);

static int collect(struct um_ctl_names *ns, const struct um_ctl_dir *d)
{
	int r = 0;

	for (uint16_t i = 0; d && i < d->n && r == 0; i++)
		r = um_ctl_names_read_dir(ns, d->parts[i].fd, 0);
	return r;
}

/* Walk into the directories of one entry (paths already pushed). */
static int descend(struct walker *k, const struct um_ctl_obj *uo, const struct um_ctl_obj *bo, unsigned depth)
{
	const struct um_ctl_dir *ud = uo->kind == UM_CTL_DIR ? &uo->dir : NULL;
	const struct um_ctl_dir *bd = bo->kind == UM_CTL_DIR ? &bo->dir : NULL;

	if (!ud && !bd)
		return 0;
	return walk_dir(k, ud, bd, depth + 1);
}

/* The lowers' directory a directory moved here came from, when it still
 * is one: *ret DIR, else ABSENT (then it pairs by name as any other). */
static int moved_source(struct walker *k, const struct um_ctl_obj *uo, struct um_ctl_obj *ret)
{
	ret->kind = UM_CTL_ABSENT;
	if (!k->w->broot || uo->kind != UM_CTL_DIR || !strcmp(uo->dir.base, um_ctl_path_str(&k->bpath)))
		return 0;
	return um_ctl_resolve_path(k->w->set, k->w->broot, uo->dir.base, ret);
}

static int visit(struct walker *k, const struct um_ctl_dir *u, const struct um_ctl_dir *b, const char *name,
		 unsigned depth)
{
	const struct um_ctl_walk *w = k->w;
	struct um_ctl_obj uo = { .kind = UM_CTL_ABSENT, .dirfd = -1 };
	struct um_ctl_obj bo = { .kind = UM_CTL_ABSENT, .dirfd = -1 };
	struct um_ctl_obj from = { .kind = UM_CTL_ABSENT, .dirfd = -1 };
	size_t umark, bmark;
	int r;

	r = um_ctl_path_push(&k->upath, name, &umark);
	if (r < 0)
		return r;
	r = um_ctl_path_push(&k->bpath, name, &bmark);
	if (r < 0)
		goto pop_u;
	if (u)
		r = um_ctl_resolve(w->set, u, name, w->flags, &uo);
	if (r == 0 && b)
		r = um_ctl_resolve(w->set, b, name, UM_CTL_NO_INDEX, &bo);
	if (r == 0)
		r = moved_source(k, &uo, &from);
	if (r < 0) {
		r = r == -ENOMEM ? r : w->ops->error(w->ctx, um_ctl_path_str(&k->upath), r);
		goto release;
	}
	if (uo.kind == UM_CTL_ABSENT && bo.kind == UM_CTL_ABSENT && !uo.lost_layer)
		goto release;
	r = w->ops->entry(w->ctx, um_ctl_path_str(&k->upath), um_ctl_path_str(&k->bpath), &uo, &bo,
			  from.kind == UM_CTL_DIR ? from.dir.base : NULL);
	if (r > 0) {
		if (from.kind == UM_CTL_DIR) {
			/* The moved directory's names pair with where they came
			 * from; afterwards the parent's lowers path comes back. */
			struct um_ctl_path saved = k->bpath;

			k->bpath = (struct um_ctl_path){ 0 };
			r = um_ctl_path_set(&k->bpath, from.dir.base);
			if (r == 0)
				r = walk_dir(k, uo.kind == UM_CTL_DIR ? &uo.dir : NULL, &from.dir, depth + 1);
			um_ctl_path_release(&k->bpath);
			k->bpath = saved;
		} else {
			r = descend(k, &uo, &bo, depth);
		}
	}
release:
	um_ctl_obj_release(&from);
	um_ctl_obj_release(&bo);
	um_ctl_obj_release(&uo);
	um_ctl_path_pop(&k->bpath, bmark);
pop_u:
	um_ctl_path_pop(&k->upath, umark);
	return r < 0 ? r : 0;
}

static int walk_dir(struct walker *k, const struct um_ctl_dir *u, const struct um_ctl_dir *b, unsigned depth)
{
	const struct um_ctl_walk *w = k->w;
	struct um_ctl_names ns = { 0 };
	int r = 0;

	if (depth > MAX_DEPTH)
		return w->ops->error(w->ctx, um_ctl_path_str(&k->upath), -ELOOP);
	if (w->ops->dir) {
		r = w->ops->dir(w->ctx, um_ctl_path_str(&k->upath), u, b);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	r = collect(&ns, u);
	if (r == 0)
		r = collect(&ns, b);
	if (r < 0) {
		um_ctl_names_release(&ns);
		return r == -ENOMEM ? r : w->ops->error(w->ctx, um_ctl_path_str(&k->upath), r);
	}
	um_ctl_names_sort(&ns);
	um_ctl_names_uniq(&ns);
	for (size_t i = 0; i < ns.n && r == 0; i++)
		r = visit(k, u, b, ns.v[i].name, depth);
	um_ctl_names_release(&ns);
	return r;
}

int um_ctl_walk_run(const struct um_ctl_walk *w, const struct um_ctl_dir *u, const struct um_ctl_dir *b)
{
	struct walker k = { .w = w };
	int r = um_ctl_path_set(&k.upath, "");

	if (r == 0)
		r = um_ctl_path_set(&k.bpath, "");
	if (r == 0)
		r = walk_dir(&k, u, b, 0);
	um_ctl_path_release(&k.upath);
	um_ctl_path_release(&k.bpath);
	return r;
}
