#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "branch.h"
#include "copyup/workdir.h"
#include "inode.h"
#include "log.h"
#include "marker.h"
#include "op_file.h"
#include "passthrough.h"
#include "uring.h"
#include "readdir/fallthru.h"
#include "readdir/rdplus.h"
#include "sys.h"

/* Does /proc/self/fd name fd? 0, -ENOENT when this process has no
 * /proc of its own, or another -errno. */
static int proc_reaches(int fd)
{
	char self[64], target[PATH_MAX + 1];
	int r = um_sys_fd_path(self, sizeof(self), fd, "");

	if (r == 0)
		r = um_sys_readlinkat(AT_FDCWD, self, target, sizeof(target));
	return r < 0 ? r : 0;
}

/* The lower stack's identity for complete marks (marker.h). */
static int stack_id(struct um_fs *fs, uint64_t *ret)
{
	int *fds = calloc(fs->n_layers, sizeof(*fds));
	int r;

	if (!fds)
		return -ENOMEM;
	for (unsigned l = 1; l < fs->n_layers; l++)
		fds[l - 1] = fs->layers[l].fd;
	r = um_marker_stack_id(fds, fs->n_layers - 1, ret);
	free(fds);
	return r;
}

/* One read-write daemon per upper: a second one would purge the first's
 * temporaries in work/ and race it on every marker. Read-only mounts
 * share. unionctl(8) takes the same lock, so it never repairs an upper in
 * use. flock() belongs to the open directory, which the daemon keeps open
 * (and inherits across fuse_daemonize's fork) until it exits. */
