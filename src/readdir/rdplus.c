/* Which READDIRPLUS replies carry files' attributes: see rdplus.h. */
#include "rdplus.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "inode.h"
#include "log.h"
#include "ops.h"

enum { FIRST, LEAN, FULL };

/* A program at work: the callers' process group, so that the threads and
 * processes of one job (find | xargs stat) are judged together. */
struct group {
	pid_t id;
	uint8_t state;
	/* FIRST: the directory of its first listing (compared, never
	 * followed: an address the inode may have given up since) */
	const struct um_inode *first;
	uint64_t used; /* um_rdplus_state.clock when last seen; 0: free */
};

/* Which group a calling thread is in, read from /proc once. */
struct member {
	pid_t tid;
	pid_t group;
	uint64_t used;
};

/* Jobs at work at once, and their threads; the least recently seen makes
 * room. A group forgotten starts again with a listing with attributes. */
#define NGROUPS 64
#define NMEMBERS 256

struct um_rdplus_state {
	/* Guards clock, groups[] and members[]: taken by every READDIRPLUS
	 * and every lookup in a directory listed lean, for a scan of the
	 * slots (never while reading /proc). */
	pthread_mutex_t lock;
	uint64_t clock;
	struct group groups[NGROUPS];
	struct member members[NMEMBERS];
};

int um_rdplus_new(struct um_rdplus_state **ret)
{
	struct um_rdplus_state *rp = calloc(1, sizeof(*rp));
	int r;

	if (!rp)
		return -ENOMEM;
	r = pthread_mutex_init(&rp->lock, NULL);
	if (r != 0) {
		free(rp);
		return -r;
	}
	*ret = rp;
	return 0;
}

void um_rdplus_free(struct um_rdplus_state *rp)
{
	if (!rp)
		return;
	pthread_mutex_destroy(&rp->lock);
	free(rp);
}

/* tid's process group, or tid itself if /proc does not say (a caller in
 * a pid namespace the daemon cannot see is reported as 0). */
static pid_t read_group(pid_t tid)
{
	char path[64], buf[512], *p;
	_cleanup_close_ int fd = -1;
	long pgrp;
	ssize_t n;

	if (tid <= 0)
		return tid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tid;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return tid;
	buf[n] = 0;
	/* "pid (comm) state ppid pgrp ...": comm may hold anything but
	 * ends at the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %ld", &pgrp) != 1 || pgrp <= 0)
		return tid;
	return (pid_t)pgrp;
}

/* victim = the least recently used of arr's n slots (free ones have
 * used 0). */
#define LRU(arr, n, victim)                                    \
	do {                                                   \
		victim = &(arr)[0];                            \
		for (size_t i_ = 1; i_ < (n); i_++)            \
			if ((arr)[i_].used < victim->used)     \
				victim = &(arr)[i_];           \
	} while (0)

/* tid's group's slot, made (state FIRST, *added) if it has none. Takes
 * rp->lock; the caller unlocks. */
static struct group *lock_group_of(struct um_rdplus_state *rp, pid_t tid, bool *added)
{
	struct member *m, *mv;
	struct group *g, *gv;
	pid_t id = 0;
	bool known = false;

	pthread_mutex_lock(&rp->lock);
	for (size_t i = 0; i < NMEMBERS && !known; i++) {
		m = &rp->members[i];
		if (m->used && m->tid == tid) {
			m->used = ++rp->clock;
			id = m->group;
			known = true;
		}
	}
	if (!known) {
		pthread_mutex_unlock(&rp->lock);
		id = read_group(tid);
		pthread_mutex_lock(&rp->lock);
		LRU(rp->members, NMEMBERS, mv);
		*mv = (struct member){ .tid = tid, .group = id, .used = ++rp->clock };
	}
	for (size_t i = 0; i < NGROUPS; i++) {
		g = &rp->groups[i];
		if (g->used && g->id == id) {
			g->used = ++rp->clock;
			*added = false;
			return g;
		}
	}
	LRU(rp->groups, NGROUPS, gv);
	*gv = (struct group){ .id = id, .state = FIRST, .used = ++rp->clock };
	*added = true;
	return gv;
}

bool um_rdplus_files(struct um_fs *fs, pid_t tid, const struct um_inode *dir)
{
	struct um_rdplus_state *rp = fs->rdplus;
	struct group *g;
	bool added, files;

	if (!rp)
		return true;
	g = lock_group_of(rp, tid, &added);
	if (added)
		g->first = dir;
	files = g->state == FULL || (g->state == FIRST && g->first == dir);
	if (!files)
		g->state = LEAN;
	pthread_mutex_unlock(&rp->lock);
	return files;
}

/* Make the kernel ask again for dir's listing, if it was given a lean
 * one. */
static void drop_lean(struct um_fs *fs, struct um_inode *dir)
{
	if (atomic_exchange(&dir->lean_listed, false))
		um_notify_listing_dropped(fs, dir);
}

static bool is_lean(struct um_inode *dir, void *arg)
{
	(void)arg;
	return atomic_load(&dir->lean_listed);
}

void um_rdplus_looked_up(struct um_fs *fs, pid_t tid, struct um_inode *dir)
{
	struct um_rdplus_state *rp = fs->rdplus;
	struct um_inode **dirs = NULL;
	struct group *g;
	size_t n = 0;
	bool added, turned;

	if (!rp)
		return;
	g = lock_group_of(rp, tid, &added);
	turned = g->state != FULL;
	g->state = FULL;
	pthread_mutex_unlock(&rp->lock);
	drop_lean(fs, dir);
	if (!turned)
		return;
	/* A caller that wants the attributes: whatever listing it reads
	 * next, the kernel must not serve it a lean one from its cache. */
	if (um_itable_dirs(fs, is_lean, NULL, &dirs, &n) < 0) {
		um_debug("readdirplus: cannot collect the directories listed without attributes");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		drop_lean(fs, dirs[i]);
		um_inode_unref(fs, dirs[i], 1);
	}
	free(dirs);
	um_debug("readdirplus: thread %d (its group) looks names up: %zu directories listed lean dropped", (int)tid, n);
}
