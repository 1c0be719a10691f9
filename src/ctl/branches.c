#include "branches.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "branch.h"
#include "cleanup.h"
#include "copyup/workdir.h"
#include "marker.h"
#include "names.h"
#include "sys.h"

/* flock(fd, op | LOCK_NB), retried for up to two seconds while someone
 * else holds it: umount and fusermount3 -u return before the daemon has
 * seen the unmount and exited, so "fusermount3 -u M; unionctl diff ..."
 * must not race it. Returns 0, -EBUSY when it stays taken, or -errno. */
static int flock_wait(int fd, int op)
{
	int r = um_sys_flock(fd, op | LOCK_NB);

	for (int tries = 0; r == -EWOULDBLOCK && tries < 40; tries++) {
		(void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
		r = um_sys_flock(fd, op | LOCK_NB);
	}
	return r == -EWOULDBLOCK ? -EBUSY : r;
}

static int lock_upper(struct um_ctl_set *set, enum um_ctl_lock lock, char *err, size_t errlen)
{
	const struct um_layer *u = &set->layers[UM_UPPER];
	int r = flock_wait(u->fd, lock == UM_CTL_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH);

	if (r == -EBUSY)
		/* A read-write daemon holds it exclusively; a read-only one
		 * shared, which only a repair conflicts with. */
		snprintf(err, errlen, "upperdir: '%s' is in use by a mounted union; unmount it first", u->path);
	else if (r < 0)
		snprintf(err, errlen, "upperdir: cannot lock '%s': %s", u->path, strerror(-r));
	return r;
}

/* The daemon also locks WORKDIR/unionmount (copyup/workdir.c), which
 * covers a union mounted with another upper but this workdir: its mount
 * purges work/ and it shares the index, so neither may be read or
 * changed meanwhile. Same modes as the upper's lock. */
static int lock_workdir(struct um_ctl_set *set, enum um_ctl_lock lock, char *err, size_t errlen)
{
	int r = flock_wait(set->um_fd, lock == UM_CTL_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH);

	if (r == -EBUSY)
		snprintf(err, errlen, "workdir: '%s' is in use by a mounted union; unmount it first", set->workdir);
	else if (r < 0)
		snprintf(err, errlen, "workdir: cannot lock '%s/%s': %s", set->workdir, UM_WORKDIR_NAME, strerror(-r));
	return r;
}

/* A newer format is refused as the daemon refuses it; a value that does
 * not decode (too long to read included) is for check to report, not a
 * reason to stop. */
static int check_format(struct um_ctl_set *set, char *err, size_t errlen)
{
	int fd = set->layers[UM_UPPER].fd;
	char v[16];
	uint64_t ver;
	int n, r = um_marker_check_format(fd, NULL, err, errlen);

	if (r == 0)
		return 0;
	n = um_sys_lgetxattrat(fd, "", UM_XATTR_FORMAT, v, sizeof(v));
	/* At most 15 digits: a longer value counts as damaged, as before. */
	if (n >= 0 && n <= 15 && um_marker_decode_uint(v, (size_t)n, UINT64_MAX, &ver) == 0 && ver >= 1)
		return ver > UM_FORMAT_VERSION ? -EPROTO : r; /* err says which version to use */
	if (n < 0 && n != -ERANGE)
		return r; /* an I/O error, which err names */
	err[0] = '\0';
	set->format_damaged = true;
	return 0;
}

/* WORKDIR/unionmount/name, or -1 when it does not exist (never mounted
 * read-write, or not with this workdir). */
static int open_sub(int dirfd, const char *name, int *ret, const char *workdir, char *err, size_t errlen)
{
	int fd = dirfd < 0 ? -ENOENT : um_sys_openat(dirfd, name, O_RDONLY | O_DIRECTORY);

	if (fd == -ENOENT) {
		*ret = -1;
		return 0;
	}
	if (fd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s/%s/%s': %s", workdir, UM_WORKDIR_NAME, name,
			 strerror(-fd));
		return fd;
	}
	*ret = fd;
	return 0;
}

/* A directory's identity, to find it among another's parents. */
struct dir_id {
	dev_t dev;
	ino_t ino;
};

static int dir_id_of(int fd, struct dir_id *ret)
{
	struct stat st;
	int r = um_sys_fstat(fd, &st);

	if (r == 0)
		*ret = (struct dir_id){ .dev = st.st_dev, .ino = st.st_ino };
	return r;
}

/* Which of ids[] is the directory at fd or one of its parents: its index
 * (the nearest one), n when none is, or -errno. Walks "..", which path
 * resolution takes up across mount points, so a bind mount or a symlink
 * in the path given cannot hide the layout. */
