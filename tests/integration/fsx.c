/* fsx: a data-integrity exerciser in the style of the classic fsx (the
 * one kept in xfstests). It runs a random but seed-determined sequence of
 * operations on ONE file and checks every byte read, and the file size
 * after every operation, against an in-memory model of the file.
 *
 *   fsx [-s SEED] [-N OPS] [-l MAXLEN] [-o MAXOP] [-i INITIAL] [-w REF]
 *       [-f MODES] [-R] [-k] [-Z] [-v] PATH
 *   fsx -p PATH       probe: which fallocate modes PATH's filesystem takes
 *                     (a list for -f), then "odirect" or "no-odirect":
 *                     whether an aligned O_DIRECT write and read work
 *   fsx -G SIZE PATH  generate a lower file: SIZE bytes of letters in
 *                     16 KiB runs, every third run left a hole
 *
 *   -s SEED     the sequence (default 1): the same seed on the same first
 *               content replays the same operations
 *   -N OPS      number of operations (default 10000)
 *   -l MAXLEN   the file never grows past MAXLEN bytes (default 262144)
 *   -o MAXOP    largest read/write/mapping (default 65536)
 *   -i INITIAL  a file (outside the mount) holding PATH's first content:
 *               the model starts from it. Without -i the model starts from
 *               what PATH reads before the first operation.
 *   -w REF      at the end, write the model's bytes to REF, for cmp(1)
 *               after a remount
 *   -f MODES    the fallocate modes the reference filesystem takes, from
 *               "fsx -p" on it: plain,keep,punch,zero,zerokeep or "none"
 *               (default: all). The other modes are still tried: they
 *               must fail with EOPNOTSUPP and change nothing, and the
 *               listed ones must never fail so: "not supported" is one
 *               fixed answer per mode, the reference's.
 *   -R          reader pair: a child process opens PATH O_RDONLY before
 *               this one opens it for writing (so before the copy-up of a
 *               lower file) and keeps that one descriptor; after every
 *               operation it checks the size and the bytes just touched
 *               (pread or a fresh mmap of that descriptor) against the
 *               model, which lives in shared memory, and every 64
 *               operations the whole file
 *   -k          kernel overlayfs rules: no mmap through a descriptor opened
 *               before the first change (so on a lower file before its
 *               copy-up) once that change is made. Kernel overlayfs maps
 *               the file the descriptor was opened on, the lower one
 *               (Documentation/filesystems/overlayfs.rst, "Non-standard
 *               behavior"): the mapping shows the old data, and SIGBUS
 *               past its old size. pread through it follows the copy.
 *               Those mapreads use a new O_RDONLY descriptor instead (the
 *               sequence stays the same), and the reader (-R) uses only
 *               pread after the first change.
 *   -Z          O_DIRECT too: a quarter of the reads and writes go through
 *               a third descriptor opened O_RDWR|O_DIRECT, 4 KiB-aligned
 *               offsets, lengths and buffers (what ext4 and kernel
 *               overlayfs on it accept)
 *   -v          print every operation as it runs
 *
 * The writer side starts with one descriptor opened O_RDONLY and opens
 * O_RDWR only at the first change, so on a lower file the copy-up happens
 * in the middle of the run with a read-only descriptor already open;
 * reads use either descriptor. Operations: pread (also past EOF), pwrite
 * (also past EOF: holes), ftruncate or truncate by path (grow and
 * shrink), fallocate (plain, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE
 * with and without KEEP_SIZE), mmap reads and MAP_SHARED mmap writes
 * (msync MS_SYNC, MS_ASYNC or none before munmap), fsync/fdatasync on
 * either descriptor, stat by path, open with O_TRUNC, reopening (the
 * writer only, the reader only, or both: O_RDONLY first, a full read
 * through it, then O_RDWR), and posix_fadvise(POSIX_FADV_DONTNEED) to drop
 * the file's clean cached pages, so that later reads reach the
 * filesystem (the reader of -R does so before a quarter of its checks),
 * appends through a descriptor opened O_WRONLY|O_APPEND for the one
 * write, and copy_file_range from either descriptor to another place in
 * the same file (ranges apart, as the kernel requires).
 *
 * Written bytes depend on the operation number and the offset and are
 * never 0, so a hole, stale data and data at a shifted offset all show.
 *
 * On a mismatch, an unexpected error or SIGBUS on a mapping inside the
 * model's size: prints the seed, the operation number, the first
 * differing offset with the bytes around it and the last 30 operations,
 * and exits 1. Exit 0: all operations checked; 2: setup error; 99: usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

#define LOG_TAIL 30

enum op {
	OP_READ,
	OP_WRITE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_TRUNCATE,
	OP_FALLOC,
	OP_FSYNC,
	OP_STAT,
	OP_REOPEN,
	OP_TRUNC_OPEN,
	OP_DROP,
	OP_APPEND,
	OP_COPY,
	OP_DIO_READ,  /* only with -Z: taken from a quarter of the reads */
	OP_DIO_WRITE, /* ... and of the writes */
	OP_COUNT,
};

static const char *const op_name[OP_COUNT] = {
	"read", "write", "mapread", "mapwrite", "truncate", "fallocate",
	"fsync", "stat", "reopen", "open-trunc", "drop", "append", "copyrange",
	"dio-read", "dio-write",
};

/* Out of 1000. Changes and reads are balanced so the file neither
 * empties nor sits at MAXLEN; O_TRUNC is rare since it throws away the
 * history that makes later reads worth checking. Dropping the file's
 * cached pages sends the next reads to the filesystem itself rather than
 * the page cache it filled. */
static const int op_weight[OP_COUNT] = {
	170, 160, 100, 100, 90, 130, 40, 35, 73, 2, 30, 20, 50, 0, 0,
};

enum falloc_kind { FA_PLAIN, FA_KEEP, FA_PUNCH, FA_ZERO, FA_ZEROKEEP, FA_COUNT };

