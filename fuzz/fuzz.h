/*
 * What every libFuzzer target here shares: the entry point's prototype and
 * CHECK, an assertion that stays on in every build (a failed CHECK is a
 * crash libFuzzer reports with its input).
 */
#ifndef BG_FUZZ_H
#define BG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#endif
