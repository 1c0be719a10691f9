/* fsop: execute ONE filesystem operation given on argv and print exactly
 * one line: "OK", "OK VALUE" for the operations that return something, or
 * the errno name (ENOENT, EXDEV, ...) of the call that failed. The write
 * path tests run the same operation list through two mounts (kernel
 * overlayfs and the union) and compare these lines.
 *
 *   fsop OP ARGS...
 *
 * Exit status 0 whenever the operation was attempted (whatever its
 * outcome), 99 on usage errors (bad op, bad number). Paths are used as
 * given (relative to the cwd); no call follows a final symlink except
 * open() of an existing file for data (write, append, ftruncate, ...).
 *
 * Namespace:
 *   create P MODE              open(O_CREAT|O_EXCL|O_WRONLY, MODE)
 *   create-write P MODE STRING the same, then write STRING through that descriptor
 *   mknod P reg|fifo|sock [MODE]      (MODE default 0644)
 *   mknod P chr|blk MAJ MIN [MODE]
 *   mkdir P MODE | rmdir P | unlink P
 *   symlink TARGET P | link OLD NEW
 *   rename OLD NEW [noreplace|exchange|whiteout]    renameat2(2)
 * Data (descriptor opened O_WRONLY unless said otherwise):
 *   write P OFF STRING         pwrite STRING at OFF
 *   append P STRING            O_APPEND write
 *   truncate P LEN | ftruncate P LEN
 *   fallocate P MODE OFF LEN   MODE: 0 | keep | punch | zero | collapse |
 *                              insert | a number
 *   fsync P ro|rw              fsync + fdatasync on a descriptor of that kind
 *   write-fsync P OFF STRING   pwrite, fsync, close
 *   copy_file_range SRC DST LEN [SRCOFF DSTOFF]
 *                              DST opened O_WRONLY|O_CREAT (0644); loops until
 *                              LEN bytes or EOF; prints "OK COPIED"
 *   seek_data P OFF | seek_hole P OFF   prints "OK OFFSET" (ENXIO past data)
 *   cohere P STRING            open P O_RDONLY, then write STRING at 0
 *                              through a second O_WRONLY descriptor, close
 *                              it, pread the first one: "OK CONTENT"
 * Attributes (by path: never following a final symlink):
 *   chmod P MODE | chown P UID GID (lchown; -1 keeps)
 *   utimens P ATIME MTIME      each: SEC[.FRACTION] | now | omit
 *                              (1.5 is 1 s 500000000 ns)
 *   setxattr P NAME VALUE [create|replace] | removexattr P NAME
 *                              VALUE "hex:0201..." is binary (ACLs)
 *   getxattr P NAME            "OK VALUE" (bytes outside 0x21..0x7e as \xHH)
 *   listxattr P                "OK a,b,c" sorted
 * Through a descriptor opened O_RDONLY (the calls that must copy up too):
 *   fchmod-ro P MODE | fchown-ro P UID GID | futimens-ro P ATIME MTIME |
 *   fsetxattr-ro P NAME VALUE | fremovexattr-ro P NAME
 * Looking (to put the visible state into the answer list):
 *   stat P        "OK TYPE MODE UID:GID SIZE NLINK [MAJ:MIN]" (lstat)
 *   times P       "OK a=SEC.NSEC m=SEC.NSEC" (lstat)
 *   mtime P       "OK m=SEC.NSEC" (lstat; atime moves with every read)
 *   read P [OFF LEN]  "OK CONTENT" (escaped as getxattr, at most 4096 bytes)
 *   readdir P     "OK name/t,name/t,..." sorted, without . and ..
 *   readlink P    "OK TARGET"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dtype.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_COLLAPSE_RANGE
#define FALLOC_FL_COLLAPSE_RANGE 0x08
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif
#ifndef FALLOC_FL_INSERT_RANGE
#define FALLOC_FL_INSERT_RANGE 0x20
#endif

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

/* Print the outcome of a call that returned r (< 0: errno is the cause). */
static int report(long r)
{
	if (r < 0)
		puts(errname(errno));
	else
		puts("OK");
	return 0;
}

