/*
 * rpc_bench — udrpc request/response sweeps (request types x sizes x
 * sessions x depths), with peers measured in the same run on the same
 * cores: the project's raw UDP echo (recvmmsg/sendmmsg, no protocol: the
 * kernel's floor), the same with GSO and GRO, and sockperf ping-pong when
 * installed. Ratios to the peers are what to quote: these machines are
 * shared and noisy.
 *
 *   rpc_bench [--transport auto|udp|loop] [--sizes 32,4096] [--depths 1,8,64]
 *             [--sessions 1,8] [--duration S] [--repeat N] [--threads]
 *             [--server-core N] [--client-core N] [--peers] [--verify]
 *             [--json FILE] [--csv FILE] [--plot DIR] [--metrics NAME:FILE]
 *             [--cc] [--host ADDR]
 *             [--server URI [--rpc-id N]] [--req-types T,...]
 *             [--handler-lib LIB.so [--plugin-arg ARG]]
 *             [--payload SPEC] [--expect SPEC] [--resp-max B] [--timeout-ms MS]
 *   rpc_bench --compare A.json B.json [--noise F]
 *
 * What it calls:
 * - by default its own server (a process; --threads: a thread; loop: a
 *   second endpoint in the client's thread, which measures the runtime
 *   alone) with a built-in echo, request type 254 ("echo");
 * - --handler-lib: the same server with a plugin's handlers as well
 *   (udrpc_plugin.h), swept in the same run as the echo, or only the
 *   types --req-types names ("echo" names the built-in one);
 * - --server URI: any running udrpc server; --rpc-id is its endpoint's id
 *   and --req-types the handlers to sweep (no server CPU or retransmission
 *   figures then: the server is not ours; --peers still runs the UDP
 *   echoes here, a fair peer for a server on this host and its cores).
 * Requests come from the plugin's make_request where it has one, else from
 * --payload (bench_payload.h: pattern, random, fixed:, hex:, lines:FILE,
 * lenpfx:FILE); responses are checked by the plugin's check_response, or
 * --expect (any, echo, size:N, fixed:, hex:), or, with --verify, echo's
 * against their request. Failed requests are counted per kind (timeouts
 * with --timeout-ms, failed sessions, no handler, too large, other) and
 * so are failed checks; any of them makes the exit status 1. A type the
 * server has no handler for stops the run before the sweep (exit 2).
 *
 * --host binds every end, udrpc's and the peers', to ADDR (127.0.0.1 by
 * default, or ::1...). --server-netns NS --server-host ADDR run the
 * servers, udrpc's and the UDP echoes', in network namespace NS bound to
 * ADDR, the client where rpc_bench runs (bench/xdp_bench.sh: the two ends
 * of a veth; no sockperf row then). --cc turns Timely on and prints the sessions' rates.
 * Requests in flight (depth) are spread over the point's sessions; one
 * session holds 8 at most, the rest wait in it. Each point runs 0.3 s of
 * warm-up, then --duration seconds of measurement; --repeat N measures
 * every point N times (its peers N times too) and reports medians with
 * min-max, and each ratio to a peer per repetition. A point's peers run
 * just before it, on the same cores, while udrpc's server sleeps.
 * Latency comes from a log-bucketed histogram filled per request; CPU time
 * is each side's Rpc thread (getrusage RUSAGE_THREAD; the server reports
 * its own over an RPC).
 *
 * --metrics NAME:FILE writes the gate's wall-clock metrics (bench/udrpc_gate):
 * "NAME[_HANDLER][_sSIZE]_dDEPTH_{rps,p50}_vs_{raw,gso} median min max".
 * --compare prints, per point present in both files, each metric's change
 * and a verdict against the noise of the repetitions (bench_compare.c).
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

#include "bench_compare.h"
#include "bench_payload.h"
#include "bench_plugin.h"
#include "bench_util.h"
#include "clock.h"
#include "udrpc.h"

#define MAX_LIST 16
#define MAX_DEPTH 1024
#define MAX_SESSIONS 128
#define MAX_REPEAT 32
#define WARMUP_US 300000
#define SERVER_IDLE_SLEEP_US 2000 /* the server sleeps while peers run (want_peers) */

/* rpc_bench's own request types: out of the way of a plugin's. */
enum { REQ_ECHO = 254, REQ_SERVER_INFO = 255 };
static const uint8_t reserved_types[] = { REQ_ECHO, REQ_SERVER_INFO };

static struct {
    const char *transport;
    size_t sizes[MAX_LIST];
    unsigned n_sizes;
    unsigned depths[MAX_LIST];
    unsigned n_depths;
    unsigned sessions[MAX_LIST];
    unsigned n_sessions;
    double duration_s;
    unsigned repeat;
    int server_core, client_core;
    int threads, peers, verify;
    const char *json, *csv, *plot, *metrics;
    int cc;
    const char *host;
    const char *server_uri;
    unsigned rpc_id;
    uint8_t types[MAX_LIST];
    unsigned n_types;
    const char *payload, *expect, *handler_lib, *plugin_arg;
    size_t resp_max;
    unsigned timeout_ms;
} opt = { .transport = "auto", .sizes = { 32 }, .n_sizes = 1, .depths = { 1, 8, 64 },
          .n_depths = 3, .sessions = { 1 }, .n_sessions = 1, .duration_s = 2.0, .repeat = 1,
          .server_core = 1, .client_core = 0, .host = "127.0.0.1", .payload = "pattern" };

static struct bench_plugin plugin;
static int have_plugin;
static struct bench_payload payload;
static struct bench_expect expect;
static const struct bench_expect echo_check = { .kind = EXPECT_ECHO, .spec = "echo" }; /* --verify */

/* Failed requests of a point, by kind, and failed checks. */
struct errs {
    uint64_t timeout, session, no_handler, too_big, other, bad_resp;
};

struct range {
    double med, min, max;
    unsigned n; /* samples: 0 if none measured */
};

struct point {
    uint8_t type;
    size_t size;      /* the nominal size; for file and plugin payloads the
                         mean request size seen */
    unsigned depth, sessions, reps;
    struct bench_result rep[MAX_REPEAT], raw_rep[MAX_REPEAT], gso_rep[MAX_REPEAT];
    struct bench_result r, raw, gso, sp; /* medians (sp: one run) */
    struct range rps, p50, p99, rps_vs_raw, p50_vs_raw, rps_vs_gso, p50_vs_gso;
    int have_raw, have_gso, have_sp;
    double gbps, cpu_client_s, cpu_server_s, rpc_per_core;
    uint64_t retransmits;
    struct errs err;
    double req_bytes;
    uint64_t reqs;
    /* congestion control (--cc), over the client's sessions, last repetition */
    double cc_rate_min, cc_rate_avg, cc_rate_max, cc_rtt_min_us, cc_rtt_avg_us;
    double pkts_per_send; /* udp: datagrams per send of the client (GSO) */
    uint64_t cc_paced;
    /* shm's peers: its ring floor (--repeat runs), UCX over shared memory
     * (one run), and for 64 KiB and up one core's memcpy of the size */
    struct bench_result floor_rep[MAX_REPEAT], floor, ucx;
    struct range rps_vs_floor, p50_vs_floor;
    int have_floor, have_ucx;
    double memcpy_bytes_per_s;
};

static const char *type_name(uint8_t t)
{
    static char buf[8];
    if (t == REQ_ECHO)
        return "echo";
    if (have_plugin && plugin.by_type[t] && plugin.by_type[t]->name)
        return plugin.by_type[t]->name;
    snprintf(buf, sizeof(buf), "type%u", t);
    return buf;
}

/* Whether type t's requests come from the plugin: it has make_request,
 * and no --payload overrides it. */
static int plugin_makes(uint8_t t)
{
    return have_plugin && plugin.by_type[t] && plugin.by_type[t]->make_request &&
           strcmp(opt.payload, "pattern") == 0;
}

static uint64_t thread_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* ------------------------------------------------------------ server ---- */

static udrpc_t *g_server_rpc; /* for REQ_SERVER_INFO's stats */

/* The echo answers in place: a request of several packets is its own
 * response (no copy), a single-packet one is copied. */
