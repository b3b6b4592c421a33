/*
 * test_shm.c — the shm transport's own cases, on one server endpoint that
 * holds shm and udp ("shm,udp"), pumped from this thread:
 *
 *   local_and_remote  a client holding shm and udp gets a shm channel, a
 *                     udp-only client gets none, and both sessions serve
 *                     at once on the one server endpoint, every byte
 *                     checked, every continuation once.
 *   auto              two default endpoints ("auto") talk over shm.
 *   fallback          a "shm,udp" client of a udp-only server connects
 *                     over udp (no channel), and serves.
 *   by_reference      RPCs of 0.5-1 MiB: every packet of 48 KiB or more
 *                     goes by reference, each way, counted exactly; a
 *                     client without a heap (UDRPC_SHM_HEAP_MB=0) copies
 *                     its requests and still gets references back.
 *   late_reference    a 1 MiB request sent by reference is cancelled
 *                     before the server has read it, and its caller
 *                     overwrites the buffer: the server drops the late
 *                     references (its epoch moved) and runs the
 *                     request once, intact, from its retransmitted copy.
 *   backpressure      without heaps, four sessions of 1 MiB RPCs, more
 *                     than a ring holds: packets wait in the backlog,
 *                     none is dropped or sent again.
 *   idle_sleep        a server endpoint of shm and udp that sleeps when
 *                     idle (idle_sleep_us), and a client waiting in epoll
 *                     (udrpc_get_fd): each request after 2 ms of quiet is
 *                     answered within the 1 ms sleep cap (p50), so the
 *                     eventfds woke them; the server used under half a
 *                     core meanwhile. Then the same over udp alone, whose
 *                     wake-ups are the kernel's, for comparison.
 *   hostile           a peer attaches by hand and writes random rings
 *                     (random bytes and tails), well-formed rings of
 *                     random packets, and references into a heap of
 *                     random bytes that it hands over (in bounds, then
 *                     anywhere) or into none: the server reads the ones
 *                     in bounds and drops them, closes a ring at the
 *                     first bad one, never crashes, and the honest
 *                     client's RPCs meanwhile all complete, byte-correct.
 *   heap_read_only    the heap a server hands its peers maps read-only:
 *                     writes, writable maps, mprotect, resizing refused.
 *   other_uid         (root only, else skipped) a process of uid 65534
 *                     cannot attach: neither through the library (its
 *                     session fails) nor by hand with a valid hello; the
 *                     server counts both refusals and opens no channel.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "echo_server.h"
#include "rpc_internal.h"
#include "shm_ring.h"
#include "test.h"
#include "udrpc.h"

enum { ECHO = 1, PATTERN = 2, DEPTH = 8, SIZE_MAX_B = 3000 };
static void pattern_check(udrpc_req_handle_t *h, void *ctx);

/* The connected sessions on rpc's transport of that kind, which its event
 * loop therefore polls (rpc->tp_sessions); -1: it has none of that kind. */
static long sessions_on(const udrpc_t *rpc, enum tp_kind kind)
{
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->kind == kind)
            return rpc->tp_sessions[t];
    return -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ep {
    udrpc_nexus_t *nx;
    udrpc_t *rpc;
};

