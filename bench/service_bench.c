/*
 * service_bench — the shape of a new user's first service, run with default
 * settings on a small machine: a server process with two endpoints (one
 * thread each) and one background worker; GET to endpoint 0 is forwarded
 * to endpoint 1 as a nested RPC (a copy of the request), and answered
 * there; SUM (up to 100 KB of bytes, summed) runs as a background handler
 * on either. A client process keeps 16 requests in flight over a session
 * to each endpoint, half GET and half SUM, and checks every answer.
 *
 * Printed: RPC/s, errors, sessions failed, and the retransmissions of the
 * client and of both server endpoints, with the kernel's drops: on a clean
 * network (loopback) retransmissions should be 0, however busy the cores.
 * Its threads outnumber the cores of a 2-core machine: three busy-poll.
 *
 *   service_bench [seconds (5)]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "udrpc.h"

enum { REQ_GET = 1, REQ_SUM = 2, DEPTH = 16, SUM_MAX = 100 * 1024, KEY = 32 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What GET answers: a value made from the key, so the client can check. */
static void make_value(const uint8_t *key, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(key[i] * 7 + 3);
}

/* ------------------------------------------------------------ server ---- */

struct ep {
    udrpc_t *rpc;
    int id, fwd_session, fwd_connected;
    udrpc_nexus_t *nx;
    udrpc_stats_t final;
};
static atomic_int g_stop;
static struct ep g_ep[2];

struct fwd { /* a GET on its way to endpoint 1 */
    udrpc_req_handle_t *h;
    udrpc_msgbuf_t req, resp;
    struct fwd *next;
};
static struct fwd *g_fwd_free;

static void fwd_done(void *ctx, void *tag, int status)
{
    struct ep *e = ctx;
    struct fwd *f = tag;
    udrpc_msgbuf_t *out = udrpc_resp_msgbuf(f->h, status == 0 ? f->resp.size : 0);
    if (out && status == 0)
        memcpy(out->buf, f->resp.buf, f->resp.size);
    udrpc_enqueue_response(f->h);
    f->next = g_fwd_free;
    g_fwd_free = f;
    (void)e;
}

static void get_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct ep *e = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    if (e->id == 1) {
        udrpc_msgbuf_t *out = udrpc_resp_msgbuf(h, req->size);
        if (out)
            make_value(req->buf, req->size, out->buf);
        udrpc_enqueue_response(h);
        return;
    }
    /* Endpoint 0 forwards a copy to endpoint 1 (nested RPC). */
    struct fwd *f = g_fwd_free;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f || udrpc_msgbuf_alloc(e->rpc, KEY, &f->req) != 0 ||
            udrpc_msgbuf_alloc(e->rpc, KEY, &f->resp) != 0) {
            udrpc_enqueue_response(h); /* empty: the client counts an error */
            free(f);
            return;
        }
    } else {
        g_fwd_free = f->next;
    }
    f->h = h;
    memcpy(f->req.buf, req->buf, req->size);
    udrpc_msgbuf_resize(&f->req, req->size);
    if (udrpc_enqueue_request(e->rpc, e->fwd_session, REQ_GET, &f->req, &f->resp, fwd_done,
                              f) != 0) {
        udrpc_enqueue_response(h);
        f->next = g_fwd_free;
        g_fwd_free = f;
    }
}

static void sum_handler(udrpc_req_handle_t *h, void *ctx) /* background */
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    uint64_t sum = 0;
    for (size_t i = 0; i < req->size; i++)
        sum += req->buf[i];
    udrpc_msgbuf_t *out = udrpc_resp_msgbuf(h, 8);
    if (out)
        memcpy(out->buf, &sum, 8);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void ep_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct ep *e = ctx;
    (void)s;
    if (ev == UDRPC_SM_CONNECTED)
        e->fwd_connected = 1;
    else
        fprintf(stderr, "service_bench: endpoint %d's forward session: event %d (%s)\n", e->id,
                ev, udrpc_strerror(err));
}

static void *ep_main(void *arg)
{
    struct ep *e = arg;
    e->rpc = udrpc_create(e->nx, (uint8_t)e->id, e, ep_sm, NULL);
    if (!e->rpc) {
        perror("udrpc_create");
        exit(1);
    }
    if (e->id == 0)
        e->fwd_session = udrpc_connect(e->rpc, udrpc_nexus_uri(e->nx), 1);
    while (!atomic_load(&g_stop))
        udrpc_run_event_loop(e->rpc, 10);
    udrpc_get_stats(e->rpc, &e->final);
    return NULL;
}

