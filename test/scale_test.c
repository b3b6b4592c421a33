/*
 * scale_test.c — one server endpoint with many client sessions. A server
 * process serves; first one client process with one session (depth 8)
 * measures the single-session rate; then P client processes open S
 * sessions each, keeping 64 32-byte requests in flight per process,
 * rotating round-robin over all of its sessions, so that every session
 * issues requests all along. (With one request in flight per session,
 * 10,000 at once, nothing fails but some sessions starve: see README.)
 * Asserted: every session connects, none fails, every response is
 * byte-correct, every session completes requests (none starves). Printed: the server's
 * resident memory per session, and the many-session rate against the
 * single-session one (figures for the notes: timing on a shared machine).
 *
 *   scale_test [clients (2)] [sessions per client (5000)] [seconds (3)]
 *              [requests in flight per client (64; 0: one per session)]
 */
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "echo_server.h"
#include "rpc_internal.h"
#include "test.h"

enum { SIZE = 32 };

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* ------------------------------------------------------------ client ---- */

struct csess {               /* one request in flight: depth of them a session */
    udrpc_msgbuf_t req, resp;
    uint64_t done;
    int num;                 /* its session */
};

static struct {
    udrpc_t *rpc;
    struct csess *s;
    unsigned n, connected, failed;
    uint64_t done, errors;
    int counting;
    unsigned depth;  /* requests per session */
    unsigned window, next; /* rotation over sessions (window > 0) */
} C;

static void cont(void *ctx, void *tag, int status);

static void issue(unsigned i)
{
    struct csess *s = &C.s[i];
    if (!udrpc_is_connected(C.rpc, s->num))
        return; /* it failed: counted in C.failed, the test fails */
    for (size_t j = 0; j < SIZE; j++)
        s->req.buf[j] = (uint8_t)(i + j + s->done);
    CHECK_EQ(udrpc_enqueue_request(C.rpc, s->num, 1, &s->req, &s->resp, cont,
                                   (void *)(uintptr_t)i), 0);
}

static void cont(void *ctx, void *tag, int status)
{
    unsigned i = (unsigned)(uintptr_t)tag;
    struct csess *s = &C.s[i];
    (void)ctx;
    if (status != 0) {
        C.errors++;
        return;
    }
    int ok = s->resp.size == SIZE;
    for (size_t j = 0; ok && j < SIZE; j++) {
        uint8_t want = (uint8_t)(0xFFu ^ s->req.buf[j]);
        ok = s->resp.buf[j] == want;
    }
    if (!ok)
        C.errors++;
    s->done++;
    if (C.counting)
        C.done++;
    if (C.window) {
        /* hand the turn to the next session, round-robin */
        unsigned next = C.next++ % C.n;
        C.s[next].req.size = SIZE;
        issue(next);
    } else {
        issue(i);
    }
}

static void sm(int num, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)ctx;
    if (ev != UDRPC_SM_CONNECTED) {
        fprintf(stderr, "scale client: session %d event %d (%s)\n", num, ev, udrpc_strerror(err));
        C.failed++;
        return;
    }
    /* The session's context (udrpc_connect_ctx): its index. */
    unsigned i = (unsigned)(uintptr_t)udrpc_session_context(C.rpc, num);
    C.connected++;
    if (!C.window)
        for (unsigned d = 0; d < C.depth; d++)
            issue(i * C.depth + d);
}

struct result {
    uint64_t done, errors, starved;
    unsigned connected, failed;
    double secs;
};

/* Opens n sessions to uri, keeps depth requests in flight on each, counts
 * completions for secs once all are connected, and writes a struct result. */
static int client_main(const char *uri, unsigned n, unsigned depth, unsigned window,
                       double secs, int fd)
{
    C.window = window;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.max_sessions = n + 16;
    cfg.connect_timeout_ms = 30000;
    C.rpc = udrpc_create(nx, 0, NULL, sm, &cfg);
    CHECK(C.rpc != NULL);
    C.n = n;
    C.depth = depth;
    C.s = calloc((size_t)n * depth, sizeof(*C.s));
    for (unsigned i = 0; i < n; i++) {
        int num = udrpc_connect_ctx(C.rpc, uri, 0, (void *)(uintptr_t)i);
        CHECK(num >= 0);
        for (unsigned d = 0; d < depth; d++) {
            struct csess *s = &C.s[i * depth + d];
            CHECK_EQ(udrpc_msgbuf_alloc(C.rpc, SIZE, &s->req), 0);
            CHECK_EQ(udrpc_msgbuf_alloc(C.rpc, SIZE, &s->resp), 0);
            s->num = num;
        }
        if ((i & 255) == 255)
            udrpc_run_event_loop_once(C.rpc); /* let the handshakes start */
    }
    uint64_t t0 = udrpc__monotonic_ns();
    while (C.connected + C.failed < n && udrpc__monotonic_ns() - t0 < 60000000000ull)
        udrpc_run_event_loop_once(C.rpc);
    struct result r = { 0 };
    r.connected = C.connected;
    for (unsigned w = 0; C.window && w < C.window && w < C.connected; w++)
        issue(C.next++ % C.n);
    udrpc_run_event_loop(C.rpc, 300); /* settle */
    C.counting = 1;
    uint64_t s0 = udrpc__monotonic_ns();
    udrpc_run_event_loop(C.rpc, (unsigned)(secs * 1000));
    r.secs = (double)(udrpc__monotonic_ns() - s0) / 1e9;
    C.counting = 0;
    r.done = C.done;
    r.errors = C.errors;
    r.failed = C.failed;
    for (unsigned i = 0; i < n * depth; i++)
        r.starved += C.s[i].done == 0;
    CHECK_EQ(write(fd, &r, sizeof(r)), (long)sizeof(r));
    _exit(0);
}

