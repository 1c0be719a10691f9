/* cookies: readdir cookies (telldir/seekdir positions) used across opens,
 * processes and mounts, and a name churner for concurrent listings.
 *
 *   cookies list DIR
 *   cookies check [-n NEXT] [-e EVERY] DIR FILE
 *   cookies churn DIR PREFIX COUNT
 *
 * list reads DIR once and prints one line per entry, in readdir order:
 *
 *   NAME DTYPE D_INO COOKIE
 *
 * NAME escaped as treedump does (bytes outside 0x21..0x7e and '\' as
 * \xHH, so a name is one field), DTYPE one letter (dtype.h), COOKIE the
 * telldir() value taken just before the readdir() that returned the
 * entry: seekdir() to it must give the entry again. A last line
 * "/ - - COOKIE" gives the position after the last entry ('/' is never a
 * name). Exit 0, 1 if readdir fails, 99 on usage or open errors.
 *
 * check opens DIR afresh (in a process that never saw the listing) and,
 * for every EVERY-th line of FILE (a list output; default every line),
 * plus the last entry and the end position, in a shuffled order (fixed
 * seed): seekdir() to the saved cookie, then readdir() must return that
 * entry (name, d_type and d_ino as saved) and the NEXT (default 2)
 * entries that follow it in FILE, or end of directory where FILE ends.
 * Mismatches are described on stderr (the first 10); a summary line goes
 * to stderr. Exit 0 when all matched, 1 otherwise, 99 on usage errors.
 *
 * churn creates DIR/PREFIX.I (O_CREAT|O_EXCL) for I = 0..COUNT-1 and
 * unlinks each again three creations later (and the last ones at the
 * end), so that at most four of these names exist at any time and none
 * at exit. Exit 0, 1 if a create or unlink fails (stderr says which).
 *
 * stale DIR DEST: listings interleaved with renames in two orders that
 * could make the kernel's cached listing of DIR (FOPEN_CACHE_DIR) show a
 * name that is gone to a listing opened after it went. The kernel fills
 * its cache from whichever open directory's READDIR reply continues it
 * at the right cookie, marks it complete on any handle's empty reply
 * there, and checks for changes only when a listing starts at 0 and
 * finds it complete. With raw getdents64() calls (one FUSE READDIR
 * each), after DIR is listed whole and a name created and removed in it
 * (so the kernel must read it again):
 *   1. listing A reads one chunk; listing P reads DIR whole; a name A has
 *      not reached is renamed to DEST; listing B reads one chunk; A reads
 *      to the end (continuing the cache B restarted);
 *   2. listing A reads every name but makes no last (empty) call; A's
 *      last name is renamed to DEST; listing L reads one chunk; A makes
 *      its last call (completing the cache begun before the rename); L
 *      reads to the end.
 * Then a listing opened last must not show either name, nor may L; A
 * may (it began before the rename: POSIX). Prints "moved NAME" for each.
 * Exit 0 as described, 1 when a listing shows a moved name (stderr says
 * which), 2 when DIR is too small (one chunk), 99 on usage or setup
 * errors.
 *
 * copyup DIR NAME: DIR a directory of lower branches only, larger than
 * one chunk. Listing A reads one chunk; DIR/NAME is created (which gives
 * DIR an upper part); listing P reads DIR whole (with fallthru=on its
 * first listing since, which writes DIR's fallthrus); A reads to the end.
 * Every name A began with must be in A exactly once (NAME may be or not:
 * it came after A began), and P must show them and NAME, each once. The
 * daemon keeps no open handle per listing: a cookie A was given before
 * the copy-up must still mean the same after it. Exit 0, 1 when a
 * listing misses or repeats a name (stderr says which), 2 when DIR is
 * too small, 99 on usage or setup errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dtype.h"

static void esc_put(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\')
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

/* The escaped form of s in a static buffer (a name is at most 255 bytes). */
static const char *esc(const char *s)
{
	static char out[4 * 256 + 1];
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < sizeof(out); p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", *p);
	}
	out[o] = '\0';
	return out;
}

