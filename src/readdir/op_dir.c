/* The FUSE side of directory listing: handles, cookies, and the
 * readdirplus lookup-count rule. A handle either reads the upper part in
 * one pass (stream.c: cookies are upper's own) or holds a merged snapshot
 * taken when a listing starts (merge.c), listed in the order of its
 * names' hashes, which are its cookies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cleanup.h"
#include "dirfds.h"
#include "inode.h"
#include "log.h"
#include "ops.h"
#include "readdir.h"
#include "sys.h"

/* A snapshot entry's cookie: a function of its name alone, so that it
 * means the same in every snapshot of the directory, whoever took it and
 * whatever changed since. The kernel keeps one cached listing per
 * directory, filled by whichever handle listed it first, and a handle
 * continues from it by cookie: "after the name hashed c" is still right
 * in a listing taken after a create or an unlink, where a position would
 * skip or repeat names. "." and ".." come first; all of them lie in
 * [2^62, 2^63), away from the small offsets a linear ext4 or tmpfs upper
 * directory gives a stream (and hash collisions between the two kinds of
 * cookie are as unlikely as between two names). */
#define COOKIE_BASE (UINT64_C(1) << 62)
#define COOKIE_SPAN ((UINT64_C(1) << 62) - (UINT64_C(1) << 32))

struct snapkey {
	uint64_t key;
	uint32_t idx; /* into snap.ents */
};

struct dirhandle {
	/* The kernel may send readdirs of one handle concurrently (two
	 * threads sharing the open directory): the stream has one offset. */
	pthread_mutex_t lock;
	struct um_dirstream *stream; /* NULL: the snapshot */
	/* The directory's names_version (inode.h) when the snapshot was
	 * taken or the stream last read afresh. */
	uint32_t version;
	struct um_dirsnap snap;
	struct snapkey *order; /* the snapshot by cookie; NULL: none taken yet */
};

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct snapkey *)a)->key, y = ((const struct snapkey *)b)->key;

	return x < y ? -1 : x > y;
}

/* Replace h's snapshot by snap (taken over), ordered by cookie. */
static int snap_set(struct dirhandle *h, struct um_dirsnap *snap)
{
	struct snapkey *o = malloc((snap->n ? snap->n : 1) * sizeof(*o));

	if (!o) {
		um_dirsnap_release(snap);
		return -ENOMEM;
	}
	for (size_t i = 0; i < snap->n; i++) {
		const char *name = um_dirent_name(snap, &snap->ents[i]);

		o[i].idx = (uint32_t)i;
		/* ents[0] and [1] are "." and ".." (merge.c) */
		o[i].key = i < 2 ? COOKIE_BASE + i : COOKIE_BASE + 2 + XXH3_64bits(name, strlen(name)) % COOKIE_SPAN;
	}
	if (snap->n > 2)
		qsort(o + 2, snap->n - 2, sizeof(*o), key_cmp);
	/* Two names with one hash: the second takes the next free value (only
	 * those two lose the guarantee above). */
	for (size_t i = 1; i < snap->n; i++)
		if (o[i].key <= o[i - 1].key)
			o[i].key = o[i - 1].key + 1;
	um_dirsnap_release(&h->snap);
	free(h->order);
	h->snap = *snap;
	h->order = o;
	return 0;
}

