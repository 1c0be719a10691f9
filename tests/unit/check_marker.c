#include <check.h>
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
#include "marker.h"

static char tmp[] = "/tmp/check_marker.XXXXXX";
static int dfd = -1;

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	dfd = open(tmp, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
}

static void teardown(void)
{
	close(dfd);
	ck_assert_int_eq(um_fx_rm_rf_at(AT_FDCWD, tmp), 0);
	strcpy(tmp, "/tmp/check_marker.XXXXXX");
}

START_TEST(whiteout_is_chr_0_0)
{
	struct stat st = { 0 };

	st.st_mode = S_IFCHR | 0;
	st.st_rdev = makedev(0, 0);
	ck_assert(um_marker_is_whiteout(&st));
	st.st_rdev = makedev(1, 3); /* /dev/null is not a whiteout */
	ck_assert(!um_marker_is_whiteout(&st));
	st.st_mode = S_IFREG | 0644;
	st.st_rdev = 0;
	ck_assert(!um_marker_is_whiteout(&st));
	ck_assert(um_marker_dtype_may_be_whiteout(2));
	ck_assert(um_marker_dtype_may_be_whiteout(0));
	ck_assert(!um_marker_dtype_may_be_whiteout(8)); /* DT_REG: no lstat needed */
	ck_assert(!um_marker_dtype_may_be_whiteout(4));
}
END_TEST

START_TEST(fallthru_device_numbers)
{
	struct stat st = { 0 };

	st.st_mode = S_IFCHR | 0;
	for (unsigned l = 1; l <= 500; l++) {
		st.st_rdev = um_marker_fallthru_dev(l);
		ck_assert_uint_eq(um_marker_fallthru_layer(&st), l);
		ck_assert(!um_marker_is_whiteout(&st));
	}
	st.st_rdev = makedev(0, 0); /* a whiteout */
	ck_assert_uint_eq(um_marker_fallthru_layer(&st), 0);
	st.st_rdev = makedev(0, UM_FALLTHRU_MINOR_BASE); /* layer 0 is upper: never a fallthru */
	ck_assert_uint_eq(um_marker_fallthru_layer(&st), 0);
	st.st_rdev = makedev(1, UM_FALLTHRU_MINOR_BASE + 1); /* a real major */
	ck_assert_uint_eq(um_marker_fallthru_layer(&st), 0);
	st.st_rdev = um_marker_fallthru_dev(1);
	st.st_mode = S_IFBLK | 0; /* a block device with that number */
	ck_assert_uint_eq(um_marker_fallthru_layer(&st), 0);
}
END_TEST

START_TEST(complete_mark)
{
	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	ck_assert_int_eq(mkdirat(dfd, "d", 0755), 0);
	ck_assert_int_eq(um_marker_is_complete(dfd, "d", 0x1234), 0);
	ck_assert_int_eq(um_marker_set_complete(dfd, "d", 0x1234), 0);
	ck_assert_int_eq(um_marker_is_complete(dfd, "d", 0x1234), 1);
	ck_assert_int_eq(um_marker_is_complete(dfd, "d", 0x1235), 0); /* another stack */
	{
		int d = openat(dfd, "d", O_RDONLY | O_DIRECTORY);

		ck_assert_int_ge(d, 0);
		ck_assert_int_eq(um_marker_dir_flags(d, 0x1234), UM_MARKER_COMPLETE);
		ck_assert_int_eq(um_marker_dir_flags(d, 0x1235), 0);
		ck_assert_int_eq(um_marker_set_impure(d, ""), 0);
		ck_assert_int_eq(um_marker_dir_flags(d, 0x1234), UM_MARKER_IMPURE | UM_MARKER_COMPLETE);
		close(d);
	}
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_COMPLETE, "y", 1, 0), 0);
	ck_assert_int_eq(um_marker_is_complete(dfd, "", 0x1234), -EIO); /* does not decode */
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_COMPLETE, "00000000000012zz", 16, 0), 0);
	ck_assert_int_eq(um_marker_is_complete(dfd, "", 0x1234), -EIO);
	ck_assert_int_eq(um_marker_is_complete(dfd, "missing", 0x1234), -ENOENT);
}
END_TEST

START_TEST(opaque_needs_y)
{
	char path[256];

	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	ck_assert_int_eq(mkdirat(dfd, "plain", 0755), 0);
	ck_assert_int_eq(mkdirat(dfd, "opq", 0755), 0);
	ck_assert_int_eq(mkdirat(dfd, "other", 0755), 0);
	snprintf(path, sizeof(path), "%s/opq", tmp);
	ck_assert_int_eq(setxattr(path, UM_XATTR_OPAQUE, "y", 1, 0), 0);
	snprintf(path, sizeof(path), "%s/other", tmp);
	/* "x" is kernel overlayfs's "has xwhiteouts", not opaque */
	ck_assert_int_eq(setxattr(path, UM_XATTR_OPAQUE, "x", 1, 0), 0);

	ck_assert_int_eq(um_marker_is_opaque(dfd, "plain"), 0);
	ck_assert_int_eq(um_marker_is_opaque(dfd, "opq"), 1);
	ck_assert_int_eq(um_marker_is_opaque(dfd, "other"), 0);
	ck_assert_int_eq(um_marker_is_opaque(dfd, "missing"), -ENOENT);
}
END_TEST

START_TEST(internal_xattrs)
{
	ck_assert(um_marker_is_internal_xattr("trusted.overlay.opaque"));
	ck_assert(um_marker_is_internal_xattr("trusted.overlay.origin"));
	ck_assert(um_marker_is_internal_xattr("trusted.unionmount.format"));
	ck_assert(!um_marker_is_internal_xattr("user.overlay.opaque"));
	ck_assert(!um_marker_is_internal_xattr("trusted.overlayfoo"));
	ck_assert(!um_marker_is_internal_xattr("security.capability"));
	ck_assert(!um_marker_is_internal_xattr("system.posix_acl_access"));
}
END_TEST

START_TEST(format_version)
{
	char err[256] = "";

	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), 0); /* absent */
	ck_assert_int_eq(um_marker_set_format(dfd), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), 0);
	ck_assert_int_eq(fgetxattr(dfd, UM_XATTR_FORMAT, err, sizeof(err)), 1);
	ck_assert_int_eq(err[0], '0' + UM_FORMAT_VERSION);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "1", 1, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), 0);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "3", 1, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "99", 2, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "upperdir"));
	ck_assert_ptr_nonnull(strstr(err, "99"));
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "junk", 4, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, err, sizeof(err)), -EPROTO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("marker");
	TCase *tc;

	tc = tcase_create("um_marker_is_whiteout()");
	tcase_add_test(tc, whiteout_is_chr_0_0);
	tcase_add_test(tc, fallthru_device_numbers);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_is_complete()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, complete_mark);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_is_opaque()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, opaque_needs_y);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_is_internal_xattr()");
	tcase_add_test(tc, internal_xattrs);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_check_format()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, format_version);
	suite_add_tcase(s, tc);

	return um_fx_run(s);
}
