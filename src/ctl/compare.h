/* Is the object the union shows at a path the one the lowers show there?
 * Data: the type, a file's bytes, a symlink's target, a device's number.
 * Metadata: permission bits, owner, group and the extended attributes a
 * user sees (markers excluded). Times are not compared (man/unionctl.8
 * says why). */
#ifndef UM_CTL_COMPARE_H
#define UM_CTL_COMPARE_H

#include "view.h"

enum um_ctl_change {
	UM_CTL_SAME,
	UM_CTL_METADATA,
	UM_CTL_DATA,
};

/* Both present. Returns an enum um_ctl_change, or -errno. */
int um_ctl_compare(const struct um_ctl_obj *u, const struct um_ctl_obj *b);

#endif
