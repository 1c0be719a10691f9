#include "inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "cleanup.h"
#include "ino.h"
#include "log.h"
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

/* At unmount: the kernel's references are void, so every inode goes,
 * whatever its count. */
void um_itable_free(struct um_itable *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *s = &t->shards[i];

		for (size_t b = 0; s->buckets && b < s->size; b++) {
			while (s->buckets[b]) {
				struct um_inode *ino = s->buckets[b];

				s->buckets[b] = ino->hnext;
				inode_free_one(ino);
			}
		}
		if (s->buckets)
			pthread_mutex_destroy(&s->lock);
		free(s->buckets);
	}
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
	for (uint16_t i = 0; i < ino->nparts; i++)
		(void)close(ino->parts[i].fd);
	free(ino->parts);
	free(ino->name);
	pthread_rwlock_destroy(&ino->lock);
	free(ino);
}

static struct um_inode *inode_alloc(uint64_t st_ino, mode_t type)
{
	struct um_inode *ino = calloc(1, sizeof(*ino));

	if (!ino)
		return NULL;
	ino->st_ino = st_ino;
	ino->type = type & S_IFMT;
	atomic_init(&ino->refs, 1);
	pthread_rwlock_init(&ino->lock, NULL);
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
	ino = inode_alloc(st_ino, st->st_mode);
	if (!ino)
		return -ENOMEM;
	ino->parts = parts;
	ino->nparts = nparts;
	ino->layer = parts[0].layer;
	(void)table_intern(fs->itable, ino); /* the table is empty: always inserted */
	*ret = ino;
	return 0;
}

void um_inode_fix_attr(struct um_inode *ino, struct stat *st)
{
	uint16_t nparts;

	pthread_rwlock_rdlock(&ino->lock);
	nparts = ino->nparts;
	pthread_rwlock_unlock(&ino->lock);
	st->st_ino = ino->st_ino;
	/* A merged directory's link count is not the sum of its parts; 1
	 * tells find(1) and friends not to count subdirectories from it. */
	if (S_ISDIR(ino->type) && nparts > 1)
		st->st_nlink = 1;
}

/* A new inode for what um_resolve() found in dir; caller holds
 * dir->lock for reading (the parts are opened from dir's fds). */
static int inode_from_found(struct um_inode *dir, const char *name, const struct um_found *f,
			    struct um_inode **ret)
{
	struct um_inode *ino = inode_alloc(f->st_ino, f->st.st_mode);
	int r;

	if (!ino)
		return -ENOMEM;
	ino->name = strdup(name);
	if (!ino->name) {
		r = -ENOMEM;
		goto free_ino;
	}
	ino->layer = f->layer;
	if (S_ISDIR(ino->type)) {
		r = um_found_open_parts(dir, name, f, &ino->parts);
		if (r < 0)
			goto free_ino;
		ino->nparts = f->nparts;
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
	struct um_found f;
	struct um_inode *ino = NULL, *old;
	bool fresh = false;
	int r;

	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;

	pthread_rwlock_rdlock(&dir->lock);
	r = um_resolve(fs, dir, name, &f);
	if (r < 0)
		goto unlock;
	/* Known already (another name of it, an earlier lookup): reuse it
	 * without opening anything.
	 * NEEDSWORK (write path): upper filesystems reuse inode numbers right
	 * after unlink, so unlink/rename-over must unhash the inode; and a
	 * hard-linked inode must be relocated when the name it was found by
	 * goes away. */
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
		r = inode_from_found(dir, name, &f, &ino);
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

int um_inode_locate(struct um_fs *fs, struct um_inode *ino, struct um_loc *ret)
{
	struct um_inode *parent;
	int r = -EIO; /* the parent must have a part in the object's layer */

	pthread_rwlock_rdlock(&ino->lock);
	if (S_ISDIR(ino->type)) {
		ret->hold = um_inode_ref(ino);
		ret->dirfd = ino->parts[0].fd;
		ret->layer = ino->parts[0].layer;
		ret->name[0] = '\0';
		pthread_rwlock_unlock(&ino->lock);
		return 0;
	}
	/* Take (parent, name, layer) as one consistent snapshot, then let go
	 * of the child before locking the parent: parent locks come first in
	 * the lock order. A rename racing with us leaves a stale but
	 * consistent location, which fails like any op racing a rename. */
	parent = um_inode_ref(ino->parent);
	ret->layer = ino->layer;
	strcpy(ret->name, ino->name);
	pthread_rwlock_unlock(&ino->lock);

	pthread_rwlock_rdlock(&parent->lock);
	for (uint16_t i = 0; i < parent->nparts; i++) {
		if (parent->parts[i].layer == ret->layer) {
			ret->dirfd = parent->parts[i].fd;
			r = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&parent->lock);
	if (r < 0) {
		um_inode_unref(fs, parent, 1);
		return r;
	}
	ret->hold = parent;
	return 0;
}

void um_loc_release(struct um_fs *fs, struct um_loc *loc)
{
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
	um_loc_release(fs, &loc);
	if (r < 0)
		return r;
	um_inode_fix_attr(ino, ret_st);
	return 0;
}
