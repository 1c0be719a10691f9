/* The FUSE side of directory listing: listings, cookies, and the
 * readdirplus lookup-count rule. A listing either reads the upper part in
 * one pass (stream.c: cookies are upper's own) or holds a merged snapshot
 * taken when it starts (merge.c), listed in the order of its names'
 * hashes, which are its cookies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cleanup.h"
#include "dirfds.h"
#include "inode.h"
#include "log.h"
#include "ops.h"
#include "rdplus.h"
#include "readdir.h"
#include "sys.h"

/* A snapshot entry's cookie: a function of its name alone, so that it
 * means the same in every snapshot of the directory, whoever took it and
 * whatever changed since. The kernel keeps one cached listing per
 * directory, filled by whichever listing read it first, and another
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

/* What a listing of a directory keeps between two READDIRs. The kernel
 * sends no OPENDIR or RELEASEDIR when it can do without them (ops.c: it
 * then caches every listing, as we would have asked it to), so this
 * belongs to the directory, not to an open handle: the next READDIR of
 * the directory, whoever sends it, continues from it if it is still of
 * the same names (version) and otherwise reads again. One READDIR at a
 * time owns it (taken out of dir->listing); a concurrent one builds its
 * own, and the one put back last is dropped. */
struct um_dirlisting {
	uint64_t put_at; /* `puts` when last given back */
	struct um_dirstream *stream; /* NULL: the snapshot */
	/* The directory's names_version (inode.h) when the snapshot was
	 * taken or the stream last read afresh. */
	uint32_t version;
	struct um_dirsnap snap;
	struct snapkey *order; /* the snapshot by cookie; NULL: none taken yet */
};

/* A listing a program stops reading (it only checked whether a
 * directory is empty, say) would stay in its directory until the kernel
 * forgets the directory: past KEPT_MAX kept listings, the older half
 * goes. `kept` counts them and `puts` orders them; both change only
 * atomically, and guard nothing else. */
#define KEPT_MAX 64
static atomic_long kept;
static _Atomic uint64_t puts;

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct snapkey *)a)->key, y = ((const struct snapkey *)b)->key;

	return x < y ? -1 : x > y;
}

/* Replace h's snapshot by snap (taken over), ordered by cookie. */
static int snap_set(struct um_dirlisting *h, struct um_dirsnap *snap)
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
static size_t snap_seek(const struct um_dirlisting *h, off_t off)
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

static void listing_free(struct um_dirlisting *h)
{
	if (!h)
		return;
	um_dirstream_close(h->stream);
	um_dirsnap_release(&h->snap);
	free(h->order);
	free(h);
}

/* dir's kept listing, now the caller's, or NULL. */
static struct um_dirlisting *listing_take(struct um_inode *dir)
{
	struct um_dirlisting *h = atomic_exchange(&dir->listing, NULL);

	if (h)
		atomic_fetch_sub(&kept, 1);
	return h;
}

void um_dir_listing_drop(struct um_inode *dir)
{
	listing_free(listing_take(dir));
}

/* Give h back to dir for the next READDIR, unless another one did
 * first: false then, and h is gone. */
static bool listing_keep(struct um_inode *dir, struct um_dirlisting *h)
{
	struct um_dirlisting *none = NULL;

	/* Counted first: listing_take() may take it at once. */
	atomic_fetch_add(&kept, 1);
	if (!atomic_compare_exchange_strong(&dir->listing, &none, h)) {
		atomic_fetch_sub(&kept, 1);
		listing_free(h);
		return false;
	}
	return true;
}

static bool has_listing(struct um_inode *dir, void *arg)
{
	(void)arg;
	return atomic_load(&dir->listing) != NULL;
}

/* Free the listings given back before `before`. */
static void listings_trim(struct um_fs *fs, uint64_t before)
{
	struct um_inode **dirs = NULL;
	size_t n = 0;

	if (um_itable_dirs(fs, has_listing, NULL, &dirs, &n) < 0)
		return; /* out of memory: the next give-back tries again */
	for (size_t i = 0; i < n; i++) {
		struct um_dirlisting *h = listing_take(dirs[i]);

		if (h && h->put_at < before)
			listing_free(h);
		else if (h)
			(void)listing_keep(dirs[i], h);
		um_inode_unref(fs, dirs[i], 1);
	}
	free(dirs);
}

