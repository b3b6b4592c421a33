/*
 * rpc_client.c — requests out: accepted into a slot (or queued beyond the
 * window), their packets pumped as credits and pacing allow, credit
 * returns and response packets taken in (cumulative acknowledgements, up
 * to 64 early packets kept), the response pulled with RFRs, and the
 * continuation run exactly once. Part of datapath.c.
 */
#include "rpc_dp.h"

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
 * by an RFR) go now? Yes at link rate (the bypass); else when the session's
 * pacing allows (cc.h). No: the slot waits on the wheel until then. Also
 * starts an RTT sample if the slot has none running. */
static inline bool cc_may_send(struct udrpc *rpc, struct cslot *c, uint32_t k)
{
    struct session *s = c->sess;
    if (unlikely(s->cc.paced)) {
        size_t bytes = k < c->req_pkts ? pkt_len(c->req->size, rpc->dpp, k)
                                       : pkt_len(c->resp_size, rpc->dpp, k - c->req_pkts + 1);
        if (!udrpc__cc_pace(&s->cc, &rpc->ccp, rpc->now_tsc, bytes + UDRPC_HDR_SIZE)) {
            if (!udrpc__wheel_node_is_armed(&c->pace)) {
                udrpc__wheel_insert(&rpc->wheel, &c->pace, s->cc.next_tx_tsc);
                s->pkts_paced++;
                s->paced_tsc += s->cc.next_tx_tsc - rpc->now_tsc;
            }
            return false;
        }
    }
    if (c->sample_idx == NO_SAMPLE) {
        c->sample_idx = k;
        c->sample_tx_tsc = rpc->now_tsc; /* the iteration's one clock read */
    }
    return true;
}

/* Sends what the slot's credits (and with cc, its session's pacing) allow;
 * arms the RTO if packets are out. */
