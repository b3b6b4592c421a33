/*
 * rpc_bench — request/response throughput and latency of udrpc, next to
 * peers measured in the same run on the same cores: the project's raw UDP
 * echo (recvmmsg/sendmmsg, no protocol: the kernel's floor) and, when it is
 * installed, sockperf ping-pong. Ratios to the peers are what to quote:
 * these machines are shared and noisy.
 *
 *   rpc_bench [--transport udp|loop] [--size 32] [--depths 1,8,64]
 *             [--duration S] [--server-core N] [--client-core N] [--no-peers]
 *
 * The server runs in its own process (loop: a second endpoint in the same
 * thread, which measures the runtime alone). Warm-up (0.3 s) is excluded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "timing/clock.h"
#include "udrpc.h"

#define MAX_DEPTH 1024
#define WARMUP_US 300000

static struct {
    const char *transport;
    size_t size;
    unsigned depths[16], n_depths;
    double duration_s;
    int server_core, client_core;
    int peers;
} opt = { "udp", 32, { 1, 8, 64 }, 3, 2.0, 1, 0, 1 };

static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    if (resp)
        memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static udrpc_nexus_t *bench_nexus(void)
{
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    if (!nx || udrpc_register_handler(nx, 1, echo_handler, UDRPC_HANDLER_FG) != 0) {
        perror("udrpc_nexus_create");
        exit(1);
    }
    return nx;
}

static udrpc_config_t bench_cfg(void)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = opt.transport;
    return cfg;
}

static int server_main(void *arg, int fd)
{
    (void)arg;
    bench_pin_cpu(opt.server_core);
    udrpc_nexus_t *nx = bench_nexus();
    udrpc_config_t cfg = bench_cfg();
    udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
    if (!rpc)
        return 1;
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    strcpy(uri, udrpc_nexus_uri(nx));
    if (write(fd, uri, sizeof(uri)) != (ssize_t)sizeof(uri))
        return 1;
    close(fd);
    for (;;)
        udrpc_run_event_loop_once(rpc);
}

/* ------------------------------------------------------------ client ---- */

struct slot {
    udrpc_msgbuf_t req, resp;
    uint64_t sent_tsc;
};

struct client {
    udrpc_t *rpc, *local_server; /* local_server: loop transport only */
    int session, connected;
    uint64_t warm_end, done;
    struct lat_samples lat;
    int failed, stopping;
};
static struct client cl;

static void cont(void *ctx, void *tag, int status)
{
    struct slot *s = tag;
    uint64_t now = udrpc__rdtsc();
    (void)ctx;
    if (cl.stopping)
        return; /* udrpc_destroy ends what is still in flight */
    if (status != 0) {
        fprintf(stderr, "rpc_bench: request failed: %s\n", udrpc_strerror(status));
        cl.failed = 1;
        return;
    }
    if (now >= cl.warm_end) {
        lat_add(&cl.lat, now - s->sent_tsc);
        cl.done++;
    }
    s->sent_tsc = now;
    if (udrpc_enqueue_request(cl.rpc, cl.session, 1, &s->req, &s->resp, cont, s) != 0)
        cl.failed = 1;
}

static void sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)session;
    (void)ctx;
    cl.connected = ev == UDRPC_SM_CONNECTED ? 1 : -1;
    if (err)
        fprintf(stderr, "rpc_bench: session: %s\n", udrpc_strerror(err));
}

