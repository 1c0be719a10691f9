#include "copyup/copyup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "copyup/attrs.h"
#include "copyup/data.h"
#include "copyup/workdir.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "namespace.h"
#include "ops.h"
#include "sys.h"

static bool has_upper(struct um_inode *ino)
{
	if (S_ISDIR(ino->type))
		return ino->nparts && ino->parts[0].layer == UM_UPPER;
	return ino->layer == UM_UPPER || ino->layer == UM_LAYER_INDEX;
}

/* A metacopy file whose caller needs its data in upper. */
static bool needs_data(const struct um_inode *ino, unsigned flags)
{
	return ino->datalayer && !(flags & UM_COPYUP_META);
}

/* Where a non-directory's data is: the layer it was found in, or for a
 * metacopy file the lower layer under its upper copy. */
static uint16_t data_layer(const struct um_inode *ino)
{
	return ino->datalayer ? ino->datalayer : ino->layer;
}

int um_copyup_mark_impure(struct um_fs *fs, struct um_inode *dir)
{
	int fd, r;

	if (um_inode_flags(dir) & UM_INO_IMPURE)
		return 0;
	fd = um_inode_upper_fd(fs, dir);
	if (fd < 0)
		return fd;
	r = um_marker_set_impure(fd, "");
	if (r == 0)
		um_inode_set_flags(dir, UM_INO_IMPURE, 0);
	return r;
}

/* The object's content in work/tmp: data, or the symlink, or the node. */
static int build_object(struct um_fs *fs, int srcdir, const char *name, const struct stat *st, const char *tmp,
			unsigned flags, bool meta)
{
	_cleanup_close_ int src = -1, dst = -1;
	char target[PATH_MAX + 1];
	int r;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		dst = um_sys_createat(fs->work_fd, tmp, O_EXCL | O_WRONLY, 0600);
		if (dst < 0)
			return dst;
		if (meta)
			return um_sys_ftruncate(dst, st->st_size); /* a hole: the data stays below */
		if ((flags & UM_COPYUP_NODATA) || st->st_size == 0)
			return 0;
		src = um_sys_openat(srcdir, name, O_RDONLY);
		if (src < 0)
			return src;
		r = um_copy_data(src, dst, st->st_size);
		/* Before the rename publishes it: see copyup.h. */
		if (r == 0)
			r = um_sys_fsync(dst, 0);
		return r;
	case S_IFLNK:
		r = um_sys_readlinkat(srcdir, name, target, sizeof(target));
		if (r < 0)
			return r;
		return um_sys_symlinkat(target, fs->work_fd, tmp);
	case S_IFDIR:
		return um_sys_mkdirat(fs->work_fd, tmp, 0700);
	default:
		return um_sys_mknodat(fs->work_fd, tmp, (st->st_mode & S_IFMT) | 0600, st->st_rdev);
	}
}

/* Move the finished copy work/tmp to upfd/name, where nothing or the
 * name's fallthru is: 0, or 1 when the fallthru is now work/tmp. */
static int publish(struct um_fs *fs, const char *tmp, int upfd, const char *name)
{
	int r = um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_NOREPLACE);

	if (r != -EEXIST)
		return r;
	r = um_ns_swap_fallthru(fs, tmp, upfd, name);
	return r < 0 ? r : 1;
}

static void discard_tmp(struct um_fs *fs, const char *tmp, const char *name)
{
	int e = um_workdir_remove_tree(fs->work_fd, tmp);

	if (e < 0 && e != -ENOENT)
		um_log(UM_LOG_WARN, "copy-up '%s': cannot remove the temporary %s: %s", name, tmp, strerror(-e));
}

/* Copy-up changes no directory the union shows: the upper parent keeps
 * its times (pst, read before), as kernel overlayfs keeps them. */
static void keep_parent_times(int upfd, const struct stat *pst, const char *name)
{
	int r = um_sys_utimensat(upfd, "", (struct timespec[2]){ pst->st_atim, pst->st_mtim });

	if (r < 0)
		um_log(UM_LOG_WARN, "copy-up '%s': cannot keep its parent's times: %s", name, strerror(-r));
}

/* The upper copy's format allows metacopy files: raised once per upper
 * (concurrent first ones write the same value). */
static int allow_metacopy(struct um_fs *fs)
{
	int r;

	if (atomic_load(&fs->format_metacopy))
		return 0;
	r = um_marker_set_format(fs->layers[UM_UPPER].fd, UM_FORMAT_METACOPY);
	if (r == 0)
		atomic_store(&fs->format_metacopy, true);
	return r;
}

