/*
 * mlx5.c — the mlx5 fast path: a UD QP of a ConnectX driven directly,
 * WQEs and CQEs in the structs and constants of rdma-core's
 * infiniband/mlx5dv.h, with no libibverbs call on the datapath. This file
 * is the control side (set-up, peers, memory, recovery); mlx5_sq.c sends,
 * mlx5_cq.c receives. The device below (mlx5_hw.c, or the NIC model of
 * test/nicmodel/) is only called to set up, to register memory, to make
 * address vectors and to reset a failed QP.
 *
 * Errors. An error CQE (requester or responder, with its syndrome) is
 * counted and takes the QP to the error state on the device; the
 * transport then stops sending (packets are dropped and counted: the
 * protocol resends), and at the next rx_burst, when no buffer is handed
 * out any more, drains both CQs, resets the QP through the device and
 * re-posts the receive queue. Nothing aborts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bits.h"
#include "mlx5_internal.h"

static const struct mlx5_nic_ops *g_nic_override;

void udrpc__mlx5_use_nic(const struct mlx5_nic_ops *ops)
{
    g_nic_override = ops;
}

static unsigned log2u(uint32_t x)
{
    return (unsigned)__builtin_ctz(x);
}

/* An error CQE: the QP is in the error state. Flushed WQEs (those behind
 * the failure) are counted apart from the failure itself. */
void udrpc__mlx5_note_error(struct mlx5_transport *m, const struct mlx5_cqe64 *cqe, uint64_t *count)
{
    const struct mlx5_err_cqe *e = (const struct mlx5_err_cqe *)cqe;
    if (e->syndrome == MLX5_CQE_SYNDROME_WR_FLUSH_ERR) {
        m->stats.flushed++;
    } else {
        (*count)++;
        m->stats.last_syndrome = e->syndrome;
        m->stats.last_vendor_syndrome = e->vendor_err_synd;
    }
    m->recover_pending = true;
}

/* Writes every RQ WQE (buffer i for WQE i) and posts them all. */
void udrpc__mlx5_rq_post_all(struct mlx5_transport *m)
{
    for (uint32_t i = 0; i <= m->rq_mask; i++) {
        uint8_t *w = m->mem.rq_buf + (size_t)i * m->mem.rq_stride;
        mlx5dv_set_data_seg((struct mlx5_wqe_data_seg *)w, m->rx_buf_size, m->rx_lkey,
                            (uintptr_t)(m->rx_bufs + (size_t)i * m->rx_buf_size));
        if (m->mem.rq_stride > sizeof(struct mlx5_wqe_data_seg)) /* end of the scatter list */
            mlx5dv_set_data_seg((struct mlx5_wqe_data_seg *)w + 1, 0, MLX5_INVALID_LKEY, 0);
    }
    m->rq_pi = m->rq_mask + 1;
    m->rx_held = 0;
    MLX5_BARRIER(m, MLX5_EV_RQ_TO_DEVICE, udma_to_device_barrier());
    dbrec_write(&m->qp_dbrec[MLX5_RCV_DBR], m->rq_pi & 0xffff);
    MLX5_EVENT(m, MLX5_EV_RQ_DBR);
}

/* The QP failed: drain both CQs, reset it, start the queues over. */
void udrpc__mlx5_qp_recover(struct mlx5_transport *m)
{
    m->recover_pending = false;
    m->stats.qp_resets++;
    for (int pass = 0; pass < 2; pass++) {
        struct mlx5_cqe64 *cq = pass ? m->rcq : m->scq;
        uint32_t *ci = pass ? &m->rcq_ci : &m->scq_ci;
        uint32_t mask = pass ? m->rcq_mask : m->scq_mask, shift = pass ? m->rcq_shift : m->scq_shift;
        for (;;) {
            uint8_t op_own = cqe_op_own(&cq[*ci & mask]);
            if ((op_own & 1) != cq_owner(*ci, shift) || (op_own >> 4) == MLX5_CQE_INVALID)
                break;
            (*ci)++;
        }
    }
    if (m->nic_ops->reset(m->nic) != 0) {
        m->recover_pending = true; /* tried again at the next rx_burst */
        return;
    }
    dbrec_write(&m->scq_dbrec[UDRPC_MLX5_CQ_SET_CI], m->scq_ci & 0xffffff);
    dbrec_write(&m->rcq_dbrec[UDRPC_MLX5_CQ_SET_CI], m->rcq_ci & 0xffffff);
    m->sq_pi = m->sq_ci = 0;
    m->since_signal = 0;
    m->gather_pending = false;
    m->bf_offset = 0;
    udrpc__mlx5_rq_post_all(m);
}

