#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
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
	/* Both namespaces, whichever one the mount uses. */
	ck_assert(um_marker_is_internal_xattr("user.overlay.opaque"));
	ck_assert(um_marker_is_internal_xattr("user.unionmount.format"));
	um_marker_use(UM_MARKER_NS_USER);
	ck_assert(um_marker_is_internal_xattr("trusted.unionmount.origin"));
	um_marker_use(UM_MARKER_NS_TRUSTED);
	ck_assert(!um_marker_is_internal_xattr("user.k"));
	ck_assert(!um_marker_is_internal_xattr("user.overlayfoo"));
	ck_assert(!um_marker_is_internal_xattr("user.unionmountx"));
	ck_assert(!um_marker_is_internal_xattr("user.unionmount"));
	ck_assert(!um_marker_is_internal_xattr("trusted.overlayfoo"));
	ck_assert(!um_marker_is_internal_xattr("security.capability"));
	ck_assert(!um_marker_is_internal_xattr("system.posix_acl_access"));
}
END_TEST

START_TEST(format_version)
{
	char err[256] = "";
	unsigned ver;

	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), 0); /* absent */
	ck_assert_int_eq(um_marker_set_format(dfd, UM_FORMAT_VERSION), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(fgetxattr(dfd, UM_XATTR_FORMAT, err, sizeof(err)), 1);
	ck_assert_int_eq(err[0], '0' + UM_FORMAT_VERSION);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "1", 1, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, &ver, err, sizeof(err)), 0);
	ck_assert_uint_eq(ver, 1);
	/* A mount without metacopy files records the base version; the
	 * first metacopy file raises it. */
	ck_assert_int_eq(um_marker_set_format(dfd, UM_FORMAT_BASE), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, &ver, err, sizeof(err)), 0);
	ck_assert_uint_eq(ver, 2);
	ck_assert_int_eq(um_marker_set_format(dfd, UM_FORMAT_METACOPY), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, &ver, err, sizeof(err)), 0);
	ck_assert_uint_eq(ver, 3);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "4", 1, 0), 0);
	ver = 7;
	ck_assert_int_eq(um_marker_check_format(dfd, &ver, err, sizeof(err)), -EPROTO);
	ck_assert_uint_eq(ver, 0);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "99", 2, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "upperdir"));
	ck_assert_ptr_nonnull(strstr(err, "99"));
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "junk", 4, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), -EPROTO);
}
END_TEST

/* Each key of the user namespace, and what can hold one. */
START_TEST(user_keys)
{
	ck_assert_str_eq(UM_XATTR_OPAQUE, "trusted.overlay.opaque");
	ck_assert(um_marker_can_hold(S_IFLNK));
	um_marker_use(UM_MARKER_NS_USER);
	ck_assert_str_eq(UM_XATTR_OPAQUE, "user.overlay.opaque");
	ck_assert_str_eq(UM_XATTR_REDIRECT, "user.overlay.redirect");
	ck_assert_str_eq(UM_XATTR_OVL_IMPURE, "user.overlay.impure");
	ck_assert_str_eq(UM_XATTR_FORMAT, "user.unionmount.format");
	ck_assert_str_eq(UM_XATTR_ORIGIN, "user.unionmount.origin");
	ck_assert_str_eq(UM_XATTR_IMPURE, "user.unionmount.impure");
	ck_assert_str_eq(UM_XATTR_LOWERLINKS, "user.unionmount.lowerlinks");
	ck_assert_str_eq(UM_XATTR_COMPLETE, "user.unionmount.complete");
	ck_assert(um_marker_can_hold(S_IFREG));
	ck_assert(um_marker_can_hold(S_IFDIR));
	ck_assert(!um_marker_can_hold(S_IFLNK));
	ck_assert(!um_marker_can_hold(S_IFIFO));
	ck_assert(!um_marker_can_hold(S_IFCHR));
	ck_assert(!um_marker_can_hold(S_IFSOCK));
	um_marker_use(UM_MARKER_NS_TRUSTED);
	ck_assert_str_eq(UM_XATTR_ORIGIN, "trusted.unionmount.origin");
}
END_TEST

