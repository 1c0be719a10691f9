/* What is checked, in this order (each problem one line on stdout):
 *  - workdir: entries of WORKDIR besides ours, leftovers in work/;
 *  - index/: names that are not index entries, lowerlinks that do not
 *    decode; entries with one link are kept as candidate orphans, and
 *    those the daemon's view of the union reaches are crossed off;
 *  - the upper tree, for signs that the lowerdir list given is not the
 *    one the union is mounted with (complete marks for another list,
 *    fallthrus to layers beyond it): then what is judged by that list
 *    (fallthrus, complete marks, orphans) is reported but not repaired,
 *    unless the user says the list is right (--force-stack);
 *  - every upper directory, walking the union: markers that do not
 *    decode, fallthrus that show nothing (layer beyond the stack, layer
 *    without the name, a layer other than the one a listing would pick),
 *    complete marks of this stack on directories lacking a name visible
 *    from below;
 *  - the candidate orphans no visible name reaches.
 * Names reach index entries in two views, and an entry either reaches is
 * kept: one walk resolves as the daemon does (a fallthru leads to its own
 * layer, where the file the union shows may be one a fresh listing would
 * not pick), before any repair; the walk that checks ignores complete
 * marks (every name a fresh listing would show, so a wrong complete mark
 * cannot hide the name that reaches an entry). Even then an entry is
 * removed only by the daemon's own rule (op_remove.c): one link and no
 * lowerlinks. */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "cleanup.h"
#include "copyup/workdir.h"
#include "ino.h"
#include "marker.h"
#include "names.h"
#include "output.h"
#include "stack.h"
#include "sys.h"
#include "view.h"
#include "walk.h"

#define HIDDEN 0 /* a name's layer in the lowers' listing when a whiteout hides it */
#define VALUE_SHOWN 64 /* bytes of a bad marker value quoted in a message */

/* Candidate orphans carry lowerlinks << 1 | REACHED. */
#define REACHED 1u

struct check {
	const struct um_ctl_set *set;
	bool repair;
	bool force_stack;
	/* The upper looks written for another lowerdir list than the one given:
	 * repairs judged by the list are refused unless force_stack. */
	bool stack_doubtful;
	unsigned problems;
	unsigned repaired;
	struct um_ctl_names orphans; /* index entries with one link, sorted */
	size_t unreached;            /* orphans no name reached yet */
	/* Paths whose failure was reported already (a marker that does not
	 * decode, a name that could not be looked up): a walk meeting them
	 * again says so instead of counting them twice. Few: searched in
	 * order. */
	struct um_ctl_names reported;
	bool walk_incomplete;        /* part of the union was not walked */
	bool daemon_view;            /* walking the daemon's view: only marks orphans reached */
};

/* "AREA:PATH: message", PATH escaped, "." for the area's root. */
static void vline(const char *area, const char *path, const char *prefix, const char *fmt, va_list ap)
{
	printf("%s:", area);
	(void)um_ctl_put(stdout, *path ? path : ".", false);
	printf(": %s", prefix);
	vprintf(fmt, ap);
	putchar('\n');
}

static void problem(struct check *c, const char *area, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct check *c, const char *area, const char *path, const char *fmt, ...)
{
	va_list ap;

	c->problems++;
	va_start(ap, fmt);
	vline(area, path, "", fmt, ap);
	va_end(ap);
}

