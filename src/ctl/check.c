/* What is checked, in this order (each problem one line on stdout):
 *  - workdir: entries of WORKDIR besides ours, leftovers in work/;
 *  - index/: names that are not index entries, lowerlinks that do not
 *    decode; entries with one link are kept as candidate orphans;
 *  - every upper directory, walking the union: markers that do not
 *    decode, fallthrus that show nothing (layer beyond the stack, layer
 *    without the name, a layer other than the one a listing would pick),
 *    complete marks of this stack on directories lacking a name visible
 *    from below;
 *  - the candidate orphans no visible name reaches.
 * The walk ignores complete marks, so it sees every name a fresh listing
 * would: an index entry is never called orphaned because a wrong complete
 * mark hides the name that reaches it. */
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
#include "marker.h"
#include "names.h"
#include "output.h"
#include "sys.h"
#include "view.h"
#include "walk.h"

#define HIDDEN 0 /* a name's layer in the lowers' listing when a whiteout hides it */
#define VALUE_SHOWN 64 /* bytes of a bad marker value quoted in a message */

struct check {
	const struct um_ctl_set *set;
	bool repair;
	unsigned problems;
	unsigned repaired;
	struct um_ctl_names orphans; /* index entries with one link; val 1 once a name reaches one */
	bool walk_incomplete;        /* part of the union was not walked */
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

static char *join(const char *dir, const char *name)
{
	char *s;

	if (!*dir)
		return strdup(name);
	return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
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

static int check_work(struct check *c)
{
	struct um_ctl_names ns = { 0 };
	int r;

	if (c->set->work_fd < 0)
		return 0;
	r = um_ctl_names_read_dir(&ns, c->set->work_fd, 0);
	um_ctl_names_sort(&ns);
	for (size_t i = 0; r == 0 && i < ns.n; i++) {
		_cleanup_free_ char *path = join(UM_WORKDIR_NAME "/work", ns.v[i].name);
		int e;

		if (!path) {
			r = -ENOMEM;
			break;
		}
		problem(c, "workdir", path, "leftover temporary (unionmount was stopped while building it)");
		if (!c->repair)
			continue;
		e = um_workdir_remove_tree(c->set->work_fd, ns.v[i].name);
		if (e < 0)
			note("workdir", path, "cannot remove it: %s", strerror(-e));
		else
			repaired(c, "workdir", path, "removed");
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
		_cleanup_free_ char *path = join(UM_WORKDIR_NAME "/index", name);
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
			problem(c, "workdir", path, "%s does not decode (a decimal count); left alone",
				UM_XATTR_LOWERLINKS);
		else if (e < 0)
			problem(c, "workdir", path, "cannot read it: %s", strerror(-e));
		else if (st.st_nlink == 1)
			r = um_ctl_names_add(&c->orphans, name, 0);
	}
	um_ctl_names_release(&ns);
	um_ctl_names_sort(&c->orphans);
	return r;
}

static int check_orphans(struct check *c)
{
	for (size_t i = 0; i < c->orphans.n; i++) {
		_cleanup_free_ char *path = join(UM_WORKDIR_NAME "/index", c->orphans.v[i].name);
		int e;

		if (!path)
			return -ENOMEM;
		if (c->orphans.v[i].val)
			continue;
		if (c->walk_incomplete) {
			problem(c, "workdir", path,
				"index entry with one link that no name seen reaches; kept: part of the union was not checked");
			continue;
		}
		problem(c, "workdir", path, "orphaned index entry: one link, and no name in the union reaches it");
		if (!c->repair)
			continue;
		e = um_sys_unlinkat(c->set->index_fd, c->orphans.v[i].name, 0);
		if (e < 0 && e != -ENOENT)
			note("workdir", path, "cannot remove it: %s", strerror(-e));
		else
			repaired(c, "workdir", path, "removed");
	}
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

static bool flag_ok(int fd, const char *name, const char *key, const char *allowed)
{
	char v[2];
	int r = um_sys_lgetxattrat(fd, name, key, v, sizeof(v));

	return r == 1 && strchr(allowed, v[0]);
}

static bool format_ok(int fd)
{
	char v[16];
	char *end;
	long ver;
	int r = um_sys_lgetxattrat(fd, "", UM_XATTR_FORMAT, v, sizeof(v) - 1);

	if (r < 0)
		return r == -ENODATA;
	v[r] = '\0';
	ver = strtol(v, &end, 10);
	return end != v && *end == '\0' && ver >= 1 && ver <= UM_FORMAT_VERSION;
}

/* One internal xattr of path (fd/name): report it when it does not
 * decode. Never repaired: what it meant cannot be known. */
static void check_marker(struct check *c, const char *path, int fd, const char *name, const char *key)
{
	struct quoted q;
	char buf[PATH_MAX];
	uint64_t v;
	int r = 0;

	if (!strcmp(key, UM_XATTR_OPAQUE)) {
		/* "x" is kernel overlayfs's "holds xwhiteouts", not opaque. */
		if (!flag_ok(fd, name, key, "yx"))
			problem(c, "upper", path, "%s is '%s', not y; read as not opaque", key, raw_value(fd, name, key, &q));
		return;
	}
	if (!strcmp(key, UM_XATTR_IMPURE)) {
		if (!flag_ok(fd, name, key, "y"))
			problem(c, "upper", path, "%s is '%s', not y; read as not impure", key, raw_value(fd, name, key, &q));
		return;
	}
	if (!strcmp(key, UM_XATTR_REDIRECT))
		r = um_marker_get_redirect(fd, name, buf, sizeof(buf));
	else if (!strcmp(key, UM_XATTR_ORIGIN))
		r = um_marker_get_origin(fd, name, &v);
	else if (!strcmp(key, UM_XATTR_COMPLETE))
		r = um_marker_is_complete(fd, name, 0);
	else if (!strcmp(key, UM_XATTR_LOWERLINKS))
		r = um_marker_get_lowerlinks(fd, name);
	else if (!strcmp(key, UM_XATTR_FORMAT) && !*name && !*path)
		r = format_ok(fd) ? 0 : -EIO;
	if (r == -EIO)
		problem(c, "upper", path, "%s is '%s', which does not decode; the daemon fails with EIO there; left alone",
			key, raw_value(fd, name, key, &q));
	else if (r < 0)
		problem(c, "upper", path, "cannot read %s: %s", key, strerror(-r));
}

static int check_markers(struct check *c, const char *path, int fd, const char *name)
{
	_cleanup_free_ char *list = NULL;
	int len = um_sys_llistxattrat(fd, name, NULL, 0);

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
	for (size_t at = 0; at < (size_t)len; at += strlen(list + at) + 1)
		if (um_marker_is_internal_xattr(list + at))
			check_marker(c, path, fd, name, list + at);
	return 0;
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

/* Why the fallthru at u/name (to layer) shows nothing right, or NULL
 * when it is fine. */
static const char *stale_fallthru(const struct check *c, const struct um_ctl_dir *u, const struct um_ctl_names *below,
				  const char *name, unsigned layer, char *why, size_t whylen, int *ret_err)
{
	const struct um_ctl_name *b;
	struct stat st;
	int k = -1, r;

	*ret_err = 0;
	if (layer >= c->set->n_layers) {
		snprintf(why, whylen, "fallthru to layer %u, but there are %u lowerdirs", layer, c->set->n_layers - 1);
		return why;
	}
	for (uint16_t i = 1; i < u->n && k < 0; i++)
		if (u->parts[i].layer == layer)
			k = i;
	if (k < 0) {
		snprintf(why, whylen, "fallthru to layer %u, which has no directory here", layer);
		return why;
	}
	r = um_sys_lstatat(u->parts[k].fd, name, &st);
	if (r == -ENOENT || (r == 0 && (um_marker_is_whiteout(&st) || um_marker_fallthru_layer(&st)))) {
		snprintf(why, whylen, "fallthru to layer %u, which no longer has it", layer);
		return why;
	}
	if (r < 0) {
		*ret_err = r;
		return NULL;
	}
	b = um_ctl_names_find(below, name);
	if (!b || b->val == HIDDEN) {
		snprintf(why, whylen, "fallthru to layer %u, but a whiteout above that layer hides it", layer);
		return why;
	}
	if (b->val != layer) {
		snprintf(why, whylen, "fallthru to layer %u, but layer %u shows the name now", layer, b->val);
		return why;
	}
	return NULL;
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
		_cleanup_free_ char *path = join(upath, stale->v[i].name);
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
 * whether it still shows something (added to stale if not). */
static int check_entry(struct check *c, const char *upath, const struct um_ctl_dir *u,
		       const struct um_ctl_names *below, const struct um_ctl_name *e, struct um_ctl_names *stale)
{
	_cleanup_free_ char *path = join(upath, e->name);
	int fd = u->parts[0].fd;
	unsigned type = e->val & 0xff;
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
		if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && st.st_rdev != 0) {
			unsigned layer = um_marker_fallthru_layer(&st);
			char why[160];
			int err;

			if (!layer) {
				problem(c, "upper", path,
					"character device 0:%u is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone",
					minor(st.st_rdev));
			} else if (stale_fallthru(c, u, below, e->name, layer, why, sizeof(why), &err)) {
				problem(c, "upper", path, "%s", why);
				r = um_ctl_names_add(stale, e->name, 0);
				if (r < 0)
					return r;
			} else if (err < 0) {
				problem(c, "upper", path, "cannot check its fallthru: %s", strerror(-err));
			}
		}
	}
	return check_markers(c, path, fd, e->name);
}

static int check_upper_dir(struct check *c, const char *upath, const struct um_ctl_dir *u)
{
	struct um_ctl_names upper = { 0 }, below = { 0 }, stale = { 0 };
	int wrong = 0;
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
		r = check_markers(c, upath, u->parts[0].fd, "");
	for (size_t i = 0; r == 0 && i < upper.n; i++)
		r = check_entry(c, upath, u, &below, &upper.v[i], &stale);
	if (r == 0)
		wrong = check_complete(c, upath, u, &upper, &below);
	if (r == 0 && c->repair && (stale.n || wrong))
		repair_dir(c, upath, u, &stale);
out:
	um_ctl_names_release(&upper);
	um_ctl_names_release(&below);
	um_ctl_names_release(&stale);
	return r;
}

/* ---- the walk ----------------------------------------------------------- */

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
	if (u->indexed) {
		struct um_ctl_name *o = (struct um_ctl_name *)um_ctl_names_find(&c->orphans, u->index_key);

		if (o)
			o->val = 1;
	}
	if (u->kind != UM_CTL_DIR)
		return 0;
	/* Below directories without an upper part there are no markers;
	 * they are walked only to find the names that reach the index. */
	return u->dir.parts[0].layer == UM_UPPER || c->orphans.n > 0;
}

static int on_error(void *ctx, const char *upath, int err)
{
	struct check *c = ctx;

	c->walk_incomplete = true;
	if (err == -EBADMSG)
		/* Its marker was reported (and counted) with its directory. */
		note("upper", upath, "skipped: a marker on it does not decode (see above)");
	else
		problem(c, "upper", upath, "cannot look it up: %s; not checked below", strerror(-err));
	return 0;
}

int um_ctl_check(const struct um_ctl_set *set, const struct um_ctl_check_opts *opts)
{
	static const struct um_ctl_walk_ops ops = { .entry = on_entry, .dir = on_dir, .error = on_error };
	struct check c = { .set = set, .repair = opts->repair };
	struct um_ctl_walk w = { .set = set, .ops = &ops, .ctx = &c, .flags = UM_CTL_NO_COMPLETE };
	struct um_ctl_dir root = { 0 };
	int r = 0;

	if (set->workdir_fd >= 0)
		r = check_workdir_root(&c);
	if (r == 0)
		r = check_work(&c);
	if (r == 0)
		r = check_index(&c);
	if (r == 0)
		r = um_ctl_root(set, true, UM_CTL_NO_COMPLETE, &root);
	if (r == 0)
		r = um_ctl_walk_run(&w, &root, NULL);
	if (r == 0)
		r = check_orphans(&c);
	um_ctl_dir_release(&root);
	um_ctl_names_release(&c.orphans);
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