static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    udrpc_resp_msgbuf_in_place(h);
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
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    if (have_plugin)
        ncfg.bg_threads = plugin.p->bg_threads;
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, &ncfg);
    if (!nx) {
        perror("rpc_bench: udrpc_nexus_create");
        exit(1);
    }
    if (opt.server_uri)
        return nx; /* a client only */
    if (udrpc_register_handler(nx, REQ_ECHO, echo_handler, UDRPC_HANDLER_FG) != 0 ||
        udrpc_register_handler(nx, REQ_SERVER_INFO, info_handler, UDRPC_HANDLER_FG) != 0 ||
        (have_plugin && bench_plugin_register(&plugin, nx) != 0))
        exit(1);
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
    /* A server process that has just started, under a sanitizer or on a
     * busy machine, can take more than the default second to answer its
     * first connect (rpc_bench_plugin.udp under ASan did, 1 run in 10). */
    cfg.connect_timeout_ms = 5000;
    return cfg;
}

/* Whether the run measures peers beside udrpc (not over loop, which has
 * none). */
static int want_peers(void)
{
    return opt.peers && strcmp(opt.transport, "loop") != 0;
}

static atomic_int server_stop, server_ready;

/* The server endpoint's context is the plugin's state: its handlers' ctx. */
static void serve(udrpc_nexus_t *nx, int fd_out, char *uri_out)
{
    udrpc_config_t cfg = bench_cfg();
    /* Peers run between udrpc's points, on this server's core: it sleeps
     * while they do. A point's traffic never leaves it idle this long. */
    if (want_peers())
        cfg.idle_sleep_us = SERVER_IDLE_SLEEP_US;
    udrpc_t *rpc = udrpc_create(nx, 0, have_plugin ? plugin.state : NULL, NULL, &cfg);
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
        udrpc_run_event_loop(rpc, 10);
    udrpc_destroy(rpc);
}

static int server_process(void *arg, int fd)
{
    (void)arg;
    if (bench_server_host)
        opt.host = bench_server_host; /* in bench_server_netns */
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
    uint64_t sent_tsc;
    unsigned idx, session; /* session: an index into cl.sessions */
};

enum gen { GEN_FIXED, GEN_PAYLOAD, GEN_PLUGIN }; /* how each request is made */
enum check { CHECK_NONE, CHECK_EXPECT, CHECK_PLUGIN };

static struct {
    udrpc_t *rpc, *local; /* local: the loop transport's server endpoint */
    int sessions[MAX_SESSIONS];
    uint8_t dead[MAX_SESSIONS];
    unsigned n_sessions; /* connected; the point uses the first pt_sessions */
    unsigned pt_sessions, alive;
    unsigned connected;
    int failed_conn;
    int issuing;
    /* the point being measured */
    uint8_t type;
    size_t size, req_cap;
    enum gen gen;
    enum check check;
    uint64_t seq;
    struct errs *err;
    uint64_t warm_end, measure_end, done, in_flight, req_bytes;
    struct lat_hist hist;
    struct slot slots[MAX_DEPTH];
    uint64_t info[2];
    int info_done;
    udrpc_msgbuf_t info_req, info_resp;
} cl;

static void client_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED) {
        cl.connected++;
        return;
    }
    for (unsigned i = 0; i < cl.n_sessions; i++)
        if (cl.sessions[i] == session && !cl.dead[i]) {
            cl.dead[i] = 1;
            if (i < cl.pt_sessions && cl.alive)
                cl.alive--;
        }
    if (cl.connected < cl.n_sessions)
        fprintf(stderr, "rpc_bench: session to %s: %s\n",
                opt.server_uri ? opt.server_uri : "the server", udrpc_strerror(err));
    cl.failed_conn = 1;
}

static void pump(void)
{
    udrpc_run_event_loop_once(cl.rpc);
    if (cl.local)
        udrpc_run_event_loop_once(cl.local);
}

static int session_error(int status)
{
    return status == -ECONNRESET || status == -ECONNABORTED || status == -ENOTCONN ||
           status == -ESHUTDOWN || status == -ENOENT;
}

/* Counts a failed request; a failed session is used no more. */
static void count_error(struct slot *s, int status)
{
    if (status == -ETIMEDOUT)
        cl.err->timeout++;
    else if (session_error(status)) {
        cl.err->session++;
        if (!cl.dead[s->session]) {
            cl.dead[s->session] = 1;
            cl.alive--;
        }
    } else if (status == -EBADRQC)
        cl.err->no_handler++;
    else if (status == -EMSGSIZE)
        cl.err->too_big++;
    else
        cl.err->other++;
}

/* Request seq into s->req (GEN_FIXED: filled once per point). */
static void make_request(struct slot *s)
{
    size_t n;
    if (cl.gen == GEN_PLUGIN) {
        long len = bench_user_request(&plugin, cl.type, cl.seq++, s->req.buf, cl.req_cap);
        if (len < 0 || (size_t)len > cl.req_cap) {
            fprintf(stderr, "rpc_bench: plugin %s: %s's make_request does not fit in %zu bytes\n",
                    plugin.path, type_name(cl.type), cl.req_cap);
            exit(1);
        }
        n = (size_t)len;
    } else {
        n = bench_payload_make(&payload, cl.size, s->idx, cl.seq++, s->req.buf);
    }
    udrpc_msgbuf_resize(&s->req, n);
}

static void cont(void *ctx, void *tag, int status);

/* Sends s's next request on its session, or the next live one; a slot
 * with no live session left stops. */
static void send_slot(struct slot *s)
{
    for (unsigned tries = 0; tries < cl.pt_sessions; tries++) {
        if (!cl.dead[s->session]) {
            if (cl.gen != GEN_FIXED)
                make_request(s);
            s->sent_tsc = udrpc__rdtsc();
            int ret = udrpc_enqueue_request(cl.rpc, cl.sessions[s->session], cl.type, &s->req,
                                            &s->resp, cont, s);
            if (ret == 0) {
                cl.in_flight++;
                return;
            }
            count_error(s, ret);
            if (!session_error(ret))
                return; /* -EMSGSIZE and the like: this slot cannot go on */
        }
        s->session = (s->session + 1) % cl.pt_sessions;
    }
}

