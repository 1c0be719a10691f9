/* renamestat: lstat and fstat of objects while other processes rename
 * them, through a union (t_rename_stat.sh).
 *
 *   renamestat MNT SECONDS N
 *
 * Expects, for K in 0..N-1, lower files MNT/d0/fK (holding "fK\n"), lower
 * files MNT/d0/xK (holding "xK\n") and lower directories MNT/d0/yK, and a
 * directory MNT/d1. For SECONDS seconds:
 *   - mover K renames d0/fK -> d0/gK -> d1/hK -> d0/fK, round after round
 *     (each first step leaves a whiteout at d0/fK: the old name of a moved
 *     object holds another type at once); it always ends a round, so the
 *     file is back at d0/fK at the end;
 *   - exchanger K swaps d0/xK and d0/yK (RENAME_EXCHANGE: a file and a
 *     directory trade names);
 *   - 2 readers lstat every one of those names over and over: fK, gK, hK
 *     may be absent (ENOENT) but if present are regular files of 3 bytes;
 *     xK and yK always exist (an exchange is atomic), one a regular file,
 *     the other a directory;
 *   - 1 reader holds each fK open (opened before the run, O_RDONLY) and
 *     fstats the descriptors over and over: always a regular file of 3
 *     bytes (the object is alive whatever its name).
 * Any other answer (EIO in particular: the kernel's answer when a getattr
 * reply has another file type than the inode) is printed (the first few
 * per process) and counted. Prints one line of counts; exit status 0 when
 * every answer was as expected, 1 otherwise, 99 on usage or setup errors.
 *
 *   renamestat ctime FILE UPPERFILE ROUNDS
 *
 * The ctime the union shows after a change it learns of without new
 * attributes. A child fstats FILE through a descriptor all along; the
 * parent, ROUNDS times, renames FILE to FILE.moved and back, then sets
 * an xattr (user.renamestat) on it, and after each change (and a pause
 * of 1 ms) stat(FILE) must give the ctime lstat(UPPERFILE) gives, where
 * the union keeps FILE in its upper branch. The kernel drops its cached
 * ctime on such a change but would take as current a GETATTR reply read
 * before it and arriving after. Prints "ctime: M of N stats stale";
 * exit status 0 when none was, 1 otherwise, 99 on errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAXN 10 /* "fK\n" is 3 bytes */
#define NREADERS 2
#define SHOWN 5 /* unexpected answers printed per process */

struct counts {
	long renames, exchanges, lstats, fstats, bad, eio;
};

static const char *mnt;
static int n;
static double deadline;
static struct counts *shared; /* one slot per process, MAP_SHARED */

static double now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		perror("clock_gettime");
		exit(99);
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void path(char *buf, size_t size, const char *dir, char kind, int k)
{
	int len = snprintf(buf, size, "%s/%s/%c%d", mnt, dir, kind, k);

	if (len < 0 || (size_t)len >= size) {
		fprintf(stderr, "renamestat: path too long under %s\n", mnt);
		exit(99);
	}
}

/* An unexpected answer: err is the failed call's errno, or 0. One write
 * per line, so that the processes' lines do not mix. */
static void bad(struct counts *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bad(struct counts *c, int err, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int len;

	c->eio += err == EIO;
	if (c->bad++ >= SHOWN)
		return;
	va_start(ap, fmt);
	len = snprintf(line, sizeof(line), "renamestat: ");
	len += vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	if (len >= (int)sizeof(line) - 64)
		len = (int)sizeof(line) - 64; /* cut: the error name still fits */
	if (err)
		len += snprintf(line + len, sizeof(line) - (size_t)len, ": %s", strerrorname_np(err));
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)len) < 0)
		c->bad++; /* nowhere to say it: the count still fails the run */
}

static void mover(struct counts *c, int k)
{
	char a[4096], b[4096], h[4096];

	path(a, sizeof(a), "d0", 'f', k);
	path(b, sizeof(b), "d0", 'g', k);
	path(h, sizeof(h), "d1", 'h', k);
	while (now() < deadline) {
		const char *from[3] = { a, b, h }, *to[3] = { b, h, a };

		for (int i = 0; i < 3; i++) {
			if (rename(from[i], to[i]) < 0) {
				bad(c, errno, "rename %s %s", from[i], to[i]);
				return; /* the next rounds would only repeat it */
			}
			c->renames++;
		}
	}
}

static void exchanger(struct counts *c, int k)
{
	char x[4096], y[4096];

	path(x, sizeof(x), "d0", 'x', k);
	path(y, sizeof(y), "d0", 'y', k);
	while (now() < deadline) {
		if (renameat2(AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE) < 0) {
			bad(c, errno, "exchange %s %s", x, y);
			return;
		}
		c->exchanges++;
	}
}

/* A regular file of 3 bytes ("fK\n"), or absent when absent_ok. */
static void check_file(struct counts *c, const char *p, bool absent_ok)
{
	struct stat st;

	c->lstats++;
	if (lstat(p, &st) < 0) {
		if (errno != ENOENT || !absent_ok)
			bad(c, errno, "lstat %s", p);
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != 3)
		bad(c, 0, "lstat %s: mode %o size %lld, expected a regular file of 3 bytes", p, st.st_mode,
		    (long long)st.st_size);
}

