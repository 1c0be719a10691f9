#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ino.h"
#include "log.h"
#include "marker.h"
#include "sys.h"

static void close_parts(struct um_part *parts, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		(void)close(parts[i].fd);
	free(parts);
}

void um_found_release(struct um_found *f)
{
	free(f->from);
	free(f->redirect);
	if (f->rparts)
		close_parts(f->rparts, f->nrparts);
	f->from = NULL;
	f->redirect = NULL;
	f->rparts = NULL;
	f->nparts = f->nfrom = f->nrparts = 0;
}

int um_found_open_parts(const struct um_inode *dir, const char *name, struct um_found *f,
			struct um_part **ret_parts)
{
	struct um_part *parts = calloc(f->nparts, sizeof(*parts));
	const char *lname = f->redirect && !strchr(f->redirect, '/') ? f->redirect : name;
	uint16_t i;
	int r = 0;

	if (!parts)
		return -ENOMEM;
	for (i = 0; i < f->nfrom; i++) {
		const struct um_part *p = &dir->parts[f->from[i]];

		r = um_sys_open_dir(p->fd, p->layer == UM_UPPER ? name : lname);
		if (r < 0)
			break;
		parts[i] = (struct um_part){ .fd = r, .layer = p->layer };
	}
	if (r >= 0) {
		/* The redirect's parts change hands: f no longer closes them. */
		if (f->nrparts)
			memcpy(&parts[f->nfrom], f->rparts, f->nrparts * sizeof(*parts));
		free(f->rparts);
		f->rparts = NULL;
		f->nrparts = 0;
		*ret_parts = parts;
		return 0;
	}
	while (i--)
		(void)close(parts[i].fd);
	free(parts);
	return r;
}

/* One step of a lower path: NAME below the parts in cur (owned or not),
 * by the merge rules, into a new array. */
static int lower_step(const struct um_part *cur, uint16_t n, const char *name, struct um_part **ret, uint16_t *ret_n)
{
	struct um_part *next = calloc(n ? n : 1, sizeof(*next));
	uint16_t k = 0;
	int r = 0;

	if (!next)
		return -ENOMEM;
	for (uint16_t i = 0; i < n; i++) {
		struct stat st;

		r = um_sys_lstatat(cur[i].fd, name, &st);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0 || um_marker_is_whiteout(&st) || !S_ISDIR(st.st_mode))
			break;
		r = um_sys_open_dir(cur[i].fd, name);
		if (r < 0)
			break;
		next[k++] = (struct um_part){ .fd = r, .layer = cur[i].layer };
		r = um_marker_is_opaque(cur[i].fd, name);
		if (r != 0)
			break;
	}
	if (r < 0) {
		close_parts(next, k);
		return r;
	}
	*ret = next;
	*ret_n = k;
	return 0;
}

int um_resolve_lower_path(const struct um_fs *fs, const char *path, struct um_part **ret_parts, uint16_t *ret_n)
{
	_cleanup_free_ char *copy = strdup(path);
	const struct um_inode *root = fs->root;
	struct um_part *cur = NULL;
	uint16_t n = 0;
	char *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	/* The root's lower parts: the root never changes its parts. */
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct um_part *next;
		uint16_t nn;

		if (!cur) {
			uint16_t first = root->nparts && root->parts[0].layer == UM_UPPER ? 1 : 0;

			r = lower_step(&root->parts[first], (uint16_t)(root->nparts - first), c, &next, &nn);
		} else {
			r = lower_step(cur, n, c, &next, &nn);
			close_parts(cur, n);
		}
		if (r < 0)
			return r;
		cur = next;
		n = nn;
	}
	if (!cur)
		return -EIO; /* "/" is not a directory anyone moved */
	*ret_parts = cur;
	*ret_n = n;
	return 0;
}

