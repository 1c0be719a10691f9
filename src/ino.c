#include "ino.h"

#include <xxhash.h>

uint64_t um_ino_encode(unsigned layer, uint64_t backing_ino, dev_t dev, dev_t layer_dev)
{
	uint64_t key[3] = { layer, backing_ino, dev == layer_dev ? 0 : (uint64_t)dev };

	if (dev == layer_dev && layer < UM_INO_DIRECT_LAYERS && backing_ino < (UINT64_C(1) << UM_INO_LAYER_SHIFT))
		return (uint64_t)layer << UM_INO_LAYER_SHIFT | backing_ino;
	return UM_INO_HASHED | (XXH3_64bits(key, sizeof(key)) & ~UM_INO_HASHED);
}
