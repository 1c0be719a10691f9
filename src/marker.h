/* THE on-disk format: the only module that knows how markers look.
 *
 * Format version 2 (man/unionmount.8, ON-DISK FORMAT; version 1 had no
 * fallthrus and complete directories, and is read as a version 2 upper
 * none of whose directories was listed yet):
 *   whiteout   character device 0:0 (as kernel overlayfs)
 *   opaque dir xattr trusted.overlay.opaque = "y" (as kernel overlayfs)
 *   version    xattr trusted.unionmount.format on the upper root, decimal;
 *              a newer version than UM_FORMAT_VERSION is refused at mount
 *   redirect   xattr trusted.overlay.redirect on an upper directory that
 *              was moved: where its lower parts are, as kernel overlayfs
 *              writes it ("/a/b" from the branch roots, or a plain name
 *              relative to the parent's lower parts)
 *   origin     xattr trusted.unionmount.origin on an upper object copied
 *              up (or moved) from below: its union st_ino, 16 hex digits,
 *              so st_ino survives copy-up and remount
 *   impure     xattr trusted.unionmount.impure = "y" on an upper directory
 *              holding entries with an origin: readdir reads their origin
 *              only there
 *   index      WORKDIR/unionmount/index/<origin as 16 hex digits>: a hard
 *              link to the upper copy of a hard-linked object, reached by
 *              st_ino rather than by any one of its names
 *   lowerlinks xattr trusted.unionmount.lowerlinks on an index entry,
 *              decimal: the names the object still has only in lower
 *              branches (visible st_nlink = index nlink - 1 + lowerlinks)
 *   fallthru   character device 0:(0x80000 + L) where L is the layer the
 *              name is visible from (1 = top-most lowerdir); usually a hard
 *              link to a shared marker in WORKDIR/unionmount/fallthru/, so
 *              it costs a directory entry and no inode (readdir/fallthru.h)
 *   complete   xattr trusted.unionmount.complete on an upper directory,
 *              16 hex digits: every name visible in it is in upper (real,
 *              fallthru or whiteout), for the lower stack with that id
 *              (fs.h: a hash of the lowerdir list); another id reads as
 *              not complete
 * Internal xattrs (trusted.overlay.*, trusted.unionmount.*) are hidden
 * from getxattr/listxattr and refused by setxattr.
 */
#ifndef UM_MARKER_H
#define UM_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define UM_FORMAT_VERSION 2

#define UM_XATTR_OPAQUE "trusted.overlay.opaque"
#define UM_XATTR_FORMAT "trusted.unionmount.format"
#define UM_XATTR_REDIRECT "trusted.overlay.redirect"
#define UM_XATTR_ORIGIN "trusted.unionmount.origin"
#define UM_XATTR_IMPURE "trusted.unionmount.impure"
/* Kernel overlayfs's own mark for a directory holding copied-up or moved
 * entries: read, never written, so that its redirects are followed. */
#define UM_XATTR_OVL_IMPURE "trusted.overlay.impure"
#define UM_XATTR_LOWERLINKS "trusted.unionmount.lowerlinks"
#define UM_XATTR_COMPLETE "trusted.unionmount.complete"

/* Fallthru device numbers: major 0 like a whiteout (no driver has it),
 * minors from here up; the layer fits in UM_MAX_LOWER (config.h). */
#define UM_FALLTHRU_MINOR_BASE 0x80000u
#define UM_FALLTHRU_MINOR_MAX 0xfffffu

/* Classifies from lstat alone: no extra syscall for ordinary entries. */
static inline bool um_marker_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* A fallthru's layer (>= 1), or 0 when st is no fallthru. */
unsigned um_marker_fallthru_layer(const struct stat *st);
dev_t um_marker_fallthru_dev(unsigned layer);

/* From a getdents d_type: could this entry be a whiteout or a fallthru
 * (needs lstat, unless readdir/fallthru.h knows its inode)? */
static inline bool um_marker_dtype_may_be_whiteout(unsigned char d_type)
{
	return d_type == 2 /* DT_CHR */ || d_type == 0 /* DT_UNKNOWN */;
}

/* Is dirfd/name (name "" = dirfd itself) an opaque directory?
 * Returns 1, 0, or -errno. */
int um_marker_is_opaque(int dirfd, const char *name);

