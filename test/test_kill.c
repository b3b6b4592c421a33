/*
 * test_kill.c — kill -9 of the server process mid-run, with default
 * settings (rto 5 ms x 40 retries): every outstanding and queued request's
 * continuation runs exactly once with -ECONNRESET within 1 s, the
 * sm_handler hears SESSION_FAILED, and then a new server on the same port
 * accepts a new session whose RPCs complete byte-correct.
 *
 *   test_kill [udp|loop]   (loop is refused: the fabric is in-process)
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "echo_server.h"
#include "test.h"
#include "timing/clock.h"
#include "udrpc.h"

enum { REQ_ECHO = 1, DEPTH = 8, QUEUED = 8 };

struct ctx {
    udrpc_t *rpc;
    int session, connected, failed;
    uint64_t ok, errors, issued, stop_issuing;
    int calls[DEPTH + QUEUED];
    udrpc_msgbuf_t req[DEPTH + QUEUED], resp[DEPTH + QUEUED];
};
static struct ctx c;

static void sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)session;
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        c.connected++;
    else if (ev == UDRPC_SM_SESSION_FAILED)
        c.failed++;
    else {
        fprintf(stderr, "unexpected sm event %d (%s)\n", ev, udrpc_strerror(err));
        exit(1);
    }
}

static void issue(int i);

static void cont(void *ctx, void *tag, int status)
{
    int i = (int)(intptr_t)tag;
    (void)ctx;
    c.calls[i]++;
    if (status != 0) {
        CHECK_EQ(status, -ECONNRESET);
        c.errors++;
        return;
    }
    CHECK_EQ(c.resp[i].size, c.req[i].size);
    for (size_t j = 0; j < c.req[i].size; j++)
        CHECK_EQ(c.resp[i].buf[j], (uint8_t)~c.req[i].buf[j]);
    c.ok++;
    if (!c.stop_issuing)
        issue(i);
}

static void issue(int i)
{
    c.calls[i] = 0;
    size_t size = (c.issued * 7919) % 20000; /* some multi-packet */
    udrpc_msgbuf_resize(&c.req[i], size);
    for (size_t j = 0; j < size; j++)
        c.req[i].buf[j] = (uint8_t)(j + c.issued);
    c.issued++;
    CHECK_EQ(udrpc_enqueue_request(c.rpc, c.session, REQ_ECHO, &c.req[i], &c.resp[i], cont,
                                   (void *)(intptr_t)i), 0);
}

static uint64_t ms(void) { return udrpc__monotonic_ns() / 1000000; }

static void run_until(int (*pred)(void), uint64_t limit_ms, const char *what)
{
    uint64_t end = ms() + limit_ms;
    while (!pred()) {
        udrpc_run_event_loop_once(c.rpc);
        if (ms() > end) {
            fprintf(stderr, "timed out waiting for %s\n", what);
            exit(1);
        }
    }
}
static int connected1(void) { return c.connected == 1; }
static int connected2(void) { return c.connected == 2; }
static int some_done(void) { return c.ok >= 3000; }
static int failed(void) { return c.failed == 1; }
static int all_new_done(void) { return c.ok >= 1000; }

int main(int argc, char **argv)
{
    const char *tp = argc > 1 ? argv[1] : "udp";
    if (strcmp(tp, "udp") != 0 && strcmp(tp, "verbs") != 0)
        SKIP("kill -9 needs a server in another process: udp or verbs");
    /* Both processes read these (udrpc_config_default). udp: Ethernet-
     * sized datagrams, so that requests up to 20000 B span several
     * packets; verbs: the port's MTU (1024 on rxe0 over dummy0). */
    setenv("UDRPC_TRANSPORT", tp, 1);
    if (!strcmp(tp, "udp"))
        setenv("UDRPC_MTU", "1472", 1);
    char uri[UDRPC_MAX_URI_LEN];
    pid_t srv = spawn_echo_server("127.0.0.1:0", 0, uri);

    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(nx != NULL);
    c.rpc = udrpc_create(nx, 0, NULL, sm, NULL); /* default rto and retries */
    CHECK(c.rpc != NULL);
    for (int i = 0; i < DEPTH + QUEUED; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(c.rpc, 20000, &c.req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(c.rpc, 20000, &c.resp[i]), 0);
    }
    c.session = udrpc_connect(c.rpc, uri, 0);
    run_until(connected1, 2000, "connect");
    for (int i = 0; i < DEPTH; i++)
        issue(i);
    run_until(some_done, 20000, "3000 RPCs");

    /* Queue 8 more behind the 8 in flight, then kill the server. */
    c.stop_issuing = 1;
    for (int i = DEPTH; i < DEPTH + QUEUED; i++)
        issue(i);
    CHECK_EQ(kill(srv, SIGKILL), 0);
    waitpid(srv, NULL, 0);
    uint64_t t0 = ms();
    uint64_t ok_before = c.ok;
    run_until(failed, 5000, "SESSION_FAILED");
    uint64_t took = ms() - t0;
    /* Every request not answered before the kill ended once, with an error. */
    int outstanding = 0;
    for (int i = 0; i < DEPTH + QUEUED; i++) {
        CHECK(c.calls[i] <= 1);
        outstanding += c.calls[i] == 1;
    }
    CHECK_EQ(outstanding, DEPTH + QUEUED);
    CHECK_EQ(c.ok + c.errors, c.issued);
    CHECK(c.errors >= QUEUED);
    printf("kill -9: %llu requests failed with -ECONNRESET after %llu ms (%llu answered "
           "after the kill)\n",
           (unsigned long long)c.errors, (unsigned long long)took,
           (unsigned long long)(c.ok - ok_before));
    /* The bound is 200 ms (5 ms x 40); a TCG guest (verbs on rxe) stalls. */
    CHECK(took < (strcmp(tp, "verbs") ? 1000u : 3000u));
    CHECK(!udrpc_is_connected(c.rpc, c.session));

    /* A restarted server on the same port: a new session works. */
    char uri2[UDRPC_MAX_URI_LEN];
    srv = spawn_echo_server(uri, 0, uri2);
    CHECK(strcmp(uri, uri2) == 0);
    c.session = udrpc_connect(c.rpc, uri, 0);
    run_until(connected2, 2000, "reconnect");
    c.ok = 0;
    c.stop_issuing = 0;
    for (int i = 0; i < DEPTH; i++)
        issue(i);
    run_until(all_new_done, 20000, "1000 RPCs after restart");
    c.stop_issuing = 1;
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    udrpc_destroy(c.rpc); /* ends the last ones with -ECONNRESET */
    udrpc_nexus_destroy(nx);
    printf("test_kill: ok\n");
    return 0;
}
