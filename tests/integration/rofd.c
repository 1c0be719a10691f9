/* rofd: metadata changes through a descriptor opened O_RDONLY, and a
 * reader that keeps one descriptor open across another process's writes
 * (copy-up triggers and coherence in the copy-up tests).
 *
 *   rofd fchmod P OCTAL | fchown P UID GID | fsetxattr P NAME VALUE |
 *        fremovexattr P NAME
 *   rofd futimens P   sets mtime to the value fstat reports (atime
 *                     UTIME_OMIT): a real change request that leaves
 *                     every time as it was
 *   rofd watch P      opens P O_RDONLY, prints "OPEN"; then for every line
 *                     read from stdin: a line "drop" first writes 3 to
 *                     /proc/sys/vm/drop_caches; then reads the whole file
 *                     with pread from offset 0 on the same descriptor and
 *                     prints "DATA <bytes>" (newline -> '|', other
 *                     non-printables as \xHH) or "ERR <errno name>".
 *                     Exits at EOF on stdin.
 *   rofd map P        prints the data segments ("data START END", bytes,
 *                     found with SEEK_DATA/SEEK_HOLE) and "size N"
 *
 * The one-shot ops print "OK" or the errno name, exit 0 when the call was
 * made, 99 on usage errors.
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
#include <sys/xattr.h>
#include <unistd.h>

static const char *ename(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "E?";
}

static int report(int r)
{
	puts(r < 0 ? ename(errno) : "OK");
	return 0;
}

static int usage(void)
{
	fputs("usage: rofd OP PATH ARGS... (see rofd.c)\n", stderr);
	return 99;
}

static void dump(int fd)
{
	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		printf("ERR %s\n", ename(errno));
		return;
	}
	fputs("DATA ", stdout);
	for (ssize_t i = 0; i < n; i++) {
		unsigned char c = buf[i];
		if (c == '\n')
			putchar('|');
		else if (c < 0x20 || c > 0x7e || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('\n');
}

static int watch(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("ERR %s\n", ename(errno));
		return 0;
	}
	puts("OPEN");
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "drop", 4)) {
			sync();
			int d = open("/proc/sys/vm/drop_caches", O_WRONLY);
			if (d < 0 || write(d, "3\n", 2) != 2) {
				printf("ERR drop_caches %s\n", ename(errno));
				fflush(stdout);
				if (d >= 0)
					close(d);
				continue;
			}
			close(d);
		}
		dump(fd);
		fflush(stdout);
	}
	close(fd);
	return 0;
}

static int map(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return report(-1);
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0) {
			if (errno != ENXIO)
				printf("ERR SEEK_DATA %s\n", ename(errno));
			break;
		}
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) {
			printf("ERR SEEK_HOLE %s\n", ename(errno));
			break;
		}
		printf("data %lld %lld\n", (long long)d, (long long)h);
		pos = h;
	}
	printf("size %lld\n", (long long)st.st_size);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *op = argv[1], *p = argv[2];
	int n = argc - 3;
	char **a = argv + 3;

	if (!strcmp(op, "watch") && n == 0)
		return watch(p);
	if (!strcmp(op, "map") && n == 0)
		return map(p);

	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	int r;
	if (!strcmp(op, "fchmod") && n == 1) {
		r = fchmod(fd, strtol(a[0], NULL, 8));
	} else if (!strcmp(op, "fchown") && n == 2) {
		r = fchown(fd, atoi(a[0]), atoi(a[1]));
	} else if (!strcmp(op, "fsetxattr") && n == 2) {
		r = fsetxattr(fd, a[0], a[1], strlen(a[1]), 0);
	} else if (!strcmp(op, "fremovexattr") && n == 1) {
		r = fremovexattr(fd, a[0]);
	} else if (!strcmp(op, "futimens") && n == 0) {
		struct stat st;
		r = fstat(fd, &st);
		if (r == 0) {
			struct timespec ts[2] = {
				{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
				st.st_mtim,
			};
			r = futimens(fd, ts);
		}
	} else {
		close(fd);
		return usage();
	}
	int e = errno;
	close(fd);
	errno = e;
	return report(r);
}
