/*
 * rpc_dp.c — the datapath: receive validation, client request/response
 * (credits, go-back-N on the timing wheel), server reassembly, handlers and
 * at-most-once responses, and the TX batch.
 *
 * Every received packet is checked field by field before use; a bad one is
 * counted in stats.drops[reason] and dropped. No allocation happens here
 * except for multi-packet messages (from the msgbuf allocator's free lists).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_internal.h"

/* Counts the drop; a trace line (compiled out below UDRPC_LOG_MIN_LEVEL
 * trace, and rate-limited: a remote sender chooses what we drop). */
#define DROP(rpc, reason)                                                     \
    do {                                                                      \
        (rpc)->stats.drops[UDRPC_DROP_##reason]++;                            \
        UDRPC_LOG_LIMITED(LOG_TRACE, rpc, -1, "dropped a packet: %s",         \
                          udrpc_drop_reason_str(UDRPC_DROP_##reason));        \
        return;                                                               \
    } while (0)

/* ---------------------------------------------------------------- TX ---- */

void udrpc__tx_flush(struct udrpc *rpc)
{
    unsigned n = rpc->tx_n;
    if (n == 0)
        return;
    unsigned sent = rpc->tp_ops->tx_burst(rpc->tp, rpc->tx, n, rpc->now_tsc);
    rpc->stats.pkts_tx += sent;
    rpc->stats.drops[UDRPC_DROP_TX_FULL] += n - sent; /* retransmission recovers */
    rpc->tp_ops->tx_flush(rpc->tp);
    rpc->tx_n = 0;
    rpc->tx_gen++;
}

static inline void tx_queue(struct udrpc *rpc, const struct session *s,
                            const void *hdr, const void *data, uint32_t len,
                            uint32_t lkey)
{
    if (unlikely(rpc->tx_n == UDRPC_TX_BATCH))
        udrpc__tx_flush(rpc);
    struct tp_tx_pkt *t = &rpc->tx[rpc->tx_n++];
    t->peer = &s->peer;
    t->hdr = hdr;
    t->data = data;
    t->data_len = len;
    t->lkey = lkey;
}

/* A header-only packet (CR, RFR) from the control header ring. The ring
 * is longer than a TX batch, so a header is never reused before the batch
 * holding it has been flushed. */
static void tx_ctrl(struct udrpc *rpc, const struct session *s, uint8_t req_type,
                    uint32_t msg_size, enum pkt_type type, uint16_t pkt_num,
                    uint64_t req_num)
{
    uint8_t *h = rpc->ctrl_hdrs + UDRPC_HDR_SIZE * (rpc->ctrl_hdr_idx++ % UDRPC_CTRL_HDRS);
    struct pkthdr ph;
    pkthdr_pack(&ph, req_type, msg_size, s->remote_num, type, WIRE_OK, pkt_num, req_num);
    memcpy(h, &ph, sizeof(ph));
    tx_queue(rpc, s, h, NULL, 0, rpc->ctrl_lkey);
}

/* Expected payload bytes of packet pkt of a msg_size-byte message. */
static inline size_t pkt_len(size_t msg_size, size_t dpp, uint32_t pkt)
{
    size_t off = (size_t)pkt * dpp;
    return msg_size - off < dpp ? msg_size - off : dpp;
}

/* Data packet pkt of message mb (header written into mb's header room). */
static void tx_data(struct udrpc *rpc, const struct session *s,
                    const udrpc_msgbuf_t *mb, uint8_t req_type, uint32_t msg_size,
                    enum pkt_type type, uint8_t status, uint32_t pkt, uint64_t req_num)
{
    struct pkthdr ph;
    pkthdr_pack(&ph, req_type, msg_size, s->remote_num, type, status,
                (uint16_t)pkt, req_num);
    uint8_t *h = msgbuf_hdr(mb, pkt);
    memcpy(h, &ph, sizeof(ph));
    tx_queue(rpc, s, h, mb->buf + (size_t)pkt * rpc->dpp,
             (uint32_t)pkt_len(msg_size, rpc->dpp, pkt), msgbuf_lkey(mb));
}

/* ------------------------------------------------------------ client ---- */

/* Linear in the stall queue, but only reached when a stalled slot ends
 * early (failure, disconnect, error response): a slot that completes
 * normally has sent everything and is never stalled. */
static void stall_remove(struct udrpc *rpc, struct cslot *c)
{
    if (!c->stalled)
        return;
    struct cslot **pp = &rpc->stall_head, *prev = NULL;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->stall_next;
    }
    *pp = c->stall_next;
    if (rpc->stall_tail == c)
        rpc->stall_tail = prev;
    c->stall_next = NULL;
    c->stalled = false;
}

/* Congestion control: may packet k (of `bytes` on the wire, or pulled back
 * by an RFR) go now? Yes at link rate (the wheel bypass); else when the
 * session's pacing clock allows, which then advances by bytes / rate. No:
 * the slot waits on the wheel for that time. Also starts an RTT sample if
 * the slot has none running. */
static inline bool cc_may_send(struct udrpc *rpc, struct cslot *c, uint32_t k)
{
    struct session *s = c->sess;
    if (unlikely(s->paced)) {
        size_t bytes = k < c->req_pkts ? pkt_len(c->req->size, rpc->dpp, k)
                                       : pkt_len(c->resp_size, rpc->dpp, k - c->req_pkts + 1);
        if (rpc->now_tsc < s->next_tx_tsc) {
            if (!udrpc__wheel_node_is_armed(&c->pace)) {
                udrpc__wheel_insert(&rpc->wheel, &c->pace, s->next_tx_tsc);
                s->pkts_paced++;
                s->paced_tsc += s->next_tx_tsc - rpc->now_tsc;
            }
            return false;
        }
        /* A send the wheel released late keeps its slot in the schedule
         * (the rate holds on average); an idle session earns no burst. */
        uint64_t base = s->next_tx_tsc + rpc->pace_slack_tsc > rpc->now_tsc
                            ? s->next_tx_tsc : rpc->now_tsc - rpc->pace_slack_tsc;
        s->next_tx_tsc = base + (uint64_t)((double)(bytes + UDRPC_HDR_SIZE) * s->tsc_per_byte);
    }
    if (c->sample_idx == NO_SAMPLE) {
        c->sample_idx = k;
        c->sample_tx_tsc = rpc->now_tsc; /* the iteration's one clock read */
    }
    return true;
}

/* A rate update (the sample did not take the bypass). */
static __attribute__((noinline)) void cc_update(struct udrpc *rpc, struct session *s,
                                                uint64_t rtt_tsc)
{
    /* The previous sample may have taken the bypass: it is kept in ticks. */
    s->cc.prev_rtt_us = (double)s->last_rtt_tsc * rpc->us_per_tsc;
    udrpc__timely_update(&s->cc, &rpc->timely, (double)rtt_tsc * rpc->us_per_tsc);
    s->tsc_per_byte = rpc->tsc_per_s / s->cc.rate_bytes_per_s;
    s->paced = s->cc.rate_bytes_per_s < rpc->timely.link_rate_bytes_per_s;
}

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
    s->rto_tsc = s->rto_est_tsc = rto_compute(rpc, s);
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
    s->rto_est_tsc = rto_compute(rpc, s);
    if (s->rto_tsc < s->rto_est_tsc)
        s->rto_tsc = s->rto_est_tsc;
}

/* An RTT sample for the session (its packet was sent once only, Karn).
 * With cc, first the Timely bypass test, all in integers, and the rate
 * update only off the bypass; Timely times every slot's packets (one per
 * RTT each), and one of its samples in UDRPC_RTT_SAMPLE_EVERY is plenty
 * for the RTO. */
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
        if (likely(sent_tsc >= rpc->stalled_at_tsc)) {
            if (unlikely(s->paced || rtt_tsc >= rpc->t_low_tsc))
                cc_update(rpc, s, rtt_tsc); /* off the Timely bypass */
            s->last_rtt_tsc = rtt_tsc;
        }
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
 * the estimate doubled per timeout (RFC 6298 5.5), or the session's if
 * that has been backed off further, at most rto_max. */
static uint64_t slot_rto_tsc(const struct udrpc *rpc, const struct cslot *c)
{
    const struct session *s = c->sess;
    unsigned shift = c->retries < 16 ? c->retries : 16; /* no overflow */
    uint64_t rto = s->rto_est_tsc << shift;
    if (rto < s->rto_tsc)
        rto = s->rto_tsc;
    return rto < rpc->rto_max_tsc ? rto : rpc->rto_max_tsc;
}

/* Sends what the slot's credits (and with cc, its session's pacing) allow;
 * arms the RTO if packets are out. */
static void client_pump(struct udrpc *rpc, struct cslot *c)
{
    struct session *s = c->sess;
    uint32_t total = c->resp_pkts ? c->req_pkts + c->resp_pkts - 1 : c->req_pkts;
    bool paced = false;
    while (c->num_tx < total && s->credits > 0) {
        uint32_t k = c->num_tx;
        if (rpc->cc && !cc_may_send(rpc, c, k)) {
            paced = true;
            break;
        }
        if (k < c->req_pkts)
            tx_data(rpc, s, c->req, c->req_type, (uint32_t)c->req->size, PKT_REQ,
                    WIRE_OK, k, c->req_num);
        else
            tx_ctrl(rpc, s, c->req_type, (uint32_t)c->req->size, PKT_RFR,
                    (uint16_t)(k - c->req_pkts + 1), c->req_num);
        c->tx_gen = rpc->tx_gen; /* a packet of ours waits in the TX batch */
        c->num_tx++;
        s->credits--;
    }
    if (c->num_tx < total && !paced && !c->stalled) {
        if (c->num_tx == 0)
            c->sample_idx = NO_SAMPLE; /* its first packet waits: not timed */
        c->stalled = true;
        c->stall_next = NULL;
        if (rpc->stall_tail)
            rpc->stall_tail->stall_next = c;
        else
            rpc->stall_head = c;
        rpc->stall_tail = c;
        rpc->stats.credit_stalls++;
    }
    /* (After a timeout, client_rto has armed the backed-off RTO already.) */
    if (c->num_tx > c->num_rx && !udrpc__wheel_node_is_armed(&c->rto))
        udrpc__wheel_insert(&rpc->wheel, &c->rto, rpc->now_tsc + s->rto_tsc);
}

static void client_start(struct udrpc *rpc, struct session *s, unsigned i,
                         uint8_t req_type, udrpc_msgbuf_t *req,
                         udrpc_msgbuf_t *resp, udrpc_cont_t cont, void *tag)
{
    struct cslot *c = &s->c[i];
    s->free_slots &= (uint8_t)~(1u << i);
    c->req = req;
    c->resp = resp;
    c->cont = cont;
    c->tag = tag;
    c->req_type = req_type;
    uint64_t req_num = c->next_req_num;
    c->req_num = req_num;
    c->next_req_num = req_num + UDRPC_SLOTS_PER_SESSION;
    /* Without cc, one request in UDRPC_RTT_SAMPLE_EVERY per slot is timed
     * from its first packet (RTO estimation needs no more); with cc,
     * cc_may_send times packets as they leave (sample_mask then matches
     * request 0 only, which leaves at once). */
    c->sample_idx = (req_num & rpc->sample_mask) == 0 ? 0 : NO_SAMPLE;
    c->sample_tx_tsc = rpc->now_tsc;
    c->req_pkts = (uint32_t)msgbuf_pkts(req->size, rpc->dpp);
    c->resp_pkts = 0;
    c->resp_size = 0;
    c->num_tx = c->num_rx = 0;
    c->rx_ahead = 0;
    c->gap_signals = 0;
    c->retries = 0;
    c->active = true;
    client_pump(rpc, c);
}

static struct queued_req *qreq_get(struct udrpc *rpc)
{
    if (!rpc->qreq_free) {
        /* Grows in chunks and keeps them: no allocation in steady state. */
        void **chunks = realloc(rpc->qreq_chunks, sizeof(void *) * (rpc->n_qreq_chunks + 1));
        if (!chunks)
            return NULL;
        rpc->qreq_chunks = chunks;
        struct queued_req *q = calloc(UDRPC_QREQ_CHUNK, sizeof(*q));
        if (!q)
            return NULL;
        chunks[rpc->n_qreq_chunks++] = q;
        for (unsigned i = 0; i < UDRPC_QREQ_CHUNK; i++) {
            q[i].next = rpc->qreq_free;
            rpc->qreq_free = &q[i];
        }
    }
    struct queued_req *q = rpc->qreq_free;
    rpc->qreq_free = q->next;
    return q;
}

void udrpc__client_start_queued(struct udrpc *rpc, struct session *s)
{
    while (s->q_head && s->free_slots && s->state == SS_CONNECTED) {
        struct queued_req *q = s->q_head;
        s->q_head = q->next;
        if (!s->q_head)
            s->q_tail = NULL;
        client_start(rpc, s, (unsigned)__builtin_ctz(s->free_slots), q->req_type,
                     q->req, q->resp, q->cont, q->tag);
        q->next = rpc->qreq_free;
        rpc->qreq_free = q;
    }
}

/* Ends the slot's request and runs its continuation. The next queued
 * request takes the slot before the continuation runs (FIFO order). */
static void client_complete(struct udrpc *rpc, struct cslot *c, int status)
{
    struct session *s = c->sess;
    udrpc__wheel_cancel(&rpc->wheel, &c->rto);
    udrpc__wheel_cancel(&rpc->wheel, &c->pace);
    stall_remove(rpc, c);
    s->credits += c->num_tx - c->num_rx;   /* only on error paths */
    if (c->tx_gen == rpc->tx_gen)
        udrpc__tx_flush(rpc);              /* no queued send may read req */
    if (status == 0)
        c->resp->size = c->resp_size;
    c->active = false;
    unsigned i = (unsigned)(c - s->c);
    s->free_slots |= (uint8_t)(1u << i);
    udrpc_cont_t cont = c->cont;
    void *tag = c->tag;
    rpc->stats.reqs_completed++;
    udrpc__client_start_queued(rpc, s);
    cont(rpc->ctx, tag, status);
}

int udrpc_enqueue_request(udrpc_t *rpc, int session, uint8_t req_type,
                          udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
                          udrpc_cont_t cont, void *tag)
{
    if (unlikely(!rpc || !req || !resp || !cont || !req->buf || !resp->buf ||
                 !req->priv || !resp->priv))
        return -EINVAL;
    if (unlikely(!rpc_is_owner(rpc)))
        return -EPERM;
    if (unlikely(session < 0 || (uint32_t)session >= rpc->max_sessions))
        return -EINVAL;
    struct session *s = rpc->sessions[session];
    if (unlikely(!s || !s->is_client))
        return -EINVAL;
    if (unlikely(req->size > req->max_size || req->size > rpc->max_msg_size))
        return -EINVAL;
    if (unlikely(s->state != SS_CONNECTED && s->state != SS_CONNECTING))
        return -ENOTCONN;
    if (likely(s->state == SS_CONNECTED && s->free_slots && !s->q_head)) {
        rpc->stats.reqs_sent++;
        client_start(rpc, s, (unsigned)__builtin_ctz(s->free_slots), req_type,
                     req, resp, cont, tag);
        return 0;
    }
    struct queued_req *q = qreq_get(rpc);
    if (!q)
        return -ENOMEM;
    rpc->stats.reqs_sent++;
    q->next = NULL;
    q->req = req;
    q->resp = resp;
    q->cont = cont;
    q->tag = tag;
    q->req_type = req_type;
    if (s->q_tail)
        s->q_tail->next = q;
    else
        s->q_head = q;
    s->q_tail = q;
    return 0;
}

/* The slot's active request for a CR or RESP, or NULL after counting a
 * drop (an idle slot, or another request number). */
/* client_rx_slot's drop path, out of the way. */
static __attribute__((noinline, cold)) void client_rx_drop(struct udrpc *rpc,
                                                           struct session *s, struct cslot *c,
                                                           uint64_t req_num, uint32_t type_num)
{
    bool stale = req_num < c->req_num || !c->active;
    rpc->stats.drops[stale ? UDRPC_DROP_STALE_REQ : UDRPC_DROP_FUTURE_REQ]++;
    if (stale && type_num == PKT_RESP && req_num == c->rtx_req_num) { /* RESP 0 */
        /* A second answer to a request we resent on a timeout: both
         * copies got there, so the first needed no resending. (Or the
         * network duplicated the answer: a needless doubling, which
         * fades.) */
        c->rtx_req_num = UINT64_MAX;
        rto_was_needless(rpc, s);
    }
}

static inline __attribute__((always_inline)) struct cslot *
client_rx_slot(struct udrpc *rpc, struct session *s, const struct pkthdr_fields *f)
{
    struct cslot *c = &s->c[f->req_num & (UDRPC_SLOTS_PER_SESSION - 1)];
    if (unlikely(!c->active || c->req_num != f->req_num)) {
        /* (by value, so that f stays in registers) */
        client_rx_drop(rpc, s, c, f->req_num, (uint32_t)f->pkt_num << 8 | f->pkt_type);
        return NULL;
    }
    return c;
}

static inline void count_dup(struct udrpc *rpc)
{
    rpc->stats.dup_rx++;
    rpc->stats.drops[UDRPC_DROP_DUPLICATE]++;
}

/* Everything before new_rx has arrived (acknowledgements are cumulative:
 * the server reassembles in order, so CR k means it holds packets 0..k and
 * RESP 0 means it holds the whole request). Returns the credits of what
 * was in flight, absorbs packets that arrived ahead of the gap, and re-arms
 * the RTO. An acknowledgement may come from before a rollback (beyond
 * num_tx): then those packets need not be sent again. */
static void client_advance(struct udrpc *rpc, struct cslot *c, uint32_t new_rx)
{
    uint32_t old_rx = c->num_rx, step = new_rx - old_rx;
    c->rx_ahead = step >= 64 ? 0 : c->rx_ahead >> step;
    c->num_rx = new_rx;
    c->gap_signals = 0;
    while (c->rx_ahead & 1) {
        c->rx_ahead >>= 1;
        c->num_rx++;
    }
    /* Credits come back for what was in flight (sent, not yet acked). */
    c->sess->credits += (c->num_rx < c->num_tx ? c->num_rx : c->num_tx) - old_rx;
    if (c->num_tx < c->num_rx)
        c->num_tx = c->num_rx;
    c->retries = 0;
    if (c->num_tx > c->num_rx)
        udrpc__wheel_rearm(&rpc->wheel, &c->rto, rpc->now_tsc + c->sess->rto_tsc);
    else
        udrpc__wheel_cancel(&rpc->wheel, &c->rto);
}

/* An acknowledgement up to new_rx: its RTT sample if the slot is timing a
 * packet it covers, then the advance. The sample is taken here, not in
 * client_advance, so that the latter stays a leaf function. */
static inline __attribute__((always_inline)) void client_ack(struct udrpc *rpc,
                                                            struct cslot *c, uint32_t new_rx)
{
    if (unlikely(c->sample_idx < new_rx)) {
        c->sample_idx = NO_SAMPLE;
        rtt_sample(rpc, c->sess, c->sample_tx_tsc);
    }
    client_advance(rpc, c, new_rx);
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
    UDRPC_LOG_AT(LOG_DEBUG, rpc, c->sess->local_num,
                 "fast retransmit: request %llu packet %u", (unsigned long long)c->req_num, k);
}

static void client_rx_cr(struct udrpc *rpc, struct session *s,
                         const struct pkthdr_fields *f, size_t len)
{
    if (unlikely(len != 0))
        DROP(rpc, BAD_LENGTH);
    if (unlikely(f->pkt_num >= msgbuf_pkts(f->msg_size, rpc->dpp)))
        DROP(rpc, BAD_PKT_NUM); /* no CR beyond the last request packet */
    struct cslot *c = client_rx_slot(rpc, s, f);
    if (!c)
        return;
    if (unlikely(f->msg_size != c->req->size))
        DROP(rpc, BAD_PKT_NUM);
    if (f->pkt_num + 1u == c->req_pkts) {
        /* "Request complete, handler running": the server is alive and
         * holds the whole request. Resending it is of no use until the
         * response comes, so the RTO's backoff goes on. If we resent it
         * on a timeout, that resend was needless. */
        if (c->num_rx + 1u < c->req_pkts)
            client_ack(rpc, c, c->req_pkts - 1);
        else if (c->rtx_req_num == c->req_num) {
            c->rtx_req_num = UINT64_MAX;
            rto_was_needless(rpc, s);
        }
        return;
    }
    if (f->pkt_num + 1u <= c->num_rx) {
        count_dup(rpc);
        if (f->pkt_num + 1u == c->num_rx)
            client_gap_signal(rpc, c);
        return;
    }
    client_ack(rpc, c, f->pkt_num + 1u);
    client_pump(rpc, c);
}

static void client_rx_resp(struct udrpc *rpc, struct session *s,
                           const struct pkthdr_fields *f, const uint8_t *data,
                           size_t len)
{
    uint32_t pkts = (uint32_t)msgbuf_pkts(f->msg_size, rpc->dpp);
    if (unlikely(f->pkt_num >= pkts))
        DROP(rpc, BAD_PKT_NUM);
    if (unlikely(len != pkt_len(f->msg_size, rpc->dpp, f->pkt_num) ||
                 (f->status != WIRE_OK && f->msg_size != 0)))
        DROP(rpc, BAD_LENGTH);
    struct cslot *c = client_rx_slot(rpc, s, f);
    if (!c)
        return;
    uint32_t idx = c->req_pkts - 1 + f->pkt_num; /* in the slot's numbering */
    if (idx < c->num_rx) {
        count_dup(rpc);
        return;
    }
    if (f->pkt_num == 0) {
        if (f->status != WIRE_OK || f->msg_size > c->resp->max_size) {
            client_ack(rpc, c, idx + 1);
            client_complete(rpc, c, f->status == WIRE_NO_HANDLER  ? -EBADRQC
                                    : f->status == WIRE_NO_MEMORY ? -ENOMEM
                                                                  : -EMSGSIZE);
            return;
        }
        c->resp_pkts = pkts;
        c->resp_size = f->msg_size;
    } else {
        if (unlikely(c->resp_pkts == 0))
            DROP(rpc, OUT_OF_ORDER); /* RESP 0 first: it carries the size */
        if (unlikely(f->msg_size != c->resp_size))
            DROP(rpc, BAD_LENGTH);
        uint32_t ahead = idx - c->num_rx;
        if (unlikely(ahead >= 64))
            DROP(rpc, OUT_OF_ORDER);
        if (c->rx_ahead & (1ull << ahead)) {
            count_dup(rpc);
            return;
        }
        if (ahead) {
            /* Ahead of a gap (reordered): keep it until the gap fills. */
            memcpy(c->resp->buf + (size_t)f->pkt_num * rpc->dpp, data, len);
            c->rx_ahead |= 1ull << ahead;
            client_gap_signal(rpc, c);
            return;
        }
    }
    memcpy(c->resp->buf + (size_t)f->pkt_num * rpc->dpp, data, len);
    client_ack(rpc, c, idx + 1);
    if (c->num_rx == c->req_pkts + c->resp_pkts - 1)
        client_complete(rpc, c, 0);
    else
        client_pump(rpc, c);
}

/* RTO: go back to the last acknowledged packet and resend from there.
 * The session does not fail here: that is liveness's call (time since the
 * peer was last heard from); a long run of timeouts only asks the server,
 * at each further one, whether it still has the session. */
static void client_rto(struct udrpc *rpc, struct cslot *c)
{
    struct session *s = c->sess;
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
    if (rpc->now_tsc >= s->backoff_until_tsc) {
        /* Karn: new requests get the doubled RTO too, until a request that
         * was not resent gives a sample; one doubling per RTO however
         * many slots time out together. */
        s->rto_tsc = 2 * s->rto_tsc < rpc->rto_max_tsc ? 2 * s->rto_tsc : rpc->rto_max_tsc;
        s->backoff_until_tsc = rpc->now_tsc + s->rto_tsc;
    }
    udrpc__wheel_insert(&rpc->wheel, &c->rto, rpc->now_tsc + slot_rto_tsc(rpc, c));
    rpc->stats.rto_fired++;
    uint32_t in_flight = c->num_tx - c->num_rx;
    UDRPC_LOG_AT(LOG_DEBUG, rpc, s->local_num,
                 "RTO: request %llu, %u packets resent from packet %u, retry %u",
                 (unsigned long long)c->req_num, in_flight, c->num_rx, c->retries);
    rpc->stats.retransmits += in_flight;
    s->credits += in_flight;
    c->num_tx = c->num_rx;
    c->gap_signals = 0;
    c->sample_idx = NO_SAMPLE; /* Karn: no RTT from what was resent */
    if (in_flight != 0)
        client_pump(rpc, c); /* (else it was stalled on credits: just wait again) */
}

void udrpc__fire_timers(struct udrpc *rpc)
{
    udrpc__wheel_advance(&rpc->wheel, rpc->now_tsc);
    struct wheel_node *n;
    while ((n = udrpc__wheel_pop_expired(&rpc->wheel)) != NULL) {
        if (likely(n->kind == TIMER_RTO)) {
            client_rto(rpc, container_of(n, struct cslot, rto));
        } else {
            struct cslot *c = container_of(n, struct cslot, pace);
            if (c->active)
                client_pump(rpc, c); /* its send time has come */
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

void udrpc__session_fail_requests(struct udrpc *rpc, struct session *s, int err)
{
    for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++)
        if (s->c[i].active)
            client_complete(rpc, &s->c[i], err);
    while (s->q_head) {
        struct queued_req *q = s->q_head;
        s->q_head = q->next;
        if (!s->q_head)
            s->q_tail = NULL;
        udrpc_cont_t cont = q->cont;
        void *tag = q->tag;
        q->next = rpc->qreq_free;
        rpc->qreq_free = q;
        rpc->stats.reqs_completed++;
        cont(rpc->ctx, tag, err);
    }
}

/* ------------------------------------------------------------ server ---- */

static void server_free_req(struct udrpc *rpc, sslot_t *h)
{
    if (h->req_owned)
        udrpc__msgbuf_put(&rpc->alloc, &h->req);
    h->req_owned = false;
    h->req.buf = NULL;
}

static void server_send_resp(struct udrpc *rpc, sslot_t *h, uint32_t pkt)
{
    tx_data(rpc, h->sess, h->resp, h->req_type, (uint32_t)h->resp->size, PKT_RESP,
            h->status, pkt, h->req_num);
    h->tx_gen = rpc->tx_gen;
}

/* The zero-copy view into the RX buffer dies with this burst: a request
 * whose handler answers later gets a copy. False: no memory. */
static bool server_own_req(struct udrpc *rpc, sslot_t *h)
{
    if (h->req_owned || h->req.size == 0)
        return true;
    udrpc_msgbuf_t copy;
    if (udrpc__msgbuf_get(&rpc->alloc, h->req.size, &copy) != 0)
        return false;
    memcpy(copy.buf, h->req.buf, h->req.size);
    h->req = copy;
    h->req_owned = true;
    return true;
}

static void server_invoke(struct udrpc *rpc, sslot_t *h)
{
    h->state = SV_IN_HANDLER;
    h->resp = NULL;
    h->sess->in_handler++;
    rpc->stats.reqs_handled++;
    const struct handler_entry *he = &rpc->handlers[h->req_type];
    if (unlikely(!he->fn)) {
        h->status = WIRE_NO_HANDLER;
        udrpc_enqueue_response(h);
        return;
    }
    if (he->mode == UDRPC_HANDLER_BG) {
        /* A worker must not touch this thread's allocator: the request is
         * copied and the small response buffer made here. */
        if (!server_own_req(rpc, h) ||
            (!h->small_resp.priv &&
             udrpc__msgbuf_get(&rpc->alloc, UDRPC_SMALL_RESP_BYTES, &h->small_resp) != 0)) {
            h->status = WIRE_NO_MEMORY;
            udrpc_enqueue_response(h);
            return;
        }
        UDRPC_LOG_AT(LOG_TRACE, rpc, h->sess->local_num,
                     "request %llu type %u to a background worker",
                     (unsigned long long)h->req_num, h->req_type);
        udrpc__bg_submit(rpc, h);
        return;
    }
    he->fn(h, rpc->ctx);
    if (h->state == SV_IN_HANDLER && !server_own_req(rpc, h)) {
        h->req.buf = NULL; /* deferred, no memory: the handler must not read it */
        h->req.size = 0;
    }
}

static void server_rx_req(struct udrpc *rpc, struct session *s,
                          const struct pkthdr_fields *f, const uint8_t *data,
                          size_t len)
{
    unsigned i = f->req_num & (UDRPC_SLOTS_PER_SESSION - 1);
    sslot_t *h = &s->s[i];
    uint32_t pkts = (uint32_t)msgbuf_pkts(f->msg_size, rpc->dpp);
    if (unlikely(f->pkt_num >= pkts))
        DROP(rpc, BAD_PKT_NUM);
    if (unlikely(len != pkt_len(f->msg_size, rpc->dpp, f->pkt_num)))
        DROP(rpc, BAD_LENGTH);

    uint64_t expected = h->has_req ? h->req_num + UDRPC_SLOTS_PER_SESSION : i;
    if (f->req_num == expected) {
        /* A new request. The client sends it only after the previous
         * response on this slot arrived, so that response can go. */
        if (unlikely(SV_MASK(h->state) & SV_BUSY))
            DROP(rpc, FUTURE_REQ);
        if (unlikely(f->pkt_num != 0))
            DROP(rpc, OUT_OF_ORDER);
        udrpc_msgbuf_t big = { 0 };
        if (pkts > 1 && udrpc__msgbuf_get(&rpc->alloc, f->msg_size, &big) != 0)
            DROP(rpc, NO_MEMORY); /* as if lost: the client retransmits */
        if (h->tx_gen == rpc->tx_gen)
            udrpc__tx_flush(rpc); /* a queued resend may still read the buffers */
        if (h->resp == &h->dyn_resp)
            udrpc__sslot_put_dyn_resp(rpc, h);
        h->resp = NULL;
        server_free_req(rpc, h);
        h->has_req = true;
        h->req_num = f->req_num;
        h->req_type = f->req_type;
        h->req_size = f->msg_size;
        h->req_pkts = pkts;
        h->num_rx = 1;
        h->rx_ahead = 0;
        h->status = WIRE_OK;
        if (pkts == 1) {
            /* Zero copy: the handler reads the RX buffer in place. */
            h->req.buf = (uint8_t *)data;
            h->req.size = h->req.max_size = f->msg_size;
            h->req.priv = NULL;
            server_invoke(rpc, h);
            return;
        }
        h->req = big;
        h->req_owned = true;
        memcpy(h->req.buf, data, len);
        h->state = SV_RECEIVING;
        tx_ctrl(rpc, s, h->req_type, f->msg_size, PKT_CR, 0, h->req_num);
        h->tx_gen = rpc->tx_gen;
        return;
    }
    if (!h->has_req || f->req_num > expected)
        DROP(rpc, FUTURE_REQ);
    if (f->req_num != h->req_num)
        DROP(rpc, STALE_REQ);
    /* A duplicate must describe the same request. */
    if (unlikely(f->msg_size != h->req_size))
        DROP(rpc, BAD_LENGTH);
    if (unlikely(f->req_type != h->req_type))
        DROP(rpc, BAD_TYPE);

    switch (h->state) {
    case SV_RECEIVING: {
        uint32_t ahead = f->pkt_num - h->num_rx;
        if (f->pkt_num >= h->num_rx && ahead >= 64) {
            DROP(rpc, OUT_OF_ORDER); /* beyond the early-arrival window */
        } else if (f->pkt_num < h->num_rx || (h->rx_ahead & (1ull << ahead))) {
            rpc->stats.dup_rx++; /* our CR was lost or late: answer again */
        } else {
            memcpy(h->req.buf + (size_t)f->pkt_num * rpc->dpp, data, len);
            if (ahead) {
                /* Ahead of a gap: kept for when the gap fills. The CR
                 * below repeats the last one: a duplicate ack that tells
                 * the client a packet is missing (fast retransmit). */
                h->rx_ahead |= 1ull << ahead;
            } else {
                h->rx_ahead >>= 1;
                h->num_rx++;
                while (h->rx_ahead & 1) {
                    h->rx_ahead >>= 1;
                    h->num_rx++;
                }
                if (h->num_rx == h->req_pkts) {
                    server_invoke(rpc, h);
                    return;
                }
            }
        }
        /* CR num_rx - 1: every packet up to it is here. */
        tx_ctrl(rpc, s, h->req_type, f->msg_size, PKT_CR, (uint16_t)(h->num_rx - 1), h->req_num);
        h->tx_gen = rpc->tx_gen;
        return;
    }
    case SV_IN_HANDLER:
    case SV_IN_BG:
        rpc->stats.dup_rx++;
        /* pkt_num == req_pkts - 1 tells the client the handler is running */
        tx_ctrl(rpc, s, h->req_type, f->msg_size, PKT_CR, f->pkt_num, h->req_num);
        h->tx_gen = rpc->tx_gen;
        return;
    case SV_RESPONDED:
        rpc->stats.dup_rx++;
        if (f->pkt_num + 1u < h->req_pkts) {
            tx_ctrl(rpc, s, h->req_type, f->msg_size, PKT_CR, f->pkt_num, h->req_num);
            h->tx_gen = rpc->tx_gen;
        } else {
            server_send_resp(rpc, h, 0); /* at most once: resend, not re-run */
        }
        return;
    default:
        DROP(rpc, STALE_REQ);
    }
}

static void server_rx_rfr(struct udrpc *rpc, struct session *s,
                          const struct pkthdr_fields *f, size_t len)
{
    if (unlikely(len != 0))
        DROP(rpc, BAD_LENGTH);
    sslot_t *h = &s->s[f->req_num & (UDRPC_SLOTS_PER_SESSION - 1)];
    if (unlikely(!h->has_req || f->req_num > h->req_num))
        DROP(rpc, FUTURE_REQ);
    if (unlikely(f->req_num < h->req_num))
        DROP(rpc, STALE_REQ);
    if (unlikely(h->state != SV_RESPONDED))
        DROP(rpc, OUT_OF_ORDER);
    if (unlikely(f->pkt_num == 0 || f->pkt_num >= h->resp_pkts))
        DROP(rpc, BAD_PKT_NUM);
    server_send_resp(rpc, h, f->pkt_num);
}

const udrpc_msgbuf_t *udrpc_req_msgbuf(const udrpc_req_handle_t *h)
{
    return h ? &h->req : NULL;
}

udrpc_msgbuf_t *udrpc_resp_msgbuf(udrpc_req_handle_t *h, size_t size)
{
    if (!h || !(SV_MASK(h->state) & SV_HANDLED) || h->resp)
        return NULL;
    struct udrpc *rpc = h->sess->rpc;
    if (size > rpc->max_msg_size)
        return NULL;
    if (size <= UDRPC_SMALL_RESP_BYTES) {
        /* The common case: the slot's own small buffer, made once. */
        if (!h->small_resp.priv &&
            udrpc__msgbuf_get(&rpc->alloc, UDRPC_SMALL_RESP_BYTES, &h->small_resp) != 0)
            return NULL;
        h->resp = &h->small_resp;
    } else if (h->state == SV_IN_BG) {
        /* A worker's thread: the Rpc's allocator for workers, locked. */
        pthread_mutex_lock(&rpc->bg_alloc_lock);
        int ret = udrpc__msgbuf_get(&rpc->bg_alloc, size, &h->dyn_resp);
        pthread_mutex_unlock(&rpc->bg_alloc_lock);
        if (ret != 0)
            return NULL;
        h->dyn_resp_bg = true;
        h->resp = &h->dyn_resp;
    } else {
        if (udrpc__msgbuf_get(&rpc->alloc, size, &h->dyn_resp) != 0)
            return NULL;
        h->resp = &h->dyn_resp;
    }
    h->resp->size = size;
    return h->resp;
}

void udrpc__sslot_put_dyn_resp(struct udrpc *rpc, sslot_t *h)
{
    if (h->dyn_resp_bg) {
        pthread_mutex_lock(&rpc->bg_alloc_lock);
        udrpc__msgbuf_put(&rpc->bg_alloc, &h->dyn_resp);
        pthread_mutex_unlock(&rpc->bg_alloc_lock);
        h->dyn_resp_bg = false;
    } else {
        udrpc__msgbuf_put(&rpc->alloc, &h->dyn_resp);
    }
}

/* The owner thread: h has its response; send it. */
static inline void server_respond(struct udrpc *rpc, sslot_t *h)
{
    struct session *s = h->sess;
    h->state = SV_RESPONDED;
    h->resp_pkts = (uint32_t)msgbuf_pkts(h->resp->size, rpc->dpp);
    server_free_req(rpc, h);
    s->in_handler--;
    if (unlikely(s->state == SS_ZOMBIE)) {
        /* The client left while the handler ran: nobody to answer. */
        if (s->in_handler == 0)
            udrpc__session_free(rpc, s);
        return;
    }
    server_send_resp(rpc, h, 0);
}

void udrpc__server_respond_bg(struct udrpc *rpc, sslot_t *h)
{
    server_respond(rpc, h); /* bg_answered is cleared at the next submit */
}

/* A background handler's answer (any thread): the owner sends it at its
 * next loop iteration. */
static int enqueue_response_bg(udrpc_req_handle_t *h)
{
    if (h->bg_answered)
        return -EINVAL;
    if (!h->resp && !udrpc_resp_msgbuf(h, 0))
        return -ENOMEM;
    h->bg_answered = true; /* the state stays the Rpc thread's to write */
    udrpc__bg_done_push(h->sess->rpc, h);
    return 0;
}

int udrpc_enqueue_response(udrpc_req_handle_t *h)
{
    if (unlikely(!h || h->state != SV_IN_HANDLER))
        return h && h->state == SV_IN_BG ? enqueue_response_bg(h) : -EINVAL;
    if (unlikely(!h->resp) && !udrpc_resp_msgbuf(h, 0))
        return -ENOMEM; /* the handle stays valid: try again later */
    server_respond(h->sess->rpc, h);
    return 0;
}

/* ------------------------------------------------------------- RX ---- */

static inline void process_pkt(struct udrpc *rpc, const struct tp_rx_pkt *p)
{
    struct pkthdr_fields f;
    if (UDRPC_BENCH_SLOWDOWN) {
        volatile uint32_t waste = 0;
        for (uint32_t i = UDRPC_BENCH_SLOWDOWN; i > 0; i--)
            waste += i;
        (void)waste;
    }
    if (unlikely(p->len < UDRPC_HDR_SIZE))
        DROP(rpc, SHORT);
    if (unlikely(pkthdr_unpack(p->buf, &f) != 0))
        DROP(rpc, MAGIC);
    if (unlikely(f.dest_session >= rpc->max_sessions))
        DROP(rpc, BAD_SESSION);
    struct session *s = rpc->sessions[f.dest_session];
    if (unlikely(!s))
        DROP(rpc, BAD_SESSION);
    if (unlikely(s->state != SS_CONNECTED))
        DROP(rpc, NOT_CONNECTED);
    if (unlikely(p->src_id[0] != s->peer.src_id[0] || p->src_id[1] != s->peer.src_id[1]))
        DROP(rpc, BAD_SOURCE);
    s->last_rx_tsc = rpc->now_tsc; /* the peer is alive (liveness) */
    if (unlikely(f.msg_size > rpc->max_msg_size))
        DROP(rpc, MSG_SIZE);
    if (unlikely(f.status != WIRE_OK && (f.pkt_type != PKT_RESP || f.status >= WIRE_STATUS_MAX)))
        DROP(rpc, MAGIC);
    const uint8_t *data = p->buf + UDRPC_HDR_SIZE;
    size_t len = p->len - UDRPC_HDR_SIZE;
    switch (f.pkt_type) {
    case PKT_REQ:
        if (unlikely(s->is_client))
            DROP(rpc, BAD_TYPE);
        server_rx_req(rpc, s, &f, data, len);
        return;
    case PKT_RFR:
        if (unlikely(s->is_client))
            DROP(rpc, BAD_TYPE);
        server_rx_rfr(rpc, s, &f, len);
        return;
    case PKT_RESP:
        if (unlikely(!s->is_client))
            DROP(rpc, BAD_TYPE);
        client_rx_resp(rpc, s, &f, data, len);
        return;
    default: /* PKT_CR */
        if (unlikely(!s->is_client))
            DROP(rpc, BAD_TYPE);
        client_rx_cr(rpc, s, &f, len);
        return;
    }
}

void udrpc__process_rx(struct udrpc *rpc, const struct tp_rx_pkt *pkts, unsigned n)
{
    rpc->stats.pkts_rx += n;
    for (unsigned i = 0; i < n; i++)
        process_pkt(rpc, &pkts[i]);
}
