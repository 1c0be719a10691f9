#ifndef UM_DEVIO_H
#define UM_DEVIO_H

#include <fuse_lowlevel.h>

struct um_fs;

/* Route the session's reads and writes of /dev/fuse through hooks that add
 * FUSE_HANDLE_KILLPRIV_V2 and FUSE_PASSTHROUGH to the INIT reply when the
 * kernel offers them (setting fs->killpriv_v2 and fs->passthrough before
 * that reply is sent), and backing ids to OPEN and CREATE replies. Call
 * after fuse_session_mount(), before the loop. Failing leaves the session
 * as it was: the kernel then clears setuid/setgid itself (slower, as
 * correct) and every open file goes through the daemon. */
int um_devio_install(struct fuse_session *se, struct um_fs *fs);

#endif
