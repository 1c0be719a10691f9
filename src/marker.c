#include "marker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "sys.h"

/* ---- decoding: pure, no I/O (marker.h) ---------------------------------- */

bool um_marker_decode_flag(const char *buf, size_t len)
{
	return len == 1 && buf[0] == 'y';
}

/* Digit by digit rather than strtoull/strtol, which would also take
 * leading blanks, a sign, "0x", and stop at a NUL inside the value: a
 * damaged marker must not decode into some other number. */
static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int um_marker_decode_hex64(const char *buf, size_t len, uint64_t *ret)
{
	uint64_t val = 0;

	if (len != 16)
		return -EIO;
	for (size_t i = 0; i < len; i++) {
		int d = hex_digit(buf[i]);

		if (d < 0)
			return -EIO;
		val = val << 4 | (uint64_t)d;
	}
	*ret = val;
	return 0;
}

int um_marker_decode_uint(const char *buf, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t val = 0;

	if (len == 0)
		return -EIO;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(buf[i] - '0');

		if (buf[i] < '0' || buf[i] > '9' || d > max || val > (max - d) / 10)
			return -EIO;
		val = val * 10 + d;
	}
	*ret = val;
	return 0;
}

static bool is_dots(const char *s, size_t len, size_t n_dots)
{
	return len == n_dots && !memcmp(s, "..", n_dots);
}

int um_marker_decode_redirect(const char *buf, size_t len)
{
	if (len == 0 || len > INT_MAX || memchr(buf, '\0', len))
		return -EIO;
	/* Relative: one plain name, looked up without following anything
	 * (kernel overlayfs writes no other). */
	if (buf[0] != '/')
		return memchr(buf, '/', len) || is_dots(buf, len, 1) || is_dots(buf, len, 2) ? -EIO : (int)len;
	/* Absolute: from the branch roots, never above them. */
	for (size_t at = 1, end; at <= len; at = end + 1) {
		for (end = at; end < len && buf[end] != '/'; end++)
			;
		if (is_dots(buf + at, end - at, 2))
			return -EIO;
	}
	return (int)len;
}

/* ---- reading and writing ------------------------------------------------ */

static const struct um_marker_keys keys_trusted = {
	.ns = UM_MARKER_NS_TRUSTED,
	.prefix = "trusted.",
	.opaque = "trusted.overlay.opaque",
	.format = UM_XATTR_FORMAT_TRUSTED,
	.redirect = "trusted.overlay.redirect",
	.origin = "trusted.unionmount.origin",
	.impure = "trusted.unionmount.impure",
	.ovl_impure = "trusted.overlay.impure",
	.lowerlinks = "trusted.unionmount.lowerlinks",
	.complete = "trusted.unionmount.complete",
	.metacopy = "trusted.unionmount.metacopy",
};

/* Kernel overlayfs's userxattr names for its own markers. */
static const struct um_marker_keys keys_user = {
	.ns = UM_MARKER_NS_USER,
	.prefix = "user.",
	.opaque = "user.overlay.opaque",
	.format = UM_XATTR_FORMAT_USER,
	.redirect = "user.overlay.redirect",
	.origin = "user.unionmount.origin",
	.impure = "user.unionmount.impure",
	.ovl_impure = "user.overlay.impure",
	.lowerlinks = "user.unionmount.lowerlinks",
	.complete = "user.unionmount.complete",
	.metacopy = "user.unionmount.metacopy",
};

const struct um_marker_keys *um_marker_keys = &keys_trusted;

void um_marker_use(enum um_marker_ns ns)
{
	um_marker_keys = ns == UM_MARKER_NS_USER ? &keys_user : &keys_trusted;
}

/* Both namespaces whichever is in use: no user can plant a marker that a
 * mount in the other namespace would obey, and one answer for unionctl. */
bool um_marker_is_internal_xattr(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "trusted.unionmount.", 19) == 0 ||
	       strncmp(name, "user.overlay.", 13) == 0 || strncmp(name, "user.unionmount.", 16) == 0;
}

enum um_marker_user_stamp um_marker_decode_user_stamp(const char *buf, size_t len)
{
	size_t n = strlen(UM_FORMAT_USER_STAMP_TRUSTED);

	return len == n && !memcmp(buf, UM_FORMAT_USER_STAMP_TRUSTED, n) ? UM_STAMP_TRUSTED : UM_STAMP_USER;
}

/* The user stamp of the upper root, or -errno. */
static int read_user_stamp(int fd)
{
	char v[16];
	int r = um_sys_lgetxattrat(fd, "", UM_XATTR_FORMAT_USER, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP)
		return UM_STAMP_ABSENT;
	if (r == -ERANGE)
		return UM_STAMP_USER; /* not "trusted": a damaged user mark, which check_format reports */
	if (r < 0)
		return r;
	return (int)um_marker_decode_user_stamp(v, (size_t)r);
}

