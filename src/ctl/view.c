#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ino.h"
#include "marker.h"
#include "output.h"
#include "sys.h"

void um_ctl_dir_release(struct um_ctl_dir *d)
{
	for (uint16_t i = 0; i < d->n; i++)
		(void)close(d->parts[i].fd);
	free(d->parts);
	free(d->base);
	*d = (struct um_ctl_dir){ 0 };
}

void um_ctl_obj_release(struct um_ctl_obj *o)
{
	um_ctl_dir_release(&o->dir);
	free(o->name);
	free(o->redirect);
	*o = (struct um_ctl_obj){ .kind = UM_CTL_ABSENT, .dirfd = -1 };
}

bool um_ctl_dir_same_parts(const struct um_ctl_dir *a, const struct um_ctl_dir *b)
{
	if (a->n != b->n)
		return false;
	for (uint16_t i = 0; i < a->n; i++)
		if (a->parts[i].layer != b->parts[i].layer || a->parts[i].dev != b->parts[i].dev ||
		    a->parts[i].ino != b->parts[i].ino)
			return false;
	return true;
}

/* Take over fd as the next part of d (which has room: callers size the
 * array for every part the directory can have). */
static int add_part(struct um_ctl_dir *d, int fd, uint16_t layer)
{
	struct stat st;
	int r = um_sys_fstat(fd, &st);

	if (r < 0) {
		(void)close(fd);
		return r;
	}
	d->parts[d->n++] = (struct um_ctl_part){ .fd = fd, .layer = layer, .dev = st.st_dev, .ino = st.st_ino };
	return 0;
}

/* The upper part's marks, as the daemon reads them into a new inode. A
 * complete mark that does not decode makes the daemon fail the lookup;
 * ignoring complete marks, it only counts as none. */
static int read_marks(const struct um_ctl_set *set, struct um_ctl_dir *d, unsigned flags)
{
	int fd = d->parts[0].fd, r;

	if (d->parts[0].layer != UM_UPPER)
		return 0;
	r = um_marker_is_impure(fd, "");
	if (r < 0)
		return r;
	d->impure = r;
	r = um_marker_is_ovl_impure(fd, "");
	if (r < 0)
		return r;
	d->ovl_impure = r;
	r = um_marker_is_complete(fd, "", set->stackid);
	if (r == -EIO)
		return flags & UM_CTL_NO_COMPLETE ? 0 : -EBADMSG;
	if (r < 0)
		return r;
	d->complete = r;
	return 0;
}

int um_ctl_root(const struct um_ctl_set *set, bool with_upper, unsigned flags, struct um_ctl_dir *ret)
{
	struct um_ctl_dir d = { 0 };
	int r = 0;

	d.parts = calloc(set->n_layers, sizeof(*d.parts));
	d.base = strdup("");
	if (!d.parts || !d.base) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned l = with_upper ? 0 : 1; l < set->n_layers && r == 0; l++) {
		int fd = um_sys_openat(set->layers[l].fd, ".", O_RDONLY | O_DIRECTORY);

		r = fd < 0 ? fd : add_part(&d, fd, (uint16_t)l);
	}
	if (r == 0)
		r = read_marks(set, &d, flags);
	if (r < 0)
		goto fail;
	*ret = d;
	return 0;

fail:
	um_ctl_dir_release(&d);
	return r;
}

/* One step of an absolute redirect: NAME below the lower parts in cur,
 * by the rules of the daemon's lower_step() (resolve.c), into next. */
static int lower_step(const struct um_ctl_dir *cur, const char *name, struct um_ctl_dir *next)
{
	int r = 0;

	for (uint16_t i = 0; i < cur->n; i++) {
		struct stat st;
		int fd;

		r = um_sys_lstatat(cur->parts[i].fd, name, &st);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0 || um_marker_is_whiteout(&st) || !S_ISDIR(st.st_mode))
			break;
		fd = um_sys_open_dir(cur->parts[i].fd, name);
		r = fd < 0 ? fd : add_part(next, fd, cur->parts[i].layer);
		if (r == 0)
			r = um_marker_is_opaque(cur->parts[i].fd, name);
		if (r != 0)
			break;
	}
	return r < 0 ? r : 0;
}

/* The lower parts at absolute redirect path ("/a/b") appended to d, as
 * the daemon's um_resolve_lower_path() finds them. */
