/* rename: plain, RENAME_NOREPLACE and RENAME_EXCHANGE. Both ends are
 * copied up first (a directory: its metadata only); the move itself is
 * one rename in upper, which also leaves the whiteout when a lower
 * branch shows the old name (RENAME_WHITEOUT). A directory with lower
 * parts records where they are (redirect marker) instead of being
 * copied: O(1), never EXDEV. Renames are serialized (fs->rename_lock) so
 * that the lower paths computed for redirects cannot change meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "copyup/copyup.h"
#include "copyup/workdir.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "namespace.h"
#include "ops.h"
#include "sys.h"

/* Where the lower parts of directory ino are, as an absolute path from
 * the branch roots. */
static int lower_path(struct um_fs *fs, struct um_inode *ino, char *buf, size_t size)
{
	char *comps[PATH_MAX / 2]; /* leaf first */
	char *prefix = NULL;
	struct um_inode *t = ino;
	size_t n = 0, len;
	int r = 0;

	while (t != fs->root && n < PATH_MAX / 2 && r == 0) {
		struct um_inode *p;

		pthread_rwlock_rdlock(&t->lock);
		p = t->parent;
		if (t->redirect && t->redirect[0] == '/') {
			prefix = strdup(t->redirect);
			r = prefix ? 1 : -ENOMEM; /* 1: stop here */
		} else if (!(comps[n++] = strdup(t->redirect ? t->redirect : t->name))) {
			n--;
			r = -ENOMEM;
		}
		pthread_rwlock_unlock(&t->lock);
		t = p;
	}
	if (r >= 0) {
		r = 0;
		len = (size_t)snprintf(buf, size, "%s", prefix ? prefix : "");
		for (size_t i = n; i-- > 0 && len < size;)
			len += (size_t)snprintf(buf + len, size - len, "/%s", comps[i]);
		if (len >= size)
			r = -ENAMETOOLONG;
	}
	for (size_t i = 0; i < n; i++)
		free(comps[i]);
	free(prefix);
	return r;
}

static bool has_lower_parts(struct um_inode *dir)
{
	bool yes = false;

	pthread_rwlock_rdlock(&dir->lock);
	for (uint16_t i = 0; i < dir->nparts; i++)
		yes |= dir->parts[i].layer != UM_UPPER;
	pthread_rwlock_unlock(&dir->lock);
	return yes;
}

/* Where the lower parts of src are when the absolute path is too long:
 * within one directory, relative to its lower parts (its name there), as
 * kernel overlayfs writes it; into another, nowhere (EXDEV: mv copies). */
static int short_lower_path(struct um_inode *src, struct um_inode *olddir, struct um_inode *newdir, char *buf,
			    size_t size)
{
	int r = -EXDEV;

	if (olddir != newdir)
		return r;
	pthread_rwlock_rdlock(&src->lock);
	if (!src->redirect || src->redirect[0] != '/') {
		const char *n = src->redirect ? src->redirect : src->name;

		r = strlen(n) < size ? 0 : -ENAMETOOLONG;
		if (r == 0)
			strcpy(buf, n);
	}
	pthread_rwlock_unlock(&src->lock);
	return r;
}

/* Before directory src (copied up, in olddir) lands at newdir/newname:
 * mark it so the new place merges what it merged before, and nothing
 * the new name shows below. Sets *ret_redirect (caller frees) when it
 * records a redirect. */
static int prepare_dir_move(struct um_fs *fs, struct um_inode *src, struct um_inode *olddir, struct um_inode *newdir,
			    const char *newname, char **ret_redirect)
{
	char path[PATH_MAX];
	int fd = um_inode_upper_fd(fs, src), r;

	*ret_redirect = NULL;
	if (fd < 0)
		return fd;
	if (has_lower_parts(src)) {
		r = lower_path(fs, src, path, sizeof(path));
		if (r == -ENAMETOOLONG)
			r = short_lower_path(src, olddir, newdir, path, sizeof(path));
		if (r == 0)
			r = um_copyup_mark_impure(fs, newdir);
		if (r == 0)
			r = um_marker_set_origin(fd, "", src->st_ino);
		if (r == 0)
			r = um_marker_set_redirect(fd, "", path);
		if (r == 0 && !(*ret_redirect = strdup(path)))
			r = -ENOMEM;
		return r;
	}
	r = um_inode_rdlock(fs, newdir);
	if (r < 0)
		return r;
	r = um_ns_lower_visible(newdir, newname, -1);
	pthread_rwlock_unlock(&newdir->lock);
	/* A directory of upper alone put over a lower name must not start
	 * merging with it. */
	if (r > 0)
		r = um_marker_set_opaque(fd, "");
	return r;
}

