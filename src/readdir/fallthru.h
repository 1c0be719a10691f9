/* Fallthru entries: written into an upper directory the first time it is
 * listed, one per name visible from below (DESIGN.md "readdir and
 * fallthrus"; fill.c writes them, stream.c reads them back).
 *
 * A fallthru is a character device 0:(0x80000 + L), L the layer the name
 * is visible from (marker.h). Made one by one with mknod, each would cost
 * an inode; instead every fallthru for layer L is a hard link to a shared
 * marker WORKDIR/unionmount/fallthru/L.N (N counts the markers of L when
 * one reaches the filesystem's link limit, 65000 on ext4). A link costs
 * one directory entry, and readdir recognizes it by getdents' d_ino alone,
 * with no lstat. A fallthru that links to no known marker (the upper was
 * copied with cp -a, the workdir was lost) is still a fallthru: lstat
 * shows its device number.
 */
#ifndef UM_FALLTHRU_H
#define UM_FALLTHRU_H

#include <dirent.h>
#include <stdint.h>
#include <sys/types.h>

struct um_ftstore;

/* Take over dirfd (WORKDIR/unionmount/fallthru, on upper's filesystem
 * `dev`) and learn the markers in it. */
int um_ft_open(int dirfd, dev_t dev, struct um_ftstore **ret);
struct um_ftstore *um_ft_free(struct um_ftstore *s);

/* Write a fallthru for `layer` at dirfd/name: -EEXIST when the name is
 * taken, as linkat says. */
int um_ft_write(struct um_ftstore *s, unsigned layer, int dirfd, const char *name);

/* What a getdents entry of a directory on filesystem `dev` is. */
enum um_ent_kind { UM_ENT_PLAIN, UM_ENT_WHITEOUT, UM_ENT_FALLTHRU };

/* Classify d (in dirfd): a kind, with *ret_layer for a fallthru, or
 * -errno (-ENOENT: gone meanwhile). Entries whose d_type cannot hide a
 * marker cost nothing; a DT_UNKNOWN entry gets its real d_type. s may be
 * NULL (a lower branch, a read-only union). */
int um_ft_classify(struct um_ftstore *s, int dirfd, dev_t dev, struct dirent64 *d, unsigned *ret_layer);

#endif