static struct ep ep_open(const char *transport)
{
    struct ep e;
    e.nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(e.nx != NULL);
    CHECK_EQ(udrpc_register_handler(e.nx, ECHO, echo_inverted, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(e.nx, PATTERN, pattern_check, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = transport;
    e.rpc = udrpc_create(e.nx, 0, NULL, NULL, &cfg);
    CHECK(e.rpc != NULL);
    return e;
}

static void ep_close(struct ep *e)
{
    udrpc_destroy(e->rpc);
    udrpc_nexus_destroy(e->nx);
}

static udrpc_stats_t stats_of(const struct ep *e)
{
    udrpc_stats_t s;
    CHECK_EQ(udrpc_get_stats(e->rpc, &s), 0);
    return s;
}

/* A client issuing echoes of random sizes, DEPTH at a time, each checked. */
struct client {
    struct ep e;
    int session;                     /* (the first of sessions) */
    int sessions[4];
    unsigned n_sessions;
    size_t max_size;
    unsigned issued, done, want;
    unsigned calls[DEPTH];
    unsigned slot;                   /* its continuations' tags: g_tags[slot] */
    uint64_t rng;
    uint64_t ref_pkts;               /* packets of SHM_REF_MIN or more issued */
    udrpc_msgbuf_t req[DEPTH], resp[DEPTH];
};

static void client_issue(struct client *c, unsigned i);

static void cont(void *rpc_context, void *tag, int status)
{
    (void)rpc_context;
    struct client *c = *(struct client **)tag;
    unsigned i = (unsigned)((uintptr_t *)tag)[1];
    CHECK_EQ(status, 0);
    CHECK_EQ(c->resp[i].size, c->req[i].size);
    for (size_t b = 0; b < c->req[i].size; b++)
        CHECK_EQ(c->resp[i].buf[b], (uint8_t)(0xFF ^ c->req[i].buf[b]));
    c->calls[i]--;
    c->done++;
    if (c->issued < c->want)
        client_issue(c, i);
}

static uintptr_t g_tags[8][DEPTH][2];
static unsigned g_n_tags;

static void client_issue(struct client *c, unsigned i)
{
    c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
    size_t size = c->max_size - (size_t)(c->rng >> 33) % (c->max_size / 2);
    udrpc_msgbuf_resize(&c->req[i], size);
    for (size_t b = 0; b < size; b++)
        c->req[i].buf[b] = (uint8_t)(c->rng >> (b % 56));
    CHECK_EQ(c->calls[i], 0);
    c->calls[i]++;
    c->issued++;
    const size_t dpp = c->e.rpc->dpp;
    for (size_t off = 0; off < size; off += dpp)
        c->ref_pkts += (size - off < dpp ? size - off : dpp) >= SHM_REF_MIN;
    CHECK_EQ(udrpc_enqueue_request(c->e.rpc, c->sessions[i % c->n_sessions], ECHO, &c->req[i], &c->resp[i], cont,
                                   g_tags[c->slot][i]),
             0);
}

/* n_sessions sessions to server_uri, requests of max_size / 2 to
 * max_size bytes. */
static void client_open_n(struct client *c, const char *transport, const char *server_uri,
                          unsigned want, unsigned n_sessions, size_t max_size)
{
    memset(c, 0, sizeof(*c));
    c->e = ep_open(transport);
    c->want = want;
    c->rng = (uintptr_t)c;
    c->max_size = max_size;
    c->n_sessions = n_sessions;
    for (unsigned i = 0; i < n_sessions; i++) {
        c->sessions[i] = udrpc_connect(c->e.rpc, server_uri, 0);
        CHECK(c->sessions[i] >= 0);
    }
    c->session = c->sessions[0];
    unsigned slot = c->slot = g_n_tags++;
    CHECK(slot < 8);
    for (unsigned i = 0; i < DEPTH; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(c->e.rpc, max_size, &c->req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(c->e.rpc, max_size, &c->resp[i]), 0);
        g_tags[slot][i][0] = (uintptr_t)c;
        g_tags[slot][i][1] = i;
    }
    for (unsigned i = 0; i < DEPTH; i++)
        client_issue(c, i);
}

static void client_open(struct client *c, const char *transport, const char *server_uri,
                        unsigned want)
{
    client_open_n(c, transport, server_uri, want, 1, SIZE_MAX_B);
}

static void client_close(struct client *c)
{
    for (unsigned i = 0; i < DEPTH; i++) {
        CHECK_EQ(c->calls[i], 0);
        udrpc_msgbuf_free(c->e.rpc, &c->req[i]);
        udrpc_msgbuf_free(c->e.rpc, &c->resp[i]);
    }
    ep_close(&c->e);
}

/* Pumps the endpoints until every client is done (or the deadline: fail). */
static void pump(struct ep *srv, struct client **cs, unsigned n, uint64_t limit_ms)
{
    uint64_t end = now_ms() + limit_ms;
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < n; i++) {
            udrpc_run_event_loop_once(cs[i]->e.rpc);
            all &= cs[i]->done == cs[i]->want;
        }
        udrpc_run_event_loop_once(srv->rpc);
        if (all)
            return;
        CHECK(now_ms() < end);
    }
}

static void pump_for(struct ep *srv, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        udrpc_run_event_loop_once(srv->rpc);
}

/* ----------------------------------------------------------------- cases */

static void local_and_remote(void)
{
    struct ep srv = ep_open("shm,udp");
    const char *uri = udrpc_nexus_uri(srv.nx);
    static struct client a, b;
    client_open(&a, "shm,udp", uri, 20000);
    client_open(&b, "udp", uri, 20000);
    struct client *cs[] = { &a, &b };
    pump(&srv, cs, 2, 30000);
    udrpc_stats_t sa = stats_of(&a.e), sb = stats_of(&b.e), ss = stats_of(&srv);
    CHECK_EQ(sa.shm_channels, 1);
    CHECK_EQ(sb.shm_channels, 0);
    CHECK_EQ(ss.shm_channels, 1);
    CHECK_EQ(ss.sessions_active, 2);
    CHECK_EQ(sa.shm_ring_full + ss.shm_ring_full, 0);
    CHECK_EQ(sessions_on(srv.rpc, TP_SHM), 1);
    CHECK_EQ(sessions_on(srv.rpc, TP_UDP), 1);
    CHECK_EQ(sessions_on(a.e.rpc, TP_SHM), 1);
    CHECK_EQ(sessions_on(a.e.rpc, TP_UDP), 0); /* a's loop leaves its udp socket out */
    printf("local_and_remote: 20000 RPCs over shm and 20000 over udp on one server endpoint, "
           "1 channel, retransmits %llu and %llu\n", (unsigned long long)sa.retransmits,
           (unsigned long long)sb.retransmits);
    client_close(&a);
    client_close(&b);
    ep_close(&srv);
}

/* Default endpoints ("auto") on one host talk over shm; the endpoint is
 * still named for its network transport. */
static void auto_picks_shm(void)
{
    struct ep srv = ep_open("auto");
    static struct client a;
    client_open(&a, "auto", udrpc_nexus_uri(srv.nx), 2000);
    struct client *cs[] = { &a };
    pump(&srv, cs, 1, 10000);
    CHECK_EQ(stats_of(&a.e).shm_channels, 1);
    CHECK_EQ(stats_of(&srv).shm_channels, 1);
    CHECK(strcmp(udrpc_transport_name(a.e.rpc), "shm") != 0);
    printf("auto: two default endpoints: 2000 RPCs over shm (beside %s)\n",
           udrpc_transport_name(a.e.rpc));
    client_close(&a);
    ep_close(&srv);
}

static void fallback(void)
{
    struct ep srv = ep_open("udp");
    static struct client a;
    client_open(&a, "shm,udp", udrpc_nexus_uri(srv.nx), 2000);
    struct client *cs[] = { &a };
    pump(&srv, cs, 1, 10000);
    CHECK_EQ(stats_of(&a.e).shm_channels, 0);
    CHECK(udrpc_is_connected(a.e.rpc, a.session));
    CHECK_EQ(sessions_on(a.e.rpc, TP_SHM), 0); /* the session went over udp */
    CHECK_EQ(sessions_on(a.e.rpc, TP_UDP), 1);
    printf("fallback: a shm,udp client of a udp server: 2000 RPCs over udp, no channel\n");
    client_close(&a);
    ep_close(&srv);
}

/* RPCs of 0.5 to 1 MiB: each full packet goes by reference each way (its
 * payload read from the sender's heap), every byte checked. Then a client
 * without a heap: its requests are copied into the ring, the server's
 * responses still go by reference. */
static void by_reference(void)
{
    struct ep srv = ep_open("shm");
    static struct client a, b;
    client_open_n(&a, "shm", udrpc_nexus_uri(srv.nx), 300, 2, 1u << 20);
    struct client *cs[] = { &a };
    pump(&srv, cs, 1, 30000);
    udrpc_stats_t sa = stats_of(&a.e), ss = stats_of(&srv);
    CHECK_EQ(sa.retransmits, 0);
    CHECK(a.ref_pkts > 300);
    CHECK_EQ(sa.shm_ref_sends, a.ref_pkts); /* each request packet once */
    CHECK_EQ(ss.shm_ref_sends, a.ref_pkts); /* and each response packet */
    setenv("UDRPC_SHM_HEAP_MB", "0", 1);
    client_open_n(&b, "shm", udrpc_nexus_uri(srv.nx), 300, 2, 1u << 20);
    unsetenv("UDRPC_SHM_HEAP_MB");
    cs[0] = &b;
    pump(&srv, cs, 1, 30000);
    udrpc_stats_t sb = stats_of(&b.e), ss2 = stats_of(&srv);
    CHECK_EQ(sb.retransmits, 0);
    CHECK_EQ(sb.shm_ref_sends, 0);
    CHECK_EQ(ss2.shm_ref_sends - ss.shm_ref_sends, b.ref_pkts);
    printf("by_reference: 300 RPCs of 0.5-1 MiB: %llu packets by reference each way; a "
           "client without a heap: %llu responses' packets by reference, its requests "
           "copied; every byte checked\n", (unsigned long long)a.ref_pkts,
           (unsigned long long)b.ref_pkts);
    client_close(&a);
    client_close(&b);
    ep_close(&srv);
}

/* late_reference: the request's bytes, a pattern named by its first 8
 * bytes. The handler counts requests that hold exactly that, and any
 * that do not (bytes its client never sent as that request). */
enum { LATE_SIZE = 1u << 20 };
static unsigned g_pattern_good, g_pattern_bad;

static uint8_t pattern_byte(uint64_t seed, size_t i)
{
    return (uint8_t)(seed * 7 + i * 31 + (i >> 9));
}

static void pattern_fill(uint8_t *p, size_t size, uint64_t seed)
{
    memcpy(p, &seed, 8);
    for (size_t i = 8; i < size; i++)
        p[i] = pattern_byte(seed, i);
}

static void pattern_check(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    uint64_t seed;
    bool ok = req->size == LATE_SIZE;
    if (ok) {
        memcpy(&seed, req->buf, 8);
        for (size_t i = 8; i < req->size && ok; i++)
            ok = req->buf[i] == pattern_byte(seed, i);
    }
    ok ? g_pattern_good++ : g_pattern_bad++;
    udrpc_enqueue_response(h); /* (empty) */
}

static unsigned g_late_conts;
static int g_late_status;
static void late_cont(void *rpc_context, void *tag, int status)
{
    (void)rpc_context;
    (void)tag;
    CHECK_EQ(status, g_late_status);
    g_late_conts++;
}

/* A request sent by reference, given up on before the server has read
 * it: the caller has its buffer back at once and overwrites it, while the
 * references wait unread in the ring. The server must never run its
 * handler on those bytes: it reads the references, sees the sender's
 * epoch moved, and drops them (drops[STALE_REQ]); the request's own copy,
 * retransmitted, is what it runs, once, intact. 10 rounds; then once on a
 * session closed under the request, which runs nothing. */
static void late_reference(void)
{
    struct ep srv = ep_open("shm");
    struct ep cli = ep_open("shm");
    int s = udrpc_connect(cli.rpc, udrpc_nexus_uri(srv.nx), 0);
    CHECK(s >= 0);
    for (uint64_t end = now_ms() + 3000; !udrpc_is_connected(cli.rpc, s);) {
        CHECK(now_ms() < end);
        udrpc_run_event_loop_once(srv.rpc);
        udrpc_run_event_loop_once(cli.rpc);
    }
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli.rpc, LATE_SIZE, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli.rpc, 64, &resp), 0);
    const unsigned rounds = 10;
    for (unsigned r = 0; r < rounds; r++) {
        pattern_fill(req.buf, LATE_SIZE, 1000 + r);
        uint64_t refs_before = stats_of(&cli).shm_ref_sends;
        unsigned good_before = g_pattern_good;
        CHECK_EQ(udrpc_enqueue_request(cli.rpc, s, PATTERN, &req, &resp, late_cont, &req), 0);
        udrpc_run_event_loop_once(cli.rpc); /* sent: references in the ring */
        CHECK(stats_of(&cli).shm_ref_sends > refs_before);
        g_late_status = -ECANCELED;
        CHECK_EQ(udrpc_cancel(cli.rpc, s, &req), 0); /* the server has read nothing */
        CHECK_EQ(g_late_conts, r + 1);
        for (size_t i = 8; i < LATE_SIZE; i++)
            req.buf[i] ^= 0x5A; /* the caller's again: overwritten */
        /* The server reads the references now; the client's copy of the
         * request is retransmitted, answered, and its slot moves on. */
        for (uint64_t end = now_ms() + 10000; g_pattern_good + g_pattern_bad == good_before;) {
            CHECK(now_ms() < end);
            udrpc_run_event_loop_once(srv.rpc);
            udrpc_run_event_loop_once(cli.rpc);
        }
        CHECK_EQ(g_pattern_bad, 0); /* the handler ran on what was sent */
        pump_for(&srv, 2);
    }
    udrpc_stats_t ss = stats_of(&srv);
    CHECK_EQ(g_pattern_bad, 0);
    CHECK_EQ(g_pattern_good, rounds);
    CHECK(ss.drops[UDRPC_DROP_STALE_REQ] >= rounds);
    /* The same on a session closed under the request (-ECONNRESET): the
     * server reads the references before it hears of the close, and runs
     * nothing. */
    pattern_fill(req.buf, LATE_SIZE, 77);
    CHECK_EQ(udrpc_enqueue_request(cli.rpc, s, PATTERN, &req, &resp, late_cont, &req), 0);
    udrpc_run_event_loop_once(cli.rpc);
    g_late_status = -ECONNRESET;
    CHECK_EQ(udrpc_disconnect(cli.rpc, s), 0);
    CHECK_EQ(g_late_conts, rounds + 1);
    for (size_t i = 8; i < LATE_SIZE; i++)
        req.buf[i] ^= 0x5A;
    uint64_t stale_before = ss.drops[UDRPC_DROP_STALE_REQ];
    for (uint64_t end = now_ms() + 200; now_ms() < end;) {
        udrpc_run_event_loop_once(srv.rpc);
        udrpc_run_event_loop_once(cli.rpc);
    }
    CHECK_EQ(g_pattern_bad, 0);
    CHECK_EQ(g_pattern_good, rounds);
    CHECK(stats_of(&srv).drops[UDRPC_DROP_STALE_REQ] > stale_before);
    printf("late_reference: %u requests by reference given up on and overwritten before the "
           "server read them: %llu late references dropped, each request run once, intact, "
           "from its copy; none run on the overwritten bytes; one more on a session "
           "closed under it, not run at all\n", rounds,
           (unsigned long long)ss.drops[UDRPC_DROP_STALE_REQ]);
    udrpc_msgbuf_free(cli.rpc, &req);
    udrpc_msgbuf_free(cli.rpc, &resp);
    ep_close(&cli);
    ep_close(&srv);
}

