/* randread FILE COUNT [SEED]: COUNT preads of 4 KiB at random 4 KiB-aligned
 * offsets of FILE (opened O_RDONLY); prints the elapsed seconds on stdout.
 * Part of the unionmount benchmark harness (bench/run.sh). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng;
static uint64_t next(void)
{
	/* xorshift64*: deterministic across runs and systems */
	rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: randread FILE COUNT [SEED]\n");
		return 2;
	}
	long count = atol(argv[2]);
	rng = argc > 3 ? strtoull(argv[3], NULL, 0) : 0x9e3779b97f4a7c15ULL;
	if (!rng) rng = 1;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) { perror(argv[1]); return 1; }
	struct stat st;
	if (fstat(fd, &st) < 0) { perror("fstat"); return 1; }
	uint64_t blocks = (uint64_t)st.st_size / 4096;
	if (!blocks) { fprintf(stderr, "%s: smaller than 4 KiB\n", argv[1]); return 1; }
	static char buf[4096] __attribute__((aligned(4096)));
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < count; i++) {
		off_t off = (off_t)(next() % blocks) * 4096;
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n != (ssize_t)sizeof buf) {
			fprintf(stderr, "pread at %lld: %zd\n", (long long)off, n);
			if (n < 0) perror("pread");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	close(fd);
	return 0;
}
