#include <check.h>
#include <stdlib.h>

#include "ino.h"

START_TEST(direct_form)
{
	/* upper keeps its own numbers; lowers get the layer in the top bits */
	ck_assert_uint_eq(um_ino_encode(0, 12345), 12345);
	ck_assert_uint_eq(um_ino_encode(1, 12345), (UINT64_C(1) << 56) | 12345);
	ck_assert_uint_eq(um_ino_encode(127, 1), (UINT64_C(127) << 56) | 1);
	ck_assert_uint_eq(um_ino_encode(3, 7) & UM_INO_HASHED, 0);
}
END_TEST

START_TEST(distinct_layers_never_collide)
{
	/* the same backing number in 65 layers: 65 distinct numbers */
	for (unsigned a = 0; a <= 64; a++)
		for (unsigned b = a + 1; b <= 64; b++)
			ck_assert_uint_ne(um_ino_encode(a, 2), um_ino_encode(b, 2));
}
END_TEST

START_TEST(hashed_form)
{
	uint64_t big = UINT64_C(1) << 60;
	uint64_t h1 = um_ino_encode(1, big), h2 = um_ino_encode(2, big);

	/* too big for the direct form: hashed, marked, stable, layer-dependent */
	ck_assert_uint_ne(h1 & UM_INO_HASHED, 0);
	ck_assert_uint_eq(h1, um_ino_encode(1, big));
	ck_assert_uint_ne(h1, h2);
	/* layers past 127 are hashed too, never landing in the direct range */
	ck_assert_uint_ne(um_ino_encode(200, 5) & UM_INO_HASHED, 0);
	ck_assert_uint_ne(um_ino_encode(200, 5), um_ino_encode(201, 5));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ino");
	TCase *tc = tcase_create("um_ino_encode()");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, direct_form);
	tcase_add_test(tc, distinct_layers_never_collide);
	tcase_add_test(tc, hashed_form);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
