/* THE on-disk format: the only module that knows how markers look.
 *
 * Format version 1 (man/unionmount.8, ON-DISK FORMAT):
 *   whiteout   character device 0:0 (as kernel overlayfs)
 *   opaque dir xattr trusted.overlay.opaque = "y" (as kernel overlayfs)
 *   version    xattr trusted.unionmount.format on the upper root, decimal;
 *              a newer version than UM_FORMAT_VERSION is refused at mount
 * Internal xattrs (trusted.overlay.*, trusted.unionmount.*) are hidden
 * from getxattr/listxattr and refused by setxattr.
 */
#ifndef UM_MARKER_H
#define UM_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define UM_FORMAT_VERSION 1

#define UM_XATTR_OPAQUE "trusted.overlay.opaque"
#define UM_XATTR_FORMAT "trusted.unionmount.format"

/* Classifies from lstat alone: no extra syscall for ordinary entries. */
static inline bool um_marker_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* From a getdents d_type: could this entry be a whiteout (needs lstat)? */
static inline bool um_marker_dtype_may_be_whiteout(unsigned char d_type)
{
	return d_type == 2 /* DT_CHR */ || d_type == 0 /* DT_UNKNOWN */;
}

/* Is dirfd/name (name "" = dirfd itself) an opaque directory?
 * Returns 1, 0, or -errno. */
int um_marker_is_opaque(int dirfd, const char *name);

/* Would a user see this xattr name? */
bool um_marker_is_internal_xattr(const char *name);

/* Check the upper root's format version: 0 if absent or known, -EPROTO
 * with a message in err if newer than this daemon, other -errno on I/O. */
int um_marker_check_format(int upper_root_fd, char *err, size_t errlen);

#endif
