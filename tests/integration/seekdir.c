/* seekdir: check telldir()/seekdir() resume inside one open directory.
 *
 *   seekdir [-p] [-r ROUNDS] DIR
 *   seekdir -g BUFSIZE DIR
 *
 * Reads DIR once, recording telldir() before each readdir(). Checks that
 * "." and ".." are present once and every other name exactly once. Then,
 * on the same handle, seeks to every recorded position in a shuffled order
 * (fixed seed) and checks that readdir() returns the entry recorded there,
 * and that the two entries after it follow in the recorded order. Seeking
 * to the end position must give end of directory; rewinddir() must give
 * the first entry again.
 *
 * -p prints "NAME DTYPE D_INO" per entry (name escaped as treedump does,
 * DTYPE one of f d l c b p s u) in first-pass order, for the script to
 * compare with lstat.
 * -g reads DIR with raw getdents64() calls of BUFSIZE bytes (a small
 * buffer makes the kernel resume from d_off after every few entries),
 * checks "."/".." and uniqueness the same way, and prints the names
 * escaped, one a line, in the order returned.
 * Exit 0 when everything matched, 1 on a mismatch (described on stderr),
 * 99 on usage or setup errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dtype.h"

struct rec {
	long pos;
	char *name;
	unsigned char type;
	unsigned long long ino;
};

static void esc_print(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\')
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A fixed-seed xorshift so every run seeks in the same order. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int check_at(DIR *d, struct rec *v, size_t n, size_t i, const char *how)
{
	/* The entry at i, then two more in recorded order (or the end). */
	for (size_t k = i; k < i + 3; k++) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (k >= n) {
			if (de) {
				fprintf(stderr, "seekdir: %s to #%zu: expected end of directory after %zu entries, got '%s'\n",
					how, i, n, de->d_name);
				return 1;
			}
			return 0;
		}
		if (!de) {
			fprintf(stderr, "seekdir: %s to #%zu (pos %ld): expected '%s' at #%zu, got %s\n",
				how, i, v[i].pos, v[k].name, k,
				errno ? strerror(errno) : "end of directory");
			return 1;
		}
		if (strcmp(de->d_name, v[k].name) != 0) {
			fprintf(stderr, "seekdir: %s to #%zu (pos %ld): expected '%s' at #%zu, got '%s'\n",
				how, i, v[i].pos, v[k].name, k, de->d_name);
			return 1;
		}
	}
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int getdents_mode(size_t bufsz, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "seekdir: open %s: %m\n", dir);
		return 99;
	}
	char *buf = malloc(bufsz);
	size_t n = 0, cap = 1024, calls = 0;
	char **names = malloc(cap * sizeof(*names));
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, bufsz);
		calls++;
		if (r < 0) {
			fprintf(stderr, "seekdir: getdents64(%zu) after %zu entries: %m\n",
				bufsz, n);
			return 1;
		}
		if (r == 0)
			break;
		for (long off = 0; off < r;) {
			struct linux_dirent64 *de = (void *)(buf + off);
			if (n == cap) {
				cap *= 2;
				names = realloc(names, cap * sizeof(*names));
			}
			names[n++] = strdup(de->d_name);
			off += de->d_reclen;
		}
	}
	close(fd);
	for (size_t i = 0; i < n; i++) {
		esc_print(names[i]);
		putchar('\n');
	}
	qsort(names, n, sizeof(*names), cmp_str);
	int bad = 0, dot = 0, dotdot = 0;
	for (size_t i = 0; i < n; i++) {
		dot += strcmp(names[i], ".") == 0;
		dotdot += strcmp(names[i], "..") == 0;
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0) {
			fprintf(stderr, "seekdir: getdents64: name '%s' returned more than once\n",
				names[i]);
			bad = 1;
		}
	}
	if (dot != 1 || dotdot != 1) {
		fprintf(stderr, "seekdir: getdents64: '.' seen %d times, '..' %d times\n",
			dot, dotdot);
		bad = 1;
	}
	fprintf(stderr, "seekdir: getdents64 with %zu-byte buffer: %zu entries in %zu calls, %s\n",
		bufsz, n, calls, bad ? "FAILED" : "ok");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	return bad;
}

int main(int argc, char **argv)
{
	int print = 0, rounds = 1, argi = 1;
	if (argc == 4 && strcmp(argv[1], "-g") == 0)
		return getdents_mode(strtoul(argv[2], NULL, 0), argv[3]);
	while (argi < argc && argv[argi][0] == '-') {
		if (strcmp(argv[argi], "-p") == 0) {
			print = 1;
			argi++;
		} else if (strcmp(argv[argi], "-r") == 0 && argi + 1 < argc) {
			rounds = atoi(argv[argi + 1]);
			argi += 2;
		} else {
			break;
		}
	}
	if (argi + 1 != argc) {
		fprintf(stderr, "usage: seekdir [-p] [-r ROUNDS] DIR\n");
		return 99;
	}
	DIR *d = opendir(argv[argi]);
	if (!d) {
		fprintf(stderr, "seekdir: opendir %s: %m\n", argv[argi]);
		return 99;
	}

	size_t n = 0, cap = 1024;
	struct rec *v = malloc(cap * sizeof(*v));
	for (;;) {
		long pos = telldir(d);
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				fprintf(stderr, "seekdir: readdir after %zu entries: %m\n", n);
				return 1;
			}
			break;
		}
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
		}
		v[n].pos = pos;
		v[n].name = strdup(de->d_name);
		v[n].type = de->d_type;
		v[n].ino = de->d_ino;
		n++;
	}
	long endpos = telldir(d);

	int bad = 0;
	char **names = malloc((n + 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = v[i].name;
	qsort(names, n, sizeof(*names), cmp_str);
	int dot = 0, dotdot = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], ".") == 0)
			dot++;
		else if (strcmp(names[i], "..") == 0)
			dotdot++;
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0) {
			fprintf(stderr, "seekdir: name '%s' returned more than once\n", names[i]);
			bad = 1;
		}
	}
	if (dot != 1 || dotdot != 1) {
		fprintf(stderr, "seekdir: '.' seen %d times, '..' seen %d times (want 1 and 1)\n",
			dot, dotdot);
		bad = 1;
	}

	/* Every position once per round, in a shuffled order. */
	size_t *order = malloc((n + 1) * sizeof(*order));
	size_t seeks = 0;
	for (int r = 0; r < rounds && !bad; r++) {
		for (size_t i = 0; i <= n; i++)
			order[i] = i;
		for (size_t i = n; i > 0; i--) {
			size_t j = next_rand() % (i + 1);
			size_t t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (size_t k = 0; k <= n && !bad; k++) {
			size_t i = order[k];
			seekdir(d, i < n ? v[i].pos : endpos);
			bad = check_at(d, v, n, i, "seekdir");
			seeks++;
		}
	}
	if (!bad) {
		rewinddir(d);
		bad = check_at(d, v, n, 0, "rewinddir");
	}
	closedir(d);

	if (print && !bad) {
		for (size_t i = 0; i < n; i++) {
			esc_print(v[i].name);
			printf(" %c %llu\n", dtype_char(v[i].type), v[i].ino);
		}
	}
	fprintf(stderr, "seekdir: %zu entries, %zu seeks, %s\n", n, seeks,
		bad ? "FAILED" : "ok");
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	free(names);
	free(order);
	return bad ? 1 : 0;
}
