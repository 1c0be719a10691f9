/* The branch set unionctl works on, opened offline: the upper root and
 * our directory in the workdir (both locked against a mounted union), the
 * lowerdirs, and our directories in the workdir. Everything below is reached through these fds only. */
#ifndef UM_CTL_BRANCHES_H
#define UM_CTL_BRANCHES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "unionmount.h"

struct um_ctl_set {
	/* [0] upper, [1..n_layers-1] lowerdirs top-most first: the daemon's
	 * layer numbers (unionmount.h), which fallthrus and st_ino use. */
	struct um_layer *layers;
	unsigned n_layers;
	const char *workdir;     /* as given, for messages; NULL when not given */
	int workdir_fd;          /* WORKDIR; -1 when not given */
	int um_fd;               /* WORKDIR/unionmount; -1 when absent */
	int work_fd;             /* its work/, index/ and fallthru/; -1 when absent */
	int index_fd;
	int ft_fd;
	bool index_used;         /* index/ holds at least one entry */
	bool format_damaged;     /* the upper root's format version does not decode */
	uint64_t stackid;        /* what complete marks of this stack carry */
};

/* How the upper root is locked, against the daemon's own flock (fs.c):
 * shared to read (a read-only mount may run meanwhile), exclusive to
 * change anything. */
enum um_ctl_lock {
	UM_CTL_LOCK_SHARED,
	UM_CTL_LOCK_EXCLUSIVE,
};

/* Open and lock the set cfg names (upperdir required; workdir required
 * when need_workdir). WORKDIR/unionmount is locked as the upper is (the
 * daemon locks both), and a workdir equal to, inside or above a branch
 * is refused as the daemon refuses it. Returns 0, or -errno with one line
 * in err naming the option: -EBUSY when a mounted union (or another
 * unionctl) holds the upper or the workdir. */
int um_ctl_set_open(const struct um_config *cfg, bool need_workdir, enum um_ctl_lock lock,
		    struct um_ctl_set *ret, char *err, size_t errlen);
void um_ctl_set_close(struct um_ctl_set *set);

#endif
