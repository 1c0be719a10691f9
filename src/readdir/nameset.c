#include "nameset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

/* Open addressing with linear probing; a slot is empty when len == 0
 * (names are never empty). Names live in chunks that never move, so the
 * set can grow without copying them. */
struct slot {
	uint64_t hash;
	const char *name;
	uint32_t len;
	uint32_t val;
};

struct chunk {
	struct chunk *next;
	size_t used, size;
	char data[];
};

struct um_nameset {
	struct slot *slots;
	size_t size; /* power of two */
	size_t count;
	struct chunk *chunks;
};

#define CHUNK_SIZE (64 * 1024)

int um_nameset_new(size_t hint, struct um_nameset **ret)
{
	struct um_nameset *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->size = 64;
	while (s->size < hint * 2)
		s->size *= 2;
	s->slots = calloc(s->size, sizeof(*s->slots));
	if (!s->slots) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

struct um_nameset *um_nameset_free(struct um_nameset *s)
{
	if (!s)
		return NULL;
	while (s->chunks) {
		struct chunk *c = s->chunks;

		s->chunks = c->next;
		free(c);
	}
	free(s->slots);
	free(s);
	return NULL;
}

size_t um_nameset_count(const struct um_nameset *s)
{
	return s->count;
}

static struct slot *find(struct um_nameset *s, uint64_t h, const char *name, size_t len)
{
	size_t i = h & (s->size - 1);

	for (;;) {
		struct slot *sl = &s->slots[i];

		if (sl->len == 0)
			return sl;
		if (sl->hash == h && sl->len == len && memcmp(sl->name, name, len) == 0)
			return sl;
		i = (i + 1) & (s->size - 1);
	}
}

static int grow(struct um_nameset *s)
{
	size_t nsize = s->size * 2;
	struct slot *ns = calloc(nsize, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < s->size; i++) {
		struct slot *sl = &s->slots[i];
		size_t j;

		if (sl->len == 0)
			continue;
		j = sl->hash & (nsize - 1);
		while (ns[j].len)
			j = (j + 1) & (nsize - 1);
		ns[j] = *sl;
	}
	free(s->slots);
	s->slots = ns;
	s->size = nsize;
	return 0;
}

static const char *store(struct um_nameset *s, const char *name, size_t len)
{
	struct chunk *c = s->chunks;
	char *p;

	if (!c || c->size - c->used < len) {
		size_t size = len > CHUNK_SIZE ? len : CHUNK_SIZE;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = size;
		c->next = s->chunks;
		s->chunks = c;
	}
	p = c->data + c->used;
	memcpy(p, name, len);
	c->used += len;
	return p;
}

int um_nameset_insert(struct um_nameset *s, const char *name, size_t len, uint32_t val, uint32_t *ret_val)
{
	uint64_t h = XXH3_64bits(name, len);
	struct slot *sl;

	if (len == 0 || len > UINT32_MAX)
		return -EINVAL;
	sl = find(s, h, name, len);
	if (sl->len) {
		if (ret_val)
			*ret_val = sl->val;
		return 0;
	}
	/* Keep the load under 1/2 so probes stay short. */
	if ((s->count + 1) * 2 > s->size) {
		if (grow(s) < 0)
			return -ENOMEM;
		sl = find(s, h, name, len);
	}
	sl->name = store(s, name, len);
	if (!sl->name)
		return -ENOMEM;
	sl->hash = h;
	sl->len = (uint32_t)len;
	sl->val = val;
	s->count++;
	return 1;
}

/* The slot holding name, or NULL. */
static struct slot *present(struct um_nameset *s, const char *name, size_t len)
{
	struct slot *sl = len ? find(s, XXH3_64bits(name, len), name, len) : NULL;

	return sl && sl->len ? sl : NULL;
}

int um_nameset_set(struct um_nameset *s, const char *name, size_t len, uint32_t val)
{
	struct slot *sl = present(s, name, len);

	if (!sl)
		return -ENOENT;
	sl->val = val;
	return 0;
}

int um_nameset_get(struct um_nameset *s, const char *name, size_t len, uint32_t *ret_val)
{
	struct slot *sl = present(s, name, len);

	if (!sl)
		return -ENOENT;
	*ret_val = sl->val;
	return 0;
}
