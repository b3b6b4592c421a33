/*
 * test_protocol.c — protocol tests in the style of eRPC's: hand-built
 * packets are fed to one endpoint's receive path (udrpc__process_rx), and
 * each case checks what the endpoint asked the transport to send (its TX
 * batch, read before it is flushed), which drop counter moved, and how
 * often the handler or the continuation ran. A client and a server endpoint
 * on the transport argv[1] names (loop by default; udp, mlx5-model),
 * connected for real, supply live sessions.
 */
#include <errno.h>
#include <string.h>

#include "rpc_internal.h"
#include "test.h"

enum { REQ_ECHO = 1 };

static int handled;
static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    memcpy(resp->buf, req->buf, req->size);
    handled++;
    udrpc_enqueue_response(h);
    (void)ctx;
}

static int conts, last_status;
static void cont(void *ctx, void *tag, int status)
{
    conts++;
    last_status = status;
    (void)ctx;
    (void)tag;
}

static int connected;
static void sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    connected = ev == UDRPC_SM_CONNECTED;
    (void)s;
    (void)err;
    (void)ctx;
}

static udrpc_t *cli, *srv;
static struct session *cs, *ss; /* the client's session and the server's */
static size_t dpp;
static uint8_t payload[1 << 16];

/* Feeds one packet to rpc as if it came from src (NULL: the session's peer). */
static void inject_raw(udrpc_t *rpc, const void *bytes, size_t len, const struct session *from)
{
    static uint8_t buf[1 << 16];
    memcpy(buf, bytes, len);
    struct tp_rx_pkt p = { .buf = buf, .len = (uint32_t)len };
    p.src_id[0] = from->peer.src_id[0];
    p.src_id[1] = from->peer.src_id[1];
    rpc->tx_n = 0; /* start from an empty TX batch */
    rpc->now_tsc = udrpc__rdtsc();
    udrpc__process_rx(rpc, &p, 1);
}

static void inject(udrpc_t *rpc, struct session *s, enum pkt_type type, uint32_t msg_size,
                   uint16_t pkt_num, uint64_t req_num, size_t len)
{
    uint8_t pkt[16 + sizeof(payload)];
    struct pkthdr h;
    pkthdr_pack(&h, REQ_ECHO, msg_size, s->local_num, type, 0, pkt_num, req_num);
    memcpy(pkt, &h, 16);
    memcpy(pkt + 16, payload, len);
    inject_raw(rpc, pkt, 16 + len, s);
}

static size_t chunk(uint32_t msg_size, uint16_t pkt)
{
    size_t off = (size_t)pkt * dpp;
    return msg_size - off < dpp ? msg_size - off : dpp;
}

/* Expect exactly one packet in rpc's TX batch, with these fields. */
static void expect_tx(udrpc_t *rpc, enum pkt_type type, uint16_t pkt_num, uint64_t req_num,
                      uint32_t msg_size, uint16_t dest)
{
    CHECK_EQ(rpc->tx_n, 1);
    struct pkthdr_fields f;
    CHECK_EQ(pkthdr_unpack(rpc->tx[0].hdr, &f), 0);
    CHECK_EQ(f.pkt_type, type);
    CHECK_EQ(f.pkt_num, pkt_num);
    CHECK(f.req_num == req_num);
    CHECK_EQ(f.msg_size, msg_size);
    CHECK_EQ(f.dest_session, dest);
    rpc->tx_n = 0;
}

static uint64_t drops(udrpc_t *rpc, udrpc_drop_reason_t r) { return rpc->stats.drops[r]; }

