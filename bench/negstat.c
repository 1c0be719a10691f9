/* negstat DIR COUNT [PREFIX]: fstatat(AT_SYMLINK_NOFOLLOW) of COUNT distinct
 * names PREFIX0000000, PREFIX0000001, ... (default PREFIX "n") relative to
 * DIR, which should not hold them: every call is a negative lookup, and each
 * name is asked once, so the kernel's negative dentry cache of the mount has
 * never seen it. The names are built before the clock starts; prints the
 * elapsed seconds on stdout. Exits 1 if any name exists or a call fails with
 * anything but ENOENT (after trying them all). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: negstat DIR COUNT [PREFIX]\n");
		return 2;
	}
	const char *prefix = argc == 4 ? argv[3] : "n";
	long n = atol(argv[2]);
	if (n <= 0 || strlen(prefix) > 200) {
		fprintf(stderr, "negstat: bad COUNT or PREFIX\n");
		return 2;
	}
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) { perror(argv[1]); return 1; }
	char **names = malloc(n * sizeof *names);
	if (!names) return 1;
	for (long i = 0; i < n; i++)
		if (asprintf(&names[i], "%s%07ld", prefix, i) < 0) return 1;
	long found = 0, bad = 0;
	struct stat st;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (found++ < 5) fprintf(stderr, "negstat: %s/%s exists\n", argv[1], names[i]);
		} else if (errno != ENOENT) {
			if (bad++ < 5) fprintf(stderr, "negstat: %s/%s: %s\n", argv[1], names[i], strerror(errno));
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	if (found || bad)
		fprintf(stderr, "negstat: %ld of %ld names exist, %ld other errors\n", found, n, bad);
	return found || bad ? 1 : 0;
}
