#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "marker.h"
#include "sys.h"

#define CHUNK (256 * 1024)

/* Where to read an object: a non-directory's place, a directory's top
 * part itself (name ""). */
static int obj_dirfd(const struct um_ctl_obj *o)
{
	return o->kind == UM_CTL_DIR ? o->dir.parts[0].fd : o->dirfd;
}

static const char *obj_name(const struct um_ctl_obj *o)
{
	return o->kind == UM_CTL_DIR ? "" : o->name;
}

/* Reading must not change what it reads: no atime updates where the
 * kernel lets us say so (O_NOATIME needs the owner or CAP_FOWNER). */
static int open_read(const struct um_ctl_obj *o)
{
	int fd = um_sys_openat(o->dirfd, o->name, O_RDONLY | O_NOATIME);

	if (fd == -EPERM)
		fd = um_sys_openat(o->dirfd, o->name, O_RDONLY);
	return fd;
}

/* 1 when the two regular files hold different bytes. */
static int file_data_differs(const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	_cleanup_close_ int ufd = -1, bfd = -1;
	_cleanup_free_ char *ubuf = malloc(CHUNK);
	_cleanup_free_ char *bbuf = malloc(CHUNK);
	off_t off = 0;
	int meta;

	if (u->st.st_size != b->st.st_size)
		return 1;
	/* A metacopy file's data is b's by definition (copyup.h). Its size
	 * is checked above: the daemon shows b's, so it must agree. */
	meta = um_marker_is_metacopy(u->dirfd, u->name);
	if (meta != 0)
		return meta < 0 ? meta : 0;
	if (!ubuf || !bbuf)
		return -ENOMEM;
	ufd = open_read(u);
	if (ufd < 0)
		return ufd;
	bfd = open_read(b);
	if (bfd < 0)
		return bfd;
	for (;;) {
		int nu = um_sys_pread(ufd, ubuf, CHUNK, off);
		int nb;

		if (nu < 0)
			return nu;
		/* Read b up to what u gave: files that changed size meanwhile
		 * differ, and short reads of either must line up. */
		nb = nu > 0 ? um_sys_pread(bfd, bbuf, (size_t)nu, off) : um_sys_pread(bfd, bbuf, 1, off);
		if (nb < 0)
			return nb;
		if (nu == 0)
			return nb != 0;
		if (nb != nu || memcmp(ubuf, bbuf, (size_t)nu))
			return 1;
		off += nu;
	}
}

static int link_differs(const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	char ut[PATH_MAX + 1], bt[PATH_MAX + 1];
	int nu = um_sys_readlinkat(u->dirfd, u->name, ut, sizeof(ut));
	int nb;

	if (nu < 0)
		return nu;
	nb = um_sys_readlinkat(b->dirfd, b->name, bt, sizeof(bt));
	if (nb < 0)
		return nb;
	return nu != nb || memcmp(ut, bt, (size_t)nu);
}

/* The xattr names of an object a user sees (markers left out), sorted:
 * pointers into buf, as listxattr returned it. */
struct xlist {
	char *buf;
	char **names;
	size_t n;
};

static void xlist_release(struct xlist *x)
{
	free(x->buf);
	free(x->names);
	*x = (struct xlist){ 0 };
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* On failure *x holds nothing: the caller releases it only on success. */
static int xlist_read(const struct um_ctl_obj *o, struct xlist *x)
{
	int fd = obj_dirfd(o);
	const char *name = obj_name(o);
	int len;

	*x = (struct xlist){ 0 };
	/* Sized first, then read: retried when it grew in between. */
	for (int round = 0; round < 4; round++) {
		len = um_sys_llistxattrat(fd, name, NULL, 0);
		if (len == -ENOTSUP)
			len = 0;
		if (len <= 0)
			goto out;
		free(x->buf);
		x->buf = malloc((size_t)len);
		if (!x->buf) {
			len = -ENOMEM;
			goto out;
		}
		len = um_sys_llistxattrat(fd, name, x->buf, (size_t)len);
		if (len != -ERANGE)
			break;
	}
	if (len < 0)
		goto out;
	x->names = calloc((size_t)len, sizeof(*x->names));
	if (!x->names) {
		len = -ENOMEM;
		goto out;
	}
	for (size_t at = 0; at < (size_t)len; at += strlen(x->buf + at) + 1)
		if (!um_marker_is_internal_xattr(x->buf + at))
			x->names[x->n++] = x->buf + at;
	qsort(x->names, x->n, sizeof(*x->names), cmp_str);
out:
	if (len < 0)
		xlist_release(x);
	return len < 0 ? len : 0;
}

/* A value in a new buffer (*ret, caller frees): its length or -errno. */
static int xattr_value(const struct um_ctl_obj *o, const char *key, char **ret)
{
	int fd = obj_dirfd(o);
	const char *name = obj_name(o);
	char *buf = NULL;
	int len = -ERANGE;

	for (int round = 0; round < 4 && len == -ERANGE; round++) {
		len = um_sys_lgetxattrat(fd, name, key, NULL, 0);
		if (len < 0)
			break;
		free(buf);
		buf = malloc((size_t)len + 1);
		if (!buf)
			return -ENOMEM;
		len = um_sys_lgetxattrat(fd, name, key, buf, (size_t)len);
	}
	if (len < 0) {
		free(buf);
		return len;
	}
	*ret = buf;
	return len;
}

static int xattrs_differ(const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	struct xlist xu = { 0 }, xb = { 0 };
	int r = xlist_read(u, &xu);

	if (r == 0)
		r = xlist_read(b, &xb);
	if (r == 0)
		r = xu.n != xb.n;
	for (size_t i = 0; i < xu.n && r == 0; i++)
		r = strcmp(xu.names[i], xb.names[i]) != 0;
	for (size_t i = 0; i < xu.n && r == 0; i++) {
		char *vu = NULL, *vb = NULL;
		int lu = xattr_value(u, xu.names[i], &vu);
		int lb = lu < 0 ? lu : xattr_value(b, xb.names[i], &vb);

		if (lu < 0 || lb < 0)
			r = lu < 0 ? lu : lb;
		else
			r = lu != lb || memcmp(vu, vb, (size_t)lu);
		free(vu);
		free(vb);
	}
	xlist_release(&xu);
	xlist_release(&xb);
	return r;
}

static int data_differs(const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	if (u->kind != b->kind || (u->st.st_mode & S_IFMT) != (b->st.st_mode & S_IFMT))
		return 1;
	switch (u->st.st_mode & S_IFMT) {
	case S_IFREG:
		return file_data_differs(u, b);
	case S_IFLNK:
		return link_differs(u, b);
	case S_IFCHR:
	case S_IFBLK:
		return u->st.st_rdev != b->st.st_rdev;
	default:
		return 0; /* directories, fifos and sockets hold no data */
	}
}

int um_ctl_compare(const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	int r;

	/* One object seen from both sides: nothing to compare. */
	if (u->kind == b->kind && u->st.st_dev == b->st.st_dev && u->st.st_ino == b->st.st_ino)
		return UM_CTL_SAME;
	r = data_differs(u, b);
	if (r != 0)
		return r < 0 ? r : UM_CTL_DATA;
	if ((u->st.st_mode & 07777) != (b->st.st_mode & 07777) || u->st.st_uid != b->st.st_uid ||
	    u->st.st_gid != b->st.st_gid)
		return UM_CTL_METADATA;
	r = xattrs_differ(u, b);
	if (r != 0)
		return r < 0 ? r : UM_CTL_METADATA;
	return UM_CTL_SAME;
}
