/*
 * kv_plugin — the key-value service's GET, PUT and SCAN handlers as a udrpc
 * plugin (udrpc_plugin.h), for rpc_bench --handler-lib and the gate:
 *
 *   rpc_bench --handler-lib build/apps/kv/libkv_plugin.so \
 *             --plugin-arg keys=1000,value=64 --req-types 10,11
 *
 * init fills the table with `keys` keys ("key00000000" ...) of `value`
 * bytes each; GET asks for them in turn, PUT writes them again with the
 * same size, so every GET finds its key and its answer has a known size.
 * The server endpoint holds the one partition (rpc_bench's server has one
 * endpoint). SCAN (a background handler) asks for up to 16 keys under the
 * prefix "key0000000".
 *
 * Built a second time as libkv_plugin_slow.so with KV_PLUGIN_SLOWDOWN
 * defined: GET does extra work, the planted slowdown that test
 * user_gate.kv must see the gate fail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kv_store.h"
#include "udrpc_plugin.h"

#define KEY_LEN 11 /* "key%08u" */

struct kv_plugin {
    struct kv_part part; /* first: the server endpoint's rpc_context */
    unsigned n_keys;
    uint32_t value_size;
};

static void make_key(uint8_t *out, uint64_t seq, unsigned n_keys)
{
    unsigned k = (unsigned)(seq % n_keys);
    memcpy(out, "key", 3);
    for (int i = KEY_LEN - 1; i >= 3; i--, k /= 10)
        out[i] = (uint8_t)('0' + k % 10);
}

static void *kv_plugin_init(const char *arg, const char **why)
{
    unsigned keys = 1000, value = 64;
    const char *s = arg ? arg : "";
    while (*s) {
        unsigned v;
        int n = 0;
        if (sscanf(s, "keys=%u%n", &v, &n) == 1 && n)
            keys = v;
        else if (sscanf(s, "value=%u%n", &v, &n) == 1 && n)
            value = v;
        else {
            *why = "kv_plugin: arguments are keys=N,value=BYTES";
            return NULL;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    if (keys == 0 || keys > 100000000 || value > (1u << 20)) {
        *why = "kv_plugin: keys 1..100000000, value at most 1 MiB";
        return NULL;
    }
    struct kv_plugin *st = calloc(1, sizeof(*st));
    uint8_t *v = calloc(1, value ? value : 1);
    if (!st || !v || kv_part_init(&st->part) != 0) {
        free(st);
        free(v);
        *why = "kv_plugin: out of memory";
        return NULL;
    }
    st->n_keys = keys;
    st->value_size = value;
    for (unsigned i = 0; i < keys; i++) {
        uint8_t key[KEY_LEN];
        make_key(key, i, keys);
        memset(v, (int)(i & 0xff), value);
        if (kv_part_put(&st->part, key, KEY_LEN, v, value) != 0) {
            *why = "kv_plugin: out of memory";
            free(v);
            kv_part_fini(&st->part);
            free(st);
            return NULL;
        }
    }
    free(v);
    return st;
}

static void kv_plugin_fini(void *state)
{
    struct kv_plugin *st = state;
    kv_part_fini(&st->part);
    free(st);
}

static long get_request(void *state, uint64_t seq, uint8_t *buf, size_t cap)
{
    struct kv_plugin *st = state;
    if (cap < 2 + KEY_LEN)
        return -1;
    kv_put16(buf, KEY_LEN);
    make_key(buf + 2, seq, st->n_keys);
    return 2 + KEY_LEN;
}

static long put_request(void *state, uint64_t seq, uint8_t *buf, size_t cap)
{
    struct kv_plugin *st = state;
    if (cap < 2 + KEY_LEN + (size_t)st->value_size)
        return -1;
    kv_put16(buf, KEY_LEN);
    make_key(buf + 2, seq, st->n_keys);
    memset(buf + 2 + KEY_LEN, (int)(seq & 0xff), st->value_size);
    return 2 + KEY_LEN + (long)st->value_size;
}

static long scan_request(void *state, uint64_t seq, uint8_t *buf, size_t cap)
{
    (void)state;
    (void)seq;
    static const char prefix[] = "key0000000";
    if (cap < 6 + sizeof(prefix) - 1)
        return -1;
    kv_put16(buf, sizeof(prefix) - 1);
    memcpy(buf + 2, prefix, sizeof(prefix) - 1);
    kv_put32(buf + 2 + sizeof(prefix) - 1, 16);
    return 6 + (long)sizeof(prefix) - 1;
}

static int get_check(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp,
                     size_t resp_len)
{
    struct kv_plugin *st = state;
    (void)req;
    (void)req_len;
    return resp_len == 1 + (size_t)st->value_size && resp[0] == KV_OK ? 0 : -1;
}

static int status_ok(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp,
                     size_t resp_len)
{
    (void)state;
    (void)req;
    (void)req_len;
    return resp_len >= 1 && resp[0] == KV_OK ? 0 : -1;
}

#ifdef KV_PLUGIN_SLOWDOWN
/* The planted slowdown: about a fifth more instructions in GET's handler. */
static void handle_get(udrpc_req_handle_t *h, void *ctx)
{
    volatile unsigned spin = 0;
    for (unsigned i = 0; i < KV_PLUGIN_SLOWDOWN; i++)
        spin += i;
    kv_handle_get(h, ctx);
}
#else
#define handle_get kv_handle_get
#endif

static const udrpc_plugin_handler_t handlers[] = {
    { KV_GET, UDRPC_HANDLER_FG, "GET", handle_get, get_request, get_check },
    { KV_PUT, UDRPC_HANDLER_FG, "PUT", kv_handle_put, put_request, status_ok },
    { KV_SCAN, UDRPC_HANDLER_BG, "SCAN", kv_handle_scan, scan_request, status_ok },
};

static const udrpc_plugin_t plugin = {
    .version = UDRPC_PLUGIN_VERSION,
    .name = "kv",
    .init = kv_plugin_init,
    .fini = kv_plugin_fini,
    .bg_threads = 1,
    .n_handlers = sizeof(handlers) / sizeof(handlers[0]),
    .handlers = handlers,
};

__attribute__((visibility("default"))) const udrpc_plugin_t *udrpc_plugin_entry(void);
const udrpc_plugin_t *udrpc_plugin_entry(void)
{
    return &plugin;
}
