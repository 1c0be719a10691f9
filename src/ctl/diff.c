/* The union compared with the lowers' own view, path by path. Records are
 * kept until the walk ends: a directory's move (R) may be met after the
 * deletions it explains at its old place, which are then dropped. */
#include "diff.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "marker.h"
#include "names.h"
#include "output.h"
#include "sys.h"
#include "walk.h"

struct record {
	char type;     /* 'A', 'M', 'm', 'D', 'R' */
	char *path;    /* in the union */
	char *other;   /* R: where it came from; D: the path in the lowers */
};

struct diff {
	const struct um_ctl_set *set;
	struct record *v;
	size_t n, cap;
	unsigned unjudged; /* paths named on stderr instead */
};

static int add(struct diff *d, char type, const char *path, const char *other)
{
	struct record *rec;

	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 256;
		struct record *nv = realloc(d->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->v = nv;
		d->cap = ncap;
	}
	rec = &d->v[d->n];
	*rec = (struct record){ .type = type, .path = strdup(path), .other = other ? strdup(other) : NULL };
	if (!rec->path || (other && !rec->other)) {
		free(rec->path);
		free(rec->other);
		return -ENOMEM;
	}
	d->n++;
	return 0;
}

static void warn_path(const char *path, const char *fmt, const char *detail)
{
	fputs("unionctl: ", stderr);
	(void)um_ctl_put(stderr, path, false);
	fputs(": ", stderr);
	fprintf(stderr, fmt, detail);
	fputc('\n', stderr);
}

static int on_error(void *ctx, const char *upath, int err)
{
	struct diff *d = ctx;

	d->unjudged++;
	if (err == -EBADMSG)
		warn_path(upath, "%s", "a marker on the way does not decode; not compared (see unionctl check)");
	else
		warn_path(upath, "cannot read it: %s; not compared", strerror(-err));
	return 0;
}

/* Nothing below can differ: the same lower parts on both sides, and no
 * lower file below may have its copy in the index. */
static bool same_subtree(const struct um_ctl_set *set, const struct um_ctl_obj *u, const struct um_ctl_obj *b)
{
	return !set->index_used && u->kind == UM_CTL_DIR && b->kind == UM_CTL_DIR && u->dir.n > 0 &&
	       u->dir.parts[0].layer != UM_UPPER && um_ctl_dir_same_parts(&u->dir, &b->dir);
}

static int on_entry(void *ctx, const char *upath, const char *bpath, const struct um_ctl_obj *u,
		    const struct um_ctl_obj *b, const char *moved_from)
{
	struct diff *d = ctx;
	int r;

	if (u->lost_layer) {
		char detail[96];

		/* The daemon lists the name but fails its lookup with EIO. */
		(void)snprintf(detail, sizeof(detail), "its fallthru names layer %u, which does not have it",
			       u->lost_layer);
		d->unjudged++;
		warn_path(upath, "%s; not compared (see unionctl check)", detail);
		return 0;
	}
	if (u->damaged) {
		d->unjudged++;
		warn_path(upath, "%s", "a marker on it does not decode; not compared (see unionctl check)");
		return 0;
	}
	if (moved_from) {
		r = add(d, 'R', upath, moved_from);
		return r < 0 ? r : 1;
	}
	if (b->kind == UM_CTL_ABSENT) {
		r = add(d, 'A', upath, NULL);
		return r < 0 ? r : 1;
	}
	if (u->kind == UM_CTL_ABSENT) {
		r = add(d, 'D', upath, bpath);
		return r < 0 ? r : 1;
	}
	if (same_subtree(d->set, u, b))
		return 0;
	r = um_ctl_compare(u, b);
	if (r < 0)
		return r == -ENOMEM ? r : on_error(ctx, upath, r);
	if (r == UM_CTL_DATA)
		r = add(d, 'M', upath, NULL);
	else if (r == UM_CTL_METADATA)
		r = add(d, 'm', upath, NULL);
	else
		r = 0;
	return r < 0 ? r : 1;
}