/* Print "ERRNAME" for the saved errno e. */
static int report_err(int e)
{
	puts(errname(e));
	return 0;
}

static int usage(const char *why)
{
	fprintf(stderr, "fsop: %s (usage: fsop OP ARGS..., see fsop.c)\n", why);
	return 99;
}

static int bad;	/* set by the parsers below on malformed numbers */

static long long num(const char *s, int base)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, base);
	if (errno || end == s || *end)
		bad = 1;
	return v;
}

static int close_keep(int fd, int r)
{
	/* Close fd; a close failure turns a success into that failure. */
	int e = errno;
	if (close(fd) < 0 && r >= 0)
		return -1;
	errno = e;
	return r;
}

static void esc_print(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c > 0x20 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

/* "SEC.NSEC" | "SEC" | "now" | "omit" -> timespec; bad on anything else. */
static struct timespec tspec(const char *s)
{
	struct timespec ts = { 0, 0 };
	if (!strcmp(s, "now")) {
		ts.tv_nsec = UTIME_NOW;
		return ts;
	}
	if (!strcmp(s, "omit")) {
		ts.tv_nsec = UTIME_OMIT;
		return ts;
	}
	char buf[64];
	if (strlen(s) >= sizeof(buf)) {
		bad = 1;
		return ts;
	}
	strcpy(buf, s);
	char *dot = strchr(buf, '.');
	if (dot)
		*dot = '\0';
	ts.tv_sec = num(buf, 10);
	if (dot) {
		/* a decimal fraction: "5.25" is 5 s 250000000 ns */
		const char *f = dot + 1;
		size_t k = strlen(f);
		if (k == 0 || k > 9 || strspn(f, "0123456789") != k)
			bad = 1;
		for (size_t i = 0; i < 9; i++)
			ts.tv_nsec = ts.tv_nsec * 10 + (i < k ? f[i] - '0' : 0);
	}
	return ts;
}

static int falloc_mode(const char *s)
{
	if (!strcmp(s, "0"))
		return 0;
	if (!strcmp(s, "keep"))
		return FALLOC_FL_KEEP_SIZE;
	if (!strcmp(s, "punch"))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (!strcmp(s, "zero"))
		return FALLOC_FL_ZERO_RANGE;
	if (!strcmp(s, "collapse"))
		return FALLOC_FL_COLLAPSE_RANGE;
	if (!strcmp(s, "insert"))
		return FALLOC_FL_INSERT_RANGE;
	return (int)num(s, 0);
}

static char type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	}
	return '?';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An xattr VALUE argument: "hex:0a0b..." is decoded (binary values such
 * as system.posix_acl_access), anything else is taken as is. Sets bad on
 * a malformed hex string. */
static char xbuf[65536];
static const char *xval(const char *s, size_t *len)
{
	if (strncmp(s, "hex:", 4) != 0) {
		*len = strlen(s);
		return s;
	}
	s += 4;
	size_t n = strlen(s);
	if (n % 2 || n / 2 > sizeof(xbuf)) {
		bad = 1;
		*len = 0;
		return xbuf;
	}
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1])) {
			bad = 1;
			break;
		}
		xbuf[i] = (char)v;
	}
	*len = n / 2;
	return xbuf;
}

/* Open P read-only (no final symlink) for the *-ro ops. */
static int open_ro(const char *p)
{
	return open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static int op_stat(const char *p)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return report(-1);
	printf("OK %c %04o %u:%u %lld %lu", type_char(st.st_mode),
	       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
	       (unsigned)st.st_gid, (long long)st.st_size,
	       (unsigned long)st.st_nlink);
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		printf(" %u:%u", major(st.st_rdev), minor(st.st_rdev));
	putchar('\n');
	return 0;
}

static int op_read(const char *p, long long off, long long len)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	static char b[4096];
	if (len < 0 || len > (long long)sizeof(b))
		len = sizeof(b);
	size_t got = 0;
	while (got < (size_t)len) {
		ssize_t r = pread(fd, b + got, len - got, off + got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return report_err(e);
		}
		if (r == 0)
			break;
		got += r;
	}
	if (close(fd) < 0)
		return report(-1);
	fputs("OK ", stdout);
	esc_print(b, got);
	putchar('\n');
	return 0;
}