static const char *const fa_name[FA_COUNT] = { "plain", "keep", "punch", "zero", "zerokeep" };
static const int fa_mode[FA_COUNT] = {
	0,
	FALLOC_FL_KEEP_SIZE,
	FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	FALLOC_FL_ZERO_RANGE,
	FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
};

/* The model: shared with the reader child in -R mode. Bytes at and past
 * size are always 0, so growing the file needs no zeroing. */
struct model {
	off_t size;
	uint8_t data[];
};

struct logent {
	unsigned long n;
	enum op op;
	int sub;        /* fallocate kind, truncate/reopen/msync variant */
	char via;       /* r: read-only descriptor, w: read-write one, p: path */
	off_t off, len;
	off_t size_before, size_after;
	int err;        /* errno the call answered, 0 when it succeeded */
};

/* Configuration. */
static uint64_t seed = 1;
static unsigned long nops = 10000;
static off_t maxlen = 262144;
static size_t maxop = 65536;
static const char *path, *init_path, *ref_path;
static unsigned fa_ok = (1u << FA_COUNT) - 1;
static bool pair, verbose, kernel_rules, dio;
static char cmdline[1024];

/* State. */
static struct model *m;
static int rfd = -1, wfd = -1, dfd = -1; /* dfd: O_RDWR|O_DIRECT (-Z) */
static uint8_t *dbuf;                      /* aligned, for dfd */
/* The first change (which copies a lower file up) has been made; rfd was
 * opened before it. */
static bool changed, rfd_early;
static uint8_t *buf;
static long pagesz;
static uint64_t rng;
static unsigned long opn; /* number of the running operation, from 1 */
static struct logent oplog[LOG_TAIL];
static unsigned long nlogged;
static unsigned long count[OP_COUNT], fa_done[FA_COUNT], fa_refused[FA_COUNT];
static pid_t reader = -1;
static int req_fd = -1, rep_fd = -1;

/* A mapping being read or written: SIGBUS inside it jumps back out. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static const char *ename(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "E?";
}

/* splitmix64: small, fast, and the same on every machine. */
static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint8_t pattern(unsigned long n, off_t pos)
{
	uint8_t v = (uint8_t)(n * 0x9d + (uint64_t)pos * 0x3b + ((uint64_t)pos >> 8) * 0x11);
	return v ? v : 0xa5;
}

static uint8_t lower_pattern(off_t pos)
{
	return (uint8_t)('a' + ((uint64_t)pos * 7 + (uint64_t)pos / 4096) % 26);
}

/* ------------------------------------------------------------ reporting */

static void log_print(FILE *o, const struct logent *e)
{
	fprintf(o, "  %8lu %-10s", e->n, op_name[e->op]);
	switch (e->op) {
	case OP_FALLOC:
		fprintf(o, " %-8s", fa_name[e->sub]);
		break;
	case OP_MAPWRITE:
		fprintf(o, " %-8s", e->sub == 0 ? "ms_sync" : e->sub == 1 ? "ms_async" : "nomsync");
		break;
	case OP_REOPEN:
		fprintf(o, " %-8s", e->sub == 0 ? "writer" : e->sub == 1 ? "reader" : "ro-rw");
		break;
	case OP_FSYNC:
		fprintf(o, " %-8s", e->sub ? "fdatasyn" : "fsync");
		break;
	default:
		fprintf(o, " %-8s", "");
	}
	fprintf(o, " [%c]", e->via);
	if (e->op != OP_REOPEN && e->op != OP_FSYNC && e->op != OP_STAT && e->op != OP_DROP &&
	    e->op != OP_TRUNC_OPEN)
		fprintf(o, " off %7lld len %6lld", (long long)e->off, (long long)e->len);
	fprintf(o, " size %lld -> %lld", (long long)e->size_before, (long long)e->size_after);
	if (e->err)
		fprintf(o, " (%s)", ename(e->err));
	fputc('\n', o);
}

static void log_tail(FILE *o)
{
	unsigned long first = nlogged > LOG_TAIL ? nlogged - LOG_TAIL : 0;
	fprintf(o, "fsx: the last %lu operations (n, op, variant, [r]ead-only fd / [w]ritable fd / "
		   "[d] O_DIRECT fd / [p]ath or a new fd, offset, length, size):\n",
		nlogged - first);
	for (unsigned long i = first; i < nlogged; i++)
		log_print(o, &oplog[i % LOG_TAIL]);
}

static void stop_reader(void)
{
	if (reader <= 0)
		return;
	if (req_fd >= 0)
		(void)close(req_fd); /* the reader exits at EOF */
	req_fd = -1;
	(void)waitpid(reader, NULL, 0);
	reader = -1;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "fsx: FAIL %s seed %" PRIu64 " operation %lu of %lu: ", path, seed, opn, nops);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "fsx: model size %lld\n", (long long)m->size);
	log_tail(stderr);
	fprintf(stderr, "fsx: command: %s\n", cmdline);
	stop_reader();
	exit(1);
}

static void __attribute__((noreturn)) fail_call(const char *call, int e)
{
	fail("%s: unexpected %s (%s)", call, ename(e), strerror(e));
}

static void hexline(FILE *o, const char *label, const uint8_t *p, off_t from, off_t to, off_t mark)
{
	fprintf(o, "  %-9s", label);
	for (off_t i = from; i < to; i++)
		fprintf(o, i == mark ? "[%02x]" : " %02x", p[i - from]);
	fputc('\n', o);
}

/* Compare got[0..n) with the model at off. Returns -1 when equal, else
 * the first differing offset (and prints the bytes around it to o). */