static int run_udrpc(unsigned depth, struct bench_result *r, udrpc_stats_t *st)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    pid_t pid = -1;
    udrpc_nexus_t *nx = bench_nexus();
    udrpc_config_t cfg = bench_cfg();
    memset(&cl, 0, sizeof(cl));
    bool local = strcmp(opt.transport, "loop") == 0;
    if (local) {
        cl.local_server = udrpc_create(nx, 1, NULL, NULL, &cfg);
        strcpy(uri, udrpc_nexus_uri(nx));
    } else {
        pid = bench_fork_server(server_main, NULL, uri, sizeof(uri));
        if (pid < 0)
            return -1;
    }
    bench_pin_cpu(opt.client_core);
    cl.rpc = udrpc_create(nx, 0, NULL, sm, &cfg);
    if (!cl.rpc)
        return -1;
    cl.session = udrpc_connect(cl.rpc, uri, local ? 1 : 0);
    while (cl.connected == 0) {
        udrpc_run_event_loop_once(cl.rpc);
        if (local)
            udrpc_run_event_loop_once(cl.local_server);
    }
    if (cl.connected < 0)
        return -1;
    static struct slot slots[MAX_DEPTH];
    lat_init(&cl.lat, 1 << 24);
    uint64_t start = udrpc__rdtsc();
    cl.warm_end = start + udrpc__us_to_tsc(ck, WARMUP_US);
    uint64_t end = cl.warm_end + udrpc__us_to_tsc(ck, (uint64_t)(opt.duration_s * 1e6));
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_alloc(cl.rpc, opt.size ? opt.size : 1, &slots[i].req);
        udrpc_msgbuf_alloc(cl.rpc, opt.size ? opt.size : 1, &slots[i].resp);
        udrpc_msgbuf_resize(&slots[i].req, opt.size);
        memset(slots[i].req.buf, (int)i, opt.size);
        slots[i].sent_tsc = udrpc__rdtsc();
        udrpc_enqueue_request(cl.rpc, cl.session, 1, &slots[i].req, &slots[i].resp, cont, &slots[i]);
    }
    uint64_t iter = 0;
    while (!cl.failed) {
        udrpc_run_event_loop_once(cl.rpc);
        if (local)
            udrpc_run_event_loop_once(cl.local_server);
        if ((++iter & 255) == 0 && udrpc__rdtsc() >= end)
            break;
    }
    r->count = cl.done;
    r->rpc_per_s = (double)cl.done / opt.duration_s;
    lat_summarize(&cl.lat, ck->ns_per_tsc, r);
    lat_free(&cl.lat);
    udrpc_get_stats(cl.rpc, st);
    int failed = cl.failed;
    cl.stopping = 1;
    udrpc_destroy(cl.rpc); /* outstanding requests end with -ECONNRESET */
    if (local)
        udrpc_destroy(cl.local_server);
    udrpc_nexus_destroy(nx);
    if (pid > 0)
        bench_stop_server(pid);
    return failed ? -1 : 0;
}

/* sockperf ping-pong, when installed; it reports one-way latency (RTT/2),
 * so its percentiles are doubled here to compare round trips. */
static int run_sockperf(struct bench_result *r)
{
    if (system("command -v sockperf >/dev/null 2>&1") != 0)
        return -1;
    char cmd[512];
    int port = 20000 + (int)(getpid() % 20000);
    snprintf(cmd, sizeof(cmd),
             "taskset -c %d sockperf server -i 127.0.0.1 -p %d >/dev/null 2>&1 & SP=$!; sleep 0.3; "
             "taskset -c %d sockperf ping-pong -i 127.0.0.1 -p %d -m %zu -t %.0f 2>&1; kill $SP",
             opt.server_core, port, opt.client_core, port, opt.size < 14 ? 14 : opt.size,
             opt.duration_s < 1 ? 1 : opt.duration_s);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof(line), f)) {
        double v;
        char *p;
        if ((p = strstr(line, "percentile 50.000 =")) && sscanf(p + 19, "%lf", &v) == 1)
            r->p50_us = 2 * v, got++;
        else if ((p = strstr(line, "percentile 99.000 =")) && sscanf(p + 19, "%lf", &v) == 1)
            r->p99_us = 2 * v;
        else if ((p = strstr(line, "percentile 90.000 =")) && sscanf(p + 19, "%lf", &v) == 1)
            r->p90_us = 2 * v;
        else if ((p = strstr(line, "percentile 99.900 =")) && sscanf(p + 19, "%lf", &v) == 1)
            r->p999_us = 2 * v;
        else if ((p = strstr(line, "<MAX> observation =")) && sscanf(p + 19, "%lf", &v) == 1)
            r->max_us = 2 * v;
        else if ((p = strstr(line, "[Valid Duration] RunTime=")) != NULL) {
            double secs;
            unsigned long long msgs;
            if (sscanf(p, "[Valid Duration] RunTime=%lf sec; SentMessages=%*u; ReceivedMessages=%llu",
                       &secs, &msgs) == 2 && secs > 0)
                r->rpc_per_s = (double)msgs / secs;
        }
    }
    pclose(f);
    return got ? 0 : -1;
}

