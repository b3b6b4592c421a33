/*
 * api/connect.c — udrpc_connect(): a bad URI refused at once; a dead port
 * (-ETIMEDOUT) and an absent rpc_id (-ENOENT) reported in bounded time,
 * a request that waited on the session ending once; a server of another
 * MTU refused (-EMEDIUMTYPE); requests queued before CONNECTED and beyond
 * the slot window all completing, started in FIFO order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "sm.h"

static void bad_uri(struct fx *f)
{
    CHECK_EQ(udrpc_connect(f->cli, "nonsense", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(f->cli, "127.0.0.1:0", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(f->cli, "127.0.0.1:", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(f->cli, "[::1]:0", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(f->cli, "[::1:80", 2), -EINVAL);
    CHECK_EQ(udrpc_connect(f->cli, NULL, 2), -EINVAL);
    CHECK_EQ(f->connect_failed, 0);
}

/* A Nexus bound to one family cannot reach the other (only [::] reaches
 * both): -EAFNOSUPPORT at once, no session taken. */
static void other_family(struct fx *f)
{
    union tp_addr me;
    CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(f->nx), &me, NULL), 0);
    const char *other = me.sa.sa_family == AF_INET ? "[::1]:9" : "127.0.0.1:9";
    CHECK_EQ(udrpc_connect(f->cli, other, 2), -EAFNOSUPPORT);
    CHECK_EQ(f->connect_failed, 0);
}

/* Nobody listens: CONNECT_FAILED -ETIMEDOUT after connect_timeout (300 ms),
 * and the request that waited for the session ends with it, once. */
static void dead_port(struct fx *f)
{
    union tp_addr sin;
    CHECK_EQ(udrpc__uri_parse(test_local_uri(), &sin, NULL), 0);
    int fd = socket(sin.sa.sa_family, SOCK_DGRAM, 0);
    socklen_t sl = sizeof(sin);
    CHECK_EQ(bind(fd, &sin.sa, udrpc__addr_len(&sin)), 0);
    CHECK_EQ(getsockname(fd, &sin.sa, &sl), 0);
    close(fd); /* the port is free again */
    char dead[TP_ADDR_STRLEN];
    udrpc__addr_format(&sin, dead);
    uint64_t t0 = fx_ms();
    int s = udrpc_connect(f->cli, dead, 2);
    CHECK(s >= 0);
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &resp), 0);
    struct fx_done *d = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &req, &resp, fx_cont, d), 0);
    FX_PUMP_UNTIL(f, f->connect_failed == 1, 2000);
    uint64_t waited = fx_ms() - t0;
    CHECK_EQ(f->last_err, -ETIMEDOUT);
    CHECK_EQ(f->last_session, s);
    CHECK(waited >= 250 && waited < 1000);
    CHECK_EQ(d->calls, 1);
    CHECK_EQ(d->status, -ECONNRESET);
    CHECK(!udrpc_is_connected(f->cli, s));
    udrpc_msgbuf_free(f->cli, &req);
    udrpc_msgbuf_free(f->cli, &resp);
}

/* The Nexus answers for an rpc_id with no endpoint: -ENOENT, well before
 * connect_timeout. */
static void no_such_endpoint(struct fx *f)
{
    uint64_t t0 = fx_ms();
    CHECK(udrpc_connect(f->cli, udrpc_nexus_uri(f->nx), 77) >= 0);
    FX_PUMP_UNTIL(f, f->connect_failed == 1, 2000);
    CHECK_EQ(f->last_err, -ENOENT);
    CHECK(fx_ms() - t0 < 250);
}

/* Packet boundaries must agree: a server with another MTU refuses. */
static void mtu_mismatch(struct fx *f)
{
    if (!strcmp(f->transport, "xdp"))
        FX_SKIP(f, "a third endpoint: xdp holds one per interface, and the test's veth has two");
    udrpc_config_t c = f->cfg;
    c.mtu = 2048;
    udrpc_t *other = udrpc_create(f->nx, 4, NULL, NULL, &c);
    CHECK(other != NULL);
    CHECK(udrpc_connect(f->cli, udrpc_nexus_uri(f->nx), 4) >= 0);
    uint64_t end = fx_ms() + 2000;
    while (f->connect_failed != 1) {
        fx_pump(f);
        udrpc_run_event_loop_once(other);
        CHECK(fx_ms() < end);
    }
    CHECK_EQ(f->last_err, -EMEDIUMTYPE);
    udrpc_destroy(other);
}

/* Twenty requests enqueued before CONNECTED, beyond the 8-slot window:
 * all complete, each once, and the queued ones start in order. */
static void queued_before_connect(struct fx *f)
{
    int s = udrpc_connect(f->cli, udrpc_nexus_uri(f->nx), 2);
    CHECK(s >= 0);
    enum { Q = 20 };
    static udrpc_msgbuf_t req[Q], resp[Q];
    struct fx_done *d[Q];
    for (int i = 0; i < Q; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 100, &req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 100, &resp[i]), 0);
        memset(req[i].buf, i, 100);
        d[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &req[i], &resp[i], fx_cont, d[i]), 0);
    }
    CHECK(!udrpc_is_connected(f->cli, s));
    FX_PUMP_UNTIL(f, f->connected == 1, 2000);
    CHECK(udrpc_is_connected(f->cli, s));
    FX_PUMP_UNTIL(f, d[Q - 1]->calls == 1, 2000);
    for (int i = 0; i < Q; i++) {
        CHECK_EQ(d[i]->calls, 1);
        CHECK_EQ(d[i]->status, 0);
        CHECK_EQ(resp[i].size, 100);
        CHECK_EQ(resp[i].buf[0], i);
        CHECK_EQ(resp[i].buf[99], i);
        if (i >= 8) /* the queued ones start in order as slots free */
            CHECK(d[i]->order > d[i - 8]->order);
    }
    CHECK_EQ(f->handled, Q);
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(bad_uri, .flags = FX_UNCONNECTED),
        FX_CASE(other_family, .flags = FX_UNCONNECTED),
        FX_CASE(dead_port, .flags = FX_UNCONNECTED),
        FX_CASE(no_such_endpoint, .flags = FX_UNCONNECTED),
        FX_CASE(mtu_mismatch, .flags = FX_UNCONNECTED),
        FX_CASE(queued_before_connect, .flags = FX_UNCONNECTED),
    };
    return FX_RUN("api_connect", cases, fx_api_configure);
}
