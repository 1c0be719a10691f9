/* Directory fds against the open-files limit.
 *
 * Each directory the kernel holds keeps an fd per part (inode.h), and the
 * kernel holds every directory a walk went through for as long as it has
 * memory to spare: without a bound, a walk of a big tree runs the daemon
 * out of fds (EMFILE) long before it runs out of anything else. Past a
 * high-water mark (-o max_dirfds=N, or half the open-files limit) one
 * thread closes the fds of directories no request is using, least
 * recently used first, down to half the mark. The next request that locks
 * such a directory (um_inode_rdlock()) reopens them by file handle
 * (open_by_handle_at(2)): the same directory wherever renames took it, or
 * an error if it is gone. A layer whose filesystem gives no handles, or a
 * daemon without CAP_DAC_READ_SEARCH, keeps its fds open, as before.
 *
 * The kernel is never asked to forget anything: invalidating its entries
 * would detach whatever is mounted below them, and make getcwd() fail in
 * a directory a shell sits in.
 */
#ifndef UM_DIRFDS_H
#define UM_DIRFDS_H

#include <stdbool.h>
#include <stdint.h>

#include "unionmount.h"

struct um_part;
struct um_dirfd_handle;

/* Probe each layer, and start the closing thread if any layer can be
 * reopened. max: -o max_dirfds, or 0 for half the open-files limit
 * (read again every second, so prlimit(1) on the daemon takes effect).
 * Without a thread, fds stay open; nothing fails. */
void um_dirfds_start(struct um_fs *fs, unsigned long max);
void um_dirfds_stop(void);

/* Parts' fds opened (n > 0) or closed (n < 0) by inodes. */
void um_dirfds_count(long n);
/* Called by every request before it starts (it holds nothing yet, and
 * is not in flight): far past the mark, close what can be closed, as
 * the thread does, before going on. */
void um_dirfds_help(struct um_fs *fs);
/* Over the high-water mark (never without the closing thread). */
bool um_dirfds_over(void);
/* An open failed with EMFILE: close what can be closed now. */
void um_dirfds_emfile(void);

/* May part p's fd be closed (its layer gives handles)? Then remember
 * how to reopen it (once per part; a syscall or two). */
int um_dirfd_save(const struct um_fs *fs, struct um_part *p);
/* Reopen p (closed by the thread, p->fd < 0) into p->fd: 0, -EIO when
 * the directory is gone or another one has its handle (logged), or the
 * open's error (-EMFILE, -ENOMEM). */
int um_dirfd_reopen(const struct um_fs *fs, struct um_part *p);
void um_dirfd_handle_free(struct um_dirfd_handle *h);

#endif