static off_t compare(FILE *o, const char *who, off_t off, const uint8_t *got, size_t n)
{
	const uint8_t *want = m->data + off;
	size_t i, ndiff = 0, first;

	if (memcmp(want, got, n) == 0)
		return -1;
	for (i = 0; i < n && want[i] == got[i]; i++)
		;
	first = i;
	for (; i < n; i++)
		ndiff += want[i] != got[i];
	off_t at = off + (off_t)first;
	off_t from = at - 8 < off ? off : at - 8;
	off_t to = at + 8 > off + (off_t)n ? off + (off_t)n : at + 8;
	fprintf(o, "%s: first difference at offset %lld (0x%llx): expected 0x%02x, got 0x%02x; "
		   "%zu of %zu bytes differ in [%lld, %lld); bytes from offset %lld:\n",
		who, (long long)at, (long long)at, want[first], got[first], ndiff, n, (long long)off,
		(long long)(off + (off_t)n), (long long)from);
	hexline(o, "expected", want + (from - off), from, to, at);
	hexline(o, "got", got + (from - off), from, to, at);
	return at;
}

static void on_bus(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

/* ------------------------------------------------------------ checks */

/* pread [off, off+len) on fd; the answer must be the model's bytes up to
 * EOF. Returns -1 or the first differing offset; *msg says what else. */
static off_t read_check(FILE *o, const char *who, int fd, off_t off, size_t len, uint8_t *b, int *err,
			size_t *got_n)
{
	size_t want = off >= m->size ? 0 : (size_t)(m->size - off) < len ? (size_t)(m->size - off) : len;
	size_t got = 0;

	*err = 0;
	while (got < len) {
		ssize_t r = pread(fd, b + got, len - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*got_n = got;
	if (got != want) {
		fprintf(o, "%s: pread at %lld for %zu bytes returned %zu bytes, the model has %zu there\n", who,
			(long long)off, len, got, want);
		return off + (off_t)(got < want ? got : want);
	}
	return compare(o, who, off, b, got);
}

/* A fresh MAP_SHARED PROT_READ mapping of [off, off+len) (inside the
 * model's size) compared with the model. *bus set on SIGBUS. */
static off_t map_check(FILE *o, const char *who, int fd, off_t off, size_t len, int *err, bool *bus)
{
	off_t pg = off & ~(off_t)(pagesz - 1);
	size_t maplen = (size_t)(off - pg) + len;
	static uint8_t *volatile p;
	off_t r;

	*err = 0;
	*bus = false;
	p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, pg);
	if (p == MAP_FAILED) {
		*err = errno;
		return -1;
	}
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		(void)munmap(p, maplen);
		*bus = true;
		return -1;
	}
	bus_armed = 1;
	r = compare(o, who, off, p + (off - pg), len);
	bus_armed = 0;
	if (munmap(p, maplen) < 0 && r < 0)
		*err = errno;
	return r;
}

static void check_size(int fd, char via)
{
	struct stat st;

	if (fd >= 0 ? fstat(fd, &st) : stat(path, &st))
		fail_call(fd >= 0 ? "fstat" : "stat", errno);
	if (st.st_size != m->size)
		fail("size through the %s is %lld, the model says %lld",
		     via == 'r'   ? "read-only descriptor"
		     : via == 'w' ? "writable descriptor"
		     : via == 'd' ? "O_DIRECT descriptor"
				  : "path",
		     (long long)st.st_size, (long long)m->size);
}

/* ------------------------------------------------------------ the reader child (-R) */

struct req {
	unsigned long n;
	int64_t off, len;
	int whole;
	int no_map; /* -k after the first change */
};

struct rep {
	int ok;
	int err;
	int64_t at;
	int64_t size;
	char how[16];
};

static void reader_check(int fd, const struct req *q, struct rep *a)
{
	struct stat st;
	off_t off = q->off, len = q->len;
	bool use_map = below(2) && !q->no_map;
	int r;

	memset(a, 0, sizeof(*a));
	a->at = -1;
	if (below(4) == 0 && (r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))) {
		a->err = r;
		snprintf(a->how, sizeof(a->how), "fadvise");
		return;
	}
	if (fstat(fd, &st) < 0) {
		a->err = errno;
		snprintf(a->how, sizeof(a->how), "fstat");
		return;
	}
	a->size = st.st_size;
	if (st.st_size != m->size) {
		snprintf(a->how, sizeof(a->how), "size");
		return;
	}
	if (q->whole) {
		off = 0;
		len = m->size;
	}
	/* The bytes just changed, and the region around them. */
	off = off > 4096 ? off - 4096 : 0;
	len += 8192;
	if (off >= m->size) {
		a->ok = 1;
		return;
	}
	if (off + len > m->size)
		len = m->size - off;
	if (use_map) {
		bool bus;
		snprintf(a->how, sizeof(a->how), "mmap");
		a->at = map_check(stderr, "fsx[reader]: mmap", fd, off, (size_t)len, &a->err, &bus);
		if (bus) {
			snprintf(a->how, sizeof(a->how), "mmap SIGBUS");
			a->at = off;
			return;
		}
	} else {
		size_t got;
		uint8_t *b = malloc((size_t)len);
		if (!b) {
			a->err = ENOMEM;
			return;
		}
		snprintf(a->how, sizeof(a->how), "pread");
		a->at = read_check(stderr, "fsx[reader]: pread", fd, off, (size_t)len, b, &a->err, &got);
		free(b);
	}
	a->ok = a->at < 0 && !a->err;
}

static int full_read(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : 0;
		got += (size_t)r;
	}
	return 1;
}

static int full_write(int fd, const void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, (const char *)p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void __attribute__((noreturn)) reader_main(int qfd, int afd)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct req q;
	struct rep a = { 0 };

	rng = seed ^ 0x5deece66dULL;
	if (fd < 0) {
		a.err = errno;
		snprintf(a.how, sizeof(a.how), "open");
	} else {
		a.ok = 1;
	}
	if (full_write(afd, &a, sizeof(a)) < 0 || fd < 0)
		_exit(2);
	while (full_read(qfd, &q, sizeof(q)) == 1) {
		reader_check(fd, &q, &a);
		if (full_write(afd, &a, sizeof(a)) < 0)
			_exit(2);
	}
	(void)close(fd);
	_exit(0);
}

