/*
 * mlx5_model_bench — the mlx5 fast path's own cost, on the NIC model
 * (test/nicmodel/), next to the loop transport in the same run.
 *
 *   mlx5_model_bench rate  [--seconds S] [--rounds R] [--depth D] [--size B]
 *       One thread, a client and a server endpoint driven alternately,
 *       echo RPCs of B bytes (32) at depth D (64, over D/8 sessions: a
 *       session holds 8 in flight): RPC/s on loop and on
 *       mlx5-model, R rounds (5) of S seconds (1) each, interleaved; then
 *       one more mlx5-model run with the transport's calls timed (TSC)
 *       and the model's share inside them taken out: ns per packet for
 *       post (tx_burst + tx_flush) and poll (rx_burst).
 *   mlx5_model_bench count [--count N] [--depth D] [--size B]
 *       N RPCs on mlx5-model (instrumented for callgrind: only these), then
 *       the packets the transports posted and received: bench/mlx5_cost.sh
 *       runs it under callgrind, collecting only inside the transport's
 *       functions and not inside the model's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "nicmodel/nicmodel.h"
#include "rpc_internal.h"
#include "clock.h"
#include "mlx5.h"
#include "udrpc.h"

static udrpc_nexus_t *nx;
static udrpc_t *cli, *srv;
static int sessions[128], n_sessions, connected;
static unsigned long issued, completed, total;
static udrpc_msgbuf_t reqs[1024], resps[1024];
static uint8_t next_id = 1;
static unsigned long long iterations;

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    if (status != 0) {
        fprintf(stderr, "mlx5_model_bench: request failed: %s\n", udrpc_strerror(status));
        exit(1);
    }
    completed++;
    if (issued < total) {
        issued++;
        unsigned i = (unsigned)(uintptr_t)tag;
        udrpc_enqueue_request(cli, sessions[i % n_sessions], 1, &reqs[i], &resps[i], cont, tag);
    }
}

static void sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s;
    (void)err;
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        connected++;
    else
        connected = -1000;
}

/* The model as the device, without its check of the transport's barrier
 * order (mlx5_nic_ops.event NULL): the transport then runs exactly its
 * hardware path, which is what is measured. */
static struct mlx5_nic_ops bench_model;

static const char *select_transport(const char *transport)
{
    if (strcmp(transport, "mlx5-model") != 0)
        return transport;
    bench_model = nicmodel_ops;
    bench_model.event = NULL;
    udrpc__mlx5_use_nic(&bench_model);
    return "mlx5";
}

static void open_pair(const char *transport, unsigned depth, size_t size)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = select_transport(transport);
    cfg.rto_min_us = cfg.rto_max_us = 1000000; /* no timeouts, under callgrind too */
    cfg.connect_timeout_ms = 30000;
    uint8_t sid = next_id++, cid = next_id++;
    cli = udrpc_create(nx, cid, NULL, sm, &cfg);
    srv = udrpc_create(nx, sid, NULL, NULL, &cfg);
    if (!cli || !srv) {
        fprintf(stderr, "mlx5_model_bench: cannot create %s endpoints\n", transport);
        exit(1);
    }
    /* a session holds 8 requests in flight: depth / 8 sessions */
    connected = 0;
    n_sessions = depth > 8 ? (int)((depth + 7) / 8) : 1;
    for (int i = 0; i < n_sessions; i++)
        sessions[i] = udrpc_connect(cli, udrpc_nexus_uri(nx), sid);
    while (connected >= 0 && connected < n_sessions) {
        udrpc_run_event_loop_once(cli);
        udrpc_run_event_loop_once(srv);
    }
    if (connected < 0)
        exit(1);
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_alloc(cli, size ? size : 1, &reqs[i]);
        udrpc_msgbuf_alloc(cli, size ? size : 1, &resps[i]);
        udrpc_msgbuf_resize(&reqs[i], size);
        memset(reqs[i].buf, (int)i, size);
    }
}

static void close_pair(unsigned depth)
{
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_free(cli, &reqs[i]);
        udrpc_msgbuf_free(cli, &resps[i]);
    }
    udrpc_destroy(cli);
    udrpc_destroy(srv);
}

