/* The names of one directory as getdents gives them, with each one's
 * inode number and d_type: what a listing of a complete directory needs
 * of a lower part for its fallthrus (stream.c), read in one pass instead
 * of an lstat per name.
 *
 * Names are mostly asked for in the order getdents gave them, or in its
 * reverse: a listing goes through the upper directory's fallthrus in the
 * upper filesystem's order, which is the lower one's when both are ext4
 * directories of the same filesystem (htree order: the name's hash under
 * the filesystem's seed), and the lower one's backwards when the upper
 * lists newest first (tmpfs), because fill.c creates each layer's
 * fallthrus in that layer's getdents order. So a lookup first tries the
 * few entries either side of the last one found, and builds a hash index
 * of all the names only when a name is not there. Not thread-safe: one per
 * listing. */
#ifndef UM_LOWERMAP_H
#define UM_LOWERMAP_H

#include <stddef.h>
#include <stdint.h>

struct um_lowermap;

/* Read the directory open at fd (from its current offset to the end). */
int um_lowermap_read(int fd, struct um_lowermap **ret);
void um_lowermap_free(struct um_lowermap *m);

/* 1 and the entry's number and d_type when name is listed, 0 when not,
 * -ENOMEM. */
int um_lowermap_find(struct um_lowermap *m, const char *name, uint64_t *ino, uint8_t *type);

/* Lookups the hash index answered (tests, debugging): 0 while every name
 * asked for was found by its place. */
size_t um_lowermap_indexed_lookups(const struct um_lowermap *m);

#endif
