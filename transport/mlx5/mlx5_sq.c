/*
 * mlx5_sq.c — the mlx5 fast path's send side: WQEs written straight into
 * the send queue of the UD QP, one doorbell per burst, send CQEs reaped.
 *
 * Send (tx_burst). Per packet one WQE at the producer index sq_pi (in
 * 64-byte basic blocks, BBs): a control segment (opcode SEND, the WQE's
 * BB index, the QPN and the WQE's size in 16-byte units, "DS"), the
 * peer's datagram segment (48 bytes made once per session: address
 * vector, remote QPN, Q_Key), then either the header and payload inline
 * (up to max_inline bytes: nothing of the caller's is read later) or a
 * data segment that points at them in the registered msgbuf (zero copy;
 * two when the header does not sit right before the data). Control and
 * datagram segments fill one BB exactly; what follows may wrap to the
 * ring's start, inline data even in the middle. One doorbell per burst:
 * the doorbell record (big-endian BB counter), then the first 8 bytes of
 * the last WQE to the BlueFlame register, alternating its two halves.
 * Every SIGNAL_EVERY-th WQE, and every WQE that gathers, asks for a CQE;
 * a send CQE retires every WQE up to the end of the one it names (the
 * queue completes in order). tx_flush waits for the last gathering WQE:
 * then no send reads a caller's buffer. WQEs that cannot reach the ring's
 * end are written by a copy of post_wqe without the wrap checks.
 */
#include <string.h>

#include "mlx5_internal.h"

/* Reads the send CQ: each CQE retires the WQEs up to the end of the one it
 * names. An error CQE means the QP is in the error state: everything
 * posted is given up (the device flushes it without reading buffers). */
static void tx_reap(struct mlx5_transport *m)
{
    uint32_t ci = m->scq_ci;
    for (;;) {
        struct mlx5_cqe64 *cqe = &m->scq[ci & m->scq_mask];
        uint8_t op_own = cqe_op_own(cqe);
        if ((op_own & MLX5_CQE_OWNER_MASK) != cq_owner(ci, m->scq_shift) ||
            (op_own >> 4) == MLX5_CQE_INVALID)
            break;
        MLX5_EVENT(m, MLX5_EV_SCQ_OWNER);
        MLX5_BARRIER(m, MLX5_EV_SCQ_FROM_DEVICE, udma_from_device_barrier());
        MLX5_EVENT(m, MLX5_EV_SCQ_BODY);
        ci++;
        if (likely((op_own >> 4) == MLX5_CQE_REQ)) {
            uint32_t end = m->sq_wqe_end[be16toh(cqe->wqe_counter) & m->sq_mask];
            if ((int32_t)(end - m->sq_ci) > 0)
                m->sq_ci = end;
        } else {
            udrpc__mlx5_note_error(m, cqe, &m->stats.tx_errors);
            m->sq_ci = m->sq_pi;
        }
    }
    if (ci != m->scq_ci) {
        m->scq_ci = ci;
        dbrec_write(&m->scq_dbrec[UDRPC_MLX5_CQ_SET_CI], ci & 0xffffff);
    }
}

/* Reaps until sq_ci reaches until. A send CQ silent for TX_WAIT_POLLS
 * polls means a dead QP: it is reset at the next rx_burst. */
static void tx_wait(struct mlx5_transport *m, uint32_t until)
{
    for (uint32_t polls = 0; (int32_t)(until - m->sq_ci) > 0; polls++) {
        tx_reap(m);
        if (unlikely(polls == TX_WAIT_POLLS)) {
            m->recover_pending = true;
            m->sq_ci = m->sq_pi;
        }
    }
}

/* Copies n bytes: up to 64 with overlapping 8- and 16-byte moves (no
 * call; never a byte outside [s, s + n) read or [d, d + n) written),
 * beyond that memcpy. The inline payloads of small RPCs. */
