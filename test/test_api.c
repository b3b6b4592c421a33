/*
 * test_api.c — the public API's contract, one endpoint pair in one thread:
 * handler registration rules, creation errors, connect failures in bounded
 * time (dead port: -ETIMEDOUT; no such rpc_id: -ENOENT), requests queued
 * before CONNECTED and beyond the window, no handler (-EBADRQC), bad
 * arguments (-EINVAL), a response too big (-EMSGSIZE), the wrong thread
 * (-EPERM), deferred responses, disconnect with requests outstanding, a
 * server endpoint that closes (every continuation once with -ECONNRESET,
 * then SESSION_FAILED -ECONNABORTED), a reconnect to its successor, a
 * server that forgot a session (found out when requests time out), idle
 * and unpolled sessions living on heartbeats, a client endpoint destroyed
 * without a disconnect, and data-path partitions.
 *
 *   test_api [udp|loop]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc_internal.h"
#include "test.h"
#include "loop.h"

enum { REQ_ECHO = 1, REQ_DEFER = 3, REQ_NONE = 99 };

static const char *transport = "udp";
static udrpc_req_handle_t *deferred[64];
static int n_deferred;

static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    memcpy(resp->buf, req->buf, req->size);
    CHECK(udrpc_resp_msgbuf(h, 1) == NULL); /* once per request */
    CHECK_EQ(udrpc_enqueue_response(h), 0);
    CHECK_EQ(udrpc_enqueue_response(h), -EINVAL); /* answered already */
    (void)ctx;
}

static void defer_handler(udrpc_req_handle_t *h, void *ctx)
{
    CHECK(n_deferred < 64);
    deferred[n_deferred++] = h; /* answered later, from the event loop's caller */
    (void)ctx;
}

struct ev {
    int connected, failed, disconnected, session_failed;
    int last_err, last_session;
};
static void sm_handler(int session, udrpc_sm_event_t e, int err, void *ctx)
{
    struct ev *ev = ctx;
    ev->last_err = err;
    ev->last_session = session;
    switch (e) {
    case UDRPC_SM_CONNECTED: ev->connected++; break;
    case UDRPC_SM_CONNECT_FAILED: ev->failed++; break;
    case UDRPC_SM_DISCONNECTED: ev->disconnected++; break;
    case UDRPC_SM_SESSION_FAILED: ev->session_failed++; break;
    }
}

struct done {
    int calls;
    int status;
    int order;
};
static int g_order;
static void cont(void *ctx, void *tag, int status)
{
    struct done *d = tag;
    d->calls++;
    d->status = status;
    d->order = g_order++;
    (void)ctx;
}

static uint64_t ms(void) { return udrpc__monotonic_ns() / 1000000; }