static void cont(void *ctx, void *tag, int status)
{
    struct slot *s = tag;
    uint64_t now = udrpc__rdtsc();
    (void)ctx;
    cl.in_flight--;
    int measured = now >= cl.warm_end && now < cl.measure_end;
    if (status != 0) {
        count_error(s, status);
        if (cl.issuing && status != -EBADRQC && status != -EMSGSIZE)
            send_slot(s);
        return;
    }
    int bad = 0;
    if (cl.check == CHECK_PLUGIN)
        bad = bench_user_check(&plugin, cl.type, s->req.buf, s->req.size, s->resp.buf,
                               s->resp.size) != 0;
    else if (cl.check == CHECK_EXPECT)
        bad = bench_expect_check(opt.expect ? &expect : &echo_check, s->req.buf,
                                 s->req.size, s->resp.buf, s->resp.size) != 0;
    if (bad)
        cl.err->bad_resp++;
    if (measured) {
        hist_add(&cl.hist, now - s->sent_tsc);
        cl.done++;
        cl.req_bytes += s->req.size;
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

/* Asks our server for its CPU time and retransmissions (loop: shared
 * thread, so the server's CPU is counted with the client's). A server
 * that is not ours (--server) reports nothing. */
static void server_info(uint64_t *cpu_ns, uint64_t *retx)
{
    *cpu_ns = *retx = 0;
    if (opt.server_uri || cl.dead[0])
        return;
    cl.info_done = 0;
    if (udrpc_enqueue_request(cl.rpc, cl.sessions[0], REQ_SERVER_INFO, &cl.info_req,
                              &cl.info_resp, info_cont, NULL) != 0)
        return;
    while (cl.info_done == 0)
        pump();
    if (cl.info_done > 0) {
        *cpu_ns = cl.local ? 0 : cl.info[0];
        *retx = cl.info[1];
    }
}

/* How requests of type t are made and checked, and how large they get. */
static void point_setup(uint8_t t, size_t size)
{
    cl.type = t;
    cl.size = size;
    cl.seq = 0;
    if (plugin_makes(t)) {
        cl.gen = GEN_PLUGIN;
        cl.req_cap = size > 4096 ? size : 4096;
    } else {
        cl.gen = bench_payload_varies(&payload) ? GEN_PAYLOAD : GEN_FIXED;
        cl.req_cap = bench_payload_cap(&payload, size);
    }
    if (have_plugin && plugin.by_type[t] && plugin.by_type[t]->check_response && !opt.expect)
        cl.check = CHECK_PLUGIN;
    else if (opt.expect && expect.kind != EXPECT_ANY)
        cl.check = CHECK_EXPECT;
    else if (opt.verify && t == REQ_ECHO)
        cl.check = CHECK_EXPECT; /* echo_check */
    else
        cl.check = CHECK_NONE;
}

static size_t resp_cap(uint8_t t)
{
    if (opt.resp_max)
        return opt.resp_max;
    if (t == REQ_ECHO)
        return cl.req_cap;
    return cl.req_cap > 4096 ? cl.req_cap : 4096;
}

static void alloc_slots(unsigned depth)
{
    size_t rcap = resp_cap(cl.type);
    for (unsigned i = 0; i < depth; i++) {
        struct slot *s = &cl.slots[i];
        if (udrpc_msgbuf_alloc(cl.rpc, cl.req_cap ? cl.req_cap : 1, &s->req) != 0 ||
            udrpc_msgbuf_alloc(cl.rpc, rcap ? rcap : 1, &s->resp) != 0) {
            fprintf(stderr, "rpc_bench: out of message buffers (%u x %zu + %zu B)\n", depth,
                    cl.req_cap, rcap);
            exit(1);
        }
        s->idx = i;
        s->session = i % cl.pt_sessions;
        if (cl.gen == GEN_FIXED)
            udrpc_msgbuf_resize(&s->req, bench_payload_make(&payload, cl.size, i, 0, s->req.buf));
    }
}

static void free_slots(unsigned depth)
{
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_free(cl.rpc, &cl.slots[i].req);
        udrpc_msgbuf_free(cl.rpc, &cl.slots[i].resp);
    }
}

/* One request of each type before the sweep: a server without the handler
 * stops the run here, with the reason. */
static void probe(uint8_t t, size_t size)
{
    struct errs err = { 0 };
    point_setup(t, size);
    cl.pt_sessions = cl.alive = cl.n_sessions;
    cl.err = &err;
    alloc_slots(1);
    cl.warm_end = cl.measure_end = 0;
    cl.issuing = 0;
    send_slot(&cl.slots[0]);
    while (cl.in_flight)
        pump();
    free_slots(1);
    if (err.no_handler) {
        fprintf(stderr, "rpc_bench: the server at %s (rpc_id %u) has no handler for request "
                        "type %u (it answered -EBADRQC)\n",
                opt.server_uri ? opt.server_uri : "rpc_bench's server", opt.rpc_id, t);
        exit(2);
    }
    if (err.timeout + err.session + err.too_big + err.other) {
        fprintf(stderr, "rpc_bench: the first request of type %u failed (%s%s%s%s)%s\n", t,
                err.timeout ? "timed out" : "", err.session ? "session failed" : "",
                err.too_big ? "too large" : "", err.other ? "an error" : "",
                err.too_big ? ": raise --resp-max or the server's max_msg_size" : "");
        exit(1);
    }
}

static void run_point(struct point *pt, unsigned rep)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    unsigned depth = pt->depth;
    memset(&cl.hist, 0, sizeof(cl.hist));
    cl.done = cl.req_bytes = 0;
    cl.err = &pt->err;
    cl.pt_sessions = pt->sessions;
    cl.alive = 0;
    for (unsigned i = 0; i < pt->sessions; i++)
        cl.alive += !cl.dead[i];
    point_setup(pt->type, pt->size);
    alloc_slots(depth);
    udrpc_stats_t st0, st1;
    uint64_t srv_cpu0, srv_cpu1, srv_retx0, srv_retx1;
    uint64_t start = udrpc__rdtsc();
    cl.warm_end = start + udrpc__us_to_tsc(ck, WARMUP_US);
    cl.measure_end = UINT64_MAX;
    cl.issuing = 1;
    for (unsigned i = 0; i < depth; i++)
        send_slot(&cl.slots[i]);
    while (udrpc__rdtsc() < cl.warm_end && cl.alive)
        pump();
    /* The measured window starts here. */
    uint64_t t0 = udrpc__rdtsc(), cli_cpu0 = thread_cpu_ns();
    cl.warm_end = t0;
    udrpc_get_stats(cl.rpc, &st0);
    server_info(&srv_cpu0, &srv_retx0);
    uint64_t end = t0 + udrpc__us_to_tsc(ck, (uint64_t)(opt.duration_s * 1e6));
    uint64_t iter = 0;
    while (((++iter & 63) || udrpc__rdtsc() < end) && cl.alive)
        pump();
    uint64_t t1 = udrpc__rdtsc(), cli_cpu1 = thread_cpu_ns();
    cl.measure_end = t1;
    udrpc_get_stats(cl.rpc, &st1);
    server_info(&srv_cpu1, &srv_retx1);
    /* Drain: let every request finish before the buffers go. */
    cl.issuing = 0;
    while (cl.in_flight)
        pump();
    free_slots(depth);
    double secs = udrpc__tsc_to_ns(ck, t1 - t0) / 1e9;
    struct bench_result *r = &pt->rep[rep];
    r->count = cl.done;
    r->rpc_per_s = (double)cl.done / secs;
    hist_summarize(&cl.hist, ck->ns_per_tsc, r);
    pt->req_bytes += (double)cl.req_bytes;
    pt->reqs += cl.done;
    pt->retransmits += (st1.retransmits - st0.retransmits) + (srv_retx1 - srv_retx0);
    uint64_t tx = st1.pkts_tx - st0.pkts_tx, gso_pkts = st1.udp_gso_pkts - st0.udp_gso_pkts;
    uint64_t sends = st1.udp_gso_sends - st0.udp_gso_sends + (tx - gso_pkts);
    pt->pkts_per_send = sends ? (double)tx / (double)sends : 0;
    pt->cpu_client_s += (double)(cli_cpu1 - cli_cpu0) / 1e9 / opt.repeat;
    pt->cpu_server_s += (double)(srv_cpu1 - srv_cpu0) / 1e9 / opt.repeat;
    pt->cc_rate_min = pt->cc_rtt_min_us = 1e300;
    pt->cc_rate_max = pt->cc_rate_avg = pt->cc_rtt_avg_us = 0;
    pt->cc_paced = 0;
    for (unsigned i = 0; i < pt->sessions; i++) {
        udrpc_session_stats_t ss;
        if (udrpc_get_session_stats(cl.rpc, cl.sessions[i], &ss) != 0)
            continue;
        pt->cc_rate_avg += ss.rate_bytes_per_s / pt->sessions;
        pt->cc_rtt_avg_us += ss.rtt_avg_us / pt->sessions;
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

/* ----------------------------------------------------------- summary ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct range range_of(const double *v, unsigned n)
{
    double s[MAX_REPEAT];
    struct range r = { 0, 0, 0, n };
    if (n == 0)
        return r;
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_double);
    r.min = s[0];
    r.max = s[n - 1];
    r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    return r;
}

/* The median of each field of n results. */
static struct bench_result median_result(const struct bench_result *v, unsigned n)
{
    struct bench_result m = { 0 };
    double x[MAX_REPEAT];
#define MED(f)                                                                                     \
    do {                                                                                           \
        for (unsigned i = 0; i < n; i++)                                                           \
            x[i] = (double)v[i].f;                                                                 \
        m.f = range_of(x, n).med;                                                                  \
    } while (0)
    MED(rpc_per_s);
    MED(p50_us);
    MED(p90_us);
    MED(p99_us);
    MED(p999_us);
    MED(max_us);
    for (unsigned i = 0; i < n; i++) {
        m.count += v[i].count;
        m.resent += v[i].resent;
    }
#undef MED
    return m;
}

/* A ratio per repetition, a / b of one field (offset) of the results. */
static struct range ratio_range(const struct bench_result *a, const struct bench_result *b,
                                unsigned n, size_t off)
{
    double x[MAX_REPEAT];
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        double num = *(const double *)((const char *)&a[i] + off);
        double den = *(const double *)((const char *)&b[i] + off);
        if (num > 0 && den > 0 && a[i].count && b[i].count) /* a run with no round trip: none */
            x[k++] = num / den;
    }
    return range_of(x, k);
}

/* One way: the point's size times r's RPC/s, in bytes per second. */
static double goodput(const struct point *pt, const struct bench_result *r)
{
    return r->rpc_per_s * (double)pt->size;
}

static void summarize(struct point *pt)
{
    unsigned n = pt->reps;
    double x[MAX_REPEAT];
    for (unsigned i = 0; i < n; i++)
        if (!pt->rep[i].count || (pt->have_raw && !pt->raw_rep[i].count) ||
            (pt->have_gso && !pt->gso_rep[i].count))
            fprintf(stderr, "rpc_bench: size %zu depth %u, run %u: %s completed no round trip "
                            "in its measured second(s): no ratio from that run\n",
                    pt->size, pt->depth, i + 1, !pt->rep[i].count ? "udrpc"
                                                : pt->have_raw && !pt->raw_rep[i].count
                                                    ? "the raw UDP echo"
                                                    : "the GSO UDP echo");
    pt->r = median_result(pt->rep, n);
    for (unsigned i = 0; i < n; i++)
        x[i] = pt->rep[i].rpc_per_s;
    pt->rps = range_of(x, n);
    for (unsigned i = 0; i < n; i++)
        x[i] = pt->rep[i].p50_us;
    pt->p50 = range_of(x, n);
    for (unsigned i = 0; i < n; i++)
        x[i] = pt->rep[i].p99_us;
    pt->p99 = range_of(x, n);
    if (pt->reqs && (plugin_makes(pt->type) || !bench_payload_sized(&payload)))
        pt->size = (size_t)(pt->req_bytes / (double)pt->reqs + 0.5);
    pt->gbps = goodput(pt, &pt->r) * 2 * 8 / 1e9; /* request + response */
    double cores = (pt->cpu_client_s + pt->cpu_server_s) / opt.duration_s;
    pt->rpc_per_core = cores > 0 ? pt->r.rpc_per_s / cores : 0;
    if (pt->have_raw) {
        pt->raw = median_result(pt->raw_rep, n);
        pt->rps_vs_raw = ratio_range(pt->rep, pt->raw_rep, n,
                                     offsetof(struct bench_result, rpc_per_s));
        pt->p50_vs_raw = ratio_range(pt->rep, pt->raw_rep, n,
                                     offsetof(struct bench_result, p50_us));
    }
    if (pt->have_gso) {
        pt->gso = median_result(pt->gso_rep, n);
        pt->rps_vs_gso = ratio_range(pt->rep, pt->gso_rep, n,
                                     offsetof(struct bench_result, rpc_per_s));
        pt->p50_vs_gso = ratio_range(pt->rep, pt->gso_rep, n,
                                     offsetof(struct bench_result, p50_us));
    }
    if (pt->have_floor) {
        pt->floor = median_result(pt->floor_rep, n);
        pt->rps_vs_floor = ratio_range(pt->rep, pt->floor_rep, n,
                                       offsetof(struct bench_result, rpc_per_s));
        pt->p50_vs_floor = ratio_range(pt->rep, pt->floor_rep, n,
                                       offsetof(struct bench_result, p50_us));
    }
}

/* Whether the peer tool cmd is installed. */
static int have_command(const char *cmd)
{
    char sh[128];
    snprintf(sh, sizeof(sh), "command -v %s >/dev/null 2>&1", cmd);
    return system(sh) == 0;
}

/* The core a peer's end runs on (0 where rpc_bench pins nothing). */
static int peer_core(int core)
{
    return core < 0 ? 0 : core;
}

/* UCX over shared memory (ucx_perftest, UCX_TLS=sm), when ucx-utils is
 * installed: UCP tag_lat at depth 1 (its one-way latency doubled into a
 * round trip, and its mean into round trips per second), else tag_bw, a
 * one-way stream of messages (its rate as it is: no answers). */
static int run_ucx(size_t size, unsigned depth, struct bench_result *r)
{
    static int said;
    if (!have_command("ucx_perftest")) {
        if (!said++)
            fprintf(stderr, "rpc_bench: no UCX row: ucx_perftest is not installed "
                            "(Debian: ucx-utils)\n");
        return -1;
    }
    char cmd[640];
    int port = 30000 + (int)(getpid() % 20000);
    const int lat = depth == 1;
    double secs = opt.duration_s < 1 ? 1 : opt.duration_s;
    /* ucx_perftest runs a count, not a time: about secs at a rate a bit
     * above what these machines gave (4 M round trips/s, 20 M messages/s
     * at 32 B; fewer as sizes grow). */
    double rate = (lat ? 4e6 : 20e6) / (1.0 + (double)size / (lat ? 4096 : 1024));
    snprintf(cmd, sizeof(cmd),
             "export UCX_TLS=sm; taskset -c %d ucx_perftest -p %d >/dev/null 2>&1 & U=$!; "
             "sleep 0.5; taskset -c %d timeout 30 ucx_perftest 127.0.0.1 -p %d -t %s -s %zu "
             "-n %.0f 2>&1; kill $U 2>/dev/null",
             peer_core(opt.server_core), port, peer_core(opt.client_core), port,
             lat ? "tag_lat" : "tag_bw",
             size, secs * rate + 10000);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    int got = 0;
    memset(r, 0, sizeof(*r));
    while (fgets(line, sizeof(line), f)) {
        double it, p50, avg, overall, bw_avg, bw_all, rate_avg, rate_all;
        char *p = strstr(line, "Final:");
        if (p && sscanf(p + 6, "%lf %lf %lf %lf %lf %lf %lf %lf", &it, &p50, &avg, &overall,
                        &bw_avg, &bw_all, &rate_avg, &rate_all) == 8) {
            r->p50_us = lat ? 2 * p50 : 0;
            r->rpc_per_s = !lat ? rate_all : overall > 0 ? 1e6 / (2 * overall) : 0;
            r->count = (uint64_t)it;
            got = 1;
        }
    }
    pclose(f);
    return got ? 0 : -1;
}

/* sockperf ping-pong (depth 1), when installed. It reports one-way latency
 * (RTT/2), so its percentiles are doubled here to compare round trips. */
static int run_sockperf(size_t size, struct bench_result *r)
{
    if (size > 65000 || bench_server_netns || !have_command("sockperf"))
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
             peer_core(opt.server_core), opt.host, port,
             peer_core(opt.client_core), opt.host, port, size < 14 ? 14 : size,
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
    printf("%8s %5s %4s %-14s %11s %8s %8s %8s %8s %9s %9s %6s %6s %6s %11s\n", "size",
           "depth", "sess", "what", "RPC/s", "Gbit/s", "p50 us", "p90 us", "p99 us", "p99.9 us",
           "max us", "retx", "cpu c", "cpu s", "RPC/s/core");
}

static void print_row(const struct point *pt, const char *what, const struct bench_result *r,
                      int udrpc)
{
    printf("%8zu %5u %4u %-14s %11.0f %8.3f %8.2f %8.2f %8.2f %9.2f %9.1f", pt->size, pt->depth,
           pt->sessions, what, r->rpc_per_s, r->rpc_per_s * (double)pt->size * 16 / 1e9,
           r->p50_us, r->p90_us, r->p99_us, r->p999_us, r->max_us);
    if (udrpc) {
        printf(" %6llu %5.0f%% ", (unsigned long long)pt->retransmits,
               100 * pt->cpu_client_s / opt.duration_s);
        if (opt.server_uri)
            printf("%6s", "-");
        else
            printf("%5.0f%%", 100 * pt->cpu_server_s / opt.duration_s);
        printf(" %11.0f", pt->rpc_per_core);
    }
    printf("\n");
}

static void print_ratio(const struct point *pt, const char *vs, const struct bench_result *p,
                        const struct range *rps, const struct range *p50)
{
    const struct bench_result *u = &pt->r;
    printf("%8zu %5u %4u %-14s %10.2fx %8s %7.2fx %8s %7.2fx   (udrpc / %s", pt->size,
           pt->depth, pt->sessions, "ratio", p->rpc_per_s > 0 ? u->rpc_per_s / p->rpc_per_s : 0,
           "", p->p50_us > 0 ? u->p50_us / p->p50_us : 0, "",
           p->p99_us > 0 ? u->p99_us / p->p99_us : 0, vs);
    if (pt->reps > 1 && rps)
        printf("; ratio per run: RPC/s %.2f-%.2fx, p50 %.2f-%.2fx, over %u runs", rps->min,
               rps->max, p50->min, p50->max, pt->reps);
    printf(")\n");
}

static uint64_t errors_of(const struct errs *e)
{
    return e->timeout + e->session + e->no_handler + e->too_big + e->other;
}

/* A UDP echo's row, its losses and udrpc's ratio to it. */
static void print_peer(const struct point *pt, const char *what, const char *vs,
                       const struct bench_result *r, const struct range *rps,
                       const struct range *p50)
{
    print_row(pt, what, r, 0);
    if (r->resent)
        printf("%8s %5s %4s %-14s %llu datagrams lost and sent again\n", "", "", "", "",
               (unsigned long long)r->resent);
    print_ratio(pt, vs, r, rps, p50);
}

static void print_point(const struct point *pt, const char *tp)
{
    char what[32];
    snprintf(what, sizeof(what), "udrpc%s%s", pt->type == REQ_ECHO ? "" : " ",
             pt->type == REQ_ECHO ? "" : type_name(pt->type));
    print_row(pt, what, &pt->r, 1);
    if (pt->reps > 1)
        printf("%8s %5s %4s %-14s %.0f-%.0f RPC/s, p50 %.2f-%.2f us, p99 %.2f-%.2f us "
               "(min-max of %u runs; the row holds medians)\n",
               "", "", "", "", pt->rps.min, pt->rps.max, pt->p50.min, pt->p50.max, pt->p99.min,
               pt->p99.max, pt->reps);
    if (errors_of(&pt->err) || pt->err.bad_resp)
        printf("%8s %5s %4s %-14s %llu timed out, %llu session failures, %llu no handler, "
               "%llu too large, %llu other errors, %llu wrong responses\n",
               "", "", "", "errors", (unsigned long long)pt->err.timeout,
               (unsigned long long)pt->err.session, (unsigned long long)pt->err.no_handler,
               (unsigned long long)pt->err.too_big, (unsigned long long)pt->err.other,
               (unsigned long long)pt->err.bad_resp);
    if (!strcmp(tp, "udp"))
        printf("%8s %5s %4s %-14s %.1f datagrams per send (client)\n", "", "", "", "",
               pt->pkts_per_send);
    if (opt.cc)
        printf("%8s %5s %4s %-14s session rate %.0f/%.0f/%.0f MB/s (min/avg/max), RTT min "
               "%.1f us avg %.1f us, %llu packets paced in all\n",
               "", "", "", "cc", pt->cc_rate_min / 1e6, pt->cc_rate_avg / 1e6,
               pt->cc_rate_max / 1e6, pt->cc_rtt_min_us, pt->cc_rtt_avg_us,
               (unsigned long long)pt->cc_paced);
    if (pt->have_raw)
        print_peer(pt, "raw UDP echo", "raw UDP", &pt->raw, &pt->rps_vs_raw, &pt->p50_vs_raw);
    if (pt->have_gso)
        print_peer(pt, "GSO UDP echo", "GSO UDP", &pt->gso, &pt->rps_vs_gso, &pt->p50_vs_gso);
    if (pt->have_sp) {
        print_row(pt, "sockperf", &pt->sp, 0);
        print_ratio(pt, "sockperf", &pt->sp, NULL, NULL);
    }
    if (pt->have_floor)
        print_peer(pt, "shm ring floor", "ring floor", &pt->floor, &pt->rps_vs_floor,
                   &pt->p50_vs_floor);
    if (pt->have_ucx) {
        print_row(pt, pt->depth == 1 ? "UCX tag_lat" : "UCX tag_bw", &pt->ucx, 0);
        print_ratio(pt, pt->depth == 1 ? "UCX round trips over sm"
                                       : "UCX one-way messages over sm", &pt->ucx, NULL, NULL);
    }
    if (pt->memcpy_bytes_per_s > 0) {
        printf("%8zu %5u %4u %-14s %.2f GB/s of memcpy; udrpc's goodput (one way) %.2f GB/s: "
               "%.2fx\n", pt->size, pt->depth, pt->sessions, "memcpy",
               pt->memcpy_bytes_per_s / 1e9, goodput(pt, &pt->r) / 1e9,
               goodput(pt, &pt->r) / pt->memcpy_bytes_per_s);
        if (pt->have_floor)
            printf("%8s %5s %4s %-14s the ring floor's goodput (one way) %.2f GB/s: %.2fx\n",
                   "", "", "", "", goodput(pt, &pt->floor) / 1e9,
                   goodput(pt, &pt->floor) / pt->memcpy_bytes_per_s);
    }
    fflush(stdout);

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

/* A JSON string of s: quotes and control bytes escaped. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_samples(FILE *f, const char *key, const struct point *p, size_t off)
{
    fprintf(f, "\"%s\": [", key);
    for (unsigned i = 0; i < p->reps; i++)
        fprintf(f, "%s%.3f", i ? ", " : "", *(const double *)((const char *)&p->rep[i] + off));
    fprintf(f, "], ");
}

static void json_range(FILE *f, const char *key, const struct range *r)
{
    fprintf(f, "\"%s\": %.4f, \"%s_min\": %.4f, \"%s_max\": %.4f, ", key, r->med, key, r->min,
            key, r->max);
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
                "  {\"transport\": \"%s\", \"req_type\": %u, \"handler\": ", tp, p->type);
        json_str(f, type_name(p->type));
        fprintf(f, ", \"payload\": ");
        json_str(f, plugin_makes(p->type) ? "plugin" : opt.payload);
        fprintf(f, ", \"server\": ");
        json_str(f, opt.server_uri ? opt.server_uri : "rpc_bench");
        fprintf(f,
                ", \"size\": %zu, \"depth\": %u, \"sessions\": %u, \"reps\": %u, "
                "\"rpc_per_s\": %.1f, \"goodput_gbps\": %.4f, \"p50_us\": %.3f, "
                "\"p90_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, \"max_us\": %.3f, ",
                p->size, p->depth, p->sessions, p->reps, p->r.rpc_per_s, p->gbps, p->r.p50_us,
                p->r.p90_us, p->r.p99_us, p->r.p999_us, p->r.max_us);
        fprintf(f, "\"rpc_per_s_min\": %.1f, \"rpc_per_s_max\": %.1f, \"p50_us_min\": %.3f, "
                   "\"p50_us_max\": %.3f, \"p99_us_min\": %.3f, \"p99_us_max\": %.3f, ",
                p->rps.min, p->rps.max, p->p50.min, p->p50.max, p->p99.min, p->p99.max);
        json_samples(f, "rpc_per_s_samples", p, offsetof(struct bench_result, rpc_per_s));
        json_samples(f, "p50_us_samples", p, offsetof(struct bench_result, p50_us));
        json_samples(f, "p99_us_samples", p, offsetof(struct bench_result, p99_us));
        if (p->have_raw) {
            json_range(f, "rps_vs_raw", &p->rps_vs_raw);
            json_range(f, "p50_vs_raw", &p->p50_vs_raw);
        }
        if (p->have_gso) {
            json_range(f, "rps_vs_gso", &p->rps_vs_gso);
            json_range(f, "p50_vs_gso", &p->p50_vs_gso);
        }
        if (p->have_floor) {
            json_range(f, "rps_vs_floor", &p->rps_vs_floor);
            json_range(f, "p50_vs_floor", &p->p50_vs_floor);
            fprintf(f, "\"shm_floor_rpc_per_s\": %.1f, \"shm_floor_p50_us\": %.3f, ",
                    p->floor.rpc_per_s, p->floor.p50_us);
        }
        if (p->have_ucx)
            fprintf(f, "\"ucx_rpc_per_s\": %.1f, \"ucx_p50_us\": %.3f, \"ucx_test\": \"%s\", ",
                    p->ucx.rpc_per_s, p->ucx.p50_us, p->depth == 1 ? "tag_lat" : "tag_bw");
        if (p->memcpy_bytes_per_s > 0)
            fprintf(f, "\"memcpy_gb_per_s\": %.3f, \"goodput_vs_memcpy\": %.3f, ",
                    p->memcpy_bytes_per_s / 1e9, goodput(p, &p->r) / p->memcpy_bytes_per_s);
        if (p->memcpy_bytes_per_s > 0 && p->have_floor)
            fprintf(f, "\"shm_floor_goodput_vs_memcpy\": %.3f, ",
                    goodput(p, &p->floor) / p->memcpy_bytes_per_s);
        fprintf(f,
                "\"err_timeout\": %llu, \"err_session\": %llu, \"err_no_handler\": %llu, "
                "\"err_too_big\": %llu, \"err_other\": %llu, \"bad_responses\": %llu, ",
                (unsigned long long)p->err.timeout, (unsigned long long)p->err.session,
                (unsigned long long)p->err.no_handler, (unsigned long long)p->err.too_big,
                (unsigned long long)p->err.other, (unsigned long long)p->err.bad_resp);
        fprintf(f,
                "\"retransmits\": %llu, \"cpu_client_s\": %.4f, \"cpu_server_s\": %.4f, "
                "\"rpc_per_s_per_core\": %.1f, \"raw_udp_rpc_per_s\": %.1f, "
                "\"raw_udp_p50_us\": %.3f, \"gso_udp_rpc_per_s\": %.1f, "
                "\"gso_udp_p50_us\": %.3f, \"sockperf_p50_us\": %.3f, "
                "\"udp_gso_pkts_per_send\": %.2f, "
                "\"cc\": %s, \"cc_rate_avg_mb_per_s\": %.3f, \"cc_rtt_avg_us\": %.2f, "
                "\"cc_rtt_min_us\": %.2f, \"cc_pkts_paced\": %llu, "
                "\"commit\": \"%s\", \"host\": ",
                (unsigned long long)p->retransmits, p->cpu_client_s, p->cpu_server_s,
                p->rpc_per_core, p->have_raw ? p->raw.rpc_per_s : 0,
                p->have_raw ? p->raw.p50_us : 0, p->have_gso ? p->gso.rpc_per_s : 0,
                p->have_gso ? p->gso.p50_us : 0, p->have_sp ? p->sp.p50_us : 0,
                p->pkts_per_send, opt.cc ? "true" : "false", p->cc_rate_avg / 1e6,
                p->cc_rtt_avg_us, p->cc_rtt_min_us, (unsigned long long)p->cc_paced, commit);
        json_str(f, host);
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
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
    fprintf(f, "transport,req_type,size,depth,sessions,rpc_per_s,goodput_gbps,p50_us,p90_us,"
               "p99_us,p999_us,max_us,retransmits,cpu_client_s,cpu_server_s,rpc_per_s_per_core,"
               "raw_udp_rpc_per_s,raw_udp_p50_us,gso_udp_rpc_per_s,gso_udp_p50_us,"
               "sockperf_p50_us,udp_gso_pkts_per_send,errors,bad_responses\n");
    for (unsigned i = 0; i < n; i++) {
        const struct point *p = &pts[i];
        fprintf(f, "%s,%u,%zu,%u,%u,%.1f,%.4f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%.4f,%.4f,%.1f,%.1f,"
                   "%.3f,%.1f,%.3f,%.3f,%.2f,%llu,%llu\n",
                tp, p->type, p->size, p->depth, p->sessions, p->r.rpc_per_s, p->gbps,
                p->r.p50_us, p->r.p90_us, p->r.p99_us, p->r.p999_us, p->r.max_us,
                (unsigned long long)p->retransmits, p->cpu_client_s, p->cpu_server_s,
                p->rpc_per_core, p->have_raw ? p->raw.rpc_per_s : 0,
                p->have_raw ? p->raw.p50_us : 0, p->have_gso ? p->gso.rpc_per_s : 0,
                p->have_gso ? p->gso.p50_us : 0, p->have_sp ? p->sp.p50_us : 0,
                p->pkts_per_send, (unsigned long long)errors_of(&p->err),
                (unsigned long long)p->err.bad_resp);
    }
    fclose(f);
}

/* The gate's wall-clock metrics (bench/udrpc_gate): a line per ratio,
 * "name median min max". The name has the handler when it is not the
 * echo, and the size when the run has several. */
static void write_metrics(const char *spec, const struct point *pts, unsigned n)
{
    const char *colon = strchr(spec, ':');
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(colon - spec), spec);
    FILE *f = fopen(colon + 1, "w");
    if (!f) {
        perror(colon + 1);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct point *p = &pts[i];
        char key[160];
        int len = snprintf(key, sizeof(key), "%s", name);
        if (p->type != REQ_ECHO)
            len += snprintf(key + len, sizeof(key) - (size_t)len, "_%s", type_name(p->type));
        if (opt.n_sizes > 1)
            len += snprintf(key + len, sizeof(key) - (size_t)len, "_s%zu", p->size);
        if (opt.n_sessions > 1)
            len += snprintf(key + len, sizeof(key) - (size_t)len, "_n%u", p->sessions);
        snprintf(key + len, sizeof(key) - (size_t)len, "_d%u", p->depth);
        /* A ratio with no sample (a run without a round trip) is left out:
         * the gate then fails it as not measured. */
        static const struct { const char *name; size_t off; } ratios[] = {
            { "rps_vs_raw", offsetof(struct point, rps_vs_raw) },
            { "p50_vs_raw", offsetof(struct point, p50_vs_raw) },
            { "rps_vs_gso", offsetof(struct point, rps_vs_gso) },
        };
        for (unsigned r = 0; r < sizeof(ratios) / sizeof(ratios[0]); r++) {
            const struct range *v = (const struct range *)((const char *)p + ratios[r].off);
            if (v->n)
                fprintf(f, "%s_%s %.3f %.3f %.3f\n", key, ratios[r].name, v->med, v->min,
                        v->max);
        }
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
        if (end == s || (*end && *end != ','))
            return 0;
        out[n++] = x;
        s = *end == ',' ? end + 1 : end;
    }
    return *s ? 0 : n;
}

/* "echo" or numbers 1..253, comma-separated. */
static unsigned parse_types(const char *v)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", v);
    unsigned n = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long x = !strcmp(t, "echo") ? REQ_ECHO : strtoul(t, &end, 0);
        if (n == MAX_LIST || (strcmp(t, "echo") && (*end || x < 1 || x > 255)))
            return 0;
        opt.types[n++] = (uint8_t)x;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rpc_bench [--transport auto|udp|loop] [--sizes 32,4096] [--depths 1,8,64]\n"
            "                 [--sessions 1,8] [--duration S] [--repeat N] [--threads]\n"
            "                 [--server-core N] [--client-core N] [--peers] [--verify]\n"
            "                 [--json FILE] [--csv FILE] [--plot DIR] [--metrics NAME:FILE]\n"
            "                 [--cc] [--host 127.0.0.1|::1|ADDR]\n"
            "                 [--server-netns NS --server-host ADDR]\n"
            "                 [--server URI [--rpc-id N]] [--req-types T,...|echo]\n"
            "                 [--handler-lib LIB.so [--plugin-arg ARG]]\n"
            "                 [--payload pattern|random|fixed:TEXT|hex:HEX|lines:FILE|lenpfx:FILE]\n"
            "                 [--expect any|echo|size:N|fixed:TEXT|hex:HEX] [--resp-max B]\n"
            "                 [--timeout-ms MS]\n"
            "       rpc_bench --compare A.json B.json [--noise F]\n");
    exit(2);
}