/* Runs n RPCs, or until deadline_tsc (0: none). Returns those completed. */
static unsigned long run(unsigned long n, unsigned depth, uint64_t deadline_tsc)
{
    issued = completed = 0;
    total = n;
    for (unsigned i = 0; i < depth && issued < total; i++) {
        issued++;
        udrpc_enqueue_request(cli, sessions[i % n_sessions], 1, &reqs[i], &resps[i], cont,
                              (void *)(uintptr_t)i);
    }
    unsigned iter = 0;
    while (completed < total) {
        udrpc_run_event_loop_once(cli);
        udrpc_run_event_loop_once(srv);
        iterations++;
        if (deadline_tsc && (++iter & 63) == 0 && udrpc__rdtsc() > deadline_tsc) {
            total = issued; /* stop issuing; let what is in flight finish */
            deadline_tsc = 0;
        }
    }
    return completed;
}

/* ---- timing shims: the transport's calls, and the model's inside them ---- */

static uint64_t tx_tsc, rx_tsc, model_tx_tsc, model_rx_tsc;
static const struct transport_ops *real_ops;
static struct mlx5_nic_ops timed_model;

static unsigned timed_rx(struct transport *tp, struct tp_rx_pkt *p, unsigned max, uint64_t now)
{
    uint64_t t0 = udrpc__rdtsc();
    unsigned n = real_ops->rx_burst(tp, p, max, now);
    rx_tsc += udrpc__rdtsc() - t0;
    return n;
}

static unsigned timed_tx(struct transport *tp, const struct tp_tx_pkt *p, unsigned n, uint64_t now)
{
    uint64_t t0 = udrpc__rdtsc();
    unsigned k = real_ops->tx_burst(tp, p, n, now);
    tx_tsc += udrpc__rdtsc() - t0;
    return k;
}

static void timed_flush(struct transport *tp)
{
    uint64_t t0 = udrpc__rdtsc();
    real_ops->tx_flush(tp);
    tx_tsc += udrpc__rdtsc() - t0;
}

static void timed_doorbell(void *nic)
{
    uint64_t t0 = udrpc__rdtsc();
    nicmodel_ops.doorbell(nic);
    model_tx_tsc += udrpc__rdtsc() - t0;
}

static void timed_step(void *nic)
{
    uint64_t t0 = udrpc__rdtsc();
    nicmodel_ops.step(nic);
    model_rx_tsc += udrpc__rdtsc() - t0;
}

static uint64_t packets_sent(void)
{
    struct udrpc_mlx5_stats a, b;
    udrpc__mlx5_get_stats(cli->tp, &a);
    udrpc__mlx5_get_stats(srv->tp, &b);
    return a.sent + b.sent;
}

