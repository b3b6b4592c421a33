/*
 * kv_server — an in-memory key-value server on udrpc. N worker threads,
 * each owning a udrpc_t (rpc_id = thread index) and a partition of the
 * table; GET, PUT and DELETE are foreground handlers on the owning thread,
 * SCAN a background handler on the Nexus's worker pool (it walks the whole
 * partition, under the partition's read lock). Wire format: kv.h.
 *
 *   kv_server [--uri host:port] [--threads N] [--bg-threads M]
 *             [--idle-sleep-us U]
 *
 * Threads sleep after U microseconds without work (default 20; 0: busy-
 * poll): with more threads than cores (2 server threads and a client on a
 * 2-core machine), busy-polling threads take turns in scheduler time
 * slices and every request waits for one (kv_load's default mix, measured
 * here: 6,845 ops/s busy-polling, 161,610-216,268 sleeping after 5-50 us).
 * Prints "kv_server at URI threads N" once every thread serves, and runs
 * until SIGINT or SIGTERM. The transport follows UDRPC_TRANSPORT.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "udrpc.h"

/* ---------------------------------------------------- the partition ---- */

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

static int part_init(struct kv_part *p)
{
    pthread_rwlock_init(&p->lock, NULL);
    p->n_buckets = 1024;
    p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
    return p->buckets ? 0 : -ENOMEM;
}

static void part_fini(struct kv_part *p)
{
    for (size_t b = 0; b < p->n_buckets; b++) {
        struct kv_item *it = p->buckets[b];
        while (it) {
            struct kv_item *next = it->next;
            free(it);
            it = next;
        }
    }
    free(p->buckets);
    pthread_rwlock_destroy(&p->lock);
}

static struct kv_item **part_find(struct kv_part *p, const uint8_t *key, uint16_t len,
                                  uint64_t hash)
{
    struct kv_item **pp = &p->buckets[hash & (p->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == hash && (*pp)->key_len == len && memcmp((*pp)->data, key, len) == 0)
            break;
    return pp;
}

static void part_grow(struct kv_part *p)
{
    size_t n = p->n_buckets * 2;
    struct kv_item **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < p->n_buckets; b++) {
        struct kv_item *it = p->buckets[b];
        while (it) {
            struct kv_item *next = it->next;
            it->next = nb[it->hash & (n - 1)];
            nb[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    free(p->buckets);
    p->buckets = nb;
    p->n_buckets = n;
}

/* ------------------------------------------------------- handlers ---- */

/* Parses "u16 key_len, key"; NULL if the request is malformed. */
static const uint8_t *parse_key(const udrpc_msgbuf_t *req, uint16_t *len)
{
    if (req->size < 2)
        return NULL;
    *len = kv_get16(req->buf);
    if (*len == 0 || *len > KV_MAX_KEY || req->size < 2u + *len)
        return NULL;
    return req->buf + 2;
}

static void respond_status(udrpc_req_handle_t *h, uint8_t status)
{
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 1);
    if (resp)
        resp->buf[0] = status;
    udrpc_enqueue_response(h);
}

/* GET and DELETE: the request is the key and nothing else. NULL (and
 * answered) if malformed. */
static const uint8_t *key_only_request(udrpc_req_handle_t *h, uint16_t *klen)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    const uint8_t *key = parse_key(req, klen);
    if (!key || req->size != 2u + *klen) {
        respond_status(h, KV_BAD_REQUEST);
        return NULL;
    }
    return key;
}

static void handle_get(udrpc_req_handle_t *h, void *ctx)
{
    struct kv_part *p = ctx;
    uint16_t klen;
    const uint8_t *key = key_only_request(h, &klen);
    if (!key)
        return;
    p->ops++;
    /* No lock: this thread is the partition's only writer. */
    struct kv_item *it = *part_find(p, key, klen, kv_hash(key, klen));
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, it ? 1u + it->value_len : 1u);
    if (resp) {
        resp->buf[0] = it ? KV_OK : KV_NOT_FOUND;
        if (it)
            memcpy(resp->buf + 1, it->data + it->key_len, it->value_len);
    }
    udrpc_enqueue_response(h);
}