static void start_reader(void)
{
	int q[2], a[2];
	struct rep r;

	if (pipe2(q, O_CLOEXEC) < 0 || pipe2(a, O_CLOEXEC) < 0) {
		perror("fsx: pipe");
		exit(2);
	}
	fflush(NULL);
	reader = fork();
	if (reader < 0) {
		perror("fsx: fork");
		exit(2);
	}
	if (reader == 0) {
		(void)close(q[1]);
		(void)close(a[0]);
		reader_main(q[0], a[1]);
	}
	(void)close(q[0]);
	(void)close(a[1]);
	req_fd = q[1];
	rep_fd = a[0];
	if (full_read(rep_fd, &r, sizeof(r)) != 1)
		fail("the reader process died before opening %s", path);
	if (!r.ok)
		fail("the reader process cannot open %s O_RDONLY: %s", path, ename(r.err));
}

static void ask_reader(off_t off, off_t len, bool whole)
{
	struct req q = { .n = opn, .off = off, .len = len, .whole = whole, .no_map = kernel_rules && changed };
	struct rep a;

	if (full_write(req_fd, &q, sizeof(q)) < 0 || full_read(rep_fd, &a, sizeof(a)) != 1)
		fail("the reader process died");
	if (a.ok)
		return;
	if (a.err)
		fail("the reader (O_RDONLY, opened before the first write) got %s from %s", ename(a.err), a.how);
	if (!strcmp(a.how, "size"))
		fail("the reader (O_RDONLY, opened before the first write) sees size %lld, the model says %lld",
		     (long long)a.size, (long long)m->size);
	fail("the reader (O_RDONLY, opened before the first write) read wrong data with %s at offset %lld "
	     "(details above)",
	     a.how, (long long)a.at);
}

/* ------------------------------------------------------------ operations */

static int open_or_fail(int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		fail("open(%s): %s", (flags & O_ACCMODE) == O_RDONLY ? "O_RDONLY" : "O_RDWR", ename(errno));
	return fd;
}

static void ensure_wfd(void)
{
	changed = true;
	if (wfd < 0)
		wfd = open_or_fail(O_RDWR);
}

static void close_or_fail(int *fd)
{
	if (close(*fd) < 0)
		fail_call("close", errno);
	*fd = -1;
}

/* A descriptor to read through, and its letter for the log. */
static int pick_reader_fd(char *via)
{
	/* Always draw, so that the sequence does not depend on which
	 * descriptors happen to be open (-k changes that). */
	bool w = below(2);

	if (wfd >= 0 && w) {
		*via = 'w';
		return wfd;
	}
	*via = 'r';
	return rfd;
}

static size_t pick_len(void)
{
	switch (below(4)) {
	case 0:
		return 1 + below(16);
	case 1:
		return (1 + below(maxop / (size_t)pagesz ? maxop / (size_t)pagesz : 1)) * (size_t)pagesz;
	default:
		return 1 + below(maxop);
	}
}

/* An offset for a range of len bytes that may extend the file: around
 * EOF, past it (a hole), page-aligned or anywhere; off + len <= maxlen. */
static off_t pick_off(size_t *len)
{
	off_t off, size = m->size;

	if ((off_t)*len > maxlen)
		*len = (size_t)maxlen;
	switch (below(10)) {
	case 0: case 1: case 2: case 3:
		off = (off_t)below((uint64_t)size + 1);
		break;
	case 4: case 5:
		off = size - 4096 + (off_t)below(8192);
		break;
	case 6: case 7:
		off = size + (off_t)below(65536);
		break;
	case 8:
		off = (off_t)below((uint64_t)size + 65536) & ~(off_t)(pagesz - 1);
		break;
	default:
		off = (off_t)below((uint64_t)maxlen);
	}
	if (off < 0)
		off = 0;
	if (off >= maxlen)
		off = (off_t)below((uint64_t)maxlen);
	/* Cut the length rather than move the range: moving it would pin
	 * the file's end at MAXLEN. */
	if (off + (off_t)*len > maxlen)
		*len = (size_t)(maxlen - off);
	return off;
}

/* An offset for a read: anywhere up to a little past EOF. */
static off_t pick_read_off(void)
{
	return below(8) ? (off_t)below((uint64_t)m->size + 1) : (off_t)below((uint64_t)m->size + 8192);
}

static void set_size(off_t n)
{
	if (n < m->size)
		memset(m->data + n, 0, (size_t)(m->size - n));
	m->size = n;
}

static void op_read(struct logent *e)
{
	int err;
	size_t got;
	int fd = pick_reader_fd(&e->via);

	e->len = (off_t)pick_len();
	e->off = pick_read_off();
	off_t at = read_check(stderr, "fsx", fd, e->off, (size_t)e->len, buf, &err, &got);
	if (err)
		fail_call("pread", err);
	if (at >= 0)
		fail("pread through the %s descriptor at %lld for %lld bytes: wrong data at offset %lld (above)",
		     e->via == 'r' ? "read-only" : "writable", (long long)e->off, (long long)e->len, (long long)at);
}

static void op_mapread(struct logent *e)
{
	int err, tmp = -1;
	bool bus;
	int fd = pick_reader_fd(&e->via);

	if (m->size == 0) {
		e->via = 'p';
		return; /* nothing to map: the size check after it still runs */
	}
	/* A descriptor of its own, so that the sequence stays the same. */
	if (fd == rfd && rfd_early && changed && kernel_rules) {
		fd = tmp = open_or_fail(O_RDONLY);
		e->via = 'p';
	}
	e->len = (off_t)pick_len();
	e->off = (off_t)below((uint64_t)m->size);
	if (e->off + e->len > m->size)
		e->len = m->size - e->off;
	off_t at = map_check(stderr, "fsx", fd, e->off, (size_t)e->len, &err, &bus);
	if (tmp >= 0)
		close_or_fail(&tmp);
	if (bus)
		fail("SIGBUS reading a mapping of [%lld, %lld) inside the model's size %lld", (long long)e->off,
		     (long long)(e->off + e->len), (long long)m->size);
	if (err)
		fail_call("mmap/munmap (read)", err);
	if (at >= 0)
		fail("mmap read through the %s descriptor at %lld for %lld bytes: wrong data at offset %lld (above)",
		     e->via == 'r' ? "read-only" : "writable", (long long)e->off, (long long)e->len, (long long)at);
}