/* The index entry key (lstat'ed as *ist) is the object f found. */
static int use_index(const struct um_fs *fs, const char *key, const struct stat *ist, struct um_found *f)
{
	int r = um_marker_get_lowerlinks(fs->index_fd, key);

	if (r == -EIO)
		um_marker_log_bad(key, UM_XATTR_LOWERLINKS);
	if (r < 0)
		return r;
	f->lowerlinks = (uint16_t)r;
	f->layer = UM_LAYER_INDEX;
	f->st = *ist;
	return 0;
}

/* An upper file copied up without its data: the data is the same name in
 * the first lower part of dir that has it, and must be the object the
 * origin (f->st_ino) names; anything else is a changed lower stack. */
static int found_metacopy(const struct um_fs *fs, const struct um_inode *dir, const char *name, struct um_found *f)
{
	for (uint16_t i = 1; i < dir->nparts; i++) {
		const struct um_part *p = &dir->parts[i];
		struct stat st;
		int r = um_sys_lstatat(p->fd, name, &st);

		if (r == -ENOENT || (r == 0 && um_marker_fallthru_layer(&st)))
			continue; /* a lower fallthru only says "look below" */
		if (r < 0)
			return r;
		if (S_ISREG(st.st_mode) &&
		    um_ino_encode(p->layer, st.st_ino, st.st_dev, fs->layers[p->layer].dev) == f->st_ino) {
			/* Size and blocks are the data's (du, and a copy that a
			 * crash cut short in the workdir never shows). */
			f->datalayer = p->layer;
			f->st.st_size = st.st_size;
			f->st.st_blocks = st.st_blocks;
			return 0;
		}
		break;
	}
	um_log(UM_LOG_ERR, "'%s': copied up without its data (metacopy), and the lower file holding it is gone or another (a lowerdir changed while unmounted?); it fails with EIO",
	       name);
	return -EIO;
}

/* An upper non-directory: its number (origin if copied up), and the index
 * entry when it has several names. Caller holds dir->lock for reading. */
static int found_upper_file(const struct um_fs *fs, const struct um_inode *dir, const struct um_part *p,
			    const char *name, struct um_found *f)
{
	uint64_t origin;
	int r = 0;

	f->st_ino = um_ino_encode(UM_UPPER, f->st.st_ino, f->st.st_dev, fs->layers[UM_UPPER].dev);
	/* Only directories we marked hold copied-up objects: an ordinary
	 * upper file costs nothing beyond its lstat. */
	if (dir->flags & UM_INO_IMPURE) {
		r = um_marker_get_origin(p->fd, name, &origin);
		if (r == -EIO)
			um_marker_log_bad(name, UM_XATTR_ORIGIN);
		if (r < 0)
			return r;
		if (r)
			f->st_ino = origin;
		/* Only a copy carries a metacopy mark: one getxattr more for
		 * copied-up files, none for the others. */
		if (r && S_ISREG(f->st.st_mode)) {
			r = um_marker_is_metacopy(p->fd, name);
			if (r > 0)
				r = found_metacopy(fs, dir, name, f);
			if (r < 0)
				return r;
		}
	}
	if (f->st.st_nlink > 1 && fs->index_fd >= 0 && !fs->readonly) {
		char key[17];
		struct stat ist;

		um_inode_index_name(f->st_ino, key);
		r = um_sys_lstatat(fs->index_fd, key, &ist);
		if (r == -ENOENT) {
			/* Hard links made without us: index them now so every name
			 * reaches one object however the others go. A concurrent
			 * lookup of another name may win the race: same result. */
			r = um_sys_linkat(p->fd, name, fs->index_fd, key);
			if (r == 0 || r == -EEXIST)
				r = um_sys_lstatat(fs->index_fd, key, &ist);
		}
		if (r < 0)
			return r;
		if (ist.st_ino != f->st.st_ino)
			return -EIO; /* the index names another object */
		return use_index(fs, key, &ist, f);
	}
	return 0;
}