/* Copy ino (whose parent has an upper part, upfd) from srcdir/srcname.
 * Caller holds ino->lock for writing. */
static int copy_locked(struct um_fs *fs, struct um_inode *ino, int srcdir, const char *srcname, int upfd,
		       unsigned flags)
{
	char tmp[UM_TMPNAME_MAX];
	struct stat st;
	bool indexed, meta;
	int r;

	r = um_sys_lstatat(srcdir, srcname, &st);
	if (r < 0)
		return r;
	/* An object that can carry no marker (user.* markers on a symlink,
	 * a fifo, a device) gets no origin: its number changes to its upper
	 * inode's at copy-up, as kernel overlayfs's does with userxattr; and
	 * no index entry, which would need lowerlinks: its lower names stay
	 * separate objects, as with overlayfs's index=off. */
	indexed = !S_ISDIR(st.st_mode) && st.st_nlink > 1 && um_marker_can_hold(st.st_mode);
	/* Metacopy needs the origin (it names the data's file) and one name
	 * (the data is found by it). */
	meta = (flags & UM_COPYUP_META) && fs->metacopy && S_ISREG(st.st_mode) && st.st_size > 0 && !indexed &&
	       um_marker_can_hold(st.st_mode);
	um_workdir_tmpname(tmp);
	r = meta ? allow_metacopy(fs) : 0;
	if (r == 0)
		r = build_object(fs, srcdir, srcname, &st, tmp, flags, meta);
	if (r == 0)
		r = um_copy_attrs(srcdir, srcname, fs->work_fd, tmp, &st);
	/* Directories too: a listing of upper alone (readdir/stream.c) must
	 * number it as lookup does, from below. */
	if (r == 0 && um_marker_can_hold(st.st_mode))
		r = um_marker_set_origin(fs->work_fd, tmp, ino->st_ino);
	if (r == 0 && meta)
		r = um_marker_set_metacopy(fs->work_fd, tmp);
	if (r < 0)
		goto discard;

	if (indexed) {
		char key[17];

		um_inode_index_name(ino->st_ino, key);
		r = um_marker_set_lowerlinks(fs->work_fd, tmp, (unsigned)st.st_nlink);
		if (r == 0)
			r = um_sys_linkat(fs->work_fd, tmp, fs->index_fd, key);
		if (r < 0)
			goto discard;
		(void)um_sys_unlinkat(fs->work_fd, tmp, 0);
		ino->layer = UM_LAYER_INDEX;
		ino->lowerlinks = (uint16_t)st.st_nlink;
	} else {
		struct stat pst;
		bool swapped;

		r = um_sys_fstat(upfd, &pst);
		if (r == 0)
			r = publish(fs, tmp, upfd, ino->name);
		if (r == -EIO)
			return r; /* tmp may hold another request's object now: left as the log says */
		if (r < 0)
			goto discard;
		swapped = r == 1;
		keep_parent_times(upfd, &pst, ino->name);
		r = 0;
		if (S_ISDIR(st.st_mode)) {
			int fd = um_sys_open_dir(upfd, ino->name);

			if (fd >= 0 && (r = um_inode_add_upper_locked(ino, fd)) < 0)
				(void)close(fd);
			if (fd < 0)
				r = fd;
			if (r < 0) {
				/* Published but not usable: take it back out (and
				 * its fallthru back in), so the union stays as it was. */
				(void)um_sys_renameat(upfd, ino->name, fs->work_fd, tmp, swapped ? RENAME_EXCHANGE : 0);
				goto discard;
			}
		} else {
			ino->datalayer = meta ? ino->layer : 0;
			ino->layer = UM_UPPER;
		}
		if (swapped && (r = um_sys_unlinkat(fs->work_fd, tmp, 0)) < 0)
			um_log(UM_LOG_WARN, "copy-up '%s': cannot remove the replaced fallthru %s: %s", ino->name, tmp,
			       strerror(-r));
		r = 0;
	}
	ino->flags |= UM_INO_DIRSYNC;
	um_debug("copy-up '%s': done%s", ino->name, indexed ? " (index)" : meta ? " (metacopy)" : "");
	return 0;

discard:
	discard_tmp(fs, tmp, ino->name);
	return r;
}

/* Give metacopy file ino (in upfd, its data in datadir) its data: a
 * whole copy (data from below, everything else from the metacopy file,
 * the marker left out) built in the workdir replaces it, so a crash
 * leaves one or the other. With UM_COPYUP_NODATA the copy is empty.
 * Caller holds ino->lock for writing and its parent's for reading (the
 * rename replaces what the name holds: it must still be ino). */
