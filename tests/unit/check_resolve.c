/* Name resolution and the in-memory merge on plain temp trees, no FUSE:
 * four layers U (0), L1, L2, L3 built under one temp dir. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fixture.h"
#include "ino.h"
#include "inode.h"
#include "marker.h"
#include "readdir/readdir.h"
#include "resolve.h"

static char tmp[] = "/tmp/check_resolve.XXXXXX";
static struct um_inode root;
static struct um_fs fs;
static int layer_fd[4];
static const char *layer_name[4] = { "U", "L1", "L2", "L3" };

static void mk(int l, const char *path, const char *what)
{
	char full[512];

	snprintf(full, sizeof(full), "%s/%s/%s", tmp, layer_name[l], path);
	if (!strcmp(what, "dir"))
		ck_assert_int_eq(mkdir(full, 0755), 0);
	else if (!strcmp(what, "wh"))
		ck_assert_int_eq(mknod(full, S_IFCHR | 0, makedev(0, 0)), 0);
	else if (!strcmp(what, "opaque"))
		ck_assert_int_eq(setxattr(full, UM_XATTR_OPAQUE, "y", 1, 0), 0);
	else {
		FILE *f = fopen(full, "w");

		ck_assert_ptr_nonnull(f);
		fputs(what, f);
		fclose(f);
	}
}

/* What the union numbers layer l's object at path. */
static uint64_t enc(int l, const char *path)
{
	struct stat st;

	ck_assert_int_eq(fstatat(layer_fd[l], path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return um_ino_encode((unsigned)l, st.st_ino, st.st_dev, fs.layers[l].dev);
}

static void setup(void)
{
	if (geteuid() != 0)
		return;
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	for (int l = 0; l < 4; l++) {
		char p[256];

		snprintf(p, sizeof(p), "%s/%s", tmp, layer_name[l]);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		layer_fd[l] = open(p, O_RDONLY | O_DIRECTORY);
		ck_assert_int_ge(layer_fd[l], 0);
	}
	mk(1, "a", "L1"); mk(3, "a", "L3");             /* shadowed file */
	mk(0, "b", "wh"); mk(2, "b", "L2");             /* whiteout in upper */
	mk(2, "c", "wh"); mk(3, "c", "L3");             /* whiteout in a middle lower */
	mk(0, "d", "dir"); mk(2, "d", "dir"); mk(3, "d", "dir"); /* merged, absent in L1 */
	mk(0, "d/u", "U"); mk(2, "d/x", "L2"); mk(3, "d/x", "L3"); mk(3, "d/y", "L3");
	mk(1, "o", "dir"); mk(1, "o", "opaque"); mk(3, "o", "dir"); /* opaque in a lower */
	mk(3, "o/hidden", "L3");
	mk(1, "f", "file"); mk(2, "f", "dir");          /* file above dir */
	mk(0, "g", "dir"); mk(1, "g", "file"); mk(2, "g", "dir"); /* dir above file above dir */

	root.type = S_IFDIR;
	root.nparts = 4;
	root.parts = calloc(4, sizeof(*root.parts));
	for (int l = 0; l < 4; l++)
		root.parts[l] = (struct um_part){ .fd = layer_fd[l], .layer = (uint16_t)l };
	pthread_rwlock_init(&root.lock, NULL);
	fs.n_layers = 4;
	fs.has_upper = true;
	fs.layers = calloc(4, sizeof(*fs.layers));
	for (int l = 0; l < 4; l++) {
		struct stat st;

		ck_assert_int_eq(fstat(layer_fd[l], &st), 0);
		fs.layers[l] = (struct um_layer){ .fd = layer_fd[l], .dev = st.st_dev };
	}
}

static void teardown(void)
{
	if (geteuid() != 0)
		return;
	for (int l = 0; l < 4; l++)
		close(layer_fd[l]);
	free(root.parts);
	free(fs.layers);
	pthread_rwlock_destroy(&root.lock);
	ck_assert_int_eq(um_fx_rm_rf_at(AT_FDCWD, tmp), 0);
	strcpy(tmp, "/tmp/check_resolve.XXXXXX");
}

#define NEED_ROOT()                                                   \
	do {                                                          \
		if (geteuid() != 0) {                                 \
			fputs("skip: whiteouts and trusted xattrs need root\n", stderr); \
			return;                                       \
		}                                                     \
	} while (0)

START_TEST(resolve_files)
{
	struct um_found f;

	NEED_ROOT();
	ck_assert_int_eq(um_resolve(&fs, &root, "a", &f), 0);
	ck_assert_uint_eq(f.layer, 1);
	ck_assert(S_ISREG(f.st.st_mode));
	ck_assert_uint_eq(f.st_ino, enc(1, "a"));
	ck_assert_int_eq(um_resolve(&fs, &root, "b", &f), -ENOENT);
	ck_assert_int_eq(um_resolve(&fs, &root, "c", &f), -ENOENT);
	ck_assert_int_eq(um_resolve(&fs, &root, "nothing", &f), -ENOENT);
	ck_assert_int_eq(um_resolve(&fs, &root, "f", &f), 0);
	ck_assert(S_ISREG(f.st.st_mode));
	ck_assert_uint_eq(f.layer, 1);
}
END_TEST

START_TEST(resolve_dirs)
{
	struct um_found f;

	NEED_ROOT();
	/* merged across a layer where it is absent; numbered by its top-most lower part */
	ck_assert_int_eq(um_resolve(&fs, &root, "d", &f), 0);
	ck_assert_uint_eq(f.nparts, 3);
	/* root's part i is layer i */
	ck_assert_uint_eq(f.from[0], 0);
	ck_assert_uint_eq(f.from[1], 2);
	ck_assert_uint_eq(f.from[2], 3);
	ck_assert_uint_eq(f.st_ino, enc(2, "d"));
	um_found_release(&f);
	/* opaque in L1 hides L3 */
	ck_assert_int_eq(um_resolve(&fs, &root, "o", &f), 0);
	ck_assert_uint_eq(f.nparts, 1);
	ck_assert_uint_eq(f.from[0], 1);
	um_found_release(&f);
	/* a file between two dirs ends the merge; upper-only dir keeps upper's number */
	ck_assert_int_eq(um_resolve(&fs, &root, "g", &f), 0);
	ck_assert_uint_eq(f.nparts, 1);
	ck_assert_uint_eq(f.st_ino, enc(0, "g"));
	um_found_release(&f);
}
END_TEST

/* A listing's hint (the layer each name was listed from) changes no
 * answer: taken in a directory without an upper part, ignored in one
 * with (whose upper may have changed since the listing). */
START_TEST(resolve_from_listing_hint)
{
	struct um_inode lo = { .type = S_IFDIR, .nparts = 3 };
	struct um_dirsnap s;
	struct um_found f, g;

	NEED_ROOT();
	ck_assert_int_eq(um_resolve_from(&fs, &root, "a", 3, &f), 0);
	ck_assert_uint_eq(f.layer, 1);
	ck_assert_uint_eq(f.st_ino, enc(1, "a"));
	ck_assert_int_eq(um_resolve_from(&fs, &root, "b", 2, &f), -ENOENT);

	lo.parts = &root.parts[1];
	pthread_rwlock_init(&lo.lock, NULL);
	ck_assert_int_eq(um_dir_merge(&fs, &lo, 1, &s), 0);
	ck_assert_uint_ge(s.n, 7); /* . .. a b d o f g (c whited out in L2) */
	for (size_t i = 2; i < s.n; i++) {
		const char *name = um_dirent_name(&s, &s.ents[i]);

		ck_assert_int_eq(um_resolve(&fs, &lo, name, &f), 0);
		ck_assert_int_eq(um_resolve_from(&fs, &lo, name, s.ents[i].layer, &g), 0);
		ck_assert_msg(f.layer == g.layer && f.st_ino == g.st_ino && f.nparts == g.nparts,
			      "%s: layer %u/%u st_ino %llx/%llx nparts %u/%u", name, f.layer, g.layer,
			      (unsigned long long)f.st_ino, (unsigned long long)g.st_ino, f.nparts, g.nparts);
		for (uint16_t k = 0; k < f.nfrom; k++)
			ck_assert_uint_eq(f.from[k], g.from[k]);
		um_found_release(&f);
		um_found_release(&g);
	}
	um_dirsnap_release(&s);
	pthread_rwlock_destroy(&lo.lock);
}
END_TEST

static const struct um_dirent *find(const struct um_dirsnap *s, const char *name)
{
	const struct um_dirent *hit = NULL;

	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(um_dirent_name(s, &s->ents[i]), name)) {
			ck_assert_msg(!hit, "%s listed twice", name);
			hit = &s->ents[i];
		}
	}
	return hit;
}

