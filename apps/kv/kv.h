/*
 * kv.h — the key-value service's wire format, shared by kv_server and its
 * clients. The server runs N threads, each with its own udrpc_t (rpc_id =
 * thread index) and its own partition of the table; a key lives in
 * partition XXH3(key) % N, and clients send it to that rpc_id.
 *
 * Requests (little-endian):
 *   GET    u16 key_len, key                  -> u8 status, value
 *   PUT    u16 key_len, key, value           -> u8 status
 *   DELETE u16 key_len, key                  -> u8 status
 *   SCAN   u16 prefix_len, prefix, u32 max   -> u8 status, u32 count,
 *          then count times: u16 key_len, u32 value_len, key, value
 *          (this partition's keys with the prefix, in no order; a
 *          background handler: it walks the whole partition)
 *   INFO   (empty)                           -> u8 status, u32 threads
 */
#ifndef UDRPC_APPS_KV_H
#define UDRPC_APPS_KV_H

#include <stdint.h>
#include <string.h>
#include <xxhash.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "kv.h encodes integers with memcpy: little-endian hosts only");

enum kv_req_type {
    KV_GET = 10,
    KV_PUT = 11,
    KV_DELETE = 12,
    KV_SCAN = 13,
    KV_INFO = 14,
};

enum kv_status {
    KV_OK = 0,
    KV_NOT_FOUND = 1,
    KV_NO_MEMORY = 2,
    KV_BAD_REQUEST = 3,
    KV_TRUNCATED = 4, /* SCAN: more matches than fit the response */
};

#define KV_MAX_KEY 1024
#define KV_MAX_THREADS 64
#define KV_SCAN_MAX_RESP (1u << 20)

static inline uint64_t kv_hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

static inline unsigned kv_partition(const void *key, size_t len, unsigned n)
{
    return (unsigned)(kv_hash(key, len) % n);
}

static inline void kv_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void kv_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint16_t kv_get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t kv_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

#endif