static int find_above(int fd, const struct dir_id *ids, size_t n)
{
	struct dir_id cur, up;
	int at = -1, next, r = dir_id_of(fd, &cur);

	/* Deeper than any real path: a loop would be an fs bug, not ours. */
	for (unsigned depth = 0; r == 0 && depth < 4096; depth++) {
		for (size_t i = 0; i < n; i++)
			if (ids[i].dev == cur.dev && ids[i].ino == cur.ino) {
				r = (int)i;
				goto out;
			}
		next = um_sys_openat(at < 0 ? fd : at, "..", O_PATH | O_DIRECTORY);
		if (next < 0) {
			r = next;
			break;
		}
		if (at >= 0)
			(void)close(at);
		at = next;
		r = dir_id_of(at, &up);
		if (r == 0 && up.dev == cur.dev && up.ino == cur.ino)
			break; /* "/" is its own parent */
		cur = up;
	}
	if (r == 0)
		r = (int)n;
out:
	if (at >= 0)
		(void)close(at);
	return r;
}

/* The daemon's layout rules that protect files (config.c): a workdir
 * equal to, inside or above a branch would have --repair purge and
 * unlink the union's own files, and show our directories in the union.
 * Checked through the open fds, never the paths again. */
static int check_layout(struct um_ctl_set *set, char *err, size_t errlen)
{
	_cleanup_free_ struct dir_id *ids = calloc(set->n_layers, sizeof(*ids));
	struct dir_id work = { 0 };
	int r;

	if (!ids) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = dir_id_of(set->workdir_fd, &work);
	for (unsigned l = 0; r == 0 && l < set->n_layers; l++)
		r = dir_id_of(set->layers[l].fd, &ids[l]);
	if (r == 0)
		r = find_above(set->workdir_fd, ids, set->n_layers);
	if (r >= 0 && (unsigned)r < set->n_layers) {
		const char *opt = r == UM_UPPER ? "upperdir" : "lowerdir";

		if (ids[r].dev == work.dev && ids[r].ino == work.ino)
			snprintf(err, errlen, "workdir: '%s' is the %s itself, which the daemon refuses; give the union's workdir",
				 set->workdir, opt);
		else
			snprintf(err, errlen,
				 "workdir: '%s' is inside %s '%s', which the daemon refuses; give the union's workdir",
				 set->workdir, opt, set->layers[r].path);
		return -EINVAL;
	}
	for (unsigned l = 0; r >= 0 && l < set->n_layers; l++) {
		r = find_above(set->layers[l].fd, &work, 1);
		if (r == 0) {
			snprintf(err, errlen, "%s: '%s' is inside workdir '%s', which the daemon refuses; give the union's workdir",
				 l == UM_UPPER ? "upperdir" : "lowerdir", set->layers[l].path, set->workdir);
			return -EINVAL;
		}
	}
	if (r < 0)
		snprintf(err, errlen, "workdir: cannot check where '%s' is: %s", set->workdir, strerror(-r));
	return r < 0 ? r : 0;
}

static int open_workdir(struct um_ctl_set *set, const char *path, enum um_ctl_lock lock, char *err, size_t errlen)
{
	struct um_ctl_names ns = { 0 };
	struct stat st;
	int r, fd = um_sys_open_path(path, O_RDONLY | O_DIRECTORY);

	set->workdir = path;
	if (fd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s': %s; give the union's existing workdir", path,
			 strerror(-fd));
		return fd;
	}
	set->workdir_fd = fd;
	r = um_sys_fstat(fd, &st);
	if (r < 0) {
		snprintf(err, errlen, "workdir: cannot stat '%s': %s", path, strerror(-r));
		return r;
	}
	if (st.st_dev != set->layers[UM_UPPER].dev) {
		snprintf(err, errlen, "workdir: '%s' is not on the upperdir's filesystem, so it is not this union's workdir",
			 path);
		return -EXDEV;
	}
	r = check_layout(set, err, errlen);
	if (r < 0)
		return r;
	r = um_sys_openat(fd, UM_WORKDIR_NAME, O_RDONLY | O_DIRECTORY);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "workdir: cannot open '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-r));
		return r;
	}
	set->um_fd = r < 0 ? -1 : r;
	/* Absent: never used read-write, nothing of ours to read or repair. */
	r = set->um_fd < 0 ? 0 : lock_workdir(set, lock, err, errlen);
	if (r == 0)
		r = open_sub(set->um_fd, "work", &set->work_fd, path, err, errlen);
	if (r == 0)
		r = open_sub(set->um_fd, "index", &set->index_fd, path, err, errlen);
	if (r == 0)
		r = open_sub(set->um_fd, "fallthru", &set->ft_fd, path, err, errlen);
	if (r < 0 || set->index_fd < 0)
		return r;
	/* Whether any lower file may have its copy in the index decides
	 * whether a walk may skip subtrees no upper directory touches. */
	r = um_ctl_names_read_dir(&ns, set->index_fd, 0);
	set->index_used = ns.n > 0;
	um_ctl_names_release(&ns);
	if (r < 0)
		snprintf(err, errlen, "workdir: cannot list '%s/%s/index': %s", path, UM_WORKDIR_NAME, strerror(-r));
	return r;
}