/* A lower non-directory with several names may have been copied up into
 * the index already: then that copy is the object. */
static int found_lower_file(const struct um_fs *fs, struct um_found *f)
{
	char key[17];
	struct stat ist;
	int r;

	if (f->st.st_nlink < 2 || fs->index_fd < 0)
		return 0;
	um_inode_index_name(f->st_ino, key);
	r = um_sys_lstatat(fs->index_fd, key, &ist);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : use_index(fs, key, &ist, f);
}

/* An upper directory in an impure parent (ours, or one kernel overlayfs
 * marked when it moved a directory there): where it was moved from. An
 * absolute redirect supplies the lower parts. */
static int found_upper_dir(const struct um_fs *fs, const struct um_inode *dir, const struct um_part *p,
			   const char *name, struct um_found *f)
{
	char buf[PATH_MAX];
	int r;

	if (!(dir->flags & (UM_INO_IMPURE | UM_INO_OVL_IMPURE)))
		return 0;
	r = um_marker_get_redirect(p->fd, name, buf, sizeof(buf));
	if (r == -EIO)
		um_marker_log_bad(name, UM_XATTR_REDIRECT);
	if (r <= 0)
		return r;
	f->redirect = strdup(buf);
	if (!f->redirect)
		return -ENOMEM;
	if (buf[0] != '/')
		return 0;
	r = um_resolve_lower_path(fs, buf, &f->rparts, &f->nrparts);
	if (r == -EIO)
		um_marker_log_bad(name, UM_XATTR_REDIRECT);
	return r;
}

int um_resolve_redirected_ino(const struct um_fs *fs, const struct um_inode *dir, const char *name, uint64_t *ret)
{
	struct um_found f = { 0 };
	char buf[PATH_MAX];
	int r;

	if (!(dir->flags & (UM_INO_IMPURE | UM_INO_OVL_IMPURE)) || dir->nparts == 0 || dir->parts[0].layer != UM_UPPER)
		return 0;
	r = um_marker_get_redirect(dir->parts[0].fd, name, buf, sizeof(buf));
	if (r <= 0)
		return r == -EIO ? 0 : r; /* damaged: its lookup says so (found_upper_dir) */
	r = um_resolve(fs, dir, name, &f);
	if (r == 0)
		*ret = f.st_ino;
	um_found_release(&f);
	/* A redirect that leads nowhere: listed with its upper number, its
	 * lookup says what is wrong, and the rest of the listing stands. */
	if (r < 0 && r != -ENOMEM && r != -ENOENT)
		return 0;
	return r < 0 ? r : 1;
}

int um_resolve(const struct um_fs *fs, const struct um_inode *dir, const char *name, struct um_found *ret)
{
	return um_resolve_from(fs, dir, name, 0, ret);
}

int um_resolve_from(const struct um_fs *fs, const struct um_inode *dir, const char *name, unsigned from_layer,
		    struct um_found *ret)
{
	/* A complete directory answers from upper: absent there is absent,
	 * and a fallthru says in which part to look. */
	bool complete = (dir->flags & UM_INO_COMPLETE) && dir->nparts > 0 && dir->parts[0].layer == UM_UPPER;
	unsigned via_fallthru = 0;
	struct um_found f = { 0 };
	const char *lname = name; /* the name in lower parts: a redirect may change it */
	uint64_t lower_ino = 0;
	dev_t lower_dev = 0;
	uint16_t lower_layer = 0, first = 0;
	int r;

