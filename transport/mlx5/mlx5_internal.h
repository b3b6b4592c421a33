/*
 * mlx5_internal.h — what the mlx5 transport's files share (mlx5.c:
 * set-up, peers, recovery; mlx5_sq.c: the send queue; mlx5_cq.c: the
 * receive queue and CQ). Included only inside transport/mlx5/.
 */
#ifndef UDRPC_TRANSPORT_MLX5_INTERNAL_H
#define UDRPC_TRANSPORT_MLX5_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "mlx5.h"

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
    struct tp_faults faults;  /* fault injection on hardware (tests) */
    struct udrpc_mlx5_stats stats;
};


/* The sw owner bit of CQE index ci in a ring of 2^shift: it flips each lap. */
static inline uint8_t cq_owner(uint32_t ci, uint32_t shift)
{
    return (uint8_t)((ci >> shift) & 1);
}

/* mlx5.c */
void udrpc__mlx5_note_error(struct mlx5_transport *m, const struct mlx5_cqe64 *cqe, uint64_t *count);
void udrpc__mlx5_rq_post_all(struct mlx5_transport *m);
void udrpc__mlx5_qp_recover(struct mlx5_transport *m);
/* mlx5_sq.c */
unsigned udrpc__mlx5_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                              uint64_t now_tsc);
void udrpc__mlx5_tx_flush(struct transport *tp);
/* mlx5_cq.c */
unsigned udrpc__mlx5_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                              uint64_t now_tsc);

#endif
