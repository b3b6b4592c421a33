/*
 * e2e_rpc.c — end-to-end RPCs between a client and a server endpoint.
 *
 * Checks: every response byte (the response is a keyed transform of the
 * request with its XXH3 in the first 8 bytes), exactly one continuation
 * per request (a per-request counter), exactly one handler run per request
 * (the server's count, fetched with a final STATS request), and a clean
 * disconnect. Optional: a blaster thread firing random and crafted-bad
 * datagrams at both data sockets and both SM ports during the run, and
 * the loop transport's fault injection.
 *
 *   e2e_rpc --transport udp|loop|mlx5-model|verbs --mode single|threads|procs --count N
 *           [--min-size B] [--max-size B|pkt] [--size-dist uniform|log]
 *           [--depth D] [--blast N]
 *           [--drop PPM] [--dup PPM] [--reorder PPM] [--corrupt PPM]
 *           [--delay PPM] [--rto-min-us US] [--rto-max-us US] [--seed S]
 *           [--timeout-s S (a stall: no request completing for S)]
 *           [--connect-timeout-ms MS] [--peer-timeout-ms MS]
 *   e2e_rpc --mode server --uri HOST:PORT [--timeout-s S]   (serves, then exits 0)
 *   e2e_rpc --mode client --server HOST:PORT --count N ...  (against it)
 * --size-dist log draws sizes log-uniformly (many small, some large), the
 * mix of a real service; uniform is the default.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "rpc_internal.h"
#include "test.h"

enum { REQ_ECHO = 1, REQ_STATS = 2 };

struct opts {
    const char *transport, *mode;
    uint64_t count;
    size_t min_size, max_size;
    int max_is_pkt;
    unsigned depth;
    unsigned blast;
    udrpc_faults_t faults;
    unsigned rto_min_us, rto_max_us;
    unsigned timeout_s;
    int log_sizes;
    const char *uri, *server;
    unsigned connect_timeout_ms;
    unsigned peer_timeout_ms;
};
static struct opts o = { .transport = "udp", .mode = "single", .count = 10000, .max_is_pkt = 1,
                         .depth = 8, .faults = { .seed = 1, .delay_us = 100 }, .timeout_s = 50,
                         .uri = "127.0.0.1:0" };

static uint64_t now_ms(void)
{
    return udrpc__monotonic_ns() / 1000000;
}

/* ------------------------------------------------------------ server ---- */

struct server {
    udrpc_t *rpc;
    uint64_t handled;
    atomic_int ready, stop;
};

/* out may be req itself (a response in place). */
static void make_response(const uint8_t *req, size_t n, uint8_t *out)
{
    uint64_t h = n >= 8 ? XXH3_64bits(req, n) : 0;
    for (size_t i = 0; i < n; i++)
        out[i] = req[i] ^ 0xA5 ^ (uint8_t)(i * 31);
    if (n >= 8)
        memcpy(out, &h, 8);
}

static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct server *sv = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    /* Every other request is answered in its own bytes (the request's
     * buffer itself where it has several packets), so that retransmission
     * and every fault below cover responses in place too. */
    if (sv->handled & 1) {
        udrpc_msgbuf_t *resp = udrpc_resp_msgbuf_in_place(h);
        CHECK(resp != NULL);
        make_response(resp->buf, resp->size, resp->buf);
    } else {
        udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
        CHECK(resp != NULL);
        make_response(req->buf, req->size, resp->buf);
    }
    sv->handled++;
    CHECK_EQ(udrpc_enqueue_response(h), 0);
}

static void stats_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct server *sv = ctx;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 8);
    memcpy(resp->buf, &sv->handled, 8);
    udrpc_enqueue_response(h);
}

static udrpc_config_t make_cfg(void)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = o.transport;
    cfg.faults = o.faults;
    if (o.rto_min_us)
        cfg.rto_min_us = o.rto_min_us;
    if (o.rto_max_us)
        cfg.rto_max_us = o.rto_max_us;
    if (o.connect_timeout_ms)
        cfg.connect_timeout_ms = o.connect_timeout_ms;
    if (o.peer_timeout_ms)
        cfg.peer_timeout_ms = o.peer_timeout_ms;
    return cfg;
}

static udrpc_nexus_t *g_nx;

/* udrpc_create, or exit 77 (skipped) where the transport is not on this
 * machine (mlx5 without a ConnectX, verbs without an RDMA device). */
