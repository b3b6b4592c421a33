/*
 * rpc_bench — udrpc request/response sweeps (sizes x depths), with peers
 * measured in the same run on the same cores: the project's raw UDP echo
 * (recvmmsg/sendmmsg, no protocol: the kernel's floor) and sockperf
 * ping-pong when installed. Ratios to the peers are what to quote: these
 * machines are shared and noisy.
 *
 *   rpc_bench [--transport auto|udp|loop] [--sizes 32,4096] [--depths 1,8,64]
 *             [--sessions N] [--duration S] [--threads]
 *             [--server-core N] [--client-core N] [--peers] [--verify]
 *             [--json FILE] [--csv FILE] [--plot DIR] [--cc] [--host ADDR]
 *
 * --host binds every end, udrpc's and the peers', to ADDR: 127.0.0.1 (the
 * default), or an IPv6 address such as ::1 (bench/ipv6_bench.sh runs both
 * in turn and prints their ratio).
 * --cc turns Timely on (also UDRPC_CC=1) and prints, under each point, the
 * client sessions' rates and RTTs and the packets that were paced.
 * The server is a separate process (--threads: a second thread; loop: a
 * second endpoint in the client's thread, which measures the runtime
 * alone). Requests in flight (depth) are spread over --sessions sessions;
 * one session holds 8 at most, the rest wait in it. Each point runs 0.3 s
 * of warm-up, then --duration seconds of measurement. Latency comes from a
 * log-bucketed histogram filled per request; CPU time is each side's Rpc
 * thread (getrusage RUSAGE_THREAD; the server reports its own over an RPC).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench_util.h"
#include "clock.h"
#include "udrpc.h"

#define MAX_LIST 16
#define MAX_DEPTH 1024
#define MAX_SESSIONS 128
#define WARMUP_US 300000

enum { REQ_ECHO = 1, REQ_SERVER_INFO = 2 };

static struct {
    const char *transport;
    size_t sizes[MAX_LIST];
    unsigned n_sizes;
    unsigned depths[MAX_LIST];
    unsigned n_depths;
    unsigned sessions;
    double duration_s;
    int server_core, client_core;
    int threads, peers, verify;
    const char *json, *csv, *plot;
    int cc;
    const char *host;
} opt = { "auto", { 32 }, 1, { 1, 8, 64 }, 3, 1, 2.0, 1, 0, 0, 0, 0, NULL, NULL, NULL, 0,
          "127.0.0.1" };

struct point {
    size_t size;
    unsigned depth, sessions;
    struct bench_result r;
    double gbps, cpu_client_s, cpu_server_s, rpc_per_core;
    uint64_t retransmits;
    int have_raw, have_gso, have_sp;
    struct bench_result raw, gso, sp;
    /* congestion control (--cc), over the client's sessions at the end */
    double cc_rate_min, cc_rate_avg, cc_rate_max, cc_rtt_min_us, cc_rtt_avg_us;
    double pkts_per_send; /* udp: datagrams per send of the client (GSO) */
    uint64_t cc_paced;
};

static uint64_t thread_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* ------------------------------------------------------------ server ---- */

static udrpc_t *g_server_rpc; /* for REQ_SERVER_INFO's stats */

static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    if (resp)
        memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

/* The server's own CPU time and retransmissions, for the client. */
static void info_handler(udrpc_req_handle_t *h, void *ctx)
{
    uint64_t v[2] = { thread_cpu_ns(), 0 };
    udrpc_stats_t st;
    if (g_server_rpc && udrpc_get_stats(g_server_rpc, &st) == 0)
        v[1] = st.retransmits;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, sizeof(v));
    if (resp)
        memcpy(resp->buf, v, sizeof(v));
    udrpc_enqueue_response(h);
    (void)ctx;
}

static udrpc_nexus_t *bench_nexus(void)
{
    char uri[UDRPC_MAX_URI_LEN];
    snprintf(uri, sizeof(uri), strchr(opt.host, ':') ? "[%s]:0" : "%s:0", opt.host);
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, NULL);
    if (!nx || udrpc_register_handler(nx, REQ_ECHO, echo_handler, UDRPC_HANDLER_FG) != 0 ||
        udrpc_register_handler(nx, REQ_SERVER_INFO, info_handler, UDRPC_HANDLER_FG) != 0) {
        perror("rpc_bench: udrpc_nexus_create");
        exit(1);
    }
    return nx;
}

static udrpc_config_t bench_cfg(void)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    if (strcmp(opt.transport, "auto") != 0)
        cfg.transport = opt.transport;
    if (opt.cc)
        cfg.cc = true;
    return cfg;
}

static atomic_int server_stop, server_ready;

