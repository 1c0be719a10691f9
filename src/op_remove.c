/* unlink and rmdir. A name that a lower branch also shows becomes a
 * whiteout in the same rename that removes the upper object; a merged
 * directory goes only when the union shows it empty. An object that
 * loses its last name leaves the inode table (upper reuses numbers). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "copyup/copyup.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "namespace.h"
#include "ops.h"
#include "sys.h"

/* ino lost one name; `was_lower` when that name existed only below. */
int um_name_gone(struct um_fs *fs, struct um_inode *ino, bool was_lower)
{
	char key[17];
	struct stat st;
	int r = 0;

	if (S_ISDIR(ino->type) || um_inode_layer(ino) != UM_LAYER_INDEX) {
		um_inode_kill(fs, ino);
		return 0;
	}
	um_inode_index_name(ino->st_ino, key);
	pthread_rwlock_wrlock(&ino->lock);
	ino->flags &= (uint16_t)~UM_INO_GOING; /* other names keep the object */
	if (was_lower && ino->lowerlinks > 0) {
		ino->lowerlinks--;
		r = um_marker_set_lowerlinks(fs->index_fd, key, ino->lowerlinks);
	}
	if (r == 0)
		r = um_sys_lstatat(fs->index_fd, key, &st);
	if (r == 0 && st.st_nlink <= 1 && ino->lowerlinks == 0) {
		/* No name left: the index entry was the last link. Open files
		 * keep their own fds. */
		r = um_sys_unlinkat(fs->index_fd, key, 0);
		ino->flags |= UM_INO_DEAD;
	}
	pthread_rwlock_unlock(&ino->lock);
	if (um_inode_flags(ino) & UM_INO_DEAD)
		um_inode_kill(fs, ino);
	if (r < 0)
		um_log(UM_LOG_WARN, "index entry %s: cannot update its link count: %s", key, strerror(-r));
	return r;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_dir)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *dir = um_req_inode(req, parent), *ino = NULL;
	enum um_upper_state state = UM_UPPER_ABSENT;
	struct stat st;
	int upfd, r;

	r = um_inode_lookup(fs, dir, name, &ino, &st);
	if (r < 0)
		goto out;
	if (is_dir != S_ISDIR(ino->type)) {
		r = is_dir ? -ENOTDIR : -EISDIR;
		goto out;
	}
	if (is_dir) {
		r = um_ns_dir_is_empty(fs, ino);
		if (r == 0)
			r = -ENOTEMPTY;
		if (r < 0)
			goto out;
	} else if (st.st_nlink > 1) {
		/* A name of a hard-linked lower object: its copy in the index
		 * keeps the count of names the others still see. */
		r = um_copyup(fs, ino, 0);
		if (r < 0)
			goto out;
	}
	r = um_copyup(fs, dir, 0);
	if (r == 0)
		r = um_copyup_before_removal(fs, ino);
	if (r == 0)
		r = um_inode_keep_open(fs, ino);
	if (r < 0)
		goto out;
	r = upfd = um_inode_upper_fd(fs, dir);
	if (r < 0)
		goto out;

	um_inode_set_flags(ino, UM_INO_GOING, 0);
	r = um_inode_wrlock(fs, dir);
	if (r < 0) {
		um_inode_set_flags(ino, 0, UM_INO_GOING);
		goto out;
	}
	r = um_ns_upper_state(upfd, name, &st);
	if (r >= 0) {
		state = r;
		r = um_ns_lower_visible(dir, name, state);
	}
	if (r >= 0 && state == UM_UPPER_WHITEOUT)
		r = -ENOENT; /* raced with another removal */
	else if (r > 0)
		r = um_ns_whiteout(fs, upfd, name, state, is_dir);
	else if (r == 0 && state == UM_UPPER_PRESENT)
		r = um_ns_remove(fs, upfd, name, is_dir);
	else if (r == 0)
		r = -ENOENT;
	/* Still under the lock: a getattr must not find ino alive at a name
	 * that holds a whiteout now (um_inode_locate()). */
	if (r == 0)
		(void)um_name_gone(fs, ino, state == UM_UPPER_ABSENT || state == UM_UPPER_FALLTHRU);
	pthread_rwlock_unlock(&dir->lock);
	um_notify_names_changed(fs, dir);
	if (r < 0)
		um_inode_set_flags(ino, 0, UM_INO_GOING);
out:
	if (ino)
		um_inode_unref(fs, ino, 1);
	fuse_reply_err(req, -r);
}

void um_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, false);
}

void um_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}
