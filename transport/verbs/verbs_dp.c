/*
 * verbs_dp.c — the verbs transport's datapath: the receive ring reposted
 * per burst and its CQ polled, a burst of sends posted as one list of work
 * requests (inline up to the QP's limit, else gathered from the msgbuf),
 * selective signalling, and the wait for gathers in tx_flush. Set-up and
 * recovery: verbs.c.
 */
#include "verbs_internal.h"

static void wc_src_id(const struct verbs_transport *v, const struct ibv_wc *wc,
                      const uint8_t *grh, uint64_t src_id[2])
{
    union ibv_gid g;
    if (!(wc->wc_flags & IBV_WC_GRH)) {
        memset(&g, 0, sizeof(g));
        g.raw[14] = (uint8_t)(wc->slid >> 8);
        g.raw[15] = (uint8_t)wc->slid;
    } else if (v->gid_is_ipv4) {
        memset(&g, 0, sizeof(g));
        g.raw[10] = g.raw[11] = 0xff;
        memcpy(&g.raw[12], grh + 20 + 12, 4); /* IPv4 saddr */
    } else {
        memcpy(g.raw, grh + 8, 16);            /* GRH / IPv6 sgid */
    }
    verbs_src_id(g.raw, wc->src_qp, v->base.src_tag, src_id);
}

unsigned udrpc__verbs_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                               uint64_t now_tsc)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    (void)now_tsc;
    if (v->recover_pending) {
        v->recover_pending = false;
        udrpc__verbs_qp_recover(v);
    }
    if (v->n_held) { /* the last burst's buffers are free again: one post */
        for (unsigned i = 0; i < v->n_held; i++)
            v->rx_wr[v->held[i]].next = i + 1 < v->n_held ? &v->rx_wr[v->held[i + 1]] : NULL;
        struct ibv_recv_wr *bad;
        if (ibv_post_recv(v->qp, &v->rx_wr[v->held[0]], &bad))
            v->stats.post_errors++;
        for (unsigned i = 0; i < v->n_held; i++)
            v->rx_wr[v->held[i]].next = NULL;
        v->n_held = 0;
    }
    if (max > RX_BURST_MAX)
        max = RX_BURST_MAX;
    int n = ibv_poll_cq(v->recv_cq, (int)max, v->rx_wc);
    if (n <= 0)
        return 0;
    unsigned out = 0;
    bool failed = false;
    for (int i = 0; i < n; i++) {
        const struct ibv_wc *wc = &v->rx_wc[i];
        uint32_t idx = (uint32_t)wc->wr_id;
        v->held[v->n_held++] = idx;
        if (wc->status != IBV_WC_SUCCESS) {
            v->stats.rx_errors++;
            v->stats.last_rx_error_status = wc->status;
            if (wc->status == IBV_WC_LOC_LEN_ERR)
                v->stats.rx_too_long++;
            failed = true;
            continue;
        }
        const uint8_t *buf = v->rx_bufs + (size_t)idx * v->rx_buf_size;
        if (wc->byte_len < GRH_BYTES) {
            v->stats.rx_errors++;
            continue;
        }
        pkts[out].buf = buf + GRH_BYTES;
        pkts[out].len = wc->byte_len - GRH_BYTES;
        wc_src_id(v, wc, buf, pkts[out].src_id);
        out++;
    }
    /* A receive error (a datagram longer than the buffer, on most
     * devices) takes the QP to the error state, which flushes every
     * posted buffer: reset it and re-arm. What was read stays valid: the
     * ring is reposted, not overwritten, until the next burst. */
    if (__builtin_expect(failed, 0) && udrpc__verbs_qp_in_error(v)) {
        if (out == 0) {
            udrpc__verbs_qp_recover(v);
        } else {
            v->recover_pending = true;
        }
    }
    return out;
}

/* Reaps send completions; a completion retires every WR up to it. */
static void tx_reap(struct verbs_transport *v)
{
    struct ibv_wc wc[16];
    int n;
    while ((n = ibv_poll_cq(v->send_cq, 16, wc)) > 0) {
        for (int i = 0; i < n; i++) {
            if (wc[i].status != IBV_WC_SUCCESS) {
                v->stats.tx_errors++;
                if (udrpc__verbs_qp_in_error(v)) {
                    udrpc__verbs_qp_recover(v);
                    return;
                }
            }
            if (wc[i].wr_id + 1 > v->tx_done)
                v->tx_done = wc[i].wr_id + 1;
        }
    }
}