START_TEST(merge_root)
{
	struct um_dirsnap s;
	const struct um_dirent *e;
	struct um_found f;

	NEED_ROOT();
	root.st_ino = 99;
	ck_assert_int_eq(um_dir_merge(&fs, &root, 98, &s), 0);
	ck_assert_str_eq(um_dirent_name(&s, &s.ents[0]), ".");
	ck_assert_uint_eq(s.ents[0].ino, 99);
	ck_assert_str_eq(um_dirent_name(&s, &s.ents[1]), "..");
	ck_assert_uint_eq(s.ents[1].ino, 98);
	/* . .. a d o f g */
	ck_assert_uint_eq(s.n, 7);
	ck_assert_ptr_null(find(&s, "b"));
	ck_assert_ptr_null(find(&s, "c"));
	e = find(&s, "a");
	ck_assert_uint_eq(e->type, DT_REG);
	ck_assert_uint_eq(e->ino, enc(1, "a"));
	ck_assert_uint_eq(find(&s, "f")->type, DT_REG);
	ck_assert_uint_eq(find(&s, "g")->type, DT_DIR);
	/* d_ino of a merged directory agrees with what lookup gives */
	ck_assert_int_eq(um_resolve(&fs, &root, "d", &f), 0);
	ck_assert_uint_eq(find(&s, "d")->ino, f.st_ino);
	um_found_release(&f);
	ck_assert_int_eq(um_resolve(&fs, &root, "g", &f), 0);
	ck_assert_uint_eq(find(&s, "g")->ino, f.st_ino);
	um_found_release(&f);
	um_dirsnap_release(&s);
}
END_TEST