static void reader(struct counts *c)
{
	char p[4096];

	while (now() < deadline) {
		for (int k = 0; k < n; k++) {
			struct stat st;

			path(p, sizeof(p), "d0", 'f', k);
			check_file(c, p, true);
			path(p, sizeof(p), "d0", 'g', k);
			check_file(c, p, true);
			path(p, sizeof(p), "d1", 'h', k);
			check_file(c, p, true);
			for (int i = 0; i < 2; i++) {
				path(p, sizeof(p), "d0", "xy"[i], k);
				c->lstats++;
				if (lstat(p, &st) < 0)
					bad(c, errno, "lstat %s", p);
				else if (!(S_ISREG(st.st_mode) && st.st_size == 3) && !S_ISDIR(st.st_mode))
					bad(c, 0, "lstat %s: mode %o size %lld, expected a regular file of 3 bytes or a directory",
					    p, st.st_mode, (long long)st.st_size);
			}
		}
	}
}

static void fstatter(struct counts *c, const int *fds)
{
	while (now() < deadline) {
		for (int k = 0; k < n; k++) {
			struct stat st;

			c->fstats++;
			if (fstat(fds[k], &st) < 0)
				bad(c, errno, "fstat of the open f%d", k);
			else if (!S_ISREG(st.st_mode) || st.st_size != 3)
				bad(c, 0, "fstat of the open f%d: mode %o size %lld, expected a regular file of 3 bytes", k,
				    st.st_mode, (long long)st.st_size);
		}
	}
}

/* 1 when stat(file) and lstat(upper) disagree on st_ctim, 0, or -1. */
static int ctime_stale(const char *file, const char *upper)
{
	struct stat a, b;

	if (stat(file, &a) < 0 || lstat(upper, &b) < 0)
		return -1;
	return a.st_ctim.tv_sec != b.st_ctim.tv_sec || a.st_ctim.tv_nsec != b.st_ctim.tv_nsec;
}

static int ctime_main(const char *file, const char *upper, int rounds)
{
	char moved[4096];
	int fd = open(file, O_RDONLY | O_CLOEXEC), stale = 0, checks = 0, r = 0;
	pid_t pid;

	snprintf(moved, sizeof(moved), "%s.moved", file);
	if (fd < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "renamestat: ctime: %s: %s\n", file, strerror(errno));
		return 99;
	}
	if (pid == 0) {
		struct stat st;

		for (;;)
			(void)fstat(fd, &st);
	}
	for (int i = 0; i < rounds && r >= 0; i++) {
		for (int step = 0; step < 2 && r >= 0; step++) {
			if (step == 0)
				r = rename(file, moved) < 0 || rename(moved, file) < 0 ? -1 : 0;
			else
				r = setxattr(file, "user.renamestat", &i, sizeof(i), 0);
			if (r == 0) {
				(void)usleep(1000);
				r = ctime_stale(file, upper);
			}
			if (r > 0)
				stale++;
			checks++;
		}
	}
	if (r < 0)
		fprintf(stderr, "renamestat: ctime: %s: %s\n", file, strerror(errno));
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	printf("ctime: %d of %d stats stale\n", stale, checks);
	return r < 0 ? 99 : stale != 0;
}

int main(int argc, char **argv)
{
	int nproc, fds[MAXN], status = 0;
	struct counts sum = { 0 };
	pid_t pids[3 * MAXN];
	char p[4096];
	double secs;

	if (argc == 5 && !strcmp(argv[1], "ctime"))
		return ctime_main(argv[2], argv[3], atoi(argv[4]));
	if (argc != 4 || (secs = atof(argv[2])) <= 0 || (n = atoi(argv[3])) < 1 || n > MAXN) {
		fprintf(stderr, "usage: renamestat MNT SECONDS N (1..%d)\n", MAXN);
		return 99;
	}
	mnt = argv[1];
	for (int k = 0; k < n; k++) {
		path(p, sizeof(p), "d0", 'f', k);
		fds[k] = open(p, O_RDONLY | O_CLOEXEC);
		if (fds[k] < 0) {
			fprintf(stderr, "renamestat: open %s: %s\n", p, strerror(errno));
			return 99;
		}
	}
	nproc = 2 * n + NREADERS + 1;
	shared = mmap(NULL, (size_t)nproc * sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		      0);
	if (shared == MAP_FAILED) {
		perror("renamestat: mmap");
		return 99;
	}
	deadline = now() + secs;
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("renamestat: fork");
			deadline = 0; /* the others stop at once */
			nproc = i;
			status = 99;
			break;
		}
		if (pids[i] == 0) {
			struct counts *c = &shared[i];

			if (i < n)
				mover(c, i);
			else if (i < 2 * n)
				exchanger(c, i - n);
			else if (i < 2 * n + NREADERS)
				reader(c);
			else
				fstatter(c, fds);
			_exit(0);
		}
	}
	for (int i = 0; i < nproc; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0) {
			perror("renamestat: waitpid");
			status = 99;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "renamestat: process %d ended with status %#x\n", i, st);
			sum.bad++;
		}
		sum.eio += shared[i].eio;
		sum.renames += shared[i].renames;
		sum.exchanges += shared[i].exchanges;
		sum.lstats += shared[i].lstats;
		sum.fstats += shared[i].fstats;
		sum.bad += shared[i].bad;
	}
	printf("renames %ld exchanges %ld lstats %ld fstats %ld unexpected %ld (EIO %ld)\n", sum.renames,
	       sum.exchanges, sum.lstats, sum.fstats, sum.bad, sum.eio);
	for (int k = 0; k < n; k++)
		(void)close(fds[k]);
	if (status)
		return status;
	return sum.bad ? 1 : 0;
}