static int complete_locked(struct um_fs *fs, struct um_inode *ino, int datadir, int upfd, unsigned flags)
{
	char tmp[UM_TMPNAME_MAX];
	struct stat st, lst, pst;
	int r = um_sys_lstatat(upfd, ino->name, &st);

	if (r == 0)
		r = um_sys_lstatat(datadir, ino->name, &lst);
	if (r < 0)
		return r;
	st.st_size = lst.st_size;
	um_workdir_tmpname(tmp);
	r = build_object(fs, datadir, ino->name, &st, tmp, flags, false);
	if (r == 0)
		r = um_copy_attrs(upfd, ino->name, fs->work_fd, tmp, &st);
	if (r == 0)
		r = um_marker_set_origin(fs->work_fd, tmp, ino->st_ino);
	if (r == 0)
		r = um_sys_fstat(upfd, &pst);
	if (r == 0)
		r = um_sys_renameat(fs->work_fd, tmp, upfd, ino->name, 0);
	if (r < 0) {
		discard_tmp(fs, tmp, ino->name);
		return r;
	}
	keep_parent_times(upfd, &pst, ino->name);
	ino->datalayer = 0;
	ino->flags |= UM_INO_DIRSYNC;
	um_debug("copy-up '%s': its data too", ino->name);
	return 0;
}

/* Copy up ino, whose parent already has an upper part. */
static int copyup_one(struct um_fs *fs, struct um_inode *ino, unsigned flags)
{
	for (;;) {
		struct um_inode *parent;
		uint16_t layer;
		int srcdir = -1, upfd, r;
		bool done, complete, copied_dir;

		r = um_inode_rdlock(fs, ino);
		if (r < 0)
			return r;
		done = has_upper(ino) && !needs_data(ino, flags);
		complete = has_upper(ino) && !done;
		parent = ino->parent ? um_inode_ref(ino->parent) : NULL;
		layer = data_layer(ino);
		if (S_ISDIR(ino->type))
			srcdir = ino->parts[0].fd;
		r = ino->flags & UM_INO_DEAD && !done ? -ENOENT : 0;
		pthread_rwlock_unlock(&ino->lock);
		if (done || r < 0 || !parent) {
			if (parent)
				um_inode_unref(fs, parent, 1);
			return r;
		}
		/* The lower parent part holding a non-directory; read before
		 * taking ino's lock (parents lock first). */
		if (!S_ISDIR(ino->type)) {
			const struct um_part *p;

			r = um_inode_rdlock(fs, parent);
			if (r < 0) {
				um_inode_unref(fs, parent, 1);
				return r;
			}
			if ((p = um_inode_part_in(parent, layer)))
				srcdir = p->fd;
			pthread_rwlock_unlock(&parent->lock);
		}
		if (srcdir < 0) {
			/* A non-directory below never moves (rename copies it up
			 * first) and parts are never taken away. */
			um_log(UM_LOG_ERR, "copy-up of inode %#llx: its directory has no part in layer %u (an internal error); it fails with EIO",
			       (unsigned long long)ino->st_ino, layer);
		}
		upfd = um_inode_upper_fd(fs, parent);
		r = srcdir < 0 ? -EIO : upfd;
		/* The copy carries an origin (if it can hold one): its new
		 * parent must say so before it lands there. */
		if (r >= 0 && um_marker_can_hold(ino->type))
			r = um_copyup_mark_impure(fs, parent);
		/* Completing a metacopy file replaces whatever its name holds
		 * in upper: the parent's lock keeps renames and removals (they
		 * write-lock it) off the name meanwhile. Parents lock first. */
		if (r >= 0 && complete)
			r = um_inode_rdlock(fs, parent);
		if (r >= 0) {
			r = um_inode_wrlock(fs, ino);
			if (r < 0 && complete)
				pthread_rwlock_unlock(&parent->lock);
		}
		if (r < 0) {
			um_inode_unref(fs, parent, 1);
			return r;
		}
		if (ino->parent != parent || data_layer(ino) != layer || (has_upper(ino) && !complete)) {
			/* Moved or copied meanwhile: look again. */
			pthread_rwlock_unlock(&ino->lock);
			if (complete)
				pthread_rwlock_unlock(&parent->lock);
			um_inode_unref(fs, parent, 1);
			continue;
		}
		r = 0;
		copied_dir = false;
		if (!has_upper(ino)) {
			r = S_ISDIR(ino->type) ? copy_locked(fs, ino, srcdir, "", upfd, flags)
					       : copy_locked(fs, ino, srcdir, ino->name, upfd, flags);
			copied_dir = r == 0 && S_ISDIR(ino->type);
		} else if (ino->flags & UM_INO_DEAD)
			r = -ENOENT; /* its name went before the lock: nothing of it to complete */
		else if (needs_data(ino, flags))
			r = complete_locked(fs, ino, srcdir, upfd, flags);
		pthread_rwlock_unlock(&ino->lock);
		if (complete)
			pthread_rwlock_unlock(&parent->lock);
		um_inode_unref(fs, parent, 1);
		/* A merged directory now: its next listing writes its
		 * fallthrus (readdir/op_dir.c), if the kernel asks for it
		 * instead of showing the one it cached. */
		if (copied_dir)
			um_notify_listing_dropped(fs, ino);
		return r;
	}
}