static void serve(udrpc_nexus_t *nx, int fd_out, char *uri_out)
{
    udrpc_config_t cfg = bench_cfg();
    udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
    if (!rpc) {
        perror("rpc_bench: server udrpc_create");
        exit(1);
    }
    g_server_rpc = rpc;
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    strcpy(uri, udrpc_nexus_uri(nx));
    if (fd_out >= 0) {
        if (write(fd_out, uri, sizeof(uri)) != (ssize_t)sizeof(uri))
            exit(1);
        close(fd_out);
    } else {
        strcpy(uri_out, uri);
        atomic_store(&server_ready, 1);
    }
    while (!atomic_load_explicit(&server_stop, memory_order_relaxed))
        udrpc_run_event_loop_once(rpc);
    udrpc_destroy(rpc);
}

static int server_process(void *arg, int fd)
{
    (void)arg;
    bench_pin_cpu(opt.server_core);
    serve(bench_nexus(), fd, NULL);
    return 0;
}

struct server_thread_arg {
    udrpc_nexus_t *nx;
    char uri[UDRPC_MAX_URI_LEN];
};

static void *server_thread(void *p)
{
    struct server_thread_arg *a = p;
    bench_pin_cpu(opt.server_core);
    serve(a->nx, -1, a->uri); /* sets server_ready once a->uri is written */
    return NULL;
}

/* ------------------------------------------------------------ client ---- */

struct slot {
    udrpc_msgbuf_t req, resp;
    uint64_t sent_tsc, req_hash;
    int session;
};

static struct {
    udrpc_t *rpc, *local; /* local: the loop transport's server endpoint */
    int sessions[MAX_SESSIONS];
    unsigned connected;
    int failed_conn;
    int issuing;
    uint64_t warm_end, measure_end, done, in_flight, verify_errors;
    struct lat_hist hist;
    struct slot slots[MAX_DEPTH];
    uint64_t info[2];
    int info_done;
    udrpc_msgbuf_t info_req, info_resp;
} cl;

static void client_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)session;
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED) {
        cl.connected++;
    } else {
        fprintf(stderr, "rpc_bench: session event %d: %s\n", ev, udrpc_strerror(err));
        cl.failed_conn = 1;
    }
}

static void pump(void)
{
    udrpc_run_event_loop_once(cl.rpc);
    if (cl.local)
        udrpc_run_event_loop_once(cl.local);
}

static void cont(void *ctx, void *tag, int status);

static void send_slot(struct slot *s)
{
    s->sent_tsc = udrpc__rdtsc();
    int ret = udrpc_enqueue_request(cl.rpc, s->session, REQ_ECHO, &s->req, &s->resp, cont, s);
    if (ret) {
        fprintf(stderr, "rpc_bench: enqueue: %s\n", udrpc_strerror(ret));
        exit(1);
    }
    cl.in_flight++;
}

static void cont(void *ctx, void *tag, int status)
{
    struct slot *s = tag;
    uint64_t now = udrpc__rdtsc();
    (void)ctx;
    cl.in_flight--;
    if (status != 0) {
        fprintf(stderr, "rpc_bench: request failed: %s\n", udrpc_strerror(status));
        exit(1);
    }
    if (opt.verify && (s->resp.size != s->req.size ||
                       XXH3_64bits(s->resp.buf, s->resp.size) != s->req_hash))
        cl.verify_errors++;
    if (now >= cl.warm_end && now < cl.measure_end) {
        hist_add(&cl.hist, now - s->sent_tsc);
        cl.done++;
    }
    if (cl.issuing)
        send_slot(s);
}

static void info_cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    (void)tag;
    if (status == 0)
        memcpy(cl.info, cl.info_resp.buf, sizeof(cl.info));
    cl.info_done = status == 0 ? 1 : -1;
}

/* Asks the server for its CPU time and retransmissions (loop: shared
 * thread, so the server's CPU is counted with the client's). */
static void server_info(uint64_t *cpu_ns, uint64_t *retx)
{
    cl.info_done = 0;
    udrpc_enqueue_request(cl.rpc, cl.sessions[0], REQ_SERVER_INFO, &cl.info_req, &cl.info_resp,
                          info_cont, NULL);
    while (cl.info_done == 0)
        pump();
    *cpu_ns = cl.local ? 0 : cl.info[0];
    *retx = cl.info[1];
}

