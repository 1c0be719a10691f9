/* Copy-up (DESIGN.md "Copy-up"): before anything changes an object that
 * lives only in a lower branch, it gets an upper copy, built in the
 * workdir and renamed into place, so a crash leaves either the lower
 * object or the whole copy. Parents are copied first (directories:
 * metadata only). Concurrent triggers on one object copy it once: the
 * copy happens under the inode's write lock and re-checks first.
 *
 * Durability: a copied file's data is fsync'ed before the rename that
 * publishes it (it never appears half-written after a power loss); the
 * rename itself is made durable by the first fsync of the object through
 * the union (UM_INO_DIRSYNC), as an fsync of a new file must also sync
 * its directory entry.
 *
 * A non-directory with several names below goes to the index instead of
 * its parent (see marker.h): every name then reaches that one copy.
 *
 * Metadata-only copy-up (metacopy=on, the default; DESIGN.md allows it):
 * a change of metadata alone (chmod, chown, utimens, xattrs) to a lower
 * regular file with data and one name copies no data. The upper copy gets
 * the lower size as a hole and the metacopy marker (marker.h); reads go
 * to the lower file, stat shows the lower size and blocks. The first
 * call that needs the data in upper (open for writing, truncate, link,
 * rename, removal while open) copies it into that file, fsyncs it, and
 * only then drops the marker: a crash leaves the marker, and the lower
 * data is read again. The copy without data is not fsync'ed: no data is
 * at risk, and its metadata reaches the disk in order (as kernel
 * overlayfs's metacopy does). */
#ifndef UM_COPYUP_H
#define UM_COPYUP_H

#include "unionmount.h"

struct um_inode;

/* Copy no data: the caller is about to truncate it to zero. */
#define UM_COPYUP_NODATA 1u
/* The caller changes metadata only: the data may stay below (metacopy).
 * Without this flag, a metacopy file gets its data copied. */
#define UM_COPYUP_META 2u

/* Make sure ino has an upper copy (with its data unless UM_COPYUP_META);
 * 0 when it already has one. Returns -EROFS on a union without upper. */
int um_copyup(struct um_fs *fs, struct um_inode *ino, unsigned flags);

/* Before a copy-up that skips the data (UM_COPYUP_NODATA): may the
 * daemon's caller write the lower object? The copy would otherwise throw
 * the data away before the open or truncate asking for it is refused
 * (the kernel checks first only with default_permissions). */
int um_copyup_may_truncate(struct um_fs *fs, struct um_inode *ino);

/* Mark dir's upper part impure (before an entry with an origin lands in
 * it), once. */
int um_copyup_mark_impure(struct um_fs *fs, struct um_inode *dir);

/* Before ino may lose its last name: an open metacopy file gets its data
 * in upper, where the open files' later reopens (keep_fd, inode.h) find
 * it once the name and its way to the data below are gone. */
int um_copyup_before_removal(struct um_fs *fs, struct um_inode *ino);

/* fsync of a metacopy file through a handle on its lower data: make its
 * upper copy (mode, owner, times, xattrs) durable too; 0 for any other. */
int um_copyup_sync_metacopy(struct um_fs *fs, struct um_inode *ino);

/* Make the upper parents of a copied-up object durable (fsync path). */
int um_copyup_sync_parents(struct um_fs *fs, struct um_inode *ino);

#endif
