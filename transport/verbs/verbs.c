/*
 * verbs.c — the ibverbs transport: one unreliable-datagram queue pair per
 * Rpc on any RDMA device (RoCE or InfiniBand; Soft-RoCE included), through
 * rdma-core's libibverbs. This file: set-up, peers, recovery; the datapath
 * is verbs_dp.c, the device helpers shared with mlx5 verbs_dev.c.
 *
 * Set-up: the device (cfg.device, else the first with an active port),
 * port 1 .. n (the first active), a GID index (cfg.gid_index, else the
 * port's IPv4-mapped RoCE v2 GID ::ffff:a.b.c.d, else 0), a protection
 * domain, a send and a receive CQ, one UD QP taken INIT -> RTR -> RTS with
 * our Q_Key. Routing info for SM: GID (16 B), LID (2), QPN (4), Q_Key (4).
 *
 * Memory: the Rpc's msgbuf regions are registered as they are mapped (one
 * MR per 2 MiB region: the lkey lives in each buffer's descriptor); the
 * receive ring is one MR of RX_RING buffers of MTU + 40 bytes (the GRH).
 *
 * Datapath. rx_burst reposts the previous burst's buffers (one
 * ibv_post_recv for the batch), then polls the receive CQ: a packet is
 * read in place, after its 40-byte GRH. Its source (the sender's GID from
 * the GRH, and its QPN) becomes src_id, which the Rpc checks against the
 * session's peer. tx_burst builds one linked list of work requests and
 * posts it with one ibv_post_send: packets up to the QP's inline limit are
 * copied into the WQE (they hold no buffer afterwards); larger ones gather
 * the header and the data from the msgbuf (zero copy). Completions are
 * selective: every TX_SIGNAL_EVERY-th WR, and the last of a burst that
 * holds a gather, is signalled; a completion retires every WR before it
 * (the send queue is in order). tx_flush waits until no gather WR is
 * outstanding: after it, the Rpc may reuse or resend any buffer.
 *
 * Errors: a failed completion (send or receive) is counted by status; a
 * QP in the error state is reset and re-armed (RESET -> INIT -> RTR -> RTS,
 * receive ring reposted); a receive longer than its buffer completes with
 * an error and is counted. A datagram with another Q_Key never reaches us:
 * the device drops it.
 */
#include "verbs_internal.h"

int udrpc__verbs_rx_post_all(struct verbs_transport *v)
{
    for (unsigned i = 0; i < RX_RING; i++) {
        v->rx_sge[i].addr = (uintptr_t)(v->rx_bufs + (size_t)i * v->rx_buf_size);
        v->rx_sge[i].length = (uint32_t)v->rx_buf_size;
        v->rx_sge[i].lkey = v->rx_mr->lkey;
        v->rx_wr[i].wr_id = i;
        v->rx_wr[i].sg_list = &v->rx_sge[i];
        v->rx_wr[i].num_sge = 1;
        v->rx_wr[i].next = i + 1 < RX_RING ? &v->rx_wr[i + 1] : NULL;
    }
    struct ibv_recv_wr *bad;
    int ret = ibv_post_recv(v->qp, &v->rx_wr[0], &bad);
    for (unsigned i = 0; i < RX_RING; i++)
        v->rx_wr[i].next = NULL;
    v->n_held = 0;
    return ret ? -ret : 0;
}

/* RESET -> INIT -> RTR -> RTS, with Q_Key qkey on port. */
void udrpc__verbs_qp_recover(struct verbs_transport *v)
{
    v->stats.qp_resets++;
    struct ibv_wc wc[16];
    while (ibv_poll_cq(v->send_cq, 16, wc) > 0) {
    }
    while (ibv_poll_cq(v->recv_cq, 16, wc) > 0) {
    }
    v->tx_done = v->tx_posted; /* flushed: nothing references a buffer */
    if (udrpc__verbs_qp_arm(v->qp, v->port, UDRPC_QKEY) == 0)
        udrpc__verbs_rx_post_all(v);
}

bool udrpc__verbs_qp_in_error(struct verbs_transport *v)
{
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    return ibv_query_qp(v->qp, &a, IBV_QP_STATE, &ia) == 0 && a.qp_state == IBV_QPS_ERR;
}

/* The sender of a received datagram: its GID from the GRH area (for RoCE
 * v2 over IPv4, an IPv4 header in the area's last 20 bytes) and its QPN.
 * Same layout as verbs_src_id(). */
