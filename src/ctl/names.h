/* A list of directory entry names with a value each: collected from the
 * parts of a union directory, then sorted (byte order, as strcmp) so that
 * every walk visits names in the same order and output is stable. */
#ifndef UM_CTL_NAMES_H
#define UM_CTL_NAMES_H

#include <stddef.h>
#include <stdint.h>

struct um_ctl_name {
	char *name;
	uint32_t val;   /* the caller's: a d_type, a part index, ... */
	uint32_t order; /* position when added: ties keep it (sort is stable) */
};

struct um_ctl_names {
	struct um_ctl_name *v;
	size_t n, cap;
};

int um_ctl_names_add(struct um_ctl_names *ns, const char *name, uint32_t val);
/* Add every entry of the directory open at dirfd but "." and "..", with
 * its d_type (DT_UNKNOWN where the filesystem does not say) plus
 * `val_or` as val. Reads through a fresh open of dirfd, so dirfd may be
 * an O_PATH fd or one shared with others. */
int um_ctl_names_read_dir(struct um_ctl_names *ns, int dirfd, uint32_t val_or);
/* Sort by name, then by the order names were added. */
void um_ctl_names_sort(struct um_ctl_names *ns);
/* After sort: keep the first entry of each name. */
void um_ctl_names_uniq(struct um_ctl_names *ns);
/* After sort: the first entry of name, or NULL. */
const struct um_ctl_name *um_ctl_names_find(const struct um_ctl_names *ns, const char *name);
void um_ctl_names_release(struct um_ctl_names *ns);

#endif
