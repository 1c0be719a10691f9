#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "readdir/nameset.h"

START_TEST(insert_dedupes)
{
	struct um_nameset *s;
	uint32_t v = 0;

	ck_assert_int_eq(um_nameset_new(0, &s), 0);
	ck_assert_int_eq(um_nameset_insert(s, "a", 1, 7, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, "b", 1, 8, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, "a", 1, 9, &v), 0);
	ck_assert_uint_eq(v, 7);
	/* a prefix is a different name */
	ck_assert_int_eq(um_nameset_insert(s, "ab", 2, 10, NULL), 1);
	ck_assert_uint_eq(um_nameset_count(s), 3);
	ck_assert_int_eq(um_nameset_insert(s, "", 0, 1, NULL), -EINVAL);
	um_nameset_free(s);
}
END_TEST

START_TEST(insert_grows_keeps_all)
{
	struct um_nameset *s;
	char name[32];

	ck_assert_int_eq(um_nameset_new(1, &s), 0);
	for (uint32_t i = 0; i < 100000; i++) {
		int n = snprintf(name, sizeof(name), "file-%u", i);

		ck_assert_int_eq(um_nameset_insert(s, name, (size_t)n, i, NULL), 1);
	}
	ck_assert_uint_eq(um_nameset_count(s), 100000);
	for (uint32_t i = 0; i < 100000; i += 997) {
		uint32_t v;
		int n = snprintf(name, sizeof(name), "file-%u", i);

		ck_assert_int_eq(um_nameset_insert(s, name, (size_t)n, 0, &v), 0);
		ck_assert_uint_eq(v, i);
	}
	um_nameset_free(s);
}
END_TEST

START_TEST(insert_odd_bytes)
{
	struct um_nameset *s;
	char longname[256];
	const char nl[] = "new\nline", bad[] = "\xff\xfe\x01";

	memset(longname, 'x', 255);
	longname[255] = '\0';
	ck_assert_int_eq(um_nameset_new(4, &s), 0);
	ck_assert_int_eq(um_nameset_insert(s, longname, 255, 1, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, longname, 254, 2, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, nl, strlen(nl), 3, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, bad, strlen(bad), 4, NULL), 1);
	ck_assert_int_eq(um_nameset_insert(s, bad, strlen(bad), 5, NULL), 0);
	um_nameset_free(s);
}
END_TEST

START_TEST(set_replaces_value)
{
	struct um_nameset *s;
	uint32_t v;

	ck_assert_int_eq(um_nameset_new(0, &s), 0);
	ck_assert_int_eq(um_nameset_set(s, "x", 1, 1), -ENOENT);
	ck_assert_int_eq(um_nameset_insert(s, "x", 1, 1, NULL), 1);
	ck_assert_int_eq(um_nameset_set(s, "x", 1, 42), 0);
	ck_assert_int_eq(um_nameset_insert(s, "x", 1, 0, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(um_nameset_get(s, "x", 1, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(um_nameset_get(s, "y", 1, &v), -ENOENT);
	ck_assert_int_eq(um_nameset_get(s, "", 0, &v), -ENOENT);
	um_nameset_free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nameset");
	TCase *tc = tcase_create("um_nameset_insert()");

	tcase_add_test(tc, insert_dedupes);
	tcase_add_test(tc, insert_grows_keeps_all);
	tcase_add_test(tc, insert_odd_bytes);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_nameset_set() and _get()");
	tcase_add_test(tc, set_replaces_value);
	suite_add_tcase(s, tc);

	return um_fx_run(s);
}
