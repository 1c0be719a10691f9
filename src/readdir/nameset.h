/* A set of names keyed by xxhash, each carrying a 32-bit value: the
 * dedupe behind merged directory listings. Names are copied into the
 * set's own arena. Not thread-safe: one per listing being built. */
#ifndef UM_NAMESET_H
#define UM_NAMESET_H

#include <stddef.h>
#include <stdint.h>

struct um_nameset;

int um_nameset_new(size_t hint, struct um_nameset **ret);
struct um_nameset *um_nameset_free(struct um_nameset *s);

/* Insert name with val if absent: returns 1. If present, returns 0 and
 * stores the existing value in *ret_val (when not NULL). -ENOMEM. */
int um_nameset_insert(struct um_nameset *s, const char *name, size_t len, uint32_t val, uint32_t *ret_val);
/* Replace the value of a present name: 0, or -ENOENT. */
int um_nameset_set(struct um_nameset *s, const char *name, size_t len, uint32_t val);
/* The value of a present name: 0, or -ENOENT. */
int um_nameset_get(struct um_nameset *s, const char *name, size_t len, uint32_t *ret_val);
size_t um_nameset_count(const struct um_nameset *s);

#endif