static void bad(const char *what, const char *v)
{
    fprintf(stderr, "rpc_bench: %s: %s\n", what, v);
    exit(2);
}

/* A comma-separated list of counts 1..max into out: their number. */
static unsigned parse_counts(const char *v, unsigned *out, unsigned long max, const char *what)
{
    unsigned long list[MAX_LIST];
    unsigned n = parse_list(v, list, MAX_LIST);
    if (!n) {
        fprintf(stderr, "rpc_bench: %s takes numbers, comma-separated: %s\n", what, v);
        exit(2);
    }
    for (unsigned j = 0; j < n; j++) {
        if (list[j] < 1 || list[j] > max) {
            fprintf(stderr, "rpc_bench: %s are 1..%lu: %s\n", what, max, v);
            exit(2);
        }
        out[j] = (unsigned)list[j];
    }
    return n;
}

static void parse(int argc, char **argv)
{
    int types_given = 0;
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
        unsigned n;
        if (!strcmp(k, "--transport")) opt.transport = v;
        else if (!strcmp(k, "--size") || !strcmp(k, "--sizes")) {
            if (!(n = parse_list(v, list, MAX_LIST)))
                bad("--sizes takes bytes, comma-separated", v);
            opt.n_sizes = n;
            for (unsigned j = 0; j < n; j++)
                opt.sizes[j] = list[j];
        } else if (!strcmp(k, "--depths")) {
            opt.n_depths = parse_counts(v, opt.depths, MAX_DEPTH, "--depths");
        } else if (!strcmp(k, "--sessions")) {
            opt.n_sessions = parse_counts(v, opt.sessions, MAX_SESSIONS, "--sessions");
        } else if (!strcmp(k, "--duration")) opt.duration_s = atof(v);
        else if (!strcmp(k, "--repeat")) opt.repeat = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(k, "--server-core")) opt.server_core = atoi(v);
        else if (!strcmp(k, "--client-core")) opt.client_core = atoi(v);
        else if (!strcmp(k, "--json")) opt.json = v;
        else if (!strcmp(k, "--csv")) opt.csv = v;
        else if (!strcmp(k, "--plot")) opt.plot = v;
        else if (!strcmp(k, "--metrics")) opt.metrics = v;
        else if (!strcmp(k, "--host")) opt.host = v;
        else if (!strcmp(k, "--server-netns")) bench_server_netns = v;
        else if (!strcmp(k, "--server-host")) bench_server_host = v;
        else if (!strcmp(k, "--server")) opt.server_uri = v;
        else if (!strcmp(k, "--rpc-id")) opt.rpc_id = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(k, "--req-type") || !strcmp(k, "--req-types")) {
            if (!(opt.n_types = parse_types(v)))
                bad("--req-types takes request types 1..255 or echo, comma-separated", v);
            types_given = 1;
        } else if (!strcmp(k, "--payload")) opt.payload = v;
        else if (!strcmp(k, "--expect")) opt.expect = v;
        else if (!strcmp(k, "--handler-lib")) opt.handler_lib = v;
        else if (!strcmp(k, "--plugin-arg")) opt.plugin_arg = v;
        else if (!strcmp(k, "--resp-max")) opt.resp_max = strtoul(v, NULL, 0);
        else if (!strcmp(k, "--timeout-ms")) opt.timeout_ms = (unsigned)strtoul(v, NULL, 0);
        else usage();
    }
    unsigned char ip[16]; /* an address literal, never a name (it reaches a shell) */
    if (opt.duration_s <= 0 || opt.repeat < 1 || opt.repeat > MAX_REPEAT)
        bad("--duration must be above 0 and --repeat 1..32", "");
    if (inet_pton(AF_INET, opt.host, ip) != 1 && inet_pton(AF_INET6, opt.host, ip) != 1)
        bad("--host takes an IPv4 or IPv6 address", opt.host);
    if (opt.metrics && (!strchr(opt.metrics, ':') || strchr(opt.metrics, ':') == opt.metrics))
        bad("--metrics takes NAME:FILE", opt.metrics);
    if ((bench_server_netns == NULL) != (bench_server_host == NULL))
        bad("--server-netns and --server-host go together",
            bench_server_netns ? bench_server_netns : bench_server_host);
    if (bench_server_netns && (opt.threads || opt.server_uri))
        bad("--server-netns runs rpc_bench's own server process: not with --threads or --server",
            bench_server_netns);
    if (opt.server_uri) {
        const char *why = NULL;
        if (udrpc_uri_check(opt.server_uri, &why) != 0)
            bad("--server", why ? why : opt.server_uri);
        if (!types_given)
            bad("--server needs --req-types (the server's handlers to sweep)", opt.server_uri);
        if (opt.handler_lib)
            bad("--handler-lib runs rpc_bench's own server: not with --server", opt.handler_lib);
        if (opt.rpc_id > 255)
            bad("--rpc-id is 0..255", "");
        for (unsigned j = 0; j < opt.n_types; j++)
            if (opt.types[j] == REQ_ECHO)
                bad("--server: \"echo\" is rpc_bench's own handler; give the server's type",
                    opt.server_uri);
    } else if (opt.rpc_id)
        bad("--rpc-id names the endpoint of a --server", "");
    if (bench_payload_parse(&payload, opt.payload) != 0 ||
        (opt.expect && bench_expect_parse(&expect, opt.expect) != 0))
        exit(2);
    if (opt.handler_lib) {
        if (bench_plugin_load(&plugin, opt.handler_lib, opt.plugin_arg, reserved_types,
                              sizeof(reserved_types)) != 0)
            exit(2);
        have_plugin = 1;
    }
    if (!types_given) { /* the echo, and every handler of the plugin */
        opt.types[opt.n_types++] = REQ_ECHO;
        for (unsigned j = 0; have_plugin && j < plugin.p->n_handlers && opt.n_types < MAX_LIST;
             j++)
            opt.types[opt.n_types++] = plugin.p->handlers[j].req_type;
    }
    for (unsigned j = 0; j < opt.n_types && !opt.server_uri; j++)
        if (opt.types[j] != REQ_ECHO && !(have_plugin && plugin.by_type[opt.types[j]]))
            fprintf(stderr, "rpc_bench: rpc_bench's server has no handler for type %u (load "
                            "one with --handler-lib)\n", opt.types[j]);
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        opt.server_core = opt.client_core = -1;
}