/* The position in h's snapshot of the first entry after cookie off. */
static size_t snap_seek(const struct dirhandle *h, off_t off)
{
	size_t lo = 0, hi = h->snap.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->order[mid].key <= (uint64_t)off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void handle_free(struct dirhandle *h)
{
	um_dirstream_close(h->stream);
	um_dirsnap_release(&h->snap);
	free(h->order);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Has dir's upper part been removed (by an rmdir running meanwhile)? */
static bool upper_removed(struct um_fs *fs, struct um_inode *dir)
{
	struct stat st;
	int r = um_inode_rdlock(fs, dir);

	if (r < 0)
		return false;
	r = um_sys_fstat(dir->parts[0].fd, &st);
	pthread_rwlock_unlock(&dir->lock);
	return r == 0 && st.st_nlink == 0;
}

/* Can dir be read from its upper part alone, after filling it if that is
 * what this mount does? */
static bool use_stream(struct um_fs *fs, struct um_inode *dir)
{
	bool upper, complete;
	uint16_t nparts;
	int r;

	pthread_rwlock_rdlock(&dir->lock);
	upper = dir->nparts && dir->parts[0].layer == UM_UPPER;
	nparts = dir->nparts;
	complete = dir->flags & UM_INO_COMPLETE;
	pthread_rwlock_unlock(&dir->lock);
	if (!upper)
		return false;
	if (nparts == 1 || complete)
		return true;
	if (!fs->fallthru)
		return false;
	r = um_dir_fill(fs, dir);
	if (r == -ENOENT && upper_removed(fs, dir))
		return false; /* an rmdir won the race: nothing to warn about */
	if (r < 0) {
		/* Out of space, say: the directory must stay readable. */
		um_log(UM_LOG_WARN, "cannot write the fallthrus of '%s', listing it from memory: %s",
		       dir->name ? dir->name : "/", strerror(-r));
		return false;
	}
	return true;
}

static uint64_t dotdot_ino(struct um_inode *dir)
{
	uint64_t ino;

	pthread_rwlock_rdlock(&dir->lock);
	ino = dir->parent ? dir->parent->st_ino : dir->st_ino;
	pthread_rwlock_unlock(&dir->lock);
	return ino;
}

void um_op_opendir(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *dir = um_req_inode(req, nodeid);
	struct dirhandle *h;
	int r;

	if (!S_ISDIR(dir->type)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->version = atomic_load(&dir->names_version);
	/* A snapshot is taken when a listing starts (do_readdir()). */
	r = use_stream(fs, dir) ? um_dirstream_open(fs, dir, dotdot_ino(dir), &h->stream) : 0;
	if (r < 0) {
		handle_free(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* The directory changes only through this mount, and the kernel drops
	 * its cached listing on every change it sees: let it cache the
	 * listing and keep it across opens. Every handle's cookies mean the
	 * same in every listing of the directory: upper's own for a stream,
	 * name hashes for a snapshot (snap_set()). A handle meeting a cookie
	 * of the other kind (the directory became complete meanwhile) finds
	 * it nowhere in the kernel's cache and asks us, and we answer from
	 * the handle's own kind. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0)
		handle_free(h); /* not delivered: no releasedir will come */
}

/* The handle's entry at position *i (snapshots) or at the stream's. */
static int peek(struct um_fs *fs, struct um_inode *dir, struct dirhandle *h, size_t i, struct um_listent *e)
{
	const struct um_dirent *d;

	if (h->stream)
		return um_dirstream_peek(fs, dir, h->stream, e);
	if (i >= h->snap.n)
		return 0;
	/* An entry's cookie is its own key: "continue after this name". */
	d = &h->snap.ents[h->order[i].idx];
	*e = (struct um_listent){ .name = um_dirent_name(&h->snap, d), .ino = d->ino, .next = (off_t)h->order[i].key,
				  .type = d->type, .layer = d->layer };
	return 1;
}

static void do_readdir(fuse_req_t req, fuse_ino_t nodeid, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *dir = um_req_inode(req, nodeid);
	struct dirhandle *h = (struct dirhandle *)(uintptr_t)fi->fh;
	_cleanup_free_ char *buf = malloc(size);
	/* The lookups readdirplus passes on: given back if the reply fails.
	 * An entry with attributes takes over 128 bytes of the buffer. */
	_cleanup_free_ struct um_inode **taken = plus ? calloc(size / 128 + 1, sizeof(*taken)) : NULL;
	size_t pos = 0, ntaken = 0, i = 0;
	uint32_t version;
	bool changed;
	int r = 0;

	if (!buf || (plus && !taken)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&h->lock);
	/* The kernel appends this reply to its cached listing of dir if it
	 * continues at the cookie where that listing stops, whichever handle
	 * began it: after a change of dir's names (which the kernel does not
	 * let run during a READDIR of dir), names read before the change,
	 * and gone since, would outlive it there. So each reply is read as
	 * dir is now, from after cookie off. */
	/* NEEDSWORK: a snapshot merges the whole directory again for each
	 * chunk read after a change, so listing a large merged directory
	 * (fallthru=off) while names in it keep changing costs O(n^2). */
	version = atomic_load(&dir->names_version);
	changed = version != h->version;
	if (h->stream) {
		r = changed ? um_dirstream_reread(h->stream, off) : um_dirstream_seek(h->stream, off);
		if (r == 0)
			h->version = version;
	} else {
		/* Each listing (the first after opendir, and one after
		 * rewinddir(3)) shows the directory as it is when it starts;
		 * so does one that the kernel began from its cache (the handle
		 * has none of its own yet). */
		if (off == 0 || !h->order || changed) {
			struct um_dirsnap snap;

			r = um_dir_merge(fs, dir, dotdot_ino(dir), &snap);
			if (r == 0)
				r = snap_set(h, &snap);
			if (r == 0)
				h->version = version;
		}
		if (r == 0 && off != 0)
			i = snap_seek(h, off);
	}
	while (r >= 0) {
		struct fuse_entry_param e = { 0 };
		struct um_inode *child = NULL;
		struct um_listent le = { 0 };
		size_t len;

		r = peek(fs, dir, h, i, &le);
		if (r <= 0)
			break;
		e.attr.st_ino = le.ino;
		e.attr.st_mode = (mode_t)le.type << 12;
		/* A failed lookup (e.g. the name went away) still lists the
		 * name, without attributes: nodeid 0 tells the kernel to look
		 * it up itself later. So does a directory met past the mark of
		 * open directory fds (dirfds.h): one listing would otherwise
		 * open a part per layer for every directory in it before the
		 * thread closing unused ones can run, and the kernel's lookups
		 * come one request at a time. */
		if (plus && strcmp(le.name, ".") && strcmp(le.name, "..") &&
		    !(le.type == DT_DIR && um_dirfds_over())) {
			struct stat st;

			if (um_inode_lookup_from(fs, dir, le.name, le.layer, &child, &st) == 0)
				um_fill_entry(fs, child, &st, &e);
		}
		if (plus)
			len = fuse_add_direntry_plus(req, buf + pos, size - pos, le.name, &e, le.next);
		else
			len = fuse_add_direntry(req, buf + pos, size - pos, le.name, &e.attr, le.next);
		if (len > size - pos) {
			/* Not sent, so the kernel will not count this lookup. */
			if (child)
				um_inode_unref(fs, child, 1);
			break;
		}
		pos += len;
		if (child)
			taken[ntaken++] = child;
		if (h->stream)
			um_dirstream_advance(h->stream);
		i++;
	}
	pthread_mutex_unlock(&h->lock);
	/* Before the reply: whatever the kernel caches from it must be
	 * dropped at the next change (um_notify_names_changed()). */
	atomic_store(&dir->listed, true);
	if (r < 0 && pos == 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fuse_reply_buf(req, buf, pos) < 0) {
		/* Not delivered (interrupted): the kernel counts none of them. */
		for (size_t k = 0; k < ntaken; k++)
			um_inode_unref(fs, taken[k], 1);
	}
}

void um_op_readdir(fuse_req_t req, fuse_ino_t nodeid, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, nodeid, size, off, fi, false);
}

void um_op_readdirplus(fuse_req_t req, fuse_ino_t nodeid, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, nodeid, size, off, fi, true);
}

void um_op_releasedir(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct dirhandle *h = (struct dirhandle *)(uintptr_t)fi->fh;

	(void)nodeid;
	handle_free(h);
	fuse_reply_err(req, 0);
}