/* Four sessions of 8 RPCs of 0.5 to 1 MiB each way: more than a ring
 * holds. What does not fit waits in the backlog: nothing is dropped or
 * sent again. (The RTO floor is raised to 1 s: this one thread copies,
 * inverts and checks every byte at both ends, and a round trip of 8 MiB
 * queued takes it longer than the default 5 ms.) */
static void backpressure(void)
{
    setenv("UDRPC_RTO_MIN_US", "1000000", 1);
    setenv("UDRPC_RTO_MAX_US", "2000000", 1);
    /* Without heaps, so that every payload is copied into the ring: with
     * them, a 64 KiB packet takes a 64-byte record, and the credits of
     * four sessions never fill a ring. */
    setenv("UDRPC_SHM_HEAP_MB", "0", 1);
    struct ep srv = ep_open("shm");
    static struct client a;
    client_open_n(&a, "shm", udrpc_nexus_uri(srv.nx), 400, 4, 1u << 20);
    unsetenv("UDRPC_RTO_MIN_US");
    unsetenv("UDRPC_RTO_MAX_US");
    unsetenv("UDRPC_SHM_HEAP_MB");
    struct client *cs[] = { &a };
    pump(&srv, cs, 1, 60000);
    udrpc_stats_t sa = stats_of(&a.e), ss = stats_of(&srv);
    CHECK(sa.shm_ring_full + ss.shm_ring_full > 0);
    CHECK_EQ(sa.drops[UDRPC_DROP_TX_FULL] + ss.drops[UDRPC_DROP_TX_FULL], 0);
    CHECK_EQ(sa.retransmits, 0);
    CHECK_EQ(sa.shm_ref_sends + ss.shm_ref_sends, 0);
    printf("backpressure: 400 RPCs of 0.5-1 MiB over 4 sessions: %llu packets waited for "
           "a full ring (client %llu, server %llu), none dropped, none sent again\n",
           (unsigned long long)(sa.shm_ring_full + ss.shm_ring_full),
           (unsigned long long)sa.shm_ring_full, (unsigned long long)ss.shm_ring_full);
    client_close(&a);
    ep_close(&srv);
}

