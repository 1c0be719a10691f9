#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <check.h>

#include "branch.h"

/* Set by um_fx_base_setup() in Check's parent process; forked test
 * children inherit the values, which is what lets the parent's teardown
 * find what a failed child left behind. */
static char *fx_base;
static char *fx_other_base;

static const char *tmp_dir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

/* mkdtemp under parent; returns the canonical path in *ret. */
static int make_temp(const char *parent, const char *prefix, char **ret)
{
	char *tmpl, *real;
	int e;

	if (asprintf(&tmpl, "%s/%s.XXXXXX", parent, prefix) < 0)
		return -ENOMEM;
	if (!mkdtemp(tmpl)) {
		e = errno;
		free(tmpl);
		return -e;
	}
	/* Canonical, because code under test compares realpath()s. */
	real = realpath(tmpl, NULL);
	e = errno;
	if (!real) {
		(void)rmdir(tmpl); /* just made, empty */
		free(tmpl);
		return -e;
	}
	free(tmpl);
	*ret = real;
	return 0;
}

/* ---- removal ------------------------------------------------------------ */

struct where {
	dev_t dev;
	uint64_t mnt_id; /* 0 when statx cannot tell */
};

static int where_at(int dfd, const char *name, int flags, struct where *ret)
{
	struct statx stx;

	if (statx(dfd, name, flags | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
		return -errno;
	ret->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	ret->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
	return 0;
}

static bool same_mount(const struct where *a, const struct where *b)
{
	return a->dev == b->dev && (!a->mnt_id || !b->mnt_id || a->mnt_id == b->mnt_id);
}

static int rm_rf(int dfd, const char *name, const struct where *ref);

static int rm_children(int dfd, const char *name, const struct stat *st, const struct where *ref)
{
	struct stat fst;
	struct where here = { 0 };
	DIR *d;
	struct dirent *de;
	int fd, r = 0, q;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		/* A test made it unreadable (mode 0000 or 0500); it is ours. */
		if (fchmodat(dfd, name, (st->st_mode & 07777) | 0700, 0) < 0)
			return -errno;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	/* Same object as the one we stat'ed, and still on our mount: never
	 * walk into a filesystem mounted (or bind-mounted) below. */
	if (fstat(fd, &fst) < 0 || fst.st_ino != st->st_ino || where_at(fd, "", AT_EMPTY_PATH, &here) < 0 ||
	    !same_mount(&here, ref)) {
		(void)close(fd); /* read-only directory fd */
		return -EBUSY;
	}
	if (!(fst.st_mode & S_IWUSR) && fchmod(fd, (fst.st_mode & 07777) | 0700) < 0) {
		r = -errno;
		(void)close(fd); /* read-only directory fd */
		return r;
	}

	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		(void)close(fd); /* read-only directory fd */
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		q = rm_rf(dirfd(d), de->d_name, ref);
		if (q < 0 && r == 0)
			r = q;
	}
	if (errno && r == 0)
		r = -errno;
	(void)closedir(d); /* read-only directory stream */
	return r;
}

static int rm_rf(int dfd, const char *name, const struct where *ref)
{
	struct stat st;
	int r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	r = rm_children(dfd, name, &st, ref);
	if (r < 0)
		return r;
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int um_fx_rm_rf_at(int dfd, const char *name)
{
	struct where ref = { 0 }, up = { 0 };
	char *dotdot;
	int r, q;

	r = where_at(dfd, name, 0, &ref);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	/* name itself must not be a mount root: its contents belong to the
	 * mounted filesystem (a bind mount's to its source). ".." of a mount
	 * root lies on the mount below, which tells without needing statx's
	 * STATX_ATTR_MOUNT_ROOT. Not a directory: q < 0, nothing to descend. */
	if (asprintf(&dotdot, "%s/..", name) < 0)
		return -ENOMEM;
	q = where_at(dfd, dotdot, 0, &up);
	free(dotdot);
	if (q == 0 && !same_mount(&ref, &up))
		return -EBUSY;
	return rm_rf(dfd, name, &ref);
}

/* Mounts on dir or below it, in mountinfo order (parents before children). */
static int mounts_below(const char *dir, char ***ret, size_t *ret_n)
{
	size_t len = strlen(dir), n = 0;
	char **v = NULL, *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mp[4096];
		char **nv;

		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		um_mountinfo_unescape(mp);
		if (strncmp(mp, dir, len) || (mp[len] != '\0' && mp[len] != '/'))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[n] = strdup(mp);
		if (v[n])
			n++;
	}
	free(line);
	(void)fclose(f); /* read-only */
	*ret = v;
	*ret_n = n;
	return 0;
}

int um_fx_umount_below(const char *dir)
{
	int count = 0;

	/* Stacked mounts show up one layer per pass; a few passes suffice. */
	for (int pass = 0; pass < 8; pass++) {
		char **v;
		size_t n;
		int done = 0;

		if (mounts_below(dir, &v, &n) < 0)
			return count;
		for (size_t i = n; i-- > 0;) {
			if (umount2(v[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				done++;
			free(v[i]);
		}
		free(v);
		count += done;
		if (n == 0 || done == 0)
			break;
	}
	return count;
}

static void remove_tree(const char *path)
{
	int r;

	if (!path)
		return;
	(void)um_fx_umount_below(path);
	r = um_fx_rm_rf_at(AT_FDCWD, path);
	if (r < 0)
		fprintf(stderr, "fixture: cannot remove %s: %s\n", path, strerror(-r));
}

/* ---- base and namespace ------------------------------------------------- */

void um_fx_base_setup(void)
{
	struct stat a, b;
	int r;

	r = make_temp(tmp_dir(), "unionmount-test", &fx_base);
	ck_assert_msg(r == 0, "cannot make a temp dir under %s: %s", tmp_dir(), strerror(-r));
	/* A second base on another filesystem, for um_fx_other_fs() when we
	 * cannot mount a tmpfs ourselves. */
	if (geteuid() != 0 && stat(fx_base, &a) == 0 && stat("/dev/shm", &b) == 0 && a.st_dev != b.st_dev)
		(void)make_temp("/dev/shm", "unionmount-test", &fx_other_base); /* optional */
}

void um_fx_base_teardown(void)
{
	remove_tree(fx_base);
	remove_tree(fx_other_base);
	free(fx_base);
	free(fx_other_base);
	fx_base = fx_other_base = NULL;
}

/* The mount(2) calls here give "none" for the source and type the kernel
 * ignores (propagation, bind, remount): with NULL, valgrind reports a
 * read of unaddressable bytes. */
void um_fx_private_mounts(void)
{
	if (geteuid() != 0)
		return;
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		fprintf(stderr, "fixture: no private mount namespace (%s); test mounts are visible outside\n",
			strerror(errno));
}

/* ---- the per-test fixture ----------------------------------------------- */

int um_fx_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	(void)closedir(d); /* read-only directory stream */
	return n - 1;     /* not counting d's own fd */
}

int um_fx_leaked_fds(const struct um_fx *fx)
{
	return um_fx_count_fds() - fx->fds_at_init;
}

int um_fx_init(struct um_fx *fx)
{
	int r;

	*fx = (struct um_fx){ .root_fd = -1 };
	fx->fds_at_init = um_fx_count_fds();
	r = make_temp(fx_base ? fx_base : tmp_dir(), fx_base ? "t" : "unionmount-test", &fx->root);
	if (r < 0)
		return r;
	fx->root_fd = open(fx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fx->root_fd < 0) {
		r = -errno;
		um_fx_release(fx);
		return r;
	}
	fx->fds_at_init++; /* root_fd is the fixture's, not a leak */
	return 0;
}

void um_fx_release(struct um_fx *fx)
{
	if (fx->root_fd >= 0)
		(void)close(fx->root_fd); /* O_PATH fd */
	remove_tree(fx->root);
	remove_tree(fx->other);
	free(fx->root);
	free(fx->other);
	for (size_t i = 0; i < fx->n_paths; i++)
		free(fx->paths[i]);
	free(fx->paths);
	*fx = (struct um_fx){ .root_fd = -1 };
}

const char *um_fx_path(struct um_fx *fx, const char *rel)
{
	char **v;
	char *p;
	int r;

	if (rel && rel[0] == '/')
		return rel;
	if (rel && *rel)
		r = asprintf(&p, "%s/%s", fx->root, rel);
	else
		r = asprintf(&p, "%s", fx->root);
	if (r < 0)
		return NULL;
	v = realloc(fx->paths, (fx->n_paths + 1) * sizeof(*v));
	if (!v) {
		free(p);
		return NULL;
	}
	fx->paths = v;
	fx->paths[fx->n_paths++] = p;
	return p;
}

/* mkdir -p of rel's first len bytes, one component at a time under root_fd. */
static int mkdir_p(struct um_fx *fx, const char *rel, size_t len)
{
	char *buf = strndup(rel, len);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (char *p = buf;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (*buf && mkdirat(fx->root_fd, buf, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	free(buf);
	return r;
}

static int mkdir_parents(struct um_fx *fx, const char *rel)
{
	const char *slash = strrchr(rel, '/');

	return slash ? mkdir_p(fx, rel, (size_t)(slash - rel)) : 0;
}

int um_fx_mkdir(struct um_fx *fx, const char *rel)
{
	return mkdir_p(fx, rel, strlen(rel));
}

int um_fx_file(struct um_fx *fx, const char *rel, const char *content)
{
	size_t len = content ? strlen(content) : 0;
	int fd, r;

	r = mkdir_parents(fx, rel);
	if (r < 0)
		return r;
	fd = openat(fx->root_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (len && write(fd, content, len) != (ssize_t)len)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int um_fx_symlink(struct um_fx *fx, const char *rel, const char *target)
{
	int r = mkdir_parents(fx, rel);

	if (r < 0)
		return r;
	return symlinkat(target, fx->root_fd, rel) < 0 ? -errno : 0;
}

static int build_item(struct um_fx *fx, char *item)
{
	size_t len = strlen(item);
	char *arrow = strstr(item, "->");
	char *eq = strchr(item, '=');

	if (arrow) {
		*arrow = '\0';
		return um_fx_symlink(fx, item, arrow + 2);
	}
	if (eq) {
		*eq = '\0';
		return um_fx_file(fx, item, eq + 1);
	}
	if (item[len - 1] == '/')
		return mkdir_p(fx, item, len - 1);
	return um_fx_file(fx, item, NULL);
}

int um_fx_build(struct um_fx *fx, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, " \t\n", &save); item; item = strtok_r(NULL, " \t\n", &save)) {
		r = build_item(fx, item);
		if (r < 0) {
			fprintf(stderr, "fixture: cannot build '%s': %s\n", item, strerror(-r));
			break;
		}
	}
	free(copy);
	return r;
}

/* ---- mounts ------------------------------------------------------------- */

int um_fx_mount_tmpfs(struct um_fx *fx, const char *rel)
{
	const char *path = um_fx_path(fx, rel);
	int r = um_fx_mkdir(fx, rel);

	if (r < 0)
		return r;
	if (!path)
		return -ENOMEM;
	if (mount("unionmount-test", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
		return -errno;
	return 0;
}

int um_fx_remount_ro(struct um_fx *fx, const char *rel)
{
	const char *path = um_fx_path(fx, rel);

	if (!path)
		return -ENOMEM;
	/* MS_BIND makes this change only the mount's flags, which works for
	 * bind mounts and tmpfs alike. */
	if (mount("none", path, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return -errno;
	return 0;
}

int um_fx_bind(struct um_fx *fx, const char *src, const char *dst)
{
	const char *s = um_fx_path(fx, src), *d = um_fx_path(fx, dst);
	int r = um_fx_mkdir(fx, dst);

	if (r < 0)
		return r;
	if (!s || !d)
		return -ENOMEM;
	if (mount(s, d, "none", MS_BIND, NULL) < 0)
		return -errno;
	return 0;
}

int um_fx_other_fs(struct um_fx *fx, const char **ret_path)
{
	struct stat a, b;
	int r;

	if (geteuid() == 0) {
		r = um_fx_mount_tmpfs(fx, "other-fs");
		if (r < 0)
			return r;
		*ret_path = um_fx_path(fx, "other-fs");
		return *ret_path ? 0 : -ENOMEM;
	}
	if (!fx->other) {
		if (stat(fx->root, &a) < 0 || stat("/dev/shm", &b) < 0 || a.st_dev == b.st_dev)
			return -ENODEV;
		r = make_temp(fx_other_base ? fx_other_base : "/dev/shm", fx_other_base ? "t" : "unionmount-test",
			      &fx->other);
		if (r < 0)
			return -ENODEV;
	}
	*ret_path = fx->other;
	return 0;
}

int um_fx_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