START_TEST(merge_subdir)
{
	struct um_inode d = { 0 };
	struct um_found f;
	struct um_dirsnap s;

	NEED_ROOT();
	ck_assert_int_eq(um_resolve(&fs, &root, "d", &f), 0);
	d.type = S_IFDIR;
	ck_assert_int_eq(um_found_open_parts(&root, "d", &f, &d.parts), 0);
	d.nparts = f.nparts;
	ck_assert_uint_eq(d.parts[1].layer, 2);
	pthread_rwlock_init(&d.lock, NULL);
	ck_assert_int_eq(um_dir_merge(&fs, &d, 1, &s), 0);
	ck_assert_uint_eq(s.n, 5); /* . .. u x y */
	ck_assert_uint_eq(find(&s, "x")->ino, enc(2, "d/x"));
	ck_assert_ptr_nonnull(find(&s, "u"));
	ck_assert_ptr_nonnull(find(&s, "y"));
	um_dirsnap_release(&s);
	pthread_rwlock_destroy(&d.lock);
	for (uint16_t i = 0; i < d.nparts; i++)
		close(d.parts[i].fd);
	free(d.parts);
	um_found_release(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc;

	if (geteuid() != 0) {
		/* TAP for "whole program skipped" */
		puts("1..0 # SKIP whiteouts and trusted xattrs need root");
		return 0;
	}
	tc = tcase_create("um_resolve()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, resolve_files);
	tcase_add_test(tc, resolve_dirs);
	tcase_add_test(tc, resolve_from_listing_hint);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_dir_merge()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, merge_root);
	tcase_add_test(tc, merge_subdir);
	suite_add_tcase(s, tc);

	return um_fx_run(s);
}
