/*
 * test_udp_gso.c — udp's batching in the kernel, on loopback: GSO sends
 * (a burst's run to one peer, the last packet shorter) and GRO receives
 * cut into packets, each checked on its own: a corrupted datagram in the
 * middle of a GRO buffer, one carrying another session's packet, a
 * stranger's, a buffer at the kernel's segment limit (cut over several
 * receive bursts), and the fallbacks: GSO refused by the kernel at run
 * time, and batching turned off (UDRPC_UDP_GSO=0).
 *
 * Hand-made buffers leave from the client endpoint's own socket, so the
 * server sees them from the session's peer, as GRO would hand a real burst.
 *
 *   test_udp_gso [udp [case]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "udp.h"

static udrpc_stats_t stats(udrpc_t *rpc)
{
    udrpc_stats_t st;
    CHECK_EQ(udrpc_get_stats(rpc, &st), 0);
    return st;
}

static uint64_t all_drops(const udrpc_stats_t *st)
{
    uint64_t n = 0;
    for (int r = 0; r < UDRPC_DROP_MAX; r++)
        n += st->drops[r];
    return n;
}

/* The server endpoint's data address. */
static struct sockaddr_in srv_addr(struct fx *f)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    const struct tp_route *r = &f->srv->tps[0]->local;
    CHECK_EQ(r->kind, TP_UDP);
    memcpy(&sin.sin_addr.s_addr, r->bytes, 4);
    memcpy(&sin.sin_port, r->bytes + 4, 2);
    return sin;
}

/* Appends a one-packet request (FX_ECHO, len bytes of fx_payload) for
 * server session dest to buf at *off. */
static void add_req(uint8_t *buf, size_t *off, uint16_t dest, uint64_t req_num, uint32_t len)
{
    struct pkthdr h;
    pkthdr_pack(&h, FX_ECHO, len, dest, PKT_REQ, 0, 0, req_num);
    memcpy(buf + *off, &h, sizeof(h));
    memcpy(buf + *off + sizeof(h), fx_payload, len);
    *off += sizeof(h) + len;
}

/* One send of buf[0, len) from fd to to, cut by the kernel into datagrams
 * of seg bytes (UDP_SEGMENT; seg 0: one datagram). Returns 0 or -errno. */
static int send_gso(int fd, const struct sockaddr_in *to, const uint8_t *buf, size_t len,
                    uint16_t seg)
{
    union {
        char b[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = { (void *)buf, len };
    struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = sizeof(*to), .msg_iov = &iov,
                         .msg_iovlen = 1 };
    if (seg) {
        mh.msg_control = ctrl.b;
        mh.msg_controllen = sizeof(ctrl.b);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    }
    ssize_t r;
    while ((r = sendmsg(fd, &mh, 0)) < 0 && errno == EAGAIN)
        ;
    return r == (ssize_t)len ? 0 : -errno;
}

static int cli_fd(struct fx *f)
{
    int fd = udrpc__udp_fd(f->cli->tps[0]);
    CHECK(fd >= 0);
    return fd;
}

/* Pumps the server alone (what it sends the client is not awaited) until
 * it has run `handled` handlers, then 20 more iterations: nothing more
 * may come. */
static void pump_server(struct fx *f, int handled)
{
    uint64_t end = fx_ms() + 5000;
    while (f->handled < handled) {
        udrpc_run_event_loop_once(f->srv);
        CHECK(fx_ms() < end);
    }
    for (int i = 0; i < 20; i++)
        udrpc_run_event_loop_once(f->srv);
    CHECK_EQ(f->handled, handled);
}

/* Sends buf[0, len) from the client endpoint's own socket as one GSO send
 * of seg-byte datagrams (the server gets one GRO buffer), and serves it
 * until `handled` handlers have run; *s0 and *s1 are the server's stats
 * before and after. */
static void serve_buffer(struct fx *f, const uint8_t *buf, size_t len, uint16_t seg,
                         int handled, udrpc_stats_t *s0, udrpc_stats_t *s1)
{
    struct sockaddr_in to = srv_addr(f);
    *s0 = stats(f->srv);
    CHECK_EQ(send_gso(cli_fd(f), &to, buf, len, seg), 0);
    pump_server(f, handled);
    *s1 = stats(f->srv);
}

/* Enqueues requests of sizes[0, n) at once (so that they leave in one
 * burst), waits for every response and checks its bytes. */
static void roundtrip(struct fx *f, const uint32_t *sizes, unsigned n)
{
    udrpc_msgbuf_t req[8], resp[8];
    struct fx_done *d[8];
    CHECK(n <= 8);
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, sizes[i], &req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, sizes[i], &resp[i]), 0);
        for (uint32_t b = 0; b < sizes[i]; b++)
            ((uint8_t *)req[i].buf)[b] = (uint8_t)(b * 7 + i);
        d[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_ECHO, &req[i], &resp[i], fx_cont,
                                       d[i]), 0);
    }
    unsigned done = 0;
    uint64_t end = fx_ms() + 5000;
    while (done < n) {
        fx_pump(f);
        CHECK(fx_ms() < end);
        done = 0;
        for (unsigned i = 0; i < n; i++)
            done += d[i]->calls;
    }
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ(d[i]->calls, 1);
        CHECK_EQ(d[i]->status, 0);
        CHECK_EQ(resp[i].size, sizes[i]);
        CHECK(memcmp(resp[i].buf, req[i].buf, sizes[i]) == 0);
        udrpc_msgbuf_free(f->cli, &req[i]);
        udrpc_msgbuf_free(f->cli, &resp[i]);
    }
}

