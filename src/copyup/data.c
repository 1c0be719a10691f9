#include "copyup/data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sys.h"

/* At most this much per copy_file_range call: the kernel does not check
 * for fatal signals inside one call, so a kill or an unmount waits for at
 * most one chunk. */
#define CFR_CHUNK ((size_t)64 << 20)
/* The pread/pwrite buffer. */
#define RW_CHUNK ((size_t)1 << 20)

/* Errnos meaning "this method does not work between these two files", after
 * which the next method may: not a filesystem with reflinks or SEEK_DATA,
 * two filesystems, an old kernel. Everything else (ENOSPC, EDQUOT, EIO,
 * EFBIG, EPERM) is the copy failing. EBADF is not here either: it means an
 * fd opened without read/write or with O_APPEND, where every method fails
 * or, for pwrite with O_APPEND, puts the data at the wrong offset. */
static bool unsupported(int r)
{
	return r == -EXDEV || r == -EINVAL || r == -EOPNOTSUPP || r == -ENOTTY || r == -ENOSYS;
}

struct copy {
	int src, dst;
	bool rw;   /* copy_file_range is not supported here: pread/pwrite from now on */
	char *buf; /* RW_CHUNK bytes for pread/pwrite, allocated on first use */
};

static void copy_release(struct copy *c)
{
	free(c->buf);
}

/* One chunk at off by pread/pwrite; returns the bytes copied, 0 at the
 * source's end. */
static int copy_chunk_rw(struct copy *c, off_t off, size_t len)
{
	int n, w;

	if (!c->buf && !(c->buf = malloc(RW_CHUNK)))
		return -ENOMEM;
	do
		n = um_sys_pread(c->src, c->buf, len < RW_CHUNK ? len : RW_CHUNK, off);
	while (n == -EINTR);
	/* A short write is retried for the rest; it makes progress or fails. */
	for (int done = 0; n > 0 && done < n; done += w) {
		w = um_sys_pwrite(c->dst, c->buf + done, (size_t)(n - done), off + done);
		if (w == -EINTR)
			w = 0;
		else if (w < 0)
			return w;
	}
	return n;
}

/* Copy [off, end), which the source reports as data. Returns 0, or 1 when
 * the source ended before end. */
static int copy_extent(struct copy *c, off_t off, off_t end)
{
	while (off < end) {
		size_t len = (size_t)(end - off) < CFR_CHUNK ? (size_t)(end - off) : CFR_CHUNK;
		int n;

		if (c->rw) {
			n = copy_chunk_rw(c, off, len);
			if (n == 0)
				return 1;
		} else {
			n = um_sys_copy_range(c->src, c->dst, off, len);
			/* 0 is the source's end, or a file that copy_file_range
			 * cannot read (some pseudo-filesystems): pread tells. */
			if (unsupported(n) || n == 0) {
				um_debug("copy_data: copy_file_range at %lld: %s, using pread/pwrite", (long long)off,
					 n ? strerrorname_np(-n) : "0 bytes");
				c->rw = true;
				continue;
			}
		}
		if (n == -EINTR) /* nothing copied; the offsets are explicit */
			continue;
		if (n < 0)
			return n;
		off += n;
	}
	return 0;
}

/* Copy the data extents of the source's first size bytes; what lies
 * between them is left unwritten, so it stays a hole in dst. */
static int copy_extents(struct copy *c, off_t size)
{
	off_t off = 0, data, hole;
	int r;

	while (off < size) {
		r = um_sys_lseek(c->src, off, SEEK_DATA, &data);
		if (r == -ENXIO) /* only a hole up to the end */
			return 0;
		if (unsupported(r)) {
			/* No SEEK_DATA here: all of it is data. */
			data = off;
			hole = size;
		} else if (r < 0) {
			return r;
		} else {
			r = um_sys_lseek(c->src, data, SEEK_HOLE, &hole);
			if (r == -ENXIO) /* the source shrank under us */
				return 0;
			if (r < 0)
				return r;
		}
		if (data >= size)
			return 0;
		if (hole > size)
			hole = size;
		r = copy_extent(c, data, hole);
		if (r != 0)
			return r < 0 ? r : 0;
		off = hole;
	}
	return 0;
}

int um_copy_data(int src_fd, int dst_fd, off_t size)
{
	__attribute__((cleanup(copy_release))) struct copy c = { .src = src_fd, .dst = dst_fd };
	int r;

	if (size < 0)
		return -EINVAL;
	if (size == 0) /* dst is empty already */
		return 0;

	r = um_sys_ficlone(dst_fd, src_fd);
	if (r == 0) {
		um_debug("copy_data: %lld bytes by FICLONE", (long long)size);
	} else if (unsupported(r)) {
		um_debug("copy_data: FICLONE: %s, copying extents", strerrorname_np(-r));
		r = copy_extents(&c, size);
		if (r < 0)
			return r;
		um_debug("copy_data: %lld bytes by %s", (long long)size, c.rw ? "pread/pwrite" : "copy_file_range");
	} else {
		return r;
	}
	/* The clone took the whole source, the extent copy stopped at the last
	 * data byte: either way size is set here, which also keeps a trailing
	 * hole. */
	return um_sys_ftruncate(dst_fd, size);
}
