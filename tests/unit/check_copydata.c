#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copyup/data.h"
#include "fixture.h"

#define KiB ((off_t)1 << 10)
#define MiB ((off_t)1 << 20)

/* Where source and copy live. "disk" is the fixture's root, under $TMPDIR
 * or /tmp; "tmpfs" a tmpfs mounted below it. The same filesystem twice
 * takes FICLONE or copy_file_range, two of them pread/pwrite. */
static const struct place {
	const char *name, *src, *dst;
} places[] = {
	{ "disk", "a", "b" },
	{ "tmpfs", "t/a", "t/b" },
	{ "disk to tmpfs", "a", "t/b" },
	{ "tmpfs to disk", "t/a", "b" },
};
#define N_PLACES ((int)(sizeof(places) / sizeof(places[0])))

static struct um_fx fx;
static int src = -1, dst = -1;

static void setup(void)
{
	int r = um_fx_init(&fx);

	ck_assert_msg(r == 0, "fixture: %s", strerror(-r));
}

static void teardown(void)
{
	if (src >= 0)
		(void)close(src); /* test file, checked through its content */
	if (dst >= 0)
		(void)close(dst);
	src = dst = -1;
	ck_assert_int_eq(um_fx_leaked_fds(&fx), 0);
	um_fx_release(&fx);
}

/* Check's fork mode skips the teardown above when a test fails; the base
 * fixture runs in the parent and removes (and unmounts) what was left. */
static TCase *tcase_new(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, um_fx_base_setup, um_fx_base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	return tc;
}

/* Check has no skip result: the case passes, and says so on stderr (stdout
 * may be carrying TAP). */
#define SKIP_CASE(...)                                         \
	do {                                                   \
		fprintf(stderr, "SKIP %s: ", __func__);        \
		fprintf(stderr, __VA_ARGS__);                  \
		fputc('\n', stderr);                           \
		return;                                        \
	} while (0)

/* A tmpfs of the given size (e.g. "64m") on rel. */
static int mount_tmpfs(const char *rel, const char *size)
{
	const char *path = um_fx_path(&fx, rel);
	char opts[64];
	int r = um_fx_mkdir(&fx, rel);

	if (r < 0)
		return r;
	snprintf(opts, sizeof(opts), "size=%s,mode=0755", size);
	return mount("unionmount-test", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0 ? -errno : 0;
}

/* Make p's directories (a tmpfs on "t" when it needs one) and open
 * src (read-write, to fill it) and dst (write-only, as copy-up opens it).
 * Returns -EPERM when a tmpfs cannot be mounted. */
static int open_pair(const struct place *p)
{
	int r;

	if (!strncmp(p->src, "t/", 2) || !strncmp(p->dst, "t/", 2)) {
		r = mount_tmpfs("t", "64m");
		if (r < 0)
			return r;
	}
	ck_assert_int_eq(um_fx_file(&fx, p->src, NULL), 0);
	src = openat(fx.root_fd, p->src, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(src, 0);
	dst = openat(fx.root_fd, p->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ge(dst, 0);
	return 0;
}

#define OPEN_PAIR(p)                                                               \
	do {                                                                       \
		int r_ = open_pair(p);                                             \
		if (r_ == -EPERM)                                                  \
			SKIP_CASE("%s: mounting a tmpfs needs root", (p)->name); \
		ck_assert_int_eq(r_, 0);                                           \
	} while (0)

/* Deterministic bytes (xorshift), so a failure can be reproduced. */
static void fill(char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (char)(x >> 32);
	}
}

static void put(int fd, off_t off, size_t len, uint64_t seed)
{
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	fill(buf, len, seed);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	free(buf);
}

/* fd's data extents: SEEK_DATA/SEEK_HOLE pairs up to size, at most max. */
static int extents(int fd, off_t size, off_t (*ret)[2], int max)
{
	off_t off = 0, data, hole;
	int n = 0;

	while (off < size && (data = lseek(fd, off, SEEK_DATA)) >= 0 && data < size) {
		hole = lseek(fd, data, SEEK_HOLE);
		ck_assert_int_gt(hole, data);
		ck_assert_int_lt(n, max);
		ret[n][0] = data;
		ret[n][1] = hole < size ? hole : size;
		off = ret[n++][1];
	}
	return n;
}

static void same_range(int a, int b, off_t off, off_t end)
{
	char *x = malloc(MiB), *y = malloc(MiB);

	ck_assert(x && y);
	for (; off < end; off += MiB) {
		size_t len = end - off < MiB ? (size_t)(end - off) : (size_t)MiB;

		ck_assert_int_eq(pread(a, x, len, off), (ssize_t)len);
		ck_assert_int_eq(pread(b, y, len, off), (ssize_t)len);
		ck_assert_msg(!memcmp(x, y, len), "bytes differ in [%lld, %lld)", (long long)off,
			      (long long)(off + (off_t)len));
	}
	free(x);
	free(y);
}

/* src's first size bytes equal the copy's, which is size bytes long.
 * Outside both files' data extents both read as zeros, so comparing those
 * extents compares everything, without reading gigabytes of holes. */
static void check_copy(const struct place *p, off_t size)
{
	off_t ext[2][64][2];
	struct stat st;
	int fd = openat(fx.root_fd, p->dst, O_RDONLY | O_CLOEXEC);
	int n[2] = { extents(src, size, ext[0], 64), extents(fd, size, ext[1], 64) };

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, size);
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < n[f]; i++)
			same_range(src, fd, ext[f][i][0], ext[f][i][1]);
	(void)close(fd); /* read-only */
}

