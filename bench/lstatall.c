/* lstatall ROOT LISTFILE: lstat ROOT/PATH for every PATH (one per line) in
 * LISTFILE, which is read entirely before the clock starts; prints the elapsed
 * seconds on stdout. Exits 1 if any lstat fails (after trying them all). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: lstatall ROOT LISTFILE\n");
		return 2;
	}
	FILE *f = fopen(argv[2], "r");
	if (!f) { perror(argv[2]); return 1; }
	size_t n = 0, cap = 1024;
	char **paths = malloc(cap * sizeof *paths);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (line[len - 1] == '\n') line[--len] = 0;
		if (!len) continue;
		if (n == cap) paths = realloc(paths, (cap *= 2) * sizeof *paths);
		if (asprintf(&paths[n++], "%s/%s", argv[1], line) < 0) return 1;
	}
	fclose(f);
	long bad = 0;
	struct stat st;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < n; i++)
		if (lstat(paths[i], &st) < 0) {
			if (bad++ < 5) perror(paths[i]);
		}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	if (bad) fprintf(stderr, "lstatall: %ld of %zu failed\n", bad, n);
	return bad ? 1 : 0;
}
