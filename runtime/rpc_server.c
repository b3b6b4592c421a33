/*
 * rpc_server.c — requests in: a new request on its slot, the packets of a
 * multi-packet one reassembled, duplicates answered without running
 * anything twice; the handler invoked (here, or on a background worker);
 * its response sent, and its later packets on request (RFR). Part of
 * datapath.c.
 */
#include "rpc_dp.h"

static void server_free_req(struct udrpc *rpc, sslot_t *h)
{
    if (h->req_owned)
        udrpc__msgbuf_put(&rpc->alloc, &h->req);
    h->req_owned = h->req_in_resp = false;
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
    if (h->req_owned || h->req_in_resp || h->req.size == 0)
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
    SV_SET(h, SV_IN_HANDLER);
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
        UDRPC_LOG_AT(UDRPC_LVL_TRACE, rpc, h->sess->local_num,
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

/* A new request on the slot (its first packet). The client sends it only
 * after the previous response on this slot arrived, so that response and
 * the previous request's buffers can go. A single-packet request is
 * handed to its handler in the receive buffer itself. */
DP_INLINE void server_new_req(struct udrpc *rpc, struct session *s, sslot_t *h,
                              const struct pkthdr_fields *f, uint32_t pkts, const uint8_t *data,
                              size_t len, const struct tp_rx_ref *ref)
{
    if (unlikely(SV_MASK(h->state) & SV_BUSY))
        DROP(rpc, FUTURE_REQ);
    if (unlikely(f->pkt_num != 0))
        DROP(rpc, OUT_OF_ORDER);
    udrpc_msgbuf_t big = { 0 };
    if ((pkts > 1 || ref) && udrpc__msgbuf_get(&rpc->alloc, f->msg_size, &big) != 0)
        DROP(rpc, NO_MEMORY); /* as if lost: the client retransmits */
    if (unlikely(ref != NULL)) {
        /* By reference: copied, then checked, before anything changes. */
        memcpy(big.buf, data, len);
        if (!rx_ref_intact(ref)) {
            udrpc__msgbuf_put(&rpc->alloc, &big);
            DROP(rpc, STALE_REQ);
        }
    }
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
    if (pkts == 1 && !ref) {
        /* Zero copy: the handler reads the RX buffer in place. */
        h->req.buf = (uint8_t *)data;
        h->req.size = h->req.max_size = f->msg_size;
        h->req.priv = NULL;
        server_invoke(rpc, h);
        return;
    }
    h->req = big;
    h->req_owned = true;
    if (pkts == 1) {
        server_invoke(rpc, h); /* (by reference: copied above) */
        return;
    }
    if (!ref)
        memcpy(h->req.buf, data, len);
    SV_SET(h, SV_RECEIVING);
    tx_ctrl(rpc, s, h->req_type, f->msg_size, PKT_CR, 0, h->req_num);
    h->tx_gen = rpc->tx_gen;
}

/* A later packet of a multi-packet request being received: copied into
 * place (up to 64 ahead of a gap are kept), then a cumulative CR. The last
 * one runs the handler. */
DP_INLINE void server_reassemble(struct udrpc *rpc, struct session *s, sslot_t *h,
                                 const struct pkthdr_fields *f, const uint8_t *data, size_t len,
                                 const struct tp_rx_ref *ref)
{
    uint32_t ahead = f->pkt_num - h->num_rx;
    if (f->pkt_num >= h->num_rx && ahead >= 64) {
        DROP(rpc, OUT_OF_ORDER); /* beyond the early-arrival window */
    } else if (f->pkt_num < h->num_rx || (h->rx_ahead & (1ull << ahead))) {
        rpc->stats.dup_rx++; /* our CR was lost or late: answer again */
    } else {
        memcpy(h->req.buf + (size_t)f->pkt_num * rpc->dpp, data, len);
        if (unlikely(ref != NULL) && !rx_ref_intact(ref))
            DROP(rpc, STALE_REQ); /* not marked received: it comes again */
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
}

/* A packet of a request the slot has received whole: the client resent
 * it (our answer was lost or late). At most once: a running handler is
 * said to run, a stored response is sent again, nothing runs twice. */
DP_INLINE void server_dup_req(struct udrpc *rpc, struct session *s, sslot_t *h,
                              const struct pkthdr_fields *f)
{
    switch (h->state) {
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

/* A request packet: the slot is req_num mod 8; a new request, a packet of
 * one being received, or a duplicate of one received whole. */
DP_INLINE void server_rx_req(struct udrpc *rpc, struct session *s,
                             const struct pkthdr_fields *f, const uint8_t *data,
                             size_t len, const struct tp_rx_ref *ref)
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
        server_new_req(rpc, s, h, f, pkts, data, len, ref);
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
    if (h->state == SV_RECEIVING)
        server_reassemble(rpc, s, h, f, data, len, ref);
    else
        server_dup_req(rpc, s, h, f);
}

DP_INLINE void server_rx_rfr(struct udrpc *rpc, struct session *s,
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
    if (f->pkt_num >= h->resp_pulled)
        h->resp_pulled = f->pkt_num + 1u;
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
    if (size >= h->sess->peer_msg_limit)
        return NULL; /* over ours, or the client's (told at connect) */
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

udrpc_msgbuf_t *udrpc_resp_msgbuf_in_place(udrpc_req_handle_t *h)
{
    if (!h || !(SV_MASK(h->state) & SV_HANDLED) || h->resp)
        return NULL;
    if (!h->req_owned) {
        /* Read where it arrived (one packet): a response buffer, a copy. */
        size_t size = h->req.size;
        udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, size);
        if (resp && size)
            memcpy(resp->buf, h->req.buf, size);
        return resp;
    }
    if (h->req.size >= h->sess->peer_msg_limit)
        return NULL; /* (as udrpc_resp_msgbuf) */
    /* The request's own buffer (from the Rpc's allocator, on any thread)
     * becomes the response's; the request stays a view of it. */
    h->dyn_resp = h->req;
    h->dyn_resp_bg = false;
    h->req_owned = false;
    h->req_in_resp = true;
    h->resp = &h->dyn_resp;
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
    SV_SET(h, SV_RESPONDED);
    h->resp_pkts = (uint32_t)msgbuf_pkts(h->resp->size, rpc->dpp);
    h->resp_pulled = 1; /* RESP 0 goes now */
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
    struct udrpc *rpc = h->sess->rpc;
    server_respond(rpc, h);
    udrpc__ev_kick(rpc); /* a deferred answer, outside the loop */
    return 0;
}

bool udrpc_req_abandoned(const udrpc_req_handle_t *h)
{
    return h && atomic_load_explicit(&h->abandoned_req, memory_order_relaxed) == h->req_num;
}

udrpc_t *udrpc_req_rpc(const udrpc_req_handle_t *h)
{
    return h ? h->sess->rpc : NULL;
}

uint8_t udrpc_req_type(const udrpc_req_handle_t *h)
{
    return h ? h->req_type : 0;
}