static pid_t spawn_client(const char *uri, unsigned n, unsigned depth, unsigned window,
                          double secs, int *rfd)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        client_main(uri, n, depth, window, secs, p[1]);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static struct result collect(pid_t pid, int fd)
{
    struct result r;
    CHECK_EQ(read(fd, &r, sizeof(r)), (long)sizeof(r));
    close(fd);
    waitpid(pid, NULL, 0);
    return r;
}

int main(int argc, char **argv)
{
    unsigned clients = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
    unsigned per = argc > 2 ? (unsigned)atoi(argv[2]) : 5000;
    double secs = argc > 3 ? atof(argv[3]) : 3;
    unsigned window = argc > 4 ? (unsigned)atoi(argv[4]) : 64; /* 0: one per session */
    udrpc__clock_init();
    char uri[UDRPC_MAX_URI_LEN];
    pid_t server = spawn_echo_server(test_local_uri(), clients * per + 64, uri);

    /* One session, depth 8 (the window): the reference rate. */
    int fd;
    pid_t c1 = spawn_client(uri, 1, 8, 0, secs, &fd);
    struct result one = collect(c1, fd);
    CHECK_EQ(one.connected, 1);
    CHECK_EQ(one.errors, 0);
    CHECK_EQ(one.failed, 0);
    double one_rate = (double)one.done / one.secs;
    long rss0 = rss_kb(server);

    /* Many sessions from several processes. */
    pid_t pids[64];
    int fds[64];
    CHECK(clients <= 64);
    for (unsigned i = 0; i < clients; i++)
        pids[i] = spawn_client(uri, per, 1, window, secs, &fds[i]);
    /* The server's memory once every session exists: sample while the
     * clients measure (they connect, settle 0.3 s, then count). */
    long rss1 = -1;
    for (int k = 0; k < 600 && rss1 < 0; k++) {
        usleep(100000);
        long now = rss_kb(server);
        if (now > rss1)
            rss1 = now;
        if (k > 30) /* sampled long enough into the run */
            break;
    }
    uint64_t done = 0, errors = 0, starved = 0;
    unsigned connected = 0, failed = 0;
    double rate = 0;
    for (unsigned i = 0; i < clients; i++) {
        struct result r = collect(pids[i], fds[i]);
        connected += r.connected;
        failed += r.failed;
        done += r.done;
        errors += r.errors;
        starved += r.starved;
        rate += (double)r.done / r.secs;
    }
    long rss2 = rss_kb(server);
    if (rss2 > rss1)
        rss1 = rss2;
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);

    printf("scale: 1 session (depth 8): %.0f RPC/s\n", one_rate);
    char how[96];
    if (window)
        snprintf(how, sizeof(how), "%u requests in flight each (round-robin over its sessions)",
                 window);
    else
        snprintf(how, sizeof(how), "one request in flight per session");
    printf("scale: %u sessions from %u processes, %s: %.0f RPC/s "
           "(%.2fx of one session), %llu completed, %llu failed, %u sessions failed, %llu "
           "sessions starved\n",
           connected, clients, how, rate, rate / one_rate, (unsigned long long)done,
           (unsigned long long)errors, failed, (unsigned long long)starved);
    printf("scale: server RSS %ld kB with 1 session, %ld kB with %u: %.2f kB per session\n",
           rss0, rss1, connected, (double)(rss1 - rss0) / (double)connected);
    CHECK_EQ(connected, clients * per);
    CHECK_EQ(failed, 0);
    CHECK_EQ(errors, 0);
    CHECK_EQ(starved, 0);
    printf("scale_test: ok\n");
    return 0;
}