static void handle_put(udrpc_req_handle_t *h, void *ctx)
{
    struct kv_part *p = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    uint16_t klen;
    const uint8_t *key = parse_key(req, &klen);
    if (!key) {
        respond_status(h, KV_BAD_REQUEST);
        return;
    }
    p->ops++;
    uint32_t vlen = (uint32_t)(req->size - 2 - klen);
    uint64_t hash = kv_hash(key, klen);
    struct kv_item *it = malloc(sizeof(*it) + klen + vlen);
    if (!it) {
        respond_status(h, KV_NO_MEMORY);
        return;
    }
    it->hash = hash;
    it->key_len = klen;
    it->value_len = vlen;
    memcpy(it->data, key, klen);
    memcpy(it->data + klen, key + klen, vlen);
    pthread_rwlock_wrlock(&p->lock);
    struct kv_item **pp = part_find(p, key, klen, hash);
    if (*pp) { /* replace */
        it->next = (*pp)->next;
        free(*pp);
    } else {
        it->next = NULL;
        p->n_items++;
    }
    *pp = it;
    if (p->n_items > p->n_buckets)
        part_grow(p);
    pthread_rwlock_unlock(&p->lock);
    respond_status(h, KV_OK);
}

static void handle_delete(udrpc_req_handle_t *h, void *ctx)
{
    struct kv_part *p = ctx;
    uint16_t klen;
    const uint8_t *key = key_only_request(h, &klen);
    if (!key)
        return;
    p->ops++;
    pthread_rwlock_wrlock(&p->lock);
    struct kv_item **pp = part_find(p, key, klen, kv_hash(key, klen));
    struct kv_item *it = *pp;
    if (it) {
        *pp = it->next;
        p->n_items--;
    }
    pthread_rwlock_unlock(&p->lock);
    free(it);
    respond_status(h, it ? KV_OK : KV_NOT_FOUND);
}

/* Background: walks the partition twice under the read lock (size, then
 * copy), so the response buffer is allocated once at its final size. */
static void handle_scan(udrpc_req_handle_t *h, void *ctx)
{
    struct kv_part *p = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    if (req->size < 6 || req->size != 6u + kv_get16(req->buf)) {
        respond_status(h, KV_BAD_REQUEST);
        return;
    }
    uint16_t plen = kv_get16(req->buf);
    const uint8_t *prefix = req->buf + 2;
    uint32_t max = kv_get32(req->buf + 2 + plen);
    pthread_rwlock_rdlock(&p->lock);
    size_t bytes = 5;
    uint32_t count = 0;
    uint8_t status = KV_OK;
    for (size_t b = 0; b < p->n_buckets; b++)
        for (struct kv_item *it = p->buckets[b]; it; it = it->next) {
            if (it->key_len < plen || memcmp(it->data, prefix, plen) != 0)
                continue;
            size_t need = 6u + it->key_len + it->value_len;
            if (count == max || bytes + need > KV_SCAN_MAX_RESP) {
                status = KV_TRUNCATED;
                continue;
            }
            bytes += need;
            count++;
        }
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, bytes);
    if (!resp) {
        pthread_rwlock_unlock(&p->lock);
        respond_status(h, KV_NO_MEMORY);
        return;
    }
    resp->buf[0] = status;
    kv_put32(resp->buf + 1, count);
    uint8_t *out = resp->buf + 5;
    uint32_t written = 0;
    for (size_t b = 0; b < p->n_buckets && written < count; b++)
        for (struct kv_item *it = p->buckets[b]; it && written < count; it = it->next) {
            if (it->key_len < plen || memcmp(it->data, prefix, plen) != 0)
                continue;
            size_t need = 6u + it->key_len + it->value_len;
            if ((size_t)(out - resp->buf) + need > bytes)
                continue; /* one that did not fit in the first pass */
            kv_put16(out, it->key_len);
            kv_put32(out + 2, it->value_len);
            memcpy(out + 6, it->data, it->key_len + it->value_len);
            out += need;
            written++;
        }
    pthread_rwlock_unlock(&p->lock);
    udrpc_enqueue_response(h);
}

