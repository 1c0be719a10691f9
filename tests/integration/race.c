/* race: the two sides of t_security's symlink race.
 *
 *   race swap SECONDS SPEC...      as root, directly on the upper branch
 *     x DIR A B          exchange DIR/A and DIR/B (renameat2 with
 *                        RENAME_EXCHANGE) over and over; an even number of
 *                        times in all, so the layout ends as it began
 *     p DIR NAME TARGET  create a symlink DIR/NAME -> TARGET, remove it
 *                        again (only while NAME is a symlink), over and over;
 *                        a '#' in NAME stands for 0..49, one per round
 *     Each DIR is opened once (O_DIRECTORY | O_NOFOLLOW) before the loop:
 *     the calls act on that directory even while its name, swapped by
 *     another spec, points to a symlink. Prints "OK SWAPS PLANTS".
 *
 *   race work SECONDS DIR          as a user, through the union
 *     creations, renames, copy-ups (writes, O_TRUNC, truncate, xattrs,
 *     times), links and removals below DIR, each by its full path so that
 *     every call looks the names up again; also a creation in DIR/cdN (N =
 *     round modulo 50): the first one to succeed copies up that lower-only
 *     directory. Failures are expected (the names keep changing under the
 *     calls) and only counted.
 *     Prints "OK CALLS SUCCEEDED".
 *
 * Exit status 0 after the loop, 1 on a setup error (the message says which
 * call), 99 on usage errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int usage(void)
{
	fputs("usage: race swap SECONDS {x DIR A B | p DIR NAME TARGET}... | race work SECONDS DIR\n", stderr);
	return 99;
}

static double now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		perror("clock_gettime");
		exit(1);
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double seconds_arg(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v <= 0 || v > 3600)
		return -1;
	return v;
}

struct spec {
	char kind; /* 'x' or 'p' */
	int dirfd;
	const char *a, *b; /* x: the two names; p: name and target */
	unsigned long count;
	unsigned round;
};

static int exchange(struct spec *s)
{
	if (syscall(SYS_renameat2, s->dirfd, s->a, s->dirfd, s->b, RENAME_EXCHANGE) < 0)
		return -1;
	s->count++;
	return 0;
}

#define PLANT_N 50

static void plant_one(struct spec *s, const char *name)
{
	struct stat st;

	if (symlinkat(s->b, s->dirfd, name) == 0)
		s->count++;
	/* Leave the name to whatever else put an object there. */
	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		(void)unlinkat(s->dirfd, name, 0);
}

static void plant(struct spec *s)
{
	const char *hash = strchr(s->a, '#');
	char name[256];

	if (!hash) {
		plant_one(s, s->a);
		return;
	}
	snprintf(name, sizeof(name), "%.*s%u%s", (int)(hash - s->a), s->a, s->round++ % PLANT_N, hash + 1);
	plant_one(s, name);
}

