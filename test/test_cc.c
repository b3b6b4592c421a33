/*
 * test_cc.c — congestion control end to end on the loop transport's link
 * model (a FIFO queue and a fixed-rate link in front of the server, in real
 * time). One thread runs every endpoint, so the CPU is never the
 * bottleneck: the link is. While that thread is descheduled (a shared
 * machine), nothing is sent and the link idles, so each rate bound below
 * is scaled by the share of the measured interval that the thread ran
 * (its CPU time over wall time, measured in the same run).
 *
 *   pacing:  one session held at rate R streams 1 MB requests for a second;
 *            the link carries R within 5%.
 *   incast:  8 clients stream 1 MB requests (2 in flight each) to one
 *            server through one link (1 Gbit/s; lower under sanitizers, so
 *            that the CPU keeps up) with a 256 KB queue. With
 *            Timely, after a convergence period: goodput >= 90% of the
 *            link, p99 queueing delay < T_high, Jain's fairness index over
 *            the clients >= 0.9, no retransmission. Without: the same run's
 *            queue depth and drops, printed.
 *
 *   test_cc [pacing|incast|all] [measure seconds (2)] [link bytes/s (125e6)]
 *           [--no-rate-checks]
 * --no-rate-checks (sanitizer builds, ten times slower per packet, where
 * the CPU and not the link sets the pace): every figure printed, the
 * checks of bytes and completions kept, the rate, delay and fairness
 * bounds left out.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>

#include "rpc_internal.h"
#include "test.h"
#include "loop.h"

enum { REQ_SINK = 1, MSG = 1 << 20, CLIENTS = 8, DEPTH = 2 };

static void sink(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 8);
    memcpy(resp->buf, &udrpc_req_msgbuf(h)->size, 8);
    udrpc_enqueue_response(h);
}

struct client {
    udrpc_t *rpc;
    int session, connected;
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
    uint64_t done_bytes;
    int failed;
};

static struct client clients[CLIENTS];
static udrpc_t *server;
static int n_clients;

static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct client *c = ctx;
    (void)s, (void)err;
    if (ev == UDRPC_SM_CONNECTED)
        c->connected = 1;
    else
        c->failed = 1;
}

static int stopping; /* teardown: udrpc_destroy fails what is in flight */
static int rate_checks = 1;

static void cont(void *ctx, void *tag, int status)
{
    struct client *c = ctx;
    int i = (int)(intptr_t)tag;
    if (stopping)
        return;
    CHECK_EQ(status, 0);
    CHECK_EQ(c->resp[i].size, 8);
    uint64_t got;
    memcpy(&got, c->resp[i].buf, 8);
    CHECK_EQ(got, MSG);
    c->done_bytes += MSG;
    CHECK_EQ(udrpc_enqueue_request(c->rpc, c->session, REQ_SINK, &c->req[i], &c->resp[i], cont,
                                   tag), 0);
}

static uint64_t thread_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static void run_all(double seconds)
{
    uint64_t end = udrpc__monotonic_ns() + (uint64_t)(seconds * 1e9);
    while (udrpc__monotonic_ns() < end)
        for (int k = 0; k < 16; k++) {
            udrpc_run_event_loop_once(server);
            for (int i = 0; i < n_clients; i++)
                udrpc_run_event_loop_once(clients[i].rpc);
        }
}

/* Server with a link model in front; n clients connected, streaming. */
static void setup(udrpc_nexus_t *nx, int n, bool cc, uint64_t link_bytes_per_s,
                  uint32_t queue_bytes, const udrpc_timely_params_t *tp)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "loop";
    cfg.mtu = 4096;
    cfg.loop.link_bytes_per_s = link_bytes_per_s;
    cfg.loop.link_delay_us = 5;
    cfg.loop.link_queue_bytes = queue_bytes;
    server = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(server != NULL);
    udrpc_config_default(&cfg);
    cfg.transport = "loop";
    cfg.mtu = 4096;
    cfg.cc = cc;
    if (tp)
        cfg.timely = *tp;
    cfg.timely.link_rate_bytes_per_s = (double)link_bytes_per_s;
    n_clients = n;
    for (int i = 0; i < n; i++) {
        struct client *c = &clients[i];
        memset(c, 0, sizeof(*c));
        c->rpc = udrpc_create(nx, (uint8_t)(1 + i), c, on_sm, &cfg);
        CHECK(c->rpc != NULL);
        c->session = udrpc_connect(c->rpc, udrpc_nexus_uri(nx), 0);
        CHECK(c->session >= 0);
    }
    uint64_t end = udrpc__monotonic_ns() + 2000000000ull;
    for (int i = 0; i < n; i++)
        while (!clients[i].connected) {
            CHECK(!clients[i].failed && udrpc__monotonic_ns() < end);
            udrpc_run_event_loop_once(server);
            udrpc_run_event_loop_once(clients[i].rpc);
        }
    for (int i = 0; i < n; i++) {
        struct client *c = &clients[i];
        for (int d = 0; d < DEPTH; d++) {
            CHECK_EQ(udrpc_msgbuf_alloc(c->rpc, MSG, &c->req[d]), 0);
            CHECK_EQ(udrpc_msgbuf_alloc(c->rpc, 8, &c->resp[d]), 0);
            memset(c->req[d].buf, d + i, MSG);
            CHECK_EQ(udrpc_enqueue_request(c->rpc, c->session, REQ_SINK, &c->req[d], &c->resp[d],
                                           cont, (void *)(intptr_t)d), 0);
        }
    }
}

