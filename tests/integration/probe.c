/* probe: make one system call and print its outcome, so shell tests can
 * check exact errnos instead of parsing coreutils messages.
 *
 *   probe OP ARGS...
 *
 * Prints "OK" (plus a value for the ops that return one) or the errno
 * name (EROFS, ENAMETOOLONG, ...). Exit 0 whenever the call was made,
 * 99 on usage errors. Paths are used as given (relative to the cwd), and
 * nothing follows a final symlink unless the op says so (stat, open).
 *
 * Ops:
 *   lstat P | stat P | statfs P | readlink P | opendir P
 *   open P FLAGS      FLAGS letters: r w b(oth) c(reat) x(excl) t(runc) a(ppend)
 *                     d(irectory) n(ofollow) o (O_DIRECT); mode 0644 when creating
 *   read P            open O_RDONLY and read to the end
 *   write P           open O_WRONLY and write one byte
 *   creat P           O_CREAT|O_EXCL|O_WRONLY
 *   mkdir P | rmdir P | unlink P | mkfifo P
 *   rename A B | link A B | symlink TARGET P
 *   chmod P OCTAL | chown P UID GID (lchown) | truncate P LEN | utimes P
 *   setxattr P NAME VALUE | removexattr P NAME      (l* variants)
 *   getxattr P NAME   prints "OK VALUE" | listxattr P  prints "OK a,b,c"
 *   getxattr P NAME SIZE | listxattr P SIZE   with a SIZE-byte buffer
 *                     (0 asks for the size: prints "OK SIZE"; too small: ERANGE)
 *   fchmod P OCTAL | fchown P UID GID | fsetxattr P NAME VALUE |
 *   fremovexattr P NAME | futimens P  -- through an O_RDONLY descriptor
 *   fallocate P LEN   through an O_WRONLY descriptor
 *   rewrite P         open O_RDONLY, read a byte, close, then at once open
 *                     O_WRONLY and close: the answer of that second open
 *   mapwrite P        open O_RDWR, map it shared, stat P, flip the case of
 *                     the first byte through the mapping, stat P again while open:
 *                     prints "OK MTIME" (seconds) of that second stat
 *   mapwrite P quiet  the same without the stats: prints "OK"
 *   mapwrite P closed open O_RDWR, map it shared, close the descriptor, wait
 *                     0.2 s, stat P, flip the byte, wait 1.1 s, stat P again:
 *                     prints "OK MTIME" of that second stat
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

static int report(int r)
{
	if (r < 0)
		puts(strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
	else
		puts("OK");
	return 0;
}

static int usage(void)
{
	fputs("usage: probe OP ARGS... (see probe.c)\n", stderr);
	return 99;
}

static int open_flags(const char *s)
{
	int f = 0, acc = O_RDONLY;
	for (; *s; s++) {
		switch (*s) {
		case 'r': acc = O_RDONLY; break;
		case 'w': acc = O_WRONLY; break;
		case 'b': acc = O_RDWR; break;
		case 'c': f |= O_CREAT; break;
		case 'x': f |= O_EXCL; break;
		case 't': f |= O_TRUNC; break;
		case 'a': f |= O_APPEND; break;
		case 'd': f |= O_DIRECTORY; break;
		case 'n': f |= O_NOFOLLOW; break;
		case 'o': f |= O_DIRECT; break;
		default: return -1;
		}
	}
	return f | acc | O_CLOEXEC;
}

/* Open read-only, run the fd op, report its result (or open's error). */
static int with_rofd(const char *p, int (*fn)(int, char **), char **rest)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return report(-1);
	int r = fn(fd, rest);
	int e = errno;
	close(fd);
	errno = e;
	return report(r);
}

