#include "namespace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "copyup/workdir.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "readdir/readdir.h"
#include "sys.h"

int um_ns_upper_state(int upfd, const char *name, struct stat *st)
{
	int r = um_sys_lstatat(upfd, name, st);

	if (r == -ENOENT)
		return UM_UPPER_ABSENT;
	if (r < 0)
		return r;
	if (um_marker_is_whiteout(st))
		return UM_UPPER_WHITEOUT;
	return um_marker_fallthru_layer(st) ? UM_UPPER_FALLTHRU : UM_UPPER_PRESENT;
}

int um_ns_lower_visible(const struct um_inode *dir, const char *name, int state)
{
	if (state < 0 && dir->nparts && dir->parts[0].layer == UM_UPPER) {
		struct stat st;

		state = um_ns_upper_state(dir->parts[0].fd, name, &st);
		if (state < 0)
			return state;
	}
	/* Upper may know already: a fallthru says "shown from below", and a
	 * complete directory lacks no name shown from below. */
	if (state == UM_UPPER_FALLTHRU)
		return 1;
	if (state == UM_UPPER_ABSENT && (dir->flags & UM_INO_COMPLETE))
		return 0;
	return um_ns_lower_probe(dir, name);
}

int um_ns_lower_probe(const struct um_inode *dir, const char *name)
{
	/* The parts are already cut at an opaque directory; a whiteout in
	 * a lower part hides the rest. */
	for (uint16_t i = 0; i < dir->nparts; i++) {
		struct stat st;
		int r;

		if (dir->parts[i].layer == UM_UPPER)
			continue;
		r = um_sys_lstatat(dir->parts[i].fd, name, &st);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		if (um_marker_fallthru_layer(&st))
			continue; /* says only "look further down" */
		return !um_marker_is_whiteout(&st);
	}
	return 0;
}

int um_ns_owner(fuse_req_t req, int upfd, bool is_dir, mode_t *mode, uid_t *uid, gid_t *gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	int r = um_sys_fstat(upfd, &st);

	if (r < 0)
		return r;
	*uid = ctx->uid;
	*gid = ctx->gid;
	if (st.st_mode & S_ISGID) {
		*gid = st.st_gid;
		if (is_dir)
			*mode |= S_ISGID;
	}
	return 0;
}

bool um_ns_caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

bool um_ns_caller_capable(fuse_req_t req, int cap)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	unsigned long long eff = 0;
	bool found = false;
	char path[64], line[256];
	FILE *f;

	/* The request carries no capabilities; the calling thread's status
	 * has them, while it waits for the answer. A caller in another pid
	 * namespace (pid 0) is judged by its uid alone. */
	if (ctx->pid > 0) {
		(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
		f = fopen(path, "re");
		while (f && !found && fgets(line, sizeof(line), f))
			found = sscanf(line, "CapEff: %llx", &eff) == 1;
		if (f)
			(void)fclose(f);
	}
	return found ? (eff >> cap) & 1 : ctx->uid == 0;
}

int um_ns_set_owner(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;
	int r = um_sys_fchownat(dirfd, name, uid, gid);

	if (r < 0 || !(mode & (S_ISUID | S_ISGID)) || S_ISLNK(mode))
		return r;
	/* chown clears setuid/setgid of non-directories, even as root: put
	 * them back onto the permission bits the object was made with (an
	 * inherited ACL may have narrowed the mode's). */
	r = um_sys_lstatat(dirfd, name, &st);
	if (r == 0)
		r = um_sys_fchmodat(dirfd, name, (st.st_mode & 01777) | (mode & (S_ISUID | S_ISGID)));
	return r;
}

int um_ns_own_new(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode, struct stat *ret_st)
{
	int r;

	/* The daemon made it as itself: for a caller of its own uid (root
	 * for root, the user on a user's own mount) it is often the owner
	 * already, group included. Asked first only then. */
	if (uid == geteuid()) {
		r = um_sys_lstatat(dirfd, name, ret_st);
		if (r < 0 || (ret_st->st_uid == uid && ret_st->st_gid == gid))
			return r;
	}
	r = um_ns_set_owner(dirfd, name, uid, gid, mode);
	return r < 0 ? r : um_sys_lstatat(dirfd, name, ret_st);
}

