/* Open files. A handle holds its inode and an fd on the object's current
 * backing file; a handle opened on a lower file before a copy-up moves
 * to the upper copy at its next use, so it reads what the union shows
 * (DESIGN.md "Coherent"), never the stale lower file. */
#ifndef UM_OP_FILE_H
#define UM_OP_FILE_H

#include <fcntl.h>
#include <fuse_lowlevel.h>

#include "unionmount.h"

struct um_inode;

/* Open flags the daemon's own fds never carry, whatever the caller's
 * open asked. O_CREAT/O_EXCL mean nothing for an existing object, and
 * the daemon must never take a controlling terminal. O_DIRECT is the
 * caller's business with the kernel (which sends its I/O uncached): our
 * buffers, a request's data 80 bytes into libfuse's, are not aligned as
 * the upper filesystem would demand. Nor O_APPEND: the kernel puts
 * every append at the size it knows, and sends each WRITE with its
 * offset; an fd opened O_APPEND here would append a write that
 * fcntl(F_SETFL) has since made positional (Linux's pwrite ignores the
 * offset on such an fd). */
#define UM_FD_FLAGS_DROPPED (O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT | O_APPEND)

/* Make fi's handle from fd (owned on success) on layer, for ino (a new
 * reference is taken). st_known: fd's attributes when the caller has
 * just read them (create), else NULL. */
int um_file_attach(struct um_fs *fs, struct um_inode *ino, int fd, uint16_t layer, const struct stat *st_known,
		   struct fuse_file_info *fi);
/* Reply to OPEN or CREATE with fi's handle (and its backing file, for
 * passthrough); fuse_reply_open()'s or fuse_reply_create()'s result. */
int um_file_reply_open(fuse_req_t req, struct fuse_file_info *fi);
int um_file_reply_create(fuse_req_t req, const struct fuse_entry_param *e, struct fuse_file_info *fi);
/* Undo um_file_attach() for an open the kernel never saw. */
void um_file_detach(struct um_fs *fs, struct fuse_file_info *fi);
/* At the end of the mount: free the handles the kernel never released
 * (files open when the session ended). */
void um_files_free_all(struct um_fs *fs);

/* The handle's fd, when it is open for writing on the upper copy
 * (ftruncate through it); -EBADF otherwise (nothing to put then). On
 * success the caller ends with um_file_put(). */
int um_file_get_writable(struct um_fs *fs, struct fuse_file_info *fi);
/* The handle's current fd; the caller ends with um_file_put(). */
int um_file_get(struct um_fs *fs, struct fuse_file_info *fi);
void um_file_put(struct um_fs *fs, struct fuse_file_info *fi);
/* The setuid/setgid bits of st that a change by req's caller clears, as
 * the VFS clears them. A chown: setuid always, setgid when
 * group-executable or the caller is neither in the file's group nor has
 * CAP_FSETID. A change of the data: the same, but nothing for a caller
 * with CAP_FSETID. */
mode_t um_file_priv_to_clear(fuse_req_t req, const struct stat *st, bool chown);
/* Clear what a change of fd's data (ino's) by req's caller clears:
 * setuid, and setgid unless it is without group-execute and the caller
 * in the group; tell the kernel if the mode changed. */
int um_file_kill_priv(fuse_req_t req, struct um_inode *ino, int fd);

#endif
