#include "marker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys.h"

bool um_marker_is_internal_xattr(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) == 0 ||
	       strncmp(name, "trusted.unionmount.", 19) == 0;
}

int um_marker_check_format(int upper_root_fd, char *err, size_t errlen)
{
	char v[16];
	char *end;
	long ver;
	int r = um_sys_lgetxattrat(upper_root_fd, "", UM_XATTR_FORMAT, v, sizeof(v) - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r < 0) {
		snprintf(err, errlen, "upperdir: cannot read %s: %s", UM_XATTR_FORMAT, strerror(-r));
		return r;
	}
	v[r] = '\0';
	ver = strtol(v, &end, 10);
	if (end == v || *end != '\0' || ver < 1) {
		snprintf(err, errlen, "upperdir: %s is '%s', not a format version; the upper directory is damaged",
			 UM_XATTR_FORMAT, v);
		return -EPROTO;
	}
	if (ver > UM_FORMAT_VERSION) {
		snprintf(err, errlen,
			 "upperdir: written with on-disk format %ld, this unionmount knows up to %d; use a newer unionmount",
			 ver, UM_FORMAT_VERSION);
		return -EPROTO;
	}
	return 0;
}

int um_marker_set_format(int upper_root_fd)
{
	char v[16];
	int n = snprintf(v, sizeof(v), "%d", UM_FORMAT_VERSION);
	char cur[16];
	int r = um_sys_lgetxattrat(upper_root_fd, "", UM_XATTR_FORMAT, cur, sizeof(cur));

	if (r == n && memcmp(cur, v, (size_t)n) == 0)
		return 0; /* no write, so no ctime change, on every mount */
	return um_sys_lsetxattrat(upper_root_fd, "", UM_XATTR_FORMAT, v, (size_t)n, 0);
}

int um_marker_make_whiteout(int dirfd, const char *name)
{
	return um_sys_mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0));
}

int um_marker_set_opaque(int dirfd, const char *name)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_OPAQUE, "y", 1, 0);
}

/* A flag xattr: present with value "y". */
static int get_flag(int dirfd, const char *name, const char *key)
{
	char v[2];
	int r = um_sys_lgetxattrat(dirfd, name, key, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP || r == -ERANGE)
		return 0;
	if (r < 0)
		return r;
	return r == 1 && v[0] == 'y';
}

int um_marker_is_opaque(int dirfd, const char *name)
{
	/* Absent, unsupported by the fs, or not "y": not opaque. */
	return get_flag(dirfd, name, UM_XATTR_OPAQUE);
}

/* A 16-hex-digit xattr: 1 and *ret, 0 if absent, -EIO if it does not decode. */
static int get_hex64(int dirfd, const char *name, const char *key, uint64_t *ret)
{
	char v[17];
	char *end;
	int r = um_sys_lgetxattrat(dirfd, name, key, v, sizeof(v) - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r == -ERANGE)
		return -EIO;
	if (r < 0)
		return r;
	v[r] = '\0';
	*ret = strtoull(v, &end, 16);
	if (r != 16 || *end != '\0')
		return -EIO;
	return 1;
}

static int set_hex64(int dirfd, const char *name, const char *key, uint64_t val)
{
	char v[17];

	(void)snprintf(v, sizeof(v), "%016llx", (unsigned long long)val);
	return um_sys_lsetxattrat(dirfd, name, key, v, 16, 0);
}

int um_marker_get_origin(int dirfd, const char *name, uint64_t *ret)
{
	return get_hex64(dirfd, name, UM_XATTR_ORIGIN, ret);
}

int um_marker_set_origin(int dirfd, const char *name, uint64_t st_ino)
{
	return set_hex64(dirfd, name, UM_XATTR_ORIGIN, st_ino);
}

int um_marker_is_complete(int dirfd, const char *name, uint64_t stack)
{
	uint64_t v;
	int r = get_hex64(dirfd, name, UM_XATTR_COMPLETE, &v);

	return r <= 0 ? r : v == stack;
}

int um_marker_set_complete(int dirfd, const char *name, uint64_t stack)
{
	return set_hex64(dirfd, name, UM_XATTR_COMPLETE, stack);
}

/* Is key in the listxattr list (NUL-separated, len bytes)? */
static bool listed(const char *list, size_t len, const char *key)
{
	for (size_t at = 0; at < len; at += strlen(list + at) + 1)
		if (!strcmp(list + at, key))
			return true;
	return false;
}

