/* kv_client.c — see kv_client.h. */
#include "kv_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"

struct kvc_op {
    struct kvc *c;
    struct kvc_op *next_free;
    udrpc_msgbuf_t req, resp;   /* sized for the largest GET/PUT */
    udrpc_msgbuf_t big_resp;    /* SCAN only */
    kvc_cb_t cb;
    void *arg;
};

struct kvc {
    udrpc_t *rpc;
    unsigned n_parts;
    int sessions[KV_MAX_THREADS];
    int connected, failed, fail_err, disconnected;
    size_t max_value;
    struct kvc_op *ops, *free_ops;
    unsigned max_ops, in_flight;
};

static void on_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct kvc *c = ctx;
    (void)session;
    if (ev == UDRPC_SM_DISCONNECTED) {
        c->disconnected++;
    } else if (ev == UDRPC_SM_CONNECTED) {
        c->connected++;
    } else if (ev == UDRPC_SM_CONNECT_FAILED || ev == UDRPC_SM_SESSION_FAILED) {
        c->failed++;
        c->fail_err = err;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_connected(struct kvc *c, int want, uint64_t deadline_ms)
{
    while (c->connected < want && !c->failed && now_ms() < deadline_ms)
        udrpc_run_event_loop_once(c->rpc);
    if (c->failed)
        return c->fail_err ? c->fail_err : -ECONNREFUSED;
    return c->connected >= want ? 0 : -ETIMEDOUT;
}

static void info_cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    int *st = tag;
    *st = status == 0 ? 1 : status;
}