static void fill(uint8_t *p, off_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(opn, off + (off_t)i);
}

static void op_write(struct logent *e)
{
	size_t len = pick_len(), done = 0;

	e->off = pick_off(&len);
	e->len = (off_t)len;
	e->via = 'w';
	ensure_wfd();
	fill(buf, e->off, len);
	while (done < len) {
		ssize_t r = pwrite(wfd, buf + done, len - done, e->off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail_call("pwrite", errno);
		if (r == 0)
			fail("pwrite wrote nothing at %lld", (long long)(e->off + (off_t)done));
		done += (size_t)r;
	}
	memcpy(m->data + e->off, buf, len);
	if (e->off + (off_t)len > m->size)
		m->size = e->off + (off_t)len;
}

static void op_mapwrite(struct logent *e)
{
	size_t len = pick_len();
	static uint8_t *volatile p;
	size_t maplen;
	off_t pg;

	e->off = pick_off(&len);
	e->len = (off_t)len;
	e->via = 'w';
	e->sub = below(4) == 0 ? 1 + (int)below(2) : 0;
	ensure_wfd();
	/* A mapping cannot extend the file: grow it first, as fsx does. */
	if (e->off + e->len > m->size) {
		if (ftruncate(wfd, e->off + e->len) < 0)
			fail_call("ftruncate (growing for mapwrite)", errno);
		m->size = e->off + e->len;
	}
	pg = e->off & ~(off_t)(pagesz - 1);
	maplen = (size_t)(e->off - pg) + len;
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, pg);
	if (p == MAP_FAILED)
		fail_call("mmap (write)", errno);
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		fail("SIGBUS writing a mapping of [%lld, %lld) inside the model's size %lld", (long long)e->off,
		     (long long)(e->off + e->len), (long long)m->size);
	}
	bus_armed = 1;
	fill(p + (e->off - pg), e->off, len);
	bus_armed = 0;
	memcpy(m->data + e->off, p + (e->off - pg), len);
	if (e->sub == 0 && msync(p, maplen, MS_SYNC) < 0)
		fail_call("msync(MS_SYNC)", errno);
	if (e->sub == 1 && msync(p, maplen, MS_ASYNC) < 0)
		fail_call("msync(MS_ASYNC)", errno);
	if (munmap(p, maplen) < 0)
		fail_call("munmap", errno);
}

static void op_truncate(struct logent *e)
{
	/* Shrink the more likely the bigger the file: writes near MAXLEN
	 * would otherwise keep it there. */
	bool shrink = below((uint64_t)maxlen) < (uint64_t)m->size;
	off_t n = shrink ? (off_t)below((uint64_t)m->size + 1)
			 : m->size + (off_t)below((uint64_t)(maxlen - m->size) + 1);

	e->len = n;
	e->off = n;
	/* By path too: on a lower file that copies up through setattr with no
	 * open file. */
	if (below(4) == 0) {
		e->via = 'p';
		changed = true;
		if (truncate(path, n) < 0)
			fail_call("truncate", errno);
	} else {
		e->via = 'w';
		ensure_wfd();
		if (ftruncate(wfd, n) < 0)
			fail_call("ftruncate", errno);
	}
	set_size(n);
}

static void op_falloc(struct logent *e)
{
	enum falloc_kind k = (enum falloc_kind)below(FA_COUNT);
	size_t len = pick_len();
	bool want_ok = fa_ok & (1u << k);

	e->sub = k;
	e->off = pick_off(&len);
	e->len = (off_t)len;
	e->via = 'w';
	ensure_wfd();
	if (fallocate(wfd, fa_mode[k], e->off, e->len) < 0) {
		e->err = errno;
		if (errno != EOPNOTSUPP)
			fail_call(k == FA_PLAIN ? "fallocate(0)" : "fallocate", errno);
		if (want_ok)
			fail("fallocate %s: EOPNOTSUPP, but the reference filesystem supports it", fa_name[k]);
		fa_refused[k]++;
		return;
	}
	if (!want_ok)
		fail("fallocate %s succeeded, but the reference filesystem answers EOPNOTSUPP", fa_name[k]);
	fa_done[k]++;
	off_t end = e->off + e->len;
	switch (k) {
	case FA_PUNCH:
	case FA_ZEROKEEP:
		if (e->off < m->size)
			memset(m->data + e->off, 0, (size_t)((end < m->size ? end : m->size) - e->off));
		break;
	case FA_ZERO:
		memset(m->data + e->off, 0, len);
		/* fall through */
	case FA_PLAIN:
		if (end > m->size)
			m->size = end;
		break;
	default:
		break;
	}
}

static void op_fsync(struct logent *e)
{
	int fd = pick_reader_fd(&e->via);

	e->sub = (int)below(2);
	if ((e->sub ? fdatasync(fd) : fsync(fd)) < 0)
		fail_call(e->sub ? "fdatasync" : "fsync", errno);
}

static void op_drop(struct logent *e)
{
	int fd = pick_reader_fd(&e->via), r;

	r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (r)
		fail_call("posix_fadvise(DONTNEED)", r);
}

