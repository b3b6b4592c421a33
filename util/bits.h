/* bits.h — power-of-two helpers (rings, tables, the timing wheel). */
#ifndef UDRPC_UTIL_BITS_H
#define UDRPC_UTIL_BITS_H

#include <stdbool.h>
#include <stdint.h>

static inline bool udrpc__is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* The smallest power of two >= x (1 for 0); x at most 2^63. */
static inline uint64_t udrpc__pow2_ceil(uint64_t x)
{
    return x <= 1 ? 1 : (uint64_t)1 << (64 - __builtin_clzll(x - 1));
}

#endif