static void repaired(struct check *c, const char *area, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void repaired(struct check *c, const char *area, const char *path, const char *fmt, ...)
{
	va_list ap;

	c->repaired++;
	va_start(ap, fmt);
	vline(area, path, "repaired: ", fmt, ap);
	va_end(ap);
}

/* A line about a problem already counted (a repair that failed, a
 * name skipped because of a marker reported with its directory). */
static void note(const char *area, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(const char *area, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(area, path, "", fmt, ap);
	va_end(ap);
}

/* A name or value quoted inside a message: escaped like paths, at most
 * max bytes of it. */
struct quoted {
	char s[UM_CTL_ESCAPED_MAX(NAME_MAX) + 4];
};

static const char *quote(struct quoted *q, const char *s, size_t len)
{
	size_t max = NAME_MAX;

	if (len > max) {
		um_ctl_escape(s, max, q->s);
		strcat(q->s, "...");
	} else {
		um_ctl_escape(s, len, q->s);
	}
	return q->s;
}

/* Is path among those already reported? */
static bool was_reported(const struct check *c, const char *path)
{
	for (size_t i = 0; i < c->reported.n; i++)
		if (!strcmp(c->reported.v[i].name, path))
			return true;
	return false;
}

/* Repairs that are judged by the lowerdir list: allowed unless the upper
 * looks made with another list (then a right fallthru would look stale
 * and a reached index entry orphaned), or the user said the list is
 * right. */
static bool list_repairs_allowed(const struct check *c)
{
	return c->repair && (!c->stack_doubtful || c->force_stack);
}

/* ---- workdir ------------------------------------------------------------ */

static int check_workdir_root(struct check *c)
{
	struct um_ctl_names ns = { 0 };
	int r = um_ctl_names_read_dir(&ns, c->set->workdir_fd, 0);

	um_ctl_names_sort(&ns);
	for (size_t i = 0; r == 0 && i < ns.n; i++)
		if (strcmp(ns.v[i].name, UM_WORKDIR_NAME))
			problem(c, "workdir", ns.v[i].name,
				"not unionmount's: the daemon refuses to mount with it in the workdir; move it elsewhere");
	um_ctl_names_release(&ns);
	return r;
}

/* Remove one leftover of work/, as the daemon's purge does at mount
 * (copyup/workdir.c): never into another filesystem. The purge compares
 * with the upper's device; um_workdir_remove_tree() takes the entry's
 * own, so a filesystem mounted on the entry itself is checked here. */
static void remove_leftover(struct check *c, const char *path, const char *name)
{
	struct stat st;
	int e = um_sys_lstatat(c->set->work_fd, name, &st);
	bool mounted_on = e == 0 && st.st_dev != c->set->layers[UM_UPPER].dev;

	if (mounted_on)
		e = -EXDEV;
	else if (e == 0)
		e = um_workdir_remove_tree(c->set->work_fd, name);
	if (e == -EXDEV)
		note("workdir", path, "not removed: another filesystem is mounted %s; unmount it first",
		     mounted_on ? "there" : "inside it");
	else if (e < 0 && e != -ENOENT)
		note("workdir", path, "cannot remove it: %s", strerror(-e));
	else
		repaired(c, "workdir", path, "removed");
}

static int check_work(struct check *c)
{
	struct um_ctl_names ns = { 0 };
	int r;

	if (c->set->work_fd < 0)
		return 0;
	r = um_ctl_names_read_dir(&ns, c->set->work_fd, 0);
	um_ctl_names_sort(&ns);
	for (size_t i = 0; r == 0 && i < ns.n; i++) {
		_cleanup_free_ char *path = um_ctl_path_join(UM_WORKDIR_NAME "/work", ns.v[i].name);

		if (!path) {
			r = -ENOMEM;
			break;
		}
		problem(c, "workdir", path, "leftover temporary (unionmount was stopped while building it)");
		if (c->repair)
			remove_leftover(c, path, ns.v[i].name);
	}
	um_ctl_names_release(&ns);
	return r;
}

static bool is_index_name(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 16 && s[16] == '\0';
}

static int check_index(struct check *c)
{
	struct um_ctl_names ns = { 0 };
	int r;

	if (c->set->index_fd < 0)
		return 0;
	r = um_ctl_names_read_dir(&ns, c->set->index_fd, 0);
	um_ctl_names_sort(&ns);
	for (size_t i = 0; r == 0 && i < ns.n; i++) {
		const char *name = ns.v[i].name;
		_cleanup_free_ char *path = um_ctl_path_join(UM_WORKDIR_NAME "/index", name);
		struct stat st;
		int e;

		if (!path) {
			r = -ENOMEM;
			break;
		}
		if (!is_index_name(name)) {
			problem(c, "workdir", path, "not an index entry (16 hex digits); left alone");
			continue;
		}
		e = um_sys_lstatat(c->set->index_fd, name, &st);
		if (e == -ENOENT)
			continue;
		if (e == 0 && S_ISDIR(st.st_mode)) {
			problem(c, "workdir", path, "a directory, which no index entry is; left alone");
			continue;
		}
		if (e == 0)
			e = um_marker_get_lowerlinks(c->set->index_fd, name);
		if (e == -EIO)
			problem(c, "workdir", path,
				"%s does not decode (a decimal count): the daemon fails to look up the names that reach it (EIO); left alone",
				UM_XATTR_LOWERLINKS);
		else if (e < 0)
			problem(c, "workdir", path, "cannot read it: %s", strerror(-e));
		else if (st.st_nlink == 1)
			/* More links: an upper name has it, and it is no orphan. */
			r = um_ctl_names_add(&c->orphans, name, (uint32_t)e << 1);
	}
	um_ctl_names_release(&ns);
	um_ctl_names_sort(&c->orphans);
	c->unreached = c->orphans.n;
	return r;
}

static void mark_reached(struct check *c, const char *key)
{
	struct um_ctl_name *o = (struct um_ctl_name *)um_ctl_names_find(&c->orphans, key);

	if (o && !(o->val & REACHED)) {
		o->val |= REACHED;
		c->unreached--;
	}
}

static int check_orphans(struct check *c)
{
	for (size_t i = 0; i < c->orphans.n; i++) {
		const struct um_ctl_name *o = &c->orphans.v[i];
		_cleanup_free_ char *path = um_ctl_path_join(UM_WORKDIR_NAME "/index", o->name);
		unsigned lowerlinks = o->val >> 1;
		int e;

		if (!path)
			return -ENOMEM;
		if (o->val & REACHED)
			continue;
		if (lowerlinks > 0) {
			/* The daemon drops an entry only once no name at all is left
			 * (op_remove.c): the lower names it counts may be in a
			 * lowerdir not given, or changed while unmounted. */
			problem(c, "workdir", path,
				"index entry no name of the union reaches, but its %s counts %u name%s in lower directories; kept, as the daemon keeps it",
				UM_XATTR_LOWERLINKS, lowerlinks, lowerlinks == 1 ? "" : "s");
			continue;
		}
		if (c->walk_incomplete) {
			problem(c, "workdir", path,
				"index entry with one link that no name seen reaches; kept: part of the union was not checked");
			continue;
		}
		problem(c, "workdir", path, "orphaned index entry: one link, and no name in the union reaches it");
		if (!list_repairs_allowed(c))
			continue;
		e = um_sys_unlinkat(c->set->index_fd, o->name, 0);
		if (e < 0 && e != -ENOENT)
			note("workdir", path, "cannot remove it: %s", strerror(-e));
		else
			repaired(c, "workdir", path, "removed");
	}
	return 0;
}

/* ---- the lowerdir list -------------------------------------------------- */

/* Does the upper look made with the lowerdir list given? Decided before
 * the walk, so that no repair is made by a list that turns out wrong
 * further down (stack.h). */
static int check_stack(struct check *c)
{
	struct um_ctl_stack_scan s;
	int r = um_ctl_stack_scan(c->set, &s);

	if (r < 0)
		return r;
	if (s.foreign)
		problem(c, "upper", s.first_foreign,
			"marked complete for another list of lower directories (%u director%s in all): is the lowerdir list given the one the union is mounted with?",
			s.foreign, s.foreign == 1 ? "y" : "ies");
	c->stack_doubtful = s.foreign || s.beyond;
	if (c->stack_doubtful && c->repair && !c->force_stack)
		/* Not a summary: printed with -q too. */
		fprintf(stderr,
			"unionctl: check: the lowerdir list given does not look like the one the union is mounted with (complete marks for another list, or fallthrus to layers beyond it); stale fallthrus, complete marks and orphaned index entries are reported, not repaired; if the list is right, repair them with --force-stack\n");
	um_ctl_stack_scan_release(&s);
	return 0;
}

/* ---- markers ------------------------------------------------------------ */

/* The raw value of key, NUL-terminated, quoted for a message. */
static const char *raw_value(int fd, const char *name, const char *key, struct quoted *q)
{
	char v[VALUE_SHOWN + 1];
	int r = um_sys_lgetxattrat(fd, name, key, v, VALUE_SHOWN);

	if (r == -ERANGE)
		return "(too long to show)";
	if (r < 0)
		return "(unreadable)";
	return quote(q, v, (size_t)r);
}

/* A flag's value is one allowed byte; a NUL is none of them (strchr
 * would find the terminator). */
static bool flag_ok(int fd, const char *name, const char *key, const char *allowed)
{
	char v[2];
	int r = um_sys_lgetxattrat(fd, name, key, v, sizeof(v));

	return r == 1 && v[0] != '\0' && strchr(allowed, v[0]);
}

/* Where a marker is: what the daemon does with one that does not decode
 * depends on it. */
struct where {
	bool root;          /* on the upper root itself */
	bool dir;           /* on a directory */
	bool parent_impure; /* in a directory marked impure */
};

/* What the daemon does with a marker of key that does not decode, there
 * (resolve.c, inode.c, readdir/, fs.c). */
static const char *consequence(const char *key, const struct where *w)
{
	const char *unread = "the daemon does not read it there";

	if (!strcmp(key, UM_XATTR_FORMAT) || (w->root && !strcmp(key, UM_XATTR_COMPLETE)))
		return "the daemon refuses to mount the union";
	if (!strcmp(key, UM_XATTR_COMPLETE))
		return w->dir ? "the daemon fails to look it up (EIO)" : unread;
	if (w->root || !w->parent_impure)
		return unread; /* origins and redirects are read only in impure directories */
	if (!strcmp(key, UM_XATTR_REDIRECT))
		return w->dir ? "the daemon fails to look it up (EIO)" : unread;
	if (!strcmp(key, UM_XATTR_ORIGIN))
		return w->dir ? "the daemon lists it with its upper inode number"
			      : "the daemon lists it with its upper inode number and fails to look it up (EIO)";
	return unread; /* lowerlinks: read on index entries only */
}

/* One internal xattr of path (fd/name): report it when it does not
 * decode. Never repaired: what it meant cannot be known. */
static int check_marker(struct check *c, const char *path, int fd, const char *name, const char *key,
			const struct where *w)
{
	struct quoted q;
	char buf[PATH_MAX];
	uint64_t v;
	int r = 0;

	if (!strcmp(key, UM_XATTR_OPAQUE)) {
		/* "x" is kernel overlayfs's "holds xwhiteouts", not opaque. */
		if (!flag_ok(fd, name, key, "yx"))
			problem(c, "upper", path, "%s is '%s', not y; read as not opaque", key, raw_value(fd, name, key, &q));
		return 0;
	}
	if (!strcmp(key, UM_XATTR_IMPURE)) {
		if (!flag_ok(fd, name, key, "y"))
			problem(c, "upper", path, "%s is '%s', not y; read as not impure", key, raw_value(fd, name, key, &q));
		return 0;
	}
	if (!strcmp(key, UM_XATTR_METACOPY)) {
		if (!flag_ok(fd, name, key, "y"))
			problem(c, "upper", path, "%s is '%s', not y; read as not metacopy: its upper copy's bytes are shown",
				key, raw_value(fd, name, key, &q));
		return 0;
	}
	if (!strcmp(key, UM_XATTR_REDIRECT)) {
		r = um_marker_get_redirect(fd, name, buf, sizeof(buf));
		/* Only slashes: no directory at all, which the daemon's lookup
		 * of the lower path answers with EIO (resolve.c). */
		if (r > 0 && strspn(buf, "/") == (size_t)r)
			r = -EIO;
	} else if (!strcmp(key, UM_XATTR_ORIGIN)) {
		r = um_marker_get_origin(fd, name, &v);
	} else if (!strcmp(key, UM_XATTR_COMPLETE)) {
		r = um_marker_is_complete(fd, name, 0);
	} else if (!strcmp(key, UM_XATTR_LOWERLINKS)) {
		r = um_marker_get_lowerlinks(fd, name);
	} else if (!strcmp(key, UM_XATTR_FORMAT) && w->root) {
		r = c->set->format_damaged ? -EIO : 0; /* decoded when the set was opened */
	}
	if (r == -EIO) {
		problem(c, "upper", path, "%s is '%s', which does not decode; %s; left alone", key,
			raw_value(fd, name, key, &q), consequence(key, w));
		return was_reported(c, path) ? 0 : um_ctl_names_add(&c->reported, path, 0);
	}
	if (r < 0)
		problem(c, "upper", path, "cannot read %s: %s", key, strerror(-r));
	return 0;
}

static int check_markers(struct check *c, const char *path, int fd, const char *name, const struct where *w)
{
	_cleanup_free_ char *list = NULL;
	int r = 0, len = um_sys_llistxattrat(fd, name, NULL, 0);

	if (len == -ENOTSUP || len == 0)
		return 0;
	if (len > 0) {
		list = malloc((size_t)len);
		if (!list)
			return -ENOMEM;
		len = um_sys_llistxattrat(fd, name, list, (size_t)len);
	}
	if (len == -ENOENT)
		return 0;
	if (len < 0) {
		problem(c, "upper", path, "cannot list its extended attributes: %s", strerror(-len));
		return 0;
	}
	for (size_t at = 0; at < (size_t)len && r == 0; at += strlen(list + at) + 1)
		if (um_marker_is_internal_xattr(list + at))
			r = check_marker(c, path, fd, name, list + at, w);
	return r;
}

/* ---- upper directories -------------------------------------------------- */

/* The names the lower parts of u show, as a merge lists them: the first
 * part having a name decides (a whiteout hides it, a fallthru there is
 * passed over); val = its layer, or HIDDEN. Sorted. */
static int list_below(const struct um_ctl_dir *u, struct um_ctl_names *ret)
{
	struct um_ctl_names all = { 0 };
	int r = 0;

	for (uint16_t i = 1; i < u->n && r == 0; i++)
		r = um_ctl_names_read_dir(&all, u->parts[i].fd, (uint32_t)i << 8);
	um_ctl_names_sort(&all);
	for (size_t j = 0; j < all.n && r == 0;) {
		const char *name = all.v[j].name;
		bool decided = false;

		for (; j < all.n && !strcmp(all.v[j].name, name); j++) {
			unsigned type = all.v[j].val & 0xff, i = all.v[j].val >> 8;
			uint32_t layer = u->parts[i].layer;
			struct stat st;

			if (decided)
				continue;
			if (type == DT_CHR || type == DT_UNKNOWN) {
				r = um_sys_lstatat(u->parts[i].fd, name, &st);
				if (r == -ENOENT) {
					r = 0;
					continue;
				}
				if (r < 0)
					break;
				if (um_marker_fallthru_layer(&st))
					continue;
				if (um_marker_is_whiteout(&st))
					layer = HIDDEN;
			}
			r = um_ctl_names_add(ret, name, layer);
			decided = true;
		}
	}
	um_ctl_names_release(&all);
	um_ctl_names_sort(ret);
	return r;
}

enum ft_state {
	FT_OK,
	FT_STALE, /* shows nothing right: removing it is the repair */
	FT_KEPT,  /* would be stale, but what it shows is a change made through the union */
};

/* Does the object a fallthru leads to (st, in layer) have its copy in the
 * index: a lower file with several names, changed through the union?
 * Then the union shows that copy by this fallthru (resolve.c), and a
 * listing that picked another layer would hide the change. */
static bool shows_index_copy(const struct check *c, unsigned layer, const struct stat *st, char key[17])
{
	struct stat ist;
	uint64_t ino;

	if (S_ISDIR(st->st_mode) || st->st_nlink < 2 || c->set->index_fd < 0)
		return false;
	ino = um_ino_encode(layer, st->st_ino, st->st_dev, c->set->layers[layer].dev);
	(void)snprintf(key, 17, "%016llx", (unsigned long long)ino);
	/* An error other than "absent" keeps it: better a fallthru left
	 * than a change hidden. */
	return um_sys_lstatat(c->set->index_fd, key, &ist) != -ENOENT;
}

/* Whether the fallthru at u/name (to layer) shows something right; why
 * not in why. */
static enum ft_state stale_fallthru(const struct check *c, const struct um_ctl_dir *u,
				    const struct um_ctl_names *below, const char *name, unsigned layer, char *why,
				    size_t whylen, int *ret_err)
{
	const struct um_ctl_name *b;
	unsigned n = c->set->n_layers - 1;
	struct stat st;
	char key[17];
	int k = -1, r;

	*ret_err = 0;
	if (layer > n) {
		snprintf(why, whylen, "fallthru to layer %u, but there %s %u lowerdir%s", layer, n == 1 ? "is" : "are", n,
			 n == 1 ? "" : "s");
		return FT_STALE;
	}
	for (uint16_t i = 1; i < u->n && k < 0; i++)
		if (u->parts[i].layer == layer)
			k = i;
	if (k < 0) {
		snprintf(why, whylen, "fallthru to layer %u, which has no directory here", layer);
		return FT_STALE;
	}
	r = um_sys_lstatat(u->parts[k].fd, name, &st);
	if (r == -ENOENT || (r == 0 && (um_marker_is_whiteout(&st) || um_marker_fallthru_layer(&st)))) {
		snprintf(why, whylen, "fallthru to layer %u, which no longer has it", layer);
		return FT_STALE;
	}
	if (r < 0) {
		*ret_err = r;
		return FT_OK;
	}
	b = um_ctl_names_find(below, name);
	if (b && b->val == layer)
		return FT_OK;
	if (!b || b->val == HIDDEN)
		snprintf(why, whylen, "fallthru to layer %u, but a whiteout above that layer hides it", layer);
	else
		snprintf(why, whylen, "fallthru to layer %u, but layer %u shows the name now", layer, b->val);
	if (!shows_index_copy(c, layer, &st, key))
		return FT_STALE;
	snprintf(why + strlen(why), whylen - strlen(why),
		 "; kept: by it the union shows index entry %s, a file changed through the union, which removing it would hide",
		 key);
	return FT_KEPT;
}

/* The complete mark of this stack on u: a name visible from below that
 * upper lacks makes it wrong. 1 when wrong (reported), 0, or -errno. */
static int check_complete(struct check *c, const char *upath, const struct um_ctl_dir *u,
			  const struct um_ctl_names *upper, const struct um_ctl_names *below)
{
	const struct um_ctl_name *first = NULL;
	size_t missing = 0;
	struct quoted q;

	if (!u->complete)
		return 0;
	for (size_t i = 0; i < below->n; i++)
		if (below->v[i].val != HIDDEN && !um_ctl_names_find(upper, below->v[i].name)) {
			first = first ? first : &below->v[i];
			missing++;
		}
	if (!missing)
		return 0;
	problem(c, "upper", upath,
		"marked complete, but %zu name%s visible from below %s no entry in upper (first: '%s', from layer %u)",
		missing, missing == 1 ? "" : "s", missing == 1 ? "has" : "have",
		quote(&q, first->name, strlen(first->name)), first->val);
	return 1;
}

/* Remove the stale fallthrus of u and its complete mark (whichever stack
 * it is for: the fallthrus may have counted for it), keeping the
 * directory's times as a listing keeps them. */
static void repair_dir(struct check *c, const char *upath, const struct um_ctl_dir *u,
		       const struct um_ctl_names *stale)
{
	int fd = u->parts[0].fd;
	struct stat before;
	int r = um_sys_fstat(fd, &before);

	for (size_t i = 0; r == 0 && i < stale->n; i++) {
		_cleanup_free_ char *path = um_ctl_path_join(upath, stale->v[i].name);
		int e = um_sys_unlinkat(fd, stale->v[i].name, 0);

		if (!path)
			continue;
		if (e < 0 && e != -ENOENT)
			note("upper", path, "cannot remove the fallthru: %s", strerror(-e));
		else
			repaired(c, "upper", path, "stale fallthru removed");
	}
	if (r == 0) {
		int e = um_sys_lremovexattrat(fd, "", UM_XATTR_COMPLETE);

		if (e == 0)
			repaired(c, "upper", upath, "complete mark removed (the next listing fills the directory again)");
		else if (e != -ENODATA)
			note("upper", upath, "cannot remove the complete mark: %s", strerror(-e));
	}
	if (r == 0)
		r = um_sys_utimensat(fd, "", (struct timespec[2]){ before.st_atim, before.st_mtim });
	if (r < 0)
		note("upper", upath, "cannot keep the directory's times: %s", strerror(-r));
}

/* One entry of an upper directory: its markers, and if it is a fallthru,
 * whether it still shows something (added to stale if not; *kept set when
 * one must stay). */
static int check_entry(struct check *c, const char *upath, const struct um_ctl_dir *u,
		       const struct um_ctl_names *below, const struct um_ctl_name *e, struct um_ctl_names *stale,
		       bool *kept)
{
	_cleanup_free_ char *path = um_ctl_path_join(upath, e->name);
	int fd = u->parts[0].fd;
	unsigned type = e->val & 0xff;
	struct where w = { .dir = type == DT_DIR, .parent_impure = u->impure };
	struct stat st;
	int r;

	if (!path)
		return -ENOMEM;
	if (type == DT_CHR || type == DT_UNKNOWN) {
		r = um_sys_lstatat(fd, e->name, &st);
		if (r == -ENOENT)
			return 0;
		if (r < 0) {
			problem(c, "upper", path, "cannot stat it: %s", strerror(-r));
			return 0;
		}
		w.dir = S_ISDIR(st.st_mode);
		if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && st.st_rdev != 0) {
			unsigned layer = um_marker_fallthru_layer(&st);
			enum ft_state fs;
			char why[256];
			int err;

			if (!layer) {
				problem(c, "upper", path,
					"character device 0:%u is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone",
					minor(st.st_rdev));
			} else if ((fs = stale_fallthru(c, u, below, e->name, layer, why, sizeof(why), &err)) != FT_OK) {
				problem(c, "upper", path, "%s", why);
				*kept |= fs == FT_KEPT;
				r = fs == FT_STALE ? um_ctl_names_add(stale, e->name, 0) : 0;
				if (r < 0)
					return r;
			} else if (err < 0) {
				problem(c, "upper", path, "cannot check its fallthru: %s", strerror(-err));
			}
		}
	}
	return check_markers(c, path, fd, e->name, &w);
}

static int check_upper_dir(struct check *c, const char *upath, const struct um_ctl_dir *u)
{
	struct um_ctl_names upper = { 0 }, below = { 0 }, stale = { 0 };
	bool kept = false;
	int wrong = 0, mark = 0;
	int r;

	r = um_ctl_names_read_dir(&upper, u->parts[0].fd, 0);
	if (r == 0)
		r = list_below(u, &below);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		problem(c, "upper", upath, "cannot list it: %s; not checked", strerror(-r));
		c->walk_incomplete = true;
		r = 0;
		goto out;
	}
	um_ctl_names_sort(&upper);
	if (!*upath)
		r = check_markers(c, upath, u->parts[0].fd, "", &(struct where){ .root = true, .dir = true });
	for (size_t i = 0; r == 0 && i < upper.n; i++)
		r = check_entry(c, upath, u, &below, &upper.v[i], &stale, &kept);
	if (r == 0)
		wrong = check_complete(c, upath, u, &upper, &below);
	if (r == 0)
		mark = um_ctl_complete_mark(c->set, u->parts[0].fd, "");
	/* A complete mark for another stack is only removed when the user
	 * says this list is right (it is reported once, in check_stack). */
	if (r < 0 || !list_repairs_allowed(c) || !(stale.n || wrong || mark == UM_CTL_COMPLETE_FOREIGN))
		goto out;
	if (kept)
		/* Without its complete mark the directory would be listed
		 * afresh, and the fallthru kept would no longer count. */
		note("upper", upath, "not repaired: a fallthru in it must stay, and with it the complete mark (see above)");
	else
		repair_dir(c, upath, u, &stale);
out:
	um_ctl_names_release(&upper);
	um_ctl_names_release(&below);
	um_ctl_names_release(&stale);
	return r;
}

