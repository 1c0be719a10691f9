#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <unistd.h>

#include "dirfds.h"
#include "log.h"

/* Capture errno right after the call, trace, and turn it into -errno. */
static int ret_trace(long r, const char *call, int dirfd, const char *name)
{
	int err = r < 0 ? errno : 0;

	/* The caller sees only "Too many open files" for a stat or a
	 * listing, which says nothing of the daemon's own limit: say it
	 * here, where every call that opens something passes. */
	if (err == EMFILE || err == ENFILE) {
		um_log(UM_LOG_ERR, "out of file descriptors (%s): directories in use keep one per branch part; "
				   "raise the open-files limit",
		       strerror(err));
		um_dirfds_emfile();
	}
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

int um_sys_flock(int fd, int op)
{
	return ret_trace(flock(fd, op), "flock", fd, NULL);
}

int um_sys_openat(int dirfd, const char *name, int flags)
{
	char self[64];
	int r;

	if (name[0] != '\0')
		return ret_trace(openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC), "openat", dirfd, name);
	/* dirfd itself (an O_PATH fd on a file that lost its last name):
	 * openat() takes no empty name, its magic link reopens it, which
	 * O_NOFOLLOW (a caller's open flag) would refuse. */
	r = um_sys_fd_path(self, sizeof(self), dirfd, "");
	if (r < 0)
		return r;
	return ret_trace(open(self, (flags & ~O_NOFOLLOW) | O_CLOEXEC), "open", dirfd, name);
}

int um_sys_createat(int dirfd, const char *name, int flags, mode_t mode)
{
	return ret_trace(openat(dirfd, name, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode), "openat", dirfd, name);
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

int um_sys_sweep(int fd, int (*visit)(void *ctx, int fd, struct dirent64 *d), void *ctx)
{
	char buf[8192];
	bool removed = true;
	int r = 0;

	while (removed && r >= 0) {
		removed = false;
		r = um_sys_lseek(fd, 0, SEEK_SET, &(off_t){ 0 });
		while (r >= 0 && (r = um_sys_getdents(fd, buf, sizeof(buf))) > 0) {
			int n = r;

			r = 0;
			for (int off = 0; off < n && r >= 0;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);

				off += d->d_reclen;
				if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
					continue;
				r = visit(ctx, fd, d);
				if (r == -ENOENT)
					r = 0;
				removed |= r > 0;
			}
		}
	}
	return r < 0 ? r : 0;
}

int um_sys_fstatvfs(int fd, struct statvfs *ret_st)
{
	return ret_trace(fstatvfs(fd, ret_st), "fstatvfs", fd, NULL);
}

/* Written once, by probe_calls() under calls_once, before any reader
 * sees them: pthread_once orders that, no lock needed after (the
 * calls and the probe: below). */
static pthread_once_t calls_once = PTHREAD_ONCE_INIT;
static bool have_xattrat, have_fchmodat2;

static void probe_calls(void);

/* Where fd_path() finds this process's fds: /proc/self/fd/ until
 * um_sys_pin_proc() makes it the working directory, "" after. Written by
 * main() before the session threads start, read-only after: no lock. */
static const char *fd_dir = "/proc/self/fd/";

int um_sys_pin_proc(void)
{
	int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return ret_trace(-1, "open", AT_FDCWD, "/proc/self/fd");
	r = ret_trace(fchdir(fd), "fchdir", fd, NULL);
	(void)close(fd);
	if (r == 0)
		fd_dir = "";
	/* The calls' probe too, before requests come: not within the first
	 * request that changes an xattr (where a tracer counting its calls,
	 * t_crash_ns's, would see it). */
	(void)pthread_once(&calls_once, probe_calls);
	return r;
}

/* The l*xattr calls take paths only; FD_DIR/N names the directory fd
 * itself (the magic link is resolved by the kernel to that open
 * directory, not by walking a path), and name is a single component that
 * l* does not follow. Keeps branch access relative to the fd. */
