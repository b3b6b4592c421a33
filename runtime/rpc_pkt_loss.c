/*
 * rpc_pkt_loss.c — loss and its recovery, on the client: RTT samples and
 * the retransmission timeout (RFC 6298 with Karn's backoff, a margin
 * learnt from needless timeouts), the timeout itself (go-back-N), fast
 * retransmit on three signs of a gap, the timing wheel's expiries, and
 * slots waiting for credits. Part of datapath.c.
 */
#include "rpc_dp.h"

/* SRTT + max(4 RTTVAR, the session's floor), at most rto_max. */
static uint64_t rto_compute(const struct udrpc *rpc, const struct session *s)
{
    uint64_t margin = 4 * s->rttvar_tsc;
    uint64_t rto = s->srtt_tsc + (margin > s->rto_floor_tsc ? margin : s->rto_floor_tsc);
    return rto < rpc->rto_max_tsc ? rto : rpc->rto_max_tsc;
}

/* RFC 6298's estimators from an RTT sample: SRTT and RTTVAR with gains
 * 1/8 and 1/4, RTO = SRTT + max(4 RTTVAR, rto_min) (rto_min as the least
 * margin above SRTT, as Linux applies it: a steady path has RTTVAR near 0,
 * and the RTO must still clear its jitter), at most rto_max; in TSC ticks
 * and integers. Out of line: one request in UDRPC_RTT_SAMPLE_EVERY per
 * slot gets here. */
static __attribute__((noinline)) void rto_update(struct udrpc *rpc, struct session *s,
                                                 uint64_t rtt_tsc)
{
    if (unlikely(s->srtt_tsc == 0)) {
        s->srtt_tsc = rtt_tsc;
        s->rttvar_tsc = rtt_tsc / 2;
    } else {
        int64_t err = (int64_t)(rtt_tsc - s->srtt_tsc);
        s->srtt_tsc += (uint64_t)(err >> 3);
        uint64_t abs_err = (uint64_t)(err < 0 ? -err : err);
        s->rttvar_tsc = s->rttvar_tsc - (s->rttvar_tsc >> 2) + (abs_err >> 2);
    }
    if (s->rto_floor_tsc > rpc->rto_min_tsc) /* learnt from needless resends: it fades */
        s->rto_floor_tsc -= (s->rto_floor_tsc - rpc->rto_min_tsc) / UDRPC_RTO_FLOOR_FADE;
    s->rto_tsc = rto_compute(rpc, s);
}

/* A timeout turned out needless: the server had the request all along (it
 * says its handler is running, or a second answer comes). Nothing was
 * lost: the answer took longer than the RTO, as answers on a busy machine
 * do when a thread of the path waits for a core. So the margin above SRTT
 * doubles, and fades again over later samples: the RTO learns the path's
 * tail, which RTTVAR, an average, does not cover. */
static void rto_was_needless(struct udrpc *rpc, struct session *s)
{
    rpc->stats.rto_needless++;
    s->rto_floor_tsc = 2 * s->rto_floor_tsc < rpc->rto_max_tsc ? 2 * s->rto_floor_tsc
                                                               : rpc->rto_max_tsc;
    s->rto_tsc = rto_compute(rpc, s);
}

/* An RTT sample for the session (its packet was sent once only, Karn).
 * With cc, first Timely's (cc.h); Timely times every slot's packets (one
 * per RTT each), and one of its samples in UDRPC_RTT_SAMPLE_EVERY is
 * plenty for the RTO. */
static inline void rtt_sample(struct udrpc *rpc, struct session *s, uint64_t sent_tsc)
{
    uint64_t rtt_tsc = rpc->now_tsc - sent_tsc;
    if (rtt_tsc < s->rtt_min_tsc)
        s->rtt_min_tsc = rtt_tsc;
    if (rpc->cc) {
        /* A sample that spans a stall of ours (this thread descheduled,
         * or its caller away from the loop, which is also when a request
         * enqueued outside the loop takes the last iteration's time)
         * would show Timely our delay as the network's: not for it. */
        if (likely(sent_tsc >= rpc->stalled_at_tsc))
            udrpc__cc_sample(&s->cc, &rpc->ccp, rtt_tsc);
        if (s->rtt_samples++ % UDRPC_RTT_SAMPLE_EVERY != 0)
            return;
    } else {
        s->rtt_samples++;
    }
    /* The RTO takes every sample, our own delays included: it must wait
     * them out, or resend for nothing. */
    rto_update(rpc, s, rtt_tsc);
}

/* The RTO of a slot whose request has timed out `retries` times in a row:
 * the session's doubled per timeout (RFC 6298 5.5), at most rto_max. The
 * backoff is the request's: the next request starts from the session's
 * RTO again (RFC 6298 keeps it backed off until a valid sample; with
 * samples from one request in 16, and none from a request resent, a lossy
 * path would keep every request at rto_max). A too small RTO is found out
 * by needless timeouts instead (rto_was_needless). */
static uint64_t slot_rto_tsc(const struct udrpc *rpc, const struct cslot *c)
{
    const struct session *s = c->sess;
    unsigned shift = c->retries < 16 ? c->retries : 16; /* no overflow */
    uint64_t rto = s->rto_tsc << shift;
    return rto < rpc->rto_max_tsc ? rto : rpc->rto_max_tsc;
}

