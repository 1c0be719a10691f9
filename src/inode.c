#include "inode.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cleanup.h"
#include "dirfds.h"
#include "inflight.h"
#include "ino.h"
#include "log.h"
#include "marker.h"
#include "readdir/readdir.h"
#include "resolve.h"
#include "sys.h"

/* The table is split in shards so that lookups and forgets of unrelated
 * inodes do not contend on one mutex. */
#define SHARD_BITS 6
#define NSHARDS (1u << SHARD_BITS)

struct shard {
	pthread_mutex_t lock; /* guards buckets, size, count and every hnext in them */
	struct um_inode **buckets;
	size_t size;          /* power of two */
	size_t count;
};

struct um_itable {
	struct shard shards[NSHARDS];
};

/* Inodes alive (in the table or not) and the most there were at once,
 * for the memory report (um_inode_get_stats()). Process-wide: one mount
 * per process. */
static _Atomic uint64_t inodes_live, inodes_peak, inodes_freed, malloc_trims, trim_ns;

/* glibc keeps what free() returns in its arenas (up to 8 per core, the
 * session's threads spread over them) and gives pages back only from
 * the top of a heap, once its free chunks have been merged: inodes
 * freed in the order the kernel forgets them leave holes under live
 * ones, so after the kernel forgot a million inodes the daemon kept its
 * peak RSS for good (bench/MEMORY.md). malloc_trim() merges the free
 * chunks and releases every free page of every arena, holding each
 * arena's lock while it walks it: about a millisecond on a heap that
 * held a million inodes. Once per TRIM_EVERY inodes freed (about
 * 2.5 MiB of them): ~60 trims when a million are forgotten, and little
 * left behind after the last batch. */
#define TRIM_EVERY 16384u

/* Timed for the report: requests that allocate from an arena wait
 * while it is trimmed. */
static void trim_heap(void)
{
	struct timespec t0, t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	(void)malloc_trim(0);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	atomic_fetch_add(&malloc_trims, 1);
	atomic_fetch_add(&trim_ns, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)));
}

static void count_alloc(void)
{
	uint64_t n = atomic_fetch_add(&inodes_live, 1) + 1;
	uint64_t peak = atomic_load(&inodes_peak);

	while (n > peak && !atomic_compare_exchange_weak(&inodes_peak, &peak, n))
		;
}

void um_inode_get_stats(struct um_inode_stats *ret)
{
	ret->live = atomic_load(&inodes_live);
	ret->peak = atomic_load(&inodes_peak);
	ret->freed = atomic_load(&inodes_freed);
	ret->trims = atomic_load(&malloc_trims);
	ret->trim_ms = atomic_load(&trim_ns) / 1000000;
}

static uint64_t hash_ino(uint64_t st_ino)
{
	return XXH3_64bits(&st_ino, sizeof(st_ino));
}

static struct shard *shard_of(struct um_itable *t, uint64_t h)
{
	return &t->shards[h & (NSHARDS - 1)];
}

static struct um_inode **bucket_of(struct shard *s, uint64_t h)
{
	return &s->buckets[(h >> SHARD_BITS) & (s->size - 1)];
}

int um_itable_new(struct um_itable **ret)
{
	struct um_itable *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *s = &t->shards[i];

		s->size = 64;
		s->buckets = calloc(s->size, sizeof(*s->buckets));
		if (!s->buckets) {
			um_itable_free(t);
			return -ENOMEM;
		}
		pthread_mutex_init(&s->lock, NULL);
	}
	*ret = t;
	return 0;
}

static void inode_free_one(struct um_inode *ino);

/* Put ino on the sweep list (*all, *n of *cap) unless it is there. */
static void sweep_add(struct um_inode ***all, size_t *n, size_t *cap, struct um_inode *ino)
{
	if (ino->flags & UM_INO_SWEPT)
		return;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct um_inode **na = realloc(*all, ncap * sizeof(*na));

		if (!na)
			return; /* leaked at exit, nothing worse */
		*all = na;
		*cap = ncap;
	}
	ino->flags |= UM_INO_SWEPT;
	(*all)[(*n)++] = ino;
}

