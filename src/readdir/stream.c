/* Listing a directory straight from its upper part: complete directories
 * (fill.c wrote their fallthrus) and directories of upper alone. One pass
 * over one directory, and the cookies are the upper filesystem's own
 * d_off values, so they stay valid across opens and remounts. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fallthru.h"
#include "ino.h"
#include "inode.h"
#include "marker.h"
#include "readdir.h"
#include "sys.h"

#define STREAM_BUF (32 * 1024)

struct um_dirstream {
	int fd;            /* our own open of the upper part: its own offset */
	dev_t dev;         /* the upper part's filesystem */
	off_t pos;         /* cookie of the next entry to hand out (0: start) */
	int len, at;       /* getdents data in buf, and the next entry in it */
	uint64_t self_ino, parent_ino;
	char buf[STREAM_BUF];
};

int um_dirstream_open(struct um_inode *dir, uint64_t dotdot_ino, struct um_dirstream **ret)
{
	struct um_dirstream *s = malloc(sizeof(*s));
	struct stat st;
	int r;

	if (!s)
		return -ENOMEM;
	pthread_rwlock_rdlock(&dir->lock);
	r = dir->nparts && dir->parts[0].layer == UM_UPPER ? um_sys_openat(dir->parts[0].fd, ".", O_RDONLY | O_DIRECTORY)
							  : -EIO;
	pthread_rwlock_unlock(&dir->lock);
	if (r < 0) {
		free(s);
		return r;
	}
	s->fd = r;
	r = um_sys_fstat(s->fd, &st);
	if (r < 0) {
		um_dirstream_close(s);
		return r;
	}
	s->dev = st.st_dev;
	s->pos = 0;
	s->len = s->at = 0;
	s->self_ino = dir->st_ino;
	s->parent_ino = dotdot_ino;
	*ret = s;
	return 0;
}

void um_dirstream_close(struct um_dirstream *s)
{
	if (!s)
		return;
	(void)close(s->fd);
	free(s);
}

int um_dirstream_seek(struct um_dirstream *s, off_t off)
{
	off_t got;
	int r;

	if (off == s->pos)
		return 0;
	r = um_sys_lseek(s->fd, off, SEEK_SET, &got);
	if (r < 0)
		return r;
	s->pos = off;
	s->len = s->at = 0;
	return 0;
}

/* A fallthru's object: its type and number, from the part of its layer.
 * Not there (the lowers changed, a damaged marker): listed as unknown, and
 * a lookup answers EIO (resolve.c). */
static void fallthru_entry(const struct um_fs *fs, struct um_inode *dir, unsigned layer, const char *name,
			   struct um_listent *e)
{
	struct stat st;
	int r = -ENOENT;

	pthread_rwlock_rdlock(&dir->lock);
	for (uint16_t i = 0; i < dir->nparts; i++) {
		if (dir->parts[i].layer == layer) {
			r = um_sys_lstatat(dir->parts[i].fd, name, &st);
			break;
		}
	}
	pthread_rwlock_unlock(&dir->lock);
	if (r < 0 || um_marker_is_whiteout(&st) || um_marker_fallthru_layer(&st)) {
		e->type = DT_UNKNOWN;
		return;
	}
	e->type = (uint8_t)IFTODT(st.st_mode);
	e->ino = um_ino_encode(layer, st.st_ino, st.st_dev, fs->layers[layer].dev);
}

/* A real upper entry's number, as lookup gives it. */
static int upper_entry(const struct um_fs *fs, const struct um_dirstream *s, bool impure, const struct dirent64 *d,
		       struct um_listent *e)
{
	uint64_t origin;
	int r;

	e->ino = um_ino_encode(UM_UPPER, d->d_ino, s->dev, fs->layers[UM_UPPER].dev);
	if (fs->layers[UM_UPPER].submounts && d->d_type == DT_DIR) {
		/* A mount point: getdents shows the covered directory. */
		struct stat st;

		r = um_sys_lstatat(s->fd, d->d_name, &st);
		if (r < 0)
			return r;
		e->ino = um_ino_encode(UM_UPPER, st.st_ino, st.st_dev, fs->layers[UM_UPPER].dev);
	}
	if (impure) {
		r = um_marker_get_origin(s->fd, d->d_name, &origin);
		if (r < 0)
			return r;
		if (r)
			e->ino = origin;
	}
	return 0;
}

int um_dirstream_peek(struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s, struct um_listent *e)
{
	bool impure = um_inode_flags(dir) & UM_INO_IMPURE;

	for (;;) {
		struct dirent64 *d;
		unsigned layer = 0;
		int r;

		if (s->at >= s->len) {
			s->len = um_sys_getdents(s->fd, s->buf, sizeof(s->buf));
			s->at = 0;
			if (s->len <= 0)
				return s->len;
		}
		d = (struct dirent64 *)(s->buf + s->at);
		e->name = d->d_name;
		e->next = d->d_off;
		e->type = d->d_type;
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) {
			e->ino = d->d_name[1] ? s->parent_ino : s->self_ino;
			return 1;
		}
		r = um_ft_classify(fs->ft, s->fd, s->dev, d, &layer);
		if (r == UM_ENT_PLAIN) {
			e->type = d->d_type;
			r = upper_entry(fs, s, impure, d, e);
			return r < 0 ? r : 1;
		}
		if (r == UM_ENT_FALLTHRU) {
			fallthru_entry(fs, dir, layer, d->d_name, e);
			if (e->type == DT_UNKNOWN)
				e->ino = um_ino_encode(UM_UPPER, d->d_ino, s->dev, fs->layers[UM_UPPER].dev);
			return 1;
		}
		if (r < 0 && r != -ENOENT)
			return r;
		um_dirstream_advance(s); /* a whiteout, or gone meanwhile */
	}
}

void um_dirstream_advance(struct um_dirstream *s)
{
	struct dirent64 *d = (struct dirent64 *)(s->buf + s->at);

	s->pos = d->d_off;
	s->at += d->d_reclen;
}
