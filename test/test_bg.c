/*
 * test_bg.c — background handlers and nested RPCs. One thread owns three
 * endpoints: a client (rpc 0), a front server A (rpc 1) and a back server B
 * (rpc 2); the Nexus has 2 workers.
 *  - BG handlers run on a worker (never the Rpc thread), may block, answer
 *    small and multi-packet responses; every byte checked, every
 *    continuation once, on the client's thread.
 *  - A BG handler that answers later from another thread of its own.
 *  - Nested: A's FG handler calls B (a BG handler) and answers its own
 *    client from the continuation; a continuation issues the next request.
 *  - A client that disconnects while its BG handler runs: the late answer
 *    frees the session, nothing else happens.
 *  - udrpc_destroy() with BG requests queued and running.
 *  - A BG handler's calls that take a udrpc_t fail with -EPERM.
 *
 *   test_bg [udp|loop]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "rpc_internal.h"
#include "test.h"

enum { REQ_BG = 1, REQ_NESTED = 2, REQ_BG_LATER = 3, REQ_BG_SLOW = 4, REQ_BG_IN_PLACE = 5 };

static pthread_t rpc_thread;
static udrpc_t *cli, *srv_a, *srv_b;
static int a_to_b; /* A's session to B */
static atomic_int bg_on_rpc_thread, bg_runs, bg_eperm;

/* Response: the request's bytes inverted, repeated to the size asked for
 * in the request's first 4 bytes. */
static void fill_resp(udrpc_req_handle_t *h)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    uint32_t want;
    memcpy(&want, req->buf, 4);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, want);
    CHECK(resp != NULL);
    for (uint32_t i = 0; i < want; i++)
        resp->buf[i] = (uint8_t)~req->buf[4 + i % (req->size - 4)];
}

static void bg_handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&bg_runs, 1);
    if (pthread_equal(pthread_self(), rpc_thread))
        atomic_fetch_add(&bg_on_rpc_thread, 1);
    udrpc_msgbuf_t mb;
    if (udrpc_msgbuf_alloc(srv_b, 64, &mb) == -EPERM)
        atomic_fetch_add(&bg_eperm, 1);
    usleep(200); /* a blocking call: fine here */
    fill_resp(h);
    CHECK_EQ(udrpc_enqueue_response(h), 0);
}

/* The response fill_resp would make for want = the request's size - 4,
 * written over the request's own bytes (the worker got the library's
 * copy of the request, so no copy and no allocation here). */
static void bg_in_place_handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    const uint8_t *req_buf = udrpc_req_msgbuf(h)->buf;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf_in_place(h);
    CHECK(resp != NULL && resp->buf == req_buf);
    CHECK(udrpc_resp_msgbuf(h, 1) == NULL);
    size_t n = resp->size - 4;
    for (size_t i = 0; i < n; i++)
        resp->buf[i] = (uint8_t)~resp->buf[4 + i];
    udrpc_msgbuf_resize(resp, n);
    CHECK_EQ(udrpc_enqueue_response(h), 0);
}

static void *answer_later(void *arg)
{
    usleep(2000);
    fill_resp(arg);
    CHECK_EQ(udrpc_enqueue_response(arg), 0);
    return NULL;
}

static void bg_later_handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, answer_later, h), 0);
    pthread_detach(t);
}

static atomic_int slow_started, slow_answered;
static void bg_slow_handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&slow_started, 1);
    usleep(50000);
    fill_resp(h);
    CHECK_EQ(udrpc_enqueue_response(h), 0);
    atomic_fetch_add(&slow_answered, 1);
}

/* A's FG handler: asks B (BG), answers its client from the continuation. */
struct nested {
    udrpc_req_handle_t *h;
    udrpc_msgbuf_t req, resp;
};
static int nested_conts;
static void nested_cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    struct nested *n = tag;
    CHECK(pthread_equal(pthread_self(), rpc_thread));
    CHECK_EQ(status, 0);
    nested_conts++;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(n->h, n->resp.size);
    CHECK(resp != NULL);
    memcpy(resp->buf, n->resp.buf, n->resp.size);
    CHECK_EQ(udrpc_enqueue_response(n->h), 0);
    udrpc_msgbuf_free(srv_a, &n->req);
    udrpc_msgbuf_free(srv_a, &n->resp);
    free(n);
}

static void nested_handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    struct nested *n = calloc(1, sizeof(*n));
    CHECK(n != NULL);
    n->h = h;
    uint32_t want;
    memcpy(&want, req->buf, 4);
    CHECK_EQ(udrpc_msgbuf_alloc(srv_a, req->size, &n->req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(srv_a, want ? want : 1, &n->resp), 0);
    memcpy(n->req.buf, req->buf, req->size);
    CHECK_EQ(udrpc_enqueue_request(srv_a, a_to_b, REQ_BG, &n->req, &n->resp, nested_cont, n),
             0);
}

/* The client side. */
struct call {
    udrpc_msgbuf_t req, resp;
    int calls, status;
    uint32_t want;
};

static void cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    struct call *c = tag;
    CHECK(pthread_equal(pthread_self(), rpc_thread));
    c->calls++;
    c->status = status;
}