static void run_point(size_t size, unsigned depth, struct point *pt)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    memset(&cl.hist, 0, sizeof(cl.hist));
    cl.done = 0;
    for (unsigned i = 0; i < depth; i++) {
        struct slot *s = &cl.slots[i];
        if (udrpc_msgbuf_alloc(cl.rpc, size ? size : 1, &s->req) != 0 ||
            udrpc_msgbuf_alloc(cl.rpc, size ? size : 1, &s->resp) != 0) {
            fprintf(stderr, "rpc_bench: out of message buffers\n");
            exit(1);
        }
        udrpc_msgbuf_resize(&s->req, size);
        for (size_t j = 0; j < size; j++)
            s->req.buf[j] = (uint8_t)(j * 7 + i);
        s->req_hash = XXH3_64bits(s->req.buf, size);
        s->session = cl.sessions[i % opt.sessions];
    }
    udrpc_stats_t st0, st1;
    uint64_t srv_cpu0, srv_cpu1, srv_retx0, srv_retx1;
    uint64_t start = udrpc__rdtsc();
    cl.warm_end = start + udrpc__us_to_tsc(ck, WARMUP_US);
    cl.measure_end = UINT64_MAX;
    cl.issuing = 1;
    for (unsigned i = 0; i < depth; i++)
        send_slot(&cl.slots[i]);
    while (udrpc__rdtsc() < cl.warm_end)
        pump();
    /* The measured window starts here. */
    uint64_t t0 = udrpc__rdtsc(), cli_cpu0 = thread_cpu_ns();
    cl.warm_end = t0;
    udrpc_get_stats(cl.rpc, &st0);
    server_info(&srv_cpu0, &srv_retx0);
    uint64_t end = t0 + udrpc__us_to_tsc(ck, (uint64_t)(opt.duration_s * 1e6));
    uint64_t iter = 0;
    while ((++iter & 63) || udrpc__rdtsc() < end)
        pump();
    uint64_t t1 = udrpc__rdtsc(), cli_cpu1 = thread_cpu_ns();
    cl.measure_end = t1;
    udrpc_get_stats(cl.rpc, &st1);
    server_info(&srv_cpu1, &srv_retx1);
    /* Drain: let every request finish before the buffers go. */
    cl.issuing = 0;
    while (cl.in_flight)
        pump();
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_free(cl.rpc, &cl.slots[i].req);
        udrpc_msgbuf_free(cl.rpc, &cl.slots[i].resp);
    }
    double secs = udrpc__tsc_to_ns(ck, t1 - t0) / 1e9;
    pt->size = size;
    pt->depth = depth;
    pt->sessions = opt.sessions;
    pt->r.count = cl.done;
    pt->r.rpc_per_s = (double)cl.done / secs;
    hist_summarize(&cl.hist, ck->ns_per_tsc, &pt->r);
    pt->gbps = pt->r.rpc_per_s * (double)size * 2 * 8 / 1e9; /* request + response */
    pt->retransmits = (st1.retransmits - st0.retransmits) + (srv_retx1 - srv_retx0);
    uint64_t tx = st1.pkts_tx - st0.pkts_tx, gso_pkts = st1.udp_gso_pkts - st0.udp_gso_pkts;
    uint64_t sends = st1.udp_gso_sends - st0.udp_gso_sends + (tx - gso_pkts);
    pt->pkts_per_send = sends ? (double)tx / (double)sends : 0;
    pt->cpu_client_s = (double)(cli_cpu1 - cli_cpu0) / 1e9;
    pt->cpu_server_s = (double)(srv_cpu1 - srv_cpu0) / 1e9;
    double cores = (pt->cpu_client_s + pt->cpu_server_s) / secs;
    pt->rpc_per_core = cores > 0 ? pt->r.rpc_per_s / cores : 0;
    pt->cc_rate_min = pt->cc_rtt_min_us = 1e300;
    pt->cc_rate_max = pt->cc_rate_avg = pt->cc_rtt_avg_us = 0;
    pt->cc_paced = 0;
    for (unsigned i = 0; i < opt.sessions; i++) {
        udrpc_session_stats_t ss;
        if (udrpc_get_session_stats(cl.rpc, cl.sessions[i], &ss) != 0)
            continue;
        pt->cc_rate_avg += ss.rate_bytes_per_s / opt.sessions;
        pt->cc_rtt_avg_us += ss.rtt_avg_us / opt.sessions;
        if (ss.rate_bytes_per_s < pt->cc_rate_min)
            pt->cc_rate_min = ss.rate_bytes_per_s;
        if (ss.rate_bytes_per_s > pt->cc_rate_max)
            pt->cc_rate_max = ss.rate_bytes_per_s;
        if (ss.rtt_samples && ss.rtt_min_us < pt->cc_rtt_min_us)
            pt->cc_rtt_min_us = ss.rtt_min_us;
        pt->cc_paced += ss.pkts_paced;
    }
    if (pt->cc_rtt_min_us > 1e299)
        pt->cc_rtt_min_us = 0;
}

/* sockperf ping-pong (depth 1), when installed. It reports one-way latency
 * (RTT/2), so its percentiles are doubled here to compare round trips. */