static unsigned n_threads = 2;

static void handle_info(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 5);
    if (resp) {
        resp->buf[0] = KV_OK;
        kv_put32(resp->buf + 1, n_threads);
    }
    udrpc_enqueue_response(h);
}

/* --------------------------------------------------------- threads ---- */

static unsigned idle_sleep_us = 20;
static atomic_bool stop;
static atomic_uint ready;

struct worker {
    pthread_t thread;
    udrpc_nexus_t *nx;
    unsigned id;
    struct kv_part part;
    int err;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.idle_sleep_us = idle_sleep_us;
    udrpc_t *rpc = udrpc_create(w->nx, (uint8_t)w->id, &w->part, NULL, &cfg);
    if (!rpc) {
        w->err = errno;
        atomic_fetch_add(&ready, 1);
        return NULL;
    }
    atomic_fetch_add(&ready, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        udrpc_run_event_loop(rpc, 100);
    udrpc_destroy(rpc);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop, true);
}

int main(int argc, char **argv)
{
    const char *uri = "127.0.0.1:31851";
    unsigned bg_threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--uri") && i + 1 < argc)
            uri = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bg-threads") && i + 1 < argc)
            bg_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--idle-sleep-us") && i + 1 < argc)
            idle_sleep_us = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: kv_server [--uri host:port] [--threads N] "
                            "[--bg-threads M] [--idle-sleep-us U]\n");
            return 2;
        }
    }
    if (n_threads == 0 || n_threads > KV_MAX_THREADS || bg_threads == 0) {
        fprintf(stderr, "kv_server: threads 1..%d, bg-threads at least 1\n", KV_MAX_THREADS);
        return 2;
    }
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    ncfg.bg_threads = bg_threads;
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, &ncfg);
    if (!nx) {
        fprintf(stderr, "kv_server: %s: %s\n", uri, udrpc_strerror(-errno));
        return 1;
    }
    udrpc_register_handler(nx, KV_GET, handle_get, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_PUT, handle_put, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_DELETE, handle_delete, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_SCAN, handle_scan, UDRPC_HANDLER_BG);
    udrpc_register_handler(nx, KV_INFO, handle_info, UDRPC_HANDLER_FG);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct worker *w = calloc(n_threads, sizeof(*w));
    if (!w)
        return 1;
    int ret = 0;
    for (unsigned i = 0; i < n_threads; i++) {
        w[i].nx = nx;
        w[i].id = i;
        if (part_init(&w[i].part) != 0 ||
            pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "kv_server: out of memory or threads\n");
            return 1;
        }
    }
    while (atomic_load(&ready) < n_threads) {
        struct timespec ms = { .tv_nsec = 1000000 };
        nanosleep(&ms, NULL);
    }
    for (unsigned i = 0; i < n_threads; i++)
        if (w[i].err) {
            fprintf(stderr, "kv_server: thread %u: udrpc_create: %s\n", i,
                    udrpc_strerror(-w[i].err));
            atomic_store(&stop, true);
            ret = 1;
        }
    if (!ret) {
        printf("kv_server at %s threads %u\n", udrpc_nexus_uri(nx), n_threads);
        fflush(stdout);
    }
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(w[i].thread, NULL);
    for (unsigned i = 0; i < n_threads; i++) {
        if (!ret)
            fprintf(stderr, "kv_server: thread %u: %llu ops, %zu keys\n", i,
                    (unsigned long long)w[i].part.ops, w[i].part.n_items);
        part_fini(&w[i].part);
    }
    free(w);
    udrpc_nexus_destroy(nx);
    return ret;
}