static void on_term(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void server_main(int ready_fd, int stats_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGTERM, on_term);
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    ncfg.bg_threads = 1;
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", &ncfg);
    if (!nx || udrpc_register_handler(nx, REQ_GET, get_handler, UDRPC_HANDLER_FG) != 0 ||
        udrpc_register_handler(nx, REQ_SUM, sum_handler, UDRPC_HANDLER_BG) != 0)
        exit(1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        g_ep[i].id = i;
        g_ep[i].nx = nx;
    }
    pthread_create(&th[1], NULL, ep_main, &g_ep[1]);
    usleep(50000); /* endpoint 1 exists before 0 connects to it */
    pthread_create(&th[0], NULL, ep_main, &g_ep[0]);
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    strcpy(uri, udrpc_nexus_uri(nx));
    if (write(ready_fd, uri, sizeof(uri)) != (ssize_t)sizeof(uri))
        exit(1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    udrpc_stats_t st[2] = { g_ep[0].final, g_ep[1].final };
    if (write(stats_fd, st, sizeof(st)) != (ssize_t)sizeof(st))
        exit(1);
    _exit(0);
}

/* ------------------------------------------------------------ client ---- */

static struct {
    udrpc_t *rpc;
    int session[2], connected, failed;
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
    uint64_t expect_sum[DEPTH], done, errors, issued;
    int stop;
} C;

static void issue(int i);

static void cont(void *ctx, void *tag, int status)
{
    int i = (int)(intptr_t)tag;
    (void)ctx;
    if (status != 0) {
        C.errors++;
    } else if (i % 2 == 0) {
        uint8_t want[KEY];
        make_value(C.req[i].buf, KEY, want);
        if (C.resp[i].size != KEY || memcmp(C.resp[i].buf, want, KEY) != 0)
            C.errors++;
    } else {
        uint64_t got = 0;
        if (C.resp[i].size == 8)
            memcpy(&got, C.resp[i].buf, 8);
        if (got != C.expect_sum[i])
            C.errors++;
    }
    C.done++;
    if (!C.stop)
        issue(i);
}

static void issue(int i)
{
    uint64_t n = C.issued++;
    if (i % 2 == 0) {
        udrpc_msgbuf_resize(&C.req[i], KEY);
        for (int j = 0; j < KEY; j++)
            C.req[i].buf[j] = (uint8_t)(n + (uint64_t)j);
    } else {
        size_t size = 1 + (n * 2654435761u) % SUM_MAX;
        udrpc_msgbuf_resize(&C.req[i], size);
        uint64_t sum = 0;
        for (size_t j = 0; j < size; j++) {
            C.req[i].buf[j] = (uint8_t)(j ^ n);
            sum += C.req[i].buf[j];
        }
        C.expect_sum[i] = sum;
    }
    int s = C.session[(n / 2) % 2];
    if (udrpc_enqueue_request(C.rpc, s, i % 2 == 0 ? REQ_GET : REQ_SUM, &C.req[i], &C.resp[i],
                              cont, (void *)(intptr_t)i) != 0)
        C.errors++;
}

static void client_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s, (void)ctx;
    if (ev == UDRPC_SM_CONNECTED) {
        C.connected++;
    } else {
        C.failed++;
        fprintf(stderr, "service_bench: client session event %d (%s)\n", ev,
                udrpc_strerror(err));
    }
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5;
    int ready[2], stats[2];
    if (pipe(ready) || pipe(stats))
        return 1;
    pid_t srv = fork();
    if (srv == 0) {
        close(ready[0]);
        close(stats[0]);
        server_main(ready[1], stats[1]);
    }
    close(ready[1]);
    close(stats[1]);
    char uri[UDRPC_MAX_URI_LEN];
    if (read(ready[0], uri, sizeof(uri)) != (ssize_t)sizeof(uri))
        return 1;
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    C.rpc = udrpc_create(nx, 0, NULL, client_sm, NULL);
    if (!C.rpc)
        return 1;
    for (int k = 0; k < 2; k++)
        C.session[k] = udrpc_connect(C.rpc, uri, (uint8_t)k);
    double t0 = now_s();
    while (C.connected + C.failed < 2 && now_s() - t0 < 5)
        udrpc_run_event_loop_once(C.rpc);
    if (C.connected != 2)
        return 1;
    for (int i = 0; i < DEPTH; i++) {
        udrpc_msgbuf_alloc(C.rpc, i % 2 ? SUM_MAX : KEY, &C.req[i]);
        udrpc_msgbuf_alloc(C.rpc, KEY, &C.resp[i]);
        issue(i);
    }
    udrpc_run_event_loop(C.rpc, 500); /* warm-up */
    udrpc_stats_t c0, c1;
    udrpc_get_stats(C.rpc, &c0);
    uint64_t done0 = C.done;
    t0 = now_s();
    udrpc_run_event_loop(C.rpc, (unsigned)(secs * 1000));
    double took = now_s() - t0;
    udrpc_get_stats(C.rpc, &c1);
    uint64_t done = C.done - done0;
    C.stop = 1;
    udrpc_run_event_loop(C.rpc, 200);
    kill(srv, SIGTERM);
    udrpc_stats_t st[2] = { { 0 } };
    ssize_t got = read(stats[0], st, sizeof(st));
    waitpid(srv, NULL, 0);
    printf("service_bench: %.0f RPC/s over %.1f s (%llu done), %llu errors, %d sessions failed\n",
           (double)done / took, took, (unsigned long long)done, (unsigned long long)C.errors,
           C.failed);
    printf("service_bench: retransmits: client %llu (%llu timeouts, %llu found needless) in the measured %.1f s; "
           "server endpoints %llu and %llu over the whole run; kernel drops %llu (client), "
           "%llu (server)\n",
           (unsigned long long)(c1.retransmits - c0.retransmits),
           (unsigned long long)(c1.rto_fired - c0.rto_fired),
           (unsigned long long)(c1.rto_needless - c0.rto_needless), took,
           (unsigned long long)st[0].retransmits, (unsigned long long)st[1].retransmits,
           (unsigned long long)c1.kernel_drops,
           (unsigned long long)(got == (ssize_t)sizeof(st) ? st[0].kernel_drops : 0));
    for (int k = 0; k < 2; k++) {
        udrpc_session_stats_t ss;
        if (udrpc_get_session_stats(C.rpc, C.session[k], &ss) == 0)
            printf("service_bench: session to endpoint %d: srtt %.0f us, rttvar %.0f us, rto "
                   "%.0f us, min rtt %.0f us, %llu samples\n",
                   k, ss.rtt_avg_us, ss.rttvar_us, ss.rto_us, ss.rtt_min_us,
                   (unsigned long long)ss.rtt_samples);
    }
    udrpc_destroy(C.rpc);
    udrpc_nexus_destroy(nx);
    return C.errors || C.failed ? 1 : 0;
}