static int run_sockperf(size_t size, struct bench_result *r)
{
    if (size > 65000 || system("command -v sockperf >/dev/null 2>&1") != 0)
        return -1;
    if (strchr(opt.host, ':')) {
        static int said;
        if (!said++)
            fprintf(stderr, "rpc_bench: no sockperf row over IPv6 (Debian 12's sockperf 3.7 "
                            "takes IPv4 addresses only)\n");
        return -1;
    }
    char cmd[512];
    int port = 20000 + (int)(getpid() % 20000);
    double secs = opt.duration_s < 1 ? 1 : opt.duration_s;
    snprintf(cmd, sizeof(cmd),
             "taskset -c %d sockperf server -i %s -p %d >/dev/null 2>&1 & SP=$!; sleep 0.3; "
             "taskset -c %d sockperf ping-pong -i %s -p %d -m %zu -t %.0f 2>&1; kill $SP",
             opt.server_core < 0 ? 0 : opt.server_core, opt.host, port,
             opt.client_core < 0 ? 0 : opt.client_core, opt.host, port, size < 14 ? 14 : size,
             secs);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int got = 0;
    memset(r, 0, sizeof(*r));
    while (fgets(line, sizeof(line), f)) {
        static const struct { const char *key; size_t off; } keys[] = {
            { "percentile 50.000 =", offsetof(struct bench_result, p50_us) },
            { "percentile 90.000 =", offsetof(struct bench_result, p90_us) },
            { "percentile 99.000 =", offsetof(struct bench_result, p99_us) },
            { "percentile 99.900 =", offsetof(struct bench_result, p999_us) },
            { "<MAX> observation =", offsetof(struct bench_result, max_us) },
        };
        double v;
        char *p;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if ((p = strstr(line, keys[k].key)) && sscanf(p + 19, "%lf", &v) == 1) {
                *(double *)((char *)r + keys[k].off) = 2 * v;
                got++;
            }
        unsigned long long msgs;
        double run;
        if ((p = strstr(line, "[Valid Duration] RunTime=")) &&
            sscanf(p, "[Valid Duration] RunTime=%lf sec; SentMessages=%*u; ReceivedMessages=%llu",
                   &run, &msgs) == 2 && run > 0)
            r->rpc_per_s = (double)msgs / run;
    }
    pclose(f);
    return got ? 0 : -1;
}

/* ----------------------------------------------------------- output ---- */

static void print_header(void)
{
    printf("%8s %5s %-14s %11s %8s %8s %8s %8s %9s %9s %6s %6s %6s %11s\n", "size", "depth",
           "what", "RPC/s", "Gbit/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us",
           "retx", "cpu c", "cpu s", "RPC/s/core");
}

static void print_row(size_t size, unsigned depth, const char *what, const struct bench_result *r,
                      const struct point *pt)
{
    printf("%8zu %5u %-14s %11.0f %8.3f %8.2f %8.2f %8.2f %9.2f %9.1f", size, depth, what,
           r->rpc_per_s, r->rpc_per_s * (double)size * 16 / 1e9, r->p50_us, r->p90_us,
           r->p99_us, r->p999_us, r->max_us);
    if (pt)
        printf(" %6llu %5.0f%% %5.0f%% %11.0f", (unsigned long long)pt->retransmits,
               100 * pt->cpu_client_s / opt.duration_s, 100 * pt->cpu_server_s / opt.duration_s,
               pt->rpc_per_core);
    printf("\n");
}

static void print_ratio(size_t size, unsigned depth, const char *vs, const struct bench_result *u,
                        const struct bench_result *p)
{
    printf("%8zu %5u %-14s %10.2fx %8s %7.2fx %8s %7.2fx   (udrpc / %s)\n", size, depth, "ratio",
           p->rpc_per_s > 0 ? u->rpc_per_s / p->rpc_per_s : 0, "",
           p->p50_us > 0 ? u->p50_us / p->p50_us : 0, "", p->p99_us > 0 ? u->p99_us / p->p99_us : 0,
           vs);
}

static void git_commit(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = popen("git -C " UDRPC_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null", "r");
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        pclose(f);
    }
}