static void prepare(udrpc_t *rpc, struct call *c, uint32_t req_size, uint32_t want, int seed)
{
    memset(c, 0, sizeof(*c));
    CHECK_EQ(udrpc_msgbuf_alloc(rpc, req_size, &c->req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(rpc, want ? want : 1, &c->resp), 0);
    memcpy(c->req.buf, &want, 4);
    for (uint32_t i = 4; i < req_size; i++)
        c->req.buf[i] = (uint8_t)(seed * 31 + i);
    c->want = want;
}

static void check_resp(const struct call *c)
{
    CHECK_EQ(c->calls, 1);
    CHECK_EQ(c->status, 0);
    CHECK_EQ(c->resp.size, c->want);
    for (uint32_t i = 0; i < c->want; i++)
        CHECK_EQ(c->resp.buf[i], (uint8_t)~c->req.buf[4 + i % (c->req.size - 4)]);
}

static void pump(void)
{
    udrpc_run_event_loop_once(cli);
    udrpc_run_event_loop_once(srv_a);
    udrpc_run_event_loop_once(srv_b);
}

#define PUMP_UNTIL(cond)                                                       \
    do {                                                                       \
        uint64_t _end = udrpc__monotonic_ns() + 5000000000ull;                 \
        while (!(cond)) {                                                      \
            pump();                                                            \
            if (udrpc__monotonic_ns() > _end) {                                \
                fprintf(stderr, "%s:%d: timed out: %s\n", __FILE__, __LINE__, \
                        #cond);                                                \
                exit(1);                                                       \
            }                                                                  \
        }                                                                      \
    } while (0)

static int connected;
static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s, (void)err, (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        connected++;
}

static int connect_to(udrpc_t *from, udrpc_nexus_t *nx, uint8_t id)
{
    int before = connected;
    int s = udrpc_connect(from, udrpc_nexus_uri(nx), id);
    CHECK(s >= 0);
    PUMP_UNTIL(connected == before + 1);
    return s;
}

int main(int argc, char **argv)
{
    const char *transport = argc > 1 ? TEST_TRANSPORT(argv[1]) : "udp";
    rpc_thread = pthread_self();
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    ncfg.bg_threads = 2;
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), &ncfg);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_BG, bg_handler, UDRPC_HANDLER_BG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_NESTED, nested_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_BG_LATER, bg_later_handler, UDRPC_HANDLER_BG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_BG_SLOW, bg_slow_handler, UDRPC_HANDLER_BG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_BG_IN_PLACE, bg_in_place_handler, UDRPC_HANDLER_BG),
             0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = transport;
    cfg.mtu = 1024; /* multi-packet above ~1000 bytes */
    cli = udrpc_create(nx, 0, NULL, on_sm, &cfg);
    srv_a = udrpc_create(nx, 1, NULL, on_sm, &cfg);
    srv_b = udrpc_create(nx, 2, NULL, NULL, &cfg);
    CHECK(cli && srv_a && srv_b);
    int to_b = connect_to(cli, nx, 2);
    int to_a = connect_to(cli, nx, 1);
    a_to_b = connect_to(srv_a, nx, 2);

    /* 1. BG handlers: 8 at a time, sizes across the small buffer (512) and
     * the packet (1008) boundaries, 400 requests. */
    static const uint32_t sizes[] = { 0, 1, 511, 512, 513, 1008, 1009, 5000, 100000 };
    enum { N = 400, DEPTH = 8 };
    struct call calls[DEPTH];
    int issued = 0, done = 0;
    for (int i = 0; i < DEPTH; i++) {
        prepare(cli, &calls[i], 5 + (uint32_t)(i * 700) % 3000, sizes[issued % 9], issued);
        CHECK_EQ(udrpc_enqueue_request(cli, to_b, REQ_BG, &calls[i].req, &calls[i].resp, cont,
                                       &calls[i]), 0);
        issued++;
    }
    while (done < N) {
        pump();
        for (int i = 0; i < DEPTH; i++) {
            if (calls[i].calls == 0 || calls[i].want == UINT32_MAX)
                continue;
            check_resp(&calls[i]);
            done++;
            udrpc_msgbuf_free(cli, &calls[i].req);
            udrpc_msgbuf_free(cli, &calls[i].resp);
            calls[i].want = UINT32_MAX; /* retired */
            if (issued < N) {
                prepare(cli, &calls[i], 5 + (uint32_t)(issued * 700) % 3000,
                        sizes[issued % 9], issued);
                CHECK_EQ(udrpc_enqueue_request(cli, to_b, REQ_BG, &calls[i].req,
                                               &calls[i].resp, cont, &calls[i]), 0);
                issued++;
            }
        }
    }
    CHECK_EQ(atomic_load(&bg_runs), N);
    CHECK_EQ(atomic_load(&bg_on_rpc_thread), 0);
    CHECK_EQ(atomic_load(&bg_eperm), N);
    printf("bg: %d requests on 2 workers, none on the Rpc thread, all bytes right\n", N);

    /* 1b. BG handlers answering in the request's bytes, one at a time:
     * sizes from one packet to many. */
    static const uint32_t in_place_sizes[] = { 5, 100, 1012, 1013, 5000, 100004 };
    for (unsigned i = 0; i < sizeof(in_place_sizes) / sizeof(in_place_sizes[0]); i++) {
        struct call c;
        prepare(cli, &c, in_place_sizes[i], in_place_sizes[i] - 4, (int)i);
        CHECK_EQ(udrpc_enqueue_request(cli, to_b, REQ_BG_IN_PLACE, &c.req, &c.resp, cont, &c),
                 0);
        PUMP_UNTIL(c.calls == 1);
        check_resp(&c);
        udrpc_msgbuf_free(cli, &c.req);
        udrpc_msgbuf_free(cli, &c.resp);
    }
    printf("bg in place: 6 responses in their requests' bytes\n");

    /* 2. Answered later from another thread. */
    struct call later;
    prepare(cli, &later, 100, 3000, 7);
    CHECK_EQ(udrpc_enqueue_request(cli, to_b, REQ_BG_LATER, &later.req, &later.resp, cont,
                                   &later), 0);
    PUMP_UNTIL(later.calls == 1);
    check_resp(&later);

    /* 3. Nested: client -> A (FG) -> B (BG) -> A's continuation -> client.
     * 50 in a row, each issued from the previous one's completion. */
    for (int i = 0; i < 50; i++) {
        struct call c;
        prepare(cli, &c, 40, (uint32_t)(i * 97) % 2000, i);
        CHECK_EQ(udrpc_enqueue_request(cli, to_a, REQ_NESTED, &c.req, &c.resp, cont, &c), 0);
        PUMP_UNTIL(c.calls == 1);
        check_resp(&c);
        udrpc_msgbuf_free(cli, &c.req);
        udrpc_msgbuf_free(cli, &c.resp);
    }
    CHECK_EQ(nested_conts, 50);
    printf("nested: 50 requests through A's FG handler to B's BG handler\n");

    /* 4. Disconnect while B's BG handler runs: the session lives until the
     * late answer, which is then dropped; the continuation runs once. */
    udrpc_stats_t st;
    udrpc_get_stats(srv_b, &st);
    uint64_t b_sessions = st.sessions_active;
    int to_b2 = connect_to(cli, nx, 2);
    struct call slow;
    prepare(cli, &slow, 10, 10, 3);
    atomic_store(&slow_started, 0);
    CHECK_EQ(udrpc_enqueue_request(cli, to_b2, REQ_BG_SLOW, &slow.req, &slow.resp, cont, &slow),
             0);
    PUMP_UNTIL(atomic_load(&slow_started) == 1);
    CHECK_EQ(udrpc_disconnect(cli, to_b2), 0);
    CHECK_EQ(slow.calls, 1);
    CHECK_EQ(slow.status, -ECONNRESET);
    PUMP_UNTIL((udrpc_get_stats(srv_b, &st), st.sessions_active == b_sessions));
    CHECK(atomic_load(&slow_answered) == 0); /* closed while the handler runs, */
    CHECK(srv_b->zombies != NULL);           /* its memory kept */
    PUMP_UNTIL(atomic_load(&slow_answered) == 1 && srv_b->zombies == NULL);
    CHECK_EQ(slow.calls, 1);
    printf("disconnect under a running BG handler: session freed after its answer\n");

    /* 5. Destroy B with BG requests queued and running (2 workers, 6
     * requests of 50 ms): no crash, no leak, the continuations fail once. */
    struct call many[6];
    atomic_store(&slow_started, 0);
    for (int i = 0; i < 6; i++) {
        prepare(cli, &many[i], 10, 10, i);
        CHECK_EQ(udrpc_enqueue_request(cli, to_b, REQ_BG_SLOW, &many[i].req, &many[i].resp, cont,
                                       &many[i]), 0);
    }
    PUMP_UNTIL(atomic_load(&slow_started) >= 1);
    udrpc_destroy(srv_b);
    srv_b = NULL;
    uint64_t end = udrpc__monotonic_ns() + 5000000000ull;
    int all = 0;
    while (!all && udrpc__monotonic_ns() < end) {
        udrpc_run_event_loop_once(cli);
        udrpc_run_event_loop_once(srv_a);
        all = 1;
        for (int i = 0; i < 6; i++)
            all &= many[i].calls == 1;
    }
    CHECK(all);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(many[i].status, -ECONNRESET);
    printf("destroy with BG requests queued and running: %d started, all continuations once\n",
           atomic_load(&slow_started));

    for (int i = 0; i < 6; i++) {
        udrpc_msgbuf_free(cli, &many[i].req);
        udrpc_msgbuf_free(cli, &many[i].resp);
    }
    udrpc_msgbuf_free(cli, &slow.req);
    udrpc_msgbuf_free(cli, &slow.resp);
    udrpc_msgbuf_free(cli, &later.req);
    udrpc_msgbuf_free(cli, &later.resp);
    udrpc_destroy(cli);
    udrpc_destroy(srv_a);
    udrpc_nexus_destroy(nx);
    printf("test_bg %s: ok\n", transport);
    return 0;
}