/* Four requests, the last shorter: one GSO send of 4 datagrams, received
 * as one GRO buffer of 4 and cut right; the same for the 4 responses. */
static void burst_short_last(struct fx *f)
{
    udrpc_stats_t c0 = stats(f->cli), s0 = stats(f->srv);
    CHECK_EQ(c0.udp_offload, UDRPC_UDP_GSO | UDRPC_UDP_GRO);
    const uint32_t sizes[4] = { 300, 300, 300, 41 };
    roundtrip(f, sizes, 4);
    udrpc_stats_t c1 = stats(f->cli), s1 = stats(f->srv);
    CHECK_EQ(c1.udp_gso_sends - c0.udp_gso_sends, 1);
    CHECK_EQ(c1.udp_gso_pkts - c0.udp_gso_pkts, 4);
    CHECK_EQ(s1.udp_gro_bufs - s0.udp_gro_bufs, 1);
    CHECK_EQ(s1.udp_gro_pkts - s0.udp_gro_pkts, 4);
    CHECK_EQ(s1.udp_gso_pkts - s0.udp_gso_pkts, 4); /* the responses */
    CHECK_EQ(c1.udp_gro_pkts - c0.udp_gro_pkts, 4);
    CHECK_EQ(all_drops(&s1) + all_drops(&c1), 0);
}

/* Lengths that change mid-burst: 300, 300, 200, 200, 200, 300 make three
 * runs (300 300 200 | 200 200 | 300): a run ends after a shorter packet or
 * before a longer one. */
static void burst_runs(struct fx *f)
{
    udrpc_stats_t c0 = stats(f->cli);
    const uint32_t sizes[6] = { 300, 300, 200, 200, 200, 300 };
    roundtrip(f, sizes, 6);
    udrpc_stats_t c1 = stats(f->cli);
    CHECK_EQ(c1.udp_gso_sends - c0.udp_gso_sends, 2);
    CHECK_EQ(c1.udp_gso_pkts - c0.udp_gso_pkts, 5);
    CHECK_EQ(c1.pkts_tx - c0.pkts_tx, 6);
}

/* A GRO buffer whose middle datagram has a corrupted magic byte: that one
 * is dropped and counted as the socket filter counts a lone bad datagram
 * (kernel_drops), the two around it are served. */
static void corrupted_middle(struct fx *f)
{
    static uint8_t buf[3 * 116];
    size_t len = 0;
    const uint16_t dest = f->ss->local_num;
    add_req(buf, &len, dest, 0, 100);
    add_req(buf, &len, dest, 1, 100);
    add_req(buf, &len, dest, 2, 100);
    buf[116 + 7] ^= 0x5A; /* the middle one's magic */
    udrpc_stats_t s0, s1;
    serve_buffer(f, buf, len, 116, 2, &s0, &s1);
    struct sockaddr_in to = srv_addr(f);
    CHECK_EQ(s1.udp_gro_bufs - s0.udp_gro_bufs, 1);
    CHECK_EQ(s1.udp_gro_pkts - s0.udp_gro_pkts, 3);
    CHECK_EQ(s1.kernel_drops - s0.kernel_drops, 1);
    CHECK_EQ(s1.pkts_rx - s0.pkts_rx, 2);
    CHECK_EQ(all_drops(&s1), all_drops(&s0));

    /* The same datagram alone: the socket filter drops it, counted alike. */
    CHECK_EQ(send_gso(cli_fd(f), &to, buf + 116, 116, 0), 0);
    pump_server(f, 2);
    udrpc_stats_t s2 = stats(f->srv);
    CHECK_EQ(s2.kernel_drops - s1.kernel_drops, 1);
    CHECK_EQ(s2.pkts_rx, s1.pkts_rx);

    /* A GRO buffer whose middle datagram is too short for a header (the
     * kernel's short last segment rule lets only the last be short, so the
     * short one is last here, after a good one). */
    len = 0;
    add_req(buf, &len, dest, 3, 100);
    memcpy(buf + len, buf, 9);
    CHECK_EQ(send_gso(cli_fd(f), &to, buf, len + 9, 116), 0);
    pump_server(f, 3);
    udrpc_stats_t s3 = stats(f->srv);
    CHECK_EQ(s3.kernel_drops - s2.kernel_drops, 1);
    CHECK_EQ(s3.pkts_rx - s2.pkts_rx, 1);
    CHECK_EQ(all_drops(&s3), all_drops(&s0));
}