/* At unmount: the kernel's references are void, so every inode goes,
 * whatever its count. That includes inodes already out of the table but
 * still the parent of one in it (an object with several names keeps the
 * directory of the name it last had, even once that name is removed):
 * they are found through the parent links. */
void um_itable_free(struct um_itable *t)
{
	struct um_inode **all = NULL;
	size_t n = 0, cap = 0;

	if (!t)
		return;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *s = &t->shards[i];

		for (size_t b = 0; s->buckets && b < s->size; b++)
			for (struct um_inode *ino = s->buckets[b]; ino; ino = ino->hnext)
				sweep_add(&all, &n, &cap, ino);
		if (s->buckets)
			pthread_mutex_destroy(&s->lock);
		free(s->buckets);
	}
	for (size_t i = 0; i < n; i++)
		if (all[i]->parent)
			sweep_add(&all, &n, &cap, all[i]->parent);
	for (size_t i = 0; i < n; i++)
		inode_free_one(all[i]);
	free(all);
	free(t);
}

/* Caller holds s->lock. Growing keeps chains short for big trees; a
 * failed allocation only makes chains longer, so it is not an error. */
static void shard_grow(struct shard *s)
{
	size_t nsize = s->size * 2;
	struct um_inode **nb = calloc(nsize, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i < s->size; i++) {
		struct um_inode *ino = s->buckets[i];

		while (ino) {
			struct um_inode *next = ino->hnext;
			uint64_t h = hash_ino(ino->st_ino);
			struct um_inode **b = &nb[(h >> SHARD_BITS) & (nsize - 1)];

			ino->hnext = *b;
			*b = ino;
			ino = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->size = nsize;
}

/* The inode for st_ino with a new reference, or NULL. */
static struct um_inode *table_find(struct um_itable *t, uint64_t st_ino)
{
	uint64_t h = hash_ino(st_ino);
	struct shard *s = shard_of(t, h);
	struct um_inode *ino;

	pthread_mutex_lock(&s->lock);
	for (ino = *bucket_of(s, h); ino; ino = ino->hnext) {
		if (ino->st_ino == st_ino) {
			atomic_fetch_add(&ino->refs, 1);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ino;
}

/* Returns the inode already in the table for fresh->st_ino with a new
 * reference, or inserts fresh (which carries its one reference) and
 * returns NULL. */
static struct um_inode *table_intern(struct um_itable *t, struct um_inode *fresh)
{
	uint64_t h = hash_ino(fresh->st_ino);
	struct shard *s = shard_of(t, h);
	struct um_inode *ino;

	pthread_mutex_lock(&s->lock);
	for (ino = *bucket_of(s, h); ino; ino = ino->hnext) {
		if (ino->st_ino == fresh->st_ino) {
			atomic_fetch_add(&ino->refs, 1);
			break;
		}
	}
	if (!ino) {
		struct um_inode **b;

		if (s->count >= s->size * 2)
			shard_grow(s);
		b = bucket_of(s, h);
		fresh->hnext = *b;
		*b = fresh;
		s->count++;
	}
	pthread_mutex_unlock(&s->lock);
	return ino;
}

static void inode_free_one(struct um_inode *ino)
{
	long open = 0;

	for (uint16_t i = 0; i < ino->nparts; i++) {
		if (ino->parts[i].fd >= 0) {
			(void)close(ino->parts[i].fd);
			open++;
		}
		um_dirfd_handle_free(ino->parts[i].handle);
	}
	um_dirfds_count(-open);
	um_dir_listing_drop(ino);
	free(ino->parts);
	if (ino->name != ino->iname)
		free(ino->name);
	free(ino->redirect);
	if (ino->keep_fd >= 0)
		(void)close(ino->keep_fd);
	pthread_rwlock_destroy(&ino->lock);
	free(ino);
	atomic_fetch_sub(&inodes_live, 1);
}

/* name: the one it is found by (copied into the inode), NULL for the root. */
static struct um_inode *inode_alloc(uint64_t st_ino, mode_t type, const char *name)
{
	size_t len = name ? strlen(name) + 1 : 0;
	/* At least the "" that um_inode_move() may compare with. */
	struct um_inode *ino = calloc(1, sizeof(*ino) + (len ? len : 1));

	if (!ino)
		return NULL;
	ino->st_ino = st_ino;
	ino->type = (uint16_t)(type & S_IFMT);
	if (name)
		ino->name = memcpy(ino->iname, name, len);
	atomic_init(&ino->refs, 1);
	/* In use by the request making it, as if locked now. */
	atomic_init(&ino->used, um_inflight_epoch());
	ino->keep_fd = -1;
	pthread_rwlock_init(&ino->lock, NULL);
	count_alloc();
	return ino;
}

struct um_inode *um_inode_ref(struct um_inode *ino)
{
	/* Safe without the shard lock: the caller's own reference keeps the
	 * count above zero. */
	atomic_fetch_add(&ino->refs, 1);
	return ino;
}

void um_inode_unref(struct um_fs *fs, struct um_inode *ino, uint64_t n)
{
	while (ino && n) {
		uint64_t h = hash_ino(ino->st_ino);
		struct shard *s = shard_of(fs->itable, h);
		struct um_inode *parent = NULL;
		bool dead;

		/* The drop to zero and the unlinking happen under the shard
		 * lock, so table_intern() never revives a dying inode. */
		pthread_mutex_lock(&s->lock);
		dead = atomic_fetch_sub(&ino->refs, n) == n;
		if (dead) {
			struct um_inode **pp = bucket_of(s, h);

			while (*pp && *pp != ino)
				pp = &(*pp)->hnext;
			if (*pp) {
				*pp = ino->hnext;
				s->count--;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!dead)
			return;
		parent = ino->parent;
		inode_free_one(ino);
		if ((atomic_fetch_add(&inodes_freed, 1) + 1) % TRIM_EVERY == 0)
			trim_heap();
		/* Iterate instead of recursing: trees can be deep. */
		ino = parent;
		n = 1;
	}
}

int um_inode_new_root(struct um_fs *fs, struct um_part *parts, uint16_t nparts, const struct stat *st,
		      struct um_inode **ret)
{
	uint64_t st_ino = 0;
	struct um_inode *ino;

	/* Same rule as um_resolve(): the top-most lower part names it. */
	for (uint16_t i = 0; i < nparts; i++) {
		struct stat pst;
		int r;

		if (parts[i].layer == UM_UPPER && nparts > 1)
			continue;
		r = um_sys_fstat(parts[i].fd, &pst);
		if (r < 0)
			return r;
		st_ino = um_ino_encode(parts[i].layer, pst.st_ino, pst.st_dev, fs->layers[parts[i].layer].dev);
		break;
	}
	ino = inode_alloc(st_ino, st->st_mode, NULL);
	if (!ino)
		return -ENOMEM;
	ino->parts = parts;
	ino->nparts = nparts;
	um_dirfds_count(nparts);
	ino->layer = parts[0].layer;
	(void)table_intern(fs->itable, ino); /* the table is empty: always inserted */
	*ret = ino;
	return 0;
}

void um_inode_fix_attr(struct um_inode *ino, struct stat *st)
{
	uint16_t nparts, layer, lowerlinks;

	pthread_rwlock_rdlock(&ino->lock);
	nparts = ino->nparts;
	layer = ino->layer;
	lowerlinks = ino->lowerlinks;
	pthread_rwlock_unlock(&ino->lock);
	st->st_ino = ino->st_ino;
	/* The index entry is not a name; lower names not yet linked up are.
	 * An entry already unlinked (fstat of an open file that lost every
	 * name) counts 0, and so do its names. */
	if (layer == UM_LAYER_INDEX && !S_ISDIR(ino->type) && st->st_nlink > 0)
		st->st_nlink = st->st_nlink - 1 + lowerlinks;
	/* A merged directory's link count is not the sum of its parts; 1
	 * tells find(1) and friends not to count subdirectories from it. */
	if (S_ISDIR(ino->type) && nparts > 1)
		st->st_nlink = 1;
}

/* A new inode for what um_resolve() found in dir; caller holds
 * dir->lock for reading (the parts are opened from dir's fds). */
static int inode_from_found(const struct um_fs *fs, struct um_inode *dir, const char *name, struct um_found *f,
			    struct um_inode **ret)
{
	struct um_inode *ino = inode_alloc(f->st_ino, f->st.st_mode, name);
	int r;

	if (!ino)
		return -ENOMEM;
	ino->layer = f->layer;
	ino->datalayer = f->datalayer;
	ino->lowerlinks = f->lowerlinks;
	if (S_ISDIR(ino->type)) {
		r = um_found_open_parts(dir, name, f, &ino->parts);
		if (r < 0)
			goto free_ino;
		ino->nparts = f->nparts;
		um_dirfds_count(ino->nparts);
		/* Read once per inode, not on every lookup that finds it known. */
		if (ino->parts[0].layer == UM_UPPER) {
			r = um_marker_dir_flags(ino->parts[0].fd, fs->stackid);
			if (r == -EIO)
				um_marker_log_bad(name, "complete or impure");
			if (r < 0)
				goto free_ino;
			ino->flags |= um_inode_flags_of_marks(r);
		}
		if (f->redirect) {
			ino->redirect = strdup(f->redirect);
			if (!ino->redirect) {
				r = -ENOMEM;
				goto free_ino;
			}
		}
	}
	ino->parent = um_inode_ref(dir);
	*ret = ino;
	return 0;

free_ino:
	inode_free_one(ino);
	return r;
}

int um_inode_lookup(struct um_fs *fs, struct um_inode *dir, const char *name, struct um_inode **ret_ino,
		    struct stat *ret_st)
{
	return um_inode_lookup_from(fs, dir, name, 0, ret_ino, ret_st);
}

int um_inode_lookup_from(struct um_fs *fs, struct um_inode *dir, const char *name, unsigned from_layer,
			 struct um_inode **ret_ino, struct stat *ret_st)
{
	struct um_found f;
	struct um_inode *ino = NULL, *old;
	bool fresh = false;
	int r;

	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;

	r = um_inode_rdlock(fs, dir);
	if (r < 0)
		return r;
	r = um_resolve_from(fs, dir, name, from_layer, &f);
	if (r < 0)
		goto unlock;
	/* Known already (another name of it, an earlier lookup): reuse it
	 * without opening anything. Numbers upper reuses after an unlink do
	 * not meet their old inode: um_inode_kill() took it out of the table
	 * with its last name; objects with several names are reached through
	 * the index, not through the name they were found by. */
	ino = table_find(fs->itable, f.st_ino);
	if (ino && (ino->type != (f.st.st_mode & S_IFMT) || ino == fs->root)) {
		/* Two objects with one number: never hand out the wrong one. */
		um_log(UM_LOG_ERR, "lookup '%s': inode number %#llx already names another object", name,
		       (unsigned long long)f.st_ino);
		um_found_release(&f);
		pthread_rwlock_unlock(&dir->lock);
		um_inode_unref(fs, ino, 1);
		return -EIO;
	}
	if (!ino) {
		r = inode_from_found(fs, dir, name, &f, &ino);
		fresh = r == 0;
	}
	um_found_release(&f);
unlock:
	pthread_rwlock_unlock(&dir->lock);
	if (r < 0)
		return r;

	if (fresh) {
		old = table_intern(fs->itable, ino);
		if (old) {
			/* Lost a race with a concurrent lookup of the same object. */
			um_inode_unref(fs, ino, 1);
			ino = old;
		}
	}
	*ret_st = f.st;
	um_inode_fix_attr(ino, ret_st);
	*ret_ino = ino;
	return 0;
}

/* A non-directory at parent/name: the parent's lock is taken for reading
 * (parent locks come first in the lock order) and kept until
 * um_loc_release(), and only then is (parent, name, layer) read. Renames
 * and removals change both the name in upper and the inode's record of
 * it under the parent's write lock, so while the caller uses the name it
 * is the object's: not the whiteout a rename just left there, nor another
 * object moved over it. */
static int locate_in_parent(struct um_inode *ino, struct um_inode *parent, struct um_loc *ret)
{
	const struct um_part *p;

	ret->layer = ino->layer;
	ret->datalayer = ino->datalayer;
	strcpy(ret->name, ino->name);
	p = um_inode_part_in(parent, ret->layer);
	if (p && ret->datalayer) {
		const struct um_part *d = um_inode_part_in(parent, ret->datalayer);

		ret->datadirfd = d ? d->fd : -1;
		if (!d)
			p = NULL;
	}
	if (!p) {
		/* Parts are never taken away and a moved object is in upper:
		 * the table is inconsistent, not the branches. */
		um_log(UM_LOG_ERR, "'%s': its directory has no part in layer %u (an internal error); it fails with EIO",
		       ret->name, ret->layer);
		return -EIO;
	}
	ret->dirfd = p->fd;
	return 0;
}

int um_inode_locate(struct um_fs *fs, struct um_inode *ino, struct um_loc *ret)
{
	struct um_inode *parent = NULL; /* locked for reading, with a reference */
	int r = 0;

	ret->locked = false;
	ret->datalayer = 0;
	ret->datadirfd = -1;
	for (;;) {
		r = um_inode_rdlock(fs, ino);
		if (r < 0)
			goto drop_parent;
		if ((ino->flags & UM_INO_DEAD) && !S_ISDIR(ino->type)) {
			if (ino->keep_fd < 0) {
				r = -ENOENT;
				break;
			}
			ret->hold = um_inode_ref(ino);
			ret->dirfd = ino->keep_fd;
			ret->layer = UM_UPPER;
			ret->name[0] = '\0';
			break;
		}
		if (ino->layer == UM_LAYER_INDEX && !S_ISDIR(ino->type)) {
			/* Any of its names would do; the index entry is all of them. */
			ret->hold = um_inode_ref(ino);
			ret->dirfd = fs->index_fd;
			ret->layer = UM_UPPER;
			um_inode_index_name(ino->st_ino, ret->name);
			break;
		}
		if (S_ISDIR(ino->type)) {
			ret->hold = um_inode_ref(ino);
			ret->dirfd = ino->parts[0].fd;
			ret->layer = ino->parts[0].layer;
			ret->name[0] = '\0';
			break;
		}
		if (ino->parent == parent) {
			r = locate_in_parent(ino, parent, ret);
			pthread_rwlock_unlock(&ino->lock);
			if (r < 0)
				goto drop_parent;
			ret->hold = parent;
			ret->locked = true;
			return 0;
		}
		/* Not yet locked, or moved meanwhile: let go of the child
		 * before locking its (new) parent, then look again. */
		{
			struct um_inode *next = um_inode_ref(ino->parent);

			pthread_rwlock_unlock(&ino->lock);
			if (parent) {
				pthread_rwlock_unlock(&parent->lock);
				um_inode_unref(fs, parent, 1);
			}
			parent = NULL;
			r = um_inode_rdlock(fs, next);
			if (r < 0) {
				um_inode_unref(fs, next, 1);
				goto drop_parent;
			}
			parent = next;
		}
	}
	pthread_rwlock_unlock(&ino->lock);
drop_parent:
	if (parent) {
		pthread_rwlock_unlock(&parent->lock);
		um_inode_unref(fs, parent, 1);
	}
	return r;
}

void um_loc_release(struct um_fs *fs, struct um_loc *loc)
{
	if (loc->locked)
		pthread_rwlock_unlock(&loc->hold->lock);
	loc->locked = false;
	um_inode_unref(fs, loc->hold, 1);
	loc->hold = NULL;
}

int um_inode_stat(struct um_fs *fs, struct um_inode *ino, struct stat *ret_st)
{
	struct um_loc loc;
	int r = um_inode_locate(fs, ino, &loc);

	if (r < 0)
		return r;
	r = um_sys_lstatat(loc.dirfd, loc.name, ret_st);
	if (r == 0 && (ret_st->st_mode & S_IFMT) != ino->type) {
		/* The kernel would take the reply as a stale inode and fail it
		 * with EIO, without a word: say why here. The name is locked,
		 * so only a change behind the union's back gets here. */
		um_log(UM_LOG_ERR, "'%s': its type changed from %#o to %#o in layer %u (behind the union's back?); it fails with EIO",
		       loc.name[0] ? loc.name : "(open file)", ino->type, ret_st->st_mode & S_IFMT, loc.layer);
		r = -EIO;
	}
	if (r == 0 && loc.datalayer) {
		/* Size and blocks are the data's, as lookup shows (resolve.c). */
		struct stat dst;

		r = um_sys_lstatat(loc.datadirfd, loc.name, &dst);
		if (r == 0) {
			ret_st->st_size = dst.st_size;
			ret_st->st_blocks = dst.st_blocks;
		}
	}
	um_loc_release(fs, &loc);
	if (r < 0)
		return r;
	um_inode_fix_attr(ino, ret_st);
	return 0;
}

void um_inode_index_name(uint64_t st_ino, char buf[17])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--, st_ino >>= 4)
		buf[i] = hex[st_ino & 15];
	buf[16] = '\0';
}

/* Take ino out of the table if it is there (it may have been replaced). */
static void table_remove(struct um_itable *t, struct um_inode *ino)
{
	uint64_t h = hash_ino(ino->st_ino);
	struct shard *s = shard_of(t, h);
	struct um_inode **pp;

	pthread_mutex_lock(&s->lock);
	for (pp = bucket_of(s, h); *pp && *pp != ino; pp = &(*pp)->hnext)
		;
	if (*pp) {
		*pp = ino->hnext;
		ino->hnext = NULL;
		s->count--;
	}
	pthread_mutex_unlock(&s->lock);
}

void um_inode_kill(struct um_fs *fs, struct um_inode *ino)
{
	pthread_rwlock_wrlock(&ino->lock);
	ino->flags |= UM_INO_DEAD;
	pthread_rwlock_unlock(&ino->lock);
	table_remove(fs->itable, ino);
}

int um_inode_new_upper(struct um_fs *fs, struct um_inode *dir, const char *name, const struct stat *st,
		       struct um_inode **ret)
{
	struct um_inode *ino = inode_alloc(um_ino_encode(UM_UPPER, st->st_ino, st->st_dev, fs->layers[UM_UPPER].dev),
					   st->st_mode, name);
	struct um_inode *old;
	int r = -ENOMEM;

	if (!ino)
		return -ENOMEM;
	ino->layer = UM_UPPER;
	if (S_ISDIR(st->st_mode)) {
		ino->parts = calloc(1, sizeof(*ino->parts));
		if (!ino->parts)
			goto fail;
		r = um_inode_upper_fd(fs, dir);
		if (r >= 0)
			r = um_sys_open_dir(r, name);
		if (r < 0)
			goto fail;
		ino->parts[0] = (struct um_part){ .fd = r, .layer = UM_UPPER };
		ino->nparts = 1;
		um_dirfds_count(1);
	}
	ino->parent = um_inode_ref(dir);
	/* A number still in the table belongs to an object upper has since
	 * freed: one a request of ours is removing (it had no time to say
	 * so yet), or one removed behind our back. The new object wins. */
	while ((old = table_intern(fs->itable, ino))) {
		if (!(um_inode_flags(old) & (UM_INO_GOING | UM_INO_DEAD)))
			um_log(UM_LOG_WARN, "'%s': inode number %#llx reused by the upper filesystem", name,
			       (unsigned long long)ino->st_ino);
		um_inode_kill(fs, old);
		um_inode_unref(fs, old, 1);
	}
	*ret = ino;
	return 0;

fail:
	inode_free_one(ino);
	return r;
}

int um_inode_add_upper_locked(struct um_inode *dir, int fd)
{
	struct um_part *parts;
	int r = -ENOMEM;

	/* Readers only look at the array under the lock; the fds in it stay
	 * open whatever the array does (see parts in inode.h). */
	parts = realloc(dir->parts, (dir->nparts + 1u) * sizeof(*parts));
	if (parts) {
		memmove(&parts[1], &parts[0], dir->nparts * sizeof(*parts));
		parts[0] = (struct um_part){ .fd = fd, .layer = UM_UPPER };
		dir->parts = parts;
		dir->nparts++;
		um_dirfds_count(1);
		dir->layer = UM_UPPER;
		r = 0;
	}
	return r;
}

int um_inode_upper_fd(struct um_fs *fs, struct um_inode *dir)
{
	int fd = um_inode_rdlock(fs, dir);

	if (fd < 0)
		return fd;
	fd = -EROFS;
	if (dir->nparts && dir->parts[0].layer == UM_UPPER)
		fd = dir->parts[0].fd;
	pthread_rwlock_unlock(&dir->lock);
	return fd;
}

struct um_inode *um_inode_move(struct um_inode *ino, struct um_inode *newparent, char *name)
{
	struct um_inode *old;

	/* Back to the inline copy when the object returns to its first name,
	 * the only one it has room for. */
	if (strcmp(name, ino->iname) == 0) {
		free(name);
		name = ino->iname;
	}
	um_inode_ref(newparent);
	pthread_rwlock_wrlock(&ino->lock);
	old = ino->parent;
	ino->parent = newparent;
	if (ino->name != ino->iname)
		free(ino->name);
	ino->name = name;
	pthread_rwlock_unlock(&ino->lock);
	return old;
}

uint16_t um_inode_layer(struct um_inode *ino)
{
	uint16_t l;

	pthread_rwlock_rdlock(&ino->lock);
	l = ino->layer;
	pthread_rwlock_unlock(&ino->lock);
	return l;
}

uint16_t um_inode_data_layer(struct um_inode *ino)
{
	uint16_t l;

	pthread_rwlock_rdlock(&ino->lock);
	l = ino->datalayer ? ino->datalayer : ino->layer;
	pthread_rwlock_unlock(&ino->lock);
	return l;
}

uint16_t um_inode_flags(struct um_inode *ino)
{
	uint16_t f;

	pthread_rwlock_rdlock(&ino->lock);
	f = ino->flags;
	pthread_rwlock_unlock(&ino->lock);
	return f;
}

void um_inode_set_flags(struct um_inode *ino, uint16_t set, uint16_t clear)
{
	pthread_rwlock_wrlock(&ino->lock);
	ino->flags = (uint16_t)((ino->flags | set) & ~clear);
	pthread_rwlock_unlock(&ino->lock);
}

int um_inode_keep_open(struct um_fs *fs, struct um_inode *ino)
{
	struct um_loc loc;
	int fd, r;

	if (S_ISDIR(ino->type) || atomic_load(&ino->nopen) == 0)
		return 0;
	r = um_inode_locate(fs, ino, &loc);
	if (r < 0)
		return r;
	fd = um_sys_openat(loc.dirfd, loc.name, O_PATH);
	um_loc_release(fs, &loc);
	if (fd < 0)
		return fd;
	pthread_rwlock_wrlock(&ino->lock);
	if (ino->keep_fd < 0)
		ino->keep_fd = TAKE_FD(fd);
	pthread_rwlock_unlock(&ino->lock);
	if (fd >= 0)
		(void)close(fd);
	return 0;
}

/* Directories: remember that a request locked it in this epoch (the
 * largest epoch wins: two readers may race). */
static void mark_used(struct um_inode *dir)
{
	uint64_t e = um_inflight_epoch(), u = atomic_load(&dir->used);

	while (u < e && !atomic_compare_exchange_weak(&dir->used, &u, e))
		;
}

/* Caller holds dir->lock for writing. */
static int reopen_parts_locked(const struct um_fs *fs, struct um_inode *dir)
{
	long opened = 0;
	int r = 0;

	for (uint16_t i = 0; i < dir->nparts && r == 0; i++) {
		if (dir->parts[i].fd >= 0)
			continue;
		r = um_dirfd_reopen(fs, &dir->parts[i]);
		if (r == 0)
			opened++;
	}
	um_dirfds_count(opened);
	/* Parts reopened stay open; the next lock retries the others. */
	if (r == 0)
		dir->flags &= (uint16_t)~UM_INO_CLOSED;
	return r;
}

int um_inode_wrlock(const struct um_fs *fs, struct um_inode *ino)
{
	int r = 0;

	pthread_rwlock_wrlock(&ino->lock);
	if (S_ISDIR(ino->type)) {
		mark_used(ino);
		if (ino->flags & UM_INO_CLOSED)
			r = reopen_parts_locked(fs, ino);
		if (r < 0)
			pthread_rwlock_unlock(&ino->lock);
	}
	return r;
}

int um_inode_rdlock(const struct um_fs *fs, struct um_inode *ino)
{
	int r;

	for (;;) {
		pthread_rwlock_rdlock(&ino->lock);
		if (!S_ISDIR(ino->type))
			return 0;
		/* Before looking at the flag: from here on the closing thread
		 * leaves it alone (it checks under the write lock). */
		mark_used(ino);
		if (!(ino->flags & UM_INO_CLOSED))
			return 0;
		pthread_rwlock_unlock(&ino->lock);
		r = um_inode_wrlock(fs, ino);
		if (r < 0)
			return r;
		pthread_rwlock_unlock(&ino->lock);
	}
}

int um_itable_dirs(struct um_fs *fs, bool (*want)(struct um_inode *dir, void *arg), void *arg,
		   struct um_inode ***ret, size_t *n)
{
	struct um_inode **all = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;

	for (unsigned i = 0; i < NSHARDS && r == 0; i++) {
		struct shard *s = &fs->itable->shards[i];

		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->size && r == 0; b++) {
			for (struct um_inode *ino = s->buckets[b]; ino && r == 0; ino = ino->hnext) {
				if (!S_ISDIR(ino->type) || !want(ino, arg))
					continue;
				if (cnt == cap) {
					size_t ncap = cap ? cap * 2 : 1024;
					struct um_inode **na = realloc(all, ncap * sizeof(*na));

					if (!na) {
						r = -ENOMEM;
						break;
					}
					all = na;
					cap = ncap;
				}
				/* In the table under the shard lock: never at zero. */
				all[cnt++] = um_inode_ref(ino);
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (r < 0) {
		for (size_t i = 0; i < cnt; i++)
			um_inode_unref(fs, all[i], 1);
		free(all);
		return r;
	}
	*ret = all;
	*n = cnt;
	return 0;
}

struct idle_arg {
	const struct um_fs *fs;
	uint64_t before;
};

static bool is_idle(struct um_inode *dir, void *arg)
{
	const struct idle_arg *a = arg;

	return dir != a->fs->root && atomic_load(&dir->used) < a->before;
}

int um_itable_idle_dirs(struct um_fs *fs, uint64_t before, struct um_inode ***ret, size_t *n)
{
	struct idle_arg a = { fs, before };

	return um_itable_dirs(fs, is_idle, &a, ret, n);
}

int um_inode_close_parts(struct um_fs *fs, struct um_inode *dir, uint64_t before, int *fds)
{
	int n = 0;

	/* Held: someone is using it right now. */
	if (pthread_rwlock_trywrlock(&dir->lock) != 0)
		return 0;
	/* A removed directory lives on only through these fds. */
	if ((dir->flags & (UM_INO_DEAD | UM_INO_CLOSED)) || atomic_load(&dir->used) >= before)
		goto unlock;
	for (uint16_t i = 0; i < dir->nparts; i++)
		if (um_dirfd_save(fs, &dir->parts[i]) < 0)
			goto unlock;
	for (uint16_t i = 0; i < dir->nparts; i++) {
		fds[n++] = dir->parts[i].fd;
		dir->parts[i].fd = -1;
	}
	dir->flags |= UM_INO_CLOSED;
unlock:
	pthread_rwlock_unlock(&dir->lock);
	return n;
}