int um_marker_dir_flags(int dirfd, uint64_t stack)
{
	char list[1024];
	int r = um_sys_llistxattrat(dirfd, "", list, sizeof(list));
	bool all = r == -ERANGE; /* many attributes: ask for ours one by one */
	size_t len = r > 0 ? (size_t)r : 0;
	int flags = 0;

	if (r == -ENOTSUP)
		return 0;
	if (r < 0 && !all)
		return r;
	if (all || listed(list, len, UM_XATTR_IMPURE)) {
		r = um_marker_is_impure(dirfd, "");
		if (r < 0)
			return r;
		flags |= r ? UM_MARKER_IMPURE : 0;
	}
	if (all || listed(list, len, UM_XATTR_COMPLETE)) {
		r = um_marker_is_complete(dirfd, "", stack);
		if (r < 0)
			return r;
		flags |= r ? UM_MARKER_COMPLETE : 0;
	}
	return flags;
}

unsigned um_marker_fallthru_layer(const struct stat *st)
{
	unsigned mi;

	if (!S_ISCHR(st->st_mode) || major(st->st_rdev) != 0)
		return 0;
	mi = minor(st->st_rdev);
	return mi > UM_FALLTHRU_MINOR_BASE && mi <= UM_FALLTHRU_MINOR_MAX ? mi - UM_FALLTHRU_MINOR_BASE : 0;
}

dev_t um_marker_fallthru_dev(unsigned layer)
{
	return makedev(0, UM_FALLTHRU_MINOR_BASE + layer);
}

int um_marker_get_redirect(int dirfd, const char *name, char *buf, size_t size)
{
	int r = um_sys_lgetxattrat(dirfd, name, UM_XATTR_REDIRECT, buf, size - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r == -ERANGE)
		return -EIO;
	if (r < 0)
		return r;
	buf[r] = '\0';
	/* Empty, embedded NULs, or ".." components would not name a place;
	 * a relative one is a single name (kernel overlayfs writes no other),
	 * looked up without following anything. */
	if (r == 0 || strlen(buf) != (size_t)r || strstr(buf, "/../") || !strcmp(buf, "..") ||
	    !strcmp(buf, ".") || !strncmp(buf, "../", 3) || (r >= 3 && !strcmp(buf + r - 3, "/..")) ||
	    (buf[0] != '/' && strchr(buf, '/')))
		return -EIO;
	return r;
}

int um_marker_set_redirect(int dirfd, const char *name, const char *path)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_REDIRECT, path, strlen(path), 0);
}

int um_marker_is_impure(int dirfd, const char *name)
{
	return get_flag(dirfd, name, UM_XATTR_IMPURE);
}

int um_marker_set_impure(int dirfd, const char *name)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_IMPURE, "y", 1, 0);
}

int um_marker_get_lowerlinks(int dirfd, const char *name)
{
	char v[12];
	char *end;
	long n;
	int r = um_sys_lgetxattrat(dirfd, name, UM_XATTR_LOWERLINKS, v, sizeof(v) - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r < 0)
		return r == -ERANGE ? -EIO : r;
	v[r] = '\0';
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < 0 || n > 65535)
		return -EIO;
	return (int)n;
}

int um_marker_set_lowerlinks(int dirfd, const char *name, unsigned n)
{
	char v[12];
	int len = snprintf(v, sizeof(v), "%u", n);

	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_LOWERLINKS, v, (size_t)len, 0);
}

/* Real paths rather than device numbers: a live-CD's loop device and its
 * squashfs root inode may differ from boot to boot while the stack is the
 * same. The NUL after each path separates them. */
int um_marker_stack_id(const int *lower_fds, size_t n, uint64_t *ret)
{
	XXH3_state_t *st = XXH3_createState();
	int r = 0;

	if (!st)
		return -ENOMEM;
	(void)XXH3_64bits_reset(st);
	for (size_t i = 0; i < n && r == 0; i++) {
		char proc[64], path[PATH_MAX];
		ssize_t len;

		(void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", lower_fds[i]);
		len = readlink(proc, path, sizeof(path));
		if (len < 0 || (size_t)len >= sizeof(path)) {
			r = len < 0 ? -errno : -ENAMETOOLONG;
			break;
		}
		path[len] = '\0'; /* readlink() does not end it */
		(void)XXH3_64bits_update(st, path, (size_t)len + 1);
	}
	*ret = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return r;
}
