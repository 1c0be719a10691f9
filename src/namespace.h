/* Changing names in the upper branch the union's way: whiteouts where a
 * lower object must stay hidden, replacements built in the workdir and
 * swapped in with one rename, so that a crash never shows a state the
 * union was not in. Callers hold the parent inode's lock for writing and
 * pass its upper part fd (upfd). */
#ifndef UM_NAMESPACE_H
#define UM_NAMESPACE_H

#include <stdbool.h>
#include <sys/stat.h>

#include <fuse_lowlevel.h>

#include "unionmount.h"

struct um_inode;

/* What the upper part holds under a name. A fallthru stands for a lower
 * object: the name is taken in upper, but by nothing of upper's. */
enum um_upper_state { UM_UPPER_ABSENT, UM_UPPER_WHITEOUT, UM_UPPER_PRESENT, UM_UPPER_FALLTHRU };

/* Returns an enum um_upper_state (st filled when PRESENT) or -errno. */
int um_ns_upper_state(int upfd, const char *name, struct stat *st);

/* Does a lower part of dir show name (so removing it needs a whiteout)?
 * state is what upper holds there (enum um_upper_state), or -1 when the
 * caller has not looked. 1, 0 or -errno. Caller holds dir->lock. */
int um_ns_lower_visible(const struct um_inode *dir, const char *name, int state);

/* Owner for an object a request creates in the directory upfd: the
 * caller's uid, the caller's gid or the directory's when it is setgid.
 * *mode gains S_ISGID for a directory in a setgid directory. */
int um_ns_owner(fuse_req_t req, int upfd, bool is_dir, mode_t *mode, uid_t *uid, gid_t *gid);

/* Is the caller of req in group gid (its own or a supplementary one)?
 * When the groups cannot be read, no. */
bool um_ns_caller_in_group(fuse_req_t req, gid_t gid);

/* Has req's caller the capability cap (CAP_* of <linux/capability.h>) in
 * its effective set? Where that cannot be read, uid 0 stands for it. */
bool um_ns_caller_capable(fuse_req_t req, int cap);

/* Give dirfd/name (name "" = dirfd) owner and, when it has bits chown
 * clears, mode again. */
int um_ns_set_owner(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode);
/* The same for an object the daemon just made at dirfd/name, which it
 * need not chown when it is already uid:gid; then its attributes in
 * *ret_st. */
int um_ns_own_new(int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode, struct stat *ret_st);

/* Move work/tmp to upfd/name. Over a whiteout or a fallthru (replace) a
 * directory is exchanged with it and the marker removed. */
int um_ns_place(struct um_fs *fs, const char *tmp, int upfd, const char *name, bool is_dir, bool over_whiteout);

/* Put work/tmp at upfd/name in place of the fallthru there, for callers
 * not holding the directory's lock: an exchange, then a look at what came
 * back, so that nothing but a fallthru is ever replaced. 0: done, the
 * fallthru is now work/tmp (unlink it, or exchange again to undo);
 * -ENOENT or -EEXIST: the name was deleted or taken meanwhile, nothing
 * changed; -EIO: it could not be given back, and work/tmp holds another
 * request's object (logged: never remove it); other -errno. */
int um_ns_swap_fallthru(struct um_fs *fs, const char *tmp, int upfd, const char *name);

/* Does a lower part of dir show name, whatever upper holds? 1, 0 or
 * -errno. Caller holds dir->lock. */
int um_ns_lower_probe(const struct um_inode *dir, const char *name);

/* Make a whiteout at dirfd/name, which must not exist (-EEXIST as
 * mknod(2) says). It is a hard link to the shared whiteout in
 * WORKDIR/unionmount/whiteout, as kernel overlayfs shares one: a link
 * costs a directory entry, a mknod a new inode, which ext4 may search
 * long for after many deletions. Atomic either way. */
int um_ns_make_whiteout(struct um_fs *fs, int dirfd, const char *name);

/* Turn upfd/name into a whiteout, atomically: state says what is there
 * now (a directory there must be empty of all but whiteouts; is_dir says
 * what the union shows, a fallthru is no directory of upper's). */
int um_ns_whiteout(struct um_fs *fs, int upfd, const char *name, enum um_upper_state state, bool is_dir);

/* Remove upfd/name for good (a directory with its whiteouts), atomically. */
int um_ns_remove(struct um_fs *fs, int upfd, const char *name, bool is_dir);

/* Empty the upper directory upfd/name of whiteouts and fallthrus, so
 * that rename(2) may replace it; -ENOTEMPTY, and nothing more removed,
 * at the first entry that is neither. Only for a directory whose
 * markers no longer matter (it is opaque, or about to go). */
int um_ns_drop_markers(int upfd, const char *name);

/* Is the directory empty as the union shows it? 1, 0 or -errno. */
int um_ns_dir_is_empty(struct um_fs *fs, struct um_inode *dir);

#endif