int um_copyup(struct um_fs *fs, struct um_inode *ino, unsigned flags)
{
	if (fs->readonly)
		return -EROFS;
	/* Top-down: find the highest ancestor without an upper part, copy
	 * it, repeat. The root always has one. */
	for (;;) {
		struct um_inode *t = um_inode_ref(ino), *p;
		int r = 0;

		for (;;) {
			pthread_rwlock_rdlock(&t->lock);
			p = t->parent ? um_inode_ref(t->parent) : NULL;
			pthread_rwlock_unlock(&t->lock);
			if (!p)
				break;
			r = um_inode_upper_fd(fs, p);
			if (r != -EROFS) {
				um_inode_unref(fs, p, 1);
				break;
			}
			um_inode_unref(fs, t, 1);
			t = p;
		}
		/* An ancestor whose upper part could not be reopened: fail,
		 * rather than take it for one without. */
		if (r >= 0 || r == -EROFS)
			r = copyup_one(fs, t, t == ino ? flags : 0);
		if (t == ino || r < 0) {
			um_inode_unref(fs, t, 1);
			return r;
		}
		um_inode_unref(fs, t, 1);
	}
}

int um_copyup_may_truncate(struct um_fs *fs, struct um_inode *ino)
{
	struct um_loc loc;
	int r = um_inode_locate(fs, ino, &loc);

	if (r < 0)
		return r;
	r = um_sys_faccessat(loc.dirfd, loc.name, W_OK);
	um_loc_release(fs, &loc);
	/* EROFS and the like say the lower branch is read-only, which it is
	 * to us anyway: only a refusal of the caller counts. */
	return r == -EACCES || r == -EPERM ? r : 0;
}

int um_copyup_before_removal(struct um_fs *fs, struct um_inode *ino)
{
	if (S_ISDIR(ino->type) || atomic_load(&ino->nopen) == 0 || um_inode_data_layer(ino) == um_inode_layer(ino))
		return 0;
	return um_copyup(fs, ino, 0);
}

int um_copyup_sync_metacopy(struct um_fs *fs, struct um_inode *ino)
{
	struct um_loc loc;
	int fd, r;

	if (S_ISDIR(ino->type) || um_inode_data_layer(ino) == um_inode_layer(ino))
		return 0;
	r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		return r;
	fd = um_sys_openat(loc.dirfd, loc.name, O_RDONLY);
	if (fd >= 0) {
		r = um_sys_fsync(fd, 0);
		(void)close(fd);
	} else {
		/* Unreadable to a daemon not run as root (chmod 000): the
		 * whole upper filesystem, rather than nothing. */
		r = fd == -EACCES ? um_sys_syncfs(fs->layers[UM_UPPER].fd) : fd;
	}
	um_loc_release(fs, &loc);
	return r;
}

int um_copyup_sync_parents(struct um_fs *fs, struct um_inode *ino)
{
	struct um_inode *t = um_inode_ref(ino);
	int r = 0;

	/* Each object copied up by this mount: its directory entry is in its
	 * parent's upper part; a parent copied up too needs the same. */
	while (r == 0 && t && (um_inode_flags(t) & UM_INO_DIRSYNC)) {
		struct um_inode *p;
		uint16_t layer;
		int fd = -EROFS;

		pthread_rwlock_rdlock(&t->lock);
		p = t->parent ? um_inode_ref(t->parent) : NULL;
		layer = t->layer;
		pthread_rwlock_unlock(&t->lock);
		if (layer == UM_LAYER_INDEX && !S_ISDIR(t->type))
			r = um_sys_fsync(fs->index_fd, 0);
		else if (p && (fd = um_inode_upper_fd(fs, p)) >= 0)
			r = um_sys_fsync(fd, 0);
		else if (p && fd != -EROFS)
			r = fd;
		if (r == 0)
			um_inode_set_flags(t, 0, UM_INO_DIRSYNC);
		um_inode_unref(fs, t, 1);
		t = p;
	}
	if (t)
		um_inode_unref(fs, t, 1);
	return r;
}
