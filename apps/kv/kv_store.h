/*
 * kv_store.h — the key-value service's table and handlers, apart from its
 * threads: kv_server runs them in N threads, and kv_plugin (a udrpc plugin)
 * inside rpc_bench and the gate. A partition is one endpoint's share of the
 * table; the handlers take it as their rpc_context.
 */
#ifndef UDRPC_APPS_KV_STORE_H
#define UDRPC_APPS_KV_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "udrpc.h"

struct kv_item {
    struct kv_item *next;
    uint64_t hash;
    uint32_t value_len;
    uint16_t key_len;
    uint8_t data[];          /* key, then value */
};

struct kv_part {
    pthread_rwlock_t lock;   /* writers: the owning thread; readers: SCAN too */
    struct kv_item **buckets;
    size_t n_buckets;        /* a power of two */
    size_t n_items;
    uint64_t ops;
};

/* 0, or -ENOMEM. */
int kv_part_init(struct kv_part *p);
void kv_part_fini(struct kv_part *p);
/* Sets key to value (a copy) from the partition's own thread: 0, or
 * -ENOMEM. */
int kv_part_put(struct kv_part *p, const uint8_t *key, uint16_t klen, const uint8_t *value,
                uint32_t vlen);

/* The handlers of kv.h's requests; ctx is the endpoint's struct kv_part.
 * GET, PUT and DELETE are foreground handlers on the partition's own
 * thread (its only writer); SCAN is a background handler (read lock). */
void kv_handle_get(udrpc_req_handle_t *h, void *ctx);
void kv_handle_put(udrpc_req_handle_t *h, void *ctx);
void kv_handle_delete(udrpc_req_handle_t *h, void *ctx);
void kv_handle_scan(udrpc_req_handle_t *h, void *ctx);

#endif
