/* stress: many processes changing the namespace and copying up in the same
 * directories of a union at once, each keeping a model of what it owns, so
 * that the tree left at the end is known exactly (t_concurrency.sh).
 *
 *   stress build ROOT [OPTS]       make the lower branches ROOT/l1 ROOT/l2
 *                                  ROOT/l3 (ROOT must exist)
 *   stress initial [OPTS]          print the union those lowers make, in the
 *                                  projection below: the model's start
 *   stress run MNT STATE [OPTS]    run the workload on the union mounted at
 *                                  MNT; results go into the directory STATE
 *   OPTS: -w MUTATORS (6) -r READERS (2) -s SEED (1) -t SECONDS (10)
 *         -k STUCK_SECONDS (30)
 *   STRESS_OPS=rename,temp,...  only these operations of the mix (names in
 *                                  mix[] below), to narrow a failure down
 *
 * The tree: top directories d0..d3, merged from all three lowers (d3 is
 * opaque in l1, so its l2 and l3 parts are hidden). Overlapping names and
 * hidden ones everywhere: static files s* (some shadowing a copy in a lower
 * layer below), static merged directories sd* (with a whited-out name),
 * hid* (whited out in l1), and per mutator W:
 *   wW_fI      file tokens, shadowing a copy below and hidden (whiteout in
 *              l1 over a file in l3) in the next top directory
 *   wW_DJ      directory tokens merged from l1 and l3 (none in l2), with the
 *              file tokens wW_DJa, wW_DJb and sub/wW_DJc and a whited-out
 *              "gone"; hidden in the next directory by a whiteout over a
 *              directory of junk (moving there must not merge the junk)
 *   wW_EK      directories that look empty (a whiteout in l2 over a file in
 *              l3), for rmdir / mkdir (opaque) / rename over
 * and names all mutators fight over in every top directory:
 *   hotK       lower files everyone appends to (copy-up races) and chmods
 *   uR         lower files everyone tries to unlink: exactly one wins
 *   cR         mkdir/rmdir races (some over a whiteout hiding a full dir)
 *   slotR      RENAME_NOREPLACE targets (some over a whiteout): one wins
 *   lkR        link targets: one wins
 *
 * Mutators (one process each) pick random operations on what they own:
 * rename within and across directories (files and directory tokens, which
 * are lower directories: redirects; directory tokens also into each other,
 * two levels at most), RENAME_EXCHANGE, rename over an empty directory,
 * create/unlink/replace of temporaries wW_tN, mkdir/rmdir of wW_mN (with a
 * file "in"), link and unlink (own names wW_LN and the lkR races), chmod,
 * append, O_TRUNC rewrite and setxattr (copy-ups), stat and content checks
 * against the model, and listings of their own places: every name they own
 * there exactly once with the right d_type, no name they do not own in
 * their own directories, no name twice. Each expected result is checked;
 * in races only the loser's answers (EEXIST, ENOENT) are accepted as well.
 * Readers walk the whole tree over and over (the first listing of a merged
 * directory writes its fallthrus): no name twice in a listing, no name
 * that must stay hidden, d_type as the name's kind, the static names
 * always there exactly once with their contents.
 *
 * Watchdog: every process posts the operation it is in and since when;
 * the parent stops the run when one takes longer than STUCK_SECONDS,
 * prints it (with the PIDs, also in STATE/pids) and exits 3 at once,
 * leaving the stuck processes for the caller to inspect and kill.
 *
 * Outputs in STATE: expected (the tree the union must show, in the
 * projection), hot.dI.hotK (the lines hot file dI/hotK must hold, in any
 * order), pids ("PID mutator|reader INDEX" lines), w*.err.
 * Projection, one line per object (treedump's, reduced; the caller makes
 * the same from treedump's output):
 *   PATH f m=MODE n=NLINK h=FNV64/LENGTH     (hot files: h=hot)
 *   PATH d m=MODE
 *     x PATH user.NAME=VALUE
 * Exit status of run: 0 all as expected, 1 unexpected results (printed),
 * 3 an operation stuck, 99 usage or harness error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "dtype.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define NDIR 4		/* top directories d0..d3 */
#define NS 24		/* static files per top dir */
#define NSD 4		/* static merged dirs per top dir */
#define NH 2		/* hot files per top dir */
#define NHID 3		/* hidden names per top dir */
#define NU 40		/* unlink races per top dir */
#define NC 8		/* mkdir/rmdir races per top dir */
#define NSLOT 6		/* NOREPLACE races per top dir */
#define NLK 6		/* link races per top dir */
#define NF 6		/* file tokens per mutator */
#define ND 3		/* directory tokens per mutator */
#define NE 2		/* empty-looking lower dirs per mutator */
#define NPLACE (NDIR + 2 * ND)	/* where a mutator's files may be */
#define MAXW 32		/* mutators + readers */
#define MAXOBJ 96	/* model objects per mutator */
#define MAXTEMP 6
#define MAXMDIR 4
#define MAXDATA 1200	/* append until then, then rewrite */
#define MAXERR 40	/* error lines per process */

#define P_D(j) (NDIR + 2 * (j))
#define P_SUB(j) (NDIR + 2 * (j) + 1)

enum kind { K_FILE, K_DTOK, K_EDIR, K_MDIR };

struct obj {
	int kind, exists, temp;
	int place;
	char name[40], base[40];
	unsigned mode;
	char xval[32];		/* user.tok, "" when unset */
	char *data;		/* files */
	size_t len;
	int haslink, lplace;
	char lname[40];
	int has_in;		/* mdirs */
};

enum op_kind {
	N_RENAME, N_EXCHANGE, N_DRENAME, N_APPEND, N_TRUNC, N_CHMOD, N_XATTR,
	N_LINK, N_UNLINK, N_CREATE, N_MKDIR, N_RMDIR, N_LIST, N_STAT,
	N_RACE_WON, N_RACE_LOST, N_WALK, NOPK
};
static const char *const op_names[NOPK] = {
	"rename", "exchange", "dir-rename", "append", "o_trunc", "chmod",
	"setxattr", "link", "unlink", "create", "mkdir", "rmdir", "own-listing",
	"stat", "races-won", "races-lost", "reader-walks"
};

struct hb {
	int pid;
	int active;
	int64_t start;
	char op[240];
};

struct shared {
	int stop;
	long errors;
	long nops[NOPK];
	struct hb hb[MAXW];
	int uatt[NDIR][NU], uwin[NDIR][NU];
	int cmk[NDIR][NC], crm[NDIR][NC];
	int hotchmod[NDIR][NH];
	long fuse_nlink_race;
};

static int nw = 6, nr = 2, stuck_s = 30, run_s = 10;
static unsigned seed = 1;
static struct shared *sh;
static int me = -1;		/* index in sh->hb */
static int errfd = -1, nerr;
static uint64_t rng;

/* ---------------------------------------------------------------- basics */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("stress: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(99);
}

static const char *en(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

static int64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die("clock_gettime: %m");
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		die("out of memory");
	return p;
}

/* An unexpected result: one line in this process's error file. */
__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
	__atomic_add_fetch(&sh->errors, 1, __ATOMIC_RELAXED);
	if (++nerr > MAXERR)
		return;
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s %d: ",
			 me < nw ? "mutator" : "reader", me < nw ? me : me - nw);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(errfd, line, n) != n)
		die("write error file: %m");
}

/* The watchdog reads what each process is doing and since when. */
__attribute__((format(printf, 1, 2))) static void hb_begin(const char *fmt, ...)
{
	struct hb *h = &sh->hb[me];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->op, sizeof(h->op), fmt, ap);
	va_end(ap);
	__atomic_store_n(&h->start, now_ns(), __ATOMIC_RELEASE);
	__atomic_store_n(&h->active, 1, __ATOMIC_RELEASE);
}

static void hb_end(void)
{
	__atomic_store_n(&sh->hb[me].active, 0, __ATOMIC_RELEASE);
}

static void count(int k)
{
	__atomic_add_fetch(&sh->nops[k], 1, __ATOMIC_RELAXED);
}