static void write_json(const char *path, const struct point *pts, unsigned n, const char *tp)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    char commit[64], host[256] = "unknown";
    git_commit(commit, sizeof(commit));
    gethostname(host, sizeof(host) - 1);
    fprintf(f, "[\n");
    for (unsigned i = 0; i < n; i++) {
        const struct point *p = &pts[i];
        fprintf(f,
                "  {\"transport\": \"%s\", \"size\": %zu, \"depth\": %u, \"sessions\": %u, "
                "\"rpc_per_s\": %.1f, \"goodput_gbps\": %.4f, \"p50_us\": %.3f, "
                "\"p90_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, \"max_us\": %.3f, "
                "\"retransmits\": %llu, \"cpu_client_s\": %.4f, \"cpu_server_s\": %.4f, "
                "\"rpc_per_s_per_core\": %.1f, \"raw_udp_rpc_per_s\": %.1f, "
                "\"raw_udp_p50_us\": %.3f, \"gso_udp_rpc_per_s\": %.1f, "
                "\"gso_udp_p50_us\": %.3f, \"sockperf_p50_us\": %.3f, "
                "\"udp_gso_pkts_per_send\": %.2f, "
                "\"cc\": %s, \"cc_rate_avg_mb_per_s\": %.3f, \"cc_rtt_avg_us\": %.2f, "
                "\"cc_rtt_min_us\": %.2f, \"cc_pkts_paced\": %llu, "
                "\"commit\": \"%s\", \"host\": \"%s\"}%s\n",
                tp, p->size, p->depth, p->sessions, p->r.rpc_per_s, p->gbps, p->r.p50_us,
                p->r.p90_us, p->r.p99_us, p->r.p999_us, p->r.max_us,
                (unsigned long long)p->retransmits, p->cpu_client_s, p->cpu_server_s,
                p->rpc_per_core, p->have_raw ? p->raw.rpc_per_s : 0,
                p->have_raw ? p->raw.p50_us : 0, p->have_gso ? p->gso.rpc_per_s : 0,
                p->have_gso ? p->gso.p50_us : 0, p->have_sp ? p->sp.p50_us : 0,
                p->pkts_per_send, opt.cc ? "true" : "false", p->cc_rate_avg / 1e6, p->cc_rtt_avg_us,
                p->cc_rtt_min_us, (unsigned long long)p->cc_paced, commit, host,
                i + 1 < n ? "," : "");
    }
    fprintf(f, "]\n");
    fclose(f);
}

static void write_csv(const char *path, const struct point *pts, unsigned n, const char *tp)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    fprintf(f, "transport,size,depth,sessions,rpc_per_s,goodput_gbps,p50_us,p90_us,p99_us,"
               "p999_us,max_us,retransmits,cpu_client_s,cpu_server_s,rpc_per_s_per_core,"
               "raw_udp_rpc_per_s,raw_udp_p50_us,gso_udp_rpc_per_s,gso_udp_p50_us,"
               "sockperf_p50_us,udp_gso_pkts_per_send\n");
    for (unsigned i = 0; i < n; i++) {
        const struct point *p = &pts[i];
        fprintf(f, "%s,%zu,%u,%u,%.1f,%.4f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%.4f,%.4f,%.1f,%.1f,"
                   "%.3f,%.1f,%.3f,%.3f,%.2f\n",
                tp, p->size, p->depth, p->sessions, p->r.rpc_per_s, p->gbps, p->r.p50_us,
                p->r.p90_us, p->r.p99_us, p->r.p999_us, p->r.max_us,
                (unsigned long long)p->retransmits, p->cpu_client_s, p->cpu_server_s,
                p->rpc_per_core, p->have_raw ? p->raw.rpc_per_s : 0,
                p->have_raw ? p->raw.p50_us : 0, p->have_gso ? p->gso.rpc_per_s : 0,
                p->have_gso ? p->gso.p50_us : 0, p->have_sp ? p->sp.p50_us : 0,
                p->pkts_per_send);
    }
    fclose(f);
}

/* Throughput vs depth (a line per size) and latency vs size (p50 and p99,
 * a line per depth), as SVG through gnuplot. */