/* Removing a name never
 * written changes nothing either way: the kernel refuses trusted.* to a
 * process without CAP_SYS_ADMIN (in the initial user namespace) with
 * EPERM before looking for it, and a filesystem without trusted.* says
 * ENOTSUP. A read-only filesystem answers EROFS first: then root (euid
 * 0, in the initial namespace) is taken to have it. 1, 0 or -errno. */
int um_marker_can_trusted(int fd)
{
	int r = um_sys_lremovexattrat(fd, "", "trusted.unionmount.probe");

	if (r == -ENODATA || r == 0)
		return 1;
	if (r == -EPERM || r == -ENOTSUP)
		return 0;
	if (r == -EROFS)
		return geteuid() == 0;
	return r;
}

int um_marker_choose(int fd, bool userxattr, enum um_marker_ns *ret, char *err, size_t errlen)
{
	int stamp = read_user_stamp(fd), can = stamp < 0 ? stamp : um_marker_can_trusted(fd), r;

	if (stamp < 0 || can < 0) {
		r = stamp < 0 ? stamp : can;
		snprintf(err, errlen, "upperdir: cannot read its format marks: %s", strerror(-r));
		return r;
	}
	if (userxattr) {
		r = um_sys_lgetxattrat(fd, "", UM_XATTR_FORMAT_TRUSTED, NULL, 0);
		if (r >= 0 || r == -ERANGE || stamp == UM_STAMP_TRUSTED) {
			snprintf(err, errlen,
				 "upperdir: its markers are trusted.* attributes (written by unionmount run as root); remove -o userxattr and mount it as root");
			return -EPROTO;
		}
		*ret = UM_MARKER_NS_USER;
		return 0;
	}
	if (stamp == UM_STAMP_USER && can) {
		snprintf(err, errlen,
			 "upperdir: its markers are user.* attributes (%s: written by unionmount not run as root, or with -o userxattr); mount it with -o userxattr",
			 UM_XATTR_FORMAT_USER);
		return -EPROTO;
	}
	if (!can && stamp == UM_STAMP_TRUSTED) {
		snprintf(err, errlen,
			 "upperdir: its markers are trusted.* attributes (written by unionmount run as root), which only root can read; mount it as root");
		return -EPROTO;
	}
	*ret = can && stamp != UM_STAMP_USER ? UM_MARKER_NS_TRUSTED : UM_MARKER_NS_USER;
	return 0;
}

int um_marker_check_format(int upper_root_fd, unsigned *ret_ver, char *err, size_t errlen)
{
	char v[16];
	uint64_t ver;
	int r = um_sys_lgetxattrat(upper_root_fd, "", UM_XATTR_FORMAT, v, sizeof(v) - 1);

	if (ret_ver)
		*ret_ver = 0;
	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r == -ERANGE) {
		snprintf(err, errlen, "upperdir: %s is longer than any format version; the upper directory is damaged",
			 UM_XATTR_FORMAT);
		return -EPROTO;
	}
	if (r < 0) {
		snprintf(err, errlen, "upperdir: cannot read %s: %s", UM_XATTR_FORMAT, strerror(-r));
		return r;
	}
	v[r] = '\0';
	if (um_marker_decode_uint(v, (size_t)r, UINT64_MAX, &ver) < 0 || ver < 1) {
		snprintf(err, errlen, "upperdir: %s is '%s', not a format version; the upper directory is damaged",
			 UM_XATTR_FORMAT, v);
		return -EPROTO;
	}
	if (ver > UM_FORMAT_VERSION) {
		snprintf(err, errlen,
			 "upperdir: written with on-disk format %llu, this unionmount knows up to %d; use a newer unionmount",
			 (unsigned long long)ver, UM_FORMAT_VERSION);
		return -EPROTO;
	}
	if (ret_ver)
		*ret_ver = (unsigned)ver;
	return 0;
}

/* key = val on the root unless it is so already: no write, so no ctime
 * change, on every mount. */
static int set_root_mark(int fd, const char *key, const char *val)
{
	size_t n = strlen(val);
	char cur[16];
	int r = um_sys_lgetxattrat(fd, "", key, cur, sizeof(cur));

	if (r >= 0 && (size_t)r == n && memcmp(cur, val, n) == 0)
		return 0;
	return um_sys_lsetxattrat(fd, "", key, val, n, 0);
}

int um_marker_set_format(int upper_root_fd, unsigned version)
{
	char v[16];
	int r;

	(void)snprintf(v, sizeof(v), "%u", version);
	r = set_root_mark(upper_root_fd, UM_XATTR_FORMAT, v);
	/* Best effort: a filesystem without user.* (tmpfs before Linux 6.6)
	 * has no user upper to confuse this one with either. */
	if (r == 0 && um_marker_keys->ns == UM_MARKER_NS_TRUSTED) {
		int e = set_root_mark(upper_root_fd, UM_XATTR_FORMAT_USER, UM_FORMAT_USER_STAMP_TRUSTED);

		if (e < 0 && e != -ENOTSUP && e != -EPERM)
			r = e;
	}
	return r;
}