/* The size of the first request a plugin makes for type t: the size of
 * its points' peers (the raw echoes run before any udrpc endpoint). */
static size_t plugin_request_size(uint8_t t)
{
    static uint8_t buf[65536];
    long n = bench_user_request(&plugin, t, 0, buf, sizeof(buf));
    return n > 0 ? (size_t)n : 0;
}

/* The points in sweep order: types x sizes (where the payload has sizes)
 * x sessions x depths. */
static unsigned make_points(struct point *pts)
{
    unsigned n = 0;
    for (unsigned ti = 0; ti < opt.n_types; ti++) {
        uint8_t t = opt.types[ti];
        int sized = bench_payload_sized(&payload) && !plugin_makes(t);
        size_t unsized = plugin_makes(t) ? plugin_request_size(t) : bench_payload_cap(&payload, 0);
        for (unsigned si = 0; si < (sized ? opt.n_sizes : 1); si++)
            for (unsigned ni = 0; ni < opt.n_sessions; ni++)
                for (unsigned di = 0; di < opt.n_depths; di++) {
                    struct point *p = &pts[n++];
                    p->type = t;
                    p->size = sized ? opt.sizes[si] : unsized;
                    p->sessions = opt.sessions[ni];
                    p->depth = opt.depths[di];
                }
    }
    return n;
}

