/* FUSE passthrough: which open files the kernel reads and writes itself.
 *
 * With passthrough (Linux >= 6.9, offered at INIT by devio.c) an OPEN
 * reply may name a backing file; the kernel then serves read, write,
 * splice and mmap of that open file from the backing file, with no
 * request to us. The kernel allows one backing file per inode at a time,
 * and no mix: while an inode has passthrough opens every new open must
 * name the same backing file, and while it has page-cache opens none may
 * name one (the open fails with EIO). So each new handle is one of two
 * kinds, chosen together with the inode's other open handles:
 *
 *   backing: passthrough. A file that cannot be copied up while open
 *            (in upper, or any file of a read-only union) with
 *            -o passthrough=auto (the default); any file with =all. A new
 *            open joins the backing file the inode's open handles use.
 *   cached:  the FUSE page cache and READ/WRITE requests, as without
 *            passthrough: a lower file with =auto, and any open beside
 *            cached ones. Also an open that would start a backing file
 *            with O_APPEND (which fcntl could not clear on it). An
 *            O_DIRECT open where the file has no direct I/O (squashfs)
 *            fails with EINVAL, as on the branch itself.
 *
 * A handle on a lower file cannot follow a copy-up once the kernel reads
 * its backing file (DESIGN.md "Coherent"; op_file.h). With =all, the
 * data of a lower file open through passthrough therefore cannot change:
 * opening it for writing and truncating it fail with ETXTBSY until those
 * handles are closed, as for a running program. A change of its data
 * first takes a write reservation (um_pt_write_begin()), which keeps new
 * lower opens from passing through meanwhile. */
#ifndef UM_PASSTHROUGH_H
#define UM_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include "unionmount.h"

struct um_inode;

enum um_pt_kind {
	UM_PT_UNTRACKED, /* passthrough is off for this mount: a plain cached handle */
	UM_PT_CACHED,
	UM_PT_BACKING,
};

/* May this process register backing files (CAP_SYS_ADMIN)? If not, says
 * so: a warning where passthrough was asked for (given), else a debug
 * line, since it is the default. */
bool um_pt_permitted(bool given);
/* given: as above; also sets how loudly a refusal by the kernel is told. */
int um_pt_new(struct um_pt **ret, bool given);
void um_pt_free(struct um_pt *pt);

/* Before anything that changes ino's data (an open for writing or with
 * O_TRUNC, before its copy-up; a truncate): -ETXTBSY while a lower file
 * of ino is open through passthrough (after waiting a moment for a
 * release already on its way), else 0 with a reservation that
 * um_pt_write_end() gives back once the change is done or its handle
 * counted. -ENOMEM possible. Nothing to do but with =all. */
int um_pt_write_begin(struct um_fs *fs, struct um_inode *ino);
void um_pt_write_end(struct um_fs *fs, struct um_inode *ino);
/* Choose the kind of a new handle on ino, whose fd is open on layer
 * (UM_UPPER or a lower layer) for an open with flags, and count it. For UM_PT_BACKING, *id is
 * the backing id for the OPEN reply (um_pt_reply_begin()). A kind, or
 * -ENOMEM (the open must fail: an uncounted handle could make a later
 * one mix the two modes), or -EINVAL (O_DIRECT where fd's file has no
 * direct I/O). */
int um_pt_open(struct um_fs *fs, struct um_inode *ino, int fd, uint16_t layer, int flags, int32_t *id);
/* The handle of that kind on ino is gone (RELEASE, or an open the
 * kernel never saw). The last backing handle closes the backing id. */
void um_pt_release(struct um_fs *fs, struct um_inode *ino, enum um_pt_kind kind);

/* Around fuse_reply_open()/fuse_reply_create() in the replying thread:
 * the reply devio.c sees in between gets FOPEN_PASSTHROUGH and id. */
void um_pt_reply_begin(int32_t id);
void um_pt_reply_end(void);
/* For devio.c: the backing id the current thread's reply must carry, 0
 * for none. */
int32_t um_pt_reply_id(void);

#endif