/* A server endpoint that sleeps when idle (idle_sleep_us 50), on shm and
 * udp, in a thread of its own; this thread's client, waiting in epoll on
 * udrpc_get_fd, sends one request every 2 ms, after the server has gone
 * to sleep: each way, the packet's producer wakes the sleeper. */
static struct {
    udrpc_nexus_t *nx;
    atomic_int stop;
    uint64_t cpu_us;
} sleeper;

static uint64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void *sleeper_main(void *arg)
{
    udrpc_t *rpc = arg;
    uint64_t cpu0 = thread_cpu_us();
    while (!atomic_load(&sleeper.stop))
        udrpc_run_event_loop(rpc, 10);
    sleeper.cpu_us = thread_cpu_us() - cpu0;
    return NULL;
}

static int g_done;
static void count_done(void *ctx, void *tag, int status)
{
    (void)ctx, (void)tag;
    CHECK_EQ(status, 0);
    g_done++;
}

/* Over tp ("shm,udp": shm; "udp": the same with udp alone, to compare
 * shm's eventfd wake-ups with the kernel's wake-up of a blocked socket). */
static void idle_sleep_over(const char *tp)
{
    sleeper.nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(sleeper.nx != NULL);
    CHECK_EQ(udrpc_register_handler(sleeper.nx, ECHO, echo_inverted, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = tp;
    cfg.idle_sleep_us = 50;
    udrpc_t *srv = udrpc_create(sleeper.nx, 0, NULL, NULL, &cfg);
    CHECK(srv != NULL);
    struct ep cli = ep_open(tp);
    int s = udrpc_connect(cli.rpc, udrpc_nexus_uri(sleeper.nx), 0);
    pthread_t th;
    atomic_store(&sleeper.stop, 0);
    CHECK_EQ(pthread_create(&th, NULL, sleeper_main, srv), 0);
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli.rpc, 32, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli.rpc, 32, &resp), 0);
    for (uint64_t end = now_ms() + 3000; !udrpc_is_connected(cli.rpc, s);) {
        udrpc_run_event_loop_once(cli.rpc);
        CHECK(now_ms() < end);
    }
    /* The client waits in epoll too: a client spinning on the core the
     * server was woken on would hold it off (the scheduler lets a woken
     * thread preempt only after its granularity, about 1 ms). */
    int epfd = udrpc_get_fd(cli.rpc);
    CHECK(epfd >= 0);
    enum { N = 200 };
    static double rt_us[N];
    uint64_t wall0 = now_ms();
    g_done = 0;
    for (int i = 0; i < N; i++) {
        usleep(2000); /* the server is asleep by now */
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        CHECK_EQ(udrpc_enqueue_request(cli.rpc, s, ECHO, &req, &resp, count_done, NULL), 0);
        for (uint64_t end = now_ms() + 3000; g_done == i;) {
            struct epoll_event e;
            (void)epoll_wait(epfd, &e, 1, 1000);
            udrpc_run_event_loop_once(cli.rpc);
            CHECK(now_ms() < end);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        rt_us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    uint64_t wall_ms = now_ms() - wall0;
    atomic_store(&sleeper.stop, 1);
    pthread_join(th, NULL);
    udrpc_stats_t sc = stats_of(&cli);
    CHECK_EQ(sc.shm_channels, strcmp(tp, "udp") ? 1 : 0); /* (over shm, or udp) */
    for (int i = 1; i < N; i++) /* (insertion sort: N is small) */
        for (int j = i; j > 0 && rt_us[j] < rt_us[j - 1]; j--) {
            double x = rt_us[j];
            rt_us[j] = rt_us[j - 1];
            rt_us[j - 1] = x;
        }
    printf("idle_sleep over %s: %d requests to a sleeping server: round trip p50 %.1f us, "
           "max %.1f us; server CPU %llu ms in %llu ms\n", tp, N, rt_us[N / 2], rt_us[N - 1],
           (unsigned long long)(sleeper.cpu_us / 1000), (unsigned long long)wall_ms);
    /* The eventfd woke it, not its 1 ms sleep cap; and it slept. */
    CHECK(rt_us[N / 2] < 900);
    CHECK(sleeper.cpu_us / 1000 < wall_ms / 2);
    udrpc_msgbuf_free(cli.rpc, &req);
    udrpc_msgbuf_free(cli.rpc, &resp);
    ep_close(&cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(sleeper.nx);
}

static void idle_sleep(void)
{
    idle_sleep_over("shm,udp");
    idle_sleep_over("udp");
}

/* Attaches to the server endpoint at (port, rpc 0) by hand, as a client
 * would: returns the socket (kept open: the channel lives while it does)
 * and maps the region at *region. heap_fd: our heap for the hello, or -1.
 * refusable: the server may refuse us (another uid) at accept, before our
 * hello: its socket may be closed already when we send. */
static int attach_by_hand(uint16_t port, uint64_t ring_bytes, struct shm_region **region,
                          int heap_fd, bool refusable)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "udrpc-shm/%u/0", port);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, len), 0);
    size_t bytes = SHM_HDR_BYTES + 2 * ring_bytes;
    int mfd = memfd_create("hostile", MFD_ALLOW_SEALING);
    CHECK(mfd >= 0);
    CHECK_EQ(ftruncate(mfd, (off_t)bytes), 0);
    CHECK_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(p != MAP_FAILED);
    *region = p;
    struct shm_hello h = { .magic = SHM_MAGIC, .version = SHM_VERSION, .mtu = 65507,
                           .ring_bytes = ring_bytes, .token = 12345 };
    int efd = mfd; /* any descriptor will do for the eventfd */
    int fds[3] = { mfd, efd, heap_fd };
    const size_t fds_len = (heap_fd >= 0 ? 3 : 2) * sizeof(int);
    char ctrl[CMSG_SPACE(sizeof(fds))];
    memset(ctrl, 0, sizeof(ctrl));
    struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                        .msg_controllen = sizeof(ctrl) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds_len);
    memcpy(CMSG_DATA(c), fds, fds_len);
    m.msg_controllen = CMSG_SPACE(fds_len);
    ssize_t sent = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (!(refusable && sent < 0 && (errno == EPIPE || errno == ECONNRESET)))
        CHECK_EQ(sent, (long)sizeof(h));
    close(mfd);
    return fd;
}