/* ------------------------------------------------------------ peers ---- */

/* The 8 bytes of a sender's address that rx_burst reads from the GRH
 * area, as this peer's would be. RoCE v2 over IPv4: the IPv4 header's
 * source and destination (us); otherwise the source GID's low half. */
static void peer_src(const struct mlx5_transport *m, const uint8_t gid[16], uint32_t qpn,
                     uint64_t src_id[2])
{
    uint8_t b[8];
    if (m->mem.gid_is_ipv4) {
        memcpy(b, gid + 12, 4);
        memcpy(b + 4, m->mem.gid + 12, 4);
    } else {
        memcpy(b, gid + 8, 8);
    }
    memcpy(&src_id[0], b, 8);
    src_id[1] = qpn | m->base.src_tag;
}

static int mlx5_make_peer(struct transport *tp, const struct tp_route *r,
                          const union tp_addr *peer_sm, struct tp_peer *peer)
{
    (void)peer_sm;
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    if (r->kind != TP_MLX5 || r->len != 26)
        return -EINVAL;
    uint8_t gid[16];
    uint16_t lid;
    uint32_t qpn, qkey;
    memcpy(gid, r->bytes, 16);
    memcpy(&lid, r->bytes + 16, 2);
    memcpy(&qpn, r->bytes + 18, 4);
    memcpy(&qkey, r->bytes + 22, 4);
    if (qpn > 0xffffff)
        return -EINVAL;
    struct mlx5_wqe_datagram_seg dg;
    memset(&dg, 0, sizeof(dg));
    int ret = m->nic_ops->make_av(m->nic, gid, lid, &dg.av);
    if (ret)
        return ret;
    dg.av.key.qkey.qkey = htobe32(qkey);
    dg.av.dqp_dct = htobe32(qpn | MLX5_EXTENDED_UD_AV);
    memset(peer, 0, sizeof(*peer));
    _Static_assert(sizeof(dg) == sizeof(peer->tx), "the datagram segment is the peer");
    memcpy(peer->tx, &dg, sizeof(dg));
    peer_src(m, gid, qpn, peer->src_id);
    return 0;
}

static int mlx5_reg_mem(struct transport *tp, void *base, size_t len, uint32_t *lkey)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    return m->nic_ops->reg_mem(m->nic, base, len, lkey);
}

static void mlx5_destroy(struct transport *tp)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    if (m->nic)
        m->nic_ops->close(m->nic);
    free(m->rx_bufs);
    free(m->sq_wqe_end);
    free(m);
}

static const struct transport_ops mlx5_ops = {
    .rx_burst = udrpc__mlx5_rx_burst,
    .tx_burst = udrpc__mlx5_tx_burst,
    .tx_flush = udrpc__mlx5_tx_flush,
    .make_peer = mlx5_make_peer,
    .reg_mem = mlx5_reg_mem,
    .destroy = mlx5_destroy,
};