/* Write a whiteout at dirfd/name (which must not exist). */
int um_marker_make_whiteout(int dirfd, const char *name);
/* Mark dirfd/name ("" = dirfd) opaque. */
int um_marker_set_opaque(int dirfd, const char *name);

/* Origin of dirfd/name ("" = dirfd): 1 and *ret, 0 if none, or -errno
 * (-EIO when it does not decode: a damaged marker is never guessed at). */
int um_marker_get_origin(int dirfd, const char *name, uint64_t *ret);
/* One log line for a marker key of name that does not decode (-EIO from
 * the readers here): lookup and listing say the same about it. */
void um_marker_log_bad(const char *name, const char *key);
int um_marker_set_origin(int dirfd, const char *name, uint64_t st_ino);

/* Redirect of dirfd/name: its length (value NUL-terminated), 0 if none,
 * or -errno. */
int um_marker_get_redirect(int dirfd, const char *name, char *buf, size_t size);
int um_marker_set_redirect(int dirfd, const char *name, const char *path);

/* Impure flag of a directory (name "" = dirfd): 1, 0 or -errno. */
int um_marker_is_impure(int dirfd, const char *name);
int um_marker_is_ovl_impure(int dirfd, const char *name);
int um_marker_set_impure(int dirfd, const char *name);

/* Complete mark of a directory (name "" = dirfd): 1 when it carries
 * stack id `stack`, 0 when absent or for another stack, or -errno (-EIO
 * when it does not decode). */
int um_marker_is_complete(int dirfd, const char *name, uint64_t stack);
int um_marker_set_complete(int dirfd, const char *name, uint64_t stack);

/* The stack id complete marks carry: a hash of the lowerdirs' real paths
 * (read through /proc/self/fd), top-most first. 0 or -errno. */
int um_marker_stack_id(const int *lower_fds, size_t n, uint64_t *ret);

/* A directory's own marks (dirfd itself), read when its inode is made:
 * a mask of UM_MARKER_IMPURE, UM_MARKER_COMPLETE (for stack) and
 * UM_MARKER_OVL_IMPURE (kernel overlayfs's impure mark), or -errno. One
 * listxattr when it has none of them, the common case. */
#define UM_MARKER_IMPURE 1
#define UM_MARKER_COMPLETE 2
#define UM_MARKER_OVL_IMPURE 4
int um_marker_dir_flags(int dirfd, uint64_t stack);

/* lowerlinks of an index entry: the count (0 if absent) or -errno. */
int um_marker_get_lowerlinks(int dirfd, const char *name);
int um_marker_set_lowerlinks(int dirfd, const char *name, unsigned n);

/*
 * Decoding, apart from reading: pure functions over an xattr value as
 * read (len bytes at buf, no NUL needed after them), used by the getters
 * above and fuzzed by tests/fuzz/fuzz_markers.c. None of them guesses at
 * a damaged value: what is not in the format is -EIO.
 */
/* A flag (opaque, impure): the value "y". Anything else is no flag (kernel
 * overlayfs writes "x" into opaque for "has xwhiteouts", for instance). */
bool um_marker_decode_flag(const char *buf, size_t len);
/* origin, complete: exactly 16 hex digits (written lowercase, either case
 * read). 0 and *ret, or -EIO; *ret is written only on success. */
int um_marker_decode_hex64(const char *buf, size_t len, uint64_t *ret);
/* lowerlinks, format: decimal digits only (no sign, no blanks), their
 * value at most max. 0 and *ret, or -EIO; *ret only on success. */
int um_marker_decode_uint(const char *buf, size_t len, uint64_t max, uint64_t *ret);
/* redirect: len (as an int), or -EIO when it names no place: empty, a NUL
 * inside, a ".." component, or a relative value that is not one plain
 * name ("." and ".." are not names). An absolute one may hold "." and
 * empty components, which name nothing new. */
int um_marker_decode_redirect(const char *buf, size_t len);

/* Would a user see this xattr name? */
bool um_marker_is_internal_xattr(const char *name);

/* Check the upper root's format version: 0 if absent or known, -EPROTO
 * with a message in err if newer than this daemon, other -errno on I/O. */
int um_marker_check_format(int upper_root_fd, char *err, size_t errlen);
/* Record this daemon's format version on the upper root (before it
 * writes anything an older daemon would misread). */
int um_marker_set_format(int upper_root_fd);

#endif