static udrpc_t *cli, *srv;
static void pump(void)
{
    udrpc_run_event_loop_once(cli);
    if (srv)
        udrpc_run_event_loop_once(srv);
}
#define PUMP_UNTIL(cond, limit_ms)                                  \
    do {                                                            \
        uint64_t _end = ms() + (limit_ms);                          \
        while (!(cond)) {                                           \
            pump();                                                 \
            if (ms() > _end) {                                      \
                fprintf(stderr, "%s:%d: timed out waiting for %s\n", \
                        __FILE__, __LINE__, #cond);                 \
                exit(1);                                            \
            }                                                       \
        }                                                           \
    } while (0)

static int enq_from_thread_ret;
static udrpc_msgbuf_t *thr_req, *thr_resp;
static int thr_session;
static void *other_thread(void *arg)
{
    struct done *d = arg;
    enq_from_thread_ret = udrpc_enqueue_request(cli, thr_session, REQ_ECHO, thr_req, thr_resp,
                                                cont, d);
    return NULL;
}

static uint64_t server_sessions(void)
{
    udrpc_stats_t st;
    udrpc_get_stats(srv, &st);
    return st.sessions_active;
}

static udrpc_config_t cfg_base(void)
{
    udrpc_config_t c;
    udrpc_config_default(&c);
    c.transport = transport;
    c.rto_min_us = 2000;
    c.peer_timeout_ms = 100;
    c.connect_timeout_ms = 300;
    c.mtu = 1024; /* so that 3000-byte requests are multi-packet */
    return c;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        transport = TEST_TRANSPORT(argv[1]);
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(nx != NULL);
    CHECK(udrpc_nexus_create("bad uri", NULL) == NULL && errno == EINVAL);

    /* Handler registration rules. */
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo_handler, UDRPC_HANDLER_FG), -EEXIST);
    CHECK_EQ(udrpc_register_handler(nx, 5, NULL, UDRPC_HANDLER_FG), -EINVAL);
    CHECK_EQ(udrpc_register_handler(nx, 5, echo_handler, UDRPC_HANDLER_BG), -EINVAL); /* no workers */
    CHECK_EQ(udrpc_register_handler(nx, 5, echo_handler, (udrpc_handler_mode_t)7), -EINVAL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_DEFER, defer_handler, UDRPC_HANDLER_FG), 0);

    /* Creation errors. */
    udrpc_config_t c = cfg_base();
    c.cc = true;
    c.timely.t_low_us = c.timely.t_high_us; /* thresholds out of order */
    CHECK(udrpc_create(nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = cfg_base();
    c.cc = true;
    c.timely.beta = 1.5;
    CHECK(udrpc_create(nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = cfg_base();
    c.transport = "verbs";
    CHECK(udrpc_create(nx, 0, NULL, NULL, &c) == NULL && errno == ENODEV);
    c.transport = "carrier-pigeon";
    CHECK(udrpc_create(nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = cfg_base();
    c.max_sessions = 0;
    CHECK(udrpc_create(nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);

    struct ev cev = { 0 };
    c = cfg_base();
    cli = udrpc_create(nx, 1, &cev, sm_handler, &c);
    srv = udrpc_create(nx, 2, NULL, NULL, &c);
    CHECK(cli && srv);
    CHECK(udrpc_create(nx, 2, NULL, NULL, &c) == NULL && errno == EEXIST);
    CHECK_EQ(udrpc_register_handler(nx, 7, echo_handler, UDRPC_HANDLER_FG), -EBUSY);
    CHECK(!strcmp(udrpc_transport_name(cli), transport));

    /* Connect: bad URI at once; a dead port and an absent rpc_id later. */
    CHECK_EQ(udrpc_connect(cli, "nonsense", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(cli, "127.0.0.1:0", 2), -EINVAL);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001) };
    socklen_t sl = sizeof(sin);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd); /* nobody listens on this port now */
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", ntohs(sin.sin_port));
    uint64_t t0 = ms();
    int s_dead = udrpc_connect(cli, dead, 2);
    CHECK(s_dead >= 0);
    struct done qd = { 0 };
    udrpc_msgbuf_t req, resp, small;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 64, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 64, &resp), 0);
    CHECK_EQ(udrpc_enqueue_request(cli, s_dead, REQ_ECHO, &req, &resp, cont, &qd), 0);
    PUMP_UNTIL(cev.failed == 1, 2000);
    uint64_t waited = ms() - t0;
    CHECK_EQ(cev.last_err, -ETIMEDOUT);
    CHECK(waited >= 250 && waited < 1000);
    CHECK_EQ(qd.calls, 1); /* the waiting request ended too, once */
    CHECK_EQ(qd.status, -ECONNRESET);
    CHECK(!udrpc_is_connected(cli, s_dead));

    t0 = ms();
    CHECK(udrpc_connect(cli, udrpc_nexus_uri(nx), 77) >= 0);
    PUMP_UNTIL(cev.failed == 2, 2000);
    CHECK_EQ(cev.last_err, -ENOENT);
    CHECK(ms() - t0 < 250);

    /* A server with another MTU refuses: packet boundaries must agree. */
    udrpc_config_t c2 = cfg_base();
    c2.mtu = 2048;
    udrpc_t *other = udrpc_create(nx, 4, NULL, NULL, &c2);
    CHECK(other != NULL);
    CHECK(udrpc_connect(cli, udrpc_nexus_uri(nx), 4) >= 0);
    while (cev.failed != 3) {
        pump();
        udrpc_run_event_loop_once(other);
        CHECK(ms() - t0 < 2000);
    }
    CHECK_EQ(cev.last_err, -EMEDIUMTYPE);
    udrpc_destroy(other);

    /* Requests before CONNECTED and beyond the 8-slot window: all complete,
     * started in FIFO order. */
    int s = udrpc_connect(cli, udrpc_nexus_uri(nx), 2);
    CHECK(s >= 0);
    enum { Q = 20 };
    udrpc_msgbuf_t qreq[Q], qresp[Q];
    struct done qdone[Q];
    memset(qdone, 0, sizeof(qdone));
    for (int i = 0; i < Q; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(cli, 100, &qreq[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(cli, 100, &qresp[i]), 0);
        memset(qreq[i].buf, i, 100);
        CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &qreq[i], &qresp[i], cont, &qdone[i]), 0);
    }
    PUMP_UNTIL(cev.connected == 1, 2000);
    CHECK(udrpc_is_connected(cli, s));
    PUMP_UNTIL(qdone[Q - 1].calls == 1, 2000);
    for (int i = 0; i < Q; i++) {
        CHECK_EQ(qdone[i].calls, 1);
        CHECK_EQ(qdone[i].status, 0);
        CHECK_EQ(qresp[i].size, 100);
        CHECK_EQ(qresp[i].buf[99], i);
        if (i >= 8) /* the queued ones start in order as slots free */
            CHECK(qdone[i].order > qdone[i - 8].order);
    }

    /* No handler for the type: an error, not a hang. */
    struct done nh = { 0 };
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_NONE, &req, &resp, cont, &nh), 0);
    PUMP_UNTIL(nh.calls == 1, 2000);
    CHECK_EQ(nh.status, -EBADRQC);

    /* Bad arguments. */
    struct done bad = { 0 };
    CHECK_EQ(udrpc_enqueue_request(cli, -1, REQ_ECHO, &req, &resp, cont, &bad), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, 4000, REQ_ECHO, &req, &resp, cont, &bad), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, 70000, REQ_ECHO, &req, &resp, cont, &bad), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, NULL, &resp, cont, &bad), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &resp, NULL, &bad), -EINVAL);
    udrpc_msgbuf_t fake = req;
    fake.size = fake.max_size + 1;
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &fake, &resp, cont, &bad), -EINVAL);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 0, &small), -EINVAL);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, (16u << 20), &small), -EINVAL);
    CHECK_EQ(udrpc_disconnect(cli, 1234), -EINVAL);
    CHECK_EQ(bad.calls, 0);

    /* A response larger than the response buffer. */
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 10, &small), 0);
    struct done big = { 0 };
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &small, cont, &big), 0);
    PUMP_UNTIL(big.calls == 1, 2000);
    CHECK_EQ(big.status, -EMSGSIZE);

    /* The wrong thread is refused. */
    struct done td = { 0 };
    thr_req = &req;
    thr_resp = &resp;
    thr_session = s;
    pthread_t th;
    pthread_create(&th, NULL, other_thread, &td);
    pthread_join(th, NULL);
    CHECK_EQ(enq_from_thread_ret, -EPERM);

    /* Deferred responses: the request stays readable until answered. */
    struct done dd[3];
    udrpc_msgbuf_t dreq[3], dresp[3];
    memset(dd, 0, sizeof(dd));
    for (int i = 0; i < 3; i++) {
        udrpc_msgbuf_alloc(cli, 3000, &dreq[i]); /* multi-packet too */
        udrpc_msgbuf_alloc(cli, 3000, &dresp[i]);
        udrpc_msgbuf_resize(&dreq[i], i == 0 ? 40 : 3000);
        memset(dreq[i].buf, 0x30 + i, dreq[i].size);
        CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_DEFER, &dreq[i], &dresp[i], cont, &dd[i]), 0);
    }
    PUMP_UNTIL(n_deferred == 3, 2000);
    for (int k = 0; k < 2000; k++)
        pump(); /* RX buffers are reused meanwhile */
    for (int i = 0; i < 3; i++) {
        udrpc_req_handle_t *h = deferred[i];
        const udrpc_msgbuf_t *r = udrpc_req_msgbuf(h);
        int which = r->buf[0] - 0x30;
        CHECK(which >= 0 && which < 3);
        CHECK_EQ(r->size, dreq[which].size);
        for (size_t j = 0; j < r->size; j++)
            CHECK_EQ(r->buf[j], 0x30 + which);
        udrpc_msgbuf_t *o = udrpc_resp_msgbuf(h, r->size);
        memcpy(o->buf, r->buf, r->size);
        CHECK_EQ(udrpc_enqueue_response(h), 0);
    }
    n_deferred = 0;
    PUMP_UNTIL(dd[0].calls && dd[1].calls && dd[2].calls, 2000);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(dd[i].status, 0);
        CHECK_EQ(dresp[i].size, dreq[i].size);
        CHECK(memcmp(dresp[i].buf, dreq[i].buf, dreq[i].size) == 0);
    }

    /* Disconnect with requests outstanding (in a deferring handler): each
     * ends once with -ECONNRESET, then DISCONNECTED. */
    struct done od[2] = { { 0 }, { 0 } };
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_DEFER, &dreq[0], &dresp[0], cont, &od[0]), 0);
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_DEFER, &dreq[1], &dresp[1], cont, &od[1]), 0);
    PUMP_UNTIL(n_deferred == 2, 2000);
    CHECK_EQ(udrpc_disconnect(cli, s), 0);
    CHECK_EQ(udrpc_disconnect(cli, s), -EALREADY);
    CHECK_EQ(od[0].calls, 1);
    CHECK_EQ(od[1].calls, 1);
    CHECK_EQ(od[0].status, -ECONNRESET);
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &resp, cont, &bad), -ENOTCONN);
    PUMP_UNTIL(cev.disconnected == 1, 2000);
    CHECK_EQ(cev.last_err, 0);
    /* The server answers into a closed session: dropped, no crash, no leak. */
    for (int i = 0; i < n_deferred; i++)
        CHECK_EQ(udrpc_enqueue_response(deferred[i]), 0);
    n_deferred = 0;
    udrpc_stats_t st;
    udrpc_get_stats(srv, &st);
    CHECK_EQ(st.sessions_active, 0);

    /* The server endpoint closes with requests outstanding: it tells the
     * client, whose continuations each run once with -ECONNRESET, then
     * SESSION_FAILED -ECONNABORTED (the server said so: no timeout). */
    s = udrpc_connect(cli, udrpc_nexus_uri(nx), 2);
    PUMP_UNTIL(cev.connected == 2, 2000);
    struct done fd_[12];
    udrpc_msgbuf_t freq[12], fresp[12];
    memset(fd_, 0, sizeof(fd_));
    for (int i = 0; i < 12; i++) {
        udrpc_msgbuf_alloc(cli, 5000, &freq[i]);
        udrpc_msgbuf_alloc(cli, 64, &fresp[i]);
        CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_DEFER, &freq[i], &fresp[i], cont, &fd_[i]), 0);
    }
    PUMP_UNTIL(n_deferred == 8, 2000); /* 8 in handlers, 4 queued */
    n_deferred = 0;
    udrpc_destroy(srv);
    srv = NULL;
    t0 = ms();
    PUMP_UNTIL(cev.session_failed == 1, 3000);
    printf("server endpoint closed: the client knew after %llu ms\n",
           (unsigned long long)(ms() - t0));
    CHECK_EQ(cev.last_err, -ECONNABORTED);
    for (int i = 0; i < 12; i++) {
        CHECK_EQ(fd_[i].calls, 1);
        CHECK_EQ(fd_[i].status, -ECONNRESET);
    }
    CHECK(!udrpc_is_connected(cli, s));
    udrpc_get_stats(cli, &st);
    CHECK_EQ(st.sessions_failed, 1);

    /* A new server with the same rpc_id: reconnect and talk. */
    srv = udrpc_create(nx, 2, NULL, NULL, &c);
    CHECK(srv != NULL);
    s = udrpc_connect(cli, udrpc_nexus_uri(nx), 2);
    PUMP_UNTIL(cev.connected == 3, 2000);
    struct done rd = { 0 };
    memset(req.buf, 0x77, 64);
    req.size = 64;
    CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &resp, cont, &rd), 0);
    PUMP_UNTIL(rd.calls == 1, 2000);
    CHECK_EQ(rd.status, 0);
    CHECK_EQ(resp.buf[63], 0x77);

    /* A server that forgot the session without a word (its notice lost,
     * or a restart): the client's next request times out, and from the
     * second timeout on the client asks; the answer fails the session with
     * -ECONNABORTED, well before peer_timeout: the server's process is
     * alive and answering heartbeats, so silence would never come. */
    {
        struct session *ss = NULL;
        for (uint32_t i = 0; i < srv->max_sessions && !ss; i++)
            ss = srv->sessions[i];
        CHECK(ss != NULL);
        udrpc__session_free(srv, ss);
        struct done fg = { 0 };
        t0 = ms();
        CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &resp, cont, &fg), 0);
        PUMP_UNTIL(cev.session_failed == 2, 2000);
        CHECK_EQ(cev.last_err, -ECONNABORTED);
        CHECK_EQ(fg.calls, 1);
        CHECK_EQ(fg.status, -ECONNRESET);
        printf("forgotten session: failed -ECONNABORTED after %llu ms\n",
               (unsigned long long)(ms() - t0));
        s = udrpc_connect(cli, udrpc_nexus_uri(nx), 2);
        PUMP_UNTIL(cev.connected == 4, 2000);
    }

    /* Liveness (peer_timeout 100 ms): an idle session lives on through ten
     * timeouts on heartbeats alone, with no packet on the session... */
    udrpc_stats_t st0;
    udrpc_get_stats(cli, &st0);
    uint64_t idle_end = ms() + 1000;
    while (ms() < idle_end)
        pump();
    CHECK(udrpc_is_connected(cli, s));
    CHECK_EQ(cev.session_failed, 2);
    CHECK_EQ(server_sessions(), 1);
    udrpc_get_stats(cli, &st);
    CHECK_EQ(st.pkts_tx, st0.pkts_tx);
    /* ...and so does one whose endpoint thread does not poll for three
     * timeouts (a stalled handler, a long continuation): the Nexus thread
     * answers for the process. */
    usleep(300000);
    for (int k = 0; k < 1000; k++)
        pump();
    CHECK(udrpc_is_connected(cli, s));
    CHECK_EQ(server_sessions(), 1);
    /* A client endpoint that is destroyed without udrpc_disconnect says so
     * on its way out: the server frees its session at once. */
    udrpc_t *ghost = udrpc_create(nx, 3, NULL, NULL, &c);
    int gs = udrpc_connect(ghost, udrpc_nexus_uri(nx), 2);
    uint64_t end = ms() + 2000;
    while (!udrpc_is_connected(ghost, gs) && ms() < end) {
        udrpc_run_event_loop_once(ghost);
        pump();
    }
    CHECK(udrpc_is_connected(ghost, gs));
    CHECK_EQ(server_sessions(), 2);
    udrpc_destroy(ghost);
    t0 = ms();
    PUMP_UNTIL(server_sessions() == 1, 1000);
    uint64_t freed_ms = ms() - t0;
    printf("destroyed client's session freed after %llu ms\n", (unsigned long long)freed_ms);
    CHECK(udrpc_is_connected(cli, s)); /* the live one is untouched */

    if (!strcmp(transport, "loop")) {
        /* A data-path partition, shorter or three times longer than
         * peer_timeout, fails nothing while the peer's process answers
         * heartbeats: the request in flight completes once it heals. */
        unsigned part_ms[2] = { 10, 300 };
        for (int k = 0; k < 2; k++) {
            struct done pd = { 0 };
            udrpc__loop_partition(srv->tp, part_ms[k]);
            udrpc__loop_partition(cli->tp, part_ms[k]);
            CHECK_EQ(udrpc_enqueue_request(cli, s, REQ_ECHO, &req, &resp, cont, &pd), 0);
            PUMP_UNTIL(pd.calls == 1, 3000);
            CHECK_EQ(pd.status, 0);
            CHECK(udrpc_is_connected(cli, s));
        }
        struct udrpc_loop_stats ls;
        udrpc__loop_get_stats(cli->tp, &ls);
        CHECK(ls.dropped > 0);
        CHECK_EQ(cev.session_failed, 2);
        printf("partition: 10 ms and 300 ms (3x peer_timeout) survived\n");
    }

    for (int i = 0; i < Q; i++) {
        udrpc_msgbuf_free(cli, &qreq[i]);
        udrpc_msgbuf_free(cli, &qresp[i]);
    }
    udrpc_destroy(cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    printf("test_api %s: ok\n", transport);
    return 0;
}