static int c3_connected;
static void c3_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)session, (void)err, (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        c3_connected = 1;
}

/* A GRO buffer from the client's address with a datagram for a session
 * of another peer: dropped as BAD_SOURCE; the two around it are served. */
static void other_session(struct fx *f)
{
    udrpc_t *c3 = udrpc_create(f->nx, 3, NULL, c3_sm, &f->cfg);
    CHECK(c3 != NULL);
    c3_connected = 0;
    CHECK(udrpc_connect(c3, udrpc_nexus_uri(f->nx), 2) >= 0);
    uint64_t end = fx_ms() + 5000;
    while (!c3_connected) {
        fx_pump(f);
        udrpc_run_event_loop_once(c3);
        CHECK(fx_ms() < end);
    }
    int other = -1;
    for (uint32_t i = 0; i < f->srv->max_sessions; i++)
        if (f->srv->sessions[i] && f->srv->sessions[i] != f->ss)
            other = (int)i;
    CHECK(other >= 0);
    static uint8_t buf[3 * 66];
    size_t len = 0;
    add_req(buf, &len, f->ss->local_num, 0, 50);
    add_req(buf, &len, (uint16_t)other, 0, 50);
    add_req(buf, &len, f->ss->local_num, 1, 50);
    udrpc_stats_t s0, s1;
    serve_buffer(f, buf, len, 66, 2, &s0, &s1);
    CHECK_EQ(s1.udp_gro_bufs - s0.udp_gro_bufs, 1);
    CHECK_EQ(s1.drops[UDRPC_DROP_BAD_SOURCE] - s0.drops[UDRPC_DROP_BAD_SOURCE], 1);
    CHECK_EQ(all_drops(&s1) - all_drops(&s0), 1);
    udrpc_destroy(c3);
}

/* A stranger's port sends a GRO buffer of well-formed requests for our
 * session, then one alone: every one dropped as BAD_SOURCE, none served. */
static void stranger(struct fx *f)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    static uint8_t buf[3 * 66];
    size_t len = 0;
    for (unsigned i = 0; i < 3; i++)
        add_req(buf, &len, f->ss->local_num, i, 50);
    struct sockaddr_in to = srv_addr(f);
    udrpc_stats_t s0 = stats(f->srv);
    CHECK_EQ(send_gso(fd, &to, buf, len, 66), 0);
    CHECK_EQ(send_gso(fd, &to, buf, 66, 0), 0);
    uint64_t end = fx_ms() + 5000;
    udrpc_stats_t s1;
    do {
        udrpc_run_event_loop_once(f->srv);
        s1 = stats(f->srv);
        CHECK(fx_ms() < end);
    } while (s1.drops[UDRPC_DROP_BAD_SOURCE] - s0.drops[UDRPC_DROP_BAD_SOURCE] < 4);
    pump_server(f, 0);
    s1 = stats(f->srv);
    CHECK_EQ(s1.drops[UDRPC_DROP_BAD_SOURCE] - s0.drops[UDRPC_DROP_BAD_SOURCE], 4);
    CHECK_EQ(s1.udp_gro_bufs - s0.udp_gro_bufs, 1);
    close(fd);
}

/* A buffer of as many datagrams as the kernel lets one send carry (128;
 * 64 before Linux 5.4), one request each over 16 (8) sessions: cut over
 * several receive bursts, every request served once, and the responses
 * leave as GSO sends of 64 (the TX batch). */