int um_sys_fd_path(char *buf, size_t size, int dirfd, const char *name)
{
	int n;

	if (name[0])
		n = snprintf(buf, size, "%s%d/%s", fd_dir, dirfd, name);
	else
		n = snprintf(buf, size, "%s%d", fd_dir, dirfd);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * Linux 6.13's *xattrat() calls and 6.6's fchmodat2() take a directory
 * fd and a name they do not follow, as every branch access here should.
 * Where the kernel lacks them, the same is reached through the fd's magic
 * link (um_sys_fd_path()), at the price of a walk through procfs: a marker
 * read costs about twice the call's own time that way (bench/README.md,
 * "Calls relative to a directory fd"). A name "" (the fd itself) takes
 * the f*xattr() calls, which refuse O_PATH fds with EBADF: those take
 * the magic link.
 */
/* Older headers lack some of the numbers: one on every architecture
 * since 4.20's unified table (not alpha, mips, ia64), each defined alone,
 * as headers gained them one release at a time. */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) || defined(__riscv) || \
	defined(__powerpc__) || defined(__s390__) || defined(__loongarch__)
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif
#endif

#if defined(SYS_getxattrat) && defined(SYS_setxattrat) && defined(SYS_listxattrat) && defined(SYS_removexattrat)
#define XATTRAT_NRS 1 /* the four came together: all or none */
#endif

/* struct xattr_args of <linux/xattr.h> (6.13), which older headers lack. */
struct xattrat_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

/* Invalid flags change nothing (and the key, in no namespace, could
 * name no attribute): EINVAL, or any error of a call that exists, says
 * the kernel has it; ENOSYS, or the EPERM of a seccomp filter that
 * predates it, that it has not. */
static bool call_exists(long r)
{
	return r < 0 && errno != ENOSYS && errno != EPERM;
}

/* The four *xattrat() calls came together, but a seccomp profile may
 * know some of them only: all four, or the /proc route for all. */
static void probe_calls(void)
{
#ifdef XATTRAT_NRS
	have_xattrat = call_exists(syscall(SYS_getxattrat, AT_FDCWD, "", ~0u, "unionmount.probe", NULL, 0)) &&
		       call_exists(syscall(SYS_setxattrat, AT_FDCWD, "", ~0u, "unionmount.probe", NULL, 0)) &&
		       call_exists(syscall(SYS_listxattrat, AT_FDCWD, "", ~0u, NULL, 0)) &&
		       call_exists(syscall(SYS_removexattrat, AT_FDCWD, "", ~0u, "unionmount.probe"));
#endif
#ifdef SYS_fchmodat2
	have_fchmodat2 = call_exists(syscall(SYS_fchmodat2, AT_FDCWD, "", 0, ~0u));
#endif
	um_debug("branch xattrs %s, modes %s", have_xattrat ? "by getxattrat() and its siblings" : "through /proc/self/fd",
	       have_fchmodat2 ? "by fchmodat2()" : "through /proc/self/fd");
}

static bool use_xattrat(void)
{
	(void)pthread_once(&calls_once, probe_calls);
	return have_xattrat;
}

#ifdef SYS_fchmodat2
static bool use_fchmodat2(void)
{
	(void)pthread_once(&calls_once, probe_calls);
	return have_fchmodat2;
}
#endif

/* Which route an xattr call on dirfd/name takes. */
enum xattr_route {
	BY_NAME, /* *xattrat(dirfd, name, AT_SYMLINK_NOFOLLOW) */
	BY_FD,   /* f*xattr(dirfd): name is "" */
	BY_PATH, /* l*xattr / *xattr on the magic link */
};

static enum xattr_route route(const char *name)
{
	if (!name[0])
		return BY_FD;
	return use_xattrat() ? BY_NAME : BY_PATH;
}

/* f*xattr() refused an O_PATH fd: the magic link reaches it. */
static bool fd_refused(long r)
{
	return r < 0 && errno == EBADF;
}

int um_sys_lgetxattrat(int dirfd, const char *name, const char *key, void *value, size_t size)
{
	enum xattr_route how = route(name);
	char path[64 + 256];
	long r;

#ifdef XATTRAT_NRS
	if (how == BY_NAME) {
		struct xattrat_args a = { .value = (uintptr_t)value,
					  .size = (uint64_t)size > UINT32_MAX ? UINT32_MAX : (uint32_t)size };

		return ret_trace(syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, key, &a, sizeof(a)),
				 "getxattrat", dirfd, name);
	}
