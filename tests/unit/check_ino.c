#include <check.h>
#include <stdlib.h>

#include "fixture.h"
#include "ino.h"

/* an object on its branch root's filesystem */
#define E(layer, ino) um_ino_encode((layer), (ino), 5, 5)

START_TEST(direct_form)
{
	/* upper keeps its own numbers; lowers get the layer in the top bits */
	ck_assert_uint_eq(E(0, 12345), 12345);
	ck_assert_uint_eq(E(1, 12345), (UINT64_C(1) << 56) | 12345);
	ck_assert_uint_eq(E(127, 1), (UINT64_C(127) << 56) | 1);
	ck_assert_uint_eq(E(3, 7) & UM_INO_HASHED, 0);
}
END_TEST

START_TEST(distinct_layers_never_collide)
{
	/* the same backing number in 65 layers: 65 distinct numbers */
	for (unsigned a = 0; a <= 64; a++)
		for (unsigned b = a + 1; b <= 64; b++)
			ck_assert_uint_ne(E(a, 2), E(b, 2));
}
END_TEST

START_TEST(hashed_form)
{
	uint64_t big = UINT64_C(1) << 60;
	uint64_t h1 = E(1, big), h2 = E(2, big);

	/* too big for the direct form: hashed, marked, stable, layer-dependent */
	ck_assert_uint_ne(h1 & UM_INO_HASHED, 0);
	ck_assert_uint_eq(h1, E(1, big));
	ck_assert_uint_ne(h1, h2);
	/* layers past 127 are hashed too, never landing in the direct range */
	ck_assert_uint_ne(E(200, 5) & UM_INO_HASHED, 0);
	ck_assert_uint_ne(E(200, 5), E(201, 5));
}
END_TEST

START_TEST(submount_objects_hashed_with_dev)
{
	/* a filesystem mounted inside a branch numbers from 1 again */
	uint64_t own = um_ino_encode(1, 1, 5, 5);
	uint64_t sub_a = um_ino_encode(1, 1, 7, 5), sub_b = um_ino_encode(1, 1, 8, 5);

	ck_assert_uint_ne(sub_a & UM_INO_HASHED, 0);
	ck_assert_uint_ne(sub_a, own);
	ck_assert_uint_ne(sub_a, sub_b);
	ck_assert_uint_eq(sub_a, um_ino_encode(1, 1, 7, 5));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ino");
	TCase *tc = tcase_create("E()");

	tcase_add_test(tc, direct_form);
	tcase_add_test(tc, distinct_layers_never_collide);
	tcase_add_test(tc, hashed_form);
	tcase_add_test(tc, submount_objects_hashed_with_dev);
	suite_add_tcase(s, tc);
	return um_fx_run(s);
}
