/*
 * protocol/server.c — the server's receive path, packet by packet: a new
 * request and its duplicate, stale and future request numbers, reassembly
 * of a multi-packet request out of order with its credit returns and
 * requests for response, the reorder window's edge, and malformed packets,
 * each dropped and counted by reason.
 */
#include <string.h>

#include "fixture.h"

/* A single-packet request: one handler run, one RESP 0; its duplicate gets
 * the stored response again without a second run. */
static void new_and_duplicate(struct fx *f)
{
    const uint16_t to_cli = f->cs->local_num;
    fx_inject(f->srv, f->ss, PKT_REQ, 10, 0, 0, 10);
    CHECK_EQ(f->handled, 1);
    fx_expect_tx(f->srv, PKT_RESP, 0, 0, 10, to_cli); /* Expect: RESP 0 of req 0 */
    CHECK(memcmp(f->srv->tx[0].data, fx_payload, 10) == 0);

    uint64_t dup0 = f->srv->stats.dup_rx;
    fx_inject(f->srv, f->ss, PKT_REQ, 10, 0, 0, 10);
    CHECK_EQ(f->handled, 1);
    CHECK_EQ(f->srv->stats.dup_rx, dup0 + 1);
    fx_expect_tx(f->srv, PKT_RESP, 0, 0, 10, to_cli);
}

/* Request numbers: slot s carries s, s + 8, s + 16, ... in turn. */
static void stale_and_future(struct fx *f)
{
    const uint16_t to_cli = f->cs->local_num;
    fx_inject(f->srv, f->ss, PKT_REQ, 10, 0, 0, 10);
    fx_expect_tx(f->srv, PKT_RESP, 0, 0, 10, to_cli);
    /* The next request on slot 0 (req 8), then the stale req 0. */
    fx_inject(f->srv, f->ss, PKT_REQ, 5, 0, 8, 5);
    CHECK_EQ(f->handled, 2);
    fx_expect_tx(f->srv, PKT_RESP, 0, 8, 5, to_cli);
    FX_EXPECT_DROP(f->srv, STALE_REQ, fx_inject(f->srv, f->ss, PKT_REQ, 10, 0, 0, 10));
    /* Beyond the slot's window (req 24 skips req 16). */
    FX_EXPECT_DROP(f->srv, FUTURE_REQ, fx_inject(f->srv, f->ss, PKT_REQ, 5, 0, 24, 5));
    /* A first request on slot 3 that is not req 3. */
    FX_EXPECT_DROP(f->srv, FUTURE_REQ, fx_inject(f->srv, f->ss, PKT_REQ, 5, 0, 11, 5));
    CHECK_EQ(f->handled, 2);
}

/* A three-packet request on slot 1, its packets reordered and repeated. */
static void reassembly(struct fx *f)
{
    const uint16_t to_cli = f->cs->local_num;
    udrpc_t *srv = f->srv;
    struct session *ss = f->ss;
    uint32_t big = (uint32_t)(2 * f->dpp + 100);
    fx_inject(srv, ss, PKT_REQ, big, 0, 1, f->dpp);
    fx_expect_tx(srv, PKT_CR, 0, 1, big, to_cli); /* Expect: CR for pkt 0 */
    /* Packet 2 ahead of packet 1 (reordered or 1 lost): kept aside, nothing
     * dropped. Expect: CR 0 again (cumulative: a duplicate ack). */
    uint64_t ooo0 = srv->stats.drops[UDRPC_DROP_OUT_OF_ORDER];
    fx_inject(srv, ss, PKT_REQ, big, 2, 1, fx_chunk(f, big, 2));
    fx_expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    CHECK_EQ(srv->stats.drops[UDRPC_DROP_OUT_OF_ORDER], ooo0);
    /* Its duplicate, and a duplicate of pkt 0: the cumulative CR 0. */
    uint64_t dup0 = srv->stats.dup_rx;
    fx_inject(srv, ss, PKT_REQ, big, 2, 1, fx_chunk(f, big, 2));
    fx_expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    fx_inject(srv, ss, PKT_REQ, big, 0, 1, f->dpp);
    fx_expect_tx(srv, PKT_CR, 0, 1, big, to_cli);
    CHECK_EQ(srv->stats.dup_rx, dup0 + 2);
    /* The same request number with another size is not this request. */
    FX_EXPECT_DROP(srv, BAD_LENGTH, fx_inject(srv, ss, PKT_REQ, big + 1, 1, 1, f->dpp));
    /* An RFR while the request is still arriving. */
    FX_EXPECT_DROP(srv, OUT_OF_ORDER, fx_inject(srv, ss, PKT_RFR, big, 1, 1, 0));
    CHECK_EQ(f->handled, 0);
    /* Packet 1 fills the gap: with packet 2 kept, the request is whole.
     * Expect: the handler once, RESP 0 of 3. */
    fx_inject(srv, ss, PKT_REQ, big, 1, 1, f->dpp);
    CHECK_EQ(f->handled, 1);
    fx_expect_tx(srv, PKT_RESP, 0, 1, big, to_cli);
    CHECK(memcmp(srv->tx[0].data, fx_payload, f->dpp) == 0);
    /* RFRs: in range, beyond the message, and for packet 0. */
    fx_inject(srv, ss, PKT_RFR, big, 2, 1, 0);
    fx_expect_tx(srv, PKT_RESP, 2, 1, big, to_cli);
    FX_EXPECT_DROP(srv, BAD_PKT_NUM, fx_inject(srv, ss, PKT_RFR, big, 3, 1, 0));
    FX_EXPECT_DROP(srv, BAD_PKT_NUM, fx_inject(srv, ss, PKT_RFR, big, 0, 1, 0));
    /* An RFR for a request the slot has not seen. */
    FX_EXPECT_DROP(srv, FUTURE_REQ, fx_inject(srv, ss, PKT_RFR, big, 1, 9, 0));
    /* A duplicate of the last request packet after the response: RESP 0. */
    fx_inject(srv, ss, PKT_REQ, big, 2, 1, fx_chunk(f, big, 2));
    fx_expect_tx(srv, PKT_RESP, 0, 1, big, to_cli);
    CHECK_EQ(f->handled, 1);
}