static inline void copy_small(uint8_t *d, const uint8_t *s, uint32_t n)
{
    if (n > 32) {
        if (n > 64) {
            memcpy(d, s, n);
            return;
        }
        memcpy(d, s, 16);
        memcpy(d + 16, s + 16, 16);
        memcpy(d + n - 32, s + n - 32, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (uint32_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* Copies len bytes to dst inside the send ring, wrapping at its end. */
static inline uint8_t *sq_copy(struct mlx5_transport *m, uint8_t *dst, const void *src, uint32_t len)
{
    uint32_t room = (uint32_t)(m->sq_end - dst);
    if (likely(len < room)) {
        memcpy(dst, src, len);
        return dst + len;
    }
    memcpy(dst, src, room);
    memcpy(m->sq_buf, (const uint8_t *)src + room, len - room);
    return m->sq_buf + (len - room);
}

/* The state of one burst of posts, in locals (see mlx5_tx_burst). */
struct post {
    uint8_t *sq_buf, *sq_end;
    uint32_t sq_mask, max_inline;
    uint32_t *wqe_end;
    uint32_t pi;
    unsigned since;
    uint64_t ctrl_w0;         /* the control segment's first 8 bytes but index and DS */
    struct mlx5_wqe_ctrl_seg *ctrl; /* the last WQE written */
};

/* Writes one WQE at p->pi. may_wrap: it may reach the ring's end (the
 * checks for that are compiled out of the other copy). */
static inline __attribute__((always_inline)) void post_wqe(struct mlx5_transport *m, struct post *p,
                                                           const struct tp_tx_pkt *pk, bool may_wrap)
{
    uint32_t pi = p->pi;
    uint8_t *wqe = p->sq_buf + ((size_t)(pi & p->sq_mask) << MLX5_SEND_WQE_SHIFT);
    struct mlx5_wqe_ctrl_seg *ctrl = (struct mlx5_wqe_ctrl_seg *)wqe;
    memcpy(wqe + sizeof(*ctrl), pk->peer->tx, sizeof(struct mlx5_wqe_datagram_seg));
    uint8_t *seg = wqe + MLX5_SEND_WQE_BB; /* control + datagram fill one BB */
    if (may_wrap && seg == p->sq_end)
        seg = p->sq_buf;
    uint32_t len = TP_HDR_SIZE + pk->data_len;
    uint32_t ds; /* 16-byte units: control 1, datagram 3, then data */
    uint8_t fm_ce_se = 0;
    if (likely(len <= p->max_inline)) {
        uint32_t bc = htobe32(len | MLX5_INLINE_SEG);
        memcpy(seg, &bc, sizeof(bc));
        if (!may_wrap || likely(seg + sizeof(bc) + len <= p->sq_end)) {
            memcpy(seg + sizeof(bc), pk->hdr, TP_HDR_SIZE);
            copy_small(seg + sizeof(bc) + TP_HDR_SIZE, pk->data, pk->data_len);
        } else { /* the ring ends inside the data: the rest at its start */
            uint8_t *d = sq_copy(m, seg + sizeof(bc), pk->hdr, TP_HDR_SIZE);
            if (pk->data_len)
                sq_copy(m, d, pk->data, pk->data_len);
        }
        ds = (len + 4 * 16 + sizeof(bc) + 15) / 16;
        if (unlikely(++p->since == SIGNAL_EVERY)) {
            p->since = 0;
            fm_ce_se = MLX5_WQE_CTRL_CQ_UPDATE;
            p->wqe_end[pi & p->sq_mask] = pi + (ds + 3) / 4;
            m->stats.signalled++;
        }
    } else {
        /* seg starts a BB: its data segments cannot reach the ring's end.
         * Each gathering WQE asks for a CQE: tx_flush waits for it. */
        struct mlx5_wqe_data_seg *dseg = (struct mlx5_wqe_data_seg *)seg;
        if ((const uint8_t *)pk->hdr + TP_HDR_SIZE == (const uint8_t *)pk->data) {
            mlx5dv_set_data_seg(dseg, len, pk->lkey, (uintptr_t)pk->hdr);
            ds = 5;
        } else {
            mlx5dv_set_data_seg(dseg, TP_HDR_SIZE, pk->lkey, (uintptr_t)pk->hdr);
            mlx5dv_set_data_seg(dseg + 1, pk->data_len, pk->lkey, (uintptr_t)pk->data);
            ds = 6;
        }
        p->since = 0;
        fm_ce_se = MLX5_WQE_CTRL_CQ_UPDATE;
        m->gather_end = p->wqe_end[pi & p->sq_mask] = pi + (ds + 3) / 4;
        m->gather_pending = true;
        m->stats.signalled++;
        m->stats.gathered++;
    }
    /* The control segment, as mlx5dv_set_ctrl_seg() writes it (opmod 0,
     * WQE index, opcode; QPN, DS; signature, stream id and immediate 0;
     * the CQ-update flag), in two 8-byte stores. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* its big-endian fields as one little-endian word */
    uint64_t w0 = p->ctrl_w0 | (uint64_t)ds << 56 | (uint64_t)htobe16((uint16_t)pi) << 8;
    uint64_t w1 = (uint64_t)fm_ce_se << 24; /* byte 11 of the segment */
    memcpy(ctrl, &w0, 8);
    memcpy((uint8_t *)ctrl + 8, &w1, 8);
#else
    mlx5dv_set_ctrl_seg(ctrl, (uint16_t)pi, MLX5_OPCODE_SEND, 0, m->qpn, fm_ce_se, (uint8_t)ds, 0, 0);
    ctrl->dci_stream_channel_id = 0;
#endif
    p->pi = pi + (ds + 3) / 4;
    p->ctrl = ctrl;
}

unsigned udrpc__mlx5_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                              uint64_t now_tsc)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    (void)now_tsc;
    if (n > TX_BURST_MAX)
        n = TX_BURST_MAX;
    const unsigned taken = n; /* dropped by fault injection or not: taken */
    if (unlikely(m->recover_pending)) {
        m->stats.down_drops += n;
        return taken;
    }
    uint32_t need = n * m->max_wqe_bbs;
    if (unlikely(m->sq_pi - m->sq_ci + need > m->sq_mask + 1)) {
        tx_reap(m);
        if (m->sq_pi - m->sq_ci + need > m->sq_mask + 1)
            tx_wait(m, m->sq_pi + need - (m->sq_mask + 1));
        if (m->recover_pending) {
            m->stats.down_drops += n;
            return taken;
        }
    }
    struct tp_tx_pkt faulted[TX_BURST_MAX];
    if (unlikely(udrpc__tp_faults_on(&m->faults))) { /* tests, off the common path */
        if (n > TX_BURST_MAX / 2)
            n = TX_BURST_MAX / 2;
        n = udrpc__tp_faults_apply(&m->faults, pkts, n, faulted);
        pkts = faulted;
    }
    /* Locals: the stores into the ring are byte stores, which the compiler
     * must assume may alias any field of *m. */
    struct post p = {
        .sq_buf = m->sq_buf, .sq_end = m->sq_end, .sq_mask = m->sq_mask,
        .max_inline = m->max_inline, .wqe_end = m->sq_wqe_end, .pi = m->sq_pi,
        .since = m->since_signal,
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        .ctrl_w0 = (uint64_t)htobe32(m->qpn << 8) << 32 | (uint64_t)MLX5_OPCODE_SEND << 24,
#endif
    };
    const struct tp_tx_pkt *pk = pkts, *end = pkts + n;
    while (pk < end) {
        /* WQEs that cannot reach the ring's end, even at the largest size,
         * need no wrap checks: post them in one stretch. */
        unsigned fit = (p.sq_mask + 1 - (p.pi & p.sq_mask)) / m->max_wqe_bbs;
        if (unlikely(fit == 0)) {
            post_wqe(m, &p, pk++, true);
            continue;
        }
        const struct tp_tx_pkt *stop = (unsigned)(end - pk) > fit ? pk + fit : end;
        for (; pk < stop; pk++)
            post_wqe(m, &p, pk, false);
    }
    struct mlx5_wqe_ctrl_seg *ctrl = p.ctrl;
    uint32_t pi = p.pi;
    m->since_signal = p.since;
    if (n == 0)
        return taken;
    m->sq_pi = pi;
    UDRPC_ASSERT(m->sq_pi - m->sq_ci <= m->sq_mask + 1); /* never past the ring */
    m->stats.sent += n;
    m->stats.doorbells++;
    /* The doorbell, as rdma-core's post_send_db: WQEs before the record,
     * the record before the BlueFlame store, which is flushed at once. */
    MLX5_EVENT(m, MLX5_EV_SQ_WQES);
    MLX5_BARRIER(m, MLX5_EV_SQ_TO_DEVICE, udma_to_device_barrier());
    dbrec_write(&m->qp_dbrec[MLX5_SND_DBR], pi & 0xffff);
    MLX5_EVENT(m, MLX5_EV_SQ_DBR);
    MLX5_BARRIER(m, MLX5_EV_SQ_WC_START, mmio_wc_start());
    uint64_t first8;
    memcpy(&first8, ctrl, sizeof(first8)); /* already big-endian */
    *(volatile uint64_t *)(m->bf_reg + m->bf_offset) = first8;
    MLX5_EVENT(m, MLX5_EV_SQ_BF);
    MLX5_BARRIER(m, MLX5_EV_SQ_WC_FLUSH, mmio_flush_writes());
    m->bf_offset ^= m->bf_size;
    if (m->nic_doorbell)
        m->nic_doorbell(m->nic);
    return taken;
}

/* No WQE may still read a caller's buffer: wait for the last gathering one
 * (it asked for a CQE). */
void udrpc__mlx5_tx_flush(struct transport *tp)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    if (m->gather_pending) {
        tx_wait(m, m->gather_end);
        m->gather_pending = false;
    }
}
