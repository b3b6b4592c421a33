/*
 * protocol/client.c — the client's receive path, packet by packet:
 * responses validated before they complete anything, cumulative credit
 * returns with fast retransmission, the server's "handler running" signal,
 * a multi-packet response fetched with requests for response, and a
 * request larger than the session's credits waiting in the stall queue,
 * and a timeout whose resend the pacer holds back.
 */
#include <string.h>

#include "fixture.h"

/* Enqueues an echo request of size bytes on f's session: the first on a
 * fresh session, so slot 0, request number 0. */
static struct fx_done *request(struct fx *f, uint32_t size, uint32_t resp_size)
{
    static udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, size, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, resp_size, &resp), 0);
    memcpy(req.buf, fx_payload, size < sizeof(fx_payload) ? size : sizeof(fx_payload));
    struct fx_done *d = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_ECHO, &req, &resp, fx_cont, d), 0);
    return d;
}

/* A single-packet request: wrong responses are dropped with no
 * continuation; the right one completes it once, bytes in place. */
static void response_validation(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    /* A credit return for an idle slot. */
    FX_EXPECT_DROP(cli, STALE_REQ, fx_inject(cli, cs, PKT_CR, 3000, 0, 0, 0));
    struct fx_done *d = fx_done_new(f);
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 64, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 64, &resp), 0);
    memcpy(req.buf, fx_payload, 64);
    CHECK_EQ(udrpc_enqueue_request(cli, f->snum, FX_ECHO, &req, &resp, fx_cont, d), 0);
    fx_expect_tx(cli, PKT_REQ, 0, 0, 64, f->ss->local_num); /* Expect: REQ 0 of req 0 */
    /* For the wrong request, an idle slot (1), beyond the message, of the
     * wrong length: dropped, no continuation. */
    FX_EXPECT_DROP(cli, FUTURE_REQ, fx_inject(cli, cs, PKT_RESP, 64, 0, 8, 64));
    FX_EXPECT_DROP(cli, STALE_REQ, fx_inject(cli, cs, PKT_RESP, 64, 0, 1, 64));
    FX_EXPECT_DROP(cli, BAD_PKT_NUM, fx_inject(cli, cs, PKT_RESP, 64, 1, 0, 0));
    FX_EXPECT_DROP(cli, BAD_LENGTH, fx_inject(cli, cs, PKT_RESP, 64, 0, 0, 63));
    /* A CR for a single-packet request is not an acknowledgement. */
    FX_EXPECT_DROP(cli, BAD_PKT_NUM, fx_inject(cli, cs, PKT_CR, 64, 1, 0, 0));
    CHECK_EQ(d->calls, 0);
    /* The right response: the continuation once, the bytes in place. */
    fx_inject(cli, cs, PKT_RESP, 64, 0, 0, 64);
    CHECK_EQ(d->calls, 1);
    CHECK_EQ(d->status, 0);
    CHECK_EQ(resp.size, 64);
    CHECK(memcmp(resp.buf, fx_payload, 64) == 0);
    /* Its duplicate: the slot is idle now. */
    FX_EXPECT_DROP(cli, STALE_REQ, fx_inject(cli, cs, PKT_RESP, 64, 0, 0, 64));
    CHECK_EQ(d->calls, 1);
    udrpc_msgbuf_free(cli, &req);
    udrpc_msgbuf_free(cli, &resp);
}

/* Three packets sent at once; CRs out of order and repeated. */
static void cumulative_cr(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    uint32_t big = (uint32_t)(2 * f->dpp + 100);
    uint32_t credits0 = cs->credits;
    struct fx_done *d = request(f, big, big);
    CHECK_EQ(cli->tx_n, 3); /* the credits allow all three at once */
    cli->tx_n = 0;
    CHECK_EQ(cs->credits, credits0 - 3);
    /* CR 1 before CR 0: cumulative, it acknowledges both. */
    fx_inject(cli, cs, PKT_CR, big, 1, 0, 0);
    CHECK_EQ(cs->c[0].num_rx, 2);
    CHECK_EQ(cs->credits, credits0 - 1);
    CHECK_EQ(cli->tx_n, 0);
    /* The late CR 0 and a repeated CR 1 are duplicates. */
    FX_EXPECT_DROP(cli, DUPLICATE, fx_inject(cli, cs, PKT_CR, big, 0, 0, 0));
    FX_EXPECT_DROP(cli, DUPLICATE, fx_inject(cli, cs, PKT_CR, big, 1, 0, 0));
    /* Repeated CR 1s say packet 2 is missing while later ones arrive: the
     * third such sign resends packet 2 alone (fast retransmit), once. */
    FX_EXPECT_DROP(cli, DUPLICATE, fx_inject(cli, cs, PKT_CR, big, 1, 0, 0));
    uint64_t rtx0 = cli->stats.retransmits;
    fx_inject(cli, cs, PKT_CR, big, 1, 0, 0);
    fx_expect_tx(cli, PKT_REQ, 2, 0, big, f->ss->local_num);
    CHECK_EQ(cli->stats.retransmits, rtx0 + 1);
    FX_EXPECT_DROP(cli, DUPLICATE, fx_inject(cli, cs, PKT_CR, big, 1, 0, 0));
    CHECK_EQ(cs->c[0].num_tx, 3);
    CHECK_EQ(cs->credits, credits0 - 1);
    CHECK_EQ(d->calls, 0);
}