/* A name of an indexed object that exists only below gets its upper
 * link, so that it can be moved like any upper name. */
static int link_up(struct um_fs *fs, struct um_inode *dir, struct um_inode *ino, const char *name, bool *linked)
{
	char key[17];
	struct stat st;
	int upfd = um_inode_upper_fd(fs, dir), r, state;

	*linked = false;
	if (S_ISDIR(ino->type) || um_inode_layer(ino) != UM_LAYER_INDEX || upfd == -EROFS)
		return 0;
	if (upfd < 0)
		return upfd;
	r = um_ns_upper_state(upfd, name, &st);
	if (r != UM_UPPER_ABSENT && r != UM_UPPER_FALLTHRU)
		return r < 0 ? r : 0;
	state = r;
	r = um_copyup_mark_impure(fs, dir);
	if (r < 0)
		return r;
	um_inode_index_name(ino->st_ino, key);
	if (state == UM_UPPER_ABSENT) {
		r = um_sys_linkat(fs->index_fd, key, upfd, name);
	} else {
		char tmp[UM_TMPNAME_MAX];

		/* In place of its fallthru (this runs without the directory's
		 * lock: only a fallthru may be replaced). */
		um_workdir_tmpname(tmp);
		r = um_sys_linkat(fs->index_fd, key, fs->work_fd, tmp);
		if (r == 0) {
			r = um_ns_swap_fallthru(fs, tmp, upfd, name);
			if (r != -EIO)
				(void)um_sys_unlinkat(fs->work_fd, tmp, 0);
		}
	}
	if (r == 0) {
		pthread_rwlock_wrlock(&ino->lock);
		if (ino->lowerlinks > 0)
			ino->lowerlinks--;
		r = um_marker_set_lowerlinks(fs->index_fd, key, ino->lowerlinks);
		pthread_rwlock_unlock(&ino->lock);
		*linked = true;
	}
	return r;
}

static int lock_two(struct um_fs *fs, struct um_inode *a, struct um_inode *b)
{
	int r;

	/* Renames are serialized and every other path takes one directory
	 * lock at a time, so any fixed order is deadlock-free. */
	if (a == b)
		return um_inode_wrlock(fs, a);
	if ((uintptr_t)a > (uintptr_t)b) {
		struct um_inode *t = a;
		a = b;
		b = t;
	}
	r = um_inode_wrlock(fs, a);
	if (r == 0) {
		r = um_inode_wrlock(fs, b);
		if (r < 0)
			pthread_rwlock_unlock(&a->lock);
	}
	return r;
}

static void unlock_two(struct um_inode *a, struct um_inode *b)
{
	pthread_rwlock_unlock(&a->lock);
	if (a != b)
		pthread_rwlock_unlock(&b->lock);
}

static int set_redirect_field(struct um_inode *ino, char *redirect)
{
	if (!redirect)
		return 0;
	pthread_rwlock_wrlock(&ino->lock);
	free(ino->redirect);
	ino->redirect = redirect;
	pthread_rwlock_unlock(&ino->lock);
	return 0;
}

struct rename_op {
	struct um_inode *olddir, *newdir, *src, *dst;
	const char *name, *newname;
	unsigned flags;
	char *src_redirect, *dst_redirect;
	/* The inodes' new names, allocated before anything moves so that
	 * recording the move cannot fail after it happened. */
	char *src_name, *dst_name;
	/* References um_inode_move() hands back, dropped after unlocking. */
	struct um_inode *drop[2];
};

static int exchange(struct um_fs *fs, struct rename_op *op, int oldup, int newup)
{
	int r = lock_two(fs, op->olddir, op->newdir);

	if (r < 0)
		return r;
	r = um_sys_renameat(oldup, op->name, newup, op->newname, RENAME_EXCHANGE);
	if (r == 0) {
		op->drop[0] = um_inode_move(op->src, op->newdir, TAKE_PTR(op->src_name));
		op->drop[1] = um_inode_move(op->dst, op->olddir, TAKE_PTR(op->dst_name));
	}
	unlock_two(op->olddir, op->newdir);
	if (r < 0)
		return r;
	set_redirect_field(op->src, TAKE_PTR(op->src_redirect));
	set_redirect_field(op->dst, TAKE_PTR(op->dst_redirect));
	return 0;
}

