/* What the fuzz targets share with libFuzzer and with replay.c. */
#ifndef UM_FUZZ_H
#define UM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry point: one input, 0 always (a failed property aborts). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep. Broken, it aborts, which libFuzzer
 * reports as a crash with the input saved, and replay as a failed test. */
#define FUZZ_CHECK(cond)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                              \
		}                                                                             \
	} while (0)

#endif