static udrpc_t *create_rpc(udrpc_nexus_t *nx, uint8_t id, void *ctx, udrpc_sm_handler_t sm,
                           const udrpc_config_t *cfg)
{
    udrpc_t *rpc = udrpc_create(nx, id, ctx, sm, cfg);
    if (!rpc && errno == ENODEV) {
        printf("skipped: transport %s not available on this machine\n", cfg->transport);
        exit(77);
    }
    CHECK(rpc != NULL);
    return rpc;
}

static void *server_thread(void *arg)
{
    struct server *sv = arg;
    udrpc_config_t cfg = make_cfg();
    sv->rpc = create_rpc(g_nx, 0, sv, NULL, &cfg); /* owned by this thread */
    atomic_store(&sv->ready, 1);
    while (!atomic_load(&sv->stop))
        udrpc_run_event_loop_once(sv->rpc);
    return NULL;
}

/* ------------------------------------------------------------ client ---- */

struct req_ctx {
    udrpc_msgbuf_t req, resp;
    uint64_t id;
    struct client *cl;
};

struct client {
    udrpc_t *rpc;
    int session;
    int connected, disconnected;
    uint64_t issued, completed;
    uint8_t *done;
    uint64_t rng;
    uint64_t server_handled;
    int stats_done;
    struct req_ctx *ctxs;
};

static uint64_t rnd(struct client *cl)
{
    cl->rng ^= cl->rng << 13;
    cl->rng ^= cl->rng >> 7;
    cl->rng ^= cl->rng << 17;
    return cl->rng;
}

static void cont(void *ctx, void *tag, int status);

static void issue(struct client *cl, struct req_ctx *rc)
{
    size_t span = o.max_size - o.min_size + 1;
    size_t size = o.min_size + rnd(cl) % span;
    if (o.log_sizes) {
        /* log-uniform over [min+1, max+1), shifted down by one */
        double lo = log((double)o.min_size + 1), hi = log((double)o.max_size + 1);
        double u = (double)(rnd(cl) >> 11) / (double)(1ull << 53);
        size = (size_t)exp(lo + u * (hi - lo)) - 1;
        if (size > o.max_size)
            size = o.max_size;
    }
    if (rnd(cl) % 8 == 0)
        size = rnd(cl) % 2 ? o.min_size : o.max_size; /* the edges often */
    udrpc_msgbuf_resize(&rc->req, size);
    for (size_t i = 0; i < size; i += 8) {
        uint64_t r = rnd(cl);
        memcpy(rc->req.buf + i, &r, size - i < 8 ? size - i : 8);
    }
    rc->id = cl->issued++;
    CHECK_EQ(udrpc_enqueue_request(cl->rpc, cl->session, REQ_ECHO, &rc->req, &rc->resp,
                                   cont, rc), 0);
}

static void cont(void *ctx, void *tag, int status)
{
    struct req_ctx *rc = tag;
    struct client *cl = rc->cl;
    (void)ctx;
    if (status != 0) {
        fprintf(stderr, "request %llu failed: %s\n", (unsigned long long)rc->id,
                udrpc_strerror(status));
        exit(1);
    }
    CHECK_EQ(rc->resp.size, rc->req.size);
    static uint8_t expect[16 << 20];
    make_response(rc->req.buf, rc->req.size, expect);
    if (memcmp(expect, rc->resp.buf, rc->req.size) != 0) {
        fprintf(stderr, "request %llu: response bytes differ (size %zu)\n",
                (unsigned long long)rc->id, rc->req.size);
        exit(1);
    }
    CHECK_EQ(++cl->done[rc->id], 1);
    cl->completed++;
    if (cl->issued < o.count)
        issue(cl, rc);
}

static void stats_cont(void *ctx, void *tag, int status)
{
    struct client *cl = ((struct req_ctx *)tag)->cl;
    CHECK_EQ(status, 0);
    memcpy(&cl->server_handled, ((struct req_ctx *)tag)->resp.buf, 8);
    cl->stats_done = 1;
    (void)ctx;
}

static void client_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct client *cl = ctx;
    if (ev == UDRPC_SM_CONNECTED)
        cl->connected = 1;
    else if (ev == UDRPC_SM_DISCONNECTED)
        cl->disconnected = 1;
    else {
        fprintf(stderr, "session %d: event %d: %s\n", session, ev, udrpc_strerror(err));
        exit(1);
    }
}

#include "blaster.h"

/* -------------------------------------------------------------- main ---- */