static void teardown(void)
{
    stopping = 1;
    for (int i = 0; i < n_clients; i++)
        udrpc_destroy(clients[i].rpc);
    udrpc_destroy(server);
    stopping = 0;
}

static uint64_t retransmits(void)
{
    uint64_t r = 0;
    for (int i = 0; i < n_clients; i++) {
        udrpc_stats_t st;
        udrpc_get_stats(clients[i].rpc, &st);
        r += st.retransmits;
    }
    return r;
}

/* ------------------------------------------------------------ pacing ---- */

static void test_pacing(udrpc_nexus_t *nx)
{
    /* The link is 4x faster than the session: pacing, not the link, sets
     * the rate. Timely is held still: no additive step, and every sample
     * under T_low (a clean link). */
    const double rate = 100e6; /* 100 MB/s */
    udrpc_timely_params_t tp;
    udrpc__timely_params_default(&tp);
    tp.add_rate_bytes_per_s = 0;
    tp.t_low_us = 100000;
    tp.t_high_us = 200000;
    setup(nx, 1, true, (uint64_t)(4 * rate), 4u << 20, &tp);
    struct session *s = udrpc__session_get(clients[0].rpc, clients[0].session);
    s->cc.t.rate_bytes_per_s = rate;
    s->cc.tsc_per_byte = clients[0].rpc->ccp.tsc_per_s / rate;
    s->cc.paced = true;
    run_all(0.2);
    udrpc__loop_link_reset(server->tp);
    uint64_t t0 = udrpc__monotonic_ns(), cpu0 = thread_cpu_ns();
    run_all(1.0);
    double secs = (double)(udrpc__monotonic_ns() - t0) / 1e9;
    double ran = (double)(thread_cpu_ns() - cpu0) / 1e9 / secs;
    if (ran > 1)
        ran = 1;
    struct udrpc_loop_stats ls;
    udrpc__loop_get_stats(server->tp, &ls);
    udrpc_session_stats_t ss;
    CHECK_EQ(udrpc_get_session_stats(clients[0].rpc, clients[0].session, &ss), 0);
    double got = (double)ls.link_bytes / secs;
    printf("pacing: held at %.1f MB/s, sent %.2f MB/s (%.3fx; the thread ran %.0f%% of the "
           "time: %.3fx of that share) over %.2f s; %llu packets paced, rate now %.1f MB/s\n",
           rate / 1e6, got / 1e6, got / rate, ran * 100, got / (rate * ran), secs,
           (unsigned long long)ss.pkts_paced, ss.rate_bytes_per_s / 1e6);
    CHECK(ss.pkts_paced > 0);
    if (rate_checks)
        CHECK(fabs(got / (rate * ran) - 1) < 0.05);
    if (rate_checks)
        CHECK_EQ(retransmits(), 0);
    teardown();
}

/* ------------------------------------------------------------ incast ---- */

struct incast_result {
    double completed, goodput, qdelay_p99_us, jain, max_backlog, ran;
    uint64_t drops, retransmits;
};

