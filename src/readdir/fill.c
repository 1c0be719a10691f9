/* The first listing of a merged directory with fallthru=on: merge its
 * parts once more, write a fallthru into upper for every name shown from
 * below, then mark the directory complete (DESIGN.md "readdir and
 * fallthrus"). From then on stream.c lists it in one pass and resolve.c
 * answers absent names from upper alone.
 *
 * Crash safety: the complete mark is written last, so a directory whose
 * filling was interrupted reads as incomplete and is filled again (the
 * fallthrus already there are kept, or fixed). No fsync: the upper
 * filesystems we know (ext4, xfs, btrfs journal metadata in order; tmpfs
 * does not survive anyway) never show the mark after a power cut without
 * the links made before it. Readers and writers of the directory wait on
 * its lock while it is filled. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "copyup/workdir.h"
#include "fallthru.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "namespace.h"
#include "nameset.h"
#include "readdir.h"
#include "sys.h"

#define DENTS_BUF (32 * 1024)

/* name exists in upper already (a crash, a race): keep it when it is the
 * fallthru wanted or a real object; a fallthru of another layer is
 * replaced in one rename. 1 when a fallthru was there, 0, or -errno. */
static int fix_existing(struct um_fs *fs, int upfd, const char *name, unsigned layer)
{
	char tmp[UM_TMPNAME_MAX];
	struct stat st;
	unsigned have;
	int r = um_sys_lstatat(upfd, name, &st);

	if (r < 0)
		return r;
	have = um_marker_fallthru_layer(&st);
	if (!have || have == layer)
		return have != 0;
	um_workdir_tmpname(tmp);
	r = um_ft_write(fs->ft, layer, fs->work_fd, tmp);
	if (r == 0) {
		/* A copy-up (which does not take this directory's lock) may
		 * replace the old one meanwhile: then it wins. */
		r = um_ns_swap_fallthru(fs, tmp, upfd, name);
		if (r != -EIO)
			(void)um_sys_unlinkat(fs->work_fd, tmp, 0);
		if (r == -EEXIST || r == -ENOENT)
			r = 0;
	}
	return r < 0 ? r : 1;
}

struct stale_ctx {
	struct um_fs *fs;
	dev_t dev;
	struct um_nameset *seen;
	const struct um_dirsnap *snap;
};

static int drop_if_stale(void *ctx, int fd, struct dirent64 *d)
{
	const struct stale_ctx *c = ctx;
	unsigned layer;
	uint32_t idx;
	int r = um_ft_classify(c->fs->ft, fd, c->dev, d, &layer);

	if (r != UM_ENT_FALLTHRU)
		return r < 0 ? r : 0;
	r = um_nameset_insert(c->seen, d->d_name, strlen(d->d_name), UM_DIRENT_HIDDEN, &idx);
	if (r < 0)
		return r;
	if (r == 0 && idx != UM_DIRENT_HIDDEN && c->snap->ents[idx].layer == layer)
		return 0;
	r = um_sys_unlinkat(fd, d->d_name, 0);
	return r < 0 ? r : 1;
}

/* Remove the fallthrus of names nothing below shows any more. */
static int drop_stale(struct um_fs *fs, int upfd, struct um_nameset *seen, const struct um_dirsnap *snap)
{
	_cleanup_close_ int fd = um_sys_openat(upfd, ".", O_RDONLY | O_DIRECTORY);
	struct stale_ctx c = { .fs = fs, .seen = seen, .snap = snap };
	struct stat dst;
	int r;

	if (fd < 0)
		return fd;
	r = um_sys_fstat(fd, &dst);
	if (r < 0)
		return r;
	c.dev = dst.st_dev;
	return um_sys_sweep(fd, drop_if_stale, &c);
}

/* An upper directory's origin, which numbers it in a listing of upper
 * alone (stream.c) as lookup does: the number merge.c found from its lower
 * parts or its redirect, or no origin when lookup takes upper's own (its
 * lower part went with a change of the lower list). A damaged one is
 * logged and left for unionctl check. Caller holds dir->lock for writing. */
static int number_dir(struct um_inode *dir, int upfd, const char *name, const struct um_dirent *e)
{
	bool below = e->flags & UM_DIRENT_NUMBERED_BELOW;
	uint64_t have;
	int r;

	if (dir->flags & UM_INO_IMPURE) {
		r = um_marker_get_origin(upfd, name, &have);
		if (r == -EIO)
			um_marker_log_bad(name, UM_XATTR_ORIGIN);
		if (r == -EIO || (r > 0 && below && have == e->ino))
			return 0;
		if (r < 0)
			return r;
		if (r > 0 && !below) {
			r = um_sys_lremovexattrat(upfd, name, UM_XATTR_ORIGIN);
			return r == -ENODATA ? 0 : r;
		}
	}
	if (!below)
		return 0;
	if (!(dir->flags & UM_INO_IMPURE)) {
		r = um_marker_set_impure(upfd, "");
		if (r < 0)
			return r;
		dir->flags |= UM_INO_IMPURE;
	}
	return um_marker_set_origin(upfd, name, e->ino);
}

/* Caller holds dir->lock for writing. */
static int fill_locked(struct um_fs *fs, struct um_inode *dir, int upfd)
{
	struct um_dirsnap snap = { 0 };
	struct um_nameset *seen = NULL;
	size_t matched = 0;
	int r = um_dir_merge_locked(fs, dir, 0, &snap, &seen);

	for (size_t i = 2; r >= 0 && i < snap.n; i++) {
		const struct um_dirent *e = &snap.ents[i];
		const char *name = um_dirent_name(&snap, e);

		if (e->layer != UM_UPPER) {
			r = um_ft_write(fs->ft, e->layer, upfd, name);
			if (r == -EEXIST) {
				r = fix_existing(fs, upfd, name, e->layer);
				matched += r > 0;
			}
		} else if (e->type == DT_DIR) {
			r = number_dir(dir, upfd, name, e);
		}
	}
	/* Fallthrus left by an earlier filling that nothing matched. */
	if (r >= 0 && snap.n_upper_ft > matched)
		r = drop_stale(fs, upfd, seen, &snap);
	um_nameset_free(seen);
	um_dirsnap_release(&snap);
	return r < 0 ? r : 0;
}

int um_dir_fill(struct um_fs *fs, struct um_inode *dir)
{
	struct stat before;
	int upfd, r = um_inode_wrlock(fs, dir);

	if (r < 0)
		return r;
	if ((dir->flags & UM_INO_COMPLETE) || dir->nparts < 2 || dir->parts[0].layer != UM_UPPER)
		goto unlock;
	upfd = dir->parts[0].fd;
	r = um_sys_fstat(upfd, &before);
	if (r < 0)
		goto unlock;
	r = fill_locked(fs, dir, upfd);
	/* Listing changes nothing the union shows: the directory keeps its
	 * times, whether or not the filling went through. */
	{
		int e = um_sys_utimensat(upfd, "", (struct timespec[2]){ before.st_atim, before.st_mtim });

		if (e < 0)
			um_log(UM_LOG_WARN, "fallthrus of '%s': cannot keep its times: %s", dir->name ? dir->name : "/",
			       strerror(-e));
	}
	if (r == 0)
		r = um_marker_set_complete(upfd, "", fs->stackid);
	if (r == 0)
		dir->flags |= UM_INO_COMPLETE;
unlock:
	pthread_rwlock_unlock(&dir->lock);
	return r;
}