static uint64_t all_drops(const struct ep *e)
{
    udrpc_stats_t s = stats_of(e);
    uint64_t n = 0;
    for (int i = 0; i < UDRPC_DROP_MAX; i++)
        n += s.drops[i];
    return n;
}

static void hostile(void)
{
    struct ep srv = ep_open("shm,udp");
    const char *uri = udrpc_nexus_uri(srv.nx);
    uint16_t port = (uint16_t)atoi(strrchr(uri, ':') + 1);
    static struct client a;
    client_open(&a, "shm,udp", uri, 1000000);
    struct client *cs[] = { &a };
    const uint64_t ring = 1u << 20; /* (at least 4 records of the MTU) */
    uint64_t seed = 42;
    unsigned rounds = 0;
    uint64_t heap_ref_drops = 0;
    for (unsigned r = 0; r < 40; r++) {
        struct shm_region *reg;
        /* Every fourth attach brings a heap of random bytes, and its
         * rings' records reference it: in bounds and out. */
        const size_t heap_bytes = 1u << 20;
        int heap = -1;
        if (r % 4 == 2) {
            heap = memfd_create("hostile-heap", MFD_ALLOW_SEALING);
            CHECK(heap >= 0);
            CHECK_EQ(ftruncate(heap, (off_t)heap_bytes), 0);
            CHECK_EQ(fcntl(heap, F_ADD_SEALS, F_SEAL_SHRINK), 0);
            uint8_t *hp = mmap(NULL, heap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, heap, 0);
            CHECK(hp != MAP_FAILED);
            CHECK_EQ(getrandom(hp, heap_bytes, 0), (long)heap_bytes);
            for (size_t off = 0; off + 16 <= heap_bytes; off += 4096)
                hp[off + 7] = 0xB7; /* packet headers, at times */
            munmap(hp, heap_bytes);
        }
        int fd = attach_by_hand(port, ring, &reg, heap, false);
        if (heap >= 0)
            close(heap);
        uint8_t *data = (uint8_t *)reg + SHM_HDR_BYTES;
        /* Let the server open the channel (its 1 ms scan), then write. */
        for (uint64_t end = now_ms() + 5; now_ms() < end;)
            udrpc_run_event_loop_once(srv.rpc), udrpc_run_event_loop_once(a.e.rpc);
        CHECK_EQ(getrandom(data, ring, 0), (long)ring);
        const uint64_t pos0 = SHM_POS0(ring);
        if (r % 4 >= 2) {
            /* Well-formed references (with a heap or without), with
             * headers from the ring's random bytes, some with udrpc's
             * magic: the first 200 inside the heap, then half of them
             * anywhere. */
            uint64_t off = 0;
            for (unsigned k = 0; off + 128 < ring; k++) {
                seed = seed * 6364136223846793005ull + 1;
                struct shm_rec_hdr h = { .len = SHM_REF_REC_LEN, .kind = SHM_REC_REF };
                struct shm_ref ref = { .off = (seed >> 20) % (heap_bytes / 2),
                                       .len = 1 + (uint32_t)(seed >> 44) % 65000,
                                       .epoch = (uint32_t)seed & 1 };
                if (k >= 200 && (seed & 2))
                    ref.off = seed; /* anywhere */
                if (seed & 4)
                    data[off + SHM_REC_HDR + 7] = 0xB7;
                memcpy(data + off + 8, &h.len, 8);
                memcpy(data + off + SHM_REC_HDR + SHM_PKT_HDR, &ref, sizeof(ref));
                atomic_store((_Atomic uint64_t *)(void *)(data + off), pos0 + off);
                off += shm_rec_bytes(h.len);
            }
        } else if (r % 2) {
            /* Well-formed records of random packets, some with udrpc's
             * magic, from where the server's reader starts. */
            uint64_t off = 0;
            while (off + 256 < ring) {
                seed = seed * 6364136223846793005ull + 1;
                struct shm_rec_hdr h = { .len = (uint32_t)(seed >> 40) % 160,
                                         .kind = SHM_REC_PKT };
                if (h.len >= 8 && (seed & 1))
                    data[off + SHM_REC_HDR + 7] = 0xB7; /* the header's magic */
                memcpy(data + off + 8, &h.len, 8);
                atomic_store((_Atomic uint64_t *)(void *)(data + off), pos0 + off);
                off += shm_rec_bytes(h.len);
            }
        } else {
            /* Random bytes, with headers that match the reader's position
             * at random places (random lengths and kinds then). */
            for (uint64_t off = 0; off < ring; off += 64)
                if (off == 0 || (data[off + 8] & 1))
                    atomic_store((_Atomic uint64_t *)(void *)(data + off), pos0 + off);
        }
        unsigned before = a.done;
        uint64_t drops_before = all_drops(&srv), bad_before = stats_of(&srv).shm_bad_rings;
        for (uint64_t end = now_ms() + 10; now_ms() < end;)
            udrpc_run_event_loop_once(srv.rpc), udrpc_run_event_loop_once(a.e.rpc);
        CHECK(a.done > before); /* the honest client is served meanwhile */
        if (r % 4 == 2) /* references into the heap were read, and dropped */
            heap_ref_drops += all_drops(&srv) - drops_before;
        if (r % 4 == 3) /* without a heap, the first reference closes the ring */
            CHECK_EQ(stats_of(&srv).shm_bad_rings, bad_before + 1);
        munmap(reg, SHM_HDR_BYTES + 2 * ring);
        close(fd);
        rounds++;
    }
    udrpc_stats_t ss = stats_of(&srv);
    uint64_t drops = all_drops(&srv);
    CHECK(ss.shm_bad_rings > 0);
    CHECK(heap_ref_drops > 0);
    CHECK(drops > 0);
    /* The honest client finishes what it has in flight, each once. */
    a.want = a.issued;
    pump(&srv, cs, 1, 10000);
    CHECK_EQ(stats_of(&a.e).shm_channels, 1);
    printf("hostile: %u attaches with random rings: %llu broken rings closed, %llu packets "
           "dropped (%llu of them read by reference from a hostile heap); the honest "
           "client did %u RPCs meanwhile, all checked\n", rounds,
           (unsigned long long)ss.shm_bad_rings, (unsigned long long)drops,
           (unsigned long long)heap_ref_drops, a.done);
    client_close(&a);
    ep_close(&srv);
}

