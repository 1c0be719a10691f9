/* Union inodes: what the kernel holds a nodeid for.
 *
 * A non-directory has no fd of its own: it is reached through the fd of
 * its parent's part in the layer that holds it, plus its name. A directory
 * holds one fd per part (the same-named directories it merges, top-down,
 * cut at an opaque one). So the daemon keeps fds for the directories the
 * kernel knows about, never one per file, and never rebuilds a path.
 *
 * The fuse nodeid is the inode's address (root: FUSE_ROOT_ID). Inodes are
 * also found by st_ino in a table hashed with xxhash, so every name of
 * one object (hard links, concurrent lookups) meets the same inode.
 */
#ifndef UM_INODE_H
#define UM_INODE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "marker.h"
#include "unionmount.h"

struct um_dirfd_handle;
struct um_dirlisting;

/* um_inode.listing_kind */
#define UM_LIST_UNDECIDED 0
#define UM_LIST_STREAM 1
#define UM_LIST_SNAPSHOT 2

struct um_part {
	int fd;          /* the directory in this layer, see um_sys_open_dir();
			  * -1 while closed (UM_INO_CLOSED) */
	uint16_t layer;
	struct um_dirfd_handle *handle; /* how to reopen it (dirfds.c); NULL until first closed */
};

/* A non-directory reached through the index (WORKDIR/unionmount/index,
 * named by st_ino) instead of a parent and name: one object with several
 * names, whichever of them the kernel asks through. */
#define UM_LAYER_INDEX UINT16_MAX

/* um_inode.flags */
#define UM_INO_DEAD 1u    /* its last name is gone: only open files reach it */
#define UM_INO_IMPURE 2u  /* directory: its upper part holds entries with an origin */
#define UM_INO_DIRSYNC 4u /* copied up by this mount: fsync also syncs its upper parent */
#define UM_INO_COMPLETE 8u /* directory: its upper part holds every visible name (marker.h) */
#define UM_INO_OVL_IMPURE 16u /* directory: kernel overlayfs moved directories into it (redirects) */
#define UM_INO_SWEPT 32u   /* um_itable_free() has it on its list */
#define UM_INO_GOING 64u   /* this mount is removing its upper object: the number may be reused before
			    * the table forgets it */
#define UM_INO_CLOSED 128u /* directory: dirfds.c closed some of its parts' fds; um_inode_rdlock() reopens them */

/* The kernel can make the daemon hold one of these per file it has seen
 * (bench/MEMORY.md): fields are ordered to leave little padding, and the
 * name it was found by is allocated with it. */
