/*
 * mlx5_cq.c — the mlx5 fast path's receive side: the receive queue
 * re-posted in batches and the receive CQ read directly.
 *
 * Receive (rx_burst). RQ WQE i always points at receive buffer i (GRH
 * area, then MTU bytes), so re-posting is only moving the producer index:
 * the buffers the last burst handed out are re-posted together, with one
 * doorbell-record write. The receive CQ is read by one monomorphic loop
 * over runs of ready CQEs: a single compare of each CQE's op_own byte
 * against "RESP_SEND, our owner bit, nothing inline, no event" finds the
 * run; one udma_from_device_barrier() for the run; then each CQE's byte
 * count, WQE counter (which buffer) and source QPN, and the source
 * address from the GRH area. Everything else (not yet written, error,
 * immediate, data scattered into the CQE) takes the slow path.
 */
#include <string.h>

#include "mlx5_internal.h"

/* A CQE of ours that is not a plain receive: an error, immediate data,
 * data scattered into the CQE. Returns true if it holds a packet for the
 * caller, now in *pkt. */
static bool rx_slow(struct mlx5_transport *m, const struct mlx5_cqe64 *cqe, uint8_t op_own,
                    struct tp_rx_pkt *pkt)
{
    MLX5_EVENT(m, MLX5_EV_RCQ_OWNER);
    MLX5_BARRIER(m, MLX5_EV_RCQ_FROM_DEVICE, udma_from_device_barrier());
    MLX5_EVENT(m, MLX5_EV_RCQ_BODY);
    uint8_t op = op_own >> 4;
    if (op != MLX5_CQE_RESP_SEND && op != MLX5_CQE_RESP_SEND_IMM && op != MLX5_CQE_RESP_SEND_INV) {
        /* RESP_ERR, or what a receive CQ should not hold */
        udrpc__mlx5_note_error(m, cqe, &m->stats.rx_errors);
        return false;
    }
    uint32_t idx = be16toh(cqe->wqe_counter) & m->rq_mask;
    uint8_t *buf = m->rx_bufs + (size_t)idx * m->rx_buf_size;
    uint32_t len = be32toh(cqe->byte_cnt);
    if (len < UDRPC_MLX5_GRH_BYTES || len > m->rx_buf_size) {
        m->stats.rx_short++;
        return false;
    }
    /* Scatter to CQE: the device put the first 32 bytes into the CQE. We
     * ask for it off; copy, should it happen. (Its 64-byte form needs
     * 128-byte CQEs, which this transport refuses at set-up.) */
    if (op_own & MLX5_INLINE_SCATTER_64) {
        m->stats.rx_errors++;
        return false;
    }
    if (op_own & MLX5_INLINE_SCATTER_32)
        memcpy(buf, cqe, len < 32 ? len : 32);
    pkt->buf = buf + UDRPC_MLX5_GRH_BYTES;
    pkt->len = len - UDRPC_MLX5_GRH_BYTES;
    memcpy(&pkt->src_id[0], buf + m->src_off, 8);
    pkt->src_id[1] = (be32toh(cqe->flags_rqpn) & 0xffffff) | m->base.src_tag;
    return true;
}

unsigned udrpc__mlx5_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                              uint64_t now_tsc)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    (void)now_tsc;
    if (unlikely(m->recover_pending)) {
        udrpc__mlx5_qp_recover(m);
    } else if (m->rx_held) { /* the last burst's buffers are free: re-post */
        m->rq_pi += m->rx_held;
        m->rx_held = 0;
        MLX5_BARRIER(m, MLX5_EV_RQ_TO_DEVICE, udma_to_device_barrier());
        dbrec_write(&m->qp_dbrec[MLX5_RCV_DBR], m->rq_pi & 0xffff);
        MLX5_EVENT(m, MLX5_EV_RQ_DBR);
    }
    if (m->nic_step)
        m->nic_step(m->nic);
    /* The CQE we want next is a plain receive with our owner bit: one
     * byte to compare, which flips each lap of the ring. */
    uint32_t ci = m->rcq_ci;
    uint8_t want = (uint8_t)(MLX5_CQE_RESP_SEND << 4 | cq_owner(ci, m->rcq_shift));
    const struct mlx5_cqe64 *const rcq = m->rcq, *const rcq_end = rcq + m->rcq_mask + 1;
    const struct mlx5_cqe64 *cqe = &rcq[ci & m->rcq_mask];
    const uint8_t *const rx_bufs = m->rx_bufs;
    const uint32_t rq_mask = m->rq_mask;
    const size_t buf_size = m->rx_buf_size, src_off = m->src_off;
    const uint64_t src_tag = m->base.src_tag;
    struct tp_rx_pkt *pk = pkts, *pk_end = pkts + max;
    while (pk < pk_end) {
        /* A run of plain receives, not past the ring's end: their owner
         * bytes, one barrier, then their bodies. */
        unsigned room = (unsigned)(pk_end - pk), to_end = (unsigned)(rcq_end - cqe);
        unsigned lim = room < to_end ? room : to_end, run = 0;
        while (run < lim && cqe_op_own(cqe + run) == want)
            run++;
        if (likely(run)) {
            MLX5_EVENT(m, MLX5_EV_RCQ_OWNER);
            MLX5_BARRIER(m, MLX5_EV_RCQ_FROM_DEVICE, udma_from_device_barrier());
            MLX5_EVENT(m, MLX5_EV_RCQ_BODY);
            ci += run;
            for (const struct mlx5_cqe64 *end = cqe + run; cqe < end; cqe++) {
                uint32_t len = be32toh(cqe->byte_cnt);
                const uint8_t *buf = rx_bufs + (be16toh(cqe->wqe_counter) & rq_mask) * buf_size;
                if (likely(len >= UDRPC_MLX5_GRH_BYTES)) { /* never shorter on a UD QP */
                    uint64_t src;
                    memcpy(&src, buf + src_off, 8);
                    pk->buf = buf + UDRPC_MLX5_GRH_BYTES;
                    pk->len = len - UDRPC_MLX5_GRH_BYTES;
                    pk->src_id[0] = src;
                    pk->src_id[1] = (be32toh(cqe->flags_rqpn) & 0xffffff) | src_tag;
                    pk++;
                } else {
                    m->stats.rx_short++;
                }
            }
            if (unlikely(cqe == rcq_end)) { /* a lap: the owner bit we want flips */
                cqe = rcq;
                want ^= MLX5_CQE_OWNER_MASK;
            }
            if (run == lim)
                continue; /* the burst, or the ring, ended: more may follow */
        }
        /* The next CQE is not a plain receive of ours: not written yet
         * (the common end of a burst, decided here), or the slow path. */
        if (pk == pk_end)
            break;
        uint8_t op_own = cqe_op_own(cqe);
        if ((op_own & MLX5_CQE_OWNER_MASK) != (want & MLX5_CQE_OWNER_MASK) ||
            (op_own >> 4) == MLX5_CQE_INVALID)
            break;
        pk += rx_slow(m, cqe, op_own, pk);
        ci++;
        if (unlikely(++cqe == rcq_end)) {
            cqe = rcq;
            want ^= MLX5_CQE_OWNER_MASK;
        }
    }
    unsigned out = (unsigned)(pk - pkts);
    uint32_t used = ci - m->rcq_ci; /* CQEs read = RQ WQEs consumed, in order */
    if (used) {
        m->rx_held += used;
        m->rcq_ci = ci;
        dbrec_write(&m->rcq_dbrec[UDRPC_MLX5_CQ_SET_CI], ci & 0xffffff);
    }
    return out;
}
