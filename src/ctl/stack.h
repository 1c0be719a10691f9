/* Which list of lower directories an upper directory was written for.
 * Complete marks carry the stack id of the lowerdir list (marker.h), and
 * fallthrus name layers of it: marks for another id, or fallthrus to
 * layers the list does not have, say the union was mounted with another
 * list than the one unionctl was given. Then a right fallthru looks
 * stale and a reached index entry orphaned, so check --repair must not
 * judge by the list given (check.c). */
#ifndef UM_CTL_STACK_H
#define UM_CTL_STACK_H

#include "branches.h"

/* The complete mark of fd/name ("" = fd itself). */
enum um_ctl_complete {
	UM_CTL_COMPLETE_NONE,
	UM_CTL_COMPLETE_THIS,    /* for set's lowerdir list */
	UM_CTL_COMPLETE_FOREIGN, /* for another list */
};
/* An enum um_ctl_complete, -EIO when it does not decode, or -errno. */
int um_ctl_complete_mark(const struct um_ctl_set *set, int fd, const char *name);

struct um_ctl_stack_scan {
	unsigned foreign;    /* directories complete for another list */
	char *first_foreign; /* the first of them in walk order ("" the root) */
	unsigned beyond;     /* fallthrus to a layer the list does not have */
};

/* Scan the whole upper tree (no deeper than a walk goes). What it cannot
 * read it passes over: the checking walk reports that. 0 or -ENOMEM. */
int um_ctl_stack_scan(const struct um_ctl_set *set, struct um_ctl_stack_scan *ret);
void um_ctl_stack_scan_release(struct um_ctl_stack_scan *s);

#endif
