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
 * its parent (see marker.h): every name then reaches that one copy. */
#ifndef UM_COPYUP_H
#define UM_COPYUP_H

#include "unionmount.h"

struct um_inode;

/* Copy no data: the caller is about to truncate it to zero. */
#define UM_COPYUP_NODATA 1u

/* Make sure ino has an upper copy; 0 when it already has one. Returns
 * -EROFS on a union without upper. */
int um_copyup(struct um_fs *fs, struct um_inode *ino, unsigned flags);

/* Before a copy-up that skips the data (UM_COPYUP_NODATA): may the
 * daemon's caller write the lower object? The copy would otherwise throw
 * the data away before the open or truncate asking for it is refused
 * (the kernel checks first only with default_permissions). */
int um_copyup_may_truncate(struct um_fs *fs, struct um_inode *ino);

/* Mark dir's upper part impure (before an entry with an origin lands in
 * it), once. */
int um_copyup_mark_impure(struct um_fs *fs, struct um_inode *dir);

/* Make the upper parents of a copied-up object durable (fsync path). */
int um_copyup_sync_parents(struct um_fs *fs, struct um_inode *ino);

#endif