static void segment_limit(struct fx *f)
{
    static uint8_t buf[128 * 24];
    struct sockaddr_in to = srv_addr(f);
    unsigned segs = 128;
    /* Each datagram: a request of 8 bytes on session i / 8, slot i % 8. */
    uint16_t dest[16];
    dest[0] = f->ss->local_num;
    for (unsigned s = 1; s < 16; s++) {
        int n = fx_connect(f);
        dest[s] = udrpc__session_get(f->cli, n)->remote_num;
    }
    size_t len = 0;
    for (unsigned i = 0; i < segs; i++)
        add_req(buf, &len, dest[i / 8], i % 8, 8);
    udrpc_stats_t s0 = stats(f->srv);
    int r = send_gso(cli_fd(f), &to, buf, len, 24);
    if (r == -EINVAL) { /* an older kernel's limit */
        segs = 64;
        r = send_gso(cli_fd(f), &to, buf, 64 * 24, 24);
    }
    CHECK_EQ(r, 0);
    printf("segment limit: %u datagrams in one send\n", segs);
    pump_server(f, (int)segs);
    udrpc_stats_t s1 = stats(f->srv);
    CHECK_EQ(s1.udp_gro_bufs - s0.udp_gro_bufs, 1);
    CHECK_EQ(s1.udp_gro_pkts - s0.udp_gro_pkts, segs);
    CHECK_EQ(s1.pkts_rx - s0.pkts_rx, segs);
    CHECK_EQ(all_drops(&s1), all_drops(&s0));
    CHECK_EQ(s1.udp_gso_pkts - s0.udp_gso_pkts, segs);
    CHECK_EQ(s1.udp_gso_sends - s0.udp_gso_sends, segs / 64);
}

/* The kernel refuses GSO at run time (as it does on a device without
 * checksum offload; here SO_NO_CHECK makes it refuse): the burst goes out
 * again one datagram per send, GSO stays off, the change is logged once. */
static void gso_refused(struct fx *f)
{
    int one = 1;
    CHECK_EQ(setsockopt(cli_fd(f), SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
    udrpc_stats_t c0 = stats(f->cli), s0 = stats(f->srv);
    const uint32_t sizes[4] = { 200, 200, 200, 200 };
    roundtrip(f, sizes, 4);
    udrpc_stats_t c1 = stats(f->cli), s1 = stats(f->srv);
    CHECK_EQ(c1.udp_offload, UDRPC_UDP_GRO);
    CHECK_EQ(c1.udp_gso_sends, c0.udp_gso_sends);
    CHECK_EQ(c1.retransmits, c0.retransmits);
    CHECK_EQ(s1.udp_gro_bufs, s0.udp_gro_bufs); /* 4 datagrams, 4 receives */
    CHECK_EQ(s1.pkts_rx - s0.pkts_rx, 4);
    FX_PUMP_UNTIL(f, f->cli->tps[0]->notice == NULL, 1000); /* logged, once */
    roundtrip(f, sizes, 4);
    CHECK_EQ(stats(f->cli).udp_gso_sends, c0.udp_gso_sends);
}

/* udp_gso off (UDRPC_UDP_GSO=0): the same traffic, one datagram per send
 * and per receive. */
static void no_gso(udrpc_config_t *c)
{
    c->udp_gso = false;
}
static void gso_off(struct fx *f)
{
    const uint32_t sizes[4] = { 300, 300, 300, 41 };
    roundtrip(f, sizes, 4);
    udrpc_stats_t c = stats(f->cli), s = stats(f->srv);
    CHECK_EQ(c.udp_offload, 0);
    CHECK_EQ(s.udp_offload, 0);
    CHECK_EQ(c.udp_gso_sends + s.udp_gso_sends + c.udp_gro_bufs + s.udp_gro_bufs, 0);
    CHECK(f->cli->tps[0]->notice == NULL); /* off by choice: nothing to say */
    /* The environment's switch. */
    udrpc_config_t cfg;
    setenv("UDRPC_UDP_GSO", "0", 1);
    udrpc_config_default(&cfg);
    CHECK(!cfg.udp_gso);
    unsetenv("UDRPC_UDP_GSO");
    udrpc_config_default(&cfg);
    CHECK(cfg.udp_gso);
}

static void configure(udrpc_config_t *c)
{
    c->rto_min_us = 200000; /* no retransmission in the counts */
    c->rto_max_us = 400000;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "udp") != 0) {
        printf("skipped: udp only\n");
        return 77;
    }
    static const struct fx_case cases[] = {
        FX_CASE(burst_short_last),
        FX_CASE(burst_runs),
        FX_CASE(corrupted_middle),
        FX_CASE(other_session),
        FX_CASE(stranger),
        FX_CASE(segment_limit),
        FX_CASE(gso_refused),
        FX_CASE(gso_off, .configure = no_gso),
    };
    char *args[3] = { argv[0], "udp", argc > 2 ? argv[2] : NULL };
    return fx_main(argc > 2 ? 3 : 2, args, "udp_gso", cases, sizeof(cases) / sizeof(cases[0]),
                   configure);
}