struct um_inode {
	uint64_t st_ino;          /* identity and table key; immutable */
	struct um_inode *hnext;   /* table chain: guarded by the shard lock */
	/* Kernel lookups + one per child + temporary references. Reaching
	 * zero happens only under the shard lock (see inode.c). */
	_Atomic uint64_t refs;
	/* Guards parent, name, layer and parts: copy-up and rename change
	 * them, every request reads them. */
	pthread_rwlock_t lock;
	struct um_inode *parent;  /* holds a reference; NULL for the root */
	char *name;               /* iname, or a heap copy after a rename; NULL for the root */
	/* Directories moved by rename: where their lower parts are (the
	 * redirect marker's value), NULL if at their own name. */
	char *redirect;
	/* Directories: parts, top-down. Parts are only ever added (copy-up
	 * gives a directory its upper part). Their fds are read only under
	 * the lock taken by um_inode_rdlock() or um_inode_wrlock(), which
	 * reopen what dirfds.c closed; an fd read so stays open until the
	 * request that read it returns (inflight.h). */
	struct um_part *parts;
	/* Directories: the epoch (inflight.h) in which a request last locked
	 * it, so that dirfds.c closes the least recently used first and
	 * never what a running request uses. */
	_Atomic uint64_t used;
	uint16_t type;            /* S_IFMT bits; immutable */
	uint16_t layer;           /* non-directories: the layer holding it, or UM_LAYER_INDEX */
	uint16_t flags;           /* UM_INO_* */
	uint16_t lowerlinks;      /* indexed: names still only in lower branches */
	uint16_t nparts;
	/* Non-directories copied up without their data (metacopy, copyup.h):
	 * the lower layer whose file of the same name holds it, while layer
	 * is UM_UPPER; 0 otherwise. Guarded by lock, like layer. */
	uint16_t datalayer;
	/* Open file handles on it; when it loses its last name while open,
	 * keep_fd (O_PATH, guarded by lock) keeps it reachable for fstat
	 * and fchmod, as the kernel reaches an unlinked open file. */
	_Atomic unsigned nopen;
	int keep_fd;
	/* Of those, the ones open for writing through passthrough. The
	 * kernel hears of no write made through their shared mappings (the
	 * backing file's times change beneath it), so while there are any,
	 * no reply but CREATE's lets it cache ino's attributes
	 * (um_attr_timeout()), and the last one's release drops what it
	 * cached. What it cached before: mmap(2) of a passed-through file
	 * makes it ask again for a stat(2) (the atime), whose reply then
	 * caches nothing; only a statx(2) asking for no atime between a
	 * write through the mapping and that can see times from before
	 * (man page, passthrough=). An invalidation at open would close
	 * that, at the price of a GETATTR before the first write of every
	 * new file: create-10k x4.15 -> x4.61, behind unionfs-fuse.
	 * A mapping outlives its descriptor (the kernel maps the backing
	 * file itself), so once ino had such a handle, its attributes are
	 * cached for a second at most (UM_PT_WRITTEN_TIMEOUT) until the
	 * kernel forgets it (which a live mapping keeps it from). */
	_Atomic unsigned pt_writers;
	atomic_bool pt_written;
	/* Directories: bumped by every change of the names it holds, before
	 * the change is answered (um_notify_names_changed()). The kernel
	 * continues its cached listing with any READDIR reply at the same
	 * cookie, and checks for changes only when a listing starts: a kept
	 * listing's snapshot or buffer older than the last change must be
	 * read again (readdir/op_dir.c). */
	_Atomic uint32_t names_version;
	/* Directories: a READDIR was answered since the kernel was last told
	 * to drop its cached listing (um_notify_names_changed()). */
	atomic_bool listed;
	/* Directories: UM_LIST_*, decided at the first listing and kept
	 * (readdir/op_dir.c). */
	_Atomic uint8_t listing_kind;
	/* Directories: a READDIRPLUS reply left files' attributes out since
	 * the kernel was last told to drop its cached listing (rdplus.h). */
	atomic_bool lean_listed;
	/* Directories: what the last listing left for the next READDIR to
	 * continue from (readdir/op_dir.c), or NULL. Owned by whoever
	 * exchanges it out. */
	_Atomic(struct um_dirlisting *) listing;
	char iname[];             /* the name it was created with */
};

/* UM_INO_* flags for a directory's marks (um_marker_dir_flags()). */
static inline uint16_t um_inode_flags_of_marks(int marks)
{
	return (uint16_t)((marks & UM_MARKER_IMPURE ? UM_INO_IMPURE : 0) |
			  (marks & UM_MARKER_COMPLETE ? UM_INO_COMPLETE : 0) |
			  (marks & UM_MARKER_OVL_IMPURE ? UM_INO_OVL_IMPURE : 0));
}

/* The part of directory dir in layer, or NULL. Caller holds dir->lock. */
static inline const struct um_part *um_inode_part_in(const struct um_inode *dir, unsigned layer)
{
	for (uint16_t i = 0; i < dir->nparts; i++)
		if (dir->parts[i].layer == layer)
			return &dir->parts[i];
	return NULL;
}

/* Where to reach an object: dirfd + name ("" for a directory, whose own
 * top part fd is dirfd). Holds a reference on `hold` for as long as
 * dirfd is used; for a name in a parent directory (`locked`), also that
 * parent's lock for reading, so that no rename or removal rebinds the
 * name meanwhile. */
struct um_loc {
	struct um_inode *hold;
	bool locked;
	int dirfd;
	uint16_t layer;
	/* A metacopy file: where its data is (datadirfd + name); 0 otherwise. */
	uint16_t datalayer;
	int datadirfd;
	char name[NAME_MAX + 1];
};

/* Lock ino (for reading or writing). A directory whose fds dirfds.c
 * closed is reopened first: every read of a part's fd happens under a
 * lock taken so. 0, or the reopen's error (-EIO, -EMFILE, -ENOMEM) with
 * nothing locked. */
int um_inode_rdlock(const struct um_fs *fs, struct um_inode *ino);
int um_inode_wrlock(const struct um_fs *fs, struct um_inode *ino);

/* The directories of the table want() says yes to (called under a shard
 * lock: it must take no lock), each with a reference. */
int um_itable_dirs(struct um_fs *fs, bool (*want)(struct um_inode *dir, void *arg), void *arg,
		   struct um_inode ***ret, size_t *n);