static int do_swap(double secs, int argc, char **argv)
{
	struct spec sp[16];
	int n = 0;

	for (int i = 0; i < argc;) {
		if (n == 16 || i + 4 > argc || (strcmp(argv[i], "x") && strcmp(argv[i], "p")))
			return usage();
		sp[n].kind = argv[i][0];
		sp[n].dirfd = open(argv[i + 1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sp[n].dirfd < 0) {
			fprintf(stderr, "race: open %s: %s\n", argv[i + 1], strerror(errno));
			return 1;
		}
		sp[n].a = argv[i + 2];
		sp[n].b = argv[i + 3];
		sp[n].count = 0;
		sp[n].round = 0;
		n++;
		i += 4;
	}
	double end = now() + secs;
	while (now() < end) {
		for (int i = 0; i < n; i++) {
			if (sp[i].kind == 'p') {
				plant(&sp[i]);
			} else if (exchange(&sp[i]) < 0) {
				fprintf(stderr, "race: exchange %s %s: %s\n", sp[i].a, sp[i].b, strerror(errno));
				return 1;
			}
		}
	}
	unsigned long swaps = 0, plants = 0;
	for (int i = 0; i < n; i++) {
		if (sp[i].kind == 'x' && sp[i].count % 2 && exchange(&sp[i]) < 0) {
			fprintf(stderr, "race: final exchange %s %s: %s\n", sp[i].a, sp[i].b, strerror(errno));
			return 1;
		}
		if (sp[i].kind == 'x')
			swaps += sp[i].count;
		else
			plants += sp[i].count;
		if (close(sp[i].dirfd) < 0) {
			perror("race: close");
			return 1;
		}
	}
	printf("OK %lu %lu\n", swaps, plants);
	return 0;
}

static unsigned long calls, succeeded;

/* Count one call's outcome (r < 0: failed). */
static void count(long r)
{
	calls++;
	if (r >= 0)
		succeeded++;
}

static void write_path(const char *p, int flags)
{
	int fd = open(p, flags | O_CLOEXEC, 0644);

	count(fd);
	if (fd < 0)
		return;
	count(write(fd, "x", 1));
	count(close(fd));
}

static int do_work(double secs, const char *dir)
{
	char a[4096], b[4096], c[4096];
	unsigned i = 0;
	pid_t me = getpid();
	double end = now() + secs;

	while (now() < end) {
		unsigned k = i % 20, s = i % 10;
#define P(buf, ...) snprintf(buf, sizeof(buf), __VA_ARGS__)
		P(a, "%s/cd%u/w%d", dir, i % PLANT_N, (int)me);
		write_path(a, O_WRONLY | O_CREAT);
		count(unlink(a));
		/* copy-ups of lower files: data, O_TRUNC, truncate, attributes */
		P(a, "%s/lf%u", dir, k);
		write_path(a, O_WRONLY | O_APPEND);
		P(a, "%s/sub/lf%u", dir, s);
		write_path(a, O_WRONLY | O_TRUNC);
		P(a, "%s/lf%u", dir, (k + 7) % 20);
		count(truncate(a, 1));
		P(a, "%s/sub/lf%u", dir, (s + 3) % 10);
		count(setxattr(a, "user.race", "1", 1, 0));
		P(a, "%s/uf%u", dir, s);
		count(utimensat(AT_FDCWD, a, NULL, 0));
		write_path(a, O_WRONLY | O_APPEND);
		count(truncate(a, 3));
		count(setxattr(a, "user.race", "1", 1, 0));
		/* a lower-only directory: the first creation copies it up */
		P(a, "%s/sub2/w%dn%u", dir, (int)me, s);
		write_path(a, O_WRONLY | O_CREAT);
		count(unlink(a));
		/* creations, rename, chmod, link, removals */
		P(a, "%s/w%dn%u", dir, (int)me, s);
		P(b, "%s/w%dm%u", dir, (int)me, s);
		write_path(a, O_WRONLY | O_CREAT);
		count(rename(a, b));
		count(chmod(b, 0640));
		P(c, "%s/sub/w%dh%u", dir, (int)me, s);
		count(link(b, c));
		count(unlink(c));
		count(unlink(b));
		P(a, "%s/w%dd%u", dir, (int)me, s);
		count(mkdir(a, 0755));
		P(b, "%s/w%dd%u/f", dir, (int)me, s);
		write_path(b, O_WRONLY | O_CREAT);
		count(unlink(b));
		count(rmdir(a));
		P(a, "%s/sub/w%ds%u", dir, (int)me, s);
		count(symlink("x", a));
		count(unlink(a));
		P(a, "%s/sub/w%dp%u", dir, (int)me, s);
		count(mkfifo(a, 0644));
		count(unlink(a));
		/* renaming a lower file away and back: copy-up plus whiteout */
		P(a, "%s/sub/lf%u", dir, (s + 5) % 10);
		P(b, "%s/sub/w%dmv%u", dir, (int)me, s);
		count(rename(a, b));
		count(rename(b, a));
#undef P
		i++;
	}
	printf("OK %lu %lu\n", calls, succeeded);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	double secs = seconds_arg(argv[2]);
	if (secs < 0)
		return usage();
	if (!strcmp(argv[1], "swap"))
		return do_swap(secs, argc - 3, argv + 3);
	if (!strcmp(argv[1], "work") && argc == 4)
		return do_work(secs, argv[3]);
	return usage();
}
