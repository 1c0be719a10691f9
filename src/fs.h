/* Building and tearing down the mounted filesystem's state: layers,
 * workdir, inode table, root. Everything here happens before mounting,
 * so every failure is reported before anything is visible. */
#ifndef UM_FS_H
#define UM_FS_H

#include <stddef.h>

#include "config.h"
#include "unionmount.h"

int um_fs_new(const struct um_config *cfg, struct um_fs **ret, char *err, size_t errlen);
struct um_fs *um_fs_free(struct um_fs *fs);

#endif
