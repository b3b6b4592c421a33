/*
 * mlx5.c — the mlx5 fast path's datapath: WQEs written straight into the
 * send queue of a UD QP, CQEs read straight from its completion queues,
 * in the structs and constants of rdma-core's infiniband/mlx5dv.h. No
 * libibverbs call on the datapath; the device below (mlx5_hw.c, or the
 * NIC model of test/nicmodel/) is only called to set up, to register
 * memory, to make address vectors and to reset a failed QP.
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
 * Every SIGNAL_EVERY-th WQE, and the last one of a burst that gathers,
 * asks for a CQE; a send CQE retires every WQE up to the end of the one
 * it names (the queue completes in order). tx_flush waits for the last
 * gathering WQE: then no send reads a caller's buffer.
 *
 * Receive (rx_burst). RQ WQE i always points at receive buffer i (GRH
 * area, then MTU bytes), so re-posting is only moving the producer index:
 * the buffers the last burst handed out are re-posted together, with one
 * doorbell-record write. The receive CQ is read by one monomorphic loop:
 * a single compare of the CQE's op_own byte against "RESP_SEND, our owner
 * bit, nothing inline, no event" admits the common case; the byte count,
 * the WQE counter (which buffer) and the source QPN come from the CQE, the
 * source address from the GRH area. Everything else (not yet written,
 * error, immediate, data scattered into the CQE) takes the slow path.
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

#include "runtime/wire.h"
#include "transport/mlx5/mlx5.h"

#define SQ_WQES 512           /* sends the QP must hold */
#define RQ_WQES 512           /* receive buffers posted */
#define WANT_INLINE 256       /* inline bytes asked of the device */
#define TX_BURST_MAX 64
#define SIGNAL_EVERY 32       /* one WQE in 32 asks for a CQE */
#define TX_WAIT_POLLS (1u << 26) /* a send CQ silent this long: the QP is dead */

/* Ordering points with the device (rdma-core's util/udma_barrier.h makes
 * the same choices per architecture, with their reasons):
 *  - to_device: our writes to WQEs and to the doorbell record reach the
 *    device in program order. x86 does not reorder stores with stores to
 *    write-back memory, so only the compiler must be held.
 *  - from_device: the CQE's body is read after its owner byte. x86 does
 *    not reorder loads with loads: again only the compiler.
 *  - wc_flush: the write-combining buffer holding the BlueFlame write is
 *    flushed to the device now (sfence), not whenever the CPU drains it. */
#if defined(__x86_64__) || defined(__i386__)
#define to_device_barrier() __asm__ volatile("" ::: "memory")
#define from_device_barrier() __asm__ volatile("" ::: "memory")
#define wc_flush_barrier() __asm__ volatile("sfence" ::: "memory")
#elif defined(__aarch64__)
#define to_device_barrier() __asm__ volatile("dmb oshst" ::: "memory")
#define from_device_barrier() __asm__ volatile("dmb oshld" ::: "memory")
#define wc_flush_barrier() __asm__ volatile("dsb st" ::: "memory")
#else
#define to_device_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define from_device_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define wc_flush_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* A CQE's owner byte is read before the rest of it, and a doorbell record
 * written after what it announces: an acquire load and a release store
 * (plain moves on x86), with the barriers above where the device needs
 * more. ThreadSanitizer sees these orderings against the NIC model. */
static inline uint8_t cqe_op_own(const struct mlx5_cqe64 *cqe)
{
    return __atomic_load_n(&cqe->op_own, __ATOMIC_ACQUIRE);
}