/* A sign that packet num_rx is missing while later ones arrive: a repeated
 * cumulative CR, or a response packet ahead of the gap. The third one
 * resends that packet alone (TCP's fast retransmit); the RTO remains the
 * backstop and goes back over the whole window. */
static void client_gap_signal(struct udrpc *rpc, struct cslot *c)
{
    if (++c->gap_signals != UDRPC_FAST_RETRANSMIT_SIGNALS || c->num_tx <= c->num_rx)
        return;
    uint32_t k = c->num_rx;
    if (k < c->req_pkts)
        tx_data(rpc, c->sess, c->req, c->req_type, (uint32_t)c->req->size, PKT_REQ, WIRE_OK,
                k, c->req_num);
    else
        tx_ctrl(rpc, c->sess, c->req_type, (uint32_t)c->req->size, PKT_RFR,
                (uint16_t)(k - c->req_pkts + 1), c->req_num);
    c->tx_gen = rpc->tx_gen;
    c->sample_idx = NO_SAMPLE; /* Karn: no RTT from what was resent */
    rpc->stats.retransmits++;
    UDRPC_LOG_AT(UDRPC_LVL_DEBUG, rpc, c->sess->local_num,
                 "fast retransmit: request %llu packet %u", (unsigned long long)c->req_num, k);
}

/* RTO: go back to the last acknowledged packet and resend from there.
 * The session does not fail here: that is liveness's call (time since the
 * peer was last heard from); a long run of timeouts only asks the server,
 * at each further one, whether it still has the session. */
static void client_rto(struct udrpc *rpc, struct cslot *c)
{
    struct session *s = c->sess;
    uint32_t in_flight = c->num_tx - c->num_rx;
    if (unlikely(in_flight == 0)) {
        /* Nothing is out: since the last timeout's go-back-N the slot has
         * waited for its pacing or for credits. No timeout, then: the RTO
         * is armed again when a packet leaves (client_pump). */
        return;
    }
    uint64_t rto = slot_rto_tsc(rpc, c);
    if (unlikely(c->tx_gen == rpc->tx_gen || rpc->loop_gap_tsc > rto / 2)) {
        /* No evidence of a loss: its packets have not even left (queued
         * outside the event loop, which then ran later than the RTO), or
         * this endpoint was not polled for half the RTO just now (its
         * thread descheduled, or its caller busy), so the answer may be
         * waiting unread. Time it from now. */
        udrpc__wheel_insert(&rpc->wheel, &c->rto, rpc->now_tsc + rto);
        return;
    }
    if (c->retries < UINT32_MAX)
        c->retries++;
    /* Only a single-packet request's resend can be judged needless: the
     * server's answer to a duplicate of it ("still running", or its
     * response again) shows that the original arrived. */
    if (c->req_pkts == 1)
        c->rtx_req_num = c->req_num;
    if (c->retries >= UDRPC_RTO_CHECK_AFTER)
        udrpc__session_check(rpc, s);
    udrpc__wheel_insert(&rpc->wheel, &c->rto, rpc->now_tsc + slot_rto_tsc(rpc, c));
    rpc->stats.rto_fired++;
    UDRPC_LOG_AT(UDRPC_LVL_DEBUG, rpc, s->local_num,
                 "RTO: request %llu, %u packets resent from packet %u, retry %u",
                 (unsigned long long)c->req_num, in_flight, c->num_rx, c->retries);
    rpc->stats.retransmits += in_flight;
    UDRPC_ASSERT(c->num_tx >= c->num_rx);
    s->credits += in_flight;
    UDRPC_ASSERT(s->credits <= rpc->session_credits);
    c->num_tx = c->num_rx;
    c->gap_signals = 0;
    c->sample_idx = NO_SAMPLE; /* Karn: no RTT from what was resent */
    client_pump(rpc, c);
}

void udrpc__fire_timers(struct udrpc *rpc)
{
    udrpc__wheel_advance(&rpc->wheel, rpc->now_tsc);
    struct wheel_node *n;
    while ((n = udrpc__wheel_pop_expired(&rpc->wheel)) != NULL) {
        if (likely(n->kind == TIMER_RTO)) {
            client_rto(rpc, container_of(n, struct cslot, rto));
        } else if (n->kind == TIMER_PACE) {
            struct cslot *c = container_of(n, struct cslot, pace);
            if (c->active)
                client_pump(rpc, c); /* its send time has come */
        } else if (n->kind == TIMER_DEADLINE) {
            client_deadline(rpc, container_of(n, struct cslot, deadline));
        } else {
            queued_end(rpc, container_of(n, struct queued_req, deadline), -ETIMEDOUT);
        }
    }
}

void udrpc__process_stalls(struct udrpc *rpc)
{
    /* Each stalled slot gets one try, oldest first; those still short of
     * credits re-queue themselves at the tail. */
    struct cslot *c = rpc->stall_head;
    rpc->stall_head = rpc->stall_tail = NULL;
    while (c) {
        struct cslot *next = c->stall_next;
        c->stall_next = NULL;
        c->stalled = false;
        if (c->active)
            client_pump(rpc, c);
        c = next;
    }
}