int udrpc__mlx5_create(const udrpc_config_t *cfg, const struct tp_params *p,
                       struct transport **out)
{
    (void)p;
    const struct mlx5_nic_ops *ops = g_nic_override ? g_nic_override : &udrpc__mlx5_hw_ops;
    if (!ops->doorbell && udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP) != 0)
        return -ENOTSUP; /* hardware drops and duplicates; the model does all */
    struct mlx5_transport *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->nic_ops = ops;
    int ret = ops->open(cfg, &p->bind, UDRPC_MLX5_QKEY, SQ_WQES, RQ_WQES, WANT_INLINE, &m->mem, &m->nic);
    if (ret) {
        m->nic = NULL;
        goto fail;
    }
    const struct mlx5_qp_mem *q = &m->mem;
    /* The layout this datapath handles: anything else is refused, never
     * driven wrong. */
    uint32_t max_wqe_bbs = (4 * 16 + 4 + q->max_inline + 63) / 64;
    if (max_wqe_bbs < 2)
        max_wqe_bbs = 2;
    if (!udrpc__is_pow2(q->sq_bbs) || !udrpc__is_pow2(q->rq_wqes) || !udrpc__is_pow2(q->scq_cqes) || !udrpc__is_pow2(q->rcq_cqes) ||
        q->rq_stride < 16 || !udrpc__is_pow2(q->rq_stride) || q->scq_cqes < q->sq_bbs / 2 ||
        q->sq_bbs < TX_BURST_MAX * max_wqe_bbs + SIGNAL_EVERY * max_wqe_bbs ||
        q->sq_bbs > 65536 || q->rq_wqes > q->rcq_cqes || q->rq_wqes > 32768 ||
        q->mtu < 256 || q->qpn > 0xffffff) {
        ret = -ENOTSUP;
        goto fail;
    }
    m->sq_buf = q->sq_buf;
    m->sq_end = q->sq_buf + ((size_t)q->sq_bbs << MLX5_SEND_WQE_SHIFT);
    m->sq_mask = q->sq_bbs - 1;
    m->qpn = q->qpn;
    m->max_inline = q->max_inline;
    m->max_wqe_bbs = max_wqe_bbs;
    m->qp_dbrec = q->qp_dbrec;
    m->bf_reg = q->bf_reg;
    m->bf_size = q->bf_size;
    m->scq = q->scq;
    m->scq_mask = q->scq_cqes - 1;
    m->scq_shift = log2u(q->scq_cqes);
    m->scq_dbrec = q->scq_dbrec;
    m->rcq = q->rcq;
    m->rcq_mask = q->rcq_cqes - 1;
    m->rcq_shift = log2u(q->rcq_cqes);
    m->rcq_dbrec = q->rcq_dbrec;
    m->rq_mask = q->rq_wqes - 1;
    m->src_off = q->gid_is_ipv4 ? 20 + 12 : 8 + 8;
    m->nic_doorbell = ops->doorbell;
    m->nic_step = ops->step;
    m->nic_event = ops->event;
    if (!(m->sq_wqe_end = calloc(q->sq_bbs, sizeof(*m->sq_wqe_end)))) {
        ret = -ENOMEM;
        goto fail;
    }
    /* Receive buffers hold the port's MTU whatever we send: a peer with a
     * larger MTU setting cannot overrun them. */
    m->rx_buf_size = (UDRPC_MLX5_GRH_BYTES + q->mtu + 63) & ~63u;
    size_t rx_bytes = (size_t)q->rq_wqes * m->rx_buf_size;
    if (!(m->rx_bufs = aligned_alloc(4096, (rx_bytes + 4095) & ~(size_t)4095))) {
        ret = -ENOMEM;
        goto fail;
    }
    memset(m->rx_bufs, 0, rx_bytes);
    if ((ret = ops->reg_mem(m->nic, m->rx_bufs, rx_bytes, &m->rx_lkey)) != 0)
        goto fail;
    udrpc__mlx5_rq_post_all(m);
    if (!ops->doorbell) /* on the model, the model injects every kind itself */
        udrpc__tp_faults_init(&m->faults, &cfg->faults, 2);

    unsigned mtu = q->mtu;
    if (cfg->mtu) {
        if (cfg->mtu < 64 || cfg->mtu > q->mtu) {
            ret = -EINVAL;
            goto fail;
        }
        mtu = cfg->mtu;
    }
    m->base.ops = &mlx5_ops;
    m->base.name = "mlx5";
    m->base.kind = TP_MLX5;
    m->base.mtu = mtu;
    m->base.link_rate_bytes_per_s = 12.5e9; /* 100 Gbit/s */
    m->base.local.kind = TP_MLX5;
    m->base.local.len = 26;
    uint32_t qpn = q->qpn, qkey = UDRPC_MLX5_QKEY;
    memcpy(m->base.local.bytes, q->gid, 16);
    memcpy(m->base.local.bytes + 16, &q->lid, 2);
    memcpy(m->base.local.bytes + 18, &qpn, 4);
    memcpy(m->base.local.bytes + 22, &qkey, 4);
    *out = &m->base;
    return 0;
fail:
    mlx5_destroy(&m->base);
    return ret;
}

void udrpc__mlx5_get_stats(struct transport *tp, struct udrpc_mlx5_stats *out)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    *out = m->stats;
    out->dropped = m->faults.dropped;
    out->duplicated = m->faults.duplicated;
}

void udrpc__mlx5_skip_barriers(struct transport *tp, uint32_t mask)
{
    ((struct mlx5_transport *)tp)->skip_events = mask;
}

void *udrpc__mlx5_nic(struct transport *tp)
{
    return ((struct mlx5_transport *)tp)->nic;
}
