/*
 * kv_client.h — an asynchronous client of kv_server for one thread. It owns
 * a udrpc_t, asks the server how many partitions (threads) it has, opens a
 * session to each, and sends every key to the partition that owns it.
 * Callbacks run inside kvc_poll(), on the client's thread, exactly once per
 * accepted operation.
 */
#ifndef UDRPC_APPS_KV_CLIENT_H
#define UDRPC_APPS_KV_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "udrpc.h"

struct kvc;

/* status: a kv_status (KV_OK, KV_NOT_FOUND, ...) or a negative errno from
 * udrpc (-ECONNRESET, ...). GET: the value (valid during the call). SCAN:
 * the raw response after the status byte (u32 count, entries; kv.h). */
typedef void (*kvc_cb_t)(void *arg, int status, const uint8_t *data, size_t len);

/* Connects (blocks up to timeout_ms, running the event loop). cfg: the
 * endpoint's configuration (NULL: defaults). max_value:
 * the largest value this client puts or gets; max_ops: operations in
 * flight at once. NULL and *err (-errno) on failure. */
struct kvc *kvc_create(udrpc_nexus_t *nx, uint8_t rpc_id, const udrpc_config_t *cfg,
                       const char *server_uri, size_t max_value, unsigned max_ops,
                       unsigned timeout_ms, int *err);
void kvc_destroy(struct kvc *c);

unsigned kvc_partitions(const struct kvc *c);
unsigned kvc_partition_of(const struct kvc *c, const void *key, size_t key_len);
unsigned kvc_in_flight(const struct kvc *c);
udrpc_t *kvc_rpc(struct kvc *c);

/* 0, or -EAGAIN (max_ops in flight), -EINVAL (key or value too large), or
 * udrpc_enqueue_request's error; the callback runs only after 0. */
int kvc_get(struct kvc *c, const void *key, size_t key_len, kvc_cb_t cb, void *arg);
int kvc_put(struct kvc *c, const void *key, size_t key_len, const void *value,
            size_t value_len, kvc_cb_t cb, void *arg);
int kvc_delete(struct kvc *c, const void *key, size_t key_len, kvc_cb_t cb, void *arg);
/* SCAN of one partition (fan out over kvc_partitions() for all keys). */
int kvc_scan(struct kvc *c, unsigned partition, const void *prefix, size_t prefix_len,
             uint32_t max, kvc_cb_t cb, void *arg);

/* Runs the client's event loop once. */
void kvc_poll(struct kvc *c);

#endif