static int stopping(void)
{
	return __atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------- names */

/* The kind every name has, for good: no operation of the workload ever
 * gives a name to an object of another type. 0: a name the union must
 * never show (hidden below a whiteout or an opaque dir, or unknown). */
static char name_type(const char *n)
{
	static const struct {
		const char *pre;
		char t;
	} pat[] = { { "d", 'd' }, { "s", 'f' }, { "sd", 'd' }, { "hot", 'f' },
		    { "u", 'f' }, { "c", 'd' }, { "slot", 'f' }, { "lk", 'f' } };
	if (!strcmp(n, "sub"))
		return 'd';
	if (!strcmp(n, "in") || !strcmp(n, "z1") || !strcmp(n, "z3"))
		return 'f';
	if (n[0] == 'w' && isdigit((unsigned char)n[1])) {
		const char *p = n + 1;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != '_')
			return 0;
		char k = *p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		int plain = !*p || !strcmp(p, "~");
		switch (k) {
		case 'f':
		case 't':
			return plain ? 'f' : 0;
		case 'L':
			return !*p ? 'f' : 0;
		case 'D':
			if (plain)
				return 'd';
			if ((*p == 'a' || *p == 'b' || *p == 'c') &&
			    (!p[1] || !strcmp(p + 1, "~")))
				return 'f';
			return 0;
		case 'E':
		case 'm':
			return !*p ? 'd' : 0;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
		size_t l = strlen(pat[i].pre);
		if (strncmp(n, pat[i].pre, l) || !n[l])
			continue;
		const char *p = n + l;
		while (isdigit((unsigned char)*p))
			p++;
		if (!*p)
			return pat[i].t;
	}
	return 0;
}

/* Which lower a top directory's visible objects live in: d3 is opaque in
 * l1, so everything it shows is there. */
static int vis(int d, int layer)
{
	return d == 3 ? 1 : layer;
}

static void s_content(char *b, size_t n, int d, int k, int layer)
{
	snprintf(b, n, "static d%d/s%d l%d\n", d, k, layer);
}

static int s_layer(int d, int k)
{
	return vis(d, k % 3 + 1);
}

static int u_layer(int d, int r)
{
	return vis(d, r % 3 + 1);
}

static int f_top(int w, int i)
{
	return (w + i) % NDIR;
}

static int f_layer(int w, int i)
{
	return vis(f_top(w, i), i % 3 + 1);
}

static int d_top(int w, int j)
{
	return (w + j) % 3;
}

static int e_top(int w, int k)
{
	return (w + k) % 3;
}

/* ---------------------------------------------------------------- build */

static char broot[2048];

static void bpath(char *b, size_t n, int layer, const char *fmt, va_list ap)
{
	int l = snprintf(b, n, "%s/l%d/", broot, layer);
	vsnprintf(b + l, n - l, fmt, ap);
}

static void mkdirs(char *p)
{
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			die("mkdir %s: %m", p);
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %m", p);
}

__attribute__((format(printf, 2, 3))) static void bdir(int layer, const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	bpath(p, sizeof(p), layer, fmt, ap);
	va_end(ap);
	mkdirs(p);
}

static void parent_of(char *p)
{
	char *s = strrchr(p, '/');
	*s = '\0';
	mkdirs(p);
	*s = '/';
}

__attribute__((format(printf, 3, 4))) static void bfile(int layer, const char *content, const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	bpath(p, sizeof(p), layer, fmt, ap);
	va_end(ap);
	parent_of(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("create %s: %m", p);
	size_t n = strlen(content);
	if (write(fd, content, n) != (ssize_t)n)
		die("write %s: %m", p);
	if (close(fd) < 0)
		die("close %s: %m", p);
}

__attribute__((format(printf, 2, 3))) static void bwhiteout(int layer, const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	bpath(p, sizeof(p), layer, fmt, ap);
	va_end(ap);
	/* d3 is opaque in l1, so nothing below needs hiding there; and kernel
	 * overlayfs (the self-test) lists whiteouts of a directory that is not
	 * merged, where the union hides them: the scenario avoids the case. */
	if (layer == 1 && !strncmp(p + strlen(broot), "/l1/d3/", 7))
		return;
	parent_of(p);
	if (mknod(p, S_IFCHR | 0600, makedev(0, 0)) < 0)
		die("mknod whiteout %s: %m", p);
}

static void build(void)
{
	char c[256];
	umask(0);
	for (int d = 0; d < NDIR; d++) {
		for (int l = 1; l <= 3; l++)
			bdir(l, "d%d", d);
		if (d == 3) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/l1/d3", broot);
			if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
				die("setxattr opaque %s: %m", p);
			/* What the opaque l1 part must hide. */
			for (int l = 2; l <= 3; l++) {
				bfile(l, "JUNK\n", "d3/s1");
				bfile(l, "JUNK\n", "d3/hid%d", l);
				bfile(l, "JUNK\n", "d3/u0");
				bdir(l, "d3/c1");
			}
		}
		for (int k = 0; k < NS; k++) {
			int l = s_layer(d, k);
			s_content(c, sizeof(c), d, k, l);
			bfile(l, c, "d%d/s%d", d, k);
			if (k % 4 == 0 && l < 3)
				bfile(l + 1, "SHADOW\n", "d%d/s%d", d, k);
		}
		for (int k = 0; k < NSD; k++) {
			snprintf(c, sizeof(c), "z1 d%d/sd%d\n", d, k);
			bfile(1, c, "d%d/sd%d/z1", d, k);
			snprintf(c, sizeof(c), "z3 d%d/sd%d\n", d, k);
			bfile(vis(d, 3), c, "d%d/sd%d/z3", d, k);
			bwhiteout(1, "d%d/sd%d/gone", d, k);
			bfile(d == 3 ? 2 : 3, "GONE\n", "d%d/sd%d/gone", d, k);
		}
		for (int k = 0; k < NH; k++) {
			snprintf(c, sizeof(c), "hot d%d/hot%d\n", d, k);
			bfile(vis(d, 2), c, "d%d/hot%d", d, k);
		}
		for (int k = 0; k < NHID; k++) {
			bwhiteout(1, "d%d/hid%d", d, k);
			if (d != 3)
				bfile(3, "HIDDEN\n", "d%d/hid%d", d, k);
		}
		for (int r = 0; r < NU; r++) {
			int l = u_layer(d, r);
			snprintf(c, sizeof(c), "u d%d/u%d\n", d, r);
			bfile(l, c, "d%d/u%d", d, r);
			if (r % 3 == 0 && l < 3 && d != 3)
				bfile(l + 1, "SHADOW\n", "d%d/u%d", d, r);
		}
		for (int r = 0; r < NC; r += 2) {
			bwhiteout(1, "d%d/c%d", d, r);
			if (d != 3)
				bfile(3, "GONE\n", "d%d/c%d/gone", d, r);
		}
		for (int r = 0; r < NSLOT; r += 2) {
			bwhiteout(vis(d, 2), "d%d/slot%d", d, r);
			if (d != 3)
				bfile(3, "GONE\n", "d%d/slot%d", d, r);
		}
		for (int r = 1; r < NLK; r += 2) {
			bwhiteout(1, "d%d/lk%d", d, r);
			if (d != 3)
				bfile(2, "GONE\n", "d%d/lk%d", d, r);
		}
	}
	for (int w = 0; w < nw; w++) {
		for (int i = 0; i < NF; i++) {
			int d = f_top(w, i), l = f_layer(w, i);
			snprintf(c, sizeof(c), "w%d_f%d l%d\n", w, i, l);
			bfile(l, c, "d%d/w%d_f%d", d, w, i);
			if (l < 3 && d != 3)
				bfile(l + 1, "SHADOW\n", "d%d/w%d_f%d", d, w, i);
			int d2 = (d + 1) % NDIR;
			bwhiteout(1, "d%d/w%d_f%d", d2, w, i);
			bfile(3, "HIDDEN\n", "d%d/w%d_f%d", d2, w, i);
			bwhiteout(1, "d%d/w%d_f%d~", d, w, i);
			bfile(2, "HIDDEN\n", "d%d/w%d_f%d~", d, w, i);
		}
		for (int j = 0; j < ND; j++) {
			int d = d_top(w, j), d2 = (d + 1) % 3;
			snprintf(c, sizeof(c), "w%d_D%da l1\n", w, j);
			bfile(1, c, "d%d/w%d_D%d/w%d_D%da", d, w, j, w, j);
			bwhiteout(1, "d%d/w%d_D%d/gone", d, w, j);
			snprintf(c, sizeof(c), "w%d_D%db l3\n", w, j);
			bfile(3, c, "d%d/w%d_D%d/w%d_D%db", d, w, j, w, j);
			bfile(3, "SHADOW\n", "d%d/w%d_D%d/w%d_D%da", d, w, j, w, j);
			bfile(3, "GONE\n", "d%d/w%d_D%d/gone", d, w, j);
			snprintf(c, sizeof(c), "w%d_D%dc l3\n", w, j);
			bfile(3, c, "d%d/w%d_D%d/sub/w%d_D%dc", d, w, j, w, j);
			bwhiteout(1, "d%d/w%d_D%d", d2, w, j);
			bfile(2, "JUNK\n", "d%d/w%d_D%d/junk", d2, w, j);
			bfile(2, "JUNK\n", "d%d/w%d_D%d/sub/junk", d2, w, j);
			bwhiteout(1, "d%d/w%d_D%d~", d2, w, j);
			bfile(3, "JUNK\n", "d%d/w%d_D%d~/junk", d2, w, j);
		}
		for (int k = 0; k < NE; k++) {
			int d = e_top(w, k);
			bwhiteout(2, "d%d/w%d_E%d/x", d, w, k);
			bfile(3, "GONE\n", "d%d/w%d_E%d/x", d, w, k);
		}
	}
}

/* ---------------------------------------------------------------- model */

static struct obj ob[MAXOBJ];
static int nobj, dtok[ND], etok[NE];
static long serial;

static void set_data(struct obj *o, const char *s)
{
	free(o->data);
	o->len = strlen(s);
	o->data = xmalloc(o->len + MAXDATA + 64);
	memcpy(o->data, s, o->len);
}

static int new_obj(int kind)
{
	for (int i = 0; i < nobj; i++)
		if (!ob[i].exists && ob[i].temp && ob[i].kind == kind) {
			free(ob[i].data);
			memset(&ob[i], 0, sizeof(ob[i]));
			ob[i].kind = kind;
			return i;
		}
	if (nobj == MAXOBJ)
		return -1;
	memset(&ob[nobj], 0, sizeof(ob[nobj]));
	ob[nobj].kind = kind;
	return nobj++;
}

static void model_free(void)
{
	for (int i = 0; i < nobj; i++)
		free(ob[i].data);
	nobj = 0;
}

static void model_init(int w)
{
	char c[128];
	nobj = 0;
	for (int i = 0; i < NF; i++) {
		struct obj *o = &ob[new_obj(K_FILE)];
		o->exists = 1;
		o->place = f_top(w, i);
		snprintf(o->base, sizeof(o->base), "w%d_f%d", w, i);
		strcpy(o->name, o->base);
		o->mode = 0644;
		snprintf(c, sizeof(c), "w%d_f%d l%d\n", w, i, f_layer(w, i));
		set_data(o, c);
	}
	for (int j = 0; j < ND; j++) {
		dtok[j] = new_obj(K_DTOK);
		struct obj *o = &ob[dtok[j]];
		o->exists = 1;
		o->place = d_top(w, j);
		snprintf(o->base, sizeof(o->base), "w%d_D%d", w, j);
		strcpy(o->name, o->base);
		o->mode = 0755;
		static const char sfx[] = "abc";
		static const int lay[] = { 1, 3, 3 };
		for (int k = 0; k < 3; k++) {
			struct obj *f = &ob[new_obj(K_FILE)];
			f->exists = 1;
			f->place = k < 2 ? P_D(j) : P_SUB(j);
			snprintf(f->base, sizeof(f->base), "w%d_D%d%c", w, j, sfx[k]);
			strcpy(f->name, f->base);
			f->mode = 0644;
			snprintf(c, sizeof(c), "w%d_D%d%c l%d\n", w, j, sfx[k], lay[k]);
			set_data(f, c);
		}
	}
	for (int k = 0; k < NE; k++) {
		etok[k] = new_obj(K_EDIR);
		struct obj *o = &ob[etok[k]];
		o->exists = 1;
		o->place = e_top(w, k);
		snprintf(o->base, sizeof(o->base), "w%d_E%d", w, k);
		strcpy(o->name, o->base);
		o->mode = 0755;
	}
}

static void place_path(int p, char *b, size_t n)
{
	if (p < NDIR) {
		snprintf(b, n, "d%d", p);
		return;
	}
	int j = (p - NDIR) / 2;
	const struct obj *o = &ob[dtok[j]];
	char pp[2048];
	place_path(o->place, pp, sizeof(pp));
	/* Places nest a few levels deep: far below the buffer. */
	if (snprintf(b, n, "%s/%s%s", pp, o->name, (p - NDIR) % 2 ? "/sub" : "") >= (int)n)
		abort();
}

static void obj_path(const struct obj *o, char *b, size_t n)
{
	char pp[2048];
	place_path(o->place, pp, sizeof(pp));
	snprintf(b, n, "%s/%s", pp, o->name);
}

static void link_path(const struct obj *o, char *b, size_t n)
{
	char pp[2048];
	place_path(o->lplace, pp, sizeof(pp));
	snprintf(b, n, "%s/%s", pp, o->lname);
}

/* Places an mdir or a temporary lives in: the dir tokens' places included. */
static int name_taken(int place, const char *name)
{
	for (int i = 0; i < nobj; i++) {
		const struct obj *o = &ob[i];
		if (o->exists && o->place == place && !strcmp(o->name, name))
			return 1;
		if (o->exists && o->haslink && o->lplace == place && !strcmp(o->lname, name))
			return 1;
	}
	return 0;
}

/* A random existing object of the kind, or -1. */
static int pick(int kind, int temps_only, int no_temps)
{
	int c[MAXOBJ], n = 0;
	for (int i = 0; i < nobj; i++) {
		const struct obj *o = &ob[i];
		if (!o->exists || o->kind != kind)
			continue;
		if ((temps_only && !o->temp) || (no_temps && o->temp))
			continue;
		c[n++] = i;
	}
	return n ? c[rnd(n)] : -1;
}

static int has_dtok_children(int j)
{
	for (int k = 0; k < ND; k++)
		if (ob[dtok[k]].place == P_D(j))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- checks */

static void check_stat(const struct obj *o, const char *path)
{
	struct stat st;
	hb_begin("lstat %s", path);
	int r = lstat(path, &st);
	hb_end();
	if (r < 0) {
		bad("lstat %s: %s, expected it to exist", path, en(errno));
		return;
	}
	int isdir = o->kind != K_FILE;
	if (isdir != !!S_ISDIR(st.st_mode) || (!isdir && !S_ISREG(st.st_mode))) {
		bad("lstat %s: mode %o, expected a %s", path, st.st_mode,
		    isdir ? "directory" : "regular file");
		return;
	}
	if ((st.st_mode & 07777) != o->mode)
		bad("lstat %s: permissions %04o, expected %04o", path,
		    st.st_mode & 07777, o->mode);
	if (isdir)
		return;
	if ((size_t)st.st_size != o->len)
		bad("lstat %s: size %lld, expected %zu", path, (long long)st.st_size, o->len);
	if (st.st_nlink != (nlink_t)(1 + o->haslink))
		bad("lstat %s: st_nlink %lu, expected %d", path,
		    (unsigned long)st.st_nlink, 1 + o->haslink);
}

static void check_content(const struct obj *o, const char *path)
{
	char b[MAXDATA + 256];
	hb_begin("read %s", path);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = -1;
	int e = 0;
	if (fd >= 0) {
		n = read(fd, b, sizeof(b));
		e = errno;
		if (close(fd) < 0 && n >= 0) {
			n = -1;
			e = errno;
		}
	} else {
		e = errno;
	}
	hb_end();
	if (n < 0)
		bad("read %s: %s", path, en(e));
	else if ((size_t)n != o->len || memcmp(b, o->data, n))
		bad("read %s: %zd bytes '%.40s...', expected %zu bytes '%.40s...'",
		    path, n, b, o->len, o->data);
}

static void check_xattr(const struct obj *o, const char *path)
{
	char v[64];
	hb_begin("lgetxattr %s user.tok", path);
	ssize_t n = lgetxattr(path, "user.tok", v, sizeof(v) - 1);
	int e = errno;
	hb_end();
	if (!o->xval[0]) {
		if (n >= 0 || e != ENODATA)
			bad("lgetxattr %s user.tok: %s, expected ENODATA", path,
			    n >= 0 ? "a value" : en(e));
		return;
	}
	if (n < 0) {
		bad("lgetxattr %s user.tok: %s, expected '%s'", path, en(e), o->xval);
		return;
	}
	v[n] = '\0';
	if (strcmp(v, o->xval))
		bad("lgetxattr %s user.tok: '%s', expected '%s'", path, v, o->xval);
}

struct ent {
	char name[256];
	char t;
	int seen;
};

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

/* Read a whole directory; *n entries (without . and ..), sorted; NULL
 * with errno on failure. Names listed twice are reported here, and so
 * are missing dots, unless the directory may have been removed meanwhile
 * (maybe_gone): a removed directory lists nothing at all. */
static struct ent *list_dir(int dirfd, const char *path, size_t *n, int maybe_gone)
{
	hb_begin("opendir %s", path);
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		hb_end();
		errno = e;
		return NULL;
	}
	DIR *d = fdopendir(fd);
	if (!d)
		die("fdopendir: %m");
	size_t cap = 64, k = 0;
	int dots = 0;
	struct ent *v = xmalloc(cap * sizeof(*v));
	hb_begin("readdir %s", path);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				int e = errno;
				hb_end();
				closedir(d);
				free(v);
				errno = e;
				return NULL;
			}
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			dots++;
			continue;
		}
		if (k == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("out of memory");
		}
		snprintf(v[k].name, sizeof(v[k].name), "%s", de->d_name);
		v[k].t = dtype_char(de->d_type);
		v[k].seen = 0;
		k++;
	}
	hb_end();
	if (closedir(d) < 0)
		bad("closedir %s: %s", path, en(errno));
	qsort(v, k, sizeof(*v), cmp_ent);
	for (size_t i = 1; i < k; i++)
		if (!strcmp(v[i].name, v[i - 1].name))
			bad("readdir %s: '%s' listed twice", path, v[i].name);
	if (dots != 2 && !(maybe_gone && dots == 0 && k == 0))
		bad("readdir %s: %d entries '.' or '..', expected 2", path, dots);
	*n = k;
	return v;
}

