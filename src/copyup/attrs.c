#include "copyup/attrs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <attr/error_context.h>
#include <attr/libattr.h>

#include "log.h"
#include "marker.h"
#include "sys.h"

/* libattr reports through a callback with errno set: keep the first
 * error that must fail the copy-up. */
struct copy_ctx {
	struct error_context ec; /* first: libattr passes &ec back */
	int err;
};

/* Guards nothing but a one-time warning. */
static atomic_flag warned_unsupported = ATOMIC_FLAG_INIT;

static void copy_error(struct error_context *ec, const char *fmt, ...)
{
	struct copy_ctx *c = (struct copy_ctx *)ec;
	int e = errno;

	(void)fmt;
	/* The upper filesystem not supporting a namespace (user.* on some
	 * filesystems, trusted.* unprivileged) must not fail a chmod. */
	if (e == ENOTSUP || e == EPERM || e == EACCES || e == ERANGE) {
		if (!atomic_flag_test_and_set(&warned_unsupported))
			um_log(UM_LOG_WARN, "copy-up: the upper filesystem refuses some xattrs (%s); they are not copied",
			       strerrorname_np(e));
		return;
	}
	if (!c->err)
		c->err = e ? -e : -EIO;
}

static int copy_check(const char *name, struct error_context *ec)
{
	(void)ec;
	return !um_marker_is_internal_xattr(name);
}

/* l*xattr paths through the fd's magic link (sys.h): it resolves to the
 * directory fd itself, the last component is never followed; "." makes
 * the directory itself the last component. */
static int proc_path(char *buf, size_t size, int dirfd, const char *name)
{
	return um_sys_fd_path(buf, size, dirfd, name[0] ? name : ".");
}

int um_copy_xattrs(int srcdir, const char *srcname, int dstdir, const char *dstname)
{
	struct copy_ctx c = { .ec = { .error = copy_error } };
	char src[64 + 256], dst[64 + 256];
	int r = proc_path(src, sizeof(src), srcdir, srcname);

	if (r == 0)
		r = proc_path(dst, sizeof(dst), dstdir, dstname);
	if (r < 0)
		return r;
	errno = 0;
	if (attr_copy_file(src, dst, copy_check, &c.ec) != 0 && !c.err)
		c.err = 0; /* every failure was one copy_error() forgave */
	return c.err;
}

int um_copy_attrs(int srcdir, const char *srcname, int dstdir, const char *dstname, const struct stat *st)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	int r = um_sys_fchownat(dstdir, dstname, st->st_uid, st->st_gid);

	if (r == 0)
		r = um_copy_xattrs(srcdir, srcname, dstdir, dstname);
	if (r == 0 && !S_ISLNK(st->st_mode))
		r = um_sys_fchmodat(dstdir, dstname, st->st_mode & 07777);
	if (r == 0)
		r = um_sys_utimensat(dstdir, dstname, times);
	return r;
}