static void parse(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        unsigned long long x = strtoull(v, NULL, 0);
        if (!strcmp(k, "--transport")) o.transport = TEST_TRANSPORT(v);
        else if (!strcmp(k, "--mode")) o.mode = v;
        else if (!strcmp(k, "--count")) o.count = x;
        else if (!strcmp(k, "--min-size")) o.min_size = x;
        else if (!strcmp(k, "--max-size")) { o.max_is_pkt = !strcmp(v, "pkt"); o.max_size = x; }
        else if (!strcmp(k, "--depth")) o.depth = (unsigned)x;
        else if (!strcmp(k, "--blast")) o.blast = (unsigned)x;
        else if (!strcmp(k, "--drop")) o.faults.drop_ppm = (uint32_t)x;
        else if (!strcmp(k, "--dup")) o.faults.dup_ppm = (uint32_t)x;
        else if (!strcmp(k, "--reorder")) o.faults.reorder_ppm = (uint32_t)x;
        else if (!strcmp(k, "--corrupt")) o.faults.corrupt_ppm = (uint32_t)x;
        else if (!strcmp(k, "--delay")) o.faults.delay_ppm = (uint32_t)x;
        else if (!strcmp(k, "--rto-min-us")) o.rto_min_us = (unsigned)x;
        else if (!strcmp(k, "--rto-max-us")) o.rto_max_us = (unsigned)x;
        else if (!strcmp(k, "--seed")) o.faults.seed = x;
        else if (!strcmp(k, "--timeout-s")) o.timeout_s = (unsigned)x;
        else if (!strcmp(k, "--size-dist")) o.log_sizes = !strcmp(v, "log");
        else if (!strcmp(k, "--uri")) o.uri = v;
        else if (!strcmp(k, "--server")) o.server = v;
        else if (!strcmp(k, "--connect-timeout-ms")) o.connect_timeout_ms = (unsigned)x;
        else if (!strcmp(k, "--peer-timeout-ms")) o.peer_timeout_ms = (unsigned)x;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            exit(2);
        }
    }
}

static char server_uri_opt[UDRPC_MAX_URI_LEN];

static udrpc_nexus_t *make_nexus_at(const char *uri)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(nx, REQ_STATS, stats_handler, UDRPC_HANDLER_FG), 0);
    return nx;
}

/* The server process of --mode procs: serves until its parent is gone. */
static int run_server_process(int pipe_fd)
{
    udrpc_nexus_t *nx = make_nexus_at(pipe_fd >= 0 ? test_local_uri() : o.uri);
    struct server sv = { 0 };
    udrpc_config_t cfg = make_cfg();
    sv.rpc = create_rpc(nx, 0, &sv, NULL, &cfg);
    if (pipe_fd >= 0) {
        char uri[UDRPC_MAX_URI_LEN] = { 0 };
        strcpy(uri, udrpc_nexus_uri(nx));
        CHECK_EQ(write(pipe_fd, uri, sizeof(uri)), (long)sizeof(uri));
        close(pipe_fd);
    } else {
        printf("serving at %s\n", udrpc_nexus_uri(nx));
        fflush(stdout);
    }
    pid_t parent = getppid();
    uint64_t end = now_ms() + (uint64_t)o.timeout_s * 1000 + 5000;
    while ((pipe_fd < 0 || getppid() == parent) && now_ms() < end)
        udrpc_run_event_loop(sv.rpc, 10);
    udrpc_destroy(sv.rpc);
    udrpc_nexus_destroy(nx);
    return 0;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    if (!strcmp(o.mode, "server"))
        return run_server_process(-1);
    int remote = !strcmp(o.mode, "client");
    CHECK(!remote || o.server);
    if (remote)
        strncpy(server_uri_opt, o.server, sizeof(server_uri_opt) - 1);
    int procs = !strcmp(o.mode, "procs") || remote, threads = !strcmp(o.mode, "threads");
    pid_t child = -1;
    char server_uri[UDRPC_MAX_URI_LEN] = { 0 };
    if (remote) {
        strcpy(server_uri, server_uri_opt);
    } else if (procs) {
        int p[2];
        CHECK_EQ(pipe(p), 0);
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            close(p[0]);
            exit(run_server_process(p[1]));
        }
        close(p[1]);
        CHECK_EQ(read(p[0], server_uri, sizeof(server_uri)), (long)sizeof(server_uri));
        close(p[0]);
    }

    udrpc_nexus_t *nx = make_nexus_at(remote ? o.uri : test_local_uri());
    udrpc_config_t cfg = make_cfg();
    struct server sv = { 0 };
    pthread_t sv_thread;
    g_nx = nx;
    if (threads) {
        CHECK_EQ(pthread_create(&sv_thread, NULL, server_thread, &sv), 0);
        while (!atomic_load(&sv.ready))
            usleep(1000);
    } else if (!procs) {
        sv.rpc = create_rpc(nx, 0, &sv, NULL, &cfg);
    }
    if (!procs)
        strcpy(server_uri, udrpc_nexus_uri(nx));

    struct client cl;
    memset(&cl, 0, sizeof(cl));
    cl.rng = 0x12345678ull ^ o.faults.seed;
    cl.rpc = create_rpc(nx, 1, &cl, client_sm, &cfg);
    if (o.max_is_pkt)
        o.max_size = udrpc_max_data_per_pkt(cl.rpc);
    CHECK(o.max_size >= o.min_size);
    cl.done = calloc(o.count, 1);
    cl.ctxs = calloc(o.depth + 1, sizeof(*cl.ctxs));
    for (unsigned i = 0; i <= o.depth; i++) {
        cl.ctxs[i].cl = &cl;
        CHECK_EQ(udrpc_msgbuf_alloc(cl.rpc, o.max_size ? o.max_size : 1, &cl.ctxs[i].req), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(cl.rpc, o.max_size > 8 ? o.max_size : 8, &cl.ctxs[i].resp), 0);
    }

    /* A stall detector, not a time limit: a slow machine (a sanitizer
     * build beside other work) takes as long as it takes; a hang is no
     * request completing for timeout_s. (ctest's own timeout bounds the
     * whole.) */
    uint64_t t0 = now_ms(), progress_ms = t0, last_done = 0;
    cl.session = udrpc_connect(cl.rpc, server_uri, 0);
    CHECK(cl.session >= 0);