/* The names collected so far, when a listing fails half-way: an ASan
 * build's leak check would otherwise turn the errno answer into a report. */
static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int op_readdir(const char *p)
{
	DIR *d = opendir(p);
	if (!d)
		return report(-1);
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));
	if (!v) {
		closedir(d);
		return report(-1);
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				int e = errno;
				closedir(d);
				free_names(v, n);
				return report_err(e);
			}
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap *= 2;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				int e = errno;
				closedir(d);
				free_names(v, n);
				return report_err(e);
			}
			v = nv;
		}
		if (asprintf(&v[n], "%s/%c", de->d_name, dtype_char(de->d_type)) < 0) {
			int e = errno;
			closedir(d);
			free_names(v, n);
			return report_err(e);
		}
		n++;
	}
	if (closedir(d) < 0) {
		int e = errno;
		free_names(v, n);
		return report_err(e);
	}
	qsort(v, n, sizeof(*v), cmp_str);
	fputs("OK ", stdout);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		esc_print(v[i], strlen(v[i]));
		free(v[i]);
	}
	putchar('\n');
	free(v);
	return 0;
}

static int op_getxattr(const char *p, const char *name)
{
	static char v[65536];
	ssize_t r = lgetxattr(p, name, v, sizeof(v));
	if (r < 0)
		return report(-1);
	fputs("OK ", stdout);
	esc_print(v, r);
	putchar('\n');
	return 0;
}

static int op_listxattr(const char *p)
{
	static char v[65536];
	ssize_t r = llistxattr(p, v, sizeof(v));
	if (r < 0)
		return report(-1);
	char *names[4096];
	size_t n = 0;
	for (ssize_t i = 0; i < r && n < 4096; i += strlen(v + i) + 1)
		names[n++] = v + i;
	qsort(names, n, sizeof(*names), cmp_str);
	fputs("OK ", stdout);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		esc_print(names[i], strlen(names[i]));
	}
	putchar('\n');
	return 0;
}

static int op_pwrite(const char *p, int flags, long long off, const char *s, int sync)
{
	int fd = open(p, flags | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	size_t len = strlen(s), done = 0;
	while (done < len) {
		ssize_t r = (flags & O_APPEND) ? write(fd, s + done, len - done)
					       : pwrite(fd, s + done, len - done, off + done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return report(close_keep(fd, -1));
		}
		if (r == 0) {
			close(fd);
			errno = EIO;
			return report(-1);
		}
		done += r;
	}
	if (sync && fsync(fd) < 0)
		return report(close_keep(fd, -1));
	return report(close_keep(fd, 0));
}

static int op_copy_file_range(const char *src, const char *dst, long long len,
			      long long soff, long long doff)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return report(-1);
	int out = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;
		close(in);
		return report_err(e);
	}
	off64_t so = soff, dof = doff;
	long long total = 0;
	while (total < len) {
		ssize_t r = copy_file_range(in, &so, out, &dof, len - total, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(in);
			close(out);
			return report_err(e);
		}
		if (r == 0)
			break;
		total += r;
	}
	if (close(in) < 0) {
		int e = errno;
		close(out);
		return report_err(e);
	}
	if (close(out) < 0)
		return report(-1);
	printf("OK %lld\n", total);
	return 0;
}

static int op_seek(const char *p, int whence, long long off)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	off_t r = lseek(fd, off, whence);
	if (r < 0)
		return report(close_keep(fd, -1));
	if (close(fd) < 0)
		return report(-1);
	printf("OK %lld\n", (long long)r);
	return 0;
}

/* Open P (existing or new), write S, unlink P, then fstat, fchmod and
 * read through the descriptor, and again after a new P appears:
 * "OK size nlink mode content". */