static uint64_t packets_received(void)
{
    struct nicmodel_stats a, b;
    nicmodel_get_stats(udrpc__mlx5_nic(cli->tp), &a);
    nicmodel_get_stats(udrpc__mlx5_nic(srv->tp), &b);
    return a.delivered + b.delivered;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "rate";
    double seconds = 1;
    unsigned rounds = 5, depth = 64;
    unsigned long count = 200000;
    size_t size = 32;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--depth")) depth = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--count")) count = strtoul(argv[i + 1], NULL, 0);
        else {
            fprintf(stderr, "usage: mlx5_model_bench rate|count [--seconds S] [--rounds R] "
                            "[--depth D] [--size B] [--count N]\n");
            return 2;
        }
    }
    if (depth < 1 || depth > 1024 || (depth > 8 && depth % 8) || rounds < 1 || rounds > 100 || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "mlx5_model_bench: bad arguments\n");
        return 2;
    }
    nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    if (!nx || udrpc_register_handler(nx, 1, echo, UDRPC_HANDLER_FG) != 0)
        return 1;
    const struct udrpc_clock *clk = udrpc__clock_init();

    if (!strcmp(mode, "count")) {
        open_pair("mlx5-model", depth, size);
        run(depth * 10ul, depth, 0); /* warm-up */
        uint64_t s0 = packets_sent(), r0 = packets_received();
        /* bench/mlx5_cost.sh starts callgrind with instrumentation off:
         * the connect's spinning is not counted */
        CALLGRIND_START_INSTRUMENTATION;
        run(count, depth, 0);
        CALLGRIND_STOP_INSTRUMENTATION;
        udrpc_stats_t cs;
        udrpc_get_stats(cli, &cs);
        struct udrpc_mlx5_stats ms;
        udrpc__mlx5_get_stats(cli->tp, &ms);
        uint64_t db0 = ms.doorbells;
        udrpc__mlx5_get_stats(srv->tp, &ms);
        db0 += ms.doorbells;
        printf("mlx5_model_bench count: %lu RPCs of %zu B at depth %u: %llu packets posted, "
               "%llu received (these %llu and %llu with the connect); retransmits %llu, "
               "event loop iterations %llu, doorbells %llu\n",
               count, size, depth, (unsigned long long)(packets_sent() - s0),
               (unsigned long long)(packets_received() - r0), (unsigned long long)packets_sent(),
               (unsigned long long)packets_received(), (unsigned long long)cs.retransmits,
               (unsigned long long)iterations, (unsigned long long)db0);
        close_pair(depth);
        udrpc_nexus_destroy(nx);
        return 0;
    }

    double loop_r[100], mlx5_r[100], ratio[100];
    uint64_t span = (uint64_t)(seconds * 1e9 * clk->tsc_per_ns);
    for (unsigned r = 0; r < rounds; r++) {
        for (int t = 0; t < 2; t++) {
            const char *tp = t ? "mlx5-model" : "loop";
            open_pair(tp, depth, size);
            run(depth * 100ul, depth, 0); /* warm-up */
            uint64_t t0 = udrpc__rdtsc();
            unsigned long done = run(~0ul, depth, t0 + span);
            double s = (double)(udrpc__rdtsc() - t0) * clk->ns_per_tsc / 1e9;
            (t ? mlx5_r : loop_r)[r] = done / s;
            close_pair(depth);
        }
        ratio[r] = mlx5_r[r] / loop_r[r];
        printf("round %u: loop %.0f RPC/s, mlx5-model %.0f RPC/s, ratio %.3f\n", r + 1, loop_r[r],
               mlx5_r[r], ratio[r]);
    }
    qsort(loop_r, rounds, sizeof(double), cmp_double);
    qsort(mlx5_r, rounds, sizeof(double), cmp_double);
    qsort(ratio, rounds, sizeof(double), cmp_double);
    printf("median of %u: loop %.0f RPC/s, mlx5-model %.0f RPC/s, ratio %.3f (min %.3f, max %.3f)\n",
           rounds, loop_r[rounds / 2], mlx5_r[rounds / 2], ratio[rounds / 2], ratio[0],
           ratio[rounds - 1]);

    /* ns per packet: the transport's calls timed, the model's taken out */
    timed_model = nicmodel_ops;
    timed_model.event = NULL; /* the hardware path (see select_transport) */
    timed_model.doorbell = timed_doorbell;
    timed_model.step = timed_step;
    udrpc__mlx5_use_nic(&timed_model);
    open_pair("mlx5", depth, size);
    run(depth * 100ul, depth, 0);
    real_ops = cli->tp_ops;
    static struct transport_ops shim;
    shim = *real_ops;
    shim.rx_burst = timed_rx;
    shim.tx_burst = timed_tx;
    shim.tx_flush = timed_flush;
    cli->tp_ops = srv->tp_ops = &shim;
    uint64_t s0 = packets_sent(), r0 = packets_received();
    tx_tsc = rx_tsc = model_tx_tsc = model_rx_tsc = 0;
    uint64_t t0 = udrpc__rdtsc();
    unsigned long done = run(~0ul, depth, t0 + span);
    uint64_t elapsed_tsc = udrpc__rdtsc() - t0;
    uint64_t sent = packets_sent() - s0, recv = packets_received() - r0;
    double ns = clk->ns_per_tsc;
    printf("timed run: %lu RPCs, %llu packets posted, %llu received\n", done,
           (unsigned long long)sent, (unsigned long long)recv);
    printf("  post (tx_burst + tx_flush): %.1f ns per packet of the transport's own, "
           "%.1f ns in the model\n", (double)(tx_tsc - model_tx_tsc) * ns / (double)sent,
           (double)model_tx_tsc * ns / (double)sent);
    printf("  poll (rx_burst): %.1f ns per packet of the transport's own, %.1f ns in the model\n",
           (double)(rx_tsc - model_rx_tsc) * ns / (double)recv, (double)model_rx_tsc * ns / (double)recv);
    /* The same run with the model's time taken out: the rate the runtime
     * and the transport would reach if the device cost the CPU nothing. */
    double model_s = (double)(model_tx_tsc + model_rx_tsc) * ns / 1e9;
    double run_s = (double)elapsed_tsc * ns / 1e9;
    double excl = done / (run_s - model_s);
    printf("  without the model's time (%.0f%% of the run): %.0f RPC/s, ratio to loop's median %.3f "
           "(with the timing calls' own cost in it)\n",
           100 * model_s / run_s, excl, excl / loop_r[rounds / 2]);
    cli->tp_ops = srv->tp_ops = real_ops;
    close_pair(depth);
    udrpc_nexus_destroy(nx);
    return 0;
}
