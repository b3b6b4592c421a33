/*
 * flood_test.c — a server keeps serving while a stranger floods it. A
 * server process and a client run 32-byte RPCs at depth 8 over UDP (every
 * response byte checked, each continuation once); after a quiet phase, a
 * third process sends crafted bad datagrams (blaster.h: every malformed
 * kind, forged tokens, spoofed session numbers, connects from made-up
 * clients) at the server's SM and data ports as fast as it can. Before the
 * flood, the peer: a process that only spins, for the cost of a third busy
 * process alone. Asserted: no request fails or is lost, the server answers
 * after the flood. Printed: RPC/s quiet, beside the spinner and during the
 * flood, and their ratios (figures for the notes, not assertions: timing
 * on a shared 2-core machine).
 *
 *   flood_test [flood seconds (10)] [quiet seconds (3)]
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "blaster.h"
#include "echo_server.h"
#include "rpc_internal.h"
#include "test.h"

enum { DEPTH = 8, SIZE = 32 };

static struct {
    udrpc_t *rpc;
    int session, connected;
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
    int in_flight[DEPTH];
    uint64_t done, seq;
} c;

static void cont(void *ctx, void *tag, int status)
{
    int i = (int)(intptr_t)tag;
    (void)ctx;
    CHECK_EQ(status, 0);
    CHECK_EQ(c.in_flight[i], 1);
    c.in_flight[i] = 0;
    CHECK_EQ(c.resp[i].size, SIZE);
    for (size_t j = 0; j < SIZE; j++)
        CHECK_EQ(c.resp[i].buf[j], (uint8_t)~c.req[i].buf[j]);
    c.done++;
    for (size_t j = 0; j < SIZE; j++)
        c.req[i].buf[j] = (uint8_t)(c.seq + j);
    c.seq++;
    c.in_flight[i] = 1;
    CHECK_EQ(udrpc_enqueue_request(c.rpc, c.session, 1, &c.req[i], &c.resp[i], cont, tag), 0);
}

static void sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s;
    (void)ctx;
    if (ev != UDRPC_SM_CONNECTED) {
        fprintf(stderr, "session event %d: %s\n", ev, udrpc_strerror(err));
        exit(1);
    }
    c.connected = 1;
}

/* Runs the client for ms milliseconds; returns the RPC/s it completed. */
static double run_for(unsigned ms)
{
    uint64_t start = c.done, t0 = udrpc__monotonic_ns(), end = t0 + (uint64_t)ms * 1000000;
    uint64_t now;
    do {
        udrpc_run_event_loop(c.rpc, 1);
        now = udrpc__monotonic_ns();
    } while (now < end);
    return (double)(c.done - start) * 1e9 / (double)(now - t0);
}

int main(int argc, char **argv)
{
    unsigned flood_s = argc > 1 ? (unsigned)atoi(argv[1]) : 10;
    unsigned quiet_s = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
    udrpc__clock_init();
    char uri[UDRPC_MAX_URI_LEN];
    pid_t server = spawn_echo_server(test_local_uri(), 0, uri);

    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    c.rpc = udrpc_create(nx, 0, NULL, sm, NULL);
    CHECK(c.rpc != NULL);
    c.session = udrpc_connect(c.rpc, uri, 0);
    while (!c.connected)
        udrpc_run_event_loop_once(c.rpc);
    for (int i = 0; i < DEPTH; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(c.rpc, SIZE, &c.req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(c.rpc, SIZE, &c.resp[i]), 0);
        c.in_flight[i] = 1;
        CHECK_EQ(udrpc_enqueue_request(c.rpc, c.session, 1, &c.req[i], &c.resp[i], cont,
                                       (void *)(intptr_t)i), 0);
    }
    run_for(300); /* warm-up */
    double quiet = run_for(quiet_s * 1000);

    /* The peer: a process that only burns CPU, as the flooder does, so
     * that the flood's cost to the server can be told apart from the cost
     * of a third busy process on a 2-core machine. */
    pid_t hog = fork();
    if (hog == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        uint64_t until = udrpc__monotonic_ns() + (uint64_t)quiet_s * 1000000000ull;
        volatile uint64_t spins = 0;
        while (udrpc__monotonic_ns() < until)
            spins++;
        _exit(0);
    }
    double hogged = run_for(quiet_s * 1000);
    waitpid(hog, NULL, 0);

    /* The flood: the server's SM port and its data socket. */
    struct blaster bl;
    memset(&bl, 0, sizeof(bl));
    CHECK_EQ(udrpc__uri_parse(uri, &bl.targets[0], NULL), 0);
    memcpy(&bl.targets[1], udrpc__session_get(c.rpc, c.session)->peer.tx, sizeof(bl.targets[1]));
    bl.n_targets = 2;
    int fp[2];
    CHECK_EQ(pipe(fp), 0);
    pid_t flooder = fork();
    if (flooder == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        bl.until_ns = udrpc__monotonic_ns() + (uint64_t)flood_s * 1000000000ull;
        blaster_main(&bl);
        CHECK_EQ(write(fp[1], &bl.sent, sizeof(bl.sent)), (long)sizeof(bl.sent));
        _exit(0);
    }
    double flooded = run_for(flood_s * 1000);
    uint64_t sent = 0;
    CHECK_EQ(read(fp[0], &sent, sizeof(sent)), (long)sizeof(sent));
    waitpid(flooder, NULL, 0);
    double after = run_for(1000);
    CHECK(after > 0); /* the server still answers */
    CHECK(udrpc_is_connected(c.rpc, c.session));

    udrpc_stats_t st;
    udrpc_get_stats(c.rpc, &st);
    printf("flood: %llu bad datagrams in %u s (%.0f/s) at the server's SM and data ports\n",
           (unsigned long long)sent, flood_s, (double)sent / flood_s);
    printf("flood: legitimate 32 B RPCs at depth 8: %.0f RPC/s quiet, %.0f beside a CPU hog "
           "(%.2fx), %.0f during the flood (%.2fx quiet, %.2fx hog), %.0f after; %llu completed, "
           "none failed; client retransmits %llu\n",
           quiet, hogged, hogged / quiet, flooded, flooded / quiet, flooded / hogged, after,
           (unsigned long long)c.done, (unsigned long long)st.retransmits);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    printf("flood_test: ok\n");
    return 0;
}