/* What the sweep's sessions go over, for its peers: "auto" (the default)
 * with rpc_bench's own server goes over shm, as any two default endpoints
 * on one host do. */
static const char *sweep_kind(void)
{
    return !strcmp(opt.transport, "auto") && !opt.server_uri ? "shm" : opt.transport;
}

/* Point i's peers in repetition rep: the same size and depth, on the same
 * cores, run just before udrpc's measurement of the point (an earlier
 * point of this size and depth lends its figures). */
static void run_peers(struct point *pts, unsigned i, unsigned rep, unsigned *done,
                      unsigned steps, double per_point)
{
    struct point *pt = &pts[i];
    const struct point *same = NULL; /* an earlier point of this size and depth */
    for (unsigned j = 0; j < i && !same; j++)
        if (pts[j].size == pt->size && pts[j].depth == pt->depth)
            same = &pts[j];
    if (same) {
        pt->raw_rep[rep] = same->raw_rep[rep];
        pt->gso_rep[rep] = same->gso_rep[rep];
        pt->floor_rep[rep] = same->floor_rep[rep];
        pt->have_raw = same->have_raw;
        pt->have_gso = same->have_gso;
        pt->have_sp = same->have_sp;
        pt->have_floor = same->have_floor;
        pt->have_ucx = same->have_ucx;
        pt->sp = same->sp;
        pt->ucx = same->ucx;
        pt->memcpy_bytes_per_s = same->memcpy_bytes_per_s;
        return;
    }
    progress(*done, steps, per_point * (steps - *done));
    ++*done;
    if (!strcmp(sweep_kind(), "shm")) {
        /* Its peers are of memory, not of the kernel's UDP. */
        pt->have_floor = shm_echo_run(pt->size, pt->depth, opt.duration_s, opt.server_core,
                                      opt.client_core, &pt->floor_rep[rep]) == 0;
        if (rep == 0) {
            pt->have_ucx = run_ucx(pt->size, pt->depth, &pt->ucx) == 0;
            if (pt->size >= 65536)
                pt->memcpy_bytes_per_s =
                    memcpy_bytes_per_s(pt->size, opt.duration_s, opt.client_core);
        }
        return;
    }
    if (pt->size > 65507)
        return;
    pt->have_raw = udp_echo_run(opt.host, pt->size, pt->depth, opt.duration_s, opt.server_core,
                                opt.client_core, 0, &pt->raw_rep[rep]) == 0;
    pt->have_gso = udp_echo_run(opt.host, pt->size, pt->depth, opt.duration_s, opt.server_core,
                                opt.client_core, 1, &pt->gso_rep[rep]) == 0;
    if (rep == 0 && pt->depth == 1)
        pt->have_sp = run_sockperf(pt->size, &pt->sp) == 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--compare")) {
        double noise = 0.05;
        if (argc == 6 && !strcmp(argv[4], "--noise"))
            noise = atof(argv[5]);
        else if (argc != 4)
            usage();
        return bench_compare(argv[2], argv[3], noise);
    }
    parse(argc, argv);
    udrpc__clock_init();
    unsigned max_points = opt.n_types * opt.n_sizes * opt.n_sessions * opt.n_depths;
    struct point *pts = calloc(max_points, sizeof(*pts));
    if (!pts)
        return 1;
    unsigned total = make_points(pts), done = 0;
    for (unsigned i = 0; i < total; i++)
        pts[i].reps = opt.repeat;
    double per_point = opt.duration_s + 0.4;
    unsigned steps = (want_peers() ? total * 3 : total) * opt.repeat;

    udrpc_config_t cfg = bench_cfg();
    for (unsigned i = 0; i < total; i++)
        if (pts[i].size > cfg.max_msg_size) {
            fprintf(stderr, "rpc_bench: sizes above %zu need a larger max_msg_size\n",
                    cfg.max_msg_size);
            return 2;
        }

    /* The server: a process (default), a thread, or (loop, the first of
     * the endpoint's transports) this thread; with --server, somebody
     * else's. The process is forked before this one starts a thread (its
     * Nexus's): a child forked beside a running thread keeps any lock that
     * thread held at the fork. Under ASan the allocator's did (6 of 174
     * runs of three bench_smoke.udp at once beside a spinning core): the
     * server's Nexus thread hung in its first calloc, and every connect
     * timed out. */
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    pid_t server_pid = -1;
    pthread_t st;
    struct server_thread_arg sta;
    int loop = !strncmp(cfg.transport, "loop", 4) &&
               (cfg.transport[4] == '\0' || cfg.transport[4] == ',');
    if (!opt.server_uri && !loop && !opt.threads) {
        server_pid = bench_fork_server(server_process, NULL, uri, sizeof(uri));
        if (server_pid < 0) {
            fprintf(stderr, "rpc_bench: server did not start\n");
            return 1;
        }
    }
    udrpc_nexus_t *nx = bench_nexus();

    cl.rpc = udrpc_create(nx, 1, NULL, client_sm, &cfg);
    if (!cl.rpc) {
        perror("rpc_bench: udrpc_create");
        return 1;
    }
    const char *tp = udrpc_transport_name(cl.rpc);
    if (opt.server_uri) {
        snprintf(uri, sizeof(uri), "%s", opt.server_uri);
    } else if (loop) {
        cl.local = udrpc_create(nx, 0, have_plugin ? plugin.state : NULL, NULL, &cfg);
        g_server_rpc = cl.local;
        strcpy(uri, udrpc_nexus_uri(nx));
    } else if (opt.threads) {
        memset(&sta, 0, sizeof(sta));
        sta.nx = nx;
        pthread_create(&st, NULL, server_thread, &sta);
        while (!atomic_load(&server_ready))
            usleep(1000);
        strcpy(uri, sta.uri);
    }
    bench_pin_cpu(opt.client_core);
    unsigned max_sessions = 0;
    for (unsigned i = 0; i < opt.n_sessions; i++)
        if (opt.sessions[i] > max_sessions)
            max_sessions = opt.sessions[i];
    cl.n_sessions = max_sessions;
    for (unsigned i = 0; i < max_sessions; i++) {
        cl.sessions[i] = udrpc_connect(cl.rpc, uri, (uint8_t)opt.rpc_id);
        if (cl.sessions[i] < 0) {
            fprintf(stderr, "rpc_bench: connect to %s: %s\n", uri,
                    udrpc_strerror(cl.sessions[i]));
            return 1;
        }
        if (opt.timeout_ms)
            udrpc_set_request_timeout(cl.rpc, cl.sessions[i], opt.timeout_ms);
    }
    while (cl.connected < max_sessions && !cl.failed_conn)
        pump();
    if (cl.failed_conn)
        return 1;
    udrpc_stats_t st0;
    udrpc_get_stats(cl.rpc, &st0);
    if (st0.shm_channels)
        tp = "shm"; /* (auto, or a list with shm: the sessions' transport) */
    else if (!strcmp(sweep_kind(), "shm") && strcmp(opt.transport, "shm") != 0)
        fprintf(stderr, "rpc_bench: the sessions went over %s, not shm: the peers measured "
                        "are shm's\n", tp);
    udrpc_msgbuf_alloc(cl.rpc, 16, &cl.info_req);
    udrpc_msgbuf_alloc(cl.rpc, 16, &cl.info_resp);
    udrpc_msgbuf_resize(&cl.info_req, 0);
    for (unsigned j = 0; j < opt.n_types; j++)
        probe(opt.types[j], opt.sizes[0]);

    printf("rpc_bench: transport %s on %s, %.1f s per point (+0.3 s warm-up)%s, server %s%s, "
           "client core %d%s\n",
           tp, udrpc_nexus_uri(nx), opt.duration_s, opt.repeat > 1 ? ", repeated" : "",
           opt.server_uri ? opt.server_uri
           : loop         ? "in the client's thread"
           : opt.threads  ? "thread"
                          : "process",
           loop || opt.server_uri ? "" : (opt.server_core >= 0 ? " on a core of its own" : ""),
           opt.client_core, opt.verify ? ", verifying every response" : "");
    if (have_plugin)
        printf("rpc_bench: plugin %s (%s), %u handler%s\n", plugin.p->name ? plugin.p->name : "?",
               plugin.path, plugin.p->n_handlers, plugin.p->n_handlers == 1 ? "" : "s");
    /* Repetitions go round every point in turn, so that a slow minute of
     * the machine touches one run of each point rather than every run of
     * one. */
    if (opt.repeat == 1)
        print_header(); /* each point as it ends; with repetitions, at the end */
    /* Each point's peers run just before it, on the same cores: a ratio
     * compares two measurements seconds apart, not minutes, so the host's
     * slower spells (vCPU placement, neighbours) have less room to fall
     * between them; they still can. Meanwhile udrpc's server sleeps
     * (want_peers) and nothing polls the client: their sessions live on
     * the Nexus threads' heartbeats. */
    for (unsigned rep = 0; rep < opt.repeat; rep++)
        for (unsigned i = 0; i < total; i++) {
            if (want_peers())
                run_peers(pts, i, rep, &done, steps, per_point);
            progress(done, steps, per_point * (steps - done));
            run_point(&pts[i], rep);
            done++;
            if (!cl.alive) {
                fprintf(stderr, "rpc_bench: every session to %s failed\n", uri);
                return 1;
            }
            if (opt.repeat == 1) {
                if (isatty(2))
                    fprintf(stderr, "\r%70s\r", "");
                summarize(&pts[i]);
                print_point(&pts[i], tp);
            }
        }
    progress(steps, steps, 0);
    if (opt.repeat > 1)
        print_header();
    uint64_t errors = 0, bad_resp = 0;
    for (unsigned i = 0; i < total; i++) {
        if (opt.repeat > 1) {
            summarize(&pts[i]);
            print_point(&pts[i], tp);
        }
        errors += errors_of(&pts[i].err);
        bad_resp += pts[i].err.bad_resp;
    }
    if (opt.json)
        write_json(opt.json, pts, total, tp);
    if (opt.csv)
        write_csv(opt.csv, pts, total, tp);
    if (opt.plot)
        write_plots(opt.plot, pts, total, tp);
    if (opt.metrics)
        write_metrics(opt.metrics, pts, total);

    int rc = 0;
    if (opt.verify || opt.expect || have_plugin)
        printf("verify: %llu response%s differed\n", (unsigned long long)bad_resp,
               bad_resp == 1 ? "" : "s");
    if (errors)
        printf("errors: %llu requests failed (per kind under each point)\n",
               (unsigned long long)errors);
    if (errors || bad_resp)
        rc = 1;
    atomic_store(&server_stop, 1);
    if (opt.threads && !loop && !opt.server_uri)
        pthread_join(st, NULL);
    if (server_pid > 0)
        bench_stop_server(server_pid);
    udrpc_msgbuf_free(cl.rpc, &cl.info_req);
    udrpc_msgbuf_free(cl.rpc, &cl.info_resp);
    udrpc_destroy(cl.rpc);
    if (cl.local)
        udrpc_destroy(cl.local);
    udrpc_nexus_destroy(nx);
    if (have_plugin)
        bench_plugin_unload(&plugin);
    bench_payload_free(&payload);
    bench_expect_free(&expect);
    free(pts);
    return rc;
}