/* Reaps until every WR before index `until` is retired. A QP that went
 * to the error state may never complete them: it is checked now and then,
 * and recovery retires everything. */
static void tx_wait(struct verbs_transport *v, uint64_t until)
{
    tx_reap(v);
    for (unsigned polls = 1; v->tx_done < until; polls++) {
        tx_reap(v);
        if ((polls & 0xFFFF) == 0 && udrpc__verbs_qp_in_error(v))
            udrpc__verbs_qp_recover(v);
    }
}

unsigned udrpc__verbs_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                               uint64_t now_tsc)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    (void)now_tsc;
    if (n > TX_BURST_MAX)
        n = TX_BURST_MAX;
    /* Room in the send queue (one WR in TX_SIGNAL_EVERY is signalled, so a
     * full queue always has a completion coming). */
    if (v->tx_posted - v->tx_done + n > TX_RING - 1)
        tx_wait(v, v->tx_posted + n - (TX_RING - 1));
    const unsigned taken = n; /* dropped by fault injection or not: taken */
    if (unlikely(udrpc__tp_faults_on(&v->faults))) { /* tests */
        if (n > TX_BURST_MAX / 2)
            n = TX_BURST_MAX / 2;
        n = udrpc__tp_faults_apply(&v->faults, pkts, n, v->faulted);
        pkts = v->faulted;
    }
    unsigned k = 0;
    bool gather = false;
    for (unsigned i = 0; i < n; i++) {
        const struct tp_tx_pkt *p = &pkts[i];
        const struct verbs_peer *vp = (const struct verbs_peer *)p->peer->tx;
        struct ibv_send_wr *wr = &v->tx_wr[k];
        struct ibv_sge *sge = v->tx_sge[k];
        uint32_t len = TP_HDR_SIZE + p->data_len;
        memset(wr, 0, sizeof(*wr));
        wr->wr_id = v->tx_posted + k;
        wr->opcode = IBV_WR_SEND;
        wr->sg_list = sge;
        wr->wr.ud.ah = vp->ah;
        wr->wr.ud.remote_qpn = vp->qpn;
        wr->wr.ud.remote_qkey = vp->qkey;
        sge[0].addr = (uintptr_t)p->hdr;
        sge[0].lkey = p->lkey;
        if (p->data_len && (const uint8_t *)p->hdr + TP_HDR_SIZE == (const uint8_t *)p->data) {
            sge[0].length = len; /* header room right before the data */
            wr->num_sge = 1;
        } else {
            sge[0].length = TP_HDR_SIZE;
            wr->num_sge = 1;
            if (p->data_len) {
                sge[1].addr = (uintptr_t)p->data;
                sge[1].length = p->data_len;
                sge[1].lkey = p->lkey;
                wr->num_sge = 2;
            }
        }
        if (len <= v->max_inline) {
            wr->send_flags = IBV_SEND_INLINE; /* copied at post: no buffer held */
        } else {
            gather = true;
            v->gather_posted = wr->wr_id + 1;
        }
        if ((wr->wr_id % TX_SIGNAL_EVERY) == TX_SIGNAL_EVERY - 1)
            wr->send_flags |= IBV_SEND_SIGNALED;
        if (k)
            v->tx_wr[k - 1].next = wr;
        k++;
    }
    if (k == 0)
        return taken;
    if (gather)
        v->tx_wr[k - 1].send_flags |= IBV_SEND_SIGNALED; /* tx_flush waits for it */
    struct ibv_send_wr *bad;
    if (ibv_post_send(v->qp, &v->tx_wr[0], &bad)) {
        /* The WRs before bad were posted; the rest are lost (the protocol
         * retransmits). A QP in error is re-armed. */
        unsigned posted = (unsigned)(bad - v->tx_wr);
        v->stats.post_errors++;
        v->tx_posted += posted;
        if (udrpc__verbs_qp_in_error(v))
            udrpc__verbs_qp_recover(v);
        return taken;
    }
    v->tx_posted += k;
    v->stats.sent += k;
    return taken;
}

/* No send may still read a buffer: wait for the last gather WR. */
void udrpc__verbs_tx_flush(struct transport *tp)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    tx_wait(v, v->gather_posted);
}