struct kvc *kvc_create(udrpc_nexus_t *nx, uint8_t rpc_id, const udrpc_config_t *cfg,
                       const char *server_uri, size_t max_value, unsigned max_ops,
                       unsigned timeout_ms, int *err)
{
    struct kvc *c = calloc(1, sizeof(*c));
    int ret = -ENOMEM;
    if (!c)
        goto out;
    c->max_value = max_value;
    c->max_ops = max_ops;
    c->rpc = udrpc_create(nx, rpc_id, c, on_sm, cfg);
    if (!c->rpc) {
        ret = -errno;
        goto out_free;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    /* Partition 0 first: it says how many there are. */
    c->sessions[0] = udrpc_connect(c->rpc, server_uri, 0);
    if (c->sessions[0] < 0) {
        ret = c->sessions[0];
        goto out_rpc;
    }
    if ((ret = wait_connected(c, 1, deadline)) != 0)
        goto out_rpc;
    udrpc_msgbuf_t req, resp;
    if (udrpc_msgbuf_alloc(c->rpc, 1, &req) != 0 || udrpc_msgbuf_alloc(c->rpc, 5, &resp) != 0)
        goto out_rpc;
    udrpc_msgbuf_resize(&req, 0);
    int st = 0;
    ret = udrpc_enqueue_request(c->rpc, c->sessions[0], KV_INFO, &req, &resp, info_cont, &st);
    while (ret == 0 && st == 0)
        udrpc_run_event_loop_once(c->rpc);
    if (ret == 0 && (st != 1 || resp.size != 5 || resp.buf[0] != KV_OK))
        ret = st < 0 ? st : -EPROTO;
    if (ret == 0)
        c->n_parts = kv_get32(resp.buf + 1);
    udrpc_msgbuf_free(c->rpc, &req);
    udrpc_msgbuf_free(c->rpc, &resp);
    if (ret != 0)
        goto out_rpc;
    if (c->n_parts == 0 || c->n_parts > KV_MAX_THREADS) {
        ret = -EPROTO;
        goto out_rpc;
    }
    for (unsigned i = 1; i < c->n_parts; i++) {
        c->sessions[i] = udrpc_connect(c->rpc, server_uri, (uint8_t)i);
        if (c->sessions[i] < 0) {
            ret = c->sessions[i];
            goto out_rpc;
        }
    }
    if ((ret = wait_connected(c, (int)c->n_parts, deadline)) != 0)
        goto out_rpc;

    c->ops = calloc(max_ops, sizeof(*c->ops));
    if (!c->ops) {
        ret = -ENOMEM;
        goto out_rpc;
    }
    for (unsigned i = 0; i < max_ops; i++) {
        struct kvc_op *op = &c->ops[i];
        op->c = c;
        if ((ret = udrpc_msgbuf_alloc(c->rpc, 2 + KV_MAX_KEY + max_value, &op->req)) != 0 ||
            (ret = udrpc_msgbuf_alloc(c->rpc, 1 + max_value, &op->resp)) != 0)
            goto out_ops;
        op->next_free = c->free_ops;
        c->free_ops = op;
    }
    return c;

out_ops:
    for (unsigned i = 0; i < max_ops; i++) {
        udrpc_msgbuf_free(c->rpc, &c->ops[i].req);
        udrpc_msgbuf_free(c->rpc, &c->ops[i].resp);
    }
    free(c->ops);
out_rpc:
    udrpc_destroy(c->rpc);
out_free:
    free(c);
out:
    *err = ret;
    return NULL;
}

void kvc_destroy(struct kvc *c)
{
    if (!c)
        return;
    /* Say goodbye, so that the server frees its sessions now rather than
     * after the liveness bound; up to 500 ms. */
    int asked = 0;
    c->connected = 0;
    for (unsigned i = 0; i < c->n_parts; i++)
        asked += udrpc_disconnect(c->rpc, c->sessions[i]) == 0;
    uint64_t deadline = now_ms() + 500;
    while (c->disconnected < asked && now_ms() < deadline)
        udrpc_run_event_loop_once(c->rpc);
    udrpc_destroy(c->rpc); /* runs what is in flight with -ECONNRESET */
    free(c->ops);          /* the msgbufs went with the endpoint */
    free(c);
}

unsigned kvc_partitions(const struct kvc *c) { return c->n_parts; }
unsigned kvc_in_flight(const struct kvc *c) { return c->in_flight; }
udrpc_t *kvc_rpc(struct kvc *c) { return c->rpc; }

unsigned kvc_partition_of(const struct kvc *c, const void *key, size_t key_len)
{
    return kv_partition(key, key_len, c->n_parts);
}

void kvc_poll(struct kvc *c)
{
    udrpc_run_event_loop(c->rpc, 0); /* one iteration, or one idle sleep */
}

static void op_cont(void *ctx, void *tag, int status)
{
    struct kvc_op *op = tag;
    struct kvc *c = op->c;
    (void)ctx;
    /* The callback may start the next operation on this op: give it back
     * first. The response stays readable meanwhile: a new request's
     * response lands only after the callback returns, and a SCAN's buffer
     * is taken out of the op. */
    udrpc_msgbuf_t big = op->big_resp;
    op->big_resp = (udrpc_msgbuf_t){ 0 };
    const udrpc_msgbuf_t *resp = big.buf ? &big : &op->resp;
    const uint8_t *data = resp->buf + 1;
    size_t len = resp->size >= 1 ? resp->size - 1 : 0;
    if (status == 0)
        status = resp->size >= 1 ? resp->buf[0] : -EPROTO;
    kvc_cb_t cb = op->cb;
    void *arg = op->arg;
    c->in_flight--;
    op->next_free = c->free_ops;
    c->free_ops = op;
    if (status >= 0)
        cb(arg, status, data, len);
    else
        cb(arg, status, NULL, 0);
    if (big.buf)
        udrpc_msgbuf_free(c->rpc, &big);
}

static struct kvc_op *op_get(struct kvc *c)
{
    struct kvc_op *op = c->free_ops;
    if (op)
        c->free_ops = op->next_free;
    return op;
}

static int op_send(struct kvc *c, struct kvc_op *op, unsigned part, uint8_t type,
                   kvc_cb_t cb, void *arg)
{
    op->cb = cb;
    op->arg = arg;
    udrpc_msgbuf_t *resp = op->big_resp.buf ? &op->big_resp : &op->resp;
    resp->size = resp->max_size;
    int ret = udrpc_enqueue_request(c->rpc, c->sessions[part], type, &op->req, resp, op_cont, op);
    if (ret != 0) {
        if (op->big_resp.buf)
            udrpc_msgbuf_free(c->rpc, &op->big_resp);
        op->next_free = c->free_ops;
        c->free_ops = op;
        return ret;
    }
    c->in_flight++;
    return 0;
}

static struct kvc_op *op_with_key(struct kvc *c, const void *key, size_t key_len,
                                  size_t extra, int *err)
{
    if (key_len == 0 || key_len > KV_MAX_KEY || extra > c->max_value) {
        *err = -EINVAL;
        return NULL;
    }
    struct kvc_op *op = op_get(c);
    if (!op) {
        *err = -EAGAIN;
        return NULL;
    }
    kv_put16(op->req.buf, (uint16_t)key_len);
    memcpy(op->req.buf + 2, key, key_len);
    udrpc_msgbuf_resize(&op->req, 2 + key_len + extra);
    return op;
}

/* A request that carries only a key (GET, DELETE), to the key's partition. */
static int key_only(struct kvc *c, uint8_t type, const void *key, size_t key_len, kvc_cb_t cb,
                    void *arg)
{
    int err;
    struct kvc_op *op = op_with_key(c, key, key_len, 0, &err);
    if (!op)
        return err;
    return op_send(c, op, kvc_partition_of(c, key, key_len), type, cb, arg);
}

int kvc_get(struct kvc *c, const void *key, size_t key_len, kvc_cb_t cb, void *arg)
{
    return key_only(c, KV_GET, key, key_len, cb, arg);
}

int kvc_put(struct kvc *c, const void *key, size_t key_len, const void *value,
            size_t value_len, kvc_cb_t cb, void *arg)
{
    int err;
    struct kvc_op *op = op_with_key(c, key, key_len, value_len, &err);
    if (!op)
        return err;
    memcpy(op->req.buf + 2 + key_len, value, value_len);
    return op_send(c, op, kvc_partition_of(c, key, key_len), KV_PUT, cb, arg);
}

int kvc_delete(struct kvc *c, const void *key, size_t key_len, kvc_cb_t cb, void *arg)
{
    return key_only(c, KV_DELETE, key, key_len, cb, arg);
}

int kvc_scan(struct kvc *c, unsigned partition, const void *prefix, size_t prefix_len,
             uint32_t max, kvc_cb_t cb, void *arg)
{
    if (partition >= c->n_parts || prefix_len > KV_MAX_KEY)
        return -EINVAL;
    struct kvc_op *op = op_get(c);
    if (!op)
        return -EAGAIN;
    int ret = udrpc_msgbuf_alloc(c->rpc, KV_SCAN_MAX_RESP, &op->big_resp);
    if (ret != 0) {
        op->next_free = c->free_ops;
        c->free_ops = op;
        return ret;
    }
    kv_put16(op->req.buf, (uint16_t)prefix_len);
    memcpy(op->req.buf + 2, prefix, prefix_len);
    kv_put32(op->req.buf + 2 + prefix_len, max);
    udrpc_msgbuf_resize(&op->req, 6 + prefix_len);
    return op_send(c, op, partition, KV_SCAN, cb, arg);
}