static void incast(udrpc_nexus_t *nx, bool cc, uint64_t link, double measure_s,
                   struct incast_result *r)
{
    /* Timely's defaults are eRPC's, for 25-100 Gbit/s fabrics with 2 us
     * round trips. Two of them are properties of the network, set here
     * for this link: the minimum RTT that normalises the gradient (one
     * 4 KB packet's serialisation, 33 us at 1 Gbit/s, x 1.5, plus 2 x 5 us
     * of propagation) and the additive step (0.8% of the link). */
    udrpc_timely_params_t tp;
    udrpc__timely_params_default(&tp);
    double ser_us = 4096.0 / (double)link * 1e6;
    tp.min_rtt_us = (unsigned)(1.5 * ser_us + 10);
    tp.add_rate_bytes_per_s = 0.008 * (double)link;
    setup(nx, CLIENTS, cc, link, 256u << 10, &tp);
    run_all(1.0); /* convergence */
    udrpc__loop_link_reset(server->tp);
    uint64_t bytes0[CLIENTS], rtx0 = retransmits();
    for (int i = 0; i < CLIENTS; i++)
        bytes0[i] = clients[i].done_bytes;
    uint64_t t0 = udrpc__monotonic_ns(), cpu0 = thread_cpu_ns();
    run_all(measure_s);
    double secs = (double)(udrpc__monotonic_ns() - t0) / 1e9;
    r->ran = (double)(thread_cpu_ns() - cpu0) / 1e9 / secs;
    if (r->ran > 1)
        r->ran = 1;
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < CLIENTS; i++) {
        double x = (double)(clients[i].done_bytes - bytes0[i]);
        sum += x;
        sum_sq += x * x;
    }
    struct udrpc_loop_stats ls;
    udrpc__loop_get_stats(server->tp, &ls);
    /* Goodput: new request bytes through the link (its bytes less headers,
     * less every retransmitted packet: a lower bound). Counting completed
     * 1 MB requests instead would be off by up to the 16 MB in flight. */
    r->retransmits = retransmits() - rtx0;
    double payload = (double)ls.link_bytes * 4080.0 / 4096.0 - (double)r->retransmits * 4080.0;
    r->goodput = payload > 0 ? payload / secs / (double)link : 0;
    r->completed = sum / secs / (double)link;
    r->jain = sum_sq > 0 ? sum * sum / (CLIENTS * sum_sq) : 0;
    r->qdelay_p99_us = udrpc__loop_link_qdelay_us(server->tp, 0.99);
    r->max_backlog = (double)ls.link_max_backlog_bytes;
    r->drops = ls.link_dropped;
    printf("incast, %.0f Mbit/s, Timely %s: goodput >= %.3f of the link (1 MB requests "
           "completed: %.3f; the thread ran %.0f%% of the time), queueing delay p99 %.0f us, "
           "deepest queue %.0f KB of 256, %llu tail drops, %llu retransmissions, Jain %.3f; "
           "rates",
           (double)link * 8 / 1e6, cc ? "on " : "off", r->goodput, r->completed, r->ran * 100,
           r->qdelay_p99_us, r->max_backlog / 1024, (unsigned long long)r->drops,
           (unsigned long long)r->retransmits, r->jain);
    for (int i = 0; i < CLIENTS; i++) {
        udrpc_session_stats_t ss;
        udrpc_get_session_stats(clients[i].rpc, clients[i].session, &ss);
        printf(" %.1f", ss.rate_bytes_per_s / 1e6);
        if (getenv("CC_DEBUG"))
            printf("(min %.0f avg %.0f us)", ss.rtt_min_us, ss.rtt_avg_us);
    }
    printf(" MB/s\n");
    teardown();
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    double measure_s = argc > 2 ? atof(argv[2]) : 2.0;
    uint64_t link = argc > 3 ? strtoull(argv[3], NULL, 10) : 125000000; /* 1 Gbit/s */
    rate_checks = !(argc > 4 && !strcmp(argv[4], "--no-rate-checks"));
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_SINK, sink, UDRPC_HANDLER_FG), 0);
    if (!strcmp(which, "pacing") || !strcmp(which, "all"))
        test_pacing(nx);
    if (!strcmp(which, "incast") || !strcmp(which, "all")) {
        struct incast_result off, on;
        incast(nx, false, link, measure_s, &off);
        incast(nx, true, link, measure_s, &on);
        if (rate_checks) {
            CHECK(on.goodput >= 0.9 * on.ran);
            CHECK(on.qdelay_p99_us < 1000);
            CHECK(on.jain >= 0.9);
            CHECK_EQ(on.retransmits, 0);
        }
    }
    udrpc_nexus_destroy(nx);
    printf("test_cc: ok\n");
    return 0;
}
