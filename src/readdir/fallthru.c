#include "fallthru.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "marker.h"
#include "sys.h"

#define DENTS_BUF 8192

struct marker {
	uint64_t ino;
	unsigned layer;
};

struct um_ftstore {
	int fd;
	dev_t dev;
	/* Guards everything below. Readers classify entries under it, the
	 * writer of a new marker (first fallthru of a layer, or a marker
	 * full) takes it for writing: rare. */
	pthread_rwlock_t lock;
	struct marker *markers; /* unordered; few (a handful per layer) */
	size_t n, cap;
	unsigned cur[UM_MAX_LOWER + 1]; /* N of the marker "L.N" new links go to; 0: none yet */
};

static int add_marker(struct um_ftstore *s, uint64_t ino, unsigned layer)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 8;
		struct marker *m = realloc(s->markers, ncap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		s->markers = m;
		s->cap = ncap;
	}
	s->markers[s->n++] = (struct marker){ .ino = ino, .layer = layer };
	return 0;
}

/* A marker name "L.N" with L a layer and N >= 1. */
static bool parse_name(const char *name, unsigned *layer, unsigned *seq)
{
	char tail;

	return sscanf(name, "%u.%u%c", layer, seq, &tail) == 2 && *layer >= 1 && *layer <= UM_MAX_LOWER &&
	       *seq >= 1;
}

static int scan(struct um_ftstore *s)
{
	_cleanup_close_ int fd = um_sys_openat(s->fd, ".", O_RDONLY | O_DIRECTORY);
	char buf[DENTS_BUF];
	int r;

	if (fd < 0)
		return fd;
	while ((r = um_sys_getdents(fd, buf, sizeof(buf))) > 0) {
		for (int off = 0; off < r;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			unsigned layer, seq;
			struct stat st;
			int e;

			off += d->d_reclen;
			if (!parse_name(d->d_name, &layer, &seq))
				continue; /* not ours to judge: left alone */
			e = um_sys_lstatat(s->fd, d->d_name, &st);
			if (e < 0)
				return e;
			if (um_marker_fallthru_layer(&st) != layer) {
				um_log(UM_LOG_WARN, "workdir: fallthru marker %s is not a fallthru of layer %u: ignored",
				       d->d_name, layer);
				continue;
			}
			e = add_marker(s, st.st_ino, layer);
			if (e < 0)
				return e;
			if (seq > s->cur[layer])
				s->cur[layer] = seq;
		}
	}
	return r;
}

int um_ft_open(int dirfd, dev_t dev, struct um_ftstore **ret)
{
	struct um_ftstore *s = calloc(1, sizeof(*s));
	int r;

	if (!s) {
		(void)close(dirfd);
		return -ENOMEM;
	}
	s->fd = dirfd;
	s->dev = dev;
	pthread_rwlock_init(&s->lock, NULL);
	/* A read-only mount of an upper never listed read-write has no
	 * markers yet: every fallthru is then classified by lstat. */
	r = dirfd < 0 ? 0 : scan(s);
	if (r < 0) {
		um_ft_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct um_ftstore *um_ft_free(struct um_ftstore *s)
{
	if (!s)
		return NULL;
	if (s->fd >= 0)
		(void)close(s->fd);
	pthread_rwlock_destroy(&s->lock);
	free(s->markers);
	free(s);
	return NULL;
}

/* Make marker L.(seq) current, creating it. Caller holds s->lock for
 * writing. */
static int new_marker(struct um_ftstore *s, unsigned layer, unsigned seq)
{
	char name[32];
	struct stat st;
	int r;

	(void)snprintf(name, sizeof(name), "%u.%u", layer, seq);
	r = um_sys_mknodat(s->fd, name, S_IFCHR | 0, um_marker_fallthru_dev(layer));
	if (r < 0 && r != -EEXIST)
		return r;
	r = um_sys_lstatat(s->fd, name, &st);
	if (r < 0)
		return r;
	if (um_marker_fallthru_layer(&st) != layer)
		return -EIO; /* someone else's file under our name */
	r = add_marker(s, st.st_ino, layer);
	if (r == 0)
		s->cur[layer] = seq;
	return r;
}

int um_ft_write(struct um_ftstore *s, unsigned layer, int dirfd, const char *name)
{
	if (layer < 1 || layer > UM_MAX_LOWER)
		return -EINVAL;
	/* A few rounds: a marker made again, one more for a full marker. A
	 * target directory removed behind our back also says ENOENT, and
	 * must not make us loop. */
	for (int round = 0; round < 4; round++) {
		char mname[32];
		unsigned seq;
		int r;

		pthread_rwlock_rdlock(&s->lock);
		seq = s->cur[layer];
		pthread_rwlock_unlock(&s->lock);
		if (seq == 0) {
			pthread_rwlock_wrlock(&s->lock);
			r = s->cur[layer] ? 0 : new_marker(s, layer, 1);
			pthread_rwlock_unlock(&s->lock);
			if (r < 0)
				return r;
			continue;
		}
		(void)snprintf(mname, sizeof(mname), "%u.%u", layer, seq);
		r = um_sys_linkat(s->fd, mname, dirfd, name);
		if (r == -ENOENT) {
			/* The marker was removed under us: make it again and
			 * retry, rather than fail every listing. */
			pthread_rwlock_wrlock(&s->lock);
			r = s->cur[layer] == seq ? new_marker(s, layer, seq) : 0;
			pthread_rwlock_unlock(&s->lock);
			if (r < 0)
				return r;
			continue;
		}
		if (r != -EMLINK)
			return r;
		/* That marker has as many links as the filesystem allows. */
		pthread_rwlock_wrlock(&s->lock);
		r = s->cur[layer] == seq ? new_marker(s, layer, seq + 1) : 0;
		pthread_rwlock_unlock(&s->lock);
		if (r < 0)
			return r;
	}
	return -EIO;
}

static unsigned known_layer(struct um_ftstore *s, uint64_t ino)
{
	unsigned layer = 0;

	pthread_rwlock_rdlock(&s->lock);
	for (size_t i = 0; i < s->n && !layer; i++)
		if (s->markers[i].ino == ino)
			layer = s->markers[i].layer;
	pthread_rwlock_unlock(&s->lock);
	return layer;
}

int um_ft_classify(struct um_ftstore *s, int dirfd, dev_t dev, struct dirent64 *d, unsigned *ret_layer)
{
	struct stat st;
	unsigned layer;
	int r;

	if (!um_marker_dtype_may_be_whiteout(d->d_type))
		return UM_ENT_PLAIN;
	if (s && d->d_type == DT_CHR && dev == s->dev && (layer = known_layer(s, d->d_ino))) {
		*ret_layer = layer;
		return UM_ENT_FALLTHRU;
	}
	r = um_sys_lstatat(dirfd, d->d_name, &st);
	if (r < 0)
		return r;
	d->d_type = (unsigned char)IFTODT(st.st_mode);
	if (um_marker_is_whiteout(&st))
		return UM_ENT_WHITEOUT;
	layer = um_marker_fallthru_layer(&st);
	if (!layer)
		return UM_ENT_PLAIN;
	*ret_layer = layer;
	return UM_ENT_FALLTHRU;
}
