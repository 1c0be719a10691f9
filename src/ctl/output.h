/* How unionctl names things: paths built while walking a tree, and the
 * escaping that keeps one record on one line. Names may hold any byte
 * but '/' and NUL, newlines and tabs included; with -z they are written
 * as they are, otherwise C-style escaped (man/unionctl.8, OUTPUT FORMAT). */
#ifndef UM_CTL_OUTPUT_H
#define UM_CTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A path relative to a tree's root: components joined by '/', "" for
 * the root itself. Always NUL-terminated once anything was pushed. */
struct um_ctl_path {
	char *buf;
	size_t len, cap;
};

/* Append name as one more component; *ret_mark is what to pop back to. */
int um_ctl_path_push(struct um_ctl_path *p, const char *name, size_t *ret_mark);
void um_ctl_path_pop(struct um_ctl_path *p, size_t mark);
/* Replace the whole path by s. */
int um_ctl_path_set(struct um_ctl_path *p, const char *s);
static inline const char *um_ctl_path_str(const struct um_ctl_path *p)
{
	return p->buf ? p->buf : "";
}
void um_ctl_path_release(struct um_ctl_path *p);
/* A new "dir/name", or name when dir is "" (the root); NULL on ENOMEM. */
char *um_ctl_path_join(const char *dir, const char *name);

/* Is `path` equal to `dir` or below it (both relative, "" the root)? */
bool um_ctl_path_within(const char *path, const char *dir);

/* s[0, len) escaped into buf, which holds at least UM_CTL_ESCAPED_MAX(len)
 * bytes: '\\' -> "\\\\", newline -> "\\n", tab -> "\\t", any other byte
 * below 0x20 and 0x7f -> "\\ooo" (three octal digits); every other byte,
 * UTF-8 or not, as it is. Returns the escaped length (buf is
 * NUL-terminated). */
#define UM_CTL_ESCAPED_MAX(len) (4 * (len) + 1)
size_t um_ctl_escape(const char *s, size_t len, char *buf);

/* Write s to f: as it is when raw, escaped otherwise. 0 or -EIO. */
int um_ctl_put(FILE *f, const char *s, bool raw);

#endif