/* Packets up to 63 ahead of the first missing one are kept; 64 or more
 * ahead are beyond the window and dropped. */
static void reorder_window(struct fx *f)
{
    const uint16_t to_cli = f->cs->local_num;
    uint32_t huge = (uint32_t)(70 * f->dpp);
    fx_inject(f->srv, f->ss, PKT_REQ, huge, 0, 2, f->dpp);
    fx_expect_tx(f->srv, PKT_CR, 0, 2, huge, to_cli);
    FX_EXPECT_DROP(f->srv, OUT_OF_ORDER, fx_inject(f->srv, f->ss, PKT_REQ, huge, 65, 2, f->dpp));
    fx_inject(f->srv, f->ss, PKT_REQ, huge, 64, 2, f->dpp); /* 63 ahead of packet 1: kept */
    fx_expect_tx(f->srv, PKT_CR, 0, 2, huge, to_cli);
    CHECK_EQ(f->handled, 0);
}

/* Malformed packets, each dropped and counted by reason; nothing runs. */
static void malformed(struct fx *f)
{
    udrpc_t *srv = f->srv;
    struct session *ss = f->ss;
    FX_EXPECT_DROP(srv, BAD_LENGTH, fx_inject(srv, ss, PKT_REQ, 10, 0, 4, 9));
    FX_EXPECT_DROP(srv, BAD_PKT_NUM, fx_inject(srv, ss, PKT_REQ, 10, 1, 4, 0));
    FX_EXPECT_DROP(srv, BAD_TYPE, fx_inject(srv, ss, PKT_RESP, 10, 0, 4, 10));
    FX_EXPECT_DROP(srv, BAD_TYPE, fx_inject(srv, ss, PKT_CR, 10, 0, 4, 0));
    FX_EXPECT_DROP(srv, MSG_SIZE,
                   fx_inject(srv, ss, PKT_REQ, (uint32_t)f->cfg.max_msg_size + 1, 0, 4, f->dpp));
    FX_EXPECT_DROP(srv, SHORT, fx_inject_raw(srv, fx_payload, 15, ss));

    uint8_t pkt[16];
    struct pkthdr h;
    pkthdr_pack(&h, FX_ECHO, 0, ss->local_num, PKT_REQ, 0, 0, 2);
    memcpy(pkt, &h, 16);
    pkt[7] ^= 0x01; /* the magic */
    FX_EXPECT_DROP(srv, MAGIC, fx_inject_raw(srv, pkt, 16, ss));
    pkthdr_pack(&h, FX_ECHO, 0, ss->local_num, PKT_REQ, 1, 0, 2); /* a status on a REQ */
    memcpy(pkt, &h, 16);
    FX_EXPECT_DROP(srv, MAGIC, fx_inject_raw(srv, pkt, 16, ss));
    pkthdr_pack(&h, FX_ECHO, 0, 4000, PKT_REQ, 0, 0, 2); /* no such session */
    memcpy(pkt, &h, 16);
    FX_EXPECT_DROP(srv, BAD_SESSION, fx_inject_raw(srv, pkt, 16, ss));
    pkthdr_pack(&h, FX_ECHO, 0, 0xFFFF, PKT_REQ, 0, 0, 2); /* beyond max_sessions */
    memcpy(pkt, &h, 16);
    FX_EXPECT_DROP(srv, BAD_SESSION, fx_inject_raw(srv, pkt, 16, ss));
    /* The right session from the wrong source (another endpoint). */
    struct session spoof = *ss;
    spoof.peer.src_id[0] ^= 0x5;
    pkthdr_pack(&h, FX_ECHO, 0, ss->local_num, PKT_REQ, 0, 0, 2);
    memcpy(pkt, &h, 16);
    FX_EXPECT_DROP(srv, BAD_SOURCE, fx_inject_raw(srv, pkt, 16, &spoof));
    CHECK_EQ(f->handled, 0);
    /* The session still serves. */
    fx_inject(srv, ss, PKT_REQ, 7, 0, 0, 7);
    fx_expect_tx(srv, PKT_RESP, 0, 0, 7, f->cs->local_num);
}

static void configure(udrpc_config_t *c)
{
    c->rto_min_us = c->rto_max_us = 1000000; /* no retransmission during a case */
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(new_and_duplicate),
        FX_CASE(stale_and_future),
        FX_CASE(reassembly),
        FX_CASE(reorder_window),
        FX_CASE(malformed),
    };
    return FX_RUN("protocol_server", cases, configure);
}
