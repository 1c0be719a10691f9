/* Copying an object's metadata during copy-up: owner, xattrs (ACLs
 * included, internal markers excluded), mode, times. */
#ifndef UM_COPYUP_ATTRS_H
#define UM_COPYUP_ATTRS_H

#include <sys/stat.h>

/* Give dstdir/dstname (name "" = dstdir itself) the metadata st and the
 * xattrs of srcdir/srcname (same convention). Order matters: chown first
 * (it clears setuid/setgid and file capabilities), then xattrs (so
 * security.capability survives), then mode (restoring setuid/setgid),
 * then times (everything before changed ctime, the data copy mtime).
 * An xattr the upper filesystem cannot hold is skipped (logged); ENOSPC,
 * EDQUOT, EIO fail the copy. */
int um_copy_attrs(int srcdir, const char *srcname, int dstdir, const char *dstname, const struct stat *st);

/* Only the xattrs, for the callers above and for tests. */
int um_copy_xattrs(int srcdir, const char *srcname, int dstdir, const char *dstname);

#endif
