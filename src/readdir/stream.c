/* Listing a directory straight from its upper part: complete directories
 * (fill.c wrote their fallthrus) and directories of upper alone. One pass
 * over one directory, and the cookies are the upper filesystem's own
 * d_off values, so they stay valid across opens and remounts. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "dirfds.h"
#include "fallthru.h"
#include "ino.h"
#include "inode.h"
#include "log.h"
#include "resolve.h"
#include "marker.h"
#include "lowermap.h"
#include "readdir.h"
#include "sys.h"

#define STREAM_BUF (32 * 1024)
/* Fallthrus a listing lstats one by one before it reads their layer's
 * whole directory instead: one getdents pass costs less than an lstat per
 * name once there are more than a few (bench/RESULTS.md, readdir-dropped). */
#define LSTAT_FALLTHRUS 64

/* One lower part's names (lowermap.h). */
struct lowermap {
	unsigned layer;
	bool failed; /* could not be read: lstat each name */
	dev_t dev;
	struct um_lowermap *names;
};

struct um_dirstream {
	int fd;            /* our own open of the upper part: its own offset */
	dev_t dev;         /* the upper part's filesystem */
	off_t pos;         /* cookie of the next entry to hand out (0: start) */
	int len, at;       /* getdents data in buf, and the next entry in it */
	uint64_t self_ino, parent_ino;
	size_t nft;              /* fallthrus met so far */
	struct lowermap *maps;   /* loaded once nft passes LSTAT_FALLTHRUS */
	size_t nmaps;
	char buf[STREAM_BUF];
};

int um_dirstream_open(const struct um_fs *fs, struct um_inode *dir, uint64_t dotdot_ino,
		      struct um_dirstream **ret)
{
	struct um_dirstream *s = calloc(1, sizeof(*s));
	struct stat st;
	int r;