static struct ent *find_ent(struct ent *v, size_t n, const char *name)
{
	struct ent key;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, v, n, sizeof(*v), cmp_ent);
}

/* ---------------------------------------------------------------- mutator ops */

static int mw;			/* this mutator's number */
static int hotcnt[NDIR][NH], ucur[NDIR];
static long tempno, mdirno;

static int rename_checked(const char *from, const char *to, unsigned flags, int ok_errno)
{
	hb_begin("renameat2 %s %s %s", from, to,
		 flags == RENAME_EXCHANGE ? "EXCHANGE" : flags ? "NOREPLACE" : "0");
	int r = renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
	int e = errno;
	hb_end();
	if (r == 0)
		return 0;
	if (ok_errno && e == ok_errno)
		return 1;
	bad("rename %s -> %s%s: %s, expected success", from, to,
	    flags == RENAME_EXCHANGE ? " (EXCHANGE)" : flags ? " (NOREPLACE)" : "", en(e));
	return -1;
}

static void op_rename_file(void)
{
	int i = pick(K_FILE, 0, 0);
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	int q = rnd(NPLACE);
	char nm[48];
	snprintf(nm, sizeof(nm), "%s%s", o->base, rnd(2) ? "~" : "");
	if (name_taken(q, nm))
		return;
	char from[4096], to[4096], pp[2048];
	obj_path(o, from, sizeof(from));
	place_path(q, pp, sizeof(pp));
	snprintf(to, sizeof(to), "%s/%s", pp, nm);
	if (rename_checked(from, to, 0, 0) == 0) {
		o->place = q;
		strcpy(o->name, nm);
		count(N_RENAME);
	}
}