int um_ns_place(struct um_fs *fs, const char *tmp, int upfd, const char *name, bool is_dir, bool over_whiteout)
{
	int r;

	if (!over_whiteout)
		return um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_NOREPLACE);
	if (!is_dir)
		return um_sys_renameat(fs->work_fd, tmp, upfd, name, 0);
	/* rename(2) will not put a directory over a device node. */
	r = um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_EXCHANGE);
	if (r < 0)
		return r;
	r = um_sys_unlinkat(fs->work_fd, tmp, 0);
	if (r < 0)
		um_log(UM_LOG_WARN, "cannot remove the replaced marker %s from the workdir: %s", tmp, strerror(-r));
	return 0;
}

int um_ns_swap_fallthru(struct um_fs *fs, const char *tmp, int upfd, const char *name)
{
	struct stat st;
	int r = um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_EXCHANGE);
	int e;

	if (r < 0)
		return r;
	r = um_sys_lstatat(fs->work_fd, tmp, &st);
	if (r == 0 && um_marker_fallthru_layer(&st))
		return 0;
	/* Another request replaced the fallthru first: give its object back. */
	e = um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_EXCHANGE);
	if (e < 0) {
		um_log(UM_LOG_ERR, "cannot put '%s' back from the workdir (%s): it is %s there", name, strerror(-e),
		       tmp);
		return -EIO;
	}
	if (r < 0)
		return r;
	return um_marker_is_whiteout(&st) ? -ENOENT : -EEXIST;
}

#define SHARED_WHITEOUT "w"

/* WORKDIR/unionmount/whiteout, made on first use; -errno if it cannot
 * be (no inode left: the caller makes its whiteout the old way). */
static int shared_dir(struct um_fs *fs)
{
	int fd = fs->wh_fd, r;

	if (fd >= 0 || fs->readonly || fs->workdir_lock_fd < 0)
		return fd >= 0 ? fd : -EROFS;
	pthread_mutex_lock(&fs->wh_lock);
	fd = fs->wh_fd;
	if (fd < 0) {
		r = um_sys_mkdirat(fs->workdir_lock_fd, "whiteout", 0700);
		fd = r < 0 && r != -EEXIST ? r : um_sys_openat(fs->workdir_lock_fd, "whiteout", O_RDONLY | O_DIRECTORY);
		if (fd >= 0)
			fs->wh_fd = fd;
	}
	pthread_mutex_unlock(&fs->wh_lock);
	return fd;
}

int um_ns_make_whiteout(struct um_fs *fs, int dirfd, const char *name)
{
	int wfd = shared_dir(fs);

	/* A few rounds: the shared one made (by us or a concurrent call),
	 * then one more for a shared one retired at the link limit. */
	for (int round = 0; wfd >= 0 && round < 4; round++) {
		int r = um_sys_linkat(wfd, SHARED_WHITEOUT, dirfd, name);

		if (r == -ENOENT) {
			/* None yet (or retired, or dirfd's directory is gone: then
			 * the rounds run out and mknod says ENOENT). mknod makes
			 * it whole or not at all, under its final name. No room
			 * for it: the whiteout asked for needs one inode too. */
			r = um_marker_make_whiteout(wfd, SHARED_WHITEOUT);
			if (r < 0 && r != -EEXIST)
				break;
			continue;
		}
		if (r == -EMLINK) {
			/* As many links as the filesystem allows: this one
			 * becomes the whiteout wanted, and the next call makes a
			 * fresh shared one. -ENOENT: another call retired it. */
			r = um_sys_renameat(wfd, SHARED_WHITEOUT, dirfd, name, RENAME_NOREPLACE);
			if (r == -ENOENT)
				continue;
			return r;
		}
		if (r != -EPERM && r != -EOPNOTSUPP)
			return r;
		break; /* no hard links on this filesystem: one inode each */
	}
	return um_marker_make_whiteout(dirfd, name);
}

/* Make a whiteout in work/ under a fresh name. */
static int work_whiteout(struct um_fs *fs, char tmp[UM_TMPNAME_MAX])
{
	um_workdir_tmpname(tmp);
	return um_ns_make_whiteout(fs, fs->work_fd, tmp);
}