	if (!s)
		return -ENOMEM;
	r = um_inode_rdlock(fs, dir);
	if (r == 0) {
		r = dir->nparts && dir->parts[0].layer == UM_UPPER
			    ? um_sys_openat(dir->parts[0].fd, ".", O_RDONLY | O_DIRECTORY)
			    : -EIO;
		pthread_rwlock_unlock(&dir->lock);
	}
	if (r < 0) {
		free(s);
		return r;
	}
	s->fd = r;
	/* A listing may keep it between READDIRs (op_dir.c): counted with
	 * the parts' fds, so that dirfds.c drops idle listings too. */
	um_dirfds_count(1);
	r = um_sys_fstat(s->fd, &st);
	if (r < 0) {
		um_dirstream_close(s);
		return r;
	}
	s->dev = st.st_dev;
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
	um_dirfds_count(-1);
	for (size_t i = 0; i < s->nmaps; i++) {
		if (s->maps[i].names && um_lowermap_indexed_lookups(s->maps[i].names))
			um_debug("listing: %zu fallthrus of layer %u looked up by name hash (not in order)",
				 um_lowermap_indexed_lookups(s->maps[i].names), s->maps[i].layer);
		um_lowermap_free(s->maps[i].names);
	}
	free(s->maps);
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

int um_dirstream_reread(struct um_dirstream *s, off_t off)
{
	_cleanup_close_ int fd = um_sys_openat(s->fd, ".", O_RDONLY | O_DIRECTORY);
	off_t got;
	int r = fd < 0 ? fd : um_sys_lseek(fd, off, SEEK_SET, &got);

	if (r < 0) {
		/* Out of fds, or a directory we may search but not read (a
		 * daemon not run as root, after a chmod): our own read-ahead
		 * at least goes, on the open we have. Only a hashed ext4
		 * directory's own per-open names at this very position stay. */
		um_debug("listing: cannot reopen a directory to read it afresh: %s", strerror(-r));
		s->pos = -1;
		return um_dirstream_seek(s, off);
	}
	/* Nothing of the old open is read after this: the new one replaces it. */
	(void)close(s->fd);
	s->fd = TAKE_FD(fd);
	s->pos = off;
	s->len = s->at = 0;
	return 0;
}

static int map_read(const struct um_fs *fs, struct um_inode *dir, struct lowermap *m)
{
	_cleanup_close_ int fd = um_inode_rdlock(fs, dir);
	const struct um_part *p;
	struct stat st;
	int r;

	if (fd == 0) {
		fd = -EIO;
		if ((p = um_inode_part_in(dir, m->layer)))
			fd = um_sys_openat(p->fd, ".", O_RDONLY | O_DIRECTORY);
		pthread_rwlock_unlock(&dir->lock);
	}
	if (fd < 0)
		return fd;
	r = um_sys_fstat(fd, &st);
	if (r < 0)
		return r;
	m->dev = st.st_dev;
	return um_lowermap_read(fd, &m->names);
}

/* The map of layer's part, read now if need be; NULL: lstat instead. */
static struct lowermap *map_of(const struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s,
			       unsigned layer)
{
	struct lowermap *maps;
	int r;

	for (size_t i = 0; i < s->nmaps; i++)
		if (s->maps[i].layer == layer)
			return s->maps[i].failed ? NULL : &s->maps[i];
	maps = realloc(s->maps, (s->nmaps + 1) * sizeof(*maps));
	if (!maps)
		return NULL;
	s->maps = maps;
	s->maps[s->nmaps] = (struct lowermap){ .layer = layer };
	r = map_read(fs, dir, &s->maps[s->nmaps]);
	s->maps[s->nmaps].failed = r < 0;
	return s->maps[s->nmaps++].failed ? NULL : &s->maps[s->nmaps - 1];
}

/* From the layer's map: 1 when it answers, 0 when lstat must. */
static int from_map(const struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s, unsigned layer,
		    const char *name, struct um_listent *e)
{
	struct lowermap *m = map_of(fs, dir, s, layer);
	uint64_t ino;
	uint8_t type;

	if (!m || um_lowermap_find(m->names, name, &ino, &type) != 1)
		return 0;
	/* Device nodes may be markers, DT_UNKNOWN says nothing, and at a
	 * mount point getdents shows the covered directory's number. */
	if (um_marker_dtype_may_be_whiteout(type) || (type == DT_DIR && fs->layers[layer].submounts))
		return 0;
	e->type = type;
	e->ino = um_ino_encode(layer, ino, m->dev, fs->layers[layer].dev);
	return 1;
}

/* A fallthru's object: its type and number, from the part of its layer.
 * Not there (the lowers changed, a damaged marker): listed as unknown, and
 * a lookup answers EIO (resolve.c). */
static void fallthru_entry(const struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s, unsigned layer,
			   const char *name, struct um_listent *e)
{
	const struct um_part *p;
	struct stat st;
	int r = -ENOENT;

	if (++s->nft > LSTAT_FALLTHRUS && from_map(fs, dir, s, layer, name, e))
		return;

	if (um_inode_rdlock(fs, dir) == 0) {
		if ((p = um_inode_part_in(dir, layer)))
			r = um_sys_lstatat(p->fd, name, &st);
		pthread_rwlock_unlock(&dir->lock);
	}
	if (r < 0 || um_marker_is_whiteout(&st) || um_marker_fallthru_layer(&st)) {
		e->type = DT_UNKNOWN;
		return;
	}
	e->type = (uint8_t)IFTODT(st.st_mode);
	e->ino = um_ino_encode(layer, st.st_ino, st.st_dev, fs->layers[layer].dev);
}

/* A real upper entry's number, as lookup gives it. */
static int upper_entry(const struct um_fs *fs, struct um_inode *dir, const struct um_dirstream *s, uint16_t flags,
		       const struct dirent64 *d, struct um_listent *e)
{
	uint64_t origin;
	int r = 0;

	e->ino = um_ino_encode(UM_UPPER, d->d_ino, s->dev, fs->layers[UM_UPPER].dev);
	if (fs->layers[UM_UPPER].submounts && d->d_type == DT_DIR) {
		/* A mount point: getdents shows the covered directory. */
		struct stat st;

		r = um_sys_lstatat(s->fd, d->d_name, &st);
		if (r < 0)
			return r;
		e->ino = um_ino_encode(UM_UPPER, st.st_ino, st.st_dev, fs->layers[UM_UPPER].dev);
	}
	if (flags & UM_INO_IMPURE) {
		r = um_marker_get_origin(s->fd, d->d_name, &origin);
		if (r == -EIO) {
			/* Damaged: listed with its upper number, as merge.c does. */
			um_marker_log_bad(d->d_name, UM_XATTR_ORIGIN);
			return 0;
		}
		if (r < 0)
			return r;
		if (r)
			e->ino = origin;
	}
	if (r == 0 && d->d_type == DT_DIR && (flags & UM_INO_OVL_IMPURE)) {
		/* Moved here by kernel overlayfs after this directory was
		 * filled: a redirect and no origin of ours. (Our own moves
		 * write the origin before the redirect; kernel overlayfs
		 * marks the parent it moves into.) */
		r = um_inode_rdlock(fs, dir);
		if (r == 0) {
			r = um_resolve_redirected_ino(fs, dir, d->d_name, &e->ino);
			pthread_rwlock_unlock(&dir->lock);
		}
	}
	return r < 0 ? r : 0;
}

int um_dirstream_peek(struct um_fs *fs, struct um_inode *dir, struct um_dirstream *s, struct um_listent *e)
{
	uint16_t flags = um_inode_flags(dir);

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
			r = upper_entry(fs, dir, s, flags, d, e);
			if (r != -ENOENT)
				return r < 0 ? r : 1;
			/* Removed since getdents saw it: as if it had not been. */
		}
		if (r == UM_ENT_FALLTHRU) {
			fallthru_entry(fs, dir, s, layer, d->d_name, e);
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
