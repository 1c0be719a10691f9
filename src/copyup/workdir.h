/* The workdir: where copy-ups are built before being renamed into upper.
 * It must be on upper's filesystem (rename is atomic only there), and
 * empty or ours: we keep everything in one directory, UM_WORKDIR_NAME. */
#ifndef UM_WORKDIR_H
#define UM_WORKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define UM_WORKDIR_NAME "unionmount"

/* Inside it:
 *   work/   temporaries being built (copy-ups, whiteouts, directories
 *           being removed); anything here at mount is a leftover of a
 *           crash and is removed before mounting
 *   index/  hard-linked objects by origin (see marker.h)
 *   fallthru/ the shared fallthru markers (readdir/fallthru.h)
 *   whiteout/ the shared whiteout (namespace.c, um_ns_make_whiteout),
 *           made at the first whiteout: wh_fd may be -1 read-write too */
struct um_workdir {
	int work_fd;
	int index_fd;
	int ft_fd;
	int wh_fd;
	int lock_fd; /* WORKDIR/unionmount, flock()ed while open; -1 if none */
};

/* Open (creating if needed) our directories inside workdir PATH and purge
 * leftovers. Refuses a workdir holding anything else. Read-only (-o ro):
 * open what exists and change nothing; what is missing stays -1. The
 * caller holds the upper's lock (fs.c), so no other daemon is using it. */
int um_workdir_open(const char *path, dev_t upper_dev, bool readonly, struct um_workdir *ret, char *err,
		    size_t errlen);
void um_workdir_close(struct um_workdir *w);

/* A name no other temporary in work/ has, now or after a restart. */
#define UM_TMPNAME_MAX 48
void um_workdir_tmpname(char buf[UM_TMPNAME_MAX]);

/* Remove dirfd/name and, if it is a directory, everything below it
 * (never following symlinks, never leaving the filesystem). */
int um_workdir_remove_tree(int dirfd, const char *name);

#endif