#define EXPECT_DROP(rpc, reason, stmt)                                   \
    do {                                                                 \
        uint64_t _before = drops(rpc, UDRPC_DROP_##reason);              \
        stmt;                                                            \
        CHECK_EQ(drops(rpc, UDRPC_DROP_##reason), _before + 1);          \
        CHECK_EQ((rpc)->tx_n, 0);                                        \
    } while (0)

int main(int argc, char **argv)
{
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = argc > 1 ? TEST_TRANSPORT(argv[1]) : "loop";
    cfg.rto_min_us = cfg.rto_max_us = 1000000; /* no retransmission during the test */
    cli = udrpc_create(nx, 1, NULL, sm, &cfg);
    srv = udrpc_create(nx, 2, NULL, NULL, &cfg);
    CHECK(cli && srv);
    int snum = udrpc_connect(cli, udrpc_nexus_uri(nx), 2);
    while (!connected) {
        udrpc_run_event_loop_once(cli);
        udrpc_run_event_loop_once(srv);
    }
    cs = cli->sessions[snum];
    ss = srv->sessions[cs->remote_num];
    CHECK(ss != NULL && !ss->is_client);
    dpp = udrpc_max_data_per_pkt(srv);
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13 + 1);
    const uint16_t to_cli = cs->local_num;

    /* ---- server side ---- */
    /* A new single-packet request: one handler run, one RESP 0.
     * Expect: RESP pkt 0, req 0, size 10, to the client's session. */
    inject(srv, ss, PKT_REQ, 10, 0, 0, 10);
    CHECK_EQ(handled, 1);
    expect_tx(srv, PKT_RESP, 0, 0, 10, to_cli);
    CHECK(memcmp(srv->tx[0].data, payload, 10) == 0);

    /* Its duplicate: the stored response again, the handler not re-run. */
    uint64_t dup0 = srv->stats.dup_rx;
    inject(srv, ss, PKT_REQ, 10, 0, 0, 10);
    CHECK_EQ(handled, 1);
    CHECK_EQ(srv->stats.dup_rx, dup0 + 1);
    expect_tx(srv, PKT_RESP, 0, 0, 10, to_cli);

    /* The next request on slot 0 (req 8), then the stale req 0. */
    inject(srv, ss, PKT_REQ, 5, 0, 8, 5);
    CHECK_EQ(handled, 2);
    expect_tx(srv, PKT_RESP, 0, 8, 5, to_cli);
    EXPECT_DROP(srv, STALE_REQ, inject(srv, ss, PKT_REQ, 10, 0, 0, 10));
    /* A request number beyond the slot's window (req 24: skips req 16). */
    EXPECT_DROP(srv, FUTURE_REQ, inject(srv, ss, PKT_REQ, 5, 0, 24, 5));
    /* A first request on slot 3 that is not req 3. */
    EXPECT_DROP(srv, FUTURE_REQ, inject(srv, ss, PKT_REQ, 5, 0, 11, 5));
    CHECK_EQ(handled, 2);

    /* A three-packet request on slot 1. */
    uint32_t big = (uint32_t)(2 * dpp + 100);
    inject(srv, ss, PKT_REQ, big, 0, 1, dpp);
    expect_tx(srv, PKT_CR, 0, 1, big, to_cli); /* Expect: CR for pkt 0 */
    /* Packet 2 ahead of packet 1 (reordered or 1 lost): kept aside,
     * nothing dropped. Expect: CR 0 again (cumulative: a duplicate ack). */
    uint64_t ooo0 = drops(srv, UDRPC_DROP_OUT_OF_ORDER);
    inject(srv, ss, PKT_REQ, big, 2, 1, chunk(big, 2));
    expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    CHECK_EQ(drops(srv, UDRPC_DROP_OUT_OF_ORDER), ooo0);
    /* Its duplicate, and a duplicate of pkt 0: the cumulative CR 0. */
    uint64_t dup1 = srv->stats.dup_rx;
    inject(srv, ss, PKT_REQ, big, 2, 1, chunk(big, 2));
    expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    inject(srv, ss, PKT_REQ, big, 0, 1, dpp);
    expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    CHECK_EQ(srv->stats.dup_rx, dup1 + 2);
    /* The same request number with another size is not this request. */
    EXPECT_DROP(srv, BAD_LENGTH, inject(srv, ss, PKT_REQ, big + 1, 1, 1, dpp));
    /* An RFR while the request is still arriving. */
    EXPECT_DROP(srv, OUT_OF_ORDER, inject(srv, ss, PKT_RFR, big, 1, 1, 0));
    CHECK_EQ(handled, 2);
    /* Packet 1 fills the gap: with packet 2 kept, the request is whole.
     * Expect: the handler once, RESP 0 of 3. */
    inject(srv, ss, PKT_REQ, big, 1, 1, dpp);
    CHECK_EQ(handled, 3);
    expect_tx(srv, PKT_RESP, 0, 1, big, to_cli);
    /* RFRs: in range, beyond the message, and for packet 0. */
    inject(srv, ss, PKT_RFR, big, 2, 1, 0);
    expect_tx(srv, PKT_RESP, 2, 1, big, to_cli);
    CHECK_EQ(srv->tx_n, 0);
    EXPECT_DROP(srv, BAD_PKT_NUM, inject(srv, ss, PKT_RFR, big, 3, 1, 0));
    EXPECT_DROP(srv, BAD_PKT_NUM, inject(srv, ss, PKT_RFR, big, 0, 1, 0));
    /* An RFR for a request the slot has not seen. */
    EXPECT_DROP(srv, FUTURE_REQ, inject(srv, ss, PKT_RFR, big, 1, 9, 0));
    /* A duplicate of the last request packet after the response: RESP 0. */
    inject(srv, ss, PKT_REQ, big, 2, 1, chunk(big, 2));
    expect_tx(srv, PKT_RESP, 0, 1, big, to_cli);
    CHECK_EQ(handled, 3);

    /* A packet 64 or more ahead of the gap is beyond what is kept. */
    uint32_t huge = (uint32_t)(70 * dpp);
    inject(srv, ss, PKT_REQ, huge, 0, 2, dpp);
    expect_tx(srv, PKT_CR, 0, 2, huge, to_cli);
    EXPECT_DROP(srv, OUT_OF_ORDER, inject(srv, ss, PKT_REQ, huge, 65, 2, dpp));
    inject(srv, ss, PKT_REQ, huge, 64, 2, dpp); /* 63 ahead: kept */
    expect_tx(srv, PKT_CR, 0, 2, huge, to_cli);

    /* Malformed packets, each counted by reason (slot 4, fresh). */
    EXPECT_DROP(srv, BAD_LENGTH, inject(srv, ss, PKT_REQ, 10, 0, 4, 9));
    EXPECT_DROP(srv, BAD_PKT_NUM, inject(srv, ss, PKT_REQ, 10, 1, 4, 0));
    EXPECT_DROP(srv, BAD_TYPE, inject(srv, ss, PKT_RESP, 10, 0, 4, 10));
    EXPECT_DROP(srv, BAD_TYPE, inject(srv, ss, PKT_CR, 10, 0, 4, 0));
    EXPECT_DROP(srv, MSG_SIZE, inject(srv, ss, PKT_REQ, (uint32_t)cfg.max_msg_size + 1, 0, 4, dpp));
    EXPECT_DROP(srv, SHORT, inject_raw(srv, payload, 15, ss));
    {
        uint8_t pkt[16];
        struct pkthdr h;
        pkthdr_pack(&h, REQ_ECHO, 0, ss->local_num, PKT_REQ, 0, 0, 2);
        memcpy(pkt, &h, 16);
        pkt[7] ^= 0x01; /* magic */
        EXPECT_DROP(srv, MAGIC, inject_raw(srv, pkt, 16, ss));
        pkthdr_pack(&h, REQ_ECHO, 0, ss->local_num, PKT_REQ, 1, 0, 2); /* status on a REQ */
        memcpy(pkt, &h, 16);
        EXPECT_DROP(srv, MAGIC, inject_raw(srv, pkt, 16, ss));
        pkthdr_pack(&h, REQ_ECHO, 0, 4000, PKT_REQ, 0, 0, 2); /* no such session */
        memcpy(pkt, &h, 16);
        EXPECT_DROP(srv, BAD_SESSION, inject_raw(srv, pkt, 16, ss));
        pkthdr_pack(&h, REQ_ECHO, 0, 0xFFFF, PKT_REQ, 0, 0, 2); /* beyond max_sessions */
        memcpy(pkt, &h, 16);
        EXPECT_DROP(srv, BAD_SESSION, inject_raw(srv, pkt, 16, ss));
        /* The right session from the wrong source (another endpoint). */
        struct session spoof = *ss;
        spoof.peer.src_id[0] ^= 0x5;
        pkthdr_pack(&h, REQ_ECHO, 0, ss->local_num, PKT_REQ, 0, 0, 2);
        memcpy(pkt, &h, 16);
        EXPECT_DROP(srv, BAD_SOURCE, inject_raw(srv, pkt, 16, &spoof));
    }
    CHECK_EQ(handled, 3);

    /* ---- client side ---- */
    /* A credit return for an idle slot. */
    EXPECT_DROP(cli, STALE_REQ, inject(cli, cs, PKT_CR, big, 0, 0, 0));
    /* A real request on slot 0 (req 0), its packets discarded here. */
    udrpc_msgbuf_t req, resp;
    udrpc_msgbuf_alloc(cli, 64, &req);
    udrpc_msgbuf_alloc(cli, 64, &resp);
    memcpy(req.buf, payload, 64);
    CHECK_EQ(udrpc_enqueue_request(cli, snum, REQ_ECHO, &req, &resp, cont, NULL), 0);
    expect_tx(cli, PKT_REQ, 0, 0, 64, ss->local_num);
    /* Responses for the wrong request, beyond the message, of the wrong
     * length, too big for the buffer's class: all dropped, no continuation. */
    EXPECT_DROP(cli, FUTURE_REQ, inject(cli, cs, PKT_RESP, 64, 0, 8, 64));
    EXPECT_DROP(cli, STALE_REQ, inject(cli, cs, PKT_RESP, 64, 0, 1, 64)); /* idle slot 1 */
    EXPECT_DROP(cli, BAD_PKT_NUM, inject(cli, cs, PKT_RESP, 64, 1, 0, 0));
    EXPECT_DROP(cli, BAD_LENGTH, inject(cli, cs, PKT_RESP, 64, 0, 0, 63));
    /* A CR for this single-packet request is not an acknowledgement. */
    EXPECT_DROP(cli, BAD_PKT_NUM, inject(cli, cs, PKT_CR, 64, 1, 0, 0));
    CHECK_EQ(conts, 0);
    /* The right response: the continuation once, the bytes in place. */
    inject(cli, cs, PKT_RESP, 64, 0, 0, 64);
    CHECK_EQ(conts, 1);
    CHECK_EQ(last_status, 0);
    CHECK_EQ(resp.size, 64);
    CHECK(memcmp(resp.buf, payload, 64) == 0);
    /* Its duplicate: the slot is idle now. */
    EXPECT_DROP(cli, STALE_REQ, inject(cli, cs, PKT_RESP, 64, 0, 0, 64));
    CHECK_EQ(conts, 1);

    /* A three-packet request (req 8 on slot 0): CRs out of order, repeated,
     * and the handler-running signal. */
    udrpc_msgbuf_t breq, bresp;
    udrpc_msgbuf_alloc(cli, big, &breq);
    udrpc_msgbuf_alloc(cli, big, &bresp);
    CHECK_EQ(udrpc_enqueue_request(cli, snum, REQ_ECHO, &breq, &bresp, cont, NULL), 0);
    CHECK_EQ(cli->tx_n, 3); /* credits allow all three at once */
    cli->tx_n = 0;
    uint32_t credits0 = cs->credits; /* three in flight */
    /* CR 1 before CR 0: cumulative, it acknowledges both. */
    inject(cli, cs, PKT_CR, big, 1, 8, 0);
    CHECK_EQ(cs->c[0].num_rx, 2);
    CHECK_EQ(cs->credits, credits0 + 2);
    CHECK_EQ(cli->tx_n, 0);
    /* The late CR 0 and a repeated CR 1 are duplicates. */
    EXPECT_DROP(cli, DUPLICATE, inject(cli, cs, PKT_CR, big, 0, 8, 0));
    EXPECT_DROP(cli, DUPLICATE, inject(cli, cs, PKT_CR, big, 1, 8, 0));
    /* A repeated CR 1 says packet 2 is missing while others arrive: the
     * third such sign resends packet 2 alone (fast retransmit), once. */
    EXPECT_DROP(cli, DUPLICATE, inject(cli, cs, PKT_CR, big, 1, 8, 0));
    uint64_t rtx0 = cli->stats.retransmits;
    inject(cli, cs, PKT_CR, big, 1, 8, 0);
    expect_tx(cli, PKT_REQ, 2, 8, big, ss->local_num);
    CHECK_EQ(cli->stats.retransmits, rtx0 + 1);
    EXPECT_DROP(cli, DUPLICATE, inject(cli, cs, PKT_CR, big, 1, 8, 0));
    CHECK_EQ(cs->c[0].num_tx, 3);
    CHECK_EQ(cs->credits, credits0 + 2);
    /* A response packet other than 0 before RESP 0 (which sizes it). */
    EXPECT_DROP(cli, OUT_OF_ORDER, inject(cli, cs, PKT_RESP, big, 1, 8, dpp));
    /* "Handler running" acknowledges nothing new here (packets 0-1 were;
     * the response acknowledges packet 2): the RTO's backoff goes on. */
    cs->c[0].retries = 5;
    inject(cli, cs, PKT_CR, big, 2, 8, 0);
    CHECK_EQ(cs->c[0].retries, 5);
    CHECK_EQ(cs->c[0].num_rx, 2);
    CHECK_EQ(cli->tx_n, 0);
    /* RESP 0 of a 3-packet response: the client asks for 1 and 2. */
    inject(cli, cs, PKT_RESP, big, 0, 8, dpp);
    CHECK_EQ(cli->tx_n, 2);
    struct pkthdr_fields f;
    pkthdr_unpack(cli->tx[0].hdr, &f);
    CHECK_EQ(f.pkt_type, PKT_RFR);
    CHECK_EQ(f.pkt_num, 1);
    pkthdr_unpack(cli->tx[1].hdr, &f);
    CHECK_EQ(f.pkt_num, 2);
    cli->tx_n = 0;
    /* RESP 2 before RESP 1: kept; its duplicate dropped; RESP 1 completes. */
    inject(cli, cs, PKT_RESP, big, 2, 8, chunk(big, 2));
    CHECK_EQ(conts, 1);
    CHECK_EQ(cli->tx_n, 0);
    EXPECT_DROP(cli, DUPLICATE, inject(cli, cs, PKT_RESP, big, 2, 8, chunk(big, 2)));
    inject(cli, cs, PKT_RESP, big, 1, 8, dpp);
    CHECK_EQ(conts, 2);
    CHECK_EQ(last_status, 0);
    CHECK_EQ(bresp.size, big);
    CHECK(memcmp(bresp.buf, payload, dpp) == 0);
    CHECK(memcmp(bresp.buf + 2 * dpp, payload, chunk(big, 2)) == 0);
    CHECK_EQ(cs->credits, cfg.session_credits); /* every credit came back */

    /* A 40-packet request with 32 credits: 32 go, the slot waits in the
     * credit-stall queue, and each cumulative CR lets more out. */
    uint64_t stalls0 = cli->stats.credit_stalls;
    uint32_t forty = (uint32_t)(40 * dpp);
    udrpc_msgbuf_t hreq, hresp;
    udrpc_msgbuf_alloc(cli, forty, &hreq);
    udrpc_msgbuf_alloc(cli, 64, &hresp);
    CHECK_EQ(udrpc_enqueue_request(cli, snum, REQ_ECHO, &hreq, &hresp, cont, NULL), 0);
    CHECK_EQ(cli->tx_n, 32);
    CHECK_EQ(cs->credits, 0);
    CHECK_EQ(cli->stats.credit_stalls, stalls0 + 1);
    CHECK(cli->stall_head == &cs->c[0]);
    cli->tx_n = 0;
    inject(cli, cs, PKT_CR, forty, 4, 16, 0); /* packets 0..4 acknowledged */
    CHECK_EQ(cli->tx_n, 5);                  /* packets 32..36 */
    pkthdr_unpack(cli->tx[0].hdr, &f);
    CHECK_EQ(f.pkt_num, 32);
    cli->tx_n = 0;
    inject(cli, cs, PKT_CR, forty, 20, 16, 0);
    CHECK_EQ(cli->tx_n, 3);                  /* 37..39: all sent */
    cli->tx_n = 0;
    udrpc__process_stalls(cli);              /* nothing left: leaves the queue */
    CHECK(cli->stall_head == NULL);
    CHECK_EQ(cs->c[0].num_tx, 40);

    /* Off-path teardown: a connect that copies the client's URI, rpc_id and
     * session number but not its token must not touch the live session
     * (found by fuzz_sm). The stranger gets a session of its own. */
    struct sm_pkt fake;
    memset(&fake, 0, sizeof(fake));
    fake.type = SM_CONNECT_REQ;
    fake.client_rpc_id = 1;
    fake.server_rpc_id = 2;
    fake.client_session = cs->local_num;
    fake.token = cs->token ^ 1;
    fake.mtu = (uint16_t)cli->tp->mtu;
    strcpy(fake.client_uri, udrpc_nexus_uri(nx));
    fake.client_route = cli->tp->local;
    struct sockaddr_in nowhere = { .sin_family = AF_INET, .sin_port = htons(9),
                                   .sin_addr.s_addr = htonl(0x7F000001) };
    uint64_t active = srv->stats.sessions_active;
    udrpc__rpc_sm_enqueue(srv, &fake, &nowhere);
    udrpc__sm_process_queue(srv);
    CHECK(srv->sessions[cs->remote_num] == ss);
    CHECK_EQ(srv->stats.sessions_active, active + 1);
    inject(srv, ss, PKT_REQ, 7, 0, 5, 7); /* the real session still serves */
    expect_tx(srv, PKT_RESP, 0, 5, 7, to_cli);
    /* A disconnect without the token is refused too. */
    fake.type = SM_DISCONNECT_REQ;
    fake.server_session = ss->local_num;
    udrpc__rpc_sm_enqueue(srv, &fake, &nowhere);
    udrpc__sm_process_queue(srv);
    CHECK(srv->sessions[cs->remote_num] == ss);

    udrpc_destroy(cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    printf("test_protocol: ok\n");
    return 0;
}