/* "Handler running" (a CR for the last request packet) acknowledges
 * nothing new when the rest were acknowledged: the RTO's backoff goes on. */
static void handler_running(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    uint32_t big = (uint32_t)(2 * f->dpp + 100);
    struct fx_done *d = request(f, big, big);
    cli->tx_n = 0;
    fx_inject(cli, cs, PKT_CR, big, 1, 0, 0);
    CHECK_EQ(cs->c[0].num_rx, 2);
    cs->c[0].retries = 5;
    fx_inject(cli, cs, PKT_CR, big, 2, 0, 0);
    CHECK_EQ(cs->c[0].retries, 5);
    CHECK_EQ(cs->c[0].num_rx, 2);
    CHECK_EQ(cli->tx_n, 0);
    CHECK_EQ(d->calls, 0);
}

/* A three-packet response: RESP 0 sizes it, the client asks for the rest
 * (RFR 1, RFR 2), and takes them in any order, each once. */
static void multi_packet_response(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    uint32_t big = (uint32_t)(2 * f->dpp + 100);
    uint32_t credits0 = cs->credits;
    struct fx_done *d = fx_done_new(f);
    static udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, big, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, big, &resp), 0);
    CHECK_EQ(udrpc_enqueue_request(cli, f->snum, FX_ECHO, &req, &resp, fx_cont, d), 0);
    cli->tx_n = 0;
    fx_inject(cli, cs, PKT_CR, big, 1, 0, 0);
    /* A response packet other than 0 before RESP 0 (which sizes it). */
    FX_EXPECT_DROP(cli, OUT_OF_ORDER, fx_inject(cli, cs, PKT_RESP, big, 1, 0, f->dpp));
    /* RESP 0 of 3 (it acknowledges request packet 2 too).
     * Expect: RFR 1 and RFR 2. */
    fx_inject(cli, cs, PKT_RESP, big, 0, 0, f->dpp);
    CHECK_EQ(cli->tx_n, 2);
    struct pkthdr_fields h0 = fx_tx_hdr(cli, 0), h1 = fx_tx_hdr(cli, 1);
    CHECK_EQ(h0.pkt_type, PKT_RFR);
    CHECK_EQ(h0.pkt_num, 1);
    CHECK_EQ(h1.pkt_type, PKT_RFR);
    CHECK_EQ(h1.pkt_num, 2);
    cli->tx_n = 0;
    /* RESP 2 before RESP 1: kept; its duplicate dropped; RESP 1 completes. */
    fx_inject(cli, cs, PKT_RESP, big, 2, 0, fx_chunk(f, big, 2));
    CHECK_EQ(d->calls, 0);
    CHECK_EQ(cli->tx_n, 0);
    FX_EXPECT_DROP(cli, DUPLICATE, fx_inject(cli, cs, PKT_RESP, big, 2, 0, fx_chunk(f, big, 2)));
    fx_inject(cli, cs, PKT_RESP, big, 1, 0, f->dpp);
    CHECK_EQ(d->calls, 1);
    CHECK_EQ(d->status, 0);
    CHECK_EQ(resp.size, big);
    CHECK(memcmp(resp.buf, fx_payload, f->dpp) == 0);
    CHECK(memcmp(resp.buf + f->dpp, fx_payload, f->dpp) == 0);
    CHECK(memcmp(resp.buf + 2 * f->dpp, fx_payload, fx_chunk(f, big, 2)) == 0);
    CHECK_EQ(cs->credits, credits0); /* every credit came back */
    /* A late RESP 1: the slot is idle now. */
    FX_EXPECT_DROP(cli, STALE_REQ, fx_inject(cli, cs, PKT_RESP, big, 1, 0, f->dpp));
    CHECK_EQ(d->calls, 1);
}

/* A 40-packet request with 32 credits: 32 go, the slot waits in the
 * credit-stall queue, and each cumulative CR lets more out. */