static int verbs_make_peer(struct transport *tp, const struct tp_route *r,
                           const union tp_addr *peer_sm, struct tp_peer *peer)
{
    (void)peer_sm;
    struct verbs_transport *v = (struct verbs_transport *)tp;
    if (r->kind != TP_VERBS || r->len != 26)
        return -EINVAL;
    union ibv_gid gid;
    uint16_t lid;
    uint32_t qpn, qkey;
    memcpy(gid.raw, r->bytes, 16);
    memcpy(&lid, r->bytes + 16, 2);
    memcpy(&qpn, r->bytes + 18, 4);
    memcpy(&qkey, r->bytes + 22, 4);
    struct ibv_ah *ah = udrpc__verbs_objs_ah(&v->objs, gid.raw, lid);
    if (!ah)
        return -EHOSTUNREACH;
    memset(peer, 0, sizeof(*peer));
    struct verbs_peer vp = { ah, qpn, qkey };
    memcpy(peer->tx, &vp, sizeof(vp));
    if (v->gid_is_ipv4 || memcmp(gid.raw, (uint8_t[16]){ 0 }, 16) != 0) {
        verbs_src_id(gid.raw, qpn, tp->src_tag, peer->src_id);
    } else {
        union ibv_gid lg = { .raw = { 0 } };
        lg.raw[14] = (uint8_t)(lid >> 8);
        lg.raw[15] = (uint8_t)lid;
        verbs_src_id(lg.raw, qpn, tp->src_tag, peer->src_id);
    }
    return 0;
}

static int verbs_reg_mem(struct transport *tp, void *base, size_t len, uint32_t *lkey)
{
    return udrpc__verbs_objs_reg(&((struct verbs_transport *)tp)->objs, base, len, lkey);
}

static void verbs_destroy(struct transport *tp)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    if (v->qp)
        ibv_destroy_qp(v->qp);
    if (v->send_cq)
        ibv_destroy_cq(v->send_cq);
    if (v->recv_cq)
        ibv_destroy_cq(v->recv_cq);
    udrpc__verbs_objs_fini(&v->objs);
    if (v->rx_mr)
        ibv_dereg_mr(v->rx_mr);
    free(v->rx_bufs);
    if (v->pd)
        ibv_dealloc_pd(v->pd);
    if (v->ctx)
        ibv_close_device(v->ctx);
    free(v);
}

static const struct transport_ops verbs_ops = {
    .rx_burst = udrpc__verbs_rx_burst,
    .tx_burst = udrpc__verbs_tx_burst,
    .tx_flush = udrpc__verbs_tx_flush,
    .make_peer = verbs_make_peer,
    .reg_mem = verbs_reg_mem,
    .destroy = verbs_destroy,
};