static int do_list(const char *dir)
{
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "cookies: opendir %s: %m\n", dir);
		return 99;
	}
	for (;;) {
		long pos = telldir(d);
		struct dirent *de;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				fprintf(stderr, "cookies: readdir %s: %m\n", dir);
				closedir(d);
				return 1;
			}
			printf("/ - - %ld\n", pos);
			break;
		}
		esc_put(stdout, de->d_name);
		printf(" %c %llu %ld\n", dtype_char(de->d_type), (unsigned long long)de->d_ino, pos);
	}
	closedir(d);
	return fflush(stdout) == 0 ? 0 : 99;
}

struct ent {
	char *name; /* escaped */
	char type;
	unsigned long long ino;
	long pos;
};

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int do_check(int next, size_t every, const char *dir, const char *file)
{
	FILE *f = fopen(file, "r");
	struct ent *v = NULL;
	size_t n = 0, cap = 0, nmis = 0, nchecked = 0;
	long endpos = -1;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;

	if (!f) {
		fprintf(stderr, "cookies: %s: %m\n", file);
		return 99;
	}
	while ((len = getline(&line, &lcap, f)) > 0) {
		char name[4 * 256 + 2], type[4];
		unsigned long long ino;
		long pos;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (!strncmp(line, "/ - - ", 6)) {
			endpos = strtol(line + 6, NULL, 10);
			continue;
		}
		if (sscanf(line, "%1025s %3s %llu %ld", name, type, &ino, &pos) != 4) {
			fprintf(stderr, "cookies: %s: bad line '%s'\n", file, line);
			return 99;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return 99;
		}
		v[n++] = (struct ent){ .name = strdup(name), .type = type[0], .ino = ino, .pos = pos };
	}
	free(line);
	fclose(f);
	if (endpos < 0) {
		fprintf(stderr, "cookies: %s has no end line\n", file);
		return 99;
	}

	/* The positions to try: every EVERY-th entry, the last, the end (n). */
	size_t *order = malloc((n / every + 3) * sizeof(*order)), norder = 0;
	for (size_t i = 0; i < n; i += every)
		order[norder++] = i;
	if (n > 0 && (n - 1) % every != 0)
		order[norder++] = n - 1;
	order[norder++] = n;
	for (size_t i = norder - 1; i > 0; i--) {
		size_t j = next_rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}

	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "cookies: opendir %s: %m\n", dir);
		return 99;
	}
	for (size_t k = 0; k < norder; k++) {
		size_t i = order[k];
		long pos = i < n ? v[i].pos : endpos;

		seekdir(d, pos);
		nchecked++;
		for (size_t j = i; j <= i + (size_t)next; j++) {
			struct dirent *de;
			const char *got;

			errno = 0;
			de = readdir(d);
			if (j >= n) {
				if (de) {
					if (nmis++ < 10)
						fprintf(stderr,
							"cookies: seekdir(%ld) (entry #%zu): expected end of directory at #%zu, got '%s'\n",
							pos, i, j, esc(de->d_name));
				} else if (errno) {
					if (nmis++ < 10)
						fprintf(stderr, "cookies: seekdir(%ld) (entry #%zu): readdir: %m\n", pos, i);
				}
				break;
			}
			if (!de) {
				if (nmis++ < 10)
					fprintf(stderr, "cookies: seekdir(%ld) (entry #%zu): expected '%s' at #%zu, got %s\n",
						pos, i, v[j].name, j, errno ? strerror(errno) : "end of directory");
				break;
			}
			got = esc(de->d_name);
			if (strcmp(got, v[j].name) != 0 || dtype_char(de->d_type) != v[j].type ||
			    (unsigned long long)de->d_ino != v[j].ino) {
				if (nmis++ < 10)
					fprintf(stderr,
						"cookies: seekdir(%ld) (entry #%zu): expected '%s %c %llu' at #%zu, got '%s %c %llu'\n",
						pos, i, v[j].name, v[j].type, v[j].ino, j, got, dtype_char(de->d_type),
						(unsigned long long)de->d_ino);
				break;
			}
		}
	}
	closedir(d);
	fprintf(stderr, "cookies: %zu entries saved, %zu positions checked in a fresh open, %zu mismatches\n", n,
		nchecked, nmis);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	free(order);
	return nmis ? 1 : 0;
}

