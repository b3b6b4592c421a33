/*
 * hash.h — the one open-addressing hash table of udrpc, for lookups off the
 * datapath (SM connect de-duplication, the verbs address-handle cache).
 * Linear probing with backward-shift deletion (no tombstones), 64-bit keys,
 * 64-bit values, growth at 1/2 load. Integer keys are mixed with an
 * Fx-style multiplicative hash; byte keys are first reduced with XXH3
 * (udrpc__hash_bytes) and the caller verifies the full key on a hit.
 */
#ifndef UDRPC_UTIL_HASH_H
#define UDRPC_UTIL_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hash_entry {
    uint64_t key;
    uint64_t value;
    bool used;
};

struct hash_table {
    struct hash_entry *entries;
    uint32_t mask;   /* capacity - 1, capacity a power of two */
    uint32_t count;
};

/* Fx hash (rustc's FxHasher step): one multiply, rotate to mix high bits
 * into the low bits that pick the bucket. */
static inline uint64_t udrpc__hash_fx(uint64_t k)
{
    uint64_t h = k * 0x517cc1b727220a95ull;
    return (h >> 32) ^ h;
}

/* Combines a running hash with one more integer word. */
static inline uint64_t udrpc__hash_fx_add(uint64_t h, uint64_t word)
{
    return ((h << 5 | h >> 59) ^ word) * 0x517cc1b727220a95ull;
}

uint64_t udrpc__hash_bytes(const void *p, size_t len); /* XXH3-64 */

int udrpc__hash_init(struct hash_table *t, uint32_t capacity_hint);
void udrpc__hash_fini(struct hash_table *t);
/* Inserts or overwrites. Returns 0 or -ENOMEM. */
int udrpc__hash_put(struct hash_table *t, uint64_t key, uint64_t value);
/* Returns true and sets *value if key is present. */
bool udrpc__hash_get(const struct hash_table *t, uint64_t key, uint64_t *value);
/* Returns true if key was present. */
bool udrpc__hash_del(struct hash_table *t, uint64_t key);

#endif