static void listing_put(struct um_fs *fs, struct um_inode *dir, struct um_dirlisting *h)
{
	uint64_t at = atomic_fetch_add(&puts, 1) + 1;

	h->put_at = at;
	if (listing_keep(dir, h) && atomic_load(&kept) > KEPT_MAX)
		listings_trim(fs, at - KEPT_MAX / 2);
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

/* Does dir's upper part hold every name it shows (upper alone, or
 * complete)? If not, *unfilled says whether it is a merged directory with
 * an upper part whose fallthrus are not written yet. */
static bool upper_has_all(struct um_inode *dir, bool *unfilled)
{
	bool upper, all;

	pthread_rwlock_rdlock(&dir->lock);
	upper = dir->nparts && dir->parts[0].layer == UM_UPPER;
	all = upper && (dir->nparts == 1 || (dir->flags & UM_INO_COMPLETE));
	pthread_rwlock_unlock(&dir->lock);
	*unfilled = upper && !all;
	return all;
}

/* Would dir's next listing write its fallthrus? */
static bool fill_pending(struct um_fs *fs, struct um_inode *dir)
{
	bool unfilled;

	return fs->fallthru && !upper_has_all(dir, &unfilled) && unfilled;
}

/* Can dir be read from its upper part alone? If it is a merged directory
 * not filled yet, fill it first when this mount does (and may_fill: a
 * listing starts). */
static bool can_stream(struct um_fs *fs, struct um_inode *dir, bool may_fill)
{
	bool unfilled;
	int r;

	if (upper_has_all(dir, &unfilled))
		return true;
	if (!unfilled || !fs->fallthru || !may_fill)
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

/* Does dir list as a stream (upper's cookies) or a snapshot (name
 * hashes)? Decided once in the life of the inode, at its first listing:
 * a cookie of one kind means nothing in the other, and with no handles
 * nothing tells a READDIR which kind the listing it continues began
 * with. A directory that lists as a snapshot first (it had no upper part
 * yet, or its fallthrus could not be written) stays one until the kernel
 * forgets it; its fallthrus are still written at a listing's start. */
static bool lists_as_stream(struct um_fs *fs, struct um_inode *dir, off_t off)
{
	uint8_t kind = atomic_load(&dir->listing_kind);
	bool stream = can_stream(fs, dir, off == 0);
	uint8_t want = stream ? UM_LIST_STREAM : UM_LIST_SNAPSHOT;

	if (kind == UM_LIST_UNDECIDED && atomic_compare_exchange_strong(&dir->listing_kind, &kind, want))
		kind = want;
	return kind == UM_LIST_STREAM;
}

static uint64_t dotdot_ino(struct um_inode *dir)
{
	uint64_t ino;

	pthread_rwlock_rdlock(&dir->lock);
	ino = dir->parent ? dir->parent->st_ino : dir->st_ino;
	pthread_rwlock_unlock(&dir->lock);
	return ino;
}

/* The listing to continue at cookie off: dir's own if it is there,
 * else a new one (a snapshot is taken when it is first read). A listing
 * that starts (off 0) starts afresh: a rename since may have given dir
 * another "..". An upper part an rmdir removed meanwhile lists nothing:
 * *ret NULL. */
static int listing_get(struct um_fs *fs, struct um_inode *dir, off_t off, struct um_dirlisting **ret)
{
	struct um_dirlisting *h = listing_take(dir);
	int r;

	*ret = NULL;
	if (h && off != 0) {
		*ret = h;
		return 0;
	}
	listing_free(h);
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->version = atomic_load(&dir->names_version);
	if (lists_as_stream(fs, dir, off)) {
		r = um_dirstream_open(fs, dir, dotdot_ino(dir), &h->stream);
		if (r < 0) {
			listing_free(h);
			return r == -ENOENT && upper_removed(fs, dir) ? 0 : r;
		}
	}
	*ret = h;
	return 0;
}

/* The kernel asks for this first, once (libfuse passes the kernel's
 * FUSE_NO_OPENDIR_SUPPORT on as a capability, ops.c): ENOSYS tells it to
 * send no OPENDIR or RELEASEDIR again, on any directory, and to cache
 * every listing and keep it across opens. A kernel without that gets an
 * open with no handle, and the same caching asked for: the directory
 * changes only through this mount, and the kernel drops its cached
 * listing on every change (um_notify_names_changed()). */
void um_op_opendir(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *dir = um_req_inode(req, nodeid);

	if (!S_ISDIR(dir->type)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* The listing's entry at position *i (snapshots) or at the stream's. */
static int peek(struct um_fs *fs, struct um_inode *dir, struct um_dirlisting *h, size_t i, struct um_listent *e)
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
	struct um_dirlisting *h = NULL;
	_cleanup_free_ char *buf = malloc(size);
	/* The lookups readdirplus passes on: given back if the reply fails.
	 * An entry with attributes takes over 128 bytes of the buffer. */
	_cleanup_free_ struct um_inode **taken = plus ? calloc(size / 128 + 1, sizeof(*taken)) : NULL;
	size_t pos = 0, ntaken = 0, i = 0;
	uint32_t version;
	bool changed, refill, files = !plus || um_rdplus_files(fs, fuse_req_ctx(req)->pid, dir), lean = false;
	int r = 0;

	(void)fi; /* no handle (um_op_opendir()) */
	if (!buf || (plus && !taken)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = listing_get(fs, dir, off, &h);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!h) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* The kernel appends this reply to its cached listing of dir if it
	 * continues at the cookie where that listing stops, whichever
	 * listing began it: after a change of dir's names (which the kernel
	 * does not let run during a READDIR of dir), names read before the
	 * change, and gone since, would outlive it there. So each reply is
	 * read as dir is now, from after cookie off. */
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
		/* Each listing (the first after open, and one after
		 * rewinddir(3)) shows the directory as it is when it starts;
		 * so does one that the kernel began from its cache (with no
		 * snapshot here yet). */
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

			/* DT_UNKNOWN too: it may be a directory. */
			if (!files && le.type != DT_DIR && le.type != DT_UNKNOWN)
				lean = true;
			else if (um_inode_lookup_from(fs, dir, le.name, le.layer, &child, &st) == 0)
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
	/* The last READDIR of a listing is the one past its end, which finds
	 * nothing: until then the next one will want this. */
	if (r < 0 || (r == 0 && pos == 0))
		listing_free(h);
	else
		listing_put(fs, dir, h);
	/* Before the reply: whatever the kernel caches from it must be
	 * dropped at the next change (um_notify_names_changed()), and a
	 * lean listing when a caller wants attributes (rdplus.h). */
	if (lean)
		atomic_store(&dir->lean_listed, true);
	atomic_store(&dir->listed, true);
	if (r < 0 && pos == 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* The kernel keeps every listing (um_op_opendir()): one of a
	 * directory whose fallthrus could not be written (its upper file
	 * system full, say) must be asked for again, to try again; after
	 * the reply, which completes the kernel's listing. Once answered,
	 * the kernel may forget dir (closed, and removed): hold it. */
	refill = r == 0 && pos == 0 && fill_pending(fs, dir);
	if (refill)
		um_inode_ref(dir);
	if (fuse_reply_buf(req, buf, pos) < 0) {
		/* Not delivered (interrupted): the kernel counts none of them. */
		for (size_t k = 0; k < ntaken; k++)
			um_inode_unref(fs, taken[k], 1);
	}
	if (refill) {
		um_notify_listing_dropped(fs, dir);
		um_inode_unref(fs, dir, 1);
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
	(void)nodeid;
	(void)fi;
	fuse_reply_err(req, 0);
}