static int do_churn(const char *dir, const char *prefix, long count)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[512];
	int bad = 0;

	if (dfd < 0) {
		fprintf(stderr, "cookies: open %s: %m\n", dir);
		return 99;
	}
	for (long i = 0; i < count + 3; i++) {
		if (i < count) {
			snprintf(name, sizeof(name), "%s.%ld", prefix, i);
			int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0) {
				fprintf(stderr, "cookies: churn: create %s: %m\n", name);
				bad = 1;
			} else {
				close(fd);
			}
		}
		if (i >= 3) {
			snprintf(name, sizeof(name), "%s.%ld", prefix, i - 3);
			if (unlinkat(dfd, name, 0) < 0) {
				fprintf(stderr, "cookies: churn: unlink %s: %m\n", name);
				bad = 1;
			}
		}
	}
	close(dfd);
	fprintf(stderr, "cookies: churn: %ld names created and removed in %s\n", count, dir);
	return bad;
}

#define STALE_BUF (32 * 1024)

/* One getdents64() chunk of fd into names[] (regular entries only, not
 * "." and ".."); returns the number of bytes read, or -1. */
static long chunk_names(int fd, char names[][256], size_t *n, size_t cap)
{
	static char buf[STALE_BUF];
	long len = syscall(SYS_getdents64, fd, buf, sizeof(buf));

	for (long at = 0; len > 0 && at < len;) {
		struct dirent64 *d = (struct dirent64 *)(buf + at);

		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") && *n < cap)
			snprintf(names[(*n)++], 256, "%s", d->d_name);
		at += d->d_reclen;
	}
	return len;
}

static bool has_name(char names[][256], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* "stale"'s start: DIR's names into names[] (*n of them), then a name
 * created and removed in DIR, so the kernel must read it again: 0, or -1
 * with errno set. */
static int list_then_change(const char *dir, char names[][256], size_t *n, size_t cap)
{
	char tmp[4096];
	long len;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return -1;
	while ((len = chunk_names(fd, names, n, cap)) > 0)
		;
	close(fd);
	snprintf(tmp, sizeof(tmp), "%s/.cookies-stale-tmp", dir);
	fd = len < 0 ? -1 : open(tmp, O_CREAT | O_EXCL | O_WRONLY, 0600);
	return fd < 0 || close(fd) < 0 || unlink(tmp) < 0 ? -1 : 0;
}

/* Does a listing of DIR opened now show name? 1, 0, or -1 (errno set);
 * names[] (room for cap) is scratch. */
static int shown_afresh(const char *dir, const char *name, char names[][256], size_t cap)
{
	size_t n = 0;
	long len;
	int fd = open(dir, O_RDONLY | O_DIRECTORY), shown;

	if (fd < 0)
		return -1;
	while ((len = chunk_names(fd, names, &n, cap)) > 0)
		;
	shown = len < 0 ? -1 : has_name(names, n, name);
	close(fd);
	return shown;
}

/* Rename DIR/name to DEST/name and say so: 0, or -1 with errno set. */
static int move_away(const char *dir, const char *dest, const char *name)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/%s", dir, name);
	snprintf(to, sizeof(to), "%s/%s", dest, name);
	if (rename(from, to) < 0)
		return -1;
	printf("moved %s\n", esc(name));
	return 0;
}