static void write_plots(const char *dir, const struct point *pts, unsigned n, const char *tp)
{
    char path[1024];
    snprintf(path, sizeof(path), "mkdir -p '%s'", dir);
    if (system(path) != 0)
        return;
    snprintf(path, sizeof(path), "%s/bench.dat", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    fprintf(f, "# size depth rpc_per_s p50_us p99_us raw_udp_rpc_per_s gso_udp_rpc_per_s\n");
    for (unsigned i = 0; i < n; i++)
        fprintf(f, "%zu %u %.1f %.3f %.3f %.1f %.1f\n", pts[i].size, pts[i].depth,
                pts[i].r.rpc_per_s, pts[i].r.p50_us, pts[i].r.p99_us,
                pts[i].have_raw ? pts[i].raw.rpc_per_s : 0,
                pts[i].have_gso ? pts[i].gso.rpc_per_s : 0);
    fclose(f);
    /* The same points grouped by depth: a latency line per depth needs its
     * rows together (gnuplot breaks a line at every filtered-out row). */
    snprintf(path, sizeof(path), "%s/bench_by_depth.dat", dir);
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    fprintf(f, "# size depth rpc_per_s p50_us p99_us raw_udp_rpc_per_s gso_udp_rpc_per_s\n");
    for (unsigned di = 0; di < opt.n_depths; di++)
        for (unsigned i = 0; i < n; i++)
            if (pts[i].depth == opt.depths[di])
                fprintf(f, "%zu %u %.1f %.3f %.3f %.1f %.1f\n", pts[i].size, pts[i].depth,
                        pts[i].r.rpc_per_s, pts[i].r.p50_us, pts[i].r.p99_us,
                        pts[i].have_raw ? pts[i].raw.rpc_per_s : 0,
                        pts[i].have_gso ? pts[i].gso.rpc_per_s : 0);
    fclose(f);
    snprintf(path, sizeof(path), "%s/plots.gp", dir);
    f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "set terminal svg size 800,500 dynamic background rgb 'white'\n"
               "set grid\nset key outside right\nset logscale x 2\n"
               "sizes = \"");
    for (unsigned i = 0; i < opt.n_sizes; i++)
        fprintf(f, "%zu ", opt.sizes[i]);
    fprintf(f, "\"\ndepths = \"");
    for (unsigned i = 0; i < opt.n_depths; i++)
        fprintf(f, "%u ", opt.depths[i]);
    fprintf(f, "\"\n"
               "set output '%s/throughput_vs_depth.svg'\n"
               "set title 'udrpc over %s: throughput vs requests in flight'\n"
               "set xlabel 'depth (requests in flight)'\nset ylabel 'RPC/s'\n"
               "plot for [s in sizes] '%s/bench.dat' using ($1 == s+0 ? $2 : 1/0):3 "
               "with linespoints title s.' B', "
               "for [s in sizes] '%s/bench.dat' using ($1 == s+0 && $6 > 0 ? $2 : 1/0):6 "
               "with linespoints dashtype 3 title 'plain UDP echo, '.s.' B', "
               "for [s in sizes] '%s/bench.dat' using ($1 == s+0 && $7 > 0 ? $2 : 1/0):7 "
               "with linespoints dashtype 2 title 'GSO UDP echo, '.s.' B'\n"
               "set output '%s/latency_vs_size.svg'\n"
               "set title 'udrpc over %s: round-trip latency vs message size'\n"
               "set xlabel 'request and response size (bytes)'\nset ylabel 'microseconds'\n"
               "set logscale y 10\n"
               "plot for [d in depths] '%s/bench_by_depth.dat' using ($2 == d+0 ? $1 : 1/0):4 "
               "with linespoints title 'p50, depth '.d, "
               "for [d in depths] '%s/bench_by_depth.dat' using ($2 == d+0 ? $1 : 1/0):5 "
               "with linespoints dashtype 2 title 'p99, depth '.d\n",
            dir, tp, dir, dir, dir, dir, tp, dir, dir);
    fclose(f);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "rpc_bench: gnuplot not found, plots skipped (data and script in %s): "
                        "apt-get install gnuplot-nox\n", dir);
        return;
    }
    snprintf(path, sizeof(path), "gnuplot '%s/plots.gp'", dir);
    if (system(path) == 0)
        printf("plots: %s/throughput_vs_depth.svg %s/latency_vs_size.svg\n", dir, dir);
    else
        fprintf(stderr, "rpc_bench: gnuplot failed on %s/plots.gp\n", dir);
}

