/*
 * What every fuzz target shares: libFuzzer's entry point and CHECK(),
 * which abort()s so that libFuzzer and the corpus replayer (fuzz_main.c)
 * both see a broken invariant as a crash.
 */
#ifndef TETHER_FUZZ_H
#define TETHER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#endif /* TETHER_FUZZ_H */