#endif
	if (how == BY_FD) {
		r = fgetxattr(dirfd, key, value, size);
		if (!fd_refused(r))
			return ret_trace(r, "fgetxattr", dirfd, name);
	}
	r = um_sys_fd_path(path, sizeof(path), dirfd, name);
	if (r < 0)
		return (int)r;
	/* For name == "" the magic link itself must be followed to reach the
	 * object; it cannot lead outside the branch. */
	if (name[0])
		return ret_trace(lgetxattr(path, key, value, size), "lgetxattr", dirfd, name);
	return ret_trace(getxattr(path, key, value, size), "getxattr", dirfd, name);
}

int um_sys_llistxattrat(int dirfd, const char *name, char *list, size_t size)
{
	enum xattr_route how = route(name);
	char path[64 + 256];
	long r;

#ifdef XATTRAT_NRS
	if (how == BY_NAME)
		return ret_trace(syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, list, size), "listxattrat",
				 dirfd, name);
#endif
	if (how == BY_FD) {
		r = flistxattr(dirfd, list, size);
		if (!fd_refused(r))
			return ret_trace(r, "flistxattr", dirfd, name);
	}
	r = um_sys_fd_path(path, sizeof(path), dirfd, name);
	if (r < 0)
		return (int)r;
	if (name[0])
		return ret_trace(llistxattr(path, list, size), "llistxattr", dirfd, name);
	return ret_trace(listxattr(path, list, size), "listxattr", dirfd, name);
}

int um_sys_fsync(int fd, int datasync)
{
	return ret_trace(datasync ? fdatasync(fd) : fsync(fd), "fsync", fd, NULL);
}

int um_sys_syncfs(int fd)
{
	return ret_trace(syncfs(fd), "syncfs", fd, NULL);
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

int um_sys_unlinkat(int dirfd, const char *name, int flags)
{
	return ret_trace(unlinkat(dirfd, name, flags), "unlinkat", dirfd, name);
}

int um_sys_renameat(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned int flags)
{
	return ret_trace(renameat2(olddirfd, oldname, newdirfd, newname, flags), "renameat2", olddirfd, oldname);
}

int um_sys_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev)
{
	return ret_trace(mknodat(dirfd, name, mode, dev), "mknodat", dirfd, name);
}

int um_sys_symlinkat(const char *target, int dirfd, const char *name)
{
	return ret_trace(symlinkat(target, dirfd, name), "symlinkat", dirfd, name);
}

int um_sys_linkat(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
	return ret_trace(linkat(olddirfd, oldname, newdirfd, newname, 0), "linkat", olddirfd, oldname);
}

int um_sys_fchownat(int dirfd, const char *name, uid_t uid, gid_t gid)
{
	return ret_trace(fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH)),
			 "fchownat", dirfd, name);
}

int um_sys_fchmodat(int dirfd, const char *name, mode_t mode)
{
	char path[64];
	int fd = dirfd, r;

#ifdef SYS_fchmodat2
	if (use_fchmodat2())
		return ret_trace(syscall(SYS_fchmodat2, dirfd, name, mode, name[0] ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH),
				 "fchmodat2", dirfd, name);
#endif
	if (name[0]) {
		fd = um_sys_openat(dirfd, name, O_PATH);
		if (fd < 0)
			return fd;
	}
	/* chmod of the magic link reaches the inode the O_PATH fd holds. */
	r = um_sys_fd_path(path, sizeof(path), fd, "");
	if (r == 0)
		r = ret_trace(chmod(path, mode), "chmod", dirfd, name);
	if (fd != dirfd)
		(void)close(fd);
	return r;
}

int um_sys_utimensat(int dirfd, const char *name, const struct timespec times[2])
{
	char path[64];
	int r;

	if (name[0])
		return ret_trace(utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW), "utimensat", dirfd, name);
	/* dirfd may be O_PATH, which futimens() refuses; AT_EMPTY_PATH takes
	 * it from Linux 5.8 on (EINVAL before: the magic link then). */
	r = ret_trace(utimensat(dirfd, "", times, AT_EMPTY_PATH), "utimensat", dirfd, name);
	if (r != -EINVAL)
		return r;
	if (um_sys_fd_path(path, sizeof(path), dirfd, "") < 0)
		return -ENAMETOOLONG;
	return ret_trace(utimensat(AT_FDCWD, path, times, 0), "utimensat", dirfd, name);
}

