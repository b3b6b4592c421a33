/*
 * test_multi.c — one server endpoint on two transports at once
 * (cfg.transport "loop,udp"): a client endpoint on loop and one on udp
 * connect to it, and each session goes over the transport its client
 * speaks. Both keep 8 requests in flight for 2,000 RPCs each, every byte
 * of every answer checked, each continuation once; no packet dropped;
 * each transport carried its own session's packets (the loop fabric's
 * count of the server's sends matches the loop client's RPCs). Also: a
 * list naming an unknown transport, or two that both register memory,
 * is refused.
 */
#include <errno.h>
#include <string.h>

#include "loop.h"
#include "rpc_internal.h"
#include "test.h"

enum { REQ_ECHO = 1, DEPTH = 8, COUNT = 2000, SIZE = 200 };

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    for (size_t i = 0; i < req->size; i++)
        resp->buf[i] = (uint8_t)(req->buf[i] ^ 0x5A);
    udrpc_enqueue_response(h);
    (void)ctx;
}

struct client {
    udrpc_t *rpc;
    int session, connected;
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
    int calls[DEPTH];
    uint64_t issued, done;
};

static void issue(struct client *c, int i);

static void cont(void *ctx, void *tag, int status)
{
    struct client *c = ctx;
    int i = (int)(intptr_t)tag;
    CHECK_EQ(status, 0);
    CHECK_EQ(++c->calls[i], 1);
    CHECK_EQ(c->resp[i].size, SIZE);
    for (int j = 0; j < SIZE; j++)
        CHECK_EQ(c->resp[i].buf[j], (uint8_t)(c->req[i].buf[j] ^ 0x5A));
    c->done++;
    if (c->issued < COUNT)
        issue(c, i);
}

static void issue(struct client *c, int i)
{
    c->calls[i] = 0;
    for (int j = 0; j < SIZE; j++)
        c->req[i].buf[j] = (uint8_t)(c->issued * 7 + (uint64_t)j);
    c->issued++;
    CHECK_EQ(udrpc_enqueue_request(c->rpc, c->session, REQ_ECHO, &c->req[i], &c->resp[i], cont,
                                   (void *)(intptr_t)i), 0);
}

static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct client *c = ctx;
    (void)s;
    if (ev != UDRPC_SM_CONNECTED) {
        fprintf(stderr, "session event %d: %s\n", ev, udrpc_strerror(err));
        exit(1);
    }
    c->connected = 1;
}

int main(void)
{
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.mtu = 4096; /* one datagram size for every transport of a session */

    cfg.transport = "loop,pigeon";
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
    cfg.transport = "";
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
#ifdef UDRPC_HAVE_MLX5
    cfg.transport = TEST_TRANSPORT("mlx5-model"); /* the NIC model as mlx5 */
    cfg.transport = "mlx5,mlx5"; /* two that register memory: a msgbuf has one lkey */
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
    cfg.transport = "loop,mlx5";
    udrpc_t *ok = udrpc_create(nx, 9, NULL, NULL, &cfg);
    CHECK(ok != NULL);
    udrpc_destroy(ok);
#endif

    cfg.transport = "loop,udp";
    udrpc_t *srv = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(srv != NULL);
    CHECK_EQ(srv->n_tps, 2);
    struct client cl[2];
    memset(cl, 0, sizeof(cl));
    const char *tps[2] = { "loop", "udp" };
    for (int k = 0; k < 2; k++) {
        cfg.transport = tps[k];
        cl[k].rpc = udrpc_create(nx, (uint8_t)(1 + k), &cl[k], on_sm, &cfg);
        CHECK(cl[k].rpc != NULL);
        cl[k].session = udrpc_connect(cl[k].rpc, udrpc_nexus_uri(nx), 0);
        CHECK(cl[k].session >= 0);
    }
    uint64_t end = udrpc__monotonic_ns() + 5000000000ull;
    while (!cl[0].connected || !cl[1].connected) {
        udrpc_run_event_loop_once(srv);
        for (int k = 0; k < 2; k++)
            udrpc_run_event_loop_once(cl[k].rpc);
        CHECK(udrpc__monotonic_ns() < end);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < DEPTH; i++) {
            CHECK_EQ(udrpc_msgbuf_alloc(cl[k].rpc, SIZE, &cl[k].req[i]), 0);
            CHECK_EQ(udrpc_msgbuf_alloc(cl[k].rpc, SIZE, &cl[k].resp[i]), 0);
            issue(&cl[k], i);
        }
    struct udrpc_loop_stats ls0;
    udrpc__loop_get_stats(srv->tps[0], &ls0);
    end = udrpc__monotonic_ns() + 20000000000ull;
    while (cl[0].done < COUNT || cl[1].done < COUNT) {
        udrpc_run_event_loop_once(srv);
        for (int k = 0; k < 2; k++)
            udrpc_run_event_loop_once(cl[k].rpc);
        CHECK(udrpc__monotonic_ns() < end);
    }
    udrpc_stats_t st;
    udrpc_get_stats(srv, &st);
    CHECK_EQ(st.sessions_active, 2);
    CHECK_EQ(st.reqs_handled, 2 * COUNT);
    uint64_t drops = 0;
    for (int r = 0; r < UDRPC_DROP_MAX; r++)
        drops += st.drops[r];
    CHECK_EQ(drops, 0);
    /* The loop session's answers went out over loop, one per RPC (less
     * the 8 answered before ls0); the udp session's did not. */
    struct udrpc_loop_stats ls1;
    udrpc__loop_get_stats(srv->tps[0], &ls1);
    CHECK(ls1.sent - ls0.sent >= COUNT - DEPTH && ls1.sent - ls0.sent <= COUNT);
    printf("multi: one server endpoint on loop and udp: %d RPCs from a loop client and %d "
           "from a udp client, %llu of its answers over loop\n",
           COUNT, COUNT, (unsigned long long)(ls1.sent - ls0.sent));
    for (int k = 0; k < 2; k++)
        udrpc_destroy(cl[k].rpc);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    printf("test_multi: ok\n");
    return 0;
}
