/* A lower directory's names for a listing's fallthrus: see lowermap.h. */
#include "lowermap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cleanup.h"
#include "nameset.h"
#include "sys.h"

#define READ_BUF (32 * 1024)
/* Entries either side of the last one found that a lookup compares before
 * it asks the index: enough to pass over the lower names a listing skips
 * (shadowed by a real upper entry or a higher layer's, whited out). */
#define WINDOW 8
/* While the window keeps missing, one lookup in RETRY tries it. */
#define RETRY 16

struct ent {
	uint64_t ino;
	uint32_t name_off; /* into names, NUL-terminated */
	uint16_t len;
	uint8_t type;
};

struct um_lowermap {
	char *names;
	size_t names_len, names_cap;
	struct ent *ents; /* getdents order */
	size_t n, cap;
	size_t next;      /* one past the last one found */
	size_t misses;    /* lookups in a row not found near the last one found */
	bool scanned;     /* one lookup has searched them all */
	struct um_nameset *index; /* name -> index into ents; built on need */
	size_t indexed;   /* lookups it answered */
};

static int add(struct um_lowermap *m, const struct dirent64 *d)
{
	size_t len = strlen(d->d_name);

	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		struct ent *e = realloc(m->ents, ncap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		m->ents = e;
		m->cap = ncap;
	}
	if (m->names_cap - m->names_len < len + 1) {
		size_t ncap = m->names_cap ? m->names_cap * 2 : 16384;
		char *p;

		while (ncap - m->names_len < len + 1)
			ncap *= 2;
		/* name_off is 32 bits; doubling stops at 2 GiB of names. */
		if (ncap > UINT32_MAX || !(p = realloc(m->names, ncap)))
			return -ENOMEM;
		m->names = p;
		m->names_cap = ncap;
	}
	memcpy(m->names + m->names_len, d->d_name, len + 1);
	m->ents[m->n++] = (struct ent){
		.ino = d->d_ino, .name_off = (uint32_t)m->names_len, .len = (uint16_t)len, .type = d->d_type
	};
	m->names_len += len + 1;
	return 0;
}

int um_lowermap_read(int fd, struct um_lowermap **ret)
{
	_cleanup_free_ char *buf = malloc(READ_BUF);
	struct um_lowermap *m = calloc(1, sizeof(*m));
	int r = buf && m ? 0 : -ENOMEM;

	while (r == 0 && (r = um_sys_getdents(fd, buf, READ_BUF)) > 0) {
		int n = r;

		r = 0;
		for (int off = 0; off < n && r == 0;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);

			off += d->d_reclen;
			if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
				r = add(m, d);
		}
	}
	if (r < 0) {
		um_lowermap_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void um_lowermap_free(struct um_lowermap *m)
{
	if (!m)
		return;
	um_nameset_free(m->index);
	free(m->ents);
	free(m->names);
	free(m);
}

static int build_index(struct um_lowermap *m)
{
	int r = um_nameset_new(m->n, &m->index);

	for (size_t i = 0; r >= 0 && i < m->n; i++)
		r = um_nameset_insert(m->index, m->names + m->ents[i].name_off, m->ents[i].len, (uint32_t)i, NULL);
	if (r < 0)
		m->index = um_nameset_free(m->index);
	return r < 0 ? r : 0;
}

/* Whether name is among count entries from i on, going by step (1 or
 * -1): true and *idx. */
static bool scan(const struct um_lowermap *m, size_t i, size_t count, int step, const char *name, size_t len,
		 uint32_t *idx)
{
	for (; count > 0; count--, i += (size_t)(ssize_t)step) {
		const struct ent *e = &m->ents[i];

		if (e->len == len && memcmp(m->names + e->name_off, name, len) == 0) {
			*idx = (uint32_t)i;
			return true;
		}
	}
	return false;
}

/* Where name is, without the index: within WINDOW entries either side of
 * the last one found (which a listing asks for again when it did not fit
 * in the kernel's buffer; lowermap.h says why either side). While that
 * keeps failing (the orders differ) only every RETRY-th lookup tries it,
 * so that an order that holds again is taken up again. The first name not
 * there is searched for in them all instead, once: a listing that lstats
 * its first fallthrus (stream.c) starts its lookups here past the names
 * the map holds first. */
static bool unindexed(struct um_lowermap *m, const char *name, size_t len, uint32_t *idx)
{
	size_t last = m->next ? m->next - 1 : 0;
	size_t fwd = m->n - last <= WINDOW ? m->n - last : WINDOW + 1;
	size_t bwd = last < WINDOW ? last : WINDOW;
	bool found;

	if (m->n == 0)
		return false;
	found = m->misses % RETRY == 0 &&
		(scan(m, last, fwd, 1, name, len, idx) || scan(m, last - 1, bwd, -1, name, len, idx));
	if (!found && !m->scanned) {
		m->scanned = true;
		found = scan(m, 0, m->n, 1, name, len, idx);
	}
	m->misses = found ? 0 : m->misses + 1;
	return found;
}

int um_lowermap_find(struct um_lowermap *m, const char *name, uint64_t *ino, uint8_t *type)
{
	size_t len = strlen(name);
	uint32_t idx;
	int r = 0;

	if (!unindexed(m, name, len, &idx)) {
		if (!m->index)
			r = build_index(m);
		if (r == 0) {
			m->indexed++;
			r = um_nameset_get(m->index, name, len, &idx);
		}
	}
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	m->next = (size_t)idx + 1;
	*ino = m->ents[idx].ino;
	*type = m->ents[idx].type;
	return 1;
}

size_t um_lowermap_indexed_lookups(const struct um_lowermap *m)
{
	return m->indexed;
}