#define PUMP()                                                                   \
    do {                                                                         \
        udrpc_run_event_loop_once(cl.rpc);                                       \
        if (!procs && !threads)                                                  \
            udrpc_run_event_loop_once(sv.rpc);                                   \
        uint64_t _now = now_ms();                                                \
        if (cl.completed != last_done) {                                         \
            last_done = cl.completed;                                            \
            progress_ms = _now;                                                  \
        } else if (_now - progress_ms > (uint64_t)o.timeout_s * 1000) {          \
            fprintf(stderr, "stalled: no request completed for %u s (%llu of %llu " \
                    "done)\n", o.timeout_s, (unsigned long long)cl.completed,    \
                    (unsigned long long)o.count);                                \
            exit(1);                                                             \
        }                                                                        \
    } while (0)
    while (!cl.connected)
        PUMP();

    struct blaster bl;
    pthread_t bl_thread;
    memset(&bl, 0, sizeof(bl));
    if (o.blast) {
        CHECK(!strcmp(o.transport, "udp"));
        CHECK_EQ(udrpc__uri_parse(server_uri, &bl.targets[0], NULL), 0);
        CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(nx), &bl.targets[1], NULL), 0);
        memcpy(&bl.targets[2], udrpc__session_get(cl.rpc, cl.session)->peer.tx, sizeof(bl.targets[2]));
        bl.targets[3] = bl.targets[1]; /* our data socket: the route's port */
        const struct tp_route *me = &cl.rpc->tp->local;
        uint16_t port_be;
        memcpy(&port_be, me->bytes + me->len - 2, 2);
        udrpc__addr_set_port(&bl.targets[3], ntohs(port_be));
        bl.n_targets = 4;
        bl.count = o.blast;
        CHECK_EQ(pthread_create(&bl_thread, NULL, blaster_main, &bl), 0);
    }

    uint64_t t1 = now_ms();
    for (unsigned i = 0; i < o.depth && cl.issued < o.count; i++)
        issue(&cl, &cl.ctxs[i]);
    while (cl.completed < o.count || (o.blast && !atomic_load(&bl.done)))
        PUMP();
    uint64_t t2 = now_ms();
    if (o.blast)
        pthread_join(bl_thread, NULL);

    /* The server ran the handler exactly once per request. */
    struct req_ctx *sc = &cl.ctxs[o.depth];
    udrpc_msgbuf_resize(&sc->req, 0);
    CHECK_EQ(udrpc_enqueue_request(cl.rpc, cl.session, REQ_STATS, &sc->req, &sc->resp,
                                   stats_cont, sc), 0);
    while (!cl.stats_done)
        PUMP();
    CHECK_EQ(cl.server_handled, o.count);
    for (uint64_t i = 0; i < o.count; i++)
        CHECK_EQ(cl.done[i], 1);

    udrpc_stats_t cs, ss;
    udrpc_get_stats(cl.rpc, &cs);
    CHECK_EQ(cs.reqs_completed, o.count + 1);
    udrpc_session_stats_t sst;
    CHECK_EQ(udrpc_get_session_stats(cl.rpc, cl.session, &sst), 0);
    CHECK_EQ(udrpc_disconnect(cl.rpc, cl.session), 0);
    while (!cl.disconnected)
        PUMP();
    CHECK(!udrpc_is_connected(cl.rpc, cl.session));

    if (threads) {
        atomic_store(&sv.stop, 1);
        pthread_join(sv_thread, NULL);
        sv.rpc->owner = pthread_self(); /* its thread has ended: ours now */
    }
    if (!procs) {
        udrpc_get_stats(sv.rpc, &ss);
        CHECK_EQ(ss.sessions_active, 0); /* the disconnect freed the server side */
        uint64_t bad = 0;
        for (int r = 0; r < UDRPC_DROP_MAX; r++)
            bad += ss.drops[r] + cs.drops[r];
        if (o.blast)
            CHECK(bad > 0 && ss.sm_drops + cs.sm_drops > 0);
        printf("server drops:");
        for (int r = 0; r < UDRPC_DROP_MAX; r++)
            if (ss.drops[r] + cs.drops[r])
                printf(" %s=%llu", udrpc_drop_reason_str((udrpc_drop_reason_t)r),
                       (unsigned long long)(ss.drops[r] + cs.drops[r]));
        printf(" sm=%llu\n", (unsigned long long)(ss.sm_drops));
    }
    double secs = (double)(t2 - t1) / 1000.0;
    printf("e2e %s/%s: %llu RPCs of %zu..%zu B at depth %u in %.2f s (%.0f RPC/s), "
           "retransmits %llu, rto %llu, dup_rx %llu; srtt %.0f us, rttvar %.0f us, rto %.0f us\n",
           o.transport, o.mode, (unsigned long long)o.count, o.min_size, o.max_size, o.depth,
           secs, secs > 0 ? (double)o.count / secs : 0.0, (unsigned long long)cs.retransmits,
           (unsigned long long)cs.rto_fired, (unsigned long long)cs.dup_rx, sst.rtt_avg_us,
           sst.rttvar_us, sst.rto_us);
    printf("client udp offload %s%s: %llu GSO sends of %llu datagrams, %llu GRO receives of "
           "%llu datagrams\n", cs.udp_offload & UDRPC_UDP_GSO ? "gso" : "-",
           cs.udp_offload & UDRPC_UDP_GRO ? "+gro" : "", (unsigned long long)cs.udp_gso_sends,
           (unsigned long long)cs.udp_gso_pkts, (unsigned long long)cs.udp_gro_bufs,
           (unsigned long long)cs.udp_gro_pkts);
    if (cs.xdp_mode & UDRPC_XDP_ON)
        printf("client xdp mode %s, %s, in place %s: %llu bad frames, %llu kicks, "
               "%llu in-place sends\n",
               cs.xdp_mode & UDRPC_XDP_NATIVE ? "native" : "skb",
               cs.xdp_mode & UDRPC_XDP_ZEROCOPY ? "zerocopy" : "copy",
               cs.xdp_mode & UDRPC_XDP_IN_PLACE ? "on" : "off",
               (unsigned long long)cs.xdp_rx_bad, (unsigned long long)cs.xdp_tx_kicks,
               (unsigned long long)cs.xdp_in_place_sends);
    if (strstr(o.transport, "shm"))
        printf("shm: client channels %llu, ring full %llu + server's %llu, bad rings %llu, "
               "refused %llu\n", (unsigned long long)cs.shm_channels,
               (unsigned long long)cs.shm_ring_full, (unsigned long long)ss.shm_ring_full,
               (unsigned long long)(cs.shm_bad_rings + ss.shm_bad_rings),
               (unsigned long long)(cs.shm_refused + ss.shm_refused));

    for (unsigned i = 0; i <= o.depth; i++) {
        udrpc_msgbuf_free(cl.rpc, &cl.ctxs[i].req);
        udrpc_msgbuf_free(cl.rpc, &cl.ctxs[i].resp);
    }
    udrpc_destroy(cl.rpc);
    if (!procs)
        udrpc_destroy(sv.rpc);
    udrpc_nexus_destroy(nx);
    free(cl.done);
    free(cl.ctxs);
    if (procs && child > 0) {
        kill(child, SIGTERM);
        int st;
        waitpid(child, &st, 0);
    }
    return 0;
}
