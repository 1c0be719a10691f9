#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ino.h"
#include "inode.h"
#include "resolve.h"
#include "fallthru.h"
#include "marker.h"
#include "nameset.h"
#include "readdir.h"
#include "sys.h"

#define HIDDEN UM_DIRENT_HIDDEN
/* A directory first seen in upper whose number may still come from a
 * same-named directory in a lower part (see um_resolve()). */
#define F_CHAIN_OPEN 1

#define DENTS_BUF (64 * 1024)

void um_dirsnap_release(struct um_dirsnap *snap)
{
	free(snap->ents);
	free(snap->names);
	*snap = (struct um_dirsnap){ 0 };
}

static int snap_add(struct um_dirsnap *snap, const char *name, size_t len, uint64_t ino, uint8_t type, uint16_t layer)
{
	if (snap->n == snap->cap) {
		size_t ncap = snap->cap ? snap->cap * 2 : 64;
		struct um_dirent *ne = realloc(snap->ents, ncap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		snap->ents = ne;
		snap->cap = ncap;
	}
	if (snap->names_cap - snap->names_len < len + 1) {
		size_t ncap = snap->names_cap ? snap->names_cap * 2 : 4096;
		char *nn;

		while (ncap - snap->names_len < len + 1)
			ncap *= 2;
		nn = realloc(snap->names, ncap);
		if (!nn)
			return -ENOMEM;
		snap->names = nn;
		snap->names_cap = ncap;
	}
	memcpy(snap->names + snap->names_len, name, len);
	snap->names[snap->names_len + len] = '\0';
	snap->ents[snap->n] = (struct um_dirent){ .ino = ino, .name_off = (uint32_t)snap->names_len, .type = type,
						  .layer = layer };
	snap->names_len += len + 1;
	return (int)snap->n++;
}

/* One part being listed: its fd and what numbering its entries needs. */
struct listing {
	const struct um_part *part;
	int fd;            /* a fresh open of the part, for getdents */
	dev_t dev;         /* the part's filesystem */
	dev_t layer_dev;   /* the branch root's */
	bool submounts;    /* the branch has mounts inside: dirs may be mount points */
	bool impure;       /* upper part holding entries with an origin (marker.h) */
};

/* The union's number for a listed entry, as lookup would give it. At a
 * mount point getdents reports the covered directory's inode, so in a
 * branch with submounts directories are stat'ed; elsewhere d_ino is it. */
static int entry_ino(const struct listing *ls, const struct dirent64 *d, uint64_t *ret)
{
	struct stat st;
	int r;

	if (!ls->submounts || d->d_type != DT_DIR) {
		*ret = um_ino_encode(ls->part->layer, d->d_ino, ls->dev, ls->layer_dev);
		return 0;
	}
	r = um_sys_lstatat(ls->fd, d->d_name, &st);
	if (r < 0)
		return r;
	*ret = um_ino_encode(ls->part->layer, st.st_ino, st.st_dev, ls->layer_dev);
	return 0;
}

/* A name seen again in a lower part: maybe it gives a directory first
 * seen in upper its number. */
static int merge_again(struct um_dirsnap *snap, uint32_t idx, const struct um_part *upper, const struct listing *ls,
		       const struct dirent64 *d)
{
	struct um_dirent *e = &snap->ents[idx];
	int r;

	if (!(e->flags & F_CHAIN_OPEN))
		return 0;
	e->flags &= ~F_CHAIN_OPEN;
	if (d->d_type != DT_DIR)
		return 0; /* a non-directory (or whiteout) ends that merge */
	r = um_marker_is_opaque(upper->fd, d->d_name);
	if (r < 0)
		return r;
	if (r == 0) {
		r = entry_ino(ls, d, &e->ino);
		e->flags |= UM_DIRENT_NUMBERED_BELOW;
	}
	return r;
}

static int merge_part(const struct um_fs *fs, struct um_dirsnap *snap, struct um_nameset *seen,
		      const struct um_inode *dir, uint16_t i, char *buf)
{
	const struct um_part *p = &dir->parts[i];
	bool impure = dir->flags & UM_INO_IMPURE;
	_cleanup_close_ int fd = um_sys_openat(p->fd, ".", O_RDONLY | O_DIRECTORY);
	struct listing ls = { .part = p, .fd = fd, .layer_dev = fs->layers[p->layer].dev,
			      .submounts = fs->layers[p->layer].submounts,
			      .impure = impure && p->layer == UM_UPPER };
	struct stat pst;
	int r;

	if (fd < 0)
		return fd;
	r = um_sys_fstat(fd, &pst);
	if (r < 0)
		return r;
	ls.dev = pst.st_dev;
	for (;;) {
		int n = um_sys_getdents(fd, buf, DENTS_BUF);

		if (n <= 0)
			return n;
		for (int off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			size_t len = strlen(d->d_name);
			uint8_t type = d->d_type;
			uint64_t ino;
			uint32_t idx;
			int origin;

			off += d->d_reclen;
			if (d->d_name[0] == '.' && (len == 1 || (len == 2 && d->d_name[1] == '.')))
				continue;
			unsigned ftl;

			r = um_ft_classify(fs->ft, fd, ls.dev, d, &ftl);
			if (r == -ENOENT)
				continue; /* gone meanwhile: only possible in upper */
			if (r < 0)
				return r;
			if (r == UM_ENT_FALLTHRU) {
				/* "Visible below": the lower parts will show it. */
				if (p->layer == UM_UPPER)
					snap->n_upper_ft++;
				continue;
			}
			type = r == UM_ENT_WHITEOUT ? DT_WHT : d->d_type;
			r = um_nameset_insert(seen, d->d_name, len, HIDDEN, &idx);
			if (r < 0)
				return r;
			if (r == 0) {
				if (idx != HIDDEN) {
					r = merge_again(snap, idx, &dir->parts[0], &ls, d);
					if (r < 0)
						return r;
				}
				continue;
			}
			if (type == DT_WHT)
				continue; /* hides the name below: stays HIDDEN */
			r = entry_ino(&ls, d, &ino);
			if (r < 0)
				return r;
			origin = 0;
			if (ls.impure && type != DT_DIR) {
				/* Copied up: numbered as lookup numbers it. */
				origin = um_marker_get_origin(fd, d->d_name, &ino);
				/* Damaged: list the name with its upper number (its
				 * lookup fails, resolve.c) rather than fail the whole
				 * directory; never overwrite the evidence. */
				if (origin == -EIO) {
					um_marker_log_bad(d->d_name, UM_XATTR_ORIGIN);
					origin = 1;
				}
				if (origin < 0)
					return origin;
			} else if (type == DT_DIR && p->layer == UM_UPPER) {
				/* Lookup numbers a directory from its lower parts, not
				 * from an origin, which names the layer it had when it
				 * was written: the lower list may have changed since.
				 * A moved one (redirect) from where it came from. */
				origin = um_resolve_redirected_ino(fs, dir, d->d_name, &ino);
				if (origin == -ENOENT)
					continue; /* gone meanwhile */
				if (origin < 0)
					return origin;
			}
			r = snap_add(snap, d->d_name, len, ino, type, p->layer);
			if (r < 0)
				return r;
			if (type == DT_DIR && p->layer == UM_UPPER && origin)
				snap->ents[r].flags |= UM_DIRENT_NUMBERED_BELOW;
			else if (type == DT_DIR && p->layer == UM_UPPER && i + 1 < dir->nparts)
				snap->ents[r].flags |= F_CHAIN_OPEN;
			r = um_nameset_set(seen, d->d_name, len, (uint32_t)r);
			if (r < 0)
				return r;
		}
	}
}

int um_dir_merge(struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino, struct um_dirsnap *ret)
{
	int r = um_inode_rdlock(fs, dir);

	if (r < 0)
		return r;
	r = um_dir_merge_locked(fs, dir, dotdot_ino, ret, NULL);
	pthread_rwlock_unlock(&dir->lock);
	return r;
}

int um_dir_merge_locked(struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino, struct um_dirsnap *ret,
			struct um_nameset **ret_seen)
{
	struct um_dirsnap snap = { 0 };
	struct um_nameset *seen = NULL;
	_cleanup_free_ char *buf = malloc(DENTS_BUF);
	int r;

	if (!buf)
		return -ENOMEM;
	r = um_nameset_new(256, &seen);
	if (r < 0)
		return r;
	if ((r = snap_add(&snap, ".", 1, dir->st_ino, DT_DIR, 0)) < 0 ||
	    (r = snap_add(&snap, "..", 2, dotdot_ino, DT_DIR, 0)) < 0)
		goto fail;

	for (uint16_t i = 0; i < dir->nparts && r >= 0; i++)
		r = merge_part(fs, &snap, seen, dir, i, buf);
	if (r < 0)
		goto fail;

	if (ret_seen)
		*ret_seen = seen;
	else
		um_nameset_free(seen);
	*ret = snap;
	return 0;

fail:
	um_nameset_free(seen);
	um_dirsnap_release(&snap);
	return r;
}