/* For dirfds.c: the directories (not the root) last locked before epoch
 * `before`, each with a reference; and closing one's fds if it still
 * qualifies and nobody holds its lock. Returns how many fds it took
 * away, stored in fds (room for a part per layer), for the caller to
 * close once no request that may have read them runs. */
int um_itable_idle_dirs(struct um_fs *fs, uint64_t before, struct um_inode ***ret, size_t *n);
int um_inode_close_parts(struct um_fs *fs, struct um_inode *dir, uint64_t before, int *fds);

int um_itable_new(struct um_itable **ret);
void um_itable_free(struct um_itable *t);

/* The root inode, with one pinned reference, taking ownership of parts. */
int um_inode_new_root(struct um_fs *fs, struct um_part *parts, uint16_t nparts, const struct stat *st,
		      struct um_inode **ret);

/* Look NAME up in DIR: resolve it across layers and return its inode with
 * one new reference (the caller passes it to the kernel or unrefs it),
 * and its attributes as the union shows them. -ENOENT when not visible. */
int um_inode_lookup(struct um_fs *fs, struct um_inode *dir, const char *name, struct um_inode **ret_ino,
		    struct stat *ret_st);
/* The same with a listing's hint: see um_resolve_from(). */
int um_inode_lookup_from(struct um_fs *fs, struct um_inode *dir, const char *name, unsigned from_layer,
			 struct um_inode **ret_ino, struct stat *ret_st);

/* Attributes as the union shows them (st_ino replaced, see ino.h). */
int um_inode_stat(struct um_fs *fs, struct um_inode *ino, struct stat *ret_st);
void um_inode_fix_attr(struct um_inode *ino, struct stat *st);

/* On success the caller ends with um_loc_release(), soon: it may hold
 * the parent's lock (see um_loc), so meanwhile the caller may take the
 * object's own lock, but no directory's, no handle's and no other
 * location. */
int um_inode_locate(struct um_fs *fs, struct um_inode *ino, struct um_loc *ret);
void um_loc_release(struct um_fs *fs, struct um_loc *loc);

struct um_inode *um_inode_ref(struct um_inode *ino);
/* Drop n references (a forget passes the kernel's nlookup count). */
void um_inode_unref(struct um_fs *fs, struct um_inode *ino, uint64_t n);

/* The inode for an object this mount just created in dir's upper part
 * (st is its lstat), with one reference; replaces a stale table entry. */
int um_inode_new_upper(struct um_fs *fs, struct um_inode *dir, const char *name, const struct stat *st,
		       struct um_inode **ret);
/* Before a removal that may take ino's last name: if files are open on
 * it, keep it reachable (keep_fd). */
int um_inode_keep_open(struct um_fs *fs, struct um_inode *ino);
/* The object's last name went away: later lookups of its number (which
 * upper may reuse) must not find it, and only open files still reach it. */
void um_inode_kill(struct um_fs *fs, struct um_inode *ino);
/* Give directory dir its new upper part (fd, owned afterwards on
 * success); caller holds dir->lock for writing. */
int um_inode_add_upper_locked(struct um_inode *dir, int fd);
/* The directory's upper part fd (valid until the request returns), or
 * -EROFS when it has none yet, or um_inode_rdlock()'s error. */
int um_inode_upper_fd(struct um_fs *fs, struct um_inode *dir);
/* A rename moved ino to newparent/name (name: allocated, taken over).
 * Called with both directories write-locked, in the same critical
 * section as the rename in upper, so that um_inode_locate() never pairs
 * the old directory with the old name once that name holds something
 * else (a whiteout, the other end of an exchange). Returns the old
 * parent's reference, for the caller to drop after unlocking (it may be
 * the last one). */
struct um_inode *um_inode_move(struct um_inode *ino, struct um_inode *newparent, char *name);
uint16_t um_inode_layer(struct um_inode *ino);
/* The layer its data is read from: datalayer for a metacopy file. */
uint16_t um_inode_data_layer(struct um_inode *ino);
uint16_t um_inode_flags(struct um_inode *ino);
void um_inode_set_flags(struct um_inode *ino, uint16_t set, uint16_t clear);
/* For the memory report (SIGUSR1, main.c): inodes alive now, the most
 * alive at once, freed so far (their last reference gone: mostly
 * forgets), malloc_trim() calls made and the milliseconds they took. */
struct um_inode_stats {
	uint64_t live, peak, freed, trims, trim_ms;
};
void um_inode_get_stats(struct um_inode_stats *ret);
/* The index entry name of an object: its st_ino in 16 hex digits. */
void um_inode_index_name(uint64_t st_ino, char buf[17]);

#endif