	if (from_layer != 0 && dir->nparts > 0 && dir->parts[0].layer != UM_UPPER) {
		const struct um_part *k = um_inode_part_in(dir, from_layer);

		first = k ? (uint16_t)(k - dir->parts) : 0;
	}
	for (uint16_t i = first; i < dir->nparts; i++) {
		const struct um_part *p = &dir->parts[i];
		const char *pname = p->layer == UM_UPPER ? name : lname;
		dev_t ldev = fs->layers[p->layer].dev;
		struct stat st;

		unsigned ftl;

		r = um_sys_lstatat(p->fd, pname, &st);
		if (r == -ENOENT && i == 0 && complete)
			return -ENOENT;
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
		if (um_marker_is_whiteout(&st))
			break;
		ftl = um_marker_fallthru_layer(&st);
		if (ftl && i == 0 && complete) {
			const struct um_part *k = um_inode_part_in(dir, ftl);

			via_fallthru = ftl;
			if (!k || k == dir->parts)
				break;
			i = (uint16_t)(k - dir->parts - 1);
			continue;
		}
		if (ftl)
			continue; /* elsewhere a fallthru only says "look below" */
		if (!S_ISDIR(st.st_mode)) {
			if (f.nparts > 0)
				break; /* a non-directory below a directory ends the merge */
			f.st = st;
			f.layer = p->layer;
			if (p->layer == UM_UPPER) {
				r = found_upper_file(fs, dir, p, name, &f);
			} else {
				f.st_ino = um_ino_encode(p->layer, st.st_ino, st.st_dev, ldev);
				r = found_lower_file(fs, &f);
			}
			if (r < 0)
				goto fail;
			*ret = f;
			return 0;
		}

		if (!f.from) {
			f.from = calloc(dir->nparts - i, sizeof(*f.from));
			if (!f.from) {
				r = -ENOMEM;
				goto fail;
			}
		}
		f.from[f.nfrom++] = i;
		f.nparts++;
		if (f.nparts == 1) {
			f.st = st;
			f.layer = p->layer;
		}
		if (p->layer != UM_UPPER && lower_layer == 0) {
			lower_layer = p->layer;
			lower_ino = st.st_ino;
			lower_dev = st.st_dev;
		}
		if (p->layer == UM_UPPER) {
			r = found_upper_dir(fs, dir, p, name, &f);
			if (r < 0)
				goto fail;
			if (f.redirect && f.redirect[0] == '/') {
				/* Its lower parts are elsewhere: nothing below here
				 * under this name belongs to it. */
				f.nparts = (uint16_t)(f.nparts + f.nrparts);
				if (f.nrparts) {
					struct stat lst;

					r = um_sys_fstat(f.rparts[0].fd, &lst);
					if (r < 0)
						goto fail;
					lower_layer = f.rparts[0].layer;
					lower_ino = lst.st_ino;
					lower_dev = lst.st_dev;
				}
				break;
			}
			if (f.redirect)
				lname = f.redirect;
		}
		if (i + 1 == dir->nparts)
			break; /* nothing below to hide: skip the xattr read */
		r = um_marker_is_opaque(p->fd, pname);
		if (r < 0) {
			/* lstat just saw it: a failure here is an I/O problem, and
			 * must not read as "absent" (the kernel would cache that). */
			r = r == -ENOENT ? -EIO : r;
			goto fail;
		}
		if (r)
			break;
	}
	if (f.nparts == 0 && via_fallthru) {
		/* The lowers changed under a complete directory, or the marker
		 * is damaged: say so rather than hide the name silently. */
		um_log(UM_LOG_ERR, "'%s': its fallthru says layer %u, which does not have it (a lowerdir changed while unmounted?)", name,
		       via_fallthru);
		return -EIO;
	}
	if (f.nparts == 0)
		return -ENOENT;

	/* A merged directory takes its top-most lower part's number, so it
	 * keeps it when it later gains an upper part, or moves. */
	if (lower_layer)
		f.st_ino = um_ino_encode(lower_layer, lower_ino, lower_dev, fs->layers[lower_layer].dev);
	else
		f.st_ino = um_ino_encode(f.layer, f.st.st_ino, f.st.st_dev, fs->layers[f.layer].dev);
	*ret = f;
	return 0;

fail:
	um_found_release(&f);
	return r;
}