static void op_exchange_files(void)
{
	int a = pick(K_FILE, 0, 0), b = pick(K_FILE, 0, 0);
	if (a < 0 || b < 0 || a == b)
		return;
	char pa[4096], pb[4096];
	obj_path(&ob[a], pa, sizeof(pa));
	obj_path(&ob[b], pb, sizeof(pb));
	if (rename_checked(pa, pb, RENAME_EXCHANGE, 0) == 0) {
		struct obj t = ob[a];
		ob[a].place = ob[b].place;
		strcpy(ob[a].name, ob[b].name);
		ob[b].place = t.place;
		strcpy(ob[b].name, t.name);
		count(N_EXCHANGE);
	}
}

static int place_in_dtok(int place, int j)
{
	return place == P_D(j) || place == P_SUB(j);
}

static void op_rename_dtok(void)
{
	int j = rnd(ND);
	struct obj *o = &ob[dtok[j]];
	int c[NDIR + ND], n = 0;
	for (int q = 0; q < NDIR; q++)
		c[n++] = q;
	if (!has_dtok_children(j))
		for (int k = 0; k < ND; k++)
			if (k != j && ob[dtok[k]].place < NDIR)
				c[n++] = P_D(k);
	int q = c[rnd(n)];
	char nm[48];
	snprintf(nm, sizeof(nm), "%s%s", o->base, rnd(2) ? "~" : "");
	char from[4096], to[4096], pp[2048];
	obj_path(o, from, sizeof(from));
	/* Sometimes onto an empty-looking lower directory of the same place:
	 * rename over a merged directory that has only whiteouts. */
	int e = -1;
	if (rnd(6) == 0) {
		int k = rnd(NE);
		if (ob[etok[k]].exists) {
			e = etok[k];
			q = ob[e].place;
			strcpy(nm, ob[e].name);
		}
	}
	if (e < 0 && name_taken(q, nm))
		return;
	place_path(q, pp, sizeof(pp));
	snprintf(to, sizeof(to), "%s/%s", pp, nm);
	if (rename_checked(from, to, 0, 0) == 0) {
		if (e >= 0)
			ob[e].exists = 0;
		o->place = q;
		strcpy(o->name, nm);
		count(N_DRENAME);
	}
}

static void op_exchange_dtoks(void)
{
	int j = rnd(ND), k = rnd(ND);
	if (j == k)
		return;
	struct obj *a = &ob[dtok[j]], *b = &ob[dtok[k]];
	if (place_in_dtok(a->place, k) || place_in_dtok(b->place, j))
		return;
	if ((b->place >= NDIR && has_dtok_children(j)) ||
	    (a->place >= NDIR && has_dtok_children(k)))
		return;
	char pa[4096], pb[4096];
	obj_path(a, pa, sizeof(pa));
	obj_path(b, pb, sizeof(pb));
	if (rename_checked(pa, pb, RENAME_EXCHANGE, 0) == 0) {
		int tp = a->place;
		char tn[40];
		strcpy(tn, a->name);
		a->place = b->place;
		strcpy(a->name, b->name);
		b->place = tp;
		strcpy(b->name, tn);
		count(N_EXCHANGE);
	}
}

static int write_file(const char *path, int flags, const char *s, const char *what)
{
	size_t n = strlen(s);
	hb_begin("%s %s", what, path);
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | flags, 0644);
	int e = 0;
	ssize_t w = -1;
	if (fd < 0) {
		e = errno;
	} else {
		w = write(fd, s, n);
		e = errno;
		if (close(fd) < 0 && w >= 0) {
			w = -1;
			e = errno;
		}
	}
	hb_end();
	if (fd < 0 && (flags & O_EXCL) && e == EEXIST)
		return 1;
	if (w != (ssize_t)n) {
		bad("%s %s: %s", what, path, w < 0 ? en(e) : "short write");
		return -1;
	}
	return 0;
}

static void op_append(void)
{
	int i = pick(K_FILE, 0, 0);
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	char path[4096], line[64];
	if (o->haslink && rnd(2))
		link_path(o, path, sizeof(path));
	else
		obj_path(o, path, sizeof(path));
	if (o->len < MAXDATA) {
		snprintf(line, sizeof(line), "w%d append %ld\n", mw, ++serial);
		if (write_file(path, O_APPEND, line, "append") == 0) {
			memcpy(o->data + o->len, line, strlen(line));
			o->len += strlen(line);
			count(N_APPEND);
		}
	} else {
		snprintf(line, sizeof(line), "w%d rewrite %ld\n", mw, ++serial);
		if (write_file(path, O_TRUNC, line, "open O_TRUNC+write") == 0) {
			set_data(o, line);
			count(N_TRUNC);
		}
	}
}

static void op_truncate(void)
{
	int i = pick(K_FILE, 0, 0);
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	char path[4096], line[64];
	obj_path(o, path, sizeof(path));
	snprintf(line, sizeof(line), "w%d rewrite %ld\n", mw, ++serial);
	if (write_file(path, O_TRUNC, line, "open O_TRUNC+write") == 0) {
		set_data(o, line);
		count(N_TRUNC);
	}
}

static void op_chmod(void)
{
	static const unsigned fm[] = { 0644, 0640, 0600, 0604 }, dm[] = { 0755, 0750, 0711 };
	int i = rnd(3) ? pick(K_FILE, 0, 0) : dtok[rnd(ND)];
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	unsigned m = o->kind == K_FILE ? fm[rnd(4)] : dm[rnd(3)];
	char path[4096];
	obj_path(o, path, sizeof(path));
	hb_begin("chmod %s %o", path, m);
	int r = chmod(path, m);
	int e = errno;
	hb_end();
	if (r < 0) {
		bad("chmod %s %o: %s", path, m, en(e));
		return;
	}
	o->mode = m;
	count(N_CHMOD);
}

