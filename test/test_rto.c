/*
 * test_rto.c — the adaptive retransmission timeout on the loop transport's
 * link model: 2 ms of propagation delay each way, so a round trip takes
 * over 4 ms, eight times rto_min (500 us). One session keeps 8 small
 * requests in flight for a warm-up second, then for a measured one.
 *
 *   adaptive:   (rto_min 500 us, rto_max default) after the warm-up, no
 *               retransmission at all; the session's RTO has grown above
 *               its smoothed RTT, which is over 4 ms (asserted).
 *   fixed:      the peer in the same run, the RTO pinned at 500 us
 *               (rto_min = rto_max): every request is resent for nothing
 *               (printed, and asserted to be many, so that the first part
 *               cannot pass by accident).
 *   Also: every request completes exactly once with the right bytes.
 *
 *   test_rto [measure seconds (1)]
 */
#include <errno.h>
#include <string.h>

#include "rpc_internal.h"
#include "test.h"

enum { REQ_ECHO = 1, DEPTH = 8, SIZE = 64, DELAY_US = 2000 };

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    for (size_t i = 0; i < req->size; i++)
        resp->buf[i] = (uint8_t)~req->buf[i];
    udrpc_enqueue_response(h);
    (void)ctx;
}

static struct {
    udrpc_t *srv, *cli;
    int session, connected, stopping;
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
    uint64_t issued[DEPTH], done;
    int calls[DEPTH];
} T;

static void issue(int i);

static void cont(void *ctx, void *tag, int status)
{
    int i = (int)(intptr_t)tag;
    (void)ctx;
    T.calls[i]++;
    CHECK_EQ(T.calls[i], 1);
    if (T.stopping)
        return;
    CHECK_EQ(status, 0);
    CHECK_EQ(T.resp[i].size, SIZE);
    for (int j = 0; j < SIZE; j++)
        CHECK_EQ(T.resp[i].buf[j], (uint8_t)~T.req[i].buf[j]);
    T.done++;
    issue(i);
}

static void issue(int i)
{
    T.calls[i] = 0;
    T.issued[i]++;
    for (int j = 0; j < SIZE; j++)
        T.req[i].buf[j] = (uint8_t)(T.issued[i] * 31 + (uint64_t)j + (uint64_t)i);
    CHECK_EQ(udrpc_enqueue_request(T.cli, T.session, REQ_ECHO, &T.req[i], &T.resp[i], cont,
                                   (void *)(intptr_t)i), 0);
}

static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s, (void)ctx;
    if (ev != UDRPC_SM_CONNECTED) {
        fprintf(stderr, "session event %d: %s\n", ev, udrpc_strerror(err));
        exit(1);
    }
    T.connected = 1;
}

static void run(double seconds)
{
    uint64_t end = udrpc__monotonic_ns() + (uint64_t)(seconds * 1e9);
    while (udrpc__monotonic_ns() < end) {
        udrpc_run_event_loop_once(T.srv);
        udrpc_run_event_loop_once(T.cli);
    }
}

struct result {
    uint64_t rtx, done;
    udrpc_session_stats_t ss;
};

static void one_run(udrpc_nexus_t *nx, unsigned rto_max_us, double secs, struct result *r)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "loop";
    cfg.rto_min_us = 500;
    if (rto_max_us)
        cfg.rto_max_us = rto_max_us;
    cfg.loop.link_bytes_per_s = 1250000000; /* 10 Gbit/s: the delay, not the rate, counts */
    cfg.loop.link_delay_us = DELAY_US;
    memset(&T, 0, sizeof(T));
    T.srv = udrpc_create(nx, 0, NULL, NULL, &cfg);
    T.cli = udrpc_create(nx, 1, NULL, on_sm, &cfg);
    CHECK(T.srv && T.cli);
    T.session = udrpc_connect(T.cli, udrpc_nexus_uri(nx), 0);
    while (!T.connected) {
        udrpc_run_event_loop_once(T.srv);
        udrpc_run_event_loop_once(T.cli);
    }
    for (int i = 0; i < DEPTH; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(T.cli, SIZE, &T.req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(T.cli, SIZE, &T.resp[i]), 0);
        issue(i);
    }
    run(1.0); /* warm-up: the estimator learns the path */
    udrpc_stats_t st0, st1;
    udrpc_get_stats(T.cli, &st0);
    uint64_t done0 = T.done;
    run(secs);
    udrpc_get_stats(T.cli, &st1);
    r->rtx = st1.retransmits - st0.retransmits;
    r->done = T.done - done0;
    CHECK_EQ(udrpc_get_session_stats(T.cli, T.session, &r->ss), 0);
    T.stopping = 1;
    udrpc_destroy(T.cli); /* what is in flight ends with -ECONNRESET, once */
    for (int i = 0; i < DEPTH; i++)
        CHECK_EQ(T.calls[i], 1);
    udrpc_destroy(T.srv);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo, UDRPC_HANDLER_FG), 0);

    struct result ad, fx;
    one_run(nx, 0, secs, &ad);
    printf("adaptive: %llu RPCs, %llu retransmits in steady state; srtt %.0f us, rttvar %.0f "
           "us, rto %.0f us (rto_min 500), %llu samples\n",
           (unsigned long long)ad.done, (unsigned long long)ad.rtx, ad.ss.rtt_avg_us,
           ad.ss.rttvar_us, ad.ss.rto_us, (unsigned long long)ad.ss.rtt_samples);
    one_run(nx, 500, secs, &fx);
    printf("fixed at 500 us (the peer): %llu RPCs, %llu retransmits\n",
           (unsigned long long)fx.done, (unsigned long long)fx.rtx);
    CHECK(ad.done > 0);
    CHECK_EQ(ad.rtx, 0);
    CHECK(ad.ss.rtt_avg_us >= 2.0 * DELAY_US);
    CHECK(ad.ss.rto_us > ad.ss.rtt_avg_us);
    CHECK(fx.rtx >= fx.done); /* each request resent at least once */
    udrpc_nexus_destroy(nx);
    printf("test_rto: ok\n");
    return 0;
}