#define STAMP(lit) um_marker_decode_user_stamp(lit, sizeof(lit) - 1)

START_TEST(decode_user_stamp)
{
	ck_assert_int_eq(STAMP("trusted"), UM_STAMP_TRUSTED);
	ck_assert_int_eq(STAMP("2"), UM_STAMP_USER);
	ck_assert_int_eq(STAMP("trusted\0"), UM_STAMP_USER); /* a NUL inside: not the stamp */
	ck_assert_int_eq(STAMP("truste"), UM_STAMP_USER);
	ck_assert_int_eq(STAMP("TRUSTED"), UM_STAMP_USER);
	ck_assert_int_eq(STAMP(""), UM_STAMP_USER);
}
END_TEST

/* choose(userxattr) as root on dfd: the return, *ns on success. */
static int choose(bool userxattr, enum um_marker_ns *ns, char *err, size_t errlen)
{
	*ns = (enum um_marker_ns)-1;
	return um_marker_choose(dfd, userxattr, ns, err, errlen);
}

START_TEST(choose_namespace)
{
	char err[512] = "", v[16];
	enum um_marker_ns ns;

	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	/* A new upper: root takes trusted.*, the option user.*. */
	ck_assert_int_eq(um_marker_can_trusted(dfd), 1);
	ck_assert_int_eq(choose(false, &ns, err, sizeof(err)), 0);
	ck_assert_int_eq(ns, UM_MARKER_NS_TRUSTED);
	ck_assert_int_eq(choose(true, &ns, err, sizeof(err)), 0);
	ck_assert_int_eq(ns, UM_MARKER_NS_USER);
	/* The probe left nothing behind. */
	ck_assert_int_eq(flistxattr(dfd, v, sizeof(v)), 0);

	/* Written in the user namespace: root needs the option. */
	um_marker_use(UM_MARKER_NS_USER);
	ck_assert_int_eq(um_marker_set_format(dfd, UM_FORMAT_VERSION), 0);
	ck_assert_int_eq(fgetxattr(dfd, "user.unionmount.format", v, sizeof(v)), 1);
	ck_assert_int_eq(v[0], '0' + UM_FORMAT_VERSION);
	ck_assert_int_eq(fgetxattr(dfd, "trusted.unionmount.format", v, sizeof(v)), -1);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(choose(false, &ns, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "user.* attributes"));
	ck_assert_ptr_nonnull(strstr(err, "with -o userxattr"));
	ck_assert_int_eq(choose(true, &ns, err, sizeof(err)), 0);
	ck_assert_int_eq(ns, UM_MARKER_NS_USER);
	/* A damaged user mark is a user upper too (check_format says so). */
	ck_assert_int_eq(fsetxattr(dfd, "user.unionmount.format", "junk", 4, 0), 0);
	ck_assert_int_eq(choose(false, &ns, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(fremovexattr(dfd, "user.unionmount.format"), 0);

	/* Written in the trusted namespace: both marks, and the option is
	 * refused by either. */
	um_marker_use(UM_MARKER_NS_TRUSTED);
	ck_assert_int_eq(um_marker_set_format(dfd, UM_FORMAT_VERSION), 0);
	ck_assert_int_eq(fgetxattr(dfd, "user.unionmount.format", v, sizeof(v)), 7);
	ck_assert(!memcmp(v, "trusted", 7));
	ck_assert_int_eq(choose(false, &ns, err, sizeof(err)), 0);
	ck_assert_int_eq(ns, UM_MARKER_NS_TRUSTED);
	ck_assert_int_eq(choose(true, &ns, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "trusted.* attributes"));
	ck_assert_ptr_nonnull(strstr(err, "remove -o userxattr"));
	ck_assert_int_eq(fremovexattr(dfd, "user.unionmount.format"), 0);
	ck_assert_int_eq(choose(true, &ns, err, sizeof(err)), -EPROTO); /* the trusted mark alone */
	ck_assert_int_eq(fremovexattr(dfd, "trusted.unionmount.format"), 0);
	ck_assert_int_eq(fsetxattr(dfd, "user.unionmount.format", "trusted", 7, 0), 0);
	ck_assert_int_eq(choose(true, &ns, err, sizeof(err)), -EPROTO); /* the stamp alone */
}
END_TEST

/* A process without CAP_SYS_ADMIN: user.* without asking, and a trusted
 * upper (its stamp: it cannot read the trusted mark) refused. In a child,
 * which gives up root for good. */
START_TEST(choose_unprivileged)
{
	char err[512] = "";
	enum um_marker_ns ns;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fputs("skip: needs root to become another user\n", stderr);
		return;
	}
	ck_assert_int_eq(fchmod(dfd, 0777), 0);
	ck_assert_int_eq(fsetxattr(dfd, "trusted.unionmount.format", "2", 1, 0), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int r;

		if (setresgid(61101, 61101, 61101) || setresuid(61101, 61101, 61101))
			_exit(10);
		if (um_marker_can_trusted(dfd) != 0)
			_exit(11);
		if (choose(false, &ns, err, sizeof(err)) != 0 || ns != UM_MARKER_NS_USER)
			_exit(12); /* the trusted mark alone cannot be seen */
		if (fsetxattr(dfd, "user.unionmount.format", "trusted", 7, 0))
			_exit(13);
		r = choose(false, &ns, err, sizeof(err));
		if (r != -EPROTO || !strstr(err, "only root can read"))
			_exit(14);
		r = choose(true, &ns, err, sizeof(err));
		if (r != -EPROTO || !strstr(err, "remove -o userxattr"))
			_exit(15);
		if (fsetxattr(dfd, "user.unionmount.format", "2", 1, 0))
			_exit(16);
		if (choose(false, &ns, err, sizeof(err)) != 0 || ns != UM_MARKER_NS_USER)
			_exit(17);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child step %d failed",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/* The decoders see the value as read: len bytes, no NUL at the end. */
#define DEC_HEX(lit, ret) um_marker_decode_hex64(lit, sizeof(lit) - 1, ret)
#define DEC_UINT(lit, max, ret) um_marker_decode_uint(lit, sizeof(lit) - 1, max, ret)
#define DEC_REDIRECT(lit) um_marker_decode_redirect(lit, sizeof(lit) - 1)

START_TEST(decode_flag)
{
	ck_assert(um_marker_decode_flag("y", 1));
	ck_assert(um_marker_decode_flag("yes", 1)); /* only len bytes count */
	ck_assert(!um_marker_decode_flag("", 0));
	ck_assert(!um_marker_decode_flag("yy", 2));
	ck_assert(!um_marker_decode_flag("y\0", 2));
	ck_assert(!um_marker_decode_flag("Y", 1));
	ck_assert(!um_marker_decode_flag("x", 1)); /* overlayfs's "has xwhiteouts" */
}
END_TEST

START_TEST(decode_hex64)
{
	uint64_t v = 0;

	ck_assert_int_eq(DEC_HEX("00000000000012ab", &v), 0);
	ck_assert_uint_eq(v, 0x12ab);
	ck_assert_int_eq(DEC_HEX("00000000000012AB", &v), 0); /* written lowercase, read either */
	ck_assert_uint_eq(v, 0x12ab);
	ck_assert_int_eq(DEC_HEX("ffffffffffffffff", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(DEC_HEX("0000000000000000", &v), 0);
	ck_assert_uint_eq(v, 0);
	/* Only len bytes are read. */
	ck_assert_int_eq(um_marker_decode_hex64("0123456789abcdefXX", 16, &v), 0);
	ck_assert_uint_eq(v, 0x0123456789abcdefull);

	v = 42; /* *ret is left alone on failure */
	ck_assert_int_eq(DEC_HEX("", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("12ab", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("00000000000012a", &v), -EIO);    /* 15 digits */
	ck_assert_int_eq(DEC_HEX("000000000000012ab", &v), -EIO);  /* 17 digits */
	ck_assert_int_eq(DEC_HEX("00000000000012zz", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("g000000000000000", &v), -EIO);
	/* What strtoull would take: blanks, a sign, 0x, a NUL inside. */
	ck_assert_int_eq(DEC_HEX(" 00000000000012a", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("00000000000012a ", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("00000000000012a\n", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("+00000000000012a", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("-000000000000001", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("0x000000000012ab", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("00000012\0\0\0\0\0\0\0\0", &v), -EIO);
	ck_assert_int_eq(DEC_HEX("\0" "000000000000000", &v), -EIO);
	ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(decode_uint)
{
	uint64_t v = 0;

	ck_assert_int_eq(DEC_UINT("0", 65535, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(DEC_UINT("2", 65535, &v), 0);
	ck_assert_uint_eq(v, 2);
	ck_assert_int_eq(DEC_UINT("65535", 65535, &v), 0);
	ck_assert_uint_eq(v, 65535);
	ck_assert_int_eq(DEC_UINT("0007", 65535, &v), 0); /* leading zeros: still that number */
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(DEC_UINT("18446744073709551615", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(um_marker_decode_uint("12x", 2, 65535, &v), 0); /* only len bytes */
	ck_assert_uint_eq(v, 12);

	v = 42;
	ck_assert_int_eq(DEC_UINT("", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("65536", 65535, &v), -EIO);             /* above max */
	ck_assert_int_eq(DEC_UINT("1", 0, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("18446744073709551616", UINT64_MAX, &v), -EIO); /* overflow */
	ck_assert_int_eq(DEC_UINT("99999999999999999999999", UINT64_MAX, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("12a", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("0x10", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT(" 5", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("5 ", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("5\n", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("+5", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("-0", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("-5", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("5\0", 65535, &v), -EIO);
	ck_assert_int_eq(DEC_UINT("\0" "5", 65535, &v), -EIO);
	ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(decode_redirect)
{
	/* Absolute: from the branch roots, as overlayfs's redirect_dir=on. */
	ck_assert_int_eq(DEC_REDIRECT("/a/b"), 4);
	ck_assert_int_eq(DEC_REDIRECT("/a"), 2);
	ck_assert_int_eq(DEC_REDIRECT("/"), 1);       /* decodes; resolve.c refuses it */
	ck_assert_int_eq(DEC_REDIRECT("//a//b/"), 7); /* empty components name nothing new */
	ck_assert_int_eq(DEC_REDIRECT("/./a/."), 6);  /* nor do "." ones */
	ck_assert_int_eq(DEC_REDIRECT("/.../b"), 6);  /* "..." is a name */
	ck_assert_int_eq(DEC_REDIRECT("/a/..b/c.."), 10);
	/* Relative: one plain name. */
	ck_assert_int_eq(DEC_REDIRECT("moved"), 5);
	ck_assert_int_eq(DEC_REDIRECT("..."), 3);
	ck_assert_int_eq(DEC_REDIRECT(".hidden"), 7);
	ck_assert_int_eq(um_marker_decode_redirect("/a/../b", 2), 2); /* only len bytes */

	ck_assert_int_eq(DEC_REDIRECT(""), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/.."), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/../a"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/a/../b"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/a/.."), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/a//../"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("."), -EIO);
	ck_assert_int_eq(DEC_REDIRECT(".."), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("../a"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("a/b"), -EIO); /* relative with a '/' */
	ck_assert_int_eq(DEC_REDIRECT("a/"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("/a\0b"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("a\0"), -EIO);
	ck_assert_int_eq(DEC_REDIRECT("\0"), -EIO);
}
END_TEST

/* The getters go through the decoders: values strtol/strtoull used to
 * take (and guess a number from) are -EIO now. */
START_TEST(getters_refuse_lenient_values)
{
	char err[256] = "";
	uint64_t v = 0;

	if (geteuid() != 0) {
		fputs("skip: trusted xattrs need root\n", stderr);
		return;
	}
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_ORIGIN, "00000000000012ab", 16, 0), 0);
	ck_assert_int_eq(um_marker_get_origin(dfd, "", &v), 1);
	ck_assert_uint_eq(v, 0x12ab);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_ORIGIN, " 00000000000012a", 16, 0), 0);
	ck_assert_int_eq(um_marker_get_origin(dfd, "", &v), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_ORIGIN, "-000000000000001", 16, 0), 0);
	ck_assert_int_eq(um_marker_get_origin(dfd, "", &v), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_ORIGIN, "12ab\0\0\0\0\0\0\0\0\0\0\0\0", 16, 0), 0);
	ck_assert_int_eq(um_marker_get_origin(dfd, "", &v), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_ORIGIN, "00000000000012ab0", 17, 0), 0);
	ck_assert_int_eq(um_marker_get_origin(dfd, "", &v), -EIO);
	ck_assert_uint_eq(v, 0x12ab);

	ck_assert_int_eq(um_marker_set_lowerlinks(dfd, "", 3), 0);
	ck_assert_int_eq(um_marker_get_lowerlinks(dfd, ""), 3);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_LOWERLINKS, "+3", 2, 0), 0);
	ck_assert_int_eq(um_marker_get_lowerlinks(dfd, ""), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_LOWERLINKS, "3\0", 2, 0), 0);
	ck_assert_int_eq(um_marker_get_lowerlinks(dfd, ""), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_LOWERLINKS, "65536", 5, 0), 0);
	ck_assert_int_eq(um_marker_get_lowerlinks(dfd, ""), -EIO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_LOWERLINKS, "000000000003", 12, 0), 0);
	ck_assert_int_eq(um_marker_get_lowerlinks(dfd, ""), -EIO); /* longer than any count */

	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, " 1", 2, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "not a format version"));
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "0", 1, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(fsetxattr(dfd, UM_XATTR_FORMAT, "002", 3, 0), 0);
	ck_assert_int_eq(um_marker_check_format(dfd, NULL, err, sizeof(err)), 0);

	ck_assert_int_eq(mkdirat(dfd, "d", 0755), 0);
	ck_assert_int_eq(um_marker_set_redirect(dfd, "d", "/a/b"), 0);
	ck_assert_int_eq(um_marker_get_redirect(dfd, "d", err, sizeof(err)), 4);
	ck_assert_str_eq(err, "/a/b");
	ck_assert_int_eq(um_marker_set_redirect(dfd, "d", "/a/../b"), 0);
	ck_assert_int_eq(um_marker_get_redirect(dfd, "d", err, sizeof(err)), -EIO);
	ck_assert_int_eq(um_marker_get_redirect(dfd, "d", err, 4), -EIO); /* longer than the buffer */
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
	tc = tcase_create("um_marker_use()");
	tcase_add_test(tc, user_keys);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_decode_user_stamp()");
	tcase_add_test(tc, decode_user_stamp);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_choose()");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, choose_namespace);
	tcase_add_test(tc, choose_unprivileged);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_decode_flag()");
	tcase_add_test(tc, decode_flag);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_decode_hex64()");
	tcase_add_test(tc, decode_hex64);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_decode_uint()");
	tcase_add_test(tc, decode_uint);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_decode_redirect()");
	tcase_add_test(tc, decode_redirect);
	suite_add_tcase(s, tc);
	tc = tcase_create("um_marker_get_*() through the decoders");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, getters_refuse_lenient_values);
	suite_add_tcase(s, tc);

	return um_fx_run(s);
}
