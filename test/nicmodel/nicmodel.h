/*
 * nicmodel.h — a software model of the parts of a ConnectX NIC that the
 * mlx5 transport drives: UD send queue, receive queue, completion queues,
 * doorbell records and the BlueFlame register, in rdma-core's mlx5dv
 * structs. It stands in for the device under transport/mlx5/ (struct
 * mlx5_nic_ops), so that the transport's queue logic runs, unchanged, on
 * memory laid out as the hardware's. See nicmodel.c.
 *
 * Every model QP in the process is a port of one fabric. A sender's
 * doorbell runs its send queue and writes each packet into the receiving
 * QP's next posted receive buffer, with its CQE. Faults: the loop
 * transport's seeded drop, duplicate and reorder knobs (udrpc_config_t.loop;
 * corruption counts as loss, as a port's ICRC check makes it).
 */
#ifndef UDRPC_TEST_NICMODEL_H
#define UDRPC_TEST_NICMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "mlx5.h"

/* Shape of the QPs opened from now on (nicmodel_configure). */
struct nicmodel_cfg {
    uint32_t sq_bbs;          /* send queue, 64-byte basic blocks (default 4096) */
    uint32_t rq_wqes;         /* receive queue (default 512) */
    uint32_t rq_stride;       /* 16 or more (default 16) */
    uint32_t scq_cqes, rcq_cqes; /* default 2048, 512 */
    uint32_t max_inline;      /* default 256; 0: what the transport asks for */
    unsigned mtu;             /* default 4096 */
    bool roce_ipv4;           /* RoCE v2 over IPv4 GIDs (default) or GRH (IB, IPv6) */
};

struct nicmodel_stats {
    uint64_t doorbells, bf_mismatch;   /* BlueFlame writes not naming the last WQE */
    uint64_t wqes, inline_segs, data_segs; /* send WQEs executed, their segments */
    uint64_t wrapped_wqes;             /* WQEs that ran past the ring's end */
    uint64_t split_inline;             /* inline data cut by the ring's end */
    uint32_t last_ds, max_ds;          /* WQE sizes in 16-byte units */
    uint64_t fenced, solicited;        /* WQEs with a fence mode, the SE bit */
    uint64_t tx_cqes, rx_cqes, err_cqes, flush_cqes;
    uint64_t delivered;                /* written into one of our receive WQEs */
    uint64_t drop_no_rqe;              /* arrived with no receive WQE posted */
    uint64_t drop_qkey, drop_no_route, drop_qp_error, drop_wire_full;
    uint64_t injected_drop, injected_dup, injected_reorder;
    uint64_t cq_overrun;
    uint8_t last_syndrome;
    /* the transport's ordering with the device, against rdma-core's: a
     * doorbell not preceded by the post_send_db sequence, a receive
     * record with no barrier before it, a CQE body read before the
     * barrier after its owner byte */
    uint64_t order_sq, order_rq, order_rcq, order_scq;
};

/* The model as the device under "mlx5". */
extern const struct mlx5_nic_ops nicmodel_ops;

void nicmodel_configure(const struct nicmodel_cfg *cfg); /* NULL: defaults */
/* An ordering violation aborts the process (the default), or, for a test
 * that leaves barriers out on purpose, is only counted. */
void nicmodel_count_order_violations(bool count_only);
void nicmodel_default_cfg(struct nicmodel_cfg *cfg);
/* "mlx5-model" installs the model and returns "mlx5"; any other name is
 * returned as it is. For tests and benchmarks that take a transport name. */
const char *nicmodel_select(const char *transport);

/* Tests: one QP of the model (udrpc__mlx5_nic() of an mlx5 transport). */
void nicmodel_get_stats(void *nic, struct nicmodel_stats *out);
bool nicmodel_in_error(void *nic);
const struct mlx5_qp_mem *nicmodel_mem(void *nic);
/* The model's own indices: send BBs executed, receive WQEs consumed. */
uint32_t nicmodel_sq_ci(void *nic);
uint32_t nicmodel_rq_ci(void *nic);

#endif
