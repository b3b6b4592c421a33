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

/* Ordering with the device, under rdma-core's names and with its
 * semantics unchanged (util/udma_barrier.h; providers/mlx5/qp.c
 * post_send_db, cq.c mlx5_get_next_cqe):
 *
 *  udma_to_device_barrier()   our stores to memory the device reads (WQEs,
 *                             a doorbell record) reach it before a store
 *                             that makes it read them (the record, the
 *                             doorbell register). x86: stores are not
 *                             reordered with stores to write-back memory,
 *                             so the compiler only. aarch64: dmb oshst.
 *  mmio_wc_start()            the doorbell record's store is ordered
 *                             before the write-combining store to the
 *                             BlueFlame register (and other MMIO before
 *                             it). x86: sfence. aarch64: dsb st.
 *  mmio_flush_writes()        the write-combining buffer holding the
 *                             BlueFlame store goes to the device now, as
 *                             one TLP; the next BlueFlame write is not
 *                             merged with it. x86: sfence. aarch64: dsb st.
 *  udma_from_device_barrier() after the owner byte shows a CQE is ours,
 *                             its other fields are read after it. x86:
 *                             lfence. aarch64: dmb oshld.
 *
 * The post: WQE stores; udma_to_device_barrier; doorbell record;
 * mmio_wc_start; BlueFlame store; mmio_flush_writes. A poll: owner bytes;
 * udma_from_device_barrier; the CQEs' bodies (once per run of ready CQEs,
 * not once per CQE). Architectures rdma-core knows and we have not built
 * for get a full fence. */
#if defined(__x86_64__) || defined(__i386__)
#define udma_to_device_barrier() __asm__ volatile("" ::: "memory")
#define udma_from_device_barrier() __asm__ volatile("lfence" ::: "memory")
#define mmio_flush_writes() __asm__ volatile("sfence" ::: "memory")
#elif defined(__aarch64__)
#define udma_to_device_barrier() __asm__ volatile("dmb oshst" ::: "memory")
#define udma_from_device_barrier() __asm__ volatile("dmb oshld" ::: "memory")
#define mmio_flush_writes() __asm__ volatile("dsb st" ::: "memory")
#else
#define udma_to_device_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define udma_from_device_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mmio_flush_writes() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#define mmio_wc_start() mmio_flush_writes()

/* Each ordering point and the stores around it, as the NIC model sees
 * them (mlx5_nic_ops.event): on hardware the hook is NULL and a barrier is
 * the instruction above and one predicted branch. The model checks the
 * order at every doorbell and CQE read (test/nicmodel/); a test leaves out
 * one barrier at a time (skip_events) and the model must notice. */
#define MLX5_BARRIER(m, ev, barrier)                                            \
    do {                                                                        \
        if (likely(!(m)->nic_event)) {                                          \
            barrier;                                                            \
        } else if (!((m)->skip_events & (1u << (ev)))) {                        \
            barrier;                                                            \
            (m)->nic_event((m)->nic, (ev));                                     \
        }                                                                       \
    } while (0)
#define MLX5_EVENT(m, ev)                                                       \
    do {                                                                        \
        if (unlikely((m)->nic_event))                                           \
            (m)->nic_event((m)->nic, (ev));                                     \
    } while (0)

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
    void (*nic_event)(void *nic, unsigned ev); /* NULL on hardware */
    uint32_t skip_events;     /* tests: barriers left out (bit per mlx5_event) */
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