/* Nothing of the copy is allocated in [off, end). */
static void check_hole(const struct place *p, off_t off, off_t end)
{
	int fd = openat(fx.root_fd, p->dst, O_RDONLY | O_CLOEXEC);
	off_t data;

	ck_assert_int_ge(fd, 0);
	data = lseek(fd, off, SEEK_DATA);
	ck_assert_msg(data < 0 ? errno == ENXIO : data >= end, "%s: data at %lld, in the hole [%lld, %lld)", p->name,
		      (long long)data, (long long)off, (long long)end);
	(void)close(fd); /* read-only */
}

START_TEST(copy_empty)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	ck_assert_int_eq(um_copy_data(src, dst, 0), 0);
	check_copy(p, 0);
}
END_TEST

START_TEST(copy_small)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	ck_assert_int_eq(pwrite(src, "hello, world\n", 13, 0), 13);
	ck_assert_int_eq(um_copy_data(src, dst, 13), 0);
	check_copy(p, 13);
}
END_TEST

/* A source longer than size (it is not supposed to happen): only size
 * bytes are copied, even by a whole-file reflink. */
START_TEST(copy_prefix)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	put(src, 0, (size_t)MiB, 1);
	ck_assert_int_eq(um_copy_data(src, dst, 5000), 0);
	check_copy(p, 5000);
}
END_TEST

/* A source shorter than size (it shrank under us): the copy ends at its
 * end, without looping, and the rest reads as zeros. */
START_TEST(copy_short_source)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	put(src, 0, 100, 2);
	ck_assert_int_eq(um_copy_data(src, dst, 3 * MiB + 1), 0);
	/* zeros past the source's end, to compare with */
	ck_assert_int_eq(ftruncate(src, 3 * MiB + 1), 0);
	check_copy(p, 3 * MiB + 1);
	check_hole(p, 1 * MiB, 3 * MiB + 1);
}
END_TEST

START_TEST(copy_sparse_512m)
{
	const struct place *p = &places[_i];
	struct stat st;

	OPEN_PAIR(p);
	ck_assert_int_eq(ftruncate(src, 512 * MiB), 0);
	put(src, 256 * MiB, (size_t)(4 * KiB), 3);
	ck_assert_int_eq(um_copy_data(src, dst, 512 * MiB), 0);
	check_copy(p, 512 * MiB);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_msg(st.st_blocks * 512 < MiB, "%s: %lld bytes allocated", p->name, (long long)st.st_blocks * 512);
	check_hole(p, 0, 255 * MiB);
	check_hole(p, 257 * MiB, 512 * MiB);
}
END_TEST

/* A leading hole, data of odd lengths, a hole between, a trailing hole. */
START_TEST(copy_holes)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	put(src, 1 * MiB, 5000, 4);
	put(src, 3 * MiB, (size_t)(MiB + 123), 5);
	ck_assert_int_eq(ftruncate(src, 8 * MiB), 0);
	ck_assert_int_eq(um_copy_data(src, dst, 8 * MiB), 0);
	check_copy(p, 8 * MiB);
	check_hole(p, 0, 1 * MiB);
	check_hole(p, 2 * MiB, 3 * MiB);
	check_hole(p, 5 * MiB, 8 * MiB);
}
END_TEST

START_TEST(copy_random_10m)
{
	const struct place *p = &places[_i];

	OPEN_PAIR(p);
	put(src, 0, (size_t)(10 * MiB), 6);
	ck_assert_int_eq(um_copy_data(src, dst, 10 * MiB), 0);
	check_copy(p, 10 * MiB);
	ck_assert_int_eq(um_fx_leaked_fds(&fx), 2);
}
END_TEST

/* A 1 MiB file into a 256 KiB tmpfs: by pread/pwrite from another
 * filesystem, and by copy_file_range inside that tmpfs when it also holds
 * the source. ENOSPC comes back as such, not as a fallback. */
START_TEST(copy_enospc)
{
	static const struct {
		const char *src, *dst, *size;
	} cases[] = {
		{ "a", "full/b", "256k" },
		{ "full/a", "full/b", "1280k" },
	};
	int r = mount_tmpfs("full", cases[_i].size);

	if (r == -EPERM)
		SKIP_CASE("mounting a tmpfs needs root");
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(um_fx_file(&fx, cases[_i].src, NULL), 0);
	src = openat(fx.root_fd, cases[_i].src, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(src, 0);
	put(src, 0, (size_t)MiB, 7);
	dst = openat(fx.root_fd, cases[_i].dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ge(dst, 0);
	ck_assert_int_eq(um_copy_data(src, dst, MiB), -ENOSPC);
}
END_TEST

/* A dst not open for writing is the caller's bug, not "unsupported":
 * -EBADF, not a fallback that could write somewhere else. */
START_TEST(copy_bad_fd)
{
	ck_assert_int_eq(um_fx_file(&fx, "a", "data"), 0);
	ck_assert_int_eq(um_fx_file(&fx, "b", NULL), 0);
	src = openat(fx.root_fd, "a", O_RDONLY | O_CLOEXEC);
	dst = openat(fx.root_fd, "b", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(src, 0);
	ck_assert_int_ge(dst, 0);
	ck_assert_int_eq(um_copy_data(src, dst, 4), -EBADF);
	ck_assert_int_eq(um_copy_data(src, dst, -1), -EINVAL);
}
END_TEST

static Suite *copydata_suite(void)
{
	Suite *s = suite_create("copydata");
	TCase *tc = tcase_new("um_copy_data()");

	tcase_add_loop_test(tc, copy_empty, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_small, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_prefix, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_short_source, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_sparse_512m, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_holes, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_random_10m, 0, N_PLACES);
	tcase_add_loop_test(tc, copy_enospc, 0, 2);
	tcase_add_test(tc, copy_bad_fd);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	um_fx_private_mounts();
	return um_fx_run(copydata_suite());
}