static int do_stale(const char *dir, const char *dest)
{
	enum { CAP = 20000 };
	static char all[CAP][256], a1[CAP][256], rest[CAP][256], again[CAP][256]; /* 20 MiB */
	size_t nall = 0, na1 = 0, nrest = 0, ndummy = 0;
	char victim[256] = "";
	int fa = -1, fb = -1, bad = 0;
	long len;

	if (list_then_change(dir, all, &nall, CAP) < 0)
		goto setup;
	fa = open(dir, O_RDONLY | O_DIRECTORY);
	if (fa < 0 || chunk_names(fa, a1, &na1, CAP) <= 0)
		goto setup;
	fb = open(dir, O_RDONLY | O_DIRECTORY);
	if (fb < 0)
		goto setup;
	nall = 0;
	while ((len = chunk_names(fb, all, &nall, CAP)) > 0)
		;
	close(fb);
	if (len < 0)
		goto setup;
	for (size_t i = 0; i < nall && !victim[0]; i++)
		if (!has_name(a1, na1, all[i]))
			snprintf(victim, sizeof(victim), "%s", all[i]);
	if (!victim[0]) {
		fprintf(stderr, "cookies: stale: the first chunk of %s held all %zu names\n", dir, nall);
		close(fa);
		return 2;
	}
	if (move_away(dir, dest, victim) < 0)
		goto setup;
	fb = open(dir, O_RDONLY | O_DIRECTORY);
	if (fb < 0 || chunk_names(fb, all, &ndummy, 0) < 0)
		goto setup;
	while ((len = chunk_names(fa, rest, &nrest, CAP)) > 0)
		;
	if (len < 0)
		goto setup;
	/* A may show it or not: it began before the rename (POSIX). */
	bad = shown_afresh(dir, victim, again, CAP);
	if (bad < 0)
		goto setup;
	if (bad)
		fprintf(stderr, "cookies: stale: %s: a listing opened after the rename shows %s\n", dir, esc(victim));
	close(fa);
	close(fb);
	return bad;
setup:
	fprintf(stderr, "cookies: stale %s: %m\n", dir);
	return 99;
}

/* Order 2 of "stale" (see the top): 0, 1 (stderr says why), 2, 99. */
static int stale_end(const char *dir, const char *dest)
{
	enum { CAP = 20000 };
	static char names[CAP][256], got[CAP][256];
	size_t total = 0, na = 0, nl = 0;
	char victim[256];
	int fa = -1, fl = -1, bad = 0;
	long len;

	if (list_then_change(dir, names, &total, CAP) < 0)
		goto setup;
	fa = open(dir, O_RDONLY | O_DIRECTORY);
	if (fa < 0)
		goto setup;
	for (int chunks = 0; na < total; chunks++) {
		len = chunk_names(fa, names, &na, CAP);
		if (len <= 0)
			goto setup;
		if (chunks == 0 && na == total) {
			fprintf(stderr, "cookies: stale: the first chunk of %s held all %zu names\n", dir, total);
			close(fa);
			return 2;
		}
	}
	snprintf(victim, sizeof(victim), "%s", names[na - 1]);
	if (move_away(dir, dest, victim) < 0)
		goto setup;
	fl = open(dir, O_RDONLY | O_DIRECTORY);
	if (fl < 0 || chunk_names(fl, got, &nl, CAP) <= 0 || chunk_names(fa, names, &na, CAP) < 0)
		goto setup;
	while ((len = chunk_names(fl, got, &nl, CAP)) > 0)
		;
	if (len < 0)
		goto setup;
	if (has_name(got, nl, victim)) {
		fprintf(stderr, "cookies: stale: %s: a listing opened after the rename, read on after a listing begun before it ended, shows %s\n",
			dir, esc(victim));
		bad = 1;
	}
	switch (shown_afresh(dir, victim, got, CAP)) {
	case -1:
		goto setup;
	case 1:
		fprintf(stderr, "cookies: stale: %s: the listing opened last shows %s\n", dir, esc(victim));
		bad = 1;
	}
	close(fa);
	close(fl);
	return bad;
setup:
	fprintf(stderr, "cookies: stale %s: %m\n", dir);
	return 99;
}

/* Every name of want[] exactly once in got[] (and nothing else but
 * extra, which may be there once): 0, or 1 with stderr saying why. */