static int f_chmod(int fd, char **a) { return fchmod(fd, strtol(a[0], NULL, 8)); }
static int f_chown(int fd, char **a) { return fchown(fd, atoi(a[0]), atoi(a[1])); }
static int f_setx(int fd, char **a) { return fsetxattr(fd, a[0], a[1], strlen(a[1]), 0); }
static int f_remx(int fd, char **a) { return fremovexattr(fd, a[0]); }
static int f_utim(int fd, char **a) { (void)a; return futimens(fd, NULL); }

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *op = argv[1], *p = argv[2];
	int n = argc - 3;
	char **a = argv + 3;
	struct stat st;

	if (!strcmp(op, "lstat"))
		return report(lstat(p, &st));
	if (!strcmp(op, "stat"))
		return report(stat(p, &st));
	if (!strcmp(op, "statfs")) {
		struct statvfs s;
		if (statvfs(p, &s) < 0)
			return report(-1);
		printf("OK bsize=%lu frsize=%lu blocks=%llu files=%llu namemax=%lu\n",
		       s.f_bsize, s.f_frsize, (unsigned long long)s.f_blocks,
		       (unsigned long long)s.f_files, s.f_namemax);
		return 0;
	}
	if (!strcmp(op, "readlink")) {
		char t[8192];
		ssize_t r = readlink(p, t, sizeof(t) - 1);
		if (r < 0)
			return report(-1);
		t[r] = '\0';
		printf("OK %s\n", t);
		return 0;
	}
	if (!strcmp(op, "opendir")) {
		DIR *d = opendir(p);
		if (!d)
			return report(-1);
		closedir(d);
		return report(0);
	}
	if (!strcmp(op, "open") && n == 1) {
		int fl = open_flags(a[0]);
		if (fl < 0)
			return usage();
		int fd = open(p, fl, 0644);
		if (fd >= 0)
			close(fd);
		return report(fd);
	}
	if (!strcmp(op, "read")) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		char b[65536];
		ssize_t r;
		while ((r = read(fd, b, sizeof(b))) > 0)
			;
		int e = errno;
		close(fd);
		errno = e;
		return report(r < 0 ? -1 : 0);
	}
	if (!strcmp(op, "write")) {
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		ssize_t r = write(fd, "x", 1);
		int e = errno;
		if (close(fd) < 0 && r >= 0) {
			e = errno;
			r = -1;
		}
		errno = e;
		return report(r < 0 ? -1 : 0);
	}
	if (!strcmp(op, "creat")) {
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		return report(fd);
	}
	if (!strcmp(op, "mkdir"))
		return report(mkdir(p, 0755));
	if (!strcmp(op, "rmdir"))
		return report(rmdir(p));
	if (!strcmp(op, "unlink"))
		return report(unlink(p));
	if (!strcmp(op, "mkfifo"))
		return report(mkfifo(p, 0644));
	if (!strcmp(op, "rename") && n == 1)
		return report(rename(p, a[0]));
	if (!strcmp(op, "link") && n == 1)
		return report(link(p, a[0]));
	if (!strcmp(op, "symlink") && n == 1)
		return report(symlink(p, a[0]));
	if (!strcmp(op, "chmod") && n == 1)
		return report(fchmodat(AT_FDCWD, p, strtol(a[0], NULL, 8), 0));
	if (!strcmp(op, "chown") && n == 2)
		return report(lchown(p, atoi(a[0]), atoi(a[1])));
	if (!strcmp(op, "truncate") && n == 1)
		return report(truncate(p, atoll(a[0])));
	if (!strcmp(op, "utimes"))
		return report(utimensat(AT_FDCWD, p, NULL, AT_SYMLINK_NOFOLLOW));
	if (!strcmp(op, "setxattr") && n == 2)
		return report(lsetxattr(p, a[0], a[1], strlen(a[1]), 0));
	if (!strcmp(op, "removexattr") && n == 1)
		return report(lremovexattr(p, a[0]));
	if ((!strcmp(op, "getxattr") && n == 2) || (!strcmp(op, "listxattr") && n == 1)) {
		size_t sz = strtoul(a[n - 1], NULL, 0);
		char *v = malloc(sz + 1);
		ssize_t r = !strcmp(op, "getxattr") ? lgetxattr(p, a[0], sz ? v : NULL, sz)
						    : llistxattr(p, sz ? v : NULL, sz);
		free(v);
		if (r < 0)
			return report(-1);
		printf("OK %zd\n", r);
		return 0;
	}
	if (!strcmp(op, "getxattr") && n == 1) {
		char v[65536];
		ssize_t r = lgetxattr(p, a[0], v, sizeof(v) - 1);
		if (r < 0)
			return report(-1);
		v[r] = '\0';
		printf("OK %s\n", v);
		return 0;
	}
	if (!strcmp(op, "listxattr")) {
		char v[65536];
		ssize_t r = llistxattr(p, v, sizeof(v));
		if (r < 0)
			return report(-1);
		fputs("OK ", stdout);
		for (ssize_t i = 0; i < r; i += strlen(v + i) + 1)
			printf("%s%s", i ? "," : "", v + i);
		putchar('\n');
		return 0;
	}
	if (!strcmp(op, "fchmod") && n == 1)
		return with_rofd(p, f_chmod, a);
	if (!strcmp(op, "fchown") && n == 2)
		return with_rofd(p, f_chown, a);
	if (!strcmp(op, "fsetxattr") && n == 2)
		return with_rofd(p, f_setx, a);
	if (!strcmp(op, "fremovexattr") && n == 1)
		return with_rofd(p, f_remx, a);
	if (!strcmp(op, "futimens"))
		return with_rofd(p, f_utim, a);
	if (!strcmp(op, "fallocate") && n == 1) {
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		int r = fallocate(fd, 0, 0, atoll(a[0]));
		int e = errno;
		close(fd);
		errno = e;
		return report(r);
	}
	if (!strcmp(op, "rewrite")) {
		char c;
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		ssize_t r = read(fd, &c, 1);
		close(fd);
		if (r < 0)
			return report(-1);
		fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		return report(fd);
	}
	if (!strcmp(op, "mapwrite") && (n == 0 || (n == 1 && (!strcmp(a[0], "quiet") || !strcmp(a[0], "closed"))))) {
		bool quiet = n && !strcmp(a[0], "quiet"), closed = n && !strcmp(a[0], "closed");
		int fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		/* Mapping first: mmap itself makes the kernel drop the cached
		 * atime, which the first stat then refreshes. */
		char *m = mmap(NULL, 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (closed) {
			/* A moment for the kernel's RELEASE, sent in the background. */
			close(fd);
			fd = -1;
			usleep(200000);
		}
		int r = m == MAP_FAILED ? -1 : quiet ? 0 : stat(p, &st);
		if (r == 0) {
			m[0] ^= 0x20;
			if (closed)
				usleep(1100000);
			r = quiet ? 0 : stat(p, &st);
		}
		int e = errno;
		if (m != MAP_FAILED)
			munmap(m, 1);
		if (fd >= 0)
			close(fd);
		if (r < 0) {
			errno = e;
			return report(-1);
		}
		if (quiet)
			return report(0);
		printf("OK %lld\n", (long long)st.st_mtime);
		return 0;
	}
	return usage();
}
