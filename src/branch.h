/* Branch roots: opened once, before mounting (so the mountpoint may be
 * one of the lowerdirs), and reached only through these fds afterwards. */
#ifndef UM_BRANCH_H
#define UM_BRANCH_H

#include <stdbool.h>
#include <stddef.h>

#include "unionmount.h"

/* Open PATH as a branch root. `option` names it in messages
 * ("lowerdir", "upperdir"). */
int um_branch_open(const char *path, const char *option, struct um_layer *ret, char *err, size_t errlen);
void um_branch_close(struct um_layer *layer);
/* Undo /proc/self/mountinfo's escapes (space, tab, newline and backslash
 * as \ooo) in place. */
void um_mountinfo_unescape(char *s);

#endif
