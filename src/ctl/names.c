#include "names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sys.h"

#define DENTS_BUF (64 * 1024)

int um_ctl_names_add(struct um_ctl_names *ns, const char *name, uint32_t val)
{
	char *copy;

	if (ns->n == ns->cap) {
		size_t ncap = ns->cap ? ns->cap * 2 : 64;
		struct um_ctl_name *nv = realloc(ns->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		ns->v = nv;
		ns->cap = ncap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	ns->v[ns->n] = (struct um_ctl_name){ .name = copy, .val = val, .order = (uint32_t)ns->n };
	ns->n++;
	return 0;
}

int um_ctl_names_read_dir(struct um_ctl_names *ns, int dirfd, uint32_t val_or)
{
	_cleanup_close_ int fd = um_sys_openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
	_cleanup_free_ char *buf = malloc(DENTS_BUF);
	int n, r = 0;

	if (fd < 0)
		return fd;
	if (!buf)
		return -ENOMEM;
	while (r == 0 && (n = um_sys_getdents(fd, buf, DENTS_BUF)) != 0) {
		if (n < 0)
			return n;
		for (int off = 0; off < n && r == 0;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			r = um_ctl_names_add(ns, d->d_name, d->d_type | val_or);
		}
	}
	return r;
}

static int cmp_name(const void *a, const void *b)
{
	const struct um_ctl_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

void um_ctl_names_sort(struct um_ctl_names *ns)
{
	if (ns->n > 1)
		qsort(ns->v, ns->n, sizeof(*ns->v), cmp_name);
}

void um_ctl_names_uniq(struct um_ctl_names *ns)
{
	size_t o = 0;

	for (size_t i = 0; i < ns->n; i++) {
		if (o > 0 && !strcmp(ns->v[o - 1].name, ns->v[i].name)) {
			free(ns->v[i].name);
			continue;
		}
		ns->v[o++] = ns->v[i];
	}
	ns->n = o;
}

const struct um_ctl_name *um_ctl_names_find(const struct um_ctl_names *ns, const char *name)
{
	size_t lo = 0, hi = ns->n;

	/* Lower bound, so that among equal names the first added is found. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ns->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ns->n && !strcmp(ns->v[lo].name, name) ? &ns->v[lo] : NULL;
}

void um_ctl_names_release(struct um_ctl_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].name);
	free(ns->v);
	*ns = (struct um_ctl_names){ 0 };
}