static void op_setxattr(void)
{
	int i = rnd(3) ? pick(K_FILE, 0, 0) : dtok[rnd(ND)];
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	char path[4096], v[32];
	obj_path(o, path, sizeof(path));
	snprintf(v, sizeof(v), "w%d.%ld", mw, ++serial);
	hb_begin("lsetxattr %s user.tok", path);
	int r = lsetxattr(path, "user.tok", v, strlen(v), 0);
	int e = errno;
	hb_end();
	if (r < 0) {
		bad("lsetxattr %s user.tok: %s", path, en(e));
		return;
	}
	strcpy(o->xval, v);
	count(N_XATTR);
}

/* link(2), with one retry for a race of the kernel's FUSE client that no
 * daemon can prevent: a READDIRPLUS reply computed after the daemon
 * removed another name of the file, but applied before the kernel saw
 * that unlink's reply, already counts the removal; fuse_entry_unlinked()
 * then drops i_nlink once more, to 0, and vfs_link() refuses a source
 * with no links (ENOENT) until the attributes are fetched again. libfuse's
 * passthrough_ll shows the same. The lstat here fetches them; a daemon
 * that really lost the source fails the retry too. */
static int link_checked(const char *from, const char *to, int want_nlink, const char *what)
{
	hb_begin("link %s %s%s", from, to, what);
	int r = link(from, to);
	int e = errno;
	hb_end();
	if (r < 0 && e == ENOENT) {
		struct stat st;
		hb_begin("lstat %s (after link ENOENT)", from);
		int sr = lstat(from, &st);
		hb_end();
		if (sr == 0 && st.st_nlink == (nlink_t)want_nlink) {
			hb_begin("link %s %s%s (again)", from, to, what);
			r = link(from, to);
			e = errno;
			hb_end();
			if (r == 0 || e != ENOENT)
				__atomic_add_fetch(&sh->fuse_nlink_race, 1, __ATOMIC_RELAXED);
		}
	}
	errno = e;
	return r;
}

static void op_link(void)
{
	int i = pick(K_FILE, 0, 1);
	if (i < 0)
		return;
	struct obj *o = &ob[i];
	char path[4096], lp[4096], pp[2048];
	if (o->haslink) {
		link_path(o, lp, sizeof(lp));
		hb_begin("unlink %s", lp);
		int r = unlink(lp);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("unlink %s (a hard link): %s", lp, en(e));
			return;
		}
		o->haslink = 0;
		count(N_UNLINK);
		return;
	}
	int q = rnd(NPLACE);
	char nm[40];
	snprintf(nm, sizeof(nm), "w%d_L%d", mw, i);
	if (name_taken(q, nm))
		return;
	obj_path(o, path, sizeof(path));
	place_path(q, pp, sizeof(pp));
	snprintf(lp, sizeof(lp), "%s/%s", pp, nm);
	int r = link_checked(path, lp, 1, "");
	int e = errno;
	if (r < 0) {
		bad("link %s %s: %s", path, lp, en(e));
		return;
	}
	o->haslink = 1;
	o->lplace = q;
	strcpy(o->lname, nm);
	count(N_LINK);
}

static int count_temps(int kind)
{
	int n = 0;
	for (int i = 0; i < nobj; i++)
		n += ob[i].exists && ob[i].temp && ob[i].kind == kind;
	return n;
}

static void op_temp(void)
{
	unsigned what = rnd(3);
	if (what == 0 || count_temps(K_FILE) < 2) {
		if (count_temps(K_FILE) >= MAXTEMP)
			return;
		int i = new_obj(K_FILE);
		if (i < 0)
			return;
		struct obj *o = &ob[i];
		o->temp = 1;
		o->place = rnd(NPLACE);
		snprintf(o->base, sizeof(o->base), "w%d_t%ld", mw, ++tempno);
		strcpy(o->name, o->base);
		o->mode = 0644;
		char path[4096], c[64];
		obj_path(o, path, sizeof(path));
		snprintf(c, sizeof(c), "temp %s\n", o->base);
		int r = write_file(path, O_CREAT | O_EXCL, c, "create");
		if (r == 1)
			bad("create %s: EEXIST, the name should be free", path);
		if (r == 0) {
			o->exists = 1;
			set_data(o, c);
			count(N_CREATE);
		}
		return;
	}
	int a = pick(K_FILE, 1, 0);
	if (a < 0)
		return;
	char pa[4096];
	obj_path(&ob[a], pa, sizeof(pa));
	if (what == 1) {
		hb_begin("unlink %s", pa);
		int r = unlink(pa);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("unlink %s: %s", pa, en(e));
			return;
		}
		ob[a].exists = 0;
		count(N_UNLINK);
		return;
	}
	/* Replace one temporary by another. */
	int b = pick(K_FILE, 1, 0);
	if (b < 0 || b == a)
		return;
	char pb[4096];
	obj_path(&ob[b], pb, sizeof(pb));
	if (rename_checked(pa, pb, 0, 0) == 0) {
		ob[a].place = ob[b].place;
		strcpy(ob[a].name, ob[b].name);
		ob[b].exists = 0;
		count(N_RENAME);
	}
}

static void op_mdir(void)
{
	int i = pick(K_MDIR, 1, 0);
	if (i < 0 || (rnd(3) == 0 && count_temps(K_MDIR) < MAXMDIR)) {
		i = new_obj(K_MDIR);
		if (i < 0)
			return;
		struct obj *o = &ob[i];
		o->temp = 1;
		o->mode = 0755;
		o->place = rnd(NPLACE);
		snprintf(o->base, sizeof(o->base), "w%d_m%ld", mw, ++mdirno);
		strcpy(o->name, o->base);
		char path[4096];
		obj_path(o, path, sizeof(path));
		hb_begin("mkdir %s", path);
		int r = mkdir(path, 0755);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("mkdir %s: %s", path, en(e));
			return;
		}
		o->exists = 1;
		count(N_MKDIR);
		return;
	}
	struct obj *o = &ob[i];
	char path[4096], in[4200];
	obj_path(o, path, sizeof(path));
	snprintf(in, sizeof(in), "%s/in", path);
	unsigned what = rnd(3);
	if (what == 0 && !o->has_in) {
		if (write_file(in, O_CREAT | O_EXCL, "in\n", "create") == 0) {
			o->has_in = 1;
			count(N_CREATE);
		}
	} else if (what == 0 || (what == 1 && o->has_in)) {
		hb_begin("unlink %s", in);
		int r = unlink(in);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("unlink %s: %s", in, en(e));
			return;
		}
		o->has_in = 0;
		count(N_UNLINK);
	} else if (what == 1) {
		hb_begin("rmdir %s", path);
		int r = rmdir(path);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("rmdir %s: %s", path, en(e));
			return;
		}
		o->exists = 0;
		count(N_RMDIR);
	} else {
		int q = rnd(NPLACE);
		if (name_taken(q, o->name))
			return;
		char to[4096], pp[2048];
		place_path(q, pp, sizeof(pp));
		snprintf(to, sizeof(to), "%s/%s", pp, o->name);
		if (rename_checked(path, to, 0, 0) == 0) {
			o->place = q;
			count(N_DRENAME);
		}
	}
}

static void op_edir(void)
{
	struct obj *o = &ob[etok[rnd(NE)]];
	char path[4096];
	obj_path(o, path, sizeof(path));
	if (o->exists) {
		hb_begin("rmdir %s", path);
		int r = rmdir(path);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("rmdir %s (looks empty): %s", path, en(e));
			return;
		}
		o->exists = 0;
		count(N_RMDIR);
	} else if (!name_taken(o->place, o->name)) {
		hb_begin("mkdir %s", path);
		int r = mkdir(path, 0755);
		int e = errno;
		hb_end();
		if (r < 0) {
			bad("mkdir %s: %s", path, en(e));
			return;
		}
		o->exists = 1;
		o->mode = 0755;
		count(N_MKDIR);
	}
}