static void op_append(struct logent *e)
{
	size_t len = pick_len(), done = 0;
	int fd;

	e->off = m->size;
	if ((off_t)len > maxlen - m->size)
		len = (size_t)(maxlen - m->size);
	e->len = (off_t)len;
	e->via = 'p';
	changed = true;
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		fail_call("open(O_WRONLY|O_APPEND)", errno);
	fill(buf, e->off, len);
	while (done < len) {
		ssize_t r = write(fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_call("write (O_APPEND)", r < 0 ? errno : EIO);
		done += (size_t)r;
	}
	close_or_fail(&fd);
	memcpy(m->data + e->off, buf, len);
	m->size += (off_t)len;
}

/* copy_file_range inside the file: from either descriptor (the read-only
 * one may predate the copy-up), to the writable one. */
static void op_copy(struct logent *e)
{
	size_t len = pick_len(), done = 0;
	off_t in, out;
	int src;

	e->via = 'w';
	ensure_wfd();
	src = pick_reader_fd(&e->via);
	if (m->size == 0)
		return;
	in = (off_t)below((uint64_t)m->size);
	if ((off_t)len > m->size - in)
		len = (size_t)(m->size - in);
	out = pick_off(&len);
	/* Overlapping ranges in one file are EINVAL: move the target past the
	 * source, or before it. */
	if (out < in + (off_t)len && in < out + (off_t)len) {
		if (in + 2 * (off_t)len <= maxlen)
			out = in + (off_t)len;
		else if (in >= (off_t)len)
			out = in - (off_t)len;
		else
			return; /* no room: a no-op, still logged */
	}
	e->off = out;
	e->len = (off_t)len;
	while (done < len) {
		loff_t oi = in + (off_t)done, oo = out + (off_t)done;
		ssize_t r = copy_file_range(src, &oi, wfd, &oo, len - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("copy_file_range from %lld to %lld, %zu bytes: %s", (long long)in, (long long)out, len,
			     ename(errno));
		if (r == 0)
			fail("copy_file_range from %lld to %lld: 0 bytes with %zu left inside the size", (long long)in,
			     (long long)out, len - done);
		done += (size_t)r;
	}
	memmove(m->data + out, m->data + in, len);
	if (out + (off_t)len > m->size)
		m->size = out + (off_t)len;
}

static void ensure_dfd(void)
{
	changed = true;
	if (dfd < 0) {
		dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (dfd < 0)
			fail_call("open(O_RDWR|O_DIRECT)", errno);
	}
}

static void dio_range(struct logent *e, bool growing)
{
	const off_t a = 4096;
	off_t limit = growing ? maxlen : m->size + 2 * a;
	size_t len = pick_len();

	e->via = 'd';
	len = (len + (size_t)a - 1) / (size_t)a * (size_t)a;
	if ((off_t)len > maxlen / 2)
		len = (size_t)(maxlen / 2 / a * a);
	e->off = (off_t)below((uint64_t)(limit / a + 1)) * a;
	if (e->off + (off_t)len > maxlen)
		e->off = (maxlen - (off_t)len) / a * a;
	e->len = (off_t)len;
}

static void op_dio_read(struct logent *e)
{
	int err;
	size_t got;

	dio_range(e, false);
	ensure_dfd();
	off_t at = read_check(stderr, "fsx", dfd, e->off, (size_t)e->len, dbuf, &err, &got);
	if (err)
		fail("O_DIRECT pread at %lld for %lld bytes (4 KiB-aligned, aligned buffer): %s", (long long)e->off,
		     (long long)e->len, ename(err));
	if (at >= 0)
		fail("O_DIRECT pread at %lld for %lld bytes: wrong data at offset %lld (above)", (long long)e->off,
		     (long long)e->len, (long long)at);
}

static void op_dio_write(struct logent *e)
{
	size_t done = 0;

	dio_range(e, true);
	ensure_dfd();
	fill(dbuf, e->off, (size_t)e->len);
	while (done < (size_t)e->len) {
		ssize_t r = pwrite(dfd, dbuf + done, (size_t)e->len - done, e->off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail("O_DIRECT pwrite at %lld for %lld bytes (4 KiB-aligned, aligned buffer): %s",
			     (long long)e->off, (long long)e->len, r < 0 ? ename(errno) : "wrote nothing");
		done += (size_t)r;
	}
	memcpy(m->data + e->off, dbuf, (size_t)e->len);
	if (e->off + e->len > m->size)
		m->size = e->off + e->len;
}

static void op_stat(struct logent *e)
{
	e->via = 'p';
	check_size(-1, 'p');
}

/* Read all of the file through fd: after a reopen the kernel may serve a
 * new open from a cache the old one filled. */
static void verify_all(int fd, char via)
{
	int err;
	size_t got;
	off_t at;

	check_size(fd, via);
	at = read_check(stderr, "fsx", fd, 0, (size_t)m->size, buf, &err, &got);
	if (err)
		fail_call("pread (whole file)", err);
	if (at >= 0)
		fail("reading the whole file through the %s descriptor: wrong data at offset %lld (above)",
		     via == 'r' ? "read-only" : "writable", (long long)at);
}

static void op_reopen(struct logent *e)
{
	e->sub = (int)below(3);
	switch (e->sub) {
	case 0: /* the writers only: the next change opens again */
		e->via = 'w';
		if (wfd >= 0)
			close_or_fail(&wfd);
		if (dfd >= 0)
			close_or_fail(&dfd);
		if (below(2))
			ensure_wfd();
		break;
	case 1: /* the reader only */
		e->via = 'r';
		close_or_fail(&rfd);
		rfd = open_or_fail(O_RDONLY);
		rfd_early = !changed;
		break;
	default: /* both: O_RDONLY first, read it all, then O_RDWR */
		e->via = 'r';
		if (wfd >= 0)
			close_or_fail(&wfd);
		close_or_fail(&rfd);
		rfd = open_or_fail(O_RDONLY);
		rfd_early = !changed;
		verify_all(rfd, 'r');
		ensure_wfd();
		break;
	}
}

static void op_trunc_open(struct logent *e)
{
	e->via = 'w';
	changed = true;
	if (wfd >= 0)
		close_or_fail(&wfd);
	wfd = open_or_fail(O_RDWR | O_TRUNC);
	set_size(0);
}

static enum op pick_op(void)
{
	int r = (int)below(1000);
	enum op o;

	for (o = 0; o < OP_COUNT - 1; o++) {
		if (r < op_weight[o])
			break;
		r -= op_weight[o];
	}
	return o;
}

static void run_one(void)
{
	struct logent *e = &oplog[nlogged % LOG_TAIL];
	enum op o = pick_op();

	/* Drawn only with -Z, so other runs keep their sequences. */
	if (dio && (o == OP_READ || o == OP_WRITE) && below(4) == 0)
		o = o == OP_READ ? OP_DIO_READ : OP_DIO_WRITE;

	memset(e, 0, sizeof(*e));
	e->n = opn;
	e->op = o;
	e->via = '-';
	e->size_before = e->size_after = m->size;
	nlogged++;
	switch (o) {
	case OP_READ:
		op_read(e);
		break;
	case OP_WRITE:
		op_write(e);
		break;
	case OP_MAPREAD:
		op_mapread(e);
		break;
	case OP_MAPWRITE:
		op_mapwrite(e);
		break;
	case OP_TRUNCATE:
		op_truncate(e);
		break;
	case OP_FALLOC:
		op_falloc(e);
		break;
	case OP_FSYNC:
		op_fsync(e);
		break;
	case OP_STAT:
		op_stat(e);
		break;
	case OP_REOPEN:
		op_reopen(e);
		break;
	case OP_DROP:
		op_drop(e);
		break;
	case OP_APPEND:
		op_append(e);
		break;
	case OP_COPY:
		op_copy(e);
		break;
	case OP_DIO_READ:
		op_dio_read(e);
		break;
	case OP_DIO_WRITE:
		op_dio_write(e);
		break;
	default:
		op_trunc_open(e);
		break;
	}
	e->size_after = m->size;
	count[o]++;
	if (verbose)
		log_print(stdout, e);
	/* The size through every open descriptor (the kernel keeps one per
	 * inode, but each answer comes through a different file). */
	check_size(rfd, 'r');
	if (wfd >= 0)
		check_size(wfd, 'w');
	if (dfd >= 0)
		check_size(dfd, 'd');
	if (pair)
		ask_reader(e->off, e->len, opn % 64 == 0);
}

/* ------------------------------------------------------------ setup */

static void load_initial(void)
{
	const char *src = init_path ? init_path : path;
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fsx: %s: %s\n", src, strerror(errno));
		exit(2);
	}
	if (st.st_size > maxlen) {
		fprintf(stderr, "fsx: %s holds %lld bytes, more than -l %lld\n", src, (long long)st.st_size,
			(long long)maxlen);
		exit(2);
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, m->data + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "fsx: reading %s: %s\n", src, r < 0 ? strerror(errno) : "short file");
			exit(2);
		}
		got += (size_t)r;
	}
	m->size = st.st_size;
	(void)close(fd);
}