int udrpc__verbs_create(const udrpc_config_t *cfg, const struct tp_params *p,
                        struct transport **out)
{
    int ret = udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP);
    if (ret)
        return ret;
    struct verbs_transport *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    ret = udrpc__verbs_objs_init(&v->objs);
    if (ret) {
        free(v);
        return ret;
    }
    if ((ret = udrpc__verbs_open_device(cfg->device, NULL, &v->ctx, &v->port)) != 0)
        goto fail;
    struct ibv_port_attr pa;
    if (ibv_query_port(v->ctx, v->port, &pa)) {
        ret = -errno;
        goto fail;
    }
    v->lid = pa.lid;
    v->gid_index = cfg->gid_index >= 0
                       ? cfg->gid_index
                       : udrpc__verbs_find_gid(v->ctx, v->port, pa.gid_tbl_len, &p->bind);
    if (ibv_query_gid(v->ctx, v->port, v->gid_index, &v->gid)) {
        ret = -EINVAL;
        goto fail;
    }
    static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    v->gid_is_ipv4 = memcmp(v->gid.raw, v4, 12) == 0;

    unsigned mtu = udrpc__verbs_mtu_bytes(pa.active_mtu);
    if (cfg->mtu) {
        if (cfg->mtu < 64 || cfg->mtu > mtu) {
            ret = -EINVAL;
            goto fail;
        }
        mtu = cfg->mtu;
    }
    if (!(v->pd = ibv_alloc_pd(v->ctx)) ||
        !(v->send_cq = ibv_create_cq(v->ctx, TX_RING, NULL, NULL, 0)) ||
        !(v->recv_cq = ibv_create_cq(v->ctx, RX_RING, NULL, NULL, 0))) {
        ret = errno ? -errno : -ENOMEM;
        goto fail;
    }
    v->objs.pd = v->pd;
    v->objs.port = v->port;
    v->objs.gid_index = v->gid_index;
    struct ibv_qp_init_attr qa;
    memset(&qa, 0, sizeof(qa));
    qa.send_cq = v->send_cq;
    qa.recv_cq = v->recv_cq;
    qa.qp_type = IBV_QPT_UD;
    qa.sq_sig_all = 0; /* selective signalling */
    qa.cap.max_send_wr = TX_RING;
    qa.cap.max_recv_wr = RX_RING;
    qa.cap.max_send_sge = 2;
    qa.cap.max_recv_sge = 1;
    qa.cap.max_inline_data = 256;
    if (!(v->qp = ibv_create_qp(v->pd, &qa))) {
        qa.cap.max_inline_data = 0; /* a provider without inline sends */
        if (!(v->qp = ibv_create_qp(v->pd, &qa))) {
            ret = errno ? -errno : -ENOMEM;
            goto fail;
        }
    }
    v->max_inline = qa.cap.max_inline_data;
    if ((ret = udrpc__verbs_qp_arm(v->qp, v->port, UDRPC_QKEY)) != 0)
        goto fail;
    v->rx_buf_size = GRH_BYTES + mtu;
    v->rx_bufs = aligned_alloc(64, ((RX_RING * v->rx_buf_size) + 63) & ~(size_t)63);
    if (!v->rx_bufs) {
        ret = -ENOMEM;
        goto fail;
    }
    if (!(v->rx_mr = ibv_reg_mr(v->pd, v->rx_bufs, RX_RING * v->rx_buf_size,
                                IBV_ACCESS_LOCAL_WRITE))) {
        ret = errno ? -errno : -ENOMEM;
        goto fail;
    }
    if ((ret = udrpc__verbs_rx_post_all(v)) != 0)
        goto fail;
    udrpc__tp_faults_init(&v->faults, &cfg->faults, 1);

    v->base.ops = &verbs_ops;
    v->base.name = "verbs";
    v->base.kind = TP_VERBS;
    v->base.mtu = mtu;
    v->base.link_rate_bytes_per_s = 12.5e9; /* 100 Gbit/s */
    v->base.local.kind = TP_VERBS;
    v->base.local.len = 26;
    uint32_t qpn = v->qp->qp_num, qkey = UDRPC_QKEY;
    memcpy(v->base.local.bytes, v->gid.raw, 16);
    memcpy(v->base.local.bytes + 16, &v->lid, 2);
    memcpy(v->base.local.bytes + 18, &qpn, 4);
    memcpy(v->base.local.bytes + 22, &qkey, 4);
    *out = &v->base;
    return 0;
fail:
    verbs_destroy(&v->base);
    return ret;
}

void udrpc__verbs_get_stats(struct transport *tp, struct udrpc_verbs_stats *out)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    *out = v->stats;
    out->dropped = v->faults.dropped;
    out->duplicated = v->faults.duplicated;
}

int udrpc__verbs_send_raw(struct transport *tp, const struct tp_peer *peer, uint32_t len,
                          uint32_t qkey)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    if (len > v->rx_buf_size * 2)
        return -EINVAL;
    const struct verbs_peer *vp = (const struct verbs_peer *)peer->tx;
    /* from the last two receive buffers (registered), which are posted:
     * the test sends while nothing arrives there */
    struct ibv_sge sge = { .addr = (uintptr_t)(v->rx_bufs + (RX_RING - 2) * v->rx_buf_size),
                           .length = len, .lkey = v->rx_mr->lkey };
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof(wr));
    wr.wr_id = v->tx_posted;
    wr.opcode = IBV_WR_SEND;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.ud.ah = vp->ah;
    wr.wr.ud.remote_qpn = vp->qpn;
    wr.wr.ud.remote_qkey = qkey ? qkey : vp->qkey;
    int ret = ibv_post_send(v->qp, &wr, &bad);
    if (ret)
        return -ret;
    v->gather_posted = ++v->tx_posted;
    udrpc__verbs_tx_flush(tp);
    return 0;
}

void udrpc__verbs_break_qp(struct transport *tp)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
    ibv_modify_qp(v->qp, &a, IBV_QP_STATE);
}