static inline void dbrec_write(__be32 *rec, uint32_t value)
{
    __atomic_store_n(rec, htobe32(value), __ATOMIC_RELEASE);
}

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct mlx5_transport {
    struct transport base;
    /* send queue: sq_pi and sq_ci count BBs, free running */
    uint8_t *sq_buf, *sq_end;
    uint32_t sq_mask;
    uint32_t sq_pi, sq_ci;
    uint32_t *sq_wqe_end;     /* by a signalled WQE's first BB: sq_pi after it */
    uint32_t qpn;
    uint32_t max_inline;
    uint32_t max_wqe_bbs;     /* the largest WQE we write */
    unsigned since_signal;
    uint32_t gather_end;      /* sq_pi after the last gathering WQE ... */
    bool gather_pending;      /* ... which may still read a caller's buffer */
    __be32 *qp_dbrec;
    uint8_t *bf_reg;
    uint32_t bf_size, bf_offset;
    /* send CQ */
    struct mlx5_cqe64 *scq;
    uint32_t scq_mask, scq_shift, scq_ci;
    __be32 *scq_dbrec;
    /* receive CQ and queue */
    struct mlx5_cqe64 *rcq;
    uint32_t rcq_mask, rcq_shift, rcq_ci;
    __be32 *rcq_dbrec;
    uint32_t rq_mask, rq_pi;
    uint32_t rx_held;         /* RQ WQEs the last burst consumed */
    uint8_t *rx_bufs;
    uint32_t rx_buf_size;
    uint32_t rx_lkey;
    uint32_t src_off;         /* source address in the GRH area: 8 bytes */
    bool recover_pending;
    /* the device */
    const struct mlx5_nic_ops *nic_ops;
    void *nic;
    void (*nic_doorbell)(void *nic); /* NULL on hardware */
    void (*nic_step)(void *nic);
    struct mlx5_qp_mem mem;
    uint32_t drop_ppm;        /* fault injection on hardware (tests) */
    uint64_t rng;
    struct udrpc_mlx5_stats stats;
};

static const struct mlx5_nic_ops *g_nic_override;

void udrpc__mlx5_use_nic(const struct mlx5_nic_ops *ops)
{
    g_nic_override = ops;
}

static unsigned log2u(uint32_t x)
{
    return (unsigned)__builtin_ctz(x);
}

/* ------------------------------------------------------------- send ---- */

/* The sw owner bit of CQE index ci in a ring of 2^shift: it flips each lap. */
static inline uint8_t cq_owner(uint32_t ci, uint32_t shift)
{
    return (uint8_t)((ci >> shift) & 1);
}

/* An error CQE: the QP is in the error state. Flushed WQEs (those behind
 * the failure) are counted apart from the failure itself. */
