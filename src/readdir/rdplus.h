/* Which READDIRPLUS replies carry the attributes of the files they list
 * (-o readdirplus=adaptive, the default).
 *
 * An entry with attributes saves the kernel a LOOKUP round trip when the
 * caller goes on to stat or open the file, and costs the daemon an lstat
 * (on a cold cache, an inode read from disk) when it does not: a find(1)
 * that only descends uses nothing but the names and types, and is then
 * about twice as slow as it needs to be (bench/README.md). Which kind of
 * walker a caller is shows in what it does, so it is judged per job (the
 * calling thread's process group, which a shell gives each pipeline): its
 * first listing carries everything; later ones carry the attributes of
 * directories only (a walker descends into them) until one of its threads
 * looks up a file (not a directory: see op_entry.c) such a listing gave,
 * and everything from then on.
 *
 * The kernel keeps the listings (readdir/op_dir.c), lean ones too, and
 * serves them to every caller: when a job turns out to want the
 * attributes, every lean listing is dropped from the kernel's cache so
 * that its next listing asks again. Names listed lean before that, in
 * another job or before a pipeline's second half started (find | xargs
 * stat: xargs waits for a batch of names), are still looked up one by
 * one.
 */
#ifndef UM_RDPLUS_H
#define UM_RDPLUS_H

#include <stdbool.h>
#include <sys/types.h>

#include "unionmount.h"

struct um_inode;
struct um_rdplus_state;

int um_rdplus_new(struct um_rdplus_state **ret);
void um_rdplus_free(struct um_rdplus_state *rp);

/* Should this READDIRPLUS of dir by thread tid carry the attributes of
 * the files it lists? (Directories' always.) May read /proc/TID/stat. */
bool um_rdplus_files(struct um_fs *fs, pid_t tid, const struct um_inode *dir);

/* Thread tid looks up a name in dir, which a lean listing was given of
 * (dir->lean_listed). */
void um_rdplus_looked_up(struct um_fs *fs, pid_t tid, struct um_inode *dir);

#endif