/* Races: every mutator goes for the same names. */
static void op_race(void)
{
	int d = rnd(NDIR);
	char p[64];
	switch (rnd(6)) {
	case 0:
	case 1: {
		if (ucur[d] >= NU)
			return;
		int r = ucur[d]++;
		snprintf(p, sizeof(p), "d%d/u%d", d, r);
		__atomic_add_fetch(&sh->uatt[d][r], 1, __ATOMIC_SEQ_CST);
		hb_begin("unlink %s (race)", p);
		int rc = unlink(p);
		int e = errno;
		hb_end();
		if (rc == 0) {
			__atomic_add_fetch(&sh->uwin[d][r], 1, __ATOMIC_SEQ_CST);
			count(N_RACE_WON);
		} else if (e == ENOENT) {
			count(N_RACE_LOST);
		} else {
			bad("unlink %s (race): %s, expected success or ENOENT", p, en(e));
		}
		return;
	}
	case 2: {
		int r = rnd(NC);
		snprintf(p, sizeof(p), "d%d/c%d", d, r);
		if (rnd(2)) {
			hb_begin("mkdir %s (race)", p);
			int rc = mkdir(p, 0755);
			int e = errno;
			hb_end();
			if (rc == 0) {
				__atomic_add_fetch(&sh->cmk[d][r], 1, __ATOMIC_SEQ_CST);
				count(N_RACE_WON);
			} else if (e == EEXIST) {
				count(N_RACE_LOST);
			} else {
				bad("mkdir %s (race): %s, expected success or EEXIST", p, en(e));
			}
		} else {
			hb_begin("rmdir %s (race)", p);
			int rc = rmdir(p);
			int e = errno;
			hb_end();
			if (rc == 0) {
				__atomic_add_fetch(&sh->crm[d][r], 1, __ATOMIC_SEQ_CST);
				count(N_RACE_WON);
			} else if (e == ENOENT) {
				count(N_RACE_LOST);
			} else {
				bad("rmdir %s (race): %s, expected success or ENOENT", p, en(e));
			}
		}
		return;
	}
	case 3: {
		int k = rnd(NH);
		snprintf(p, sizeof(p), "d%d/hot%d", d, k);
		if (rnd(8) == 0) {
			hb_begin("chmod %s 0600", p);
			int rc = chmod(p, 0600);
			int e = errno;
			hb_end();
			if (rc < 0) {
				bad("chmod %s 0600: %s", p, en(e));
				return;
			}
			__atomic_store_n(&sh->hotchmod[d][k], 1, __ATOMIC_SEQ_CST);
			count(N_CHMOD);
			return;
		}
		char line[64];
		snprintf(line, sizeof(line), "w%d h%d\n", mw, hotcnt[d][k] + 1);
		if (write_file(p, O_APPEND, line, "append") == 0) {
			hotcnt[d][k]++;
			count(N_APPEND);
		}
		return;
	}
	case 4: {
		int i = pick(K_FILE, 0, 0);
		if (i < 0 || !strncmp(ob[i].name, "slot", 4))
			return;
		char from[4096];
		obj_path(&ob[i], from, sizeof(from));
		int r = rnd(NSLOT);
		snprintf(p, sizeof(p), "d%d/slot%d", d, r);
		int rc = rename_checked(from, p, RENAME_NOREPLACE, EEXIST);
		if (rc == 0) {
			ob[i].place = d;
			snprintf(ob[i].name, sizeof(ob[i].name), "slot%d", r);
			count(N_RACE_WON);
		} else if (rc == 1) {
			count(N_RACE_LOST);
		}
		return;
	}
	default: {
		int i = pick(K_FILE, 0, 1);
		if (i < 0 || ob[i].haslink)
			return;
		char from[4096];
		obj_path(&ob[i], from, sizeof(from));
		int r = rnd(NLK);
		snprintf(p, sizeof(p), "d%d/lk%d", d, r);
		int rc = link_checked(from, p, 1, " (race)");
		int e = errno;
		if (rc == 0) {
			ob[i].haslink = 1;
			ob[i].lplace = d;
			snprintf(ob[i].lname, sizeof(ob[i].lname), "lk%d", r);
			count(N_RACE_WON);
		} else if (e == EEXIST) {
			count(N_RACE_LOST);
		} else {
			bad("link %s %s (race): %s, expected success or EEXIST", from, p, en(e));
		}
		return;
	}
	}
}

static void op_stat(void)
{
	int i = rnd(nobj);
	struct obj *o = &ob[i];
	if (!o->exists)
		return;
	char path[4096];
	obj_path(o, path, sizeof(path));
	check_stat(o, path);
	if (o->kind == K_FILE || o->kind == K_DTOK)
		check_xattr(o, path);
	if (o->kind == K_FILE) {
		check_content(o, path);
		if (o->haslink) {
			link_path(o, path, sizeof(path));
			check_stat(o, path);
			check_content(o, path);
		}
	}
	count(N_STAT);
}

/* List one of our places (or directories) and compare with the model. */
/* For a name a listing of path should not have shown: what lstat and
 * a second listing say, into buf ("lstat: ENOENT, listed again" is a
 * stale listing; a name that lstat finds is there). */
static void why_listed(const char *path, const char *name, char *buf, size_t size)
{
	char p[4096 + 260], data[16] = "";
	struct stat st;
	size_t n2;

	snprintf(p, sizeof(p), "%s/%s", path, name);
	int r = lstat(p, &st), e = errno;
	if (r == 0 && S_ISREG(st.st_mode)) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd < 0 ? -1 : read(fd, data, sizeof(data) - 1);
		if (got > 0)
			data[got] = '\0';
		for (char *c = data; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '.';
		if (fd >= 0)
			close(fd);
	}
	struct ent *v = list_dir(AT_FDCWD, path, &n2, 0);
	snprintf(buf, size, "lstat: %s%s%s%s; %s", r == 0 ? "found" : en(e), r == 0 ? " '" : "", data,
		 r == 0 ? "'" : "", !v ? "cannot list again" : find_ent(v, n2, name) ? "listed again" : "not listed again");
	free(v);
}

static void op_list(void)
{
	char path[4096], own[16];
	int q = -1, dirobj = -1;
	unsigned c = rnd(NPLACE + 3);
	if (c < NPLACE) {
		q = c;
		place_path(q, path, sizeof(path));
	} else {
		dirobj = rnd(nobj);
		struct obj *o = &ob[dirobj];
		if (!o->exists || (o->kind != K_EDIR && o->kind != K_MDIR))
			return;
		obj_path(o, path, sizeof(path));
	}
	size_t n;
	struct ent *v = list_dir(AT_FDCWD, path, &n, 0);
	if (!v) {
		bad("list %s: %s", path, en(errno));
		return;
	}
	int ours_only = q >= NDIR || dirobj >= 0;
	snprintf(own, sizeof(own), "w%d_", mw);
	if (dirobj >= 0) {
		const struct obj *o = &ob[dirobj];
		for (size_t i = 0; i < n; i++) {
			if (o->kind == K_MDIR && o->has_in && !strcmp(v[i].name, "in"))
				continue;
			bad("list %s: unexpected '%s' (%c)", path, v[i].name, v[i].t);
		}
		if (o->kind == K_MDIR && o->has_in && !find_ent(v, n, "in"))
			bad("list %s: 'in' missing", path);
		free(v);
		count(N_LIST);
		return;
	}
	for (int i = 0; i < nobj; i++) {
		const struct obj *o = &ob[i];
		const char *nm[2] = { NULL, NULL };
		if (o->exists && o->place == q)
			nm[0] = o->name;
		if (o->exists && o->haslink && o->lplace == q)
			nm[1] = o->lname;
		for (int k = 0; k < 2; k++) {
			if (!nm[k])
				continue;
			struct ent *e = find_ent(v, n, nm[k]);
			char want = o->kind == K_FILE ? 'f' : 'd';
			if (!e)
				bad("list %s: '%s' missing", path, nm[k]);
			else if (e->t != want)
				bad("list %s: '%s' has d_type %c, expected %c", path, nm[k], e->t, want);
			if (e)
				e->seen = 1;
		}
	}
	if (q >= NDIR && !find_ent(v, n, "sub") && q % 2 == 0)
		bad("list %s: 'sub' missing", path);
	for (size_t i = 0; i < n; i++) {
		if (v[i].seen)
			continue;
		if (q >= NDIR && q % 2 == 0 && !strcmp(v[i].name, "sub"))
			continue;
		if (ours_only || !strncmp(v[i].name, own, strlen(own))) {
			char why[128];
			why_listed(path, v[i].name, why, sizeof(why));
			bad("list %s: unexpected '%s' (%c) (%s)", path, v[i].name, v[i].t, why);
		}
	}
	free(v);
	count(N_LIST);
}

/* The operation mix: weights out of their sum. STRESS_OPS=name,name...
 * keeps only those (to narrow a failure down). */