static int move(struct um_fs *fs, struct rename_op *op, int oldup, int newup)
{
	enum um_upper_state dst_state = UM_UPPER_ABSENT;
	bool is_dir = S_ISDIR(op->src->type), dst_was_lower = false;
	struct stat st;
	int r, old_lower;

	if (op->dst)
		um_inode_set_flags(op->dst, UM_INO_GOING, 0);
	r = lock_two(fs, op->olddir, op->newdir);
	if (r < 0) {
		if (op->dst)
			um_inode_set_flags(op->dst, 0, UM_INO_GOING);
		return r;
	}
	r = old_lower = um_ns_lower_visible(op->olddir, op->name, -1);
	if (r >= 0)
		r = um_ns_upper_state(newup, op->newname, &st);
	if (r >= 0) {
		dst_state = r;
		dst_was_lower = op->dst && dst_state != UM_UPPER_PRESENT;
		r = 0;
	}
	if (r == 0 && is_dir && dst_state == UM_UPPER_PRESENT) {
		/* The target (empty in the union) may still hold whiteouts,
		 * and rename(2) replaces only an empty directory. Once opaque
		 * it needs none of them; neither step changes what the union
		 * shows, so the move below stays one rename, done or not done
		 * whatever stops it (ENOSPC, a crash). */
		r = um_marker_set_opaque(newup, op->newname);
		if (r == 0)
			r = um_ns_drop_markers(newup, op->newname);
	}
	if (r == 0 && is_dir && (dst_state == UM_UPPER_WHITEOUT || dst_state == UM_UPPER_FALLTHRU)) {
		/* No object shows there (do_rename copied a directory shown
		 * through a fallthru up), but rename(2) puts no directory over
		 * a device node. Exchanging leaves the marker at the old name:
		 * a whiteout is what a name shown below needs, and one that
		 * nothing shows below hides nothing, so a crash before the
		 * unlink leaves no trace in the union. */
		if (dst_state == UM_UPPER_FALLTHRU)
			r = um_ns_whiteout(fs, newup, op->newname, UM_UPPER_FALLTHRU, false);
		if (r == 0)
			r = um_sys_renameat(oldup, op->name, newup, op->newname, RENAME_EXCHANGE);
		if (r == 0 && !old_lower)
			r = um_sys_unlinkat(oldup, op->name, 0);
	} else if (r == 0 && old_lower) {
		r = um_sys_renameat(oldup, op->name, newup, op->newname, RENAME_WHITEOUT);
		if (r == -EINVAL) {
			/* The upper filesystem cannot: two steps. */
			r = um_sys_renameat(oldup, op->name, newup, op->newname, 0);
			if (r == 0)
				r = um_ns_make_whiteout(fs, oldup, op->name);
		}
	} else if (r == 0) {
		r = um_sys_renameat(oldup, op->name, newup, op->newname, 0);
	}
	if (r == 0) {
		op->drop[0] = um_inode_move(op->src, op->newdir, TAKE_PTR(op->src_name));
		if (op->dst)
			(void)um_name_gone(fs, op->dst, dst_was_lower);
	}
	unlock_two(op->olddir, op->newdir);
	if (r < 0 && op->dst)
		um_inode_set_flags(op->dst, 0, UM_INO_GOING);
	if (r < 0)
		return r;
	set_redirect_field(op->src, TAKE_PTR(op->src_redirect));
	return 0;
}