/* ---- the walks ---------------------------------------------------------- */

static int on_dir(void *ctx, const char *upath, const struct um_ctl_dir *u, const struct um_ctl_dir *b)
{
	(void)b;
	if (!u || u->n == 0 || u->parts[0].layer != UM_UPPER)
		return 0;
	return check_upper_dir(ctx, upath, u);
}

static int on_entry(void *ctx, const char *upath, const char *bpath, const struct um_ctl_obj *u,
		    const struct um_ctl_obj *b, const char *moved_from)
{
	struct check *c = ctx;

	(void)upath;
	(void)bpath;
	(void)b;
	(void)moved_from;
	if (u->indexed)
		mark_reached(c, u->index_key);
	if (u->kind != UM_CTL_DIR)
		return 0;
	/* Below directories without an upper part there are no markers;
	 * they are walked only to find the names that reach the index. */
	if (c->daemon_view)
		return c->unreached > 0;
	return u->dir.parts[0].layer == UM_UPPER || c->unreached > 0;
}

static int on_error(void *ctx, const char *upath, int err)
{
	struct check *c = ctx;

	c->walk_incomplete = true;
	/* The daemon's view is walked first, only to find names: what it
	 * cannot resolve the checking walk meets and reports. */
	if (c->daemon_view)
		return 0;
	if (was_reported(c, upath)) {
		note("upper", upath, "skipped: a marker on it does not decode (see above)");
		return 0;
	}
	if (err == -EBADMSG)
		problem(c, "upper", upath, "a marker on the way does not decode; not checked below");
	else
		problem(c, "upper", upath, "cannot look it up: %s; not checked below", strerror(-err));
	return um_ctl_names_add(&c->reported, upath, 0);
}

