/* open, read, flush, release, fsync, lseek on regular files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "inode.h"
#include "log.h"
#include "ops.h"
#include "sys.h"

/* An open file. NEEDSWORK (copy-up): keep the inode here too so that
 * reads follow the object when it is copied up under an open handle. */
struct um_file {
	int fd;
};

static struct um_file *file_of(struct fuse_file_info *fi)
{
	return (struct um_file *)(uintptr_t)fi->fh;
}

void um_op_open(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_fs *fs = um_req_fs(req);
	struct um_inode *ino = um_req_inode(req, nodeid);
	struct um_file *f;
	struct um_loc loc;
	int fd, r;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* Writing needs copy-up, which this version does not do yet. */
		if (!fs->readonly)
			um_log(UM_LOG_WARN, "open for writing: not supported yet, returning EROFS");
		fuse_reply_err(req, EROFS);
		return;
	}
	r = um_inode_locate(fs, ino, &loc);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* O_CREAT/O_EXCL mean nothing for an existing object, and the daemon
	 * must never take a controlling terminal. */
	fd = um_sys_openat(loc.dirfd, loc.name, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
	um_loc_release(fs, &loc);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	f = malloc(sizeof(*f));
	if (!f) {
		(void)close(fd);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	f->fd = fd;
	fi->fh = (uintptr_t)f;
	/* File data changes only through this mount: page cache stays valid
	 * across opens. */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		(void)close(f->fd); /* interrupted: no release will come */
		free(f);
	}
}

void um_op_read(fuse_req_t req, fuse_ino_t nodeid, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)nodeid;
	/* Hand libfuse the fd: it splices when the kernel allows, else reads. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = file_of(fi)->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void um_op_flush(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	(void)nodeid;
	(void)fi;
	/* Read-only handles have nothing to flush. */
	fuse_reply_err(req, 0);
}

void um_op_release(fuse_req_t req, fuse_ino_t nodeid, struct fuse_file_info *fi)
{
	struct um_file *f = file_of(fi);

	(void)nodeid;
	(void)close(f->fd); /* read-only fd: close cannot lose data */
	free(f);
	fuse_reply_err(req, 0);
}

void um_op_fsync(fuse_req_t req, fuse_ino_t nodeid, int datasync, struct fuse_file_info *fi)
{
	(void)nodeid;
	fuse_reply_err(req, -um_sys_fsync(file_of(fi)->fd, datasync));
}

void um_op_fsyncdir(fuse_req_t req, fuse_ino_t nodeid, int datasync, struct fuse_file_info *fi)
{
	(void)nodeid;
	(void)datasync;
	(void)fi;
	/* Nothing is written to directories yet. */
	fuse_reply_err(req, 0);
}

void um_op_lseek(fuse_req_t req, fuse_ino_t nodeid, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t pos;
	int r = um_sys_lseek(file_of(fi)->fd, off, whence, &pos);

	(void)nodeid;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_lseek(req, pos);
}
