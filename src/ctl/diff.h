/* unionctl diff: what the upper branch changes relative to the lowers,
 * one record per path (man/unionctl.8, OUTPUT FORMAT). */
#ifndef UM_CTL_DIFF_H
#define UM_CTL_DIFF_H

#include <stdbool.h>

#include "branches.h"

struct um_ctl_diff_opts {
	bool nul;   /* -z: records end in NUL, names unescaped */
	bool quiet; /* -q: no summary on stderr */
};

/* Print the records on stdout, the summary on stderr. Returns the exit
 * status: 0 every path judged, 1 some could not be (each named on
 * stderr), 2 the walk failed. */
int um_ctl_diff(const struct um_ctl_set *set, const struct um_ctl_diff_opts *opts);

#endif
