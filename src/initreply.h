#ifndef UM_INITREPLY_H
#define UM_INITREPLY_H

#include <fuse_lowlevel.h>

struct um_fs;

/* Route the session's reads and writes of /dev/fuse through hooks that add
 * FUSE_HANDLE_KILLPRIV_V2 to the INIT reply when the kernel offers it,
 * and set fs->killpriv_v2 before that reply is sent. Call after
 * fuse_session_mount(), before the loop. Failing leaves the session as it
 * was: the kernel then clears setuid/setgid itself (slower, as correct). */
int um_initreply_install(struct fuse_session *se, struct um_fs *fs);

#endif
