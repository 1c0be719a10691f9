/* The workdir: where copy-ups are built before being renamed into upper.
 * It must be on upper's filesystem (rename is atomic only there), and
 * empty or ours: we keep everything in one directory, UM_WORKDIR_NAME. */
#ifndef UM_WORKDIR_H
#define UM_WORKDIR_H

#include <stddef.h>
#include <sys/types.h>

#define UM_WORKDIR_NAME "unionmount"

/* Open (creating if needed) our directory inside workdir PATH; returns
 * its fd through ret_fd. Refuses a workdir holding anything else. */
int um_workdir_open(const char *path, dev_t upper_dev, int *ret_fd, char *err, size_t errlen);

#endif
