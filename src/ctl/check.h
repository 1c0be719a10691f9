/* unionctl check: is an upper directory and its workdir what the daemon
 * would have left, and, with repair, fix what can be fixed without
 * guessing (man/unionctl.8, COMMANDS). */
#ifndef UM_CTL_CHECK_H
#define UM_CTL_CHECK_H

#include <stdbool.h>

#include "branches.h"

struct um_ctl_check_opts {
	bool repair;
	/* Repair by this lowerdir list even when the upper looks made with
	 * another one (complete marks for another list, fallthrus beyond). */
	bool force_stack;
	bool quiet; /* no summary on stderr */
};

/* One line per problem and per repair on stdout. Returns the exit
 * status: 0 nothing found, 1 problems found (repaired or not), 2 the
 * check could not be done. set must be locked exclusively to repair. */
int um_ctl_check(const struct um_ctl_set *set, const struct um_ctl_check_opts *opts);

#endif