static void credit_stall(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    CHECK_EQ(cs->credits, 32);
    uint64_t stalls0 = cli->stats.credit_stalls;
    uint32_t forty = (uint32_t)(40 * f->dpp);
    struct fx_done *d = request(f, forty, 64);
    CHECK_EQ(cli->tx_n, 32);
    CHECK_EQ(cs->credits, 0);
    CHECK_EQ(cli->stats.credit_stalls, stalls0 + 1);
    CHECK(cli->stall_head == &cs->c[0]);
    cli->tx_n = 0;
    fx_inject(cli, cs, PKT_CR, forty, 4, 0, 0); /* packets 0..4 acknowledged */
    CHECK_EQ(cli->tx_n, 5);                     /* Expect: packets 32..36 */
    for (unsigned i = 0; i < 5; i++)
        CHECK_EQ(fx_tx_hdr(cli, i).pkt_num, 32 + i);
    cli->tx_n = 0;
    fx_inject(cli, cs, PKT_CR, forty, 20, 0, 0);
    CHECK_EQ(cli->tx_n, 3); /* Expect: 37..39, all sent */
    CHECK_EQ(fx_tx_hdr(cli, 2).pkt_num, 39);
    cli->tx_n = 0;
    udrpc__process_stalls(cli); /* nothing left: the slot leaves the queue */
    CHECK(cli->stall_head == NULL);
    CHECK_EQ(cs->c[0].num_tx, 40);
    CHECK_EQ(d->calls, 0);
}

/* A timeout after which the pacer holds the resend back: the slot has
 * nothing in flight, so its RTO must neither fire again (no backoff, no
 * session check, not counted) nor stay armed, until the packet leaves. */
static void rto_while_paced(struct fx *f)
{
    udrpc_t *cli = f->cli;
    struct session *cs = f->cs;
    struct cslot *c = &cs->c[0];
    cs->cc.paced = true; /* as if Timely had cut the rate below the link's */
    cs->cc.next_tx_tsc = 0;
    uint64_t t = udrpc__rdtsc();
    cli->now_tsc = t;
    cli->loop_gap_tsc = 0;
    struct fx_done *d = request(f, 64, 64);
    fx_expect_tx(cli, PKT_REQ, 0, 0, 64, f->ss->local_num);
    cli->tx_gen++; /* as the flush does: the packet has left */
    CHECK(udrpc__wheel_node_is_armed(&c->rto));
    uint64_t rto = cs->rto_tsc, fired0 = cli->stats.rto_fired;
    cs->cc.next_tx_tsc = t + 100 * rto; /* the pacer holds the next send */

    cli->now_tsc = t + rto + 1;
    udrpc__fire_timers(cli); /* the timeout: go back to packet 0, paced */
    CHECK_EQ(cli->stats.rto_fired, fired0 + 1);
    CHECK_EQ(c->retries, 1);
    CHECK_EQ(cli->tx_n, 0);
    CHECK_EQ(c->num_tx - c->num_rx, 0);
    CHECK(udrpc__wheel_node_is_armed(&c->pace));

    for (int k = 2; k < 10; k++) { /* nothing in flight: nothing times out */
        cli->now_tsc = t + (uint64_t)k * 8 * rto;
        udrpc__fire_timers(cli);
    }
    CHECK_EQ(cli->stats.rto_fired, fired0 + 1);
    CHECK_EQ(c->retries, 1);
    CHECK_EQ(cli->tx_n, 0);
    CHECK(!udrpc__wheel_node_is_armed(&c->rto));

    cli->now_tsc = t + 100 * rto + 1; /* its send time: it leaves, timed again */
    udrpc__fire_timers(cli);
    fx_expect_tx(cli, PKT_REQ, 0, 0, 64, f->ss->local_num);
    CHECK(udrpc__wheel_node_is_armed(&c->rto));
    fx_inject(cli, cs, PKT_RESP, 64, 0, 0, 64);
    CHECK_EQ(d->calls, 1);
    CHECK_EQ(d->status, 0);
}

static void with_cc(udrpc_config_t *c) { c->cc = true; }

static void configure(udrpc_config_t *c)
{
    c->rto_min_us = c->rto_max_us = 1000000; /* no retransmission unless a case fires it */
    c->session_credits = 32;
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(response_validation),
        FX_CASE(cumulative_cr),
        FX_CASE(handler_running),
        FX_CASE(multi_packet_response),
        FX_CASE(credit_stall),
        FX_CASE(rto_while_paced, .configure = with_cc),
    };
    return FX_RUN("protocol_client", cases, configure);
}
