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
 *
 * Written against the API a new user asked for (issue 20): handlers find
 * their endpoint with udrpc_req_rpc; sessions carry a context
 * (udrpc_connect_ctx) and a default deadline (udrpc_set_request_timeout);
 * endpoints end with udrpc_close. The service runs twice in one run:
 * every endpoint busy-polling (its threads outnumber a 2-core machine's
 * cores: three busy-poll), then every endpoint waiting in epoll on
 * udrpc_get_fd; each with the CPU both processes used. Then, in the same
 * client: a request to a handler that never answers ends at its deadline
 * (-ETIMEDOUT) while the session goes on; a 9 MiB request to a server
 * whose max_msg_size is 8 MiB is refused at once (-EMSGSIZE).
 *
 *   service_bench [seconds per mode (5)]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "udrpc.h"

enum { REQ_GET = 1, REQ_SUM = 2, REQ_HANG = 3, DEPTH = 16, SUM_MAX = 100 * 1024, KEY = 32 };

static int g_epoll; /* this run's mode: every endpoint waits in epoll */

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* One event-loop iteration of rpc: busy, or after waiting on its fd. */
static void step(udrpc_t *rpc, int fd)
{
    if (fd >= 0) {
        struct epoll_event e;
        (void)epoll_wait(fd, &e, 1, 100);
    }
    udrpc_run_event_loop_once(rpc);
}

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
static atomic_int g_stop, g_created;
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
    udrpc_t *rpc = udrpc_req_rpc(h); /* the endpoint the request came to */
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
        if (!f || udrpc_msgbuf_alloc(rpc, KEY, &f->req) != 0 ||
            udrpc_msgbuf_alloc(rpc, KEY, &f->resp) != 0) {
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
    if (udrpc_enqueue_request(rpc, e->fwd_session, REQ_GET, &f->req, &f->resp, fwd_done,
                              f) != 0) {
        udrpc_enqueue_response(h);
        f->next = g_fwd_free;
        g_fwd_free = f;
    }
}

static void hang_handler(udrpc_req_handle_t *h, void *ctx) /* never answers */
{
    (void)h, (void)ctx;
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
    struct ep *e = udrpc_session_context(((struct ep *)ctx)->rpc, s); /* connect_ctx's */
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
    atomic_fetch_add(&g_created, 1);
    if (e->id == 0) {
        e->fwd_session = udrpc_connect_ctx(e->rpc, udrpc_nexus_uri(e->nx), 1, e);
        udrpc_set_request_timeout(e->rpc, e->fwd_session, 2000); /* a GET's deadline */
    }
    int fd = g_epoll ? udrpc_get_fd(e->rpc) : -1;
    while (!atomic_load(&g_stop))
        step(e->rpc, fd);
    udrpc_get_stats(e->rpc, &e->final);
    udrpc_close(e->rpc, 1000); /* its forwarding session says goodbye */
    return NULL;
}

struct server_report {
    udrpc_stats_t st[2];
    double cpu_s; /* the server process's */
};

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
        udrpc_register_handler(nx, REQ_SUM, sum_handler, UDRPC_HANDLER_BG) != 0 ||
        udrpc_register_handler(nx, REQ_HANG, hang_handler, UDRPC_HANDLER_FG) != 0)
        exit(1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        g_ep[i].id = i;
        g_ep[i].nx = nx;
    }
    pthread_create(&th[1], NULL, ep_main, &g_ep[1]);
    while (atomic_load(&g_created) < 1) /* endpoint 1 exists before 0 connects to it */
        usleep(1000);
    pthread_create(&th[0], NULL, ep_main, &g_ep[0]);
    while (atomic_load(&g_created) < 2) /* and both before the client does */
        usleep(1000);
    char uri[UDRPC_MAX_URI_LEN] = { 0 };
    strcpy(uri, udrpc_nexus_uri(nx));
    if (write(ready_fd, uri, sizeof(uri)) != (ssize_t)sizeof(uri))
        exit(1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    struct server_report rep = { { g_ep[0].final, g_ep[1].final }, cpu_s(RUSAGE_SELF) };
    if (write(stats_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
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
    int hang_status;
} C;

static void hang_cont(void *ctx, void *tag, int status)
{
    (void)ctx, (void)tag;
    C.hang_status = status;
}

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
    } else if (ev != UDRPC_SM_DISCONNECTED) { /* udrpc_close's goodbyes */
        C.failed++;
        fprintf(stderr, "service_bench: client session event %d (%s)\n", ev,
                udrpc_strerror(err));
    }
}

struct mode_result {
    double rps, cpu_client, cpu_server; /* cores */
    uint64_t errors;
    int failed;
};