/* The daemon's own view: complete marks honoured, so a fallthru leads to
 * its layer even where a fresh listing would pick another. Walked before
 * the checking walk, whose repairs remove fallthrus and complete marks:
 * what the union shows before them is what counts. */
static int walk_daemon_view(struct check *c)
{
	static const struct um_ctl_walk_ops ops = { .entry = on_entry, .error = on_error };
	struct um_ctl_walk w = { .set = c->set, .ops = &ops, .ctx = c };
	struct um_ctl_dir root = { 0 };
	int r = um_ctl_root(c->set, true, 0, &root);

	c->daemon_view = true;
	if (r == -EBADMSG) {
		/* The root's complete mark does not decode (the checking walk
		 * reports it): the daemon refuses to mount, this view is empty. */
		c->walk_incomplete = true;
		r = 0;
	} else if (r == 0) {
		r = um_ctl_walk_run(&w, &root, NULL);
	}
	c->daemon_view = false;
	um_ctl_dir_release(&root);
	return r;
}

int um_ctl_check(const struct um_ctl_set *set, const struct um_ctl_check_opts *opts)
{
	static const struct um_ctl_walk_ops ops = { .entry = on_entry, .dir = on_dir, .error = on_error };
	struct check c = { .set = set, .repair = opts->repair, .force_stack = opts->force_stack };
	struct um_ctl_walk w = { .set = set, .ops = &ops, .ctx = &c, .flags = UM_CTL_NO_COMPLETE };
	struct um_ctl_dir root = { 0 };
	int r = 0;

	if (set->workdir_fd >= 0)
		r = check_workdir_root(&c);
	if (r == 0)
		r = check_work(&c);
	if (r == 0)
		r = check_index(&c);
	if (r == 0 && c.unreached > 0)
		r = walk_daemon_view(&c);
	if (r == 0)
		r = check_stack(&c);
	if (r == 0)
		r = um_ctl_root(set, true, UM_CTL_NO_COMPLETE, &root);
	if (r == 0)
		r = um_ctl_walk_run(&w, &root, NULL);
	if (r == 0)
		r = check_orphans(&c);
	um_ctl_dir_release(&root);
	um_ctl_names_release(&c.orphans);
	um_ctl_names_release(&c.reported);
	if (fflush(stdout) != 0 || ferror(stdout))
		r = r < 0 ? r : -EIO;
	if (r < 0) {
		fprintf(stderr, "unionctl: check: %s\n", strerror(-r));
		return 2;
	}
	if (!opts->quiet) {
		if (c.problems == 0)
			fprintf(stderr, "no problems found\n");
		else if (opts->repair)
			fprintf(stderr, "%u problem%s found, %u repair%s made\n", c.problems, c.problems == 1 ? "" : "s",
				c.repaired, c.repaired == 1 ? "" : "s");
		else
			fprintf(stderr, "%u problem%s found\n", c.problems, c.problems == 1 ? "" : "s");
	}
	return c.problems ? 1 : 0;
}