static int op_unlinked(const char *p, const char *s)
{
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	static char b[4096];
	ssize_t r;
	if (fd < 0)
		return report(-1);
	if (pwrite(fd, s, strlen(s), 0) != (ssize_t)strlen(s) || unlink(p) < 0)
		return report(close_keep(fd, -1));
	int nfd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (nfd < 0 || close(nfd) < 0)
		return report(close_keep(fd, -1));
	if (fchmod(fd, 0640) < 0 || fstat(fd, &st) < 0)
		return report(close_keep(fd, -1));
	r = pread(fd, b, sizeof(b), 0);
	if (r < 0)
		return report(close_keep(fd, -1));
	if (close(fd) < 0)
		return report(-1);
	printf("OK %lld %lu %o ", (long long)st.st_size, (unsigned long)st.st_nlink, (unsigned)(st.st_mode & 07777));
	esc_print(b, r);
	putchar('\n');
	return 0;
}

static int op_cohere(const char *p, const char *s)
{
	int ro = open(p, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		return report(-1);
	int wr = open(p, O_WRONLY | O_CLOEXEC);
	if (wr < 0)
		return report(close_keep(ro, -1));
	size_t len = strlen(s);
	ssize_t w = pwrite(wr, s, len, 0);
	if (w < 0) {
		int e = errno;
		close(wr);
		close(ro);
		return report_err(e);
	}
	if (close(wr) < 0 || (size_t)w != len) {
		int e = (size_t)w != len ? EIO : errno;
		close(ro);
		return report_err(e);
	}
	static char b[4096];
	ssize_t r = pread(ro, b, sizeof(b), 0);
	if (r < 0)
		return report(close_keep(ro, -1));
	if (close(ro) < 0)
		return report(-1);
	fputs("OK ", stdout);
	esc_print(b, r);
	putchar('\n');
	return 0;
}

static int op_fsync(const char *p, const char *how)
{
	int fl;
	if (!strcmp(how, "ro"))
		fl = O_RDONLY;
	else if (!strcmp(how, "rw"))
		fl = O_RDWR;
	else
		return usage("fsync: ro or rw");
	int fd = open(p, fl | O_CLOEXEC);
	if (fd < 0)
		return report(-1);
	if (fsync(fd) < 0 || fdatasync(fd) < 0)
		return report(close_keep(fd, -1));
	return report(close_keep(fd, 0));
}

/* The *-ro ops: open read-only, make the call on the descriptor. */
static int op_ro(const char *op, const char *p, int n, char **a)
{
	struct timespec ts[2];
	long long x = 0, y = 0;
	const char *v = NULL;
	size_t vlen = 0;
	if (!strcmp(op, "fchmod-ro") && n == 1)
		x = num(a[0], 8);
	else if (!strcmp(op, "fchown-ro") && n == 2) {
		x = num(a[0], 10);
		y = num(a[1], 10);
	} else if (!strcmp(op, "futimens-ro") && n == 2) {
		ts[0] = tspec(a[0]);
		ts[1] = tspec(a[1]);
	} else if (!strcmp(op, "fsetxattr-ro") && n == 2)
		v = xval(a[1], &vlen);
	else if (!(!strcmp(op, "fremovexattr-ro") && n == 1))
		return usage("bad -ro op or argument count");
	if (bad)
		return usage("bad number");
	int fd = open_ro(p);
	if (fd < 0)
		return report(-1);
	int r;
	if (!strcmp(op, "fchmod-ro"))
		r = fchmod(fd, (mode_t)x);
	else if (!strcmp(op, "fchown-ro"))
		r = fchown(fd, (uid_t)x, (gid_t)y);
	else if (!strcmp(op, "futimens-ro"))
		r = futimens(fd, ts);
	else if (!strcmp(op, "fsetxattr-ro"))
		r = fsetxattr(fd, a[0], v, vlen, 0);
	else
		r = fremovexattr(fd, a[0]);
	return report(close_keep(fd, r));
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage("no op");
	const char *op = argv[1], *p = argv[2];
	int n = argc - 3;
	char **a = argv + 3;
	long r;

	/* ---- namespace */
	if (!strcmp(op, "create") && n == 1) {
		mode_t m = (mode_t)num(a[0], 8);
		if (bad)
			return usage("bad mode");
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, m);
		if (fd < 0)
			return report(-1);
		return report(close_keep(fd, 0));
	}
	if (!strcmp(op, "create-write") && n == 2) {
		mode_t m = (mode_t)num(a[0], 8);
		size_t len = strlen(a[1]);
		if (bad)
			return usage("bad mode");
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, m);
		if (fd < 0)
			return report(-1);
		ssize_t w = write(fd, a[1], len);
		if (w != (ssize_t)len) {
			if (w >= 0)
				errno = EIO;
			return report(close_keep(fd, -1));
		}
		return report(close_keep(fd, 0));
	}
	if (!strcmp(op, "mknod") && n >= 1) {
		mode_t m = 0644, ty;
		dev_t dev = 0;
		int rest;
		if (!strcmp(a[0], "reg"))
			ty = S_IFREG, rest = 1;
		else if (!strcmp(a[0], "fifo"))
			ty = S_IFIFO, rest = 1;
		else if (!strcmp(a[0], "sock"))
			ty = S_IFSOCK, rest = 1;
		else if (!strcmp(a[0], "chr") || !strcmp(a[0], "blk")) {
			ty = a[0][0] == 'c' ? S_IFCHR : S_IFBLK;
			if (n < 3)
				return usage("mknod chr|blk MAJ MIN");
			dev = makedev((unsigned)num(a[1], 0), (unsigned)num(a[2], 0));
			rest = 3;
		} else
			return usage("mknod type");
		if (n == rest + 1)
			m = (mode_t)num(a[rest], 8);
		else if (n != rest)
			return usage("mknod arguments");
		if (bad)
			return usage("bad number");
		return report(mknod(p, ty | (m & 07777), dev));
	}
	if (!strcmp(op, "mkdir") && n == 1) {
		mode_t m = (mode_t)num(a[0], 8);
		if (bad)
			return usage("bad mode");
		return report(mkdir(p, m));
	}
	if (!strcmp(op, "rmdir") && n == 0)
		return report(rmdir(p));
	if (!strcmp(op, "unlink") && n == 0)
		return report(unlink(p));
	if (!strcmp(op, "symlink") && n == 1)
		return report(symlink(p, a[0]));
	if (!strcmp(op, "link") && n == 1)
		return report(link(p, a[0]));
	if (!strcmp(op, "rename") && (n == 1 || n == 2)) {
		unsigned fl = 0;
		if (n == 2) {
			if (!strcmp(a[1], "noreplace"))
				fl = RENAME_NOREPLACE;
			else if (!strcmp(a[1], "exchange"))
				fl = RENAME_EXCHANGE;
			else if (!strcmp(a[1], "whiteout"))
				fl = RENAME_WHITEOUT;
			else
				return usage("rename flag");
		}
		r = syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, a[0], fl);
		return report(r);
	}

	/* ---- data */
	if (!strcmp(op, "write") && n == 2) {
		long long off = num(a[0], 0);
		if (bad)
			return usage("bad offset");
		return op_pwrite(p, O_WRONLY, off, a[1], 0);
	}
	if (!strcmp(op, "write-fsync") && n == 2) {
		long long off = num(a[0], 0);
		if (bad)
			return usage("bad offset");
		return op_pwrite(p, O_WRONLY, off, a[1], 1);
	}
	if (!strcmp(op, "append") && n == 1)
		return op_pwrite(p, O_WRONLY | O_APPEND, 0, a[0], 0);
	if (!strcmp(op, "truncate") && n == 1) {
		long long len = num(a[0], 0);
		if (bad)
			return usage("bad length");
		return report(truncate(p, len));
	}
	if (!strcmp(op, "ftruncate") && n == 1) {
		long long len = num(a[0], 0);
		if (bad)
			return usage("bad length");
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		return report(close_keep(fd, ftruncate(fd, len)));
	}
	if (!strcmp(op, "fallocate") && n == 3) {
		int m = falloc_mode(a[0]);
		long long off = num(a[1], 0), len = num(a[2], 0);
		if (bad)
			return usage("bad number");
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return report(-1);
		return report(close_keep(fd, fallocate(fd, m, off, len)));
	}
	if (!strcmp(op, "fsync") && n == 1)
		return op_fsync(p, a[0]);
	if (!strcmp(op, "copy_file_range") && (n == 2 || n == 4)) {
		long long len = num(a[1], 0), so = 0, dof = 0;
		if (n == 4) {
			so = num(a[2], 0);
			dof = num(a[3], 0);
		}
		if (bad)
			return usage("bad number");
		return op_copy_file_range(p, a[0], len, so, dof);
	}
	if ((!strcmp(op, "seek_data") || !strcmp(op, "seek_hole")) && n == 1) {
		long long off = num(a[0], 0);
		if (bad)
			return usage("bad offset");
		return op_seek(p, op[5] == 'd' ? SEEK_DATA : SEEK_HOLE, off);
	}
	if (!strcmp(op, "unlinked") && n == 1)
		return op_unlinked(p, a[0]);
	if (!strcmp(op, "cohere") && n == 1)
		return op_cohere(p, a[0]);

	/* ---- attributes */
	if (!strcmp(op, "chmod") && n == 1) {
		mode_t m = (mode_t)num(a[0], 8);
		if (bad)
			return usage("bad mode");
		return report(fchmodat(AT_FDCWD, p, m, 0));
	}
	if (!strcmp(op, "chown") && n == 2) {
		long long u = num(a[0], 10), g = num(a[1], 10);
		if (bad)
			return usage("bad id");
		return report(lchown(p, (uid_t)u, (gid_t)g));
	}
	if (!strcmp(op, "utimens") && n == 2) {
		struct timespec ts[2] = { tspec(a[0]), tspec(a[1]) };
		if (bad)
			return usage("bad time (SEC.NSEC, now, omit)");
		return report(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW));
	}
	if (!strcmp(op, "setxattr") && (n == 2 || n == 3)) {
		int fl = 0;
		if (n == 3) {
			if (!strcmp(a[2], "create"))
				fl = XATTR_CREATE;
			else if (!strcmp(a[2], "replace"))
				fl = XATTR_REPLACE;
			else
				return usage("setxattr flag: create or replace");
		}
		size_t vlen;
		const char *v = xval(a[1], &vlen);
		if (bad)
			return usage("bad hex: value");
		return report(lsetxattr(p, a[0], v, vlen, fl));
	}
	if (!strcmp(op, "removexattr") && n == 1)
		return report(lremovexattr(p, a[0]));
	if (!strcmp(op, "getxattr") && n == 1)
		return op_getxattr(p, a[0]);
	if (!strcmp(op, "listxattr") && n == 0)
		return op_listxattr(p);
	if (!strncmp(op, "f", 1) && strlen(op) > 3 && !strcmp(op + strlen(op) - 3, "-ro"))
		return op_ro(op, p, n, a);

	/* ---- looking */
	if (!strcmp(op, "stat") && n == 0)
		return op_stat(p);
	if (!strcmp(op, "times") && n == 0) {
		struct stat st;
		if (lstat(p, &st) < 0)
			return report(-1);
		printf("OK a=%lld.%09ld m=%lld.%09ld\n", (long long)st.st_atim.tv_sec,
		       st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec,
		       st.st_mtim.tv_nsec);
		return 0;
	}
	if (!strcmp(op, "mtime") && n == 0) {
		struct stat st;
		if (lstat(p, &st) < 0)
			return report(-1);
		printf("OK m=%lld.%09ld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		return 0;
	}
	if (!strcmp(op, "read") && (n == 0 || n == 2)) {
		long long off = 0, len = -1;
		if (n == 2) {
			off = num(a[0], 0);
			len = num(a[1], 0);
		}
		if (bad)
			return usage("bad number");
		return op_read(p, off, len);
	}
	if (!strcmp(op, "readdir") && n == 0)
		return op_readdir(p);
	if (!strcmp(op, "readlink") && n == 0) {
		static char t[PATH_MAX + 1];
		ssize_t l = readlink(p, t, sizeof(t) - 1);
		if (l < 0)
			return report(-1);
		fputs("OK ", stdout);
		esc_print(t, l);
		putchar('\n');
		return 0;
	}
	return usage("unknown op or wrong argument count");
}