static int stack_id(struct um_ctl_set *set, char *err, size_t errlen)
{
	_cleanup_free_ int *fds = calloc(set->n_layers, sizeof(*fds));
	int r;

	if (!fds) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned l = 1; l < set->n_layers; l++)
		fds[l - 1] = set->layers[l].fd;
	r = um_marker_stack_id(fds, set->n_layers - 1, &set->stackid);
	if (r < 0)
		snprintf(err, errlen, "cannot name the lowerdirs through /proc/self/fd: %s", strerror(-r));
	return r;
}

int um_ctl_set_open(const struct um_config *cfg, bool need_workdir, enum um_ctl_lock lock,
		    struct um_ctl_set *ret, char *err, size_t errlen)
{
	struct um_ctl_set set = { .workdir_fd = -1, .um_fd = -1, .work_fd = -1, .index_fd = -1, .ft_fd = -1 };
	enum um_marker_ns ns;
	struct stat ust;
	int r;

	err[0] = '\0';
	if (cfg->n_lower == 0) {
		snprintf(err, errlen, "missing lowerdir: add lowerdir=DIR[:DIR...] (top-most first) to -o");
		return -EINVAL;
	}
	if (!cfg->upperdir) {
		snprintf(err, errlen, "missing upperdir: unionctl works on a union's upper directory; add upperdir=DIR to -o");
		return -EINVAL;
	}
	if (need_workdir && !cfg->workdir) {
		snprintf(err, errlen, "missing workdir: add the union's workdir=DIR to -o");
		return -EINVAL;
	}
	set.n_layers = 1 + (unsigned)cfg->n_lower;
	set.layers = calloc(set.n_layers, sizeof(*set.layers));
	if (!set.layers) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned l = 0; l < set.n_layers; l++)
		set.layers[l].fd = -1;

	/* The lock before anything is read: a daemon mounting meanwhile
	 * would purge and rewrite what we look at. */
	r = um_branch_open(cfg->upperdir, "upperdir", &set.layers[UM_UPPER], err, errlen);
	if (r == 0)
		r = lock_upper(&set, lock, err, errlen);
	/* The daemon's choice of marker namespace (fs.c), and its refusals:
	 * read as the other namespace, an upper looks marker-free. Before
	 * anything is read, while unionctl has one thread. */
	if (r == 0)
		r = um_marker_choose(set.layers[UM_UPPER].fd, cfg->userxattr, &ns, err, errlen);
	if (r == 0) {
		um_marker_use(ns);
		r = check_format(&set, err, errlen);
	}
	if (r == 0)
		r = um_sys_fstat(set.layers[UM_UPPER].fd, &ust);
	for (size_t i = 0; r == 0 && i < cfg->n_lower; i++) {
		struct stat lst;

		r = um_branch_open(cfg->lowerdirs[i], "lowerdir", &set.layers[1 + i], err, errlen);
		if (r == 0)
			r = um_sys_fstat(set.layers[1 + i].fd, &lst);
		if (r == 0 && lst.st_dev == ust.st_dev && lst.st_ino == ust.st_ino) {
			snprintf(err, errlen, "lowerdir: '%s' is the upperdir itself", cfg->lowerdirs[i]);
			r = -EINVAL;
		}
	}
	if (r == 0 && cfg->workdir)
		r = open_workdir(&set, cfg->workdir, lock, err, errlen);
	if (r == 0)
		r = stack_id(&set, err, errlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "cannot open the branches: %s", strerror(-r));
		um_ctl_set_close(&set);
		return r;
	}
	*ret = set;
	return 0;
}

void um_ctl_set_close(struct um_ctl_set *set)
{
	int *fds[] = { &set->workdir_fd, &set->um_fd, &set->work_fd, &set->index_fd, &set->ft_fd };

	for (unsigned l = 0; set->layers && l < set->n_layers; l++)
		um_branch_close(&set->layers[l]); /* closing the upper fd drops the lock */
	free(set->layers);
	set->layers = NULL;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			(void)close(*fds[i]);
		*fds[i] = -1;
	}
}
