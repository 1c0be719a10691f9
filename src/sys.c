#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <unistd.h>

#include "log.h"

/* Capture errno right after the call, trace, and turn it into -errno. */
static int ret_trace(long r, const char *call, int dirfd, const char *name)
{
	int err = r < 0 ? errno : 0;

	if (um_log_debug_enabled() && r < 0)
		um_log(UM_LOG_DEBUG, "%s(%d, \"%s\") = %s", call, dirfd, name ? name : "", strerrorname_np(err));
	return r < 0 ? -err : (int)r;
}

int um_sys_lstatat(int dirfd, const char *name, struct stat *ret_st)
{
	return ret_trace(fstatat(dirfd, name, ret_st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), "fstatat", dirfd, name);
}

int um_sys_fstat(int fd, struct stat *ret_st)
{
	return ret_trace(fstat(fd, ret_st), "fstat", fd, NULL);
}

int um_sys_openat(int dirfd, const char *name, int flags)
{
	return ret_trace(openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC), "openat", dirfd, name);
}

int um_sys_open_dir(int dirfd, const char *name)
{
	int fd = um_sys_openat(dirfd, name, O_RDONLY | O_DIRECTORY);

	/* An unreadable directory can still be searched and looked up in. */
	if (fd == -EACCES)
		fd = um_sys_openat(dirfd, name, O_PATH | O_DIRECTORY);
	return fd;
}

int um_sys_readlinkat(int dirfd, const char *name, char *buf, size_t size)
{
	ssize_t n = readlinkat(dirfd, name, buf, size - 1);
	int r = ret_trace(n, "readlinkat", dirfd, name);

	if (r >= 0)
		buf[r] = '\0';
	return r;
}

int um_sys_getdents(int fd, void *buf, size_t size)
{
	return ret_trace(getdents64(fd, buf, size), "getdents64", fd, NULL);
}

int um_sys_fstatvfs(int fd, struct statvfs *ret_st)
{
	return ret_trace(fstatvfs(fd, ret_st), "fstatvfs", fd, NULL);
}

/* The l*xattr calls take paths only; /proc/self/fd/N names the directory
 * fd itself (the magic link is resolved by the kernel to that open
 * directory, not by walking a path), and name is a single component that
 * l* does not follow. Keeps branch access relative to the fd. */
static int fd_path(char *buf, size_t size, int dirfd, const char *name)
{
	int n;

	if (name[0])
		n = snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, name);
	else
		n = snprintf(buf, size, "/proc/self/fd/%d", dirfd);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int um_sys_lgetxattrat(int dirfd, const char *name, const char *key, void *value, size_t size)
{
	char path[64 + 256];
	int r = fd_path(path, sizeof(path), dirfd, name);

	if (r < 0)
		return r;
	/* For name == "" the magic link itself must be followed to reach the
	 * object; it cannot lead outside the branch. */
	if (name[0])
		return ret_trace(lgetxattr(path, key, value, size), "lgetxattr", dirfd, name);
	return ret_trace(getxattr(path, key, value, size), "getxattr", dirfd, name);
}

int um_sys_llistxattrat(int dirfd, const char *name, char *list, size_t size)
{
	char path[64 + 256];
	int r = fd_path(path, sizeof(path), dirfd, name);

	if (r < 0)
		return r;
	if (name[0])
		return ret_trace(llistxattr(path, list, size), "llistxattr", dirfd, name);
	return ret_trace(listxattr(path, list, size), "listxattr", dirfd, name);
}

int um_sys_fsync(int fd, int datasync)
{
	return ret_trace(datasync ? fdatasync(fd) : fsync(fd), "fsync", fd, NULL);
}

int um_sys_lseek(int fd, off_t off, int whence, off_t *ret_off)
{
	off_t r = lseek(fd, off, whence);
	int e = ret_trace(r < 0 ? -1 : 0, "lseek", fd, NULL);

	if (e == 0)
		*ret_off = r;
	return e;
}

int um_sys_open_path(const char *path, int flags)
{
	return ret_trace(open(path, flags | O_CLOEXEC), "open", AT_FDCWD, path);
}

int um_sys_mkdirat(int dirfd, const char *name, mode_t mode)
{
	return ret_trace(mkdirat(dirfd, name, mode), "mkdirat", dirfd, name);
}
