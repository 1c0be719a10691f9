/* treedump: print a directory tree as text, for diffing a union against
 * its oracle (kernel overlayfs on the same layers) or a branch against
 * itself before and after a batch of writes.
 *
 *   treedump [-s] [-C] [-X] ROOT
 *
 * One line per object, in strcmp order, paths relative to ROOT ("." is
 * ROOT itself), every byte outside 0x21..0x7e and the backslash written
 * as \xHH so names with spaces, newlines or invalid UTF-8 stay one field:
 *
 *   PATH TYPE m=MODE o=UID:GID [s=SIZE n=NLINK t=MTIME c=CTIME] [b=BLOCKS]
 *        [i=INO] [r=MAJ:MIN] [l=TARGET] [h=HASH/LENGTH]
 *     e PATH NAME DTYPE          one per readdir entry, "." and ".." included
 *     x PATH NAME=VALUE          one per xattr (llistxattr/lgetxattr)
 *
 * Directory size, nlink and times are left out by default: in a union
 * they belong to whichever branch holds the directory and change when the
 * daemon writes its own entries into upper. st_blocks is shown for regular
 * files. -s ("strict", for checksumming a branch) adds st_ino and those
 * directory fields.
 * -C skips file contents, -X skips xattrs.
 *
 * Everything is reached with *at() calls relative to directory fds and
 * O_NOFOLLOW, so paths longer than PATH_MAX from the root still work.
 * Anomalies that need no oracle to be wrong are printed as lines starting
 * with '!' and make the exit status 2:
 *   !dup     a name returned twice by one readdir pass
 *   !dot     "." or ".." missing
 *   !noent   readdir returned a name that lstat cannot find
 *   !dtype   d_type disagrees with lstat (DT_UNKNOWN is reported as such)
 * Errors reading an object are printed as "! PATH err OP ERRNO".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dtype.h"

static int strict, no_content, no_xattr, anomalies;

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			perror("realloc");
			exit(99);
		}
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void esc_add(struct buf *b, const unsigned char *s, size_t n)
{
	char tmp[5];
	for (size_t i = 0; i < n; i++) {
		if (s[i] > 0x20 && s[i] < 0x7f && s[i] != '\\') {
			buf_add(b, (const char *)&s[i], 1);
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
			buf_add(b, tmp, 4);
		}
	}
}

static void esc_print(const char *s)
{
	struct buf b = { 0 };
	esc_add(&b, (const unsigned char *)s, strlen(s));
	fputs(b.p ? b.p : "", stdout);
	free(b.p);
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

static void err_line(const char *path, const char *op, int e)
{
	fputs("! ", stdout);
	esc_print(path);
	printf(" err %s %s\n", op, strerrorname_np(e) ? strerrorname_np(e) : "?");
	anomalies = 1;
}

/* FNV-1a 64 over the content: enough to tell two files apart in a diff. */
static void content_hash(int dirfd, const char *name, const char *path)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		printf(" h=ERR:%s", strerrorname_np(errno));
		return;
	}
	uint64_t h = 1469598103934665603ULL;
	unsigned long long total = 0;
	static unsigned char b[1 << 16];
	for (;;) {
		ssize_t n = read(fd, b, sizeof(b));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			printf(" h=ERR:%s", strerrorname_np(errno));
			close(fd);
			(void)path;
			return;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			h ^= b[i];
			h *= 1099511628211ULL;
		}
		total += n;
	}
	close(fd);
	printf(" h=%016llx/%llu", (unsigned long long)h, total);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* cwd must be the directory holding name (fchdir by the caller). */
static void dump_xattrs(const char *name, const char *path)
{
	ssize_t n = llistxattr(name, NULL, 0);
	if (n < 0) {
		if (errno != ENOTSUP)
			err_line(path, "llistxattr", errno);
		return;
	}
	if (n == 0)
		return;
	char *list = malloc(n + 1);
	ssize_t n2 = llistxattr(name, list, n);
	if (n2 < 0) {
		err_line(path, "llistxattr2", errno);
		free(list);
		return;
	}
	size_t cnt = 0;
	for (ssize_t i = 0; i < n2; i += strlen(list + i) + 1)
		cnt++;
	char **names = calloc(cnt + 1, sizeof(*names));
	cnt = 0;
	for (ssize_t i = 0; i < n2; i += strlen(list + i) + 1)
		names[cnt++] = list + i;
	qsort(names, cnt, sizeof(*names), cmp_str);
	for (size_t i = 0; i < cnt; i++) {
		struct buf b = { 0 };
		buf_add(&b, "  x ", 4);
		esc_add(&b, (const unsigned char *)path, strlen(path));
		buf_add(&b, " ", 1);
		esc_add(&b, (const unsigned char *)names[i], strlen(names[i]));
		buf_add(&b, "=", 1);
		ssize_t vl = lgetxattr(name, names[i], NULL, 0);
		if (vl < 0) {
			char e[64];
			snprintf(e, sizeof(e), "ERR:%s", strerrorname_np(errno));
			buf_add(&b, e, strlen(e));
			anomalies = 1;
		} else {
			char *v = malloc(vl + 1);
			ssize_t vl2 = lgetxattr(name, names[i], v, vl);
			if (vl2 < 0) {
				char e[64];
				snprintf(e, sizeof(e), "ERR2:%s", strerrorname_np(errno));
				buf_add(&b, e, strlen(e));
				anomalies = 1;
			} else {
				esc_add(&b, (unsigned char *)v, vl2);
			}
			free(v);
		}
		puts(b.p);
		free(b.p);
	}
	free(names);
	free(list);
}

