#ifndef UM_READAHEAD_H
#define UM_READAHEAD_H

#include <fuse_lowlevel.h>

/* Raise the readahead of the FUSE mount on mountpoint to as much as one
 * request carries (conn->max_write), and tell conn; a hint, so failing
 * (not root, no sysfs) leaves the kernel's default. Call from INIT. */
void um_readahead_raise(const char *mountpoint, struct fuse_conn_info *conn);

#endif
