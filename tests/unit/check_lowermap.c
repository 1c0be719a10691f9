#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "readdir/lowermap.h"

#define NFILES 3000

static struct um_fx fx;
static char **order; /* the directory's names as readdir(3) gives them */
static size_t norder;

/* A directory of NFILES files whose names differ in length and bytes, a
 * subdirectory, a symlink and a fifo; order[] as getdents lists it. */
static void setup(void)
{
	char name[64];
	DIR *d;
	struct dirent *e;

	ck_assert_int_eq(um_fx_init(&fx), 0);
	ck_assert_int_eq(um_fx_build(&fx, "d/sub/ d/link->nowhere"), 0);
	ck_assert_int_eq(mkfifoat(fx.root_fd, "d/fifo", 0600) == 0 ? 0 : -errno, 0);
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "d/%.*s%d", i % 40, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
		ck_assert_int_eq(um_fx_file(&fx, name, NULL), 0);
	}
	d = opendir(um_fx_path(&fx, "d"));
	ck_assert_ptr_nonnull(d);
	order = calloc(NFILES + 8, sizeof(*order));
	norder = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			order[norder++] = strdup(e->d_name);
	closedir(d);
	ck_assert_uint_eq(norder, NFILES + 3);
}

static void teardown(void)
{
	for (size_t i = 0; i < norder; i++)
		free(order[i]);
	free(order);
	um_fx_release(&fx);
}

static struct um_lowermap *read_map(void)
{
	struct um_lowermap *m;
	int fd = openat(fx.root_fd, "d", O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(um_lowermap_read(fd, &m), 0);
	close(fd);
	return m;
}

/* name is in the map with the number and type lstat gives. */
static void check_found(struct um_lowermap *m, const char *name)
{
	char path[128];
	struct stat st;
	uint64_t ino = 0;
	uint8_t type = DT_UNKNOWN;

	snprintf(path, sizeof(path), "d/%s", name);
	ck_assert_int_eq(fstatat(fx.root_fd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_msg(um_lowermap_find(m, name, &ino, &type) == 1, "%s not found", name);
	ck_assert_uint_eq(ino, st.st_ino);
	/* The fixture's filesystem (tmp) fills in d_type. */
	ck_assert_uint_eq(type, IFTODT(st.st_mode));
}

/* Every name in the listing's order or its reverse, some asked twice (a
 * reply that was full), some passed over (shadowed from above): all found
 * by their place. */
static void ask_in_order(bool backwards)
{
	struct um_lowermap *m = read_map();

	for (size_t k = 0; k < norder; k++) {
		size_t i = backwards ? norder - 1 - k : k;

		if (i % 10 == 3)
			continue;
		check_found(m, order[i]);
		if (i % 7 == 0)
			check_found(m, order[i]);
	}
	ck_assert_uint_eq(um_lowermap_indexed_lookups(m), 0);
	um_lowermap_free(m);
}

START_TEST(in_listing_order_needs_no_index)
{
	ask_in_order(false);
}
END_TEST

START_TEST(in_reverse_order_needs_no_index)
{
	/* An upper that lists newest first (tmpfs). */
	ask_in_order(true);
}
END_TEST

START_TEST(skips_up_to_the_window)
{
	struct um_lowermap *m = read_map();

	/* Seven names passed over each time, either way. */
	for (size_t i = 0; i < norder; i += 8)
		check_found(m, order[i]);
	for (size_t i = norder - 1; i >= 8; i -= 8)
		check_found(m, order[i]);
	ck_assert_uint_eq(um_lowermap_indexed_lookups(m), 0);
	um_lowermap_free(m);
}
END_TEST

START_TEST(order_taken_up_again)
{
	struct um_lowermap *m = read_map();

	/* Many names not there (the window fails each time), then every
	 * name in order: after a few the window finds them again. */
	for (int i = 0; i < 100; i++) {
		char name[32];
		uint64_t ino;
		uint8_t type;

		snprintf(name, sizeof(name), "absent-%d", i);
		ck_assert_int_eq(um_lowermap_find(m, name, &ino, &type), 0);
	}
	for (size_t i = 0; i < norder; i++)
		check_found(m, order[i]);
	ck_assert_uint_lt(um_lowermap_indexed_lookups(m), 100 + 32);
	um_lowermap_free(m);
}
END_TEST

START_TEST(starting_late_needs_no_index)
{
	struct um_lowermap *m = read_map();

	for (size_t i = norder / 2; i < norder; i++)
		check_found(m, order[i]);
	ck_assert_uint_eq(um_lowermap_indexed_lookups(m), 0);
	um_lowermap_free(m);
}
END_TEST

START_TEST(any_order_finds_all)
{
	struct um_lowermap *m = read_map();

	/* A stride through it: every name is still found. */
	for (size_t i = 0; i < norder; i++)
		check_found(m, order[(i * 7919) % norder]);
	ck_assert_uint_gt(um_lowermap_indexed_lookups(m), 0);
	um_lowermap_free(m);
}
END_TEST

START_TEST(absent_names)
{
	struct um_lowermap *m = read_map();
	uint64_t ino;
	uint8_t type;

	check_found(m, order[0]);
	ck_assert_int_eq(um_lowermap_find(m, ".", &ino, &type), 0);
	ck_assert_int_eq(um_lowermap_find(m, "..", &ino, &type), 0);
	ck_assert_int_eq(um_lowermap_find(m, "absent", &ino, &type), 0);
	/* a prefix and an extension of listed names are other names */
	ck_assert_int_eq(um_lowermap_find(m, "x", &ino, &type), 0);
	ck_assert_int_eq(um_lowermap_find(m, "x10", &ino, &type), 0);
	ck_assert_int_eq(um_lowermap_find(m, "subx", &ino, &type), 0);
	/* and the map still answers, in order or not */
	for (size_t i = 1; i < norder; i++)
		check_found(m, order[i]);
	check_found(m, order[0]);
	um_lowermap_free(m);
}
END_TEST

START_TEST(empty_directory)
{
	struct um_lowermap *m;
	uint64_t ino;
	uint8_t type;
	int fd;

	ck_assert_int_eq(um_fx_mkdir(&fx, "empty"), 0);
	fd = openat(fx.root_fd, "empty", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(um_lowermap_read(fd, &m), 0);
	close(fd);
	ck_assert_int_eq(um_lowermap_find(m, "a", &ino, &type), 0);
	um_lowermap_free(m);
}
END_TEST

START_TEST(not_a_directory)
{
	struct um_lowermap *m = NULL;
	int fd;

	ck_assert_int_eq(um_fx_file(&fx, "plain", "x"), 0);
	fd = openat(fx.root_fd, "plain", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(um_lowermap_read(fd, &m), -ENOTDIR);
	ck_assert_ptr_null(m);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lowermap");
	TCase *tc = tcase_create("um_lowermap_find()");

	tcase_add_unchecked_fixture(tc, um_fx_base_setup, um_fx_base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, in_listing_order_needs_no_index);
	tcase_add_test(tc, in_reverse_order_needs_no_index);
	tcase_add_test(tc, skips_up_to_the_window);
	tcase_add_test(tc, order_taken_up_again);
	tcase_add_test(tc, starting_late_needs_no_index);
	tcase_add_test(tc, any_order_finds_all);
	tcase_add_test(tc, absent_names);
	tcase_add_test(tc, empty_directory);
	tcase_add_test(tc, not_a_directory);
	suite_add_tcase(s, tc);

	return um_fx_run(s);
}
