/*
 * kv_store.c — the key-value table (a chained hash table per partition)
 * and the handlers of kv.h's requests. See kv_store.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kv_store.h"

int kv_part_init(struct kv_part *p)
{
    pthread_rwlock_init(&p->lock, NULL);
    p->n_buckets = 1024;
    p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
    return p->buckets ? 0 : -ENOMEM;
}

void kv_part_fini(struct kv_part *p)
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

void kv_handle_get(udrpc_req_handle_t *h, void *ctx)
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

int kv_part_put(struct kv_part *p, const uint8_t *key, uint16_t klen, const uint8_t *value,
                uint32_t vlen)
{
    uint64_t hash = kv_hash(key, klen);
    struct kv_item *it = malloc(sizeof(*it) + klen + vlen);
    if (!it)
        return -ENOMEM;
    it->hash = hash;
    it->key_len = klen;
    it->value_len = vlen;
    memcpy(it->data, key, klen);
    memcpy(it->data + klen, value, vlen);
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
    return 0;
}

void kv_handle_put(udrpc_req_handle_t *h, void *ctx)
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
    respond_status(h, kv_part_put(p, key, klen, key + klen, vlen) == 0 ? KV_OK : KV_NO_MEMORY);
}

void kv_handle_delete(udrpc_req_handle_t *h, void *ctx)
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
void kv_handle_scan(udrpc_req_handle_t *h, void *ctx)
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
