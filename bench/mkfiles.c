/* mkfiles DIR COUNT SIZE: create DIR/fNNNNN for NNNNN in [0, COUNT), each
 * written with SIZE bytes in one write(2) and closed (no fsync; run.sh syncs
 * once afterwards). One process, so fork/exec cost does not swamp the
 * filesystem's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: mkfiles DIR COUNT SIZE\n");
		return 2;
	}
	long count = atol(argv[2]);
	size_t size = strtoul(argv[3], NULL, 0);
	char *buf = malloc(size ? size : 1);
	memset(buf, 'u', size);
	char path[4096];
	for (long i = 0; i < count; i++) {
		snprintf(path, sizeof path, "%s/f%05ld", argv[1], i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) { perror(path); return 1; }
		if (write(fd, buf, size) != (ssize_t)size) { perror(path); return 1; }
		if (close(fd) < 0) { perror(path); return 1; }
	}
	return 0;
}