static void progress(unsigned done, unsigned total, double secs_left)
{
    if (!isatty(2) || total < 2)
        return;
    char bar[41];
    unsigned fill = total ? done * 40 / total : 40;
    for (unsigned i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %u/%u points, about %.0f s left ", bar, done, total, secs_left);
    if (done == total)
        fprintf(stderr, "\r%60s\r", "");
    fflush(stderr);
}

/* -------------------------------------------------------------- main ---- */

static unsigned parse_list(const char *v, unsigned long *out, unsigned max)
{
    unsigned n = 0;
    const char *s = v;
    while (*s && n < max) {
        char *end;
        unsigned long x = strtoul(s, &end, 0);
        if (end == s)
            break;
        out[n++] = x;
        s = *end == ',' ? end + 1 : end;
        if (!*end)
            break;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rpc_bench [--transport auto|udp|loop] [--sizes 32,4096] [--depths 1,8,64]\n"
            "                 [--sessions N] [--duration S] [--threads] [--server-core N]\n"
            "                 [--client-core N] [--peers] [--verify] [--json FILE]\n"
            "                 [--csv FILE] [--plot DIR] [--cc] [--host 127.0.0.1|::1|ADDR]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--threads")) { opt.threads = 1; continue; }
        if (!strcmp(k, "--peers")) { opt.peers = 1; continue; }
        if (!strcmp(k, "--no-peers")) { opt.peers = 0; continue; }
        if (!strcmp(k, "--verify")) { opt.verify = 1; continue; }
        if (!strcmp(k, "--cc")) { opt.cc = 1; continue; }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        unsigned long list[MAX_LIST];
        if (!strcmp(k, "--transport")) opt.transport = v;
        else if (!strcmp(k, "--size") || !strcmp(k, "--sizes")) {
            opt.n_sizes = parse_list(v, list, MAX_LIST);
            for (unsigned j = 0; j < opt.n_sizes; j++)
                opt.sizes[j] = list[j];
        } else if (!strcmp(k, "--depths")) {
            opt.n_depths = parse_list(v, list, MAX_LIST);
            for (unsigned j = 0; j < opt.n_depths; j++)
                if (list[j] < 1 || list[j] > MAX_DEPTH)
                    usage();
                else
                    opt.depths[j] = (unsigned)list[j];
        } else if (!strcmp(k, "--sessions")) opt.sessions = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(k, "--duration")) opt.duration_s = atof(v);
        else if (!strcmp(k, "--server-core")) opt.server_core = atoi(v);
        else if (!strcmp(k, "--client-core")) opt.client_core = atoi(v);
        else if (!strcmp(k, "--json")) opt.json = v;
        else if (!strcmp(k, "--csv")) opt.csv = v;
        else if (!strcmp(k, "--plot")) opt.plot = v;
        else if (!strcmp(k, "--host")) opt.host = v;
        else usage();
    }
    unsigned char ip[16]; /* an address literal, never a name (it reaches a shell) */
    if (!opt.n_sizes || !opt.n_depths || opt.sessions < 1 || opt.sessions > MAX_SESSIONS ||
        opt.duration_s <= 0 ||
        (inet_pton(AF_INET, opt.host, ip) != 1 && inet_pton(AF_INET6, opt.host, ip) != 1))
        usage();
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        opt.server_core = opt.client_core = -1;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    udrpc__clock_init();
    unsigned total = opt.n_sizes * opt.n_depths, done = 0;
    struct point *pts = calloc(total, sizeof(*pts));
    int want_peers = opt.peers && strcmp(opt.transport, "loop") != 0;
    double per_point = opt.duration_s + 0.4;

    /* Peers first, on the same cores, while nothing of udrpc runs: an idle
     * udrpc endpoint would spin beside them, and would lose its sessions
     * while nobody polled it. */
    if (want_peers) {
        for (unsigned si = 0; si < opt.n_sizes; si++) {
            struct bench_result sp;
            int have_sp = run_sockperf(opt.sizes[si], &sp) == 0;
            for (unsigned di = 0; di < opt.n_depths; di++) {
                struct point *pt = &pts[si * opt.n_depths + di];
                progress(done, total * 2, per_point * (total * 2 - done));
                done++;
                if (opt.sizes[si] <= 65507 &&
                    udp_echo_run(opt.host, opt.sizes[si], opt.depths[di], opt.duration_s,
                                 opt.server_core, opt.client_core, 0, &pt->raw) == 0)
                    pt->have_raw = 1;
                if (opt.sizes[si] <= 65507 &&
                    udp_echo_run(opt.host, opt.sizes[si], opt.depths[di], opt.duration_s,
                                 opt.server_core, opt.client_core, 1, &pt->gso) == 0)
                    pt->have_gso = 1;
                if (have_sp && opt.depths[di] == 1) {
                    pt->have_sp = 1;
                    pt->sp = sp;
                }
            }
        }
    }

    udrpc_nexus_t *nx = bench_nexus();
    udrpc_config_t cfg = bench_cfg();
    size_t max_size = 0;
    for (unsigned i = 0; i < opt.n_sizes; i++)
        if (opt.sizes[i] > max_size)
            max_size = opt.sizes[i];
    if (max_size > cfg.max_msg_size) {
        fprintf(stderr, "rpc_bench: sizes above %zu need a larger max_msg_size\n", cfg.max_msg_size);
        return 2;
    }

    /* The server: a process (default), a thread, or (loop) this thread. */
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    pid_t server_pid = -1;
    pthread_t st;
    struct server_thread_arg sta;
    cl.rpc = udrpc_create(nx, 1, NULL, client_sm, &cfg);
    if (!cl.rpc) {
        perror("rpc_bench: udrpc_create");
        return 1;
    }
    const char *tp = udrpc_transport_name(cl.rpc);
    int loop = !strcmp(tp, "loop");
    if (loop) {
        cl.local = udrpc_create(nx, 0, NULL, NULL, &cfg);
        g_server_rpc = cl.local;
        strcpy(uri, udrpc_nexus_uri(nx));
    } else if (opt.threads) {
        memset(&sta, 0, sizeof(sta));
        sta.nx = nx;
        pthread_create(&st, NULL, server_thread, &sta);
        while (!atomic_load(&server_ready))
            usleep(1000);
        strcpy(uri, sta.uri);
    } else {
        server_pid = bench_fork_server(server_process, NULL, uri, sizeof(uri));
        if (server_pid < 0) {
            fprintf(stderr, "rpc_bench: server did not start\n");
            return 1;
        }
    }
    bench_pin_cpu(opt.client_core);
    for (unsigned i = 0; i < opt.sessions; i++)
        cl.sessions[i] = udrpc_connect(cl.rpc, uri, 0);
    while (cl.connected < opt.sessions && !cl.failed_conn)
        pump();
    if (cl.failed_conn)
        return 1;
    udrpc_msgbuf_alloc(cl.rpc, 16, &cl.info_req);
    udrpc_msgbuf_alloc(cl.rpc, 16, &cl.info_resp);
    udrpc_msgbuf_resize(&cl.info_req, 0);

    printf("rpc_bench: transport %s on %s, %u session%s, %.1f s per point (+0.3 s warm-up), "
           "server %s%s, client core %d%s\n",
           tp, udrpc_nexus_uri(nx), opt.sessions, opt.sessions > 1 ? "s" : "", opt.duration_s,
           loop ? "in the client's thread" : opt.threads ? "thread" : "process",
           loop ? "" : (opt.server_core >= 0 ? " on a core of its own" : ""), opt.client_core,
           opt.verify ? ", verifying every response" : "");
    print_header();
    unsigned steps = want_peers ? total * 2 : total;
    for (unsigned si = 0; si < opt.n_sizes; si++) {
        size_t size = opt.sizes[si];
        for (unsigned di = 0; di < opt.n_depths; di++) {
            progress(done, steps, per_point * (steps - done));
            struct point *pt = &pts[si * opt.n_depths + di];
            run_point(size, opt.depths[di], pt);
            done++;
            if (isatty(2))
                fprintf(stderr, "\r%70s\r", "");
            print_row(size, pt->depth, "udrpc", &pt->r, pt);
            if (!strcmp(tp, "udp"))
                printf("%8s %5s %-14s %.1f datagrams per send (client)\n", "", "", "",
                       pt->pkts_per_send);
            if (opt.cc)
                printf("%8s %5s %-14s session rate %.0f/%.0f/%.0f MB/s (min/avg/max), RTT min "
                       "%.1f us avg %.1f us, %llu packets paced in all\n",
                       "", "", "cc", pt->cc_rate_min / 1e6, pt->cc_rate_avg / 1e6,
                       pt->cc_rate_max / 1e6, pt->cc_rtt_min_us, pt->cc_rtt_avg_us,
                       (unsigned long long)pt->cc_paced);
            if (pt->have_raw) {
                print_row(size, pt->depth, "raw UDP echo", &pt->raw, NULL);
                if (pt->raw.resent)
                    printf("%8s %5s %-14s %llu datagrams lost and sent again\n", "", "", "",
                           (unsigned long long)pt->raw.resent);
                print_ratio(size, pt->depth, "raw UDP", &pt->r, &pt->raw);
            }
            if (pt->have_gso) {
                print_row(size, pt->depth, "GSO UDP echo", &pt->gso, NULL);
                if (pt->gso.resent)
                    printf("%8s %5s %-14s %llu datagrams lost and sent again\n", "", "", "",
                           (unsigned long long)pt->gso.resent);
                print_ratio(size, pt->depth, "GSO UDP", &pt->r, &pt->gso);
            }
            if (pt->have_sp) {
                print_row(size, pt->depth, "sockperf", &pt->sp, NULL);
                print_ratio(size, pt->depth, "sockperf", &pt->r, &pt->sp);
            }
            fflush(stdout);
        }
    }
    progress(steps, steps, 0);
    if (opt.json)
        write_json(opt.json, pts, total, tp);
    if (opt.csv)
        write_csv(opt.csv, pts, total, tp);
    if (opt.plot)
        write_plots(opt.plot, pts, total, tp);

    int rc = 0;
    if (opt.verify) {
        printf("verify: %llu response%s differed\n", (unsigned long long)cl.verify_errors,
               cl.verify_errors == 1 ? "" : "s");
        rc = cl.verify_errors ? 1 : 0;
    }
    atomic_store(&server_stop, 1);
    if (opt.threads && !loop)
        pthread_join(st, NULL);
    if (server_pid > 0)
        bench_stop_server(server_pid);
    udrpc_msgbuf_free(cl.rpc, &cl.info_req);
    udrpc_msgbuf_free(cl.rpc, &cl.info_resp);
    udrpc_destroy(cl.rpc);
    if (cl.local)
        udrpc_destroy(cl.local);
    udrpc_nexus_destroy(nx);
    free(pts);
    return rc;
}
