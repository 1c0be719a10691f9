#include "marker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"

int um_marker_is_opaque(int dirfd, const char *name)
{
	char v[2];
	int r = um_sys_lgetxattrat(dirfd, name, UM_XATTR_OPAQUE, v, sizeof(v));

	if (r == -ENODATA || r == -ENOTSUP || r == -ERANGE)
		return 0; /* absent, unsupported by the fs, or not "y": not opaque */
	if (r < 0)
		return r;
	return r == 1 && v[0] == 'y';
}

bool um_marker_is_internal_xattr(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) == 0 ||
	       strncmp(name, "trusted.unionmount.", 19) == 0;
}

int um_marker_check_format(int upper_root_fd, char *err, size_t errlen)
{
	char v[16];
	char *end;
	long ver;
	int r = um_sys_lgetxattrat(upper_root_fd, "", UM_XATTR_FORMAT, v, sizeof(v) - 1);

	if (r == -ENODATA || r == -ENOTSUP)
		return 0;
	if (r < 0) {
		snprintf(err, errlen, "upperdir: cannot read %s: %s", UM_XATTR_FORMAT, strerror(-r));
		return r;
	}
	v[r] = '\0';
	ver = strtol(v, &end, 10);
	if (end == v || *end != '\0' || ver < 1) {
		snprintf(err, errlen, "upperdir: %s is '%s', not a format version; the upper directory is damaged",
			 UM_XATTR_FORMAT, v);
		return -EPROTO;
	}
	if (ver > UM_FORMAT_VERSION) {
		snprintf(err, errlen,
			 "upperdir: written with on-disk format %ld, this unionmount knows up to %d; use a newer unionmount",
			 ver, UM_FORMAT_VERSION);
		return -EPROTO;
	}
	return 0;
}