/* A deletion at the old place of a moved directory is the move itself
 * (its lowers path is at or below where the directory came from), but
 * not one inside the directory's new place, nor one inside a directory
 * moved out of it: there it is a real deletion. So, with E the innermost
 * move whose new place holds the deletion, a move M explains it when M
 * is not E, it came from above the deletion's lowers path, and E (if
 * any) came from strictly below M's source: a directory moved out of M
 * and then emptied keeps its own deletions. moves[] holds the R records:
 * few, against possibly many deletions. */
static bool explained_by_move(const struct record *const *moves, size_t n_moves, const struct record *del)
{
	const struct record *e = NULL;

	for (size_t i = 0; i < n_moves; i++)
		if (um_ctl_path_within(del->path, moves[i]->path) &&
		    (!e || strlen(moves[i]->path) > strlen(e->path)))
			e = moves[i];
	for (size_t i = 0; i < n_moves; i++) {
		const struct record *m = moves[i];

		if (m == e || !um_ctl_path_within(del->other, m->other))
			continue;
		if (!e || (strcmp(m->other, e->other) && um_ctl_path_within(m->other, e->other)))
			return true;
	}
	return false;
}

static int print_one(const struct record *rec, bool nul)
{
	putchar(rec->type);
	putchar(' ');
	if (um_ctl_put(stdout, rec->path, nul) < 0)
		return -EIO;
	if (rec->type == 'R') {
		/* With -z names may hold tabs: NUL separates there. */
		putchar(nul ? '\0' : '\t');
		if (um_ctl_put(stdout, rec->other, nul) < 0)
			return -EIO;
	}
	putchar(nul ? '\0' : '\n');
	return 0;
}

static int print_records(struct diff *d, const struct um_ctl_diff_opts *o, unsigned counts[128])
{
	const struct record **moves = NULL;
	size_t n_moves = 0;
	int r = 0;

	for (size_t i = 0; i < d->n; i++)
		n_moves += d->v[i].type == 'R';
	if (n_moves) {
		moves = calloc(n_moves, sizeof(*moves));
		if (!moves)
			return -ENOMEM;
		n_moves = 0;
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i].type == 'R')
				moves[n_moves++] = &d->v[i];
	}
	for (size_t i = 0; i < d->n && r == 0; i++) {
		const struct record *rec = &d->v[i];

		if (rec->type == 'D' && explained_by_move(moves, n_moves, rec))
			continue;
		counts[(unsigned char)rec->type]++;
		r = print_one(rec, o->nul);
	}
	free(moves);
	/* stdio errors are sticky: one check after the last record covers
	 * every putchar (a full disk, a closed pipe). */
	if (r == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		r = -EIO;
	return r;
}

int um_ctl_diff(const struct um_ctl_set *set, const struct um_ctl_diff_opts *opts)
{
	static const struct um_ctl_walk_ops ops = { .entry = on_entry, .error = on_error };
	struct diff d = { .set = set };
	struct um_ctl_dir uroot = { 0 }, broot = { 0 };
	struct um_ctl_walk w = { .set = set, .ops = &ops, .ctx = &d, .broot = &broot };
	unsigned counts[128] = { 0 };
	int r, status = 2;

	if (set->format_damaged)
		fputs("unionctl: upperdir: its format version does not decode (see unionctl check)\n", stderr);
	r = um_ctl_root(set, true, 0, &uroot);
	if (r == 0)
		r = um_ctl_root(set, false, UM_CTL_NO_INDEX, &broot);
	if (r == 0)
		r = um_ctl_walk_run(&w, &uroot, &broot);
	if (r == 0)
		r = print_records(&d, opts, counts);
	if (r < 0) {
		fprintf(stderr, "unionctl: diff: %s\n", r == -EBADMSG ? "the upper root's markers do not decode (see unionctl check)"
								       : strerror(-r));
		goto out;
	}
	if (!opts->quiet)
		fprintf(stderr, "%u added, %u modified (%u metadata only), %u deleted, %u renamed\n", counts['A'],
			counts['M'] + counts['m'], counts['m'], counts['D'], counts['R']);
	status = d.unjudged || set->format_damaged ? 1 : 0;
out:
	for (size_t i = 0; i < d.n; i++) {
		free(d.v[i].path);
		free(d.v[i].other);
	}
	free(d.v);
	um_ctl_dir_release(&uroot);
	um_ctl_dir_release(&broot);
	return status;
}
