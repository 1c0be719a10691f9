#include "resolve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ino.h"
#include "marker.h"
#include "sys.h"

void um_found_release(struct um_found *f)
{
	free(f->from);
	f->from = NULL;
	f->nparts = 0;
}

int um_found_open_parts(const struct um_inode *dir, const char *name, const struct um_found *f,
			struct um_part **ret_parts)
{
	struct um_part *parts = calloc(f->nparts, sizeof(*parts));
	uint16_t i;
	int r = 0;

	if (!parts)
		return -ENOMEM;
	for (i = 0; i < f->nparts; i++) {
		const struct um_part *p = &dir->parts[f->from[i]];

		r = um_sys_open_dir(p->fd, name);
		if (r < 0)
			break;
		parts[i] = (struct um_part){ .fd = r, .layer = p->layer };
	}
	if (r >= 0) {
		*ret_parts = parts;
		return 0;
	}
	while (i--)
		(void)close(parts[i].fd);
	free(parts);
	return r;
}

int um_resolve(const struct um_fs *fs, const struct um_inode *dir, const char *name, struct um_found *ret)
{
	struct um_found f = { 0 };
	uint64_t lower_ino = 0;
	dev_t lower_dev = 0;
	uint16_t lower_layer = 0;
	int r;

	for (uint16_t i = 0; i < dir->nparts; i++) {
		const struct um_part *p = &dir->parts[i];
		dev_t ldev = fs->layers[p->layer].dev;
		struct stat st;

		r = um_sys_lstatat(p->fd, name, &st);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
		if (um_marker_is_whiteout(&st))
			break;
		if (!S_ISDIR(st.st_mode)) {
			if (f.nparts > 0)
				break; /* a non-directory below a directory ends the merge */
			f.st = st;
			f.layer = p->layer;
			f.st_ino = um_ino_encode(p->layer, st.st_ino, st.st_dev, ldev);
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
		f.from[f.nparts++] = i;
		if (f.nparts == 1) {
			f.st = st;
			f.layer = p->layer;
		}
		if (p->layer != UM_UPPER && lower_layer == 0) {
			lower_layer = p->layer;
			lower_ino = st.st_ino;
			lower_dev = st.st_dev;
		}
		if (i + 1 == dir->nparts)
			break; /* nothing below to hide: skip the xattr read */
		r = um_marker_is_opaque(p->fd, name);
		if (r < 0) {
			/* lstat just saw it: a failure here is an I/O problem, and
			 * must not read as "absent" (the kernel would cache that). */
			r = r == -ENOENT ? -EIO : r;
			goto fail;
		}
		if (r)
			break;
	}
	if (f.nparts == 0)
		return -ENOENT;

	/* A merged directory takes its top-most lower part's number, so it
	 * keeps it when it later gains an upper part. */
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
