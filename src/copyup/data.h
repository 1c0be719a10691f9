/* Copy-up of a regular file's data: as fast as the two filesystems allow,
 * and holes stay holes, so a sparse lower file does not fill the upper
 * branch with zeros. */
#ifndef UM_COPYUP_DATA_H
#define UM_COPYUP_DATA_H

#include <sys/types.h>

/* Copy the first size bytes of src_fd (open for reading) into dst_fd
 * (open for writing, not O_APPEND, freshly created and empty), then set
 * dst's size to exactly size, so a trailing hole is kept. Tries, falling
 * back only when a method is not supported between these two files:
 *  1. ioctl(FICLONE): a reflink of the whole file (btrfs, xfs), O(1);
 *  2. copy_file_range in chunks of at most 64 MiB, over the data extents
 *     that SEEK_DATA/SEEK_HOLE report (the whole range when SEEK_DATA is
 *     not supported);
 *  3. pread/pwrite over the same extents (across filesystems).
 * If the source turns out shorter than size, the copy ends there and the
 * rest reads as zeros, as kernel overlayfs does (lower files are not
 * supposed to change). No fsync: durability is the caller's decision.
 * Moves src_fd's file offset (SEEK_DATA/SEEK_HOLE); dst_fd's is unused.
 * Returns 0, or -errno as the failing call gave it (-ENOSPC, -EDQUOT,
 * -EIO, -EBADF ...); dst then holds a partial copy for the caller to
 * discard. */
int um_copy_data(int src_fd, int dst_fd, off_t size);

#endif