static void write_ref(void)
{
	int fd = open(ref_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || full_write(fd, m->data, (size_t)m->size) < 0 || close(fd) < 0) {
		fprintf(stderr, "fsx: writing %s: %s\n", ref_path, strerror(errno));
		exit(2);
	}
}

static int probe(const char *p)
{
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	bool any = false;

	if (fd < 0 || ftruncate(fd, 0) < 0) {
		fprintf(stderr, "fsx: probe %s: %s\n", p, strerror(errno));
		return 2;
	}
	for (off_t i = 0; i < 131072; i++)
		buf[i] = lower_pattern(i);
	if (full_write(fd, buf, 131072) < 0) {
		fprintf(stderr, "fsx: probe %s: write: %s\n", p, strerror(errno));
		return 2;
	}
	for (int k = 0; k < FA_COUNT; k++) {
		if (fallocate(fd, fa_mode[k], 4096 * (k + 1), 8192) == 0) {
			printf("%s%s", any ? "," : "", fa_name[k]);
			any = true;
		} else if (errno != EOPNOTSUPP) {
			fprintf(stderr, "fsx: probe %s: fallocate %s: %s\n", p, fa_name[k], strerror(errno));
			return 2;
		}
	}
	printf("%s", any ? "" : "none");
	if (close(fd) < 0) {
		fprintf(stderr, "fsx: probe %s: close: %s\n", p, strerror(errno));
		return 2;
	}
	/* EINVAL is how a filesystem says no to O_DIRECT (at open or at the
	 * first transfer); anything else is an error of the probe. */
	fd = open(p, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno != EINVAL) {
		fprintf(stderr, "fsx: probe %s: open O_DIRECT: %s\n", p, strerror(errno));
		return 2;
	}
	bool ok = fd >= 0;
	memset(dbuf, 0x5a, 8192);
	if (ok && pwrite(fd, dbuf, 8192, 8192) != 8192) {
		if (errno != EINVAL) {
			fprintf(stderr, "fsx: probe %s: O_DIRECT pwrite: %s\n", p, strerror(errno));
			return 2;
		}
		ok = false;
	}
	if (ok && (pread(fd, dbuf, 8192, 0) != 8192 || dbuf[0] != lower_pattern(0))) {
		fprintf(stderr, "fsx: probe %s: O_DIRECT pread: %s\n", p, strerror(errno));
		return 2;
	}
	printf(" %s\n", ok ? "odirect" : "no-odirect");
	if (fd >= 0 && close(fd) < 0) {
		fprintf(stderr, "fsx: probe %s: close: %s\n", p, strerror(errno));
		return 2;
	}
	return 0;
}