static char *join(const char *dir, const char *name)
{
	char *p;
	if (strcmp(dir, ".") == 0)
		p = strdup(name);
	else if (asprintf(&p, "%s/%s", dir, name) < 0)
		p = NULL;
	if (!p) {
		perror("alloc");
		exit(99);
	}
	return p;
}

static void dump_dir(int fd, const char *path);

/* Print the object line for dirfd/name; recurse into directories. */
static void dump_obj(int dirfd, const char *name, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		err_line(path, "lstat", errno);
		return;
	}
	esc_print(path);
	printf(" %c m=%04o o=%u:%u", type_char(st.st_mode),
	       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
	       (unsigned)st.st_gid);
	if (!S_ISDIR(st.st_mode) || strict)
		printf(" s=%lld n=%lu t=%lld.%09ld c=%lld.%09ld",
		       (long long)st.st_size, (unsigned long)st.st_nlink,
		       (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		       (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	if (S_ISREG(st.st_mode) || strict)
		printf(" b=%lld", (long long)st.st_blocks);
	if (strict)
		printf(" i=%llu", (unsigned long long)st.st_ino);
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		printf(" r=%u:%u", major(st.st_rdev), minor(st.st_rdev));
	if (S_ISLNK(st.st_mode)) {
		char t[8192];
		ssize_t n = readlinkat(dirfd, name, t, sizeof(t) - 1);
		if (n < 0) {
			printf(" l=ERR:%s", strerrorname_np(errno));
			anomalies = 1;
		} else {
			struct buf b = { 0 };
			t[n] = '\0';
			esc_add(&b, (unsigned char *)t, n);
			printf(" l=%s", b.p ? b.p : "");
			free(b.p);
		}
	}
	if (S_ISREG(st.st_mode) && !no_content)
		content_hash(dirfd, name, path);
	putchar('\n');

	if (!no_xattr) {
		if (fchdir(dirfd) < 0) {
			perror("fchdir");
			exit(99);
		}
		dump_xattrs(name, path);
	}

	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dirfd, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			err_line(path, "open-dir", errno);
			return;
		}
		dump_dir(fd, path);
		close(fd);
	}
}

struct ent {
	char *name;
	unsigned char type;
};

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void dump_dir(int fd, const char *path)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		err_line(path, "opendir", errno);
		return;
	}
	size_t n = 0, cap = 64;
	struct ent *v = malloc(cap * sizeof(*v));
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				err_line(path, "readdir", errno);
			break;
		}
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
		}
		v[n].name = strdup(de->d_name);
		v[n].type = de->d_type;
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_ent);

	int dot = 0, dotdot = 0;
	for (size_t i = 0; i < n; i++) {
		printf("  e ");
		esc_print(path);
		putchar(' ');
		esc_print(v[i].name);
		printf(" %c\n", dtype_char(v[i].type));
		if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0) {
			printf("!dup ");
			esc_print(path);
			putchar(' ');
			esc_print(v[i].name);
			putchar('\n');
			anomalies = 1;
		}
		if (strcmp(v[i].name, ".") == 0)
			dot++;
		if (strcmp(v[i].name, "..") == 0)
			dotdot++;
	}
	if (dot != 1 || dotdot != 1) {
		printf("!dot ");
		esc_print(path);
		printf(" .=%d ..=%d\n", dot, dotdot);
		anomalies = 1;
	}

	for (size_t i = 0; i < n; i++) {
		const char *nm = v[i].name;
		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		if (i > 0 && strcmp(nm, v[i - 1].name) == 0)
			continue;
		char *p = join(path, nm);
		struct stat st;
		if (fstatat(fd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			printf("!noent ");
			esc_print(p);
			printf(" %s\n", strerrorname_np(errno));
			anomalies = 1;
			free(p);
			continue;
		}
		if (dtype_char(v[i].type) != type_char(st.st_mode)) {
			printf("!dtype ");
			esc_print(p);
			printf(" readdir=%c lstat=%c\n", dtype_char(v[i].type),
			       type_char(st.st_mode));
			anomalies = 1;
		}
		dump_obj(fd, nm, p);
		free(p);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "sCX")) != -1) {
		switch (c) {
		case 's': strict = 1; break;
		case 'C': no_content = 1; break;
		case 'X': no_xattr = 1; break;
		default:
			fprintf(stderr, "usage: treedump [-s] [-C] [-X] ROOT\n");
			return 99;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: treedump [-s] [-C] [-X] ROOT\n");
		return 99;
	}
	int rootfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		fprintf(stderr, "treedump: %s: %m\n", argv[optind]);
		return 99;
	}
	/* The root as an object of its own, named ".". */
	dump_obj(rootfd, ".", ".");
	close(rootfd);
	if (fflush(stdout) != 0)
		return 99;
	return anomalies ? 2 : 0;
}