static struct {
	const char *name;
	void (*fn)(void);
	unsigned weight;
} mix[] = {
	{ "rename", op_rename_file, 12 }, { "exchange", op_exchange_files, 4 },
	{ "dir-rename", op_rename_dtok, 6 }, { "dir-exchange", op_exchange_dtoks, 2 },
	{ "append", op_append, 10 }, { "truncate", op_truncate, 3 },
	{ "chmod", op_chmod, 5 }, { "setxattr", op_setxattr, 5 },
	{ "link", op_link, 4 }, { "temp", op_temp, 6 }, { "mdir", op_mdir, 5 },
	{ "edir", op_edir, 3 }, { "race", op_race, 17 }, { "list", op_list, 9 },
	{ "stat", op_stat, 9 },
};
#define NMIX (sizeof(mix) / sizeof(mix[0]))

static void mix_from_env(void)
{
	const char *only = getenv("STRESS_OPS");
	if (!only || !*only)
		return;
	unsigned total = 0;
	for (size_t i = 0; i < NMIX; i++) {
		char pat[40];
		snprintf(pat, sizeof(pat), ",%s,", mix[i].name);
		char *list;
		if (asprintf(&list, ",%s,", only) < 0)
			die("out of memory");
		if (!strstr(list, pat))
			mix[i].weight = 0;
		total += mix[i].weight;
		free(list);
	}
	if (!total)
		die("STRESS_OPS=%s names no operation", only);
}

static void mutator(int w)
{
	unsigned total = 0;
	mw = w;
	model_init(w);
	mix_from_env();
	for (size_t i = 0; i < NMIX; i++)
		total += mix[i].weight;
	while (!stopping()) {
		unsigned r = rnd(total);
		size_t i = 0;
		while (r >= mix[i].weight)
			r -= mix[i++].weight;
		mix[i].fn();
	}
}

/* What this mutator owns, in the projection. */
static void write_expect(FILE *f)
{
	char path[4096];
	for (int i = 0; i < nobj; i++) {
		const struct obj *o = &ob[i];
		if (!o->exists)
			continue;
		obj_path(o, path, sizeof(path));
		if (o->kind != K_FILE) {
			fprintf(f, "%s d m=%04o\n", path, o->mode);
			if (o->kind == K_DTOK)
				fprintf(f, "%s/sub d m=0755\n", path);
			if (o->kind == K_MDIR && o->has_in)
				fprintf(f, "%s/in f m=0644 n=1 h=%016llx/3\n", path,
					(unsigned long long)fnv("in\n", 3));
			if (o->xval[0])
				fprintf(f, "  x %s user.tok=%s\n", path, o->xval);
			continue;
		}
		for (int k = 0; k < 1 + o->haslink; k++) {
			if (k)
				link_path(o, path, sizeof(path));
			fprintf(f, "%s f m=%04o n=%d h=%016llx/%zu\n", path, o->mode,
				1 + o->haslink, (unsigned long long)fnv(o->data, o->len), o->len);
			if (o->xval[0])
				fprintf(f, "  x %s user.tok=%s\n", path, o->xval);
		}
	}
}

/* ---------------------------------------------------------------- reader */

static int is_static_top(const char *n)
{
	int k;
	char c;
	if (sscanf(n, "s%d%c", &k, &c) == 1 && k >= 0 && k < NS)
		return 1;
	if (sscanf(n, "sd%d%c", &k, &c) == 1 && k >= 0 && k < NSD)
		return 1;
	if (sscanf(n, "hot%d%c", &k, &c) == 1 && k >= 0 && k < NH)
		return 1;
	return 0;
}

static void walk(const char *path, int depth, int top)
{
	size_t n;
	struct ent *v = list_dir(AT_FDCWD, path, &n, depth > 1);
	if (!v) {
		/* Moved or removed meanwhile; the static ones never are. */
		if (errno != ENOENT || depth <= 1)
			bad("walk: list %s: %s", path, en(errno));
		return;
	}
	if (depth == 0 && n != NDIR)
		bad("walk: the root lists %zu names, expected %d", n, NDIR);
	if (top >= 0) {
		char nm[16];
		for (int k = 0; k < NS + NSD + NH; k++) {
			if (k < NS)
				snprintf(nm, sizeof(nm), "s%d", k);
			else if (k < NS + NSD)
				snprintf(nm, sizeof(nm), "sd%d", k - NS);
			else
				snprintf(nm, sizeof(nm), "hot%d", k - NS - NSD);
			if (!find_ent(v, n, nm))
				bad("walk: %s: static '%s' missing", path, nm);
		}
	}
	for (size_t i = 0; i < n && !stopping(); i++) {
		char t = name_type(v[i].name);
		char p[4096];
		/* Not snprintf: gcc -O2 with ASan takes v[i].name for a null
		 * argument (-Wformat-truncation) however v is checked. */
		size_t pl = strlen(path), nl = strlen(v[i].name);
		if (pl + 1 + nl >= sizeof(p)) {
			bad("walk: %s/%s: path too long", path, v[i].name);
			continue;
		}
		memcpy(p, path, pl);
		p[pl] = '/';
		memcpy(p + pl + 1, v[i].name, nl + 1);
		if (!t) {
			bad("walk: %s: '%s' listed, a name that must stay hidden", path, v[i].name);
			continue;
		}
		if (v[i].t != t)
			bad("walk: %s: d_type %c, expected %c", p, v[i].t, t);
		int stat_ = top >= 0 && is_static_top(v[i].name);
		if (stat_ || rnd(4) == 0) {
			struct stat st;
			hb_begin("lstat %s", p);
			int r = lstat(p, &st);
			int e = errno;
			hb_end();
			if (r < 0 && (stat_ || e != ENOENT))
				bad("walk: lstat %s: %s", p, en(e));
			else if (r == 0 && (S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : '?') != t)
				bad("walk: lstat %s: mode %o, expected type %c", p, st.st_mode, t);
		}
		if (top >= 0 && v[i].name[0] == 's' && isdigit((unsigned char)v[i].name[1]) && rnd(8) == 0) {
			int k = atoi(v[i].name + 1);
			struct obj o = { .kind = K_FILE };
			char c[128];
			s_content(c, sizeof(c), top, k, s_layer(top, k));
			o.data = c;
			o.len = strlen(c);
			check_content(&o, p);
		}
		if (t == 'd' && depth < 6)
			walk(p, depth + 1, depth == 0 ? atoi(v[i].name + 1) : -1);
	}
	free(v);
}

static void reader(void)
{
	while (!stopping()) {
		walk(".", 0, -1);
		count(N_WALK);
	}
}

/* ---------------------------------------------------------------- parent */

static void print_static_expect(FILE *f, int initial)
{
	char c[128];
	for (int d = 0; d < NDIR; d++) {
		fprintf(f, "d%d d m=0755\n", d);
		for (int k = 0; k < NS; k++) {
			s_content(c, sizeof(c), d, k, s_layer(d, k));
			fprintf(f, "d%d/s%d f m=0644 n=1 h=%016llx/%zu\n", d, k,
				(unsigned long long)fnv(c, strlen(c)), strlen(c));
		}
		for (int k = 0; k < NSD; k++) {
			fprintf(f, "d%d/sd%d d m=0755\n", d, k);
			for (int z = 1; z <= 3; z += 2) {
				snprintf(c, sizeof(c), "z%d d%d/sd%d\n", z, d, k);
				fprintf(f, "d%d/sd%d/z%d f m=0644 n=1 h=%016llx/%zu\n", d, k, z,
					(unsigned long long)fnv(c, strlen(c)), strlen(c));
			}
		}
		for (int k = 0; k < NH; k++)
			fprintf(f, "d%d/hot%d f m=%s n=1 h=hot\n", d, k,
				!initial && sh->hotchmod[d][k] ? "0600" : "0644");
		for (int r = 0; r < NU; r++) {
			if (!initial && sh->uatt[d][r])
				continue;
			snprintf(c, sizeof(c), "u d%d/u%d\n", d, r);
			fprintf(f, "d%d/u%d f m=0644 n=1 h=%016llx/%zu\n", d, r,
				(unsigned long long)fnv(c, strlen(c)), strlen(c));
		}
		for (int r = 0; r < NC && !initial; r++)
			if (sh->cmk[d][r] - sh->crm[d][r] == 1)
				fprintf(f, "d%d/c%d d m=0755\n", d, r);
	}
}

static int check_races(void)
{
	int bad_ = 0;
	for (int d = 0; d < NDIR; d++) {
		for (int r = 0; r < NU; r++) {
			int a = sh->uatt[d][r], w = sh->uwin[d][r];
			if ((a > 0 && w != 1) || (a == 0 && w != 0)) {
				printf("race: d%d/u%d: %d unlinks tried, %d succeeded, expected exactly one\n",
				       d, r, a, w);
				bad_++;
			}
		}
		for (int r = 0; r < NC; r++) {
			int m = sh->cmk[d][r], x = sh->crm[d][r];
			if (m - x != 0 && m - x != 1) {
				printf("race: d%d/c%d: %d mkdirs and %d rmdirs succeeded\n", d, r, m, x);
				bad_++;
			}
		}
	}
	return bad_;
}