static void client_pump(struct udrpc *rpc, struct cslot *c)
{
    struct session *s = c->sess;
    uint32_t total = c->resp_pkts ? c->req_pkts + c->resp_pkts - 1 : c->req_pkts;
    bool paced = false;
    UDRPC_ASSERT(c->num_tx >= c->num_rx && s->credits <= rpc->session_credits);
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

/* The free list is empty: one more chunk. Grows in chunks and keeps them:
 * no allocation in steady state. */
static __attribute__((noinline)) struct queued_req *qreq_grow(struct udrpc *rpc)
{
    void **chunks = realloc(rpc->qreq_chunks, sizeof(void *) * (rpc->n_qreq_chunks + 1));
    if (!chunks)
        return NULL;
    rpc->qreq_chunks = chunks;
    struct queued_req *q = calloc(UDRPC_QREQ_CHUNK, sizeof(*q));
    if (!q)
        return NULL;
    chunks[rpc->n_qreq_chunks++] = q;
    for (unsigned i = 1; i < UDRPC_QREQ_CHUNK; i++) { /* q[0] is the caller's */
        q[i].deadline.kind = TIMER_QDEADLINE;
        q[i].next = rpc->qreq_free;
        rpc->qreq_free = &q[i];
    }
    q[0].deadline.kind = TIMER_QDEADLINE;
    return q;
}

static inline struct queued_req *qreq_get(struct udrpc *rpc)
{
    struct queued_req *q = rpc->qreq_free;
    if (unlikely(!q))
        return qreq_grow(rpc);
    rpc->qreq_free = q->next;
    return q;
}

/* Takes q, which follows prev in its session's queue (NULL: q is the
 * head), out of it (and its deadline off the wheel) and returns it to the
 * free list; q's fields stay readable. */
static inline void qreq_unlink(struct udrpc *rpc, struct queued_req *q, struct queued_req *prev)
{
    struct session *s = q->sess;
    if (prev)
        prev->next = q->next;
    else
        s->q_head = q->next;
    if (s->q_tail == q)
        s->q_tail = prev;
    udrpc__wheel_cancel(&rpc->wheel, &q->deadline);
    q->next = rpc->qreq_free;
    rpc->qreq_free = q;
}

/* The queued request before q in its session's queue (NULL: the head).
 * Linear, for the rare ends of a queued request (deadline, cancel). */
static struct queued_req *qreq_prev(const struct queued_req *q)
{
    struct queued_req *p = q->sess->q_head, *prev = NULL;
    while (p != q) {
        prev = p;
        p = p->next;
    }
    return prev;
}

void udrpc__client_check_queued(struct udrpc *rpc, struct session *s)
{
    struct queued_req *q = s->q_head, *prev = NULL;
    while (q) {
        struct queued_req *next = q->next;
        if (q->req->size >= s->peer_msg_limit) {
            /* Queued before the handshake told the server's limit. */
            udrpc_cont_t cont = q->cont;
            void *tag = q->tag;
            qreq_unlink(rpc, q, prev);
            rpc->stats.reqs_completed++;
            cont(rpc->ctx, tag, -EMSGSIZE);
        } else {
            prev = q;
        }
        q = next;
    }
}

void udrpc__client_start_queued(struct udrpc *rpc, struct session *s)
{
    while (s->q_head && s->free_slots && s->state == SS_CONNECTED) {
        struct queued_req *q = s->q_head;
        /* Its deadline, if any, moves to the slot. */
        uint64_t deadline_tsc = udrpc__wheel_node_is_armed(&q->deadline) ? q->deadline.expiry_tsc : 0;
        qreq_unlink(rpc, q, NULL);
        unsigned i = (unsigned)__builtin_ctz(s->free_slots);
        client_start(rpc, s, i, q->req_type, q->req, q->resp, q->cont, q->tag);
        if (unlikely(deadline_tsc))
            udrpc__wheel_insert(&rpc->wheel, &s->c[i].deadline, deadline_tsc);
    }
}

/* Frees slot c: its timers off, its credits back, nothing queued for TX
 * reading its request. */
static inline void slot_end(struct udrpc *rpc, struct cslot *c)
{
    struct session *s = c->sess;
    udrpc__wheel_cancel(&rpc->wheel, &c->rto);
    udrpc__wheel_cancel(&rpc->wheel, &c->pace);
    udrpc__wheel_cancel(&rpc->wheel, &c->deadline);
    stall_remove(rpc, c);
    UDRPC_ASSERT(c->num_tx >= c->num_rx);
    s->credits += c->num_tx - c->num_rx;   /* only on error paths */
    UDRPC_ASSERT(s->credits <= rpc->session_credits);
    if (c->tx_gen == rpc->tx_gen)
        udrpc__tx_flush(rpc);              /* no queued send may read req */
    c->active = false;
    s->free_slots |= (uint8_t)(1u << (c - s->c));
}

/* Ends the slot's request and runs its continuation. The next queued
 * request takes the slot before the continuation runs (FIFO order). */
static void client_complete(struct udrpc *rpc, struct cslot *c, int status)
{
    struct session *s = c->sess;
    slot_end(rpc, c);
    if (unlikely(status != 0))
        udrpc__void_refs(rpc); /* its buffer goes back (the caller's, or
                                  own_req freed) maybe before the server read
                                  it by reference. After a response, what
                                  is left is duplicates, dropped unread. */
    if (unlikely(c->abandoned)) {
        /* Its continuation ran when it was given up on: the exchange is
         * over (the server has answered, or the session ended). */
        c->abandoned = false;
        udrpc__msgbuf_put(&rpc->alloc, &c->own_req);
        udrpc__client_start_queued(rpc, s);
        return;
    }
    if (status == 0)
        c->resp->size = c->resp_size;
    udrpc_cont_t cont = c->cont;
    void *tag = c->tag;
    rpc->stats.reqs_completed++;
    udrpc__client_start_queued(rpc, s);
    cont(rpc->ctx, tag, status);
}

/* Ends request c early with status (-ETIMEDOUT, -ECANCELED): its
 * continuation runs now, and the slot goes on without the caller's
 * buffers until the server has answered (struct cslot.abandoned). 0, or
 * -ENOMEM (no memory for the request's copy: nothing changed). */
static int client_abandon(struct udrpc *rpc, struct cslot *c, int status)
{
    struct session *s = c->sess;
    UDRPC_ASSERT(c->active && !c->abandoned);
    if (c->num_tx == 0 && c->retries == 0) {
        /* Nothing of it ever left (a rollback to 0 comes with a retry;
         * an acknowledgement with num_rx > 0): the slot is free at once,
         * as if the request had never started, and the next request takes
         * its number. */
        slot_end(rpc, c);
        c->next_req_num = c->req_num;
    } else {
        if (udrpc__msgbuf_get(&rpc->alloc, c->req->size ? c->req->size : 1, &c->own_req) != 0)
            return -ENOMEM;
        c->own_req.size = c->req->size;
        memcpy(c->own_req.buf, c->req->buf, c->req->size);
        if (c->tx_gen == rpc->tx_gen)
            udrpc__tx_flush(rpc); /* no queued send may read the caller's req */
        udrpc__void_refs(rpc); /* nor a packet sent by reference, unread */
        c->req = &c->own_req;
        c->resp = NULL;
        c->abandoned = true;
        udrpc__wheel_cancel(&rpc->wheel, &c->deadline);
        udrpc__sm_send_cancel(rpc, s, c->req_num); /* its handler may stop */
    }
    udrpc_cont_t cont = c->cont;
    void *tag = c->tag;
    rpc->stats.reqs_completed++;
    rpc->stats.reqs_abandoned++;
    if (!c->active)
        udrpc__client_start_queued(rpc, s);
    cont(rpc->ctx, tag, status);
    return 0;
}

static void client_deadline(struct udrpc *rpc, struct cslot *c)
{
    if (!c->active || c->abandoned)
        return;
    if (client_abandon(rpc, c, -ETIMEDOUT) != 0) /* no memory: try again soon */
        udrpc__wheel_insert(&rpc->wheel, &c->deadline,
                            rpc->now_tsc + udrpc__us_to_tsc(rpc->clock, 1000));
}

/* Ends queued request q with status; its continuation runs now. */
static void queued_end(struct udrpc *rpc, struct queued_req *q, int status)
{
    udrpc_cont_t cont = q->cont;
    void *tag = q->tag;
    qreq_unlink(rpc, q, qreq_prev(q));
    rpc->stats.reqs_completed++;
    rpc->stats.reqs_abandoned++;
    cont(rpc->ctx, tag, status);
}

static int enqueue(udrpc_t *rpc, int session, uint8_t req_type, udrpc_msgbuf_t *req,
                   udrpc_msgbuf_t *resp, udrpc_cont_t cont, void *tag, bool has_timeout,
                   uint32_t timeout_ms);

int udrpc_enqueue_request(udrpc_t *rpc, int session, uint8_t req_type,
                          udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
                          udrpc_cont_t cont, void *tag)
{
    return enqueue(rpc, session, req_type, req, resp, cont, tag, false, 0);
}

int udrpc_enqueue_request_timeout(udrpc_t *rpc, int session, uint8_t req_type,
                                  udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
                                  udrpc_cont_t cont, void *tag, uint32_t timeout_ms)
{
    return enqueue(rpc, session, req_type, req, resp, cont, tag, true, timeout_ms);
}

static inline __attribute__((always_inline)) int
enqueue(udrpc_t *rpc, int session, uint8_t req_type, udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
        udrpc_cont_t cont, void *tag, bool has_timeout, uint32_t timeout_ms)
{
    if (unlikely(!rpc || !req || !resp || !cont || !req->buf || !resp->buf ||
                 !req->priv || !resp->priv))
        return -EINVAL;
    if (unlikely(!rpc_is_owner(rpc)))
        return -EPERM;
    int err = -EINVAL;
    struct session *s = session_of(rpc, session, &err);
    if (unlikely(!s))
        return err; /* -ENOTCONN: the session has ended */
    if (unlikely(!s->is_client))
        return -EINVAL;
    if (unlikely(req->size > req->max_size || req->size > rpc->max_msg_size))
        return -EINVAL;
    if (unlikely(s->state != SS_CONNECTED && s->state != SS_CONNECTING))
        return -ENOTCONN;
    if (unlikely(req->size >= s->peer_msg_limit)) /* the server's max_msg_size, or */
        return rpc->closing ? -ESHUTDOWN : -EMSGSIZE; /* udrpc_close's 0 */
    /* A deadline: the call's timeout, else the session's (0: none). One
     * clock read, only for a request that has one. */
    uint64_t timeout_tsc = has_timeout ? udrpc__us_to_tsc(rpc->clock, (uint64_t)timeout_ms * 1000)
                                       : s->req_timeout_tsc;
    if (likely(s->state == SS_CONNECTED && s->free_slots && !s->q_head)) {
        rpc->stats.reqs_sent++;
        unsigned i = (unsigned)__builtin_ctz(s->free_slots);
        client_start(rpc, s, i, req_type, req, resp, cont, tag);
        if (unlikely(timeout_tsc))
            udrpc__wheel_insert(&rpc->wheel, &s->c[i].deadline, udrpc__rdtsc() + timeout_tsc);
        udrpc__ev_kick(rpc);
        return 0;
    }
    struct queued_req *q = qreq_get(rpc);
    if (!q)
        return -ENOMEM;
    rpc->stats.reqs_sent++;
    q->next = NULL;
    q->sess = s;
    q->req = req;
    q->resp = resp;
    q->cont = cont;
    q->tag = tag;
    q->req_type = req_type;
    if (unlikely(timeout_tsc))
        udrpc__wheel_insert(&rpc->wheel, &q->deadline, udrpc__rdtsc() + timeout_tsc);
    if (s->q_tail)
        s->q_tail->next = q;
    else
        s->q_head = q;
    s->q_tail = q;
    return 0;
}

int udrpc_set_request_timeout(udrpc_t *rpc, int session, uint32_t timeout_ms)
{
    struct session *s;
    int err = client_session_arg(rpc, session, &s);
    if (err)
        return err;
    s->req_timeout_tsc = udrpc__us_to_tsc(rpc->clock, (uint64_t)timeout_ms * 1000);
    return 0;
}

int udrpc_cancel(udrpc_t *rpc, int session, void *tag)
{
    struct session *s;
    int err = client_session_arg(rpc, session, &s);
    if (err)
        return err;
    /* The oldest request with this tag: in a slot, else in the queue. */
    struct cslot *best = NULL;
    for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++) {
        struct cslot *c = &s->c[i];
        if (c->active && !c->abandoned && c->tag == tag && (!best || c->req_num < best->req_num))
            best = c;
    }
    if (best) {
        int ret = client_abandon(rpc, best, -ECANCELED);
        udrpc__ev_kick(rpc); /* a queued request may have taken the slot */
        return ret;
    }
    for (struct queued_req *q = s->q_head; q; q = q->next)
        if (q->tag == tag) {
            queued_end(rpc, q, -ECANCELED);
            return 0;
        }
    return -ENOENT;
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
    UDRPC_ASSERT(c->sess->credits <= rpc->session_credits);
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

DP_INLINE void client_rx_cr(struct udrpc *rpc, struct session *s,
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

DP_INLINE void client_rx_resp(struct udrpc *rpc, struct session *s,
                              const struct pkthdr_fields *f, const uint8_t *data,
                              size_t len, const struct tp_rx_ref *ref)
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
    if (unlikely(c->abandoned)) {
        /* The server answered a request given up on: its slot has moved
         * on, so ours may too. The answer itself is not read. */
        rpc->stats.late_responses++;
        if (f->pkt_num == 0) {
            client_ack(rpc, c, idx + 1);
            client_complete(rpc, c, 0);
        }
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
            if (unlikely(ref != NULL) && !rx_ref_intact(ref))
                DROP(rpc, STALE_REQ);
            c->rx_ahead |= 1ull << ahead;
            client_gap_signal(rpc, c);
            return;
        }
    }
    memcpy(c->resp->buf + (size_t)f->pkt_num * rpc->dpp, data, len);
    if (unlikely(ref != NULL) && !rx_ref_intact(ref))
        DROP(rpc, STALE_REQ); /* (packet 0: its size, kept, is the same again) */
    client_ack(rpc, c, idx + 1);
    if (c->num_rx == c->req_pkts + c->resp_pkts - 1)
        client_complete(rpc, c, 0);
    else
        client_pump(rpc, c);
}

void udrpc__session_fail_requests(struct udrpc *rpc, struct session *s, int err)
{
    for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++)
        if (s->c[i].active)
            client_complete(rpc, &s->c[i], err);
    while (s->q_head) {
        struct queued_req *q = s->q_head;
        udrpc_cont_t cont = q->cont;
        void *tag = q->tag;
        qreq_unlink(rpc, q, NULL);
        rpc->stats.reqs_completed++;
        cont(rpc->ctx, tag, err);
    }
}
