/*
 * callcost DIR NAME: what one branch call costs by each route src/sys.c
 * can take, on DIR/NAME (a directory there; DIR on the filesystem to
 * measure). Each call is repeated 200,000 times; the mean is printed in
 * microseconds. The /proc routes are the fd's magic link as the daemon
 * uses it (its working directory is /proc/self/fd); the others are the
 * calls it prefers where the kernel has them (Linux 6.13's getxattrat,
 * 6.6's fchmodat2; f*xattr on the fd itself). The xattr asked for is
 * absent, as for most marker reads (ENODATA).
 * bench/README.md, "Calls relative to a directory fd".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define N 200000
#define KEY "trusted.overlay.opaque"

struct xattrat_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(const char *what, double t0)
{
	printf("%-44s %6.2f us\n", what, (now() - t0) / N * 1e6);
}

int main(int argc, char **argv)
{
	char buf[64], path[128];
	struct xattrat_args a = { .value = (uintptr_t)buf, .size = sizeof(buf) };
	int dfd, pfd, sub;
	double t0;

	if (argc != 3) {
		fprintf(stderr, "usage: callcost DIR NAME\n");
		return 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	pfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || pfd < 0 || fchdir(pfd) < 0) {
		perror("callcost");
		return 1;
	}
	sub = openat(dfd, argv[2], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (sub < 0) {
		perror(argv[2]);
		return 1;
	}

	t0 = now();
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%d/%s", dfd, argv[2]);
		(void)lgetxattr(path, KEY, buf, sizeof(buf));
	}
	report("xattr of dir/name, /proc (lgetxattr)", t0);
	t0 = now();
	for (int i = 0; i < N; i++)
		(void)syscall(464, dfd, argv[2], AT_SYMLINK_NOFOLLOW, KEY, &a, sizeof(a));
	report("xattr of dir/name, getxattrat", t0);

	t0 = now();
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%d", sub);
		(void)getxattr(path, KEY, buf, sizeof(buf));
	}
	report("xattr of the fd itself, /proc (getxattr)", t0);
	t0 = now();
	for (int i = 0; i < N; i++)
		(void)fgetxattr(sub, KEY, buf, sizeof(buf));
	report("xattr of the fd itself, fgetxattr", t0);

	t0 = now();
	for (int i = 0; i < N; i++) {
		int fd = openat(dfd, argv[2], O_PATH | O_NOFOLLOW);

		snprintf(path, sizeof(path), "%d", fd);
		(void)chmod(path, 0755);
		(void)close(fd);
	}
	report("chmod of dir/name, /proc (O_PATH, chmod, close)", t0);
	t0 = now();
	for (int i = 0; i < N; i++)
		(void)syscall(452, dfd, argv[2], 0755, AT_SYMLINK_NOFOLLOW);
	report("chmod of dir/name, fchmodat2", t0);
	return 0;
}
