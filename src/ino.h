/* st_ino policy: what number a union object shows.
 *
 * st_ino = layer << 56 | backing inode number, when the layer is below 128
 * and the backing number fits in 56 bits (the common case: upper files
 * keep their own numbers, as layer 0). Otherwise the pair is hashed with
 * xxhash into the numbers with bit 63 set, which the direct form never
 * uses. Distinct (layer, ino) pairs therefore never collide in the direct
 * form, and the mapping depends only on the branch order, so it is stable
 * across remounts. An object on another filesystem mounted inside a branch
 * (dev differs from the branch root's) has numbers of its own, so it is
 * always hashed, with its device.
 */
#ifndef UM_INO_H
#define UM_INO_H

#include <stdint.h>
#include <sys/types.h>

#define UM_INO_LAYER_SHIFT 56
#define UM_INO_DIRECT_LAYERS 128
#define UM_INO_HASHED (UINT64_C(1) << 63)

uint64_t um_ino_encode(unsigned layer, uint64_t backing_ino, dev_t dev, dev_t layer_dev);

#endif