static int generate(const char *p, off_t size)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const off_t run = 16384;

	if (fd < 0) {
		fprintf(stderr, "fsx: %s: %s\n", p, strerror(errno));
		return 2;
	}
	for (off_t at = 0; at < size; at += run) {
		size_t n = (size_t)(size - at < run ? size - at : run);
		if ((at / run) % 3 == 1)
			continue;
		for (size_t i = 0; i < n; i++)
			buf[i] = lower_pattern(at + (off_t)i);
		if (pwrite(fd, buf, n, at) != (ssize_t)n) {
			fprintf(stderr, "fsx: %s: write: %s\n", p, strerror(errno));
			return 2;
		}
	}
	if (ftruncate(fd, size) < 0 || close(fd) < 0) {
		fprintf(stderr, "fsx: %s: %s\n", p, strerror(errno));
		return 2;
	}
	return 0;
}

static int usage(const char *why)
{
	fprintf(stderr, "fsx: %s\nusage: fsx [-s SEED] [-N OPS] [-l MAXLEN] [-o MAXOP] [-i INITIAL] [-w REF] "
			"[-f MODES] [-R] [-k] [-Z] [-v] PATH | fsx -p PATH | fsx -G SIZE PATH\n",
		why);
	return 99;
}

static bool number(const char *s, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && end != s && !*end && *s != '-';
}

static bool parse_modes(const char *s)
{
	char tmp[128], *save = NULL;

	fa_ok = 0;
	if (!strcmp(s, "none"))
		return true;
	if (strlen(s) >= sizeof(tmp))
		return false;
	strcpy(tmp, s);
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k;
		for (k = 0; k < FA_COUNT && strcmp(t, fa_name[k]); k++)
			;
		if (k == FA_COUNT)
			return false;
		fa_ok |= 1u << k;
	}
	return true;
}

static void save_cmdline(int argc, char **argv)
{
	size_t at = 0;

	for (int i = 0; i < argc && at < sizeof(cmdline) - 1; i++) {
		int n = snprintf(cmdline + at, sizeof(cmdline) - at, "%s%s", i ? " " : "", argv[i]);
		if (n < 0)
			break;
		at += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	unsigned long long v;
	const char *gen = NULL;
	bool do_probe = false;
	int c;

	save_cmdline(argc, argv);
	while ((c = getopt(argc, argv, "s:N:l:o:i:w:f:RkZvpG:")) != -1) {
		switch (c) {
		case 's':
			if (!number(optarg, &v))
				return usage("bad -s");
			seed = v;
			break;
		case 'N':
			if (!number(optarg, &v))
				return usage("bad -N");
			nops = (unsigned long)v;
			break;
		case 'l':
			if (!number(optarg, &v) || v < 16384 || v > (1ULL << 30))
				return usage("bad -l (16 KiB to 1 GiB)");
			maxlen = (off_t)v;
			break;
		case 'o':
			if (!number(optarg, &v) || v < 1 || v > (1ULL << 26))
				return usage("bad -o (1 to 64 MiB)");
			maxop = (size_t)v;
			break;
		case 'i':
			init_path = optarg;
			break;
		case 'w':
			ref_path = optarg;
			break;
		case 'f':
			if (!parse_modes(optarg))
				return usage("bad -f: plain,keep,punch,zero,zerokeep or none");
			break;
		case 'R':
			pair = true;
			break;
		case 'k':
			kernel_rules = true;
			break;
		case 'Z':
			dio = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'p':
			do_probe = true;
			break;
		case 'G':
			if (!number(optarg, &v) || v > (1ULL << 30))
				return usage("bad -G");
			gen = optarg;
			break;
		default:
			return usage("unknown option");
		}
	}
	if (optind != argc - 1)
		return usage("one PATH expected");
	path = argv[optind];
	if ((size_t)maxlen < maxop)
		maxop = (size_t)maxlen;
	pagesz = sysconf(_SC_PAGESIZE);
	/* Reads may ask for a little past MAXLEN, whole-file reads for all. */
	buf = malloc((size_t)maxlen + maxop + 8192);
	if (!buf || pagesz <= 0 || posix_memalign((void **)&dbuf, 4096, (size_t)maxlen + 8192)) {
		perror("fsx: malloc");
		return 2;
	}
	if (do_probe)
		return probe(path);
	if (gen) {
		free(buf);
		buf = malloc(16384);
		if (!buf)
			return 2;
		return generate(path, (off_t)strtoull(gen, NULL, 0));
	}

	/* Shared so that the reader child sees each change as it is made;
	 * past MAXLEN a read's model is zeros too. */
	m = mmap(NULL, sizeof(*m) + (size_t)maxlen + maxop + 8192, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("fsx: mmap");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_bus };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0) {
		perror("fsx: sigaction");
		return 2;
	}
	rng = seed;
	load_initial();

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pair)
		start_reader();
	rfd = open_or_fail(O_RDONLY);
	rfd_early = true;
	verify_all(rfd, 'r');
	for (opn = 1; opn <= nops; opn++)
		run_one();
	opn = nops;
	verify_all(rfd, 'r');
	if (wfd >= 0)
		verify_all(wfd, 'w');
	if (pair)
		ask_reader(0, 0, true);
	if (wfd >= 0)
		close_or_fail(&wfd);
	if (dfd >= 0)
		close_or_fail(&dfd);
	close_or_fail(&rfd);
	stop_reader();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ref_path)
		write_ref();

	printf("fsx: %s seed %" PRIu64 ": %lu operations checked in %.1f s, final size %lld%s\n", path, seed, nops,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, (long long)m->size,
	       pair ? ", reader pair" : "");
	printf("fsx:  ");
	for (int o = 0; o < OP_COUNT; o++)
		printf(" %s %lu", op_name[o], count[o]);
	printf("\nfsx:   fallocate done/EOPNOTSUPP:");
	for (int k = 0; k < FA_COUNT; k++)
		printf(" %s %lu/%lu", fa_name[k], fa_done[k], fa_refused[k]);
	putchar('\n');
	return 0;
}