int um_sys_ftruncate(int fd, off_t len)
{
	return ret_trace(ftruncate(fd, len), "ftruncate", fd, NULL);
}

int um_sys_fallocate(int fd, int mode, off_t off, off_t len)
{
	return ret_trace(fallocate(fd, mode, off, len), "fallocate", fd, NULL);
}

int um_sys_fchown(int fd, uid_t uid, gid_t gid)
{
	return ret_trace(fchown(fd, uid, gid), "fchown", fd, NULL);
}

int um_sys_fchmod(int fd, mode_t mode)
{
	return ret_trace(fchmod(fd, mode), "fchmod", fd, NULL);
}

int um_sys_futimens(int fd, const struct timespec times[2])
{
	return ret_trace(futimens(fd, times), "futimens", fd, NULL);
}

int um_sys_lsetxattrat(int dirfd, const char *name, const char *key, const void *value, size_t size, int flags)
{
	enum xattr_route how = route(name);
	char path[64 + 256];
	long r;

#ifdef XATTRAT_NRS
	if (how == BY_NAME) {
		struct xattrat_args a = { .value = (uintptr_t)value,
					  .size = (uint64_t)size > UINT32_MAX ? UINT32_MAX : (uint32_t)size,
					  .flags = (uint32_t)flags };

		return ret_trace(syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, key, &a, sizeof(a)),
				 "setxattrat", dirfd, name);
	}
#endif
	if (how == BY_FD) {
		r = fsetxattr(dirfd, key, value, size, flags);
		if (!fd_refused(r))
			return ret_trace(r, "fsetxattr", dirfd, name);
	}
	r = um_sys_fd_path(path, sizeof(path), dirfd, name);
	if (r < 0)
		return (int)r;
	if (name[0])
		return ret_trace(lsetxattr(path, key, value, size, flags), "lsetxattr", dirfd, name);
	return ret_trace(setxattr(path, key, value, size, flags), "setxattr", dirfd, name);
}

int um_sys_lremovexattrat(int dirfd, const char *name, const char *key)
{
	enum xattr_route how = route(name);
	char path[64 + 256];
	long r;

#ifdef XATTRAT_NRS
	if (how == BY_NAME)
		return ret_trace(syscall(SYS_removexattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, key), "removexattrat",
				 dirfd, name);
#endif
	if (how == BY_FD) {
		r = fremovexattr(dirfd, key);
		if (!fd_refused(r))
			return ret_trace(r, "fremovexattr", dirfd, name);
	}
	r = um_sys_fd_path(path, sizeof(path), dirfd, name);
	if (r < 0)
		return (int)r;
	if (name[0])
		return ret_trace(lremovexattr(path, key), "lremovexattr", dirfd, name);
	return ret_trace(removexattr(path, key), "removexattr", dirfd, name);
}

int um_sys_fsetxattr(int fd, const char *key, const void *value, size_t size, int flags)
{
	return ret_trace(fsetxattr(fd, key, value, size, flags), "fsetxattr", fd, NULL);
}

ssize_t um_sys_copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t len, unsigned int flags)
{
	ssize_t n = copy_file_range(in, off_in, out, off_out, len, flags);
	int e = ret_trace(n < 0 ? -1 : 0, "copy_file_range", in, NULL);

	return e < 0 ? e : n;
}

int um_sys_ficlone(int dst_fd, int src_fd)
{
	return ret_trace(ioctl(dst_fd, FICLONE, src_fd), "ioctl(FICLONE)", dst_fd, NULL);
}

int um_sys_copy_range(int src_fd, int dst_fd, off_t off, size_t len)
{
	off_t in = off, out = off;

	return ret_trace(copy_file_range(src_fd, &in, dst_fd, &out, len, 0), "copy_file_range", src_fd, NULL);
}

int um_sys_pread(int fd, void *buf, size_t len, off_t off)
{
	return ret_trace(pread(fd, buf, len, off), "pread", fd, NULL);
}

int um_sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return ret_trace(pwrite(fd, buf, len, off), "pwrite", fd, NULL);
}

int um_sys_faccessat(int dirfd, const char *name, int mode)
{
	return ret_trace(faccessat(dirfd, name, mode, AT_EACCESS | AT_SYMLINK_NOFOLLOW), "faccessat", dirfd, name);
}