static void drop_tmp(struct um_fs *fs, const char *tmp)
{
	int r = um_workdir_remove_tree(fs->work_fd, tmp);

	if (r < 0 && r != -ENOENT)
		um_log(UM_LOG_WARN, "cannot remove %s from the workdir: %s", tmp, strerror(-r));
}

int um_ns_whiteout(struct um_fs *fs, int upfd, const char *name, enum um_upper_state state, bool is_dir)
{
	char tmp[UM_TMPNAME_MAX];
	int r;

	if (state == UM_UPPER_WHITEOUT)
		return 0;
	if (state == UM_UPPER_ABSENT)
		return um_ns_make_whiteout(fs, upfd, name);
	r = work_whiteout(fs, tmp);
	if (r < 0)
		return r;
	if (is_dir && state == UM_UPPER_PRESENT) {
		/* The directory goes to the workdir in the same step as the
		 * whiteout arrives, and is emptied there. */
		r = um_sys_renameat(fs->work_fd, tmp, upfd, name, RENAME_EXCHANGE);
		if (r == 0)
			drop_tmp(fs, tmp);
	} else {
		r = um_sys_renameat(fs->work_fd, tmp, upfd, name, 0);
	}
	if (r < 0)
		drop_tmp(fs, tmp);
	return r;
}

int um_ns_remove(struct um_fs *fs, int upfd, const char *name, bool is_dir)
{
	char tmp[UM_TMPNAME_MAX];
	int r;

	if (!is_dir)
		return um_sys_unlinkat(upfd, name, 0);
	r = um_sys_unlinkat(upfd, name, AT_REMOVEDIR);
	if (r != -ENOTEMPTY && r != -EEXIST)
		return r;
	/* It still holds whiteouts: move it out whole, then empty it. */
	um_workdir_tmpname(tmp);
	r = um_sys_renameat(upfd, name, fs->work_fd, tmp, RENAME_NOREPLACE);
	if (r == 0)
		drop_tmp(fs, tmp);
	return r;
}

static int drop_marker(void *ctx, int fd, struct dirent64 *e)
{
	struct stat st;
	int r = um_sys_lstatat(fd, e->d_name, &st);

	(void)ctx;
	if (r < 0)
		return r;
	/* Anything else would be shown: never remove it. */
	if (!um_marker_is_whiteout(&st) && !um_marker_fallthru_layer(&st))
		return -ENOTEMPTY;
	r = um_sys_unlinkat(fd, e->d_name, 0);
	return r < 0 ? r : 1;
}

int um_ns_drop_markers(int upfd, const char *name)
{
	int fd = um_sys_openat(upfd, name, O_RDONLY | O_DIRECTORY);
	int r;

	if (fd < 0)
		return fd;
	r = um_sys_sweep(fd, drop_marker, NULL);
	(void)close(fd);
	return r;
}

/* A complete directory is empty when its upper part lists nothing. */
static int upper_is_empty(struct um_fs *fs, struct um_inode *dir)
{
	struct um_dirstream *s = NULL;
	struct um_listent e;
	int r = um_dirstream_open(fs, dir, 0, &s);

	/* A fallthru whose object is gone below (DT_UNKNOWN) shows nothing:
	 * it must not keep the directory from being removed. */
	while (r >= 0 && (r = um_dirstream_peek(fs, dir, s, &e)) > 0) {
		if (strcmp(e.name, ".") && strcmp(e.name, "..") && e.type != DT_UNKNOWN)
			break;
		um_dirstream_advance(s);
	}
	um_dirstream_close(s);
	return r < 0 ? r : r == 0;
}

int um_ns_dir_is_empty(struct um_fs *fs, struct um_inode *dir)
{
	struct um_dirsnap snap;
	int r;

	if (um_inode_flags(dir) & UM_INO_COMPLETE)
		return upper_is_empty(fs, dir);
	r = um_dir_merge(fs, dir, 0, &snap);

	if (r < 0)
		return r;
	r = snap.n <= 2; /* "." and ".." */
	um_dirsnap_release(&snap);
	return r;
}