static int redirect_parts(const struct um_ctl_set *set, const char *path, struct um_ctl_dir *d)
{
	_cleanup_free_ char *copy = strdup(path);
	struct um_ctl_dir cur = { 0 };
	char *save = NULL, *c;
	bool any = false;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	cur.parts = calloc(set->n_layers, sizeof(*cur.parts));
	if (!cur.parts)
		return -ENOMEM;
	for (unsigned l = 1; l < set->n_layers && r == 0; l++) {
		int fd = um_sys_openat(set->layers[l].fd, ".", O_RDONLY | O_DIRECTORY);

		r = fd < 0 ? fd : add_part(&cur, fd, (uint16_t)l);
	}
	for (c = strtok_r(copy, "/", &save); c && r == 0; c = strtok_r(NULL, "/", &save)) {
		struct um_ctl_dir next = { .parts = calloc(set->n_layers, sizeof(*next.parts)) };

		any = true;
		r = next.parts ? lower_step(&cur, c, &next) : -ENOMEM;
		um_ctl_dir_release(&cur);
		cur = next;
	}
	if (r == 0 && !any)
		r = -EBADMSG; /* "/" is no directory anyone moved: the daemon says EIO */
	for (uint16_t i = 0; r == 0 && i < cur.n; i++) {
		d->parts[d->n++] = cur.parts[i];
		cur.parts[i].fd = -1;
	}
	if (r == 0)
		cur.n = 0; /* handed over */
	um_ctl_dir_release(&cur);
	return r;
}

/* A lower file with several names may have been copied up into the
 * index: then that copy is the object (the daemon's found_lower_file). */
static int check_index(const struct um_ctl_set *set, struct um_ctl_obj *o, unsigned flags)
{
	struct stat ist;
	uint64_t key;
	int r;

	if (o->st.st_nlink < 2)
		return 0;
	key = um_ino_encode(o->layer, o->st.st_ino, o->st.st_dev, set->layers[o->layer].dev);
	(void)snprintf(o->index_key, sizeof(o->index_key), "%016llx", (unsigned long long)key);
	if (set->index_fd < 0 || (flags & UM_CTL_NO_INDEX))
		return 0;
	r = um_sys_lstatat(set->index_fd, o->index_key, &ist);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	free(o->name);
	o->name = strdup(o->index_key);
	if (!o->name)
		return -ENOMEM;
	o->dirfd = set->index_fd;
	o->st = ist;
	o->indexed = true;
	return 0;
}

/* The upper part of a directory found in dir: its redirect, read only in
 * an impure parent (ours or kernel overlayfs's), as the daemon reads it. */