/* The server's answer hands us its heap: a descriptor we can map and
 * read, but neither write through, nor map writable, nor resize. */
static void heap_read_only(void)
{
    struct ep srv = ep_open("shm");
    const char *uri = udrpc_nexus_uri(srv.nx);
    uint16_t port = (uint16_t)atoi(strrchr(uri, ':') + 1);
    const uint64_t ring = 1u << 20;
    struct shm_region *reg;
    int fd = attach_by_hand(port, ring, &reg, -1, false);
    struct shm_answer ans;
    int fds[2] = { -1, -1 };
    char ctrl[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { .iov_base = &ans, .iov_len = sizeof(ans) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                        .msg_controllen = sizeof(ctrl) };
    ssize_t got = -1;
    for (uint64_t end = now_ms() + 3000; got < 0 && now_ms() < end;) {
        udrpc_run_event_loop_once(srv.rpc); /* (its 1 ms scan answers) */
        got = recvmsg(fd, &m, MSG_DONTWAIT);
    }
    CHECK_EQ(got, (long)sizeof(ans));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(fds)));
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    int heap = fds[1];
    struct stat st;
    CHECK_EQ(fstat(heap, &st), 0);
    CHECK(st.st_size >= (1 << 20));
    const size_t len = (size_t)st.st_size;
    CHECK_EQ(fcntl(heap, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
             F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    CHECK(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, heap, 0) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, heap, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(mprotect(p, 4096, PROT_READ | PROT_WRITE), -1);
    CHECK_EQ(errno, EACCES);
    char byte = 0;
    CHECK_EQ(pwrite(heap, &byte, 1, 0), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ftruncate(heap, 0), -1);
    CHECK_EQ(fcntl(heap, F_ADD_SEALS, F_SEAL_WRITE), -1);
    munmap(p, len);
    close(fds[0]);
    close(heap);
    munmap(reg, SHM_HDR_BYTES + 2 * ring);
    close(fd);
    printf("heap_read_only: the server's heap (%zu MiB) maps read-only; writes, writable "
           "maps, mprotect, resizing and sealing all refused\n", len >> 20);
    ep_close(&srv);
}

static void other_uid(void)
{
    if (geteuid() != 0) {
        printf("other_uid: skipped (needs root to become uid 65534)\n");
        return;
    }
    struct ep srv = ep_open("shm,udp");
    const char *uri = udrpc_nexus_uri(srv.nx);
    uint16_t port = (uint16_t)atoi(strrchr(uri, ':') + 1);
    char uri_copy[UDRPC_MAX_URI_LEN];
    snprintf(uri_copy, sizeof(uri_copy), "%s", uri);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        /* Through the library, shm only: the session must fail. */
        struct ep c = ep_open("shm");
        int s = udrpc_connect(c.rpc, uri_copy, 0);
        for (uint64_t end = now_ms() + 3000; now_ms() < end && !udrpc_is_connected(c.rpc, s);)
            udrpc_run_event_loop_once(c.rpc);
        if (udrpc_is_connected(c.rpc, s))
            _exit(11);
        /* By hand, with a valid hello: refused too (the socket closes). */
        struct shm_region *reg;
        int fd = attach_by_hand(port, 1u << 20, &reg, -1, true);
        char b;
        struct timeval tv = { .tv_sec = 3 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t r = recv(fd, &b, 1, 0);
        if (r != 0 && !(r < 0 && errno == ECONNRESET)) { /* closed by the server, no answer */
            fprintf(stderr, "other_uid: the hand-made attach got %zd (%s)\n", r,
                    r < 0 ? strerror(errno) : "an answer");
            _exit(12);
        }
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0)
        pump_for(&srv, 1);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    pump_for(&srv, 5);
    udrpc_stats_t ss = stats_of(&srv);
    CHECK(ss.shm_refused >= 2);
    CHECK_EQ(ss.shm_channels, 0);
    CHECK_EQ(ss.sessions_active, 0);
    printf("other_uid: uid 65534 refused twice (the library's attach and one by hand), "
           "%llu refusals counted, no channel\n", (unsigned long long)ss.shm_refused);
    ep_close(&srv);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = { { "local_and_remote", local_and_remote },
                  { "auto", auto_picks_shm },
                  { "fallback", fallback },
                  { "by_reference", by_reference },
                  { "late_reference", late_reference },
                  { "backpressure", backpressure },
                  { "idle_sleep", idle_sleep },
                  { "hostile", hostile },
                  { "heap_read_only", heap_read_only },
                  { "other_uid", other_uid } };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!only || !strcmp(only, cases[i].name))
            cases[i].fn();
    printf("test_shm: ok\n");
    return 0;
}