/* Goodput counts request and response payload bytes (an echo: 2 x size). */
static void row(const char *what, unsigned depth, const struct bench_result *r)
{
    printf("%-22s %5u %11.0f %8.2f %8.2f %8.2f %8.2f %9.2f %9.1f\n", what, depth, r->rpc_per_s,
           r->rpc_per_s * (double)opt.size * 2 * 8 / 1e9, r->p50_us, r->p90_us, r->p99_us,
           r->p999_us, r->max_us);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(k, "--no-peers")) {
            opt.peers = 0;
            continue;
        }
        i++;
        if (!strcmp(k, "--transport")) opt.transport = v;
        else if (!strcmp(k, "--size")) opt.size = strtoul(v, NULL, 0);
        else if (!strcmp(k, "--duration")) opt.duration_s = atof(v);
        else if (!strcmp(k, "--server-core")) opt.server_core = atoi(v);
        else if (!strcmp(k, "--client-core")) opt.client_core = atoi(v);
        else if (!strcmp(k, "--depths")) {
            opt.n_depths = 0;
            for (char *s = (char *)v; *s && opt.n_depths < 16; s++) {
                unsigned d = (unsigned)strtoul(s, &s, 10);
                if (d >= 1 && d <= MAX_DEPTH)
                    opt.depths[opt.n_depths++] = d;
                if (!*s)
                    break;
            }
        } else {
            fprintf(stderr, "usage: rpc_bench [--transport udp|loop] [--size B] "
                            "[--depths 1,8,64] [--duration S] [--server-core N] "
                            "[--client-core N] [--no-peers]\n");
            exit(2);
        }
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        opt.server_core = opt.client_core = -1;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    udrpc__clock_init();
    printf("rpc_bench: transport %s, %zu B requests and responses, %.1f s per point "
           "(+0.3 s warm-up), server core %d, client core %d\n",
           opt.transport, opt.size, opt.duration_s, opt.server_core, opt.client_core);
    printf("%-22s %5s %11s %8s %8s %8s %8s %9s %9s\n", "what", "depth", "RPC/s", "Gbit/s",
           "p50 us", "p90 us", "p99 us", "p99.9 us", "max us");
    int rc = 0;
    struct bench_result sp = { 0 };
    int have_sp = opt.peers && !strcmp(opt.transport, "udp") && run_sockperf(&sp) == 0;
    for (unsigned i = 0; i < opt.n_depths; i++) {
        unsigned d = opt.depths[i];
        struct bench_result u = { 0 }, raw = { 0 };
        udrpc_stats_t st;
        if (run_udrpc(d, &u, &st) != 0) {
            fprintf(stderr, "rpc_bench: udrpc run at depth %u failed\n", d);
            rc = 1;
            continue;
        }
        row("udrpc", d, &u);
        if (st.retransmits)
            printf("%-22s %llu retransmissions\n", "", (unsigned long long)st.retransmits);
        if (opt.peers && udp_echo_run(opt.size, d, opt.duration_s, opt.server_core,
                                      opt.client_core, &raw) == 0) {
            row("raw UDP echo (peer)", d, &raw);
            printf("%-22s %5u %10.2fx %8s %7.2fx %8s %7.2fx   (udrpc / raw UDP)\n", "ratio", d,
                   u.rpc_per_s / raw.rpc_per_s, "", u.p50_us / raw.p50_us, "", u.p99_us / raw.p99_us);
        }
        if (d == 1 && have_sp) {
            row("sockperf ping-pong", 1, &sp);
            printf("%-22s %5u %10.2fx %8s %7.2fx %8s %7.2fx   (udrpc / sockperf)\n", "ratio", 1,
                   u.rpc_per_s / sp.rpc_per_s, "", u.p50_us / sp.p50_us, "", u.p99_us / sp.p99_us);
        }
    }
    return rc;
}