/* One run of the service in this process's mode (g_epoll). */
static int run_mode(double secs, udrpc_nexus_t *nx, struct mode_result *out, int extras)
{
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
    close(ready[0]);
    memset(&C, 0, sizeof(C));
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.max_msg_size = (16u << 20) - 1; /* larger than the server's 8 MiB */
    C.rpc = udrpc_create(nx, 0, NULL, client_sm, &cfg);
    if (!C.rpc)
        return 1;
    int fd = g_epoll ? udrpc_get_fd(C.rpc) : -1;
    for (int k = 0; k < 2; k++) {
        C.session[k] = udrpc_connect_ctx(C.rpc, uri, (uint8_t)k, &C.session[k]);
        udrpc_set_request_timeout(C.rpc, C.session[k], 2000);
    }
    double t0 = now_s();
    while (C.connected + C.failed < 2 && now_s() - t0 < 5)
        step(C.rpc, fd);
    if (C.connected != 2)
        return 1;
    for (int i = 0; i < DEPTH; i++) {
        udrpc_msgbuf_alloc(C.rpc, i % 2 ? SUM_MAX : KEY, &C.req[i]);
        udrpc_msgbuf_alloc(C.rpc, KEY, &C.resp[i]);
        issue(i);
    }
    t0 = now_s();
    while (now_s() - t0 < 0.5) /* warm-up */
        step(C.rpc, fd);
    udrpc_stats_t c0, c1;
    udrpc_get_stats(C.rpc, &c0);
    uint64_t done0 = C.done;
    double cpu0 = cpu_s(RUSAGE_THREAD);
    t0 = now_s();
    while (now_s() - t0 < secs)
        step(C.rpc, fd);
    double took = now_s() - t0;
    out->cpu_client = (cpu_s(RUSAGE_THREAD) - cpu0) / took;
    udrpc_get_stats(C.rpc, &c1);
    uint64_t done = C.done - done0;
    C.stop = 1;
    t0 = now_s();
    while (now_s() - t0 < 0.2)
        step(C.rpc, fd);
    if (extras) {
        /* A handler that never answers: the deadline ends the request, and
         * the session serves on. */
        static udrpc_msgbuf_t q, r;
        udrpc_msgbuf_alloc(C.rpc, KEY, &q);
        udrpc_msgbuf_alloc(C.rpc, KEY, &r);
        C.hang_status = 1;
        double h0 = now_s();
        if (udrpc_enqueue_request_timeout(C.rpc, C.session[1], REQ_HANG, &q, &r, hang_cont,
                                          NULL, 50) == 0)
            while (C.hang_status == 1 && now_s() - h0 < 5)
                step(C.rpc, fd);
        printf("service_bench: a handler that never answers: %s after %.0f ms (deadline 50 ms); "
               "session %s\n", udrpc_strerror(C.hang_status), (now_s() - h0) * 1000,
               udrpc_is_connected(C.rpc, C.session[1]) ? "still connected" : "lost");
        /* 9 MiB to a server whose limit is 8 MiB: refused at once. */
        static udrpc_msgbuf_t big;
        int ret = udrpc_msgbuf_alloc(C.rpc, 9u << 20, &big);
        if (ret == 0)
            ret = udrpc_enqueue_request(C.rpc, C.session[1], REQ_SUM, &big, &r, cont, NULL);
        printf("service_bench: a 9 MiB request to a server whose max_msg_size is 8 MiB: %s\n",
               udrpc_strerror(ret));
        if (ret != -EMSGSIZE || C.hang_status != -ETIMEDOUT)
            C.errors++;
    }
    /* The client closes: its servers free the sessions at once. */
    int closed = udrpc_close(C.rpc, 1000);
    kill(srv, SIGTERM);
    struct server_report rep;
    memset(&rep, 0, sizeof(rep));
    ssize_t got = read(stats[0], &rep, sizeof(rep));
    close(stats[0]);
    waitpid(srv, NULL, 0);
    out->rps = (double)done / took;
    out->cpu_server = rep.cpu_s; /* whole run: divided below */
    out->errors = C.errors;
    out->failed = C.failed;
    printf("service_bench %s: %.0f RPC/s over %.1f s (%llu done), %llu errors, %d sessions "
           "failed, close %s\n", g_epoll ? "epoll" : "busy", out->rps, took,
           (unsigned long long)done, (unsigned long long)C.errors, C.failed, udrpc_strerror(closed));
    printf("service_bench %s: retransmits: client %llu (%llu timeouts, %llu found needless); "
           "server endpoints %llu and %llu over the whole run; server sessions failed %llu "
           "and %llu (0: every client said goodbye)\n", g_epoll ? "epoll" : "busy",
           (unsigned long long)(c1.retransmits - c0.retransmits),
           (unsigned long long)(c1.rto_fired - c0.rto_fired),
           (unsigned long long)(c1.rto_needless - c0.rto_needless),
           (unsigned long long)rep.st[0].retransmits, (unsigned long long)rep.st[1].retransmits,
           (unsigned long long)rep.st[0].sessions_failed,
           (unsigned long long)rep.st[1].sessions_failed);
    return got == (ssize_t)sizeof(rep) && closed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5;
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    if (!nx)
        return 1;
    struct mode_result m[2];
    int rc = 0;
    for (g_epoll = 0; g_epoll < 2; g_epoll++) {
        double w0 = now_s();
        rc |= run_mode(secs, nx, &m[g_epoll], g_epoll == 1);
        m[g_epoll].cpu_server /= now_s() - w0; /* the server lived as long as the run */
        rc |= m[g_epoll].errors || m[g_epoll].failed;
    }
    printf("service_bench: epoll / busy polling: %.2fx the RPC/s, client CPU %.0f%% vs %.0f%% of "
           "a core, server process %.0f%% vs %.0f%%\n", m[1].rps / m[0].rps,
           m[1].cpu_client * 100, m[0].cpu_client * 100, m[1].cpu_server * 100,
           m[0].cpu_server * 100);
    udrpc_nexus_destroy(nx);
    return rc;
}
