/* Temporary directory trees for unit tests: one mkdtemp'd root per test,
 * filled with short calls, removed with *at() calls that never follow a
 * symlink nor cross into another mount.
 *
 * Typical TCase wiring:
 *
 *   tcase_add_unchecked_fixture(tc, um_fx_base_setup, um_fx_base_teardown);
 *   tcase_add_checked_fixture(tc, setup, teardown);   // um_fx_init/_release
 *
 * The per-test teardown does not run when a test fails in Check's fork
 * mode (the child just exits), so the unchecked "base" fixture, which runs
 * in the parent, puts every test root under one directory and removes it,
 * mounts included, whatever the children left behind.
 *
 * Functions return 0 (or a count) or a negative errno, as in src/.
 * Relative names are relative to the fixture root. */
#ifndef UM_TEST_FIXTURE_H
#define UM_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <check.h>

struct um_fx {
	char *root;      /* canonical absolute path of the test's temp dir */
	int root_fd;     /* O_PATH | O_DIRECTORY on root */
	char *other;     /* temp dir made outside root by um_fx_other_fs(), or NULL */
	char **paths;    /* strings handed out by um_fx_path(), freed on release */
	size_t n_paths;
	int fds_at_init; /* for um_fx_leaked_fds() */
};

/* Unchecked fixture pair (void(void), as Check wants): a base directory
 * under $TMPDIR (or /tmp) for every um_fx_init() until teardown, which
 * unmounts whatever is mounted below it and removes it. */
void um_fx_base_setup(void);
void um_fx_base_teardown(void);

/* When root, move this process into a private mount namespace, so that a
 * mount a test forgets dies with the process instead of outliving it.
 * Call once from main(); does nothing (and says why on stderr) otherwise. */
void um_fx_private_mounts(void);

/* mkdtemp a fresh root (under the base when there is one). */
int um_fx_init(struct um_fx *fx);
/* Unmount everything below root, remove root and other, free. Accepts a
 * zeroed or already released fixture. */
void um_fx_release(struct um_fx *fx);

/* root + "/" + rel (rel NULL or "" gives root; an absolute rel is returned
 * as is). Owned by the fixture; NULL only when out of memory. */
const char *um_fx_path(struct um_fx *fx, const char *rel);

/* mkdir -p. */
int um_fx_mkdir(struct um_fx *fx, const char *rel);
/* A new regular file holding content (NULL: empty); parents are made. */
int um_fx_file(struct um_fx *fx, const char *rel, const char *content);
/* A new symlink rel -> target; parents are made. */
int um_fx_symlink(struct um_fx *fx, const char *rel, const char *target);
/* Many of the above in one string of space-separated items:
 *   "dir/"        a directory (mkdir -p)
 *   "file"        an empty file          "file=text"  a file holding text
 *   "link->dest"  a symlink to dest
 * e.g. um_fx_build(fx, "l1/a l1/b=hello l2/sub/ up/ work/ l2/ln->../l1"). */
int um_fx_build(struct um_fx *fx, const char *spec);

/* Mount a small tmpfs on rel (made first). Needs root: -EPERM otherwise. */
int um_fx_mount_tmpfs(struct um_fx *fx, const char *rel);
/* Remount the mount on rel read-only. */
int um_fx_remount_ro(struct um_fx *fx, const char *rel);
/* Bind-mount src on dst (made first). Needs root. */
int um_fx_bind(struct um_fx *fx, const char *src, const char *dst);
/* An empty directory on a filesystem other than root's: a tmpfs mounted in
 * root when we are root, else a temp dir in /dev/shm when that is another
 * filesystem. -ENODEV when there is none; *ret_path is owned by fx. */
int um_fx_other_fs(struct um_fx *fx, const char **ret_path);

/* Detach every mount on dir or below it, deepest first. Returns how many. */
int um_fx_umount_below(const char *dir);
/* rm -rf dfd/name: never follows symlinks, never descends into another
 * mount (-EBUSY for that subtree), makes unreadable directories of ours
 * readable first. Missing name: 0. Keeps going after errors and returns
 * the first. */
int um_fx_rm_rf_at(int dfd, const char *name);

/* Run every test of s (verbosity from CK_VERBOSITY, so meson's TAP stays
 * clean) and return the exit status for main(). */
int um_fx_run(Suite *s);

/* Open fds now, and how many more than at um_fx_init(). */
int um_fx_count_fds(void);
int um_fx_leaked_fds(const struct um_fx *fx);

#endif