static void note_error(struct mlx5_transport *m, const struct mlx5_cqe64 *cqe, uint64_t *count)
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
        from_device_barrier();
        ci++;
        if (likely((op_own >> 4) == MLX5_CQE_REQ)) {
            uint32_t end = m->sq_wqe_end[be16toh(cqe->wqe_counter) & m->sq_mask];
            if ((int32_t)(end - m->sq_ci) > 0)
                m->sq_ci = end;
        } else {
            note_error(m, cqe, &m->stats.tx_errors);
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

/* Fault injection on hardware (tests): drop this packet? */
static bool tx_drop(struct mlx5_transport *m)
{
    m->rng ^= m->rng << 13, m->rng ^= m->rng >> 7, m->rng ^= m->rng << 17;
    if ((uint32_t)(m->rng % 1000000u) >= m->drop_ppm)
        return false;
    m->stats.dropped++;
    return true;
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
    uint32_t len = UDRPC_HDR_SIZE + pk->data_len;
    uint32_t ds; /* 16-byte units: control 1, datagram 3, then data */
    uint8_t fm_ce_se = 0;
    if (likely(len <= p->max_inline)) {
        uint32_t bc = htobe32(len | MLX5_INLINE_SEG);
        memcpy(seg, &bc, sizeof(bc));
        if (!may_wrap || likely(seg + sizeof(bc) + len <= p->sq_end)) {
            memcpy(seg + sizeof(bc), pk->hdr, UDRPC_HDR_SIZE);
            copy_small(seg + sizeof(bc) + UDRPC_HDR_SIZE, pk->data, pk->data_len);
        } else { /* the ring ends inside the data: the rest at its start */
            uint8_t *d = sq_copy(m, seg + sizeof(bc), pk->hdr, UDRPC_HDR_SIZE);
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
        if ((const uint8_t *)pk->hdr + UDRPC_HDR_SIZE == (const uint8_t *)pk->data) {
            mlx5dv_set_data_seg(dseg, len, pk->lkey, (uintptr_t)pk->hdr);
            ds = 5;
        } else {
            mlx5dv_set_data_seg(dseg, UDRPC_HDR_SIZE, pk->lkey, (uintptr_t)pk->hdr);
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

static unsigned mlx5_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
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
    struct tp_tx_pkt kept[TX_BURST_MAX];
    if (unlikely(m->drop_ppm)) { /* fault injection (tests), off the common path */
        unsigned j = 0;
        for (unsigned i = 0; i < n; i++)
            if (!tx_drop(m))
                kept[j++] = pkts[i];
        pkts = kept;
        n = j;
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
    m->stats.sent += n;
    m->stats.doorbells++;
    /* The doorbell: WQEs before the record, the record before the register. */
    to_device_barrier();
    dbrec_write(&m->qp_dbrec[MLX5_SND_DBR], pi & 0xffff);
    to_device_barrier();
    uint64_t first8;
    memcpy(&first8, ctrl, sizeof(first8)); /* already big-endian */
    *(volatile uint64_t *)(m->bf_reg + m->bf_offset) = first8;
    wc_flush_barrier();
    m->bf_offset ^= m->bf_size;
    if (m->nic_doorbell)
        m->nic_doorbell(m->nic);
    return taken;
}

/* No WQE may still read a caller's buffer: wait for the last gathering one
 * (it asked for a CQE). */
static void mlx5_tx_flush(struct transport *tp)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    if (m->gather_pending) {
        tx_wait(m, m->gather_end);
        m->gather_pending = false;
    }
}

/* ---------------------------------------------------------- receive ---- */

/* Writes every RQ WQE (buffer i for WQE i) and posts them all. */
static void rq_post_all(struct mlx5_transport *m)
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
    to_device_barrier();
    dbrec_write(&m->qp_dbrec[MLX5_RCV_DBR], m->rq_pi & 0xffff);
}

/* The QP failed: drain both CQs, reset it, start the queues over. */
static void qp_recover(struct mlx5_transport *m)
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
    rq_post_all(m);
}

/* Everything but a plain receive: not written yet (returns false), an
 * error, immediate data, data scattered into the CQE. Returns true if the
 * CQE was consumed; *pkt_ok if it holds a packet for the caller. */
static bool rx_slow(struct mlx5_transport *m, struct mlx5_cqe64 *cqe, uint8_t op_own,
                    uint32_t ci, struct tp_rx_pkt *pkt, bool *pkt_ok)
{
    *pkt_ok = false;
    if ((op_own & MLX5_CQE_OWNER_MASK) != cq_owner(ci, m->rcq_shift) ||
        (op_own >> 4) == MLX5_CQE_INVALID)
        return false;
    from_device_barrier();
    uint8_t op = op_own >> 4;
    if (op != MLX5_CQE_RESP_SEND && op != MLX5_CQE_RESP_SEND_IMM && op != MLX5_CQE_RESP_SEND_INV) {
        note_error(m, cqe, &m->stats.rx_errors); /* RESP_ERR, or what a receive CQ should not hold */
        return true;
    }
    uint32_t idx = be16toh(cqe->wqe_counter) & m->rq_mask;
    uint8_t *buf = m->rx_bufs + (size_t)idx * m->rx_buf_size;
    uint32_t len = be32toh(cqe->byte_cnt);
    if (len < UDRPC_MLX5_GRH_BYTES || len > m->rx_buf_size) {
        m->stats.rx_short++;
        return true;
    }
    /* Scatter to CQE: the device put the first 32 (or 64) bytes into this
     * CQE (or the one before). We ask for it off; copy, should it happen. */
    if (op_own & MLX5_INLINE_SCATTER_32)
        memcpy(buf, cqe, len < 32 ? len : 32);
    else if (op_own & MLX5_INLINE_SCATTER_64)
        memcpy(buf, cqe - 1, len < 64 ? len : 64);
    pkt->buf = buf + UDRPC_MLX5_GRH_BYTES;
    pkt->len = len - UDRPC_MLX5_GRH_BYTES;
    memcpy(&pkt->src_id[0], buf + m->src_off, 8);
    pkt->src_id[1] = be32toh(cqe->flags_rqpn) & 0xffffff;
    *pkt_ok = true;
    return true;
}

static unsigned mlx5_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                              uint64_t now_tsc)
{
    struct mlx5_transport *m = (struct mlx5_transport *)tp;
    (void)now_tsc;
    if (unlikely(m->recover_pending)) {
        qp_recover(m);
    } else if (m->rx_held) { /* the last burst's buffers are free: re-post */
        m->rq_pi += m->rx_held;
        m->rx_held = 0;
        to_device_barrier();
        dbrec_write(&m->qp_dbrec[MLX5_RCV_DBR], m->rq_pi & 0xffff);
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
    struct tp_rx_pkt *pk = pkts, *pk_end = pkts + max;
    for (; pk < pk_end; ci++) {
        uint8_t op_own = cqe_op_own(cqe);
        if (likely(op_own == want)) {
            from_device_barrier();
            uint32_t len = be32toh(cqe->byte_cnt);
            const uint8_t *buf = rx_bufs + (be16toh(cqe->wqe_counter) & rq_mask) * buf_size;
            if (likely(len >= UDRPC_MLX5_GRH_BYTES)) { /* never shorter on a UD QP */
                uint64_t src;
                memcpy(&src, buf + src_off, 8);
                pk->buf = buf + UDRPC_MLX5_GRH_BYTES;
                pk->len = len - UDRPC_MLX5_GRH_BYTES;
                pk->src_id[0] = src;
                pk->src_id[1] = be32toh(cqe->flags_rqpn) & 0xffffff;
                pk++;
            } else {
                m->stats.rx_short++;
            }
        } else {
            /* not written yet: the common end of a burst, decided here */
            if ((op_own & MLX5_CQE_OWNER_MASK) != (want & MLX5_CQE_OWNER_MASK) ||
                (op_own >> 4) == MLX5_CQE_INVALID)
                break;
            bool ok;
            rx_slow(m, (struct mlx5_cqe64 *)cqe, op_own, ci, pk, &ok);
            pk += ok;
        }
        if (unlikely(++cqe == rcq_end)) { /* a lap: the owner bit we want flips */
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
    src_id[1] = qpn;
}

static int mlx5_make_peer(struct transport *tp, const struct tp_route *r, struct tp_peer *peer)
{
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
    .rx_burst = mlx5_rx_burst,
    .tx_burst = mlx5_tx_burst,
    .tx_flush = mlx5_tx_flush,
    .make_peer = mlx5_make_peer,
    .reg_mem = mlx5_reg_mem,
    .destroy = mlx5_destroy,
};

static bool pow2(uint32_t x)
{
    return x && (x & (x - 1)) == 0;
}

int udrpc__mlx5_create(const udrpc_config_t *cfg, struct transport **out)
{
    const struct mlx5_nic_ops *ops = g_nic_override ? g_nic_override : &udrpc__mlx5_hw_ops;
    struct mlx5_transport *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->nic_ops = ops;
    int ret = ops->open(cfg, UDRPC_MLX5_QKEY, SQ_WQES, RQ_WQES, WANT_INLINE, &m->mem, &m->nic);
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
    if (!pow2(q->sq_bbs) || !pow2(q->rq_wqes) || !pow2(q->scq_cqes) || !pow2(q->rcq_cqes) ||
        q->rq_stride < 16 || !pow2(q->rq_stride) || q->scq_cqes < q->sq_bbs / 2 ||
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
    rq_post_all(m);
    m->drop_ppm = ops->doorbell ? 0 : cfg->loop.drop_ppm; /* the model injects its own */
    m->rng = (cfg->loop.seed ^ 0x9E3779B97F4A7C15ull) | 1;

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
    *out = ((struct mlx5_transport *)tp)->stats;
}

void *udrpc__mlx5_nic(struct transport *tp)
{
    return ((struct mlx5_transport *)tp)->nic;
}