static int do_rename(struct um_fs *fs, struct rename_op *op)
{
	struct stat sst, dst_st;
	bool linked;
	int r, oldup, newup;

	r = um_inode_lookup(fs, op->olddir, op->name, &op->src, &sst);
	if (r < 0)
		return r;
	r = um_inode_lookup(fs, op->newdir, op->newname, &op->dst, &dst_st);
	if (r == -ENOENT) {
		op->dst = NULL;
		r = 0;
	}
	if (r < 0)
		return r;
	if (op->dst && (op->flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (!op->dst && (op->flags & RENAME_EXCHANGE))
		return -ENOENT;
	if (op->dst == op->src)
		return 0; /* two names of one object: POSIX says do nothing */
	if (op->dst && !(op->flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(op->dst->type) && !S_ISDIR(op->src->type))
			return -EISDIR;
		if (!S_ISDIR(op->dst->type) && S_ISDIR(op->src->type))
			return -ENOTDIR;
		if (S_ISDIR(op->dst->type)) {
			r = um_ns_dir_is_empty(fs, op->dst);
			if (r <= 0)
				return r < 0 ? r : -ENOTEMPTY;
		}
	}
	/* Names of a hard-linked lower object go through its index copy,
	 * which keeps the count of the names the others still see: also the
	 * one this rename replaces. */
	r = um_copyup(fs, op->src, 0);
	if (r == 0 && op->dst && !S_ISDIR(op->dst->type) && dst_st.st_nlink > 1)
		r = um_copyup(fs, op->dst, 0);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = um_copyup(fs, op->dst, 0);
	/* An indexed object's copy-up leaves its parent below: the move
	 * starts from the old directory in upper all the same. */
	if (r == 0)
		r = um_copyup(fs, op->olddir, 0);
	if (r == 0)
		r = um_copyup(fs, op->newdir, 0);
	/* A directory replaced through its fallthru: rename(2) puts none
	 * over the device node, and a marker swapped out of the way first
	 * would leave a moment (a crash) with neither name. */
	if (r == 0 && op->dst && S_ISDIR(op->dst->type) && !(op->flags & RENAME_EXCHANGE))
		r = um_copyup(fs, op->dst, 0);
	if (r == 0 && op->dst && !(op->flags & RENAME_EXCHANGE))
		r = um_copyup_before_removal(fs, op->dst);
	if (r == 0 && op->dst && !(op->flags & RENAME_EXCHANGE))
		r = um_inode_keep_open(fs, op->dst);
	if (r == 0)
		r = link_up(fs, op->olddir, op->src, op->name, &linked);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = link_up(fs, op->newdir, op->dst, op->newname, &linked);
	if (r < 0)
		return r;
	r = oldup = um_inode_upper_fd(fs, op->olddir);
	if (r >= 0)
		r = newup = um_inode_upper_fd(fs, op->newdir);
	if (r < 0)
		return r;
	r = 0;
	/* Objects with an origin keep it through the move: the new
	 * directory must say so before they land. */
	if (um_inode_flags(op->olddir) & UM_INO_IMPURE)
		r = um_copyup_mark_impure(fs, op->newdir);
	if (r == 0 && (um_inode_flags(op->newdir) & UM_INO_IMPURE) && (op->flags & RENAME_EXCHANGE))
		r = um_copyup_mark_impure(fs, op->olddir);
	if (r == 0 && S_ISDIR(op->src->type))
		r = prepare_dir_move(fs, op->src, op->olddir, op->newdir, op->newname, &op->src_redirect);
	if (r == 0 && (op->flags & RENAME_EXCHANGE) && S_ISDIR(op->dst->type))
		r = prepare_dir_move(fs, op->dst, op->newdir, op->olddir, op->name, &op->dst_redirect);
	if (r < 0)
		return r;
	op->src_name = strdup(op->newname);
	if (op->flags & RENAME_EXCHANGE)
		op->dst_name = strdup(op->name);
	if (!op->src_name || ((op->flags & RENAME_EXCHANGE) && !op->dst_name))
		return -ENOMEM;
	return op->flags & RENAME_EXCHANGE ? exchange(fs, op, oldup, newup) : move(fs, op, oldup, newup);
}

void um_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		  unsigned int flags)
{
	struct um_fs *fs = um_req_fs(req);
	struct rename_op op = {
		.olddir = um_req_inode(req, parent),
		.newdir = um_req_inode(req, newparent),
		.name = name,
		.newname = newname,
		.flags = flags,
	};
	int r;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: the union's own business */
		return;
	}
	if (strlen(newname) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	pthread_mutex_lock(&fs->rename_lock);
	r = do_rename(fs, &op);
	pthread_mutex_unlock(&fs->rename_lock);
	/* Also after a failure: a step of a two-step change may have been
	 * taken (a spurious one costs a listing one more read). */
	um_notify_names_changed(fs, op.olddir);
	if (op.newdir != op.olddir)
		um_notify_names_changed(fs, op.newdir);
	if (r == 0 && op.src)
		um_notify_attrs_changed(fs, op.src);
	if (r == 0 && op.dst && (flags & RENAME_EXCHANGE))
		um_notify_attrs_changed(fs, op.dst);
	for (int i = 0; i < 2; i++)
		if (op.drop[i])
			um_inode_unref(fs, op.drop[i], 1);
	if (op.src)
		um_inode_unref(fs, op.src, 1);
	if (op.dst)
		um_inode_unref(fs, op.dst, 1);
	free(op.src_redirect);
	free(op.dst_redirect);
	free(op.src_name);
	free(op.dst_name);
	fuse_reply_err(req, -r);
}