static int same_names(const char *what, char want[][256], size_t nwant, char got[][256], size_t ngot,
		      const char *extra)
{
	int bad = 0;

	for (size_t i = 0; i < nwant; i++) {
		size_t times = 0;

		for (size_t k = 0; k < ngot; k++)
			times += !strcmp(want[i], got[k]);
		if (times != 1 && bad++ < 10)
			fprintf(stderr, "cookies: copyup: %s shows %s %zu times\n", what, esc(want[i]), times);
	}
	for (size_t k = 0; k < ngot; k++)
		if (!has_name(want, nwant, got[k]) &&
		    (strcmp(got[k], extra) || has_name(got + k + 1, ngot - k - 1, extra)) && bad++ < 10)
			fprintf(stderr, "cookies: copyup: %s shows %s, unexpected\n", what, esc(got[k]));
	return bad ? 1 : 0;
}

static int do_copyup(const char *dir, const char *name)
{
	enum { CAP = 20000 };
	static char all[CAP][256], a[CAP][256], p[CAP][256];
	size_t nall = 0, na = 0, np = 0;
	char path[4096];
	int fa = -1, fd, bad;
	long len;

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		goto setup;
	while ((len = chunk_names(fd, all, &nall, CAP)) > 0)
		;
	close(fd);
	fa = open(dir, O_RDONLY | O_DIRECTORY);
	if (len < 0 || fa < 0 || chunk_names(fa, a, &na, CAP) <= 0)
		goto setup;
	if (na == nall) {
		fprintf(stderr, "cookies: copyup: the first chunk of %s held all %zu names\n", dir, nall);
		close(fa);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0 || close(fd) < 0)
		goto setup;
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		goto setup;
	while ((len = chunk_names(fd, p, &np, CAP)) > 0)
		;
	close(fd);
	if (len < 0)
		goto setup;
	while ((len = chunk_names(fa, a, &na, CAP)) > 0)
		;
	if (len < 0)
		goto setup;
	close(fa);
	bad = same_names("the listing begun before the copy-up", all, nall, a, na, name);
	if (!has_name(p, np, name)) {
		fprintf(stderr, "cookies: copyup: the listing after the create misses %s\n", esc(name));
		bad = 1;
	}
	return same_names("the listing after the copy-up", all, nall, p, np, name) | bad;
setup:
	fprintf(stderr, "cookies: copyup %s: %m\n", dir);
	return 99;
}

static void usage(void)
{
	fprintf(stderr, "usage: cookies list DIR\n"
			"       cookies check [-n NEXT] [-e EVERY] DIR FILE\n"
			"       cookies churn DIR PREFIX COUNT\n"
			"       cookies stale DIR DEST\n"
			"       cookies copyup DIR NAME\n");
	exit(99);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "list") && argc == 3)
		return do_list(argv[2]);
	if (!strcmp(argv[1], "churn") && argc == 5)
		return do_churn(argv[2], argv[3], strtol(argv[4], NULL, 10));
	if (!strcmp(argv[1], "stale") && argc == 4) {
		int a = do_stale(argv[2], argv[3]), b = a == 99 ? 99 : stale_end(argv[2], argv[3]);

		return a > b ? a : b;
	}
	if (!strcmp(argv[1], "copyup") && argc == 4)
		return do_copyup(argv[2], argv[3]);
	if (!strcmp(argv[1], "check")) {
		int next = 2, a = 2;
		long every = 1;

		while (a < argc && argv[a][0] == '-') {
			if (!strcmp(argv[a], "-n") && a + 1 < argc)
				next = atoi(argv[a + 1]);
			else if (!strcmp(argv[a], "-e") && a + 1 < argc)
				every = strtol(argv[a + 1], NULL, 10);
			else
				usage();
			a += 2;
		}
		if (a + 2 != argc || next < 0 || every < 1)
			usage();
		return do_check(next, (size_t)every, argv[a], argv[a + 1]);
	}
	usage();
	return 99;
}
