/* The FUSE side of directory listing: handles, cookies, and the
 * readdirplus lookup-count rule. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "inode.h"
#include "ops.h"
#include "readdir.h"

struct dirhandle {
	struct um_dirsnap snap;
};

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
	r = um_dir_merge(fs, dir, dotdot_ino(dir), &h->snap);
	if (r < 0) {
		free(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* The directory changes only through this mount, and the kernel drops
	 * its cached listing on every change it sees: let it cache. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener was interrupted: no releasedir will come. */
		um_dirsnap_release(&h->snap);
		free(h);
	}
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
	size_t pos = 0, ntaken = 0;

	if (!buf || (plus && !taken)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Cookie k means "continue at entry k": entry i is given cookie i+1. */
	for (size_t i = off < 0 ? 0 : (size_t)off; i < h->snap.n; i++) {
		const struct um_dirent *d = &h->snap.ents[i];
		const char *name = um_dirent_name(&h->snap, d);
		struct fuse_entry_param e = { 0 };
		struct um_inode *child = NULL;
		size_t len;

		e.attr.st_ino = d->ino;
		e.attr.st_mode = (mode_t)d->type << 12;
		if (plus && i >= 2) {
			struct stat st;

			/* A failed lookup (e.g. the name went away) still lists
			 * the name, without attributes: nodeid 0 tells the
			 * kernel to look it up itself later. */
			if (um_inode_lookup(fs, dir, name, &child, &st) == 0)
				um_fill_entry(fs, child, &st, &e);
		}
		if (plus)
			len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, (off_t)(i + 1));
		else
			len = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, (off_t)(i + 1));
		if (len > size - pos) {
			/* Not sent, so the kernel will not count this lookup. */
			if (child)
				um_inode_unref(fs, child, 1);
			break;
		}
		pos += len;
		if (child)
			taken[ntaken++] = child;
	}
	if (fuse_reply_buf(req, buf, pos) < 0) {
		/* Not delivered (interrupted): the kernel counts none of them. */
		for (size_t i = 0; i < ntaken; i++)
			um_inode_unref(fs, taken[i], 1);
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
	um_dirsnap_release(&h->snap);
	free(h);
	fuse_reply_err(req, 0);
}