static int lock_upper(struct um_fs *fs, const char *path, char *err, size_t errlen)
{
	int r = um_sys_flock(fs->layers[UM_UPPER].fd, (fs->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB);

	if (r == -EWOULDBLOCK)
		snprintf(err, errlen,
			 "upperdir: '%s' is in use by another mounted union (or by unionctl); unmount that first",
			 path);
	else if (r < 0)
		snprintf(err, errlen, "upperdir: cannot lock '%s': %s", path, strerror(-r));
	return r;
}

static int build_root(struct um_fs *fs, char *err, size_t errlen)
{
	struct um_part *parts = calloc(fs->n_layers, sizeof(*parts));
	uint16_t n = 0;
	struct stat st;
	int r;

	if (!parts)
		return -ENOMEM;
	/* The root merges every branch: like kernel overlayfs, an opaque
	 * marker on a branch root is ignored (it is a leftover of that tree's
	 * life as a subdirectory somewhere, not a statement about the stack). */
	for (unsigned l = fs->has_upper ? 0 : 1; l < fs->n_layers; l++) {
		int fd = um_sys_openat(fs->layers[l].fd, ".", O_RDONLY | O_DIRECTORY);

		if (fd < 0) {
			r = fd;
			snprintf(err, errlen, "%s: cannot open '%s': %s", l ? "lowerdir" : "upperdir",
				 fs->layers[l].path, strerror(-r));
			goto fail;
		}
		parts[n++] = (struct um_part){ .fd = fd, .layer = (uint16_t)l };
	}
	r = um_sys_fstat(parts[0].fd, &st);
	if (r == 0)
		r = um_inode_new_root(fs, parts, n, &st, &fs->root);
	if (r == 0)
		return 0;
	snprintf(err, errlen, "cannot set up the root directory: %s", strerror(-r));
fail:
	for (uint16_t i = 0; i < n; i++)
		(void)close(parts[i].fd);
	free(parts);
	return r;
}

/* The xattr namespace of every marker (marker.h), chosen here once, before
 * the session starts any thread. Without an upper, only lower markers
 * (kernel overlayfs's opaque directories) are read: the option decides,
 * or whether trusted.* can be read at all. */
static int choose_markers(struct um_fs *fs, const struct um_config *cfg, char *err, size_t errlen)
{
	enum um_marker_ns ns = UM_MARKER_NS_USER;
	int r;

	if (fs->has_upper) {
		r = um_marker_choose(fs->layers[UM_UPPER].fd, cfg->userxattr, &ns, err, errlen);
		if (r < 0)
			return r;
	} else if (!cfg->userxattr) {
		/* Nothing is written here: an odd answer of the lower
		 * filesystem falls back to "root reads trusted.*". */
		r = um_marker_can_trusted(fs->layers[1].fd);
		ns = r > 0 || (r < 0 && geteuid() == 0) ? UM_MARKER_NS_TRUSTED : UM_MARKER_NS_USER;
	}
	um_marker_use(ns);
	if (ns == UM_MARKER_NS_USER && fs->fallthru) {
		/* mknod of any device but a whiteout needs CAP_MKNOD */
		um_log(UM_LOG_INFO, "markers are user.* attributes%s: fallthru=off",
		       cfg->userxattr ? "" : " (trusted.* cannot be written)");
		fs->fallthru = false;
	} else if (ns == UM_MARKER_NS_USER) {
		um_log(UM_LOG_INFO, "markers are user.* attributes%s", cfg->userxattr ? "" : " (trusted.* cannot be written)");
	}
	return 0;
}

/* Whiteouts (character devices 0:0) need no privilege since Linux 5.8;
 * where one cannot be made (an older kernel, a seccomp filter, an LSM)
 * the union could delete nothing a lower branch shows: refused at mount
 * rather than with EPERM at every unlink. */
static int probe_whiteout(struct um_fs *fs, char *err, size_t errlen)
{
	char tmp[UM_TMPNAME_MAX];
	int r;

	um_workdir_tmpname(tmp);
	r = um_marker_make_whiteout(fs->work_fd, tmp);
	if (r == 0)
		r = um_sys_unlinkat(fs->work_fd, tmp, 0);
	if (r < 0)
		snprintf(err, errlen,
			 "workdir: cannot make a whiteout (character device 0:0): %s; unprivileged whiteouts need Linux 5.8 or later: mount it read-only (-o ro) or as root",
			 strerror(-r));
	return r;
}

/* A lowerdir that was the upper of a union with metacopy files (format 3
 * or newer) would show their holes as data: theirs is in the lowers of
 * that union, and lookup follows metacopy marks in upper only. */
static int refuse_metacopy_lowers(struct um_fs *fs, const struct um_config *cfg, char *err, size_t errlen)
{
	for (unsigned l = 1; l < fs->n_layers; l++) {
		char v[16];
		uint64_t ver;
		int n = um_sys_lgetxattrat(fs->layers[l].fd, "", UM_XATTR_FORMAT, v, sizeof(v));

		if (n < 0 || um_marker_decode_uint(v, (size_t)n, UINT64_MAX, &ver) < 0 || ver < UM_FORMAT_METACOPY)
			continue;
		snprintf(err, errlen,
			 "lowerdir '%s': the upper directory of a union with metacopy files (on-disk format %llu), whose data is in that union's lowerdirs; it cannot be a lowerdir",
			 cfg->lowerdirs[l - 1], (unsigned long long)ver);
		return -EPROTO;
	}
	return 0;
}

int um_fs_new(const struct um_config *cfg, struct um_fs **ret, char *err, size_t errlen)
{
	struct um_fs *fs = calloc(1, sizeof(*fs));
	unsigned format = 0;
	int r = -ENOMEM;

	if (!fs)
		goto fail;
	fs->work_fd = fs->index_fd = fs->workdir_lock_fd = -1;
	fs->wh_fd = -1;
	pthread_mutex_init(&fs->rename_lock, NULL);
	pthread_mutex_init(&fs->wh_lock, NULL);
	pthread_mutex_init(&fs->files_lock, NULL);
	fs->n_layers = 1 + (unsigned)cfg->n_lower;
	fs->layers = calloc(fs->n_layers, sizeof(*fs->layers));
	if (!fs->layers)
		goto fail;
	for (unsigned l = 0; l < fs->n_layers; l++)
		fs->layers[l].fd = -1;
	fs->timeout = cfg->cache_timeout;
	fs->mountpoint = cfg->mountpoint;
	fs->has_upper = cfg->upperdir != NULL;
	fs->readonly = cfg->readonly || !fs->has_upper;
	fs->fallthru = cfg->fallthru && !fs->readonly;
	fs->metacopy = cfg->metacopy;
	fs->readdirplus = cfg->readdirplus;
	if (fs->readdirplus == UM_RDPLUS_ADAPTIVE && um_rdplus_new(&fs->rdplus) < 0)
		goto fail;
	fs->passthrough_all = cfg->passthrough == UM_PASSTHROUGH_ALL;
	fs->uring = cfg->uring && !cfg->single_thread && um_uring_built();
	if (cfg->passthrough != UM_PASSTHROUGH_OFF && um_pt_permitted(cfg->passthrough_given) &&
	    um_pt_new(&fs->pt, cfg->passthrough_given) < 0)
		goto fail;

	if (fs->has_upper) {
		r = um_branch_open(cfg->upperdir, "upperdir", &fs->layers[UM_UPPER], err, errlen);
		if (r < 0)
			goto out;
		r = lock_upper(fs, cfg->upperdir, err, errlen);
		if (r < 0)
			goto out;
		r = choose_markers(fs, cfg, err, errlen);
		if (r < 0)
			goto out;
		r = um_marker_check_format(fs->layers[UM_UPPER].fd, &format, err, errlen);
		if (r < 0)
			goto out;
		struct um_workdir w;

		r = um_workdir_open(cfg->workdir, fs->layers[UM_UPPER].dev, fs->readonly, &w, err, errlen);
		if (r < 0)
			goto out;
		fs->work_fd = w.work_fd;
		fs->index_fd = w.index_fd;
		fs->wh_fd = w.wh_fd;
		fs->workdir_lock_fd = w.lock_fd;
		r = um_ft_open(w.ft_fd, fs->layers[UM_UPPER].dev, &fs->ft);
		if (r < 0) {
			snprintf(err, errlen, "workdir: cannot read its fallthru markers: %s", strerror(-r));
			goto out;
		}
		atomic_init(&fs->format_metacopy, format >= UM_FORMAT_METACOPY);
		r = fs->readonly ? 0 : um_marker_set_format(fs->layers[UM_UPPER].fd, format > UM_FORMAT_BASE ? format : UM_FORMAT_BASE);
		if (r < 0) {
			snprintf(err, errlen, "upperdir: cannot record the on-disk format version (%s): %s",
				 UM_XATTR_FORMAT, strerror(-r));
			goto out;
		}
		r = fs->readonly || um_marker_keys->ns == UM_MARKER_NS_TRUSTED ? 0 : probe_whiteout(fs, err, errlen);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < cfg->n_lower; i++) {
		r = um_branch_open(cfg->lowerdirs[i], "lowerdir", &fs->layers[1 + i], err, errlen);
		if (r < 0)
			goto out;
	}
	/* sys.c reaches files it holds only as fds through /proc/self/fd, and
	 * on kernels before 6.13 the xattrs of branch entries too: without a
	 * /proc of this process, opaque directories would go unseen there. */
	r = proc_reaches(fs->layers[1].fd);
	if (r == -ENOENT) {
		snprintf(err, errlen,
			 "/proc is not mounted (or belongs to another PID namespace): unionmount reaches branch files through /proc/self/fd; mount proc first");
		goto out;
	}
	if (!fs->has_upper) {
		r = choose_markers(fs, cfg, err, errlen);
		if (r < 0)
			goto out;
	}
	r = refuse_metacopy_lowers(fs, cfg, err, errlen);
	if (r < 0)
		goto out;
	r = stack_id(fs, &fs->stackid);
	if (r < 0) {
		snprintf(err, errlen, "cannot name the lowerdirs through /proc/self/fd: %s", strerror(-r));
		goto out;
	}
	r = um_itable_new(&fs->itable);
	if (r < 0)
		goto fail;
	r = build_root(fs, err, errlen);
	if (r < 0)
		goto out;
	if (fs->has_upper) {
		r = um_marker_dir_flags(fs->layers[UM_UPPER].fd, fs->stackid);
		if (r < 0) {
			snprintf(err, errlen, "upperdir: cannot read its markers: %s", strerror(-r));
			goto out;
		}
		fs->root->flags |= um_inode_flags_of_marks(r);
	}
	*ret = fs;
	return 0;

fail:
	snprintf(err, errlen, "out of memory");
out:
	um_fs_free(fs);
	return r;
}

struct um_fs *um_fs_free(struct um_fs *fs)
{
	if (!fs)
		return NULL;
	/* Handles the kernel never released (open at the unmount), then
	 * every inode left: the root, and those the kernel never forgot. */
	um_files_free_all(fs);
	um_itable_free(fs->itable);
	for (unsigned l = 0; fs->layers && l < fs->n_layers; l++)
		um_branch_close(&fs->layers[l]);
	free(fs->layers);
	um_workdir_close(&(struct um_workdir){
		.work_fd = fs->work_fd, .index_fd = fs->index_fd, .ft_fd = -1, .wh_fd = fs->wh_fd,
		.lock_fd = fs->workdir_lock_fd });
	um_ft_free(fs->ft);
	um_rdplus_free(fs->rdplus);
	um_pt_free(fs->pt);
	free(fs);
	return NULL;
}