static char *sjoin(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

static FILE *xfopen(const char *dir, const char *name, const char *mode)
{
	char *p = sjoin(dir, name);
	FILE *f = fopen(p, mode);
	if (!f)
		die("%s: %m", p);
	free(p);
	return f;
}

static void xfclose(FILE *f, const char *what)
{
	if (ferror(f) || fclose(f) != 0)
		die("writing %s failed", what);
}

static void child(int idx, const char *mnt, const char *state)
{
	char nm[32];
	me = idx;
	rng = ((uint64_t)seed << 20) ^ (0x9e3779b97f4a7c15ULL * (idx + 1));
	for (int i = 0; i < 5; i++)
		rnd(2);
	snprintf(nm, sizeof(nm), "w%d.err", idx);
	char *p = sjoin(state, nm);
	errfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (errfd < 0)
		die("%s: %m", p);
	free(p);
	umask(0);
	hb_begin("chdir %s", mnt);
	if (chdir(mnt) < 0)
		die("chdir %s: %m", mnt);
	hb_end();
	if (idx < nw) {
		mutator(idx);
		snprintf(nm, sizeof(nm), "w%d.expect", idx);
		FILE *f = xfopen(state, nm, "w");
		write_expect(f);
		xfclose(f, nm);
		snprintf(nm, sizeof(nm), "w%d.hot", idx);
		f = xfopen(state, nm, "w");
		for (int d = 0; d < NDIR; d++)
			for (int k = 0; k < NH; k++)
				fprintf(f, "%d %d %d\n", d, k, hotcnt[d][k]);
		xfclose(f, nm);
		model_free();
	} else {
		reader();
	}
	if (close(errfd) < 0)
		die("close: %m");
	exit(0);
}

static int run(const char *mnt, const char *state)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %m");
	int nproc = nw + nr;
	pid_t pids[MAXW];
	int done[MAXW] = { 0 }, status[MAXW] = { 0 };
	FILE *pf = xfopen(state, "pids", "w");
	if (fflush(stdout) != 0)
		die("stdout: %m");
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %m");
		if (pids[i] == 0) {
			fclose(pf);
			child(i, mnt, state);
		}
		sh->hb[i].pid = pids[i];
		fprintf(pf, "%d %s %d\n", pids[i], i < nw ? "mutator" : "reader", i < nw ? i : i - nw);
	}
	xfclose(pf, "pids");
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)run_s * 1000000000;
	int left = nproc;
	while (left > 0) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		int64_t t = now_ns();
		if (t >= deadline && !stopping())
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < nproc; i++) {
			if (done[i])
				continue;
			pid_t r = waitpid(pids[i], &status[i], WNOHANG);
			if (r < 0)
				die("waitpid: %m");
			if (r > 0) {
				done[i] = 1;
				left--;
			}
		}
		int stuck = 0;
		for (int i = 0; i < nproc; i++) {
			struct hb *h = &sh->hb[i];
			if (done[i] || !__atomic_load_n(&h->active, __ATOMIC_ACQUIRE))
				continue;
			double s = (t - __atomic_load_n(&h->start, __ATOMIC_ACQUIRE)) / 1e9;
			if (s > stuck_s)
				stuck++;
		}
		/* A process that never comes back from its loop without being in
		 * an operation is a bug of this program: treated the same. */
		if (stuck || t > deadline + (int64_t)(stuck_s + 30) * 1000000000) {
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
			printf("STUCK: %d process(es) in one operation for more than %d s, %.0f s into the run\n",
			       stuck, stuck_s, (t - t0) / 1e9);
			for (int i = 0; i < nproc; i++) {
				struct hb *h = &sh->hb[i];
				if (done[i])
					continue;
				int a = __atomic_load_n(&h->active, __ATOMIC_ACQUIRE);
				printf("  pid %d %s %d: %s%s (%.1f s)\n", pids[i],
				       i < nw ? "mutator" : "reader", i < nw ? i : i - nw,
				       a ? "in " : "between operations, last ", h->op,
				       a ? (t - h->start) / 1e9 : 0.0);
			}
			fflush(stdout);
			return 3;
		}
	}
	int nbad = 0;
	for (int i = 0; i < nproc; i++) {
		if (WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0)
			continue;
		printf("process %d (%s %d) ended with status 0x%x\n", pids[i],
		       i < nw ? "mutator" : "reader", i < nw ? i : i - nw, status[i]);
		nbad++;
	}
	if (nbad)
		return 99;
	long total = 0;
	printf("operations:");
	for (int k = 0; k < NOPK; k++) {
		printf(" %s %ld%s", op_names[k], sh->nops[k], k + 1 < NOPK ? "," : "\n");
		if (k != N_WALK)
			total += sh->nops[k];
	}
	printf("total %ld operations by %d mutators in %.1f s\n", total, nw, (now_ns() - t0) / 1e9);

	FILE *ex = xfopen(state, "expected", "w");
	print_static_expect(ex, 0);
	int hot[NDIR][NH][MAXW] = { { { 0 } } };
	for (int i = 0; i < nw; i++) {
		char nm[32], line[8192];
		snprintf(nm, sizeof(nm), "w%d.expect", i);
		FILE *f = xfopen(state, nm, "r");
		while (fgets(line, sizeof(line), f))
			fputs(line, ex);
		fclose(f);
		snprintf(nm, sizeof(nm), "w%d.hot", i);
		f = xfopen(state, nm, "r");
		int d, k, c;
		while (fscanf(f, "%d %d %d", &d, &k, &c) == 3)
			if (d >= 0 && d < NDIR && k >= 0 && k < NH)
				hot[d][k][i] = c;
		fclose(f);
	}
	xfclose(ex, "expected");
	for (int d = 0; d < NDIR; d++)
		for (int k = 0; k < NH; k++) {
			char nm[32];
			snprintf(nm, sizeof(nm), "hot.d%d.hot%d", d, k);
			FILE *f = xfopen(state, nm, "w");
			fprintf(f, "hot d%d/hot%d\n", d, k);
			for (int i = 0; i < nw; i++)
				for (int c = 1; c <= hot[d][k][i]; c++)
					fprintf(f, "w%d h%d\n", i, c);
			xfclose(f, nm);
		}

	long errors = sh->errors + check_races();
	for (int i = 0; i < nproc; i++) {
		char nm[32], line[1200];
		snprintf(nm, sizeof(nm), "w%d.err", i);
		FILE *f = xfopen(state, nm, "r");
		int shown = 0;
		while (fgets(line, sizeof(line), f) && shown++ < 15)
			printf("%s", line);
		fclose(f);
	}
	if (sh->fuse_nlink_race)
		printf("link ENOENT on a live source, retried with success (the kernel FUSE "
		       "nlink race, see link_checked): %ld\n", sh->fuse_nlink_race);
	printf("unexpected results: %ld\n", errors);
	return errors ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: stress build ROOT | initial | run MNT STATE  "
			"[-w MUTATORS] [-r READERS] [-s SEED] [-t SECONDS] [-k STUCK]\n");
	return 99;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	int npos = !strcmp(cmd, "build") ? 1 : !strcmp(cmd, "run") ? 2 : !strcmp(cmd, "initial") ? 0 : -1;
	if (npos < 0 || argc < 2 + npos)
		return usage();
	char **pos = argv + 2;
	optind = 2 + npos;
	int c;
	while ((c = getopt(argc, argv, "w:r:s:t:k:")) != -1) {
		switch (c) {
		case 'w': nw = atoi(optarg); break;
		case 'r': nr = atoi(optarg); break;
		case 's': seed = strtoul(optarg, NULL, 10); break;
		case 't': run_s = atoi(optarg); break;
		case 'k': stuck_s = atoi(optarg); break;
		default: return usage();
		}
	}
	if (optind != argc || nw < 1 || nr < 0 || nw + nr > MAXW || run_s < 1 || stuck_s < 1)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "build")) {
		snprintf(broot, sizeof(broot), "%s", pos[0]);
		build();
		return 0;
	}
	if (!strcmp(cmd, "initial")) {
		static struct shared zero;
		sh = &zero;
		print_static_expect(stdout, 1);
		for (int w = 0; w < nw; w++) {
			model_init(w);
			write_expect(stdout);
			model_free();
		}
		return fflush(stdout) ? 99 : 0;
	}
	return run(pos[0], pos[1]);
}