static int upper_redirect(const struct um_ctl_dir *dir, int fd, const char *name, char **ret)
{
	char buf[PATH_MAX];
	int r;

	*ret = NULL;
	if (!dir->impure && !dir->ovl_impure)
		return 0;
	r = um_marker_get_redirect(fd, name, buf, sizeof(buf));
	if (r == -EIO)
		return -EBADMSG;
	if (r <= 0)
		return r;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* An upper non-directory in an impure directory: the daemon reads its
 * origin for st_ino, and fails the lookup when it does not decode. */
static int upper_origin(int fd, const char *name, struct um_ctl_obj *o)
{
	uint64_t v;
	int r = um_marker_get_origin(fd, name, &v);

	o->damaged = r == -EIO;
	return r == -EIO ? 0 : r < 0 ? r : 0;
}

static int part_index(const struct um_ctl_dir *dir, unsigned layer)
{
	for (uint16_t i = 0; i < dir->n; i++)
		if (dir->parts[i].layer == layer)
			return i;
	return -1;
}

/* The directory found (parts in o->dir) gets its base and marks. */
static int finish_dir(const struct um_ctl_set *set, const struct um_ctl_dir *dir, const char *name, unsigned flags,
		      struct um_ctl_obj *o)
{
	if (o->redirect && o->redirect[0] == '/')
		o->dir.base = strdup(o->redirect + 1);
	else
		o->dir.base = um_ctl_path_join(dir->base, o->redirect ? o->redirect : name);
	if (!o->dir.base)
		return -ENOMEM;
	o->kind = UM_CTL_DIR;
	return read_marks(set, &o->dir, flags);
}

int um_ctl_resolve(const struct um_ctl_set *set, const struct um_ctl_dir *dir, const char *name, unsigned flags,
		   struct um_ctl_obj *ret)
{
	bool complete = !(flags & UM_CTL_NO_COMPLETE) && dir->complete && dir->n > 0 &&
			dir->parts[0].layer == UM_UPPER;
	struct um_ctl_obj o = { .kind = UM_CTL_ABSENT, .dirfd = -1 };
	const char *lname = name; /* the name in lower parts: a relative redirect changes it */
	unsigned via_fallthru = 0;
	int r = 0;

	/* Room for every part a directory here can have: the parent's, or
	 * an upper one plus every lower from a redirect. */
	o.dir.parts = calloc(dir->n + set->n_layers, sizeof(*o.dir.parts));
	if (!o.dir.parts)
		return -ENOMEM;
	for (int i = 0; i < dir->n; i++) {
		const struct um_ctl_part *p = &dir->parts[i];
		const char *pname = p->layer == UM_UPPER ? name : lname;
		struct stat st;
		unsigned ftl;
		int fd;

		r = um_sys_lstatat(p->fd, pname, &st);
		if (r == -ENOENT) {
			r = 0;
			if (i == 0 && complete)
				break; /* complete: absent from upper is absent */
			continue;
		}
		if (r < 0)
			goto fail;
		if (um_marker_is_whiteout(&st))
			break;
		ftl = um_marker_fallthru_layer(&st);
		if (ftl && i == 0 && complete) {
			int k = part_index(dir, ftl);

			via_fallthru = ftl;
			if (k <= 0)
				break;
			i = k - 1;
			continue;
		}
		if (ftl)
			continue; /* elsewhere a fallthru only says "look below" */
		if (!S_ISDIR(st.st_mode)) {
			if (o.dir.n > 0)
				break; /* a non-directory below a directory ends the merge */
			o.kind = UM_CTL_FILE;
			o.st = st;
			o.layer = p->layer;
			o.dirfd = p->fd;
			o.name = strdup(pname);
			r = o.name ? 0 : -ENOMEM;
			if (r == 0 && p->layer != UM_UPPER)
				r = check_index(set, &o, flags);
			else if (r == 0 && dir->impure)
				r = upper_origin(p->fd, pname, &o);
			if (r < 0)
				goto fail;
			free(o.dir.parts);
			o.dir.parts = NULL;
			*ret = o;
			return 0;
		}
		fd = um_sys_open_dir(p->fd, pname);
		r = fd < 0 ? fd : add_part(&o.dir, fd, p->layer);
		if (r < 0)
			goto fail;
		if (o.dir.n == 1) {
			o.st = st;
			o.layer = p->layer;
		}
		if (p->layer == UM_UPPER) {
			r = upper_redirect(dir, p->fd, name, &o.redirect);
			if (r < 0)
				goto fail;
			if (o.redirect && o.redirect[0] == '/') {
				/* Its lower parts are elsewhere: nothing below here
				 * under this name belongs to it. */
				r = redirect_parts(set, o.redirect, &o.dir);
				if (r < 0)
					goto fail;
				break;
			}
			if (o.redirect)
				lname = o.redirect;
		}
		if (i + 1 == dir->n)
			break;
		r = um_marker_is_opaque(p->fd, pname);
		if (r < 0)
			goto fail;
		if (r)
			break;
	}
	if (o.dir.n == 0) {
		um_ctl_obj_release(&o);
		o.lost_layer = via_fallthru;
		*ret = o;
		return 0;
	}
	r = finish_dir(set, dir, name, flags, &o);
	if (r < 0)
		goto fail;
	*ret = o;
	return 0;

fail:
	um_ctl_obj_release(&o);
	return r;
}

int um_ctl_resolve_path(const struct um_ctl_set *set, const struct um_ctl_dir *root, const char *path,
			struct um_ctl_obj *ret)
{
	_cleanup_free_ char *copy = strdup(path);
	struct um_ctl_obj cur = { .kind = UM_CTL_ABSENT, .dirfd = -1 };
	const struct um_ctl_dir *at = root;
	char *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct um_ctl_obj next;

		r = um_ctl_resolve(set, at, c, UM_CTL_NO_INDEX, &next);
		um_ctl_obj_release(&cur);
		if (r < 0)
			return r;
		cur = next;
		if (cur.kind != UM_CTL_DIR) {
			um_ctl_obj_release(&cur);
			break;
		}
		at = &cur.dir;
	}
	*ret = cur;
	return 0;
}