int um_marker_make_whiteout(int dirfd, const char *name)
{
	return um_sys_mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0));
}

int um_marker_set_opaque(int dirfd, const char *name)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_OPAQUE, "y", 1, 0);
}

/* Is key in the listxattr list (NUL-separated, len bytes)? */
static bool listed(const char *list, size_t len, const char *key)
{
	for (size_t at = 0; at < len; at += strlen(list + at) + 1)
		if (!strcmp(list + at, key))
			return true;
	return false;
}

/* A marker's value, as lgetxattrat() gives it. Reading a user.* xattr
 * takes read permission on the object; a daemon not run as root lacks it
 * on a directory of its own with mode 0311, say, which it may still
 * search (kernel overlayfs in a user namespace reads it with
 * CAP_DAC_OVERRIDE). Listing the names takes no permission, so a marker
 * that is not there is known absent: -ENODATA. One that is there and
 * cannot be read stays EACCES. */
static int read_marker(int dirfd, const char *name, const char *key, void *value, size_t size)
{
	char list[1024];
	int r = um_sys_lgetxattrat(dirfd, name, key, value, size);
	int n;

	if (r != -EACCES)
		return r;
	n = um_sys_llistxattrat(dirfd, name, list, sizeof(list));
	return n >= 0 && !listed(list, (size_t)n, key) ? -ENODATA : r;
}

/* A flag xattr: present with value "y". */
static int get_flag(int dirfd, const char *name, const char *key)
{
	char v[2];
	int r = read_marker(dirfd, name, key, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP || r == -ERANGE)
		return 0;
	if (r < 0)
		return r;
	return um_marker_decode_flag(v, (size_t)r);
}

int um_marker_is_opaque(int dirfd, const char *name)
{
	/* Absent, unsupported by the fs, or not "y": not opaque. */
	return get_flag(dirfd, name, UM_XATTR_OPAQUE);
}

/* A 16-hex-digit xattr: 1 and *ret, 0 if absent, -EIO if it does not decode. */
static int get_hex64(int dirfd, const char *name, const char *key, uint64_t *ret)
{
	char v[16];
	int r = read_marker(dirfd, name, key, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r == -ERANGE)
		return -EIO;
	if (r < 0)
		return r;
	r = um_marker_decode_hex64(v, (size_t)r, ret);
	return r < 0 ? r : 1;
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
	if (all || listed(list, len, UM_XATTR_OVL_IMPURE)) {
		r = um_marker_is_ovl_impure(dirfd, "");
		if (r < 0)
			return r;
		flags |= r ? UM_MARKER_OVL_IMPURE : 0;
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
	int r = read_marker(dirfd, name, UM_XATTR_REDIRECT, buf, size - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r == -ERANGE)
		return -EIO;
	if (r < 0)
		return r;
	buf[r] = '\0';
	return um_marker_decode_redirect(buf, (size_t)r);
}

int um_marker_set_redirect(int dirfd, const char *name, const char *path)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_REDIRECT, path, strlen(path), 0);
}

int um_marker_is_impure(int dirfd, const char *name)
{
	return get_flag(dirfd, name, UM_XATTR_IMPURE);
}

int um_marker_is_ovl_impure(int dirfd, const char *name)
{
	return get_flag(dirfd, name, UM_XATTR_OVL_IMPURE);
}

int um_marker_set_impure(int dirfd, const char *name)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_IMPURE, "y", 1, 0);
}

int um_marker_is_metacopy(int dirfd, const char *name)
{
	return get_flag(dirfd, name, UM_XATTR_METACOPY);
}

int um_marker_set_metacopy(int dirfd, const char *name)
{
	return um_sys_lsetxattrat(dirfd, name, UM_XATTR_METACOPY, "y", 1, 0);
}

int um_marker_get_lowerlinks(int dirfd, const char *name)
{
	char v[11];
	uint64_t n;
	int r = read_marker(dirfd, name, UM_XATTR_LOWERLINKS, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r < 0)
		return r == -ERANGE ? -EIO : r;
	r = um_marker_decode_uint(v, (size_t)r, 65535, &n);
	return r < 0 ? r : (int)n;
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

		r = um_sys_fd_path(proc, sizeof(proc), lower_fds[i], "");
		if (r < 0)
			break;
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

void um_marker_log_bad(const char *name, const char *key)
{
	um_log(UM_LOG_ERR, "'%s': its %s attribute does not decode (a damaged upper directory?); lookups of it fail with EIO",
	       name, key);
}
