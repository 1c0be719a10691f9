#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int path_reserve(struct um_ctl_path *p, size_t more)
{
	size_t need = p->len + more + 1;
	char *nb;

	if (need <= p->cap)
		return 0;
	nb = realloc(p->buf, need * 2);
	if (!nb)
		return -ENOMEM;
	p->buf = nb;
	p->cap = need * 2;
	return 0;
}

int um_ctl_path_push(struct um_ctl_path *p, const char *name, size_t *ret_mark)
{
	size_t nlen = strlen(name);
	int r = path_reserve(p, nlen + 1);

	if (r < 0)
		return r;
	*ret_mark = p->len;
	if (p->len > 0)
		p->buf[p->len++] = '/';
	memcpy(p->buf + p->len, name, nlen + 1);
	p->len += nlen;
	return 0;
}

void um_ctl_path_pop(struct um_ctl_path *p, size_t mark)
{
	p->len = mark;
	if (p->buf)
		p->buf[mark] = '\0';
}

int um_ctl_path_set(struct um_ctl_path *p, const char *s)
{
	size_t len = strlen(s);
	int r;

	p->len = 0;
	r = path_reserve(p, len);
	if (r < 0)
		return r;
	memcpy(p->buf, s, len + 1);
	p->len = len;
	return 0;
}

void um_ctl_path_release(struct um_ctl_path *p)
{
	free(p->buf);
	*p = (struct um_ctl_path){ 0 };
}

bool um_ctl_path_within(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (len == 0)
		return true;
	return !strncmp(path, dir, len) && (path[len] == '\0' || path[len] == '/');
}

size_t um_ctl_escape(const char *s, size_t len, char *buf)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\' || c == '\n' || c == '\t') {
			buf[o++] = '\\';
			buf[o++] = c == '\\' ? '\\' : c == '\n' ? 'n' : 't';
		} else if (c < 0x20 || c == 0x7f) {
			/* Octal, not hex: "\x1bc" would read as one escape in C. */
			buf[o++] = '\\';
			buf[o++] = (char)('0' + (c >> 6));
			buf[o++] = (char)('0' + ((c >> 3) & 7));
			buf[o++] = (char)('0' + (c & 7));
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
	return o;
}

int um_ctl_put(FILE *f, const char *s, bool raw)
{
	size_t len = strlen(s);
	char small[256];
	char *buf = small;
	size_t n;
	int r = 0;

	if (raw)
		return fwrite(s, 1, len, f) == len ? 0 : -EIO;
	if (UM_CTL_ESCAPED_MAX(len) > sizeof(small)) {
		buf = malloc(UM_CTL_ESCAPED_MAX(len));
		if (!buf)
			return -ENOMEM;
	}
	n = um_ctl_escape(s, len, buf);
	if (fwrite(buf, 1, n, f) != n)
		r = -EIO;
	if (buf != small)
		free(buf);
	return r;
}

char *um_ctl_path_join(const char *dir, const char *name)
{
	char *s;

	if (!*dir)
		return strdup(name);
	return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}
