/* Syscall wrappers for branch access: every call is relative to a
 * directory fd, never follows a symlink in its last component, returns
 * 0 / a count / an fd on success and -errno on failure, and traces itself
 * at debug level. errno is read nowhere else. */
#ifndef UM_SYS_H
#define UM_SYS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

/* fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) */
int um_sys_lstatat(int dirfd, const char *name, struct stat *ret_st);
/* fstat(fd) */
int um_sys_fstat(int fd, struct stat *ret_st);
int um_sys_flock(int fd, int op); /* LOCK_* from <sys/file.h> */
/* open(path, flags | O_CLOEXEC) for a branch root named by the
 * administrator: the one place a path is resolved, at mount time. */
int um_sys_open_path(const char *path, int flags);
int um_sys_mkdirat(int dirfd, const char *name, mode_t mode);
/* openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC): returns the fd.
 * An empty name reopens dirfd itself (an O_PATH fd) through /proc. */
int um_sys_openat(int dirfd, const char *name, int flags);
/* openat(dirfd, name, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode). */
int um_sys_createat(int dirfd, const char *name, int flags, mode_t mode);
/* A directory fd usable for *at() calls, getdents and fgetxattr: O_RDONLY,
 * falling back to O_PATH when the directory is not readable. */
int um_sys_open_dir(int dirfd, const char *name);
/* readlinkat; returns the length, buf is NUL-terminated. */
int um_sys_readlinkat(int dirfd, const char *name, char *buf, size_t size);
/* getdents64 into buf; returns bytes read, 0 at the end. */
int um_sys_getdents(int fd, void *buf, size_t size);
/* Call visit for every entry of the directory open at fd but "." and "..",
 * in passes from its start, until a pass removes nothing: removing names
 * while reading may make getdents skip others. visit returns 1 when it
 * removed the entry, 0 when it kept it, -errno to stop the sweep (which
 * then returns it); ENOENT from the visit means the name went meanwhile. */
struct dirent64;
int um_sys_sweep(int fd, int (*visit)(void *ctx, int fd, struct dirent64 *d), void *ctx);
int um_sys_fstatvfs(int fd, struct statvfs *ret_st);
int um_sys_fsync(int fd, int datasync);
int um_sys_syncfs(int fd);
/* lseek; the offset through *ret_off. */
int um_sys_lseek(int fd, off_t off, int whence, off_t *ret_off);

/* xattrs of dirfd/name without following a symlink in name; name may be
 * "" to mean dirfd itself (which may be an O_PATH fd). value NULL/size 0
 * asks for the size, as the libc calls do. */
/* A path naming dirfd/name ("" = dirfd itself) through the fd's magic
 * link, for the calls that take no dirfd (l*xattr, chmod). */
int um_sys_fd_path(char *buf, size_t size, int dirfd, const char *name);
/* Make /proc/self/fd the working directory and name fds relative to it
 * from then on, so that the daemon keeps reaching its fds when /proc is
 * unmounted or moved away in its root (switch_root). Call once, after
 * fuse_daemonize() (which forks: /proc/self changes) and before the
 * session threads start. */
int um_sys_pin_proc(void);
int um_sys_lgetxattrat(int dirfd, const char *name, const char *key, void *value, size_t size);
int um_sys_llistxattrat(int dirfd, const char *name, char *list, size_t size);

/* Changing calls, all relative to a directory fd, none following a
 * symlink in name. name "" means dirfd itself where noted. */
int um_sys_unlinkat(int dirfd, const char *name, int flags);
/* renameat2(); flags as the syscall (RENAME_NOREPLACE, _EXCHANGE, ...). */
int um_sys_renameat(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned int flags);
int um_sys_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev);
int um_sys_symlinkat(const char *target, int dirfd, const char *name);
int um_sys_linkat(int olddirfd, const char *oldname, int newdirfd, const char *newname);
/* name may be "". */
int um_sys_fchownat(int dirfd, const char *name, uid_t uid, gid_t gid);
/* chmod of dirfd/name (name may be "") without following a symlink:
 * through an O_PATH fd, so a symlink gets EOPNOTSUPP, never its target. */
int um_sys_fchmodat(int dirfd, const char *name, mode_t mode);
/* times[2] as utimensat(), UTIME_NOW/UTIME_OMIT allowed; name may be "". */
int um_sys_utimensat(int dirfd, const char *name, const struct timespec times[2]);
int um_sys_ftruncate(int fd, off_t len);
int um_sys_fallocate(int fd, int mode, off_t off, off_t len);
int um_sys_fchown(int fd, uid_t uid, gid_t gid);
int um_sys_fchmod(int fd, mode_t mode);
int um_sys_futimens(int fd, const struct timespec times[2]);
/* xattrs of dirfd/name (name may be ""), not following a symlink. */
int um_sys_lsetxattrat(int dirfd, const char *name, const char *key, const void *value, size_t size, int flags);
int um_sys_lremovexattrat(int dirfd, const char *name, const char *key);
/* copy_file_range(); returns the bytes copied. */
ssize_t um_sys_copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t len, unsigned int flags);
/* Data copying (copyup/data.c): FICLONE of the whole of src into dst;
 * copy_file_range of len bytes at off to the same offset; pread/pwrite.
 * The last three return the bytes moved. */
int um_sys_ficlone(int dst_fd, int src_fd);
int um_sys_copy_range(int src_fd, int dst_fd, off_t off, size_t len);
int um_sys_pread(int fd, void *buf, size_t len, off_t off);
int um_sys_pwrite(int fd, const void *buf, size_t len, off_t off);
/* faccessat(dirfd, name, mode, AT_EACCESS | AT_SYMLINK_NOFOLLOW) */
int um_sys_faccessat(int dirfd, const char *name, int mode);
int um_sys_fsetxattr(int fd, const char *key, const void *value, size_t size, int flags);

#endif
