/*
 * mlx5.h — the mlx5 fast path: a UD queue pair of a Mellanox/NVIDIA
 * ConnectX NIC driven directly, WQEs written into its send queue and
 * CQEs read from its completion queues, in rdma-core's public mlx5dv
 * structs (infiniband/mlx5dv.h). See mlx5.c for the datapath.
 *
 * The queue logic works on plain memory described by struct mlx5_qp_mem:
 * what mlx5dv_init_obj reports for the QP and its CQs on hardware, or
 * what the software NIC model of test/nicmodel/ lays out. The device
 * below it is a struct mlx5_nic_ops: mlx5_hw.c (verbs + mlx5dv) in the
 * library, or the model, which a test installs with udrpc__mlx5_use_nic().
 */
#ifndef UDRPC_TRANSPORT_MLX5_H
#define UDRPC_TRANSPORT_MLX5_H

#include <endian.h>
#include <infiniband/mlx5dv.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

/* rdma-core's mlx5 provider keeps the CQ's consumer index in word 0 of
 * its doorbell record (providers/mlx5: MLX5_CQ_SET_CI); mlx5dv.h does
 * not name it. */
#define UDRPC_MLX5_CQ_SET_CI 0
#define UDRPC_MLX5_GRH_BYTES 40 /* a UD receive starts with the GRH area */
#define UDRPC_MLX5_QKEY 0x75647270u /* "udrp", as the verbs transport's */

/* One UD QP and its two CQs, laid out as the device does. */
struct mlx5_qp_mem {
    uint8_t *sq_buf;          /* send queue: sq_bbs basic blocks of 64 bytes */
    uint32_t sq_bbs;          /* a power of two */
    uint8_t *rq_buf;          /* receive queue: rq_wqes WQEs of rq_stride bytes */
    uint32_t rq_wqes;         /* a power of two */
    uint32_t rq_stride;       /* 16 per data segment, a power of two */
    __be32 *qp_dbrec;         /* [MLX5_RCV_DBR], [MLX5_SND_DBR] */
    uint8_t *bf_reg;          /* BlueFlame / doorbell register */
    uint32_t bf_size;         /* one BlueFlame buffer (0: doorbells only) */
    struct mlx5_cqe64 *scq, *rcq; /* send and receive CQs, 64-byte CQEs */
    uint32_t scq_cqes, rcq_cqes;  /* powers of two */
    __be32 *scq_dbrec, *rcq_dbrec;
    uint32_t qpn;
    uint32_t max_inline;      /* bytes a WQE may carry inline */
    unsigned mtu;             /* largest payload of one datagram */
    uint8_t gid[16];          /* the port's GID as peers address it */
    uint16_t lid;
    bool gid_is_ipv4;         /* RoCE v2 over IPv4: the GRH area holds an IPv4 header */
};

/* The device under the queues. Hardware: mlx5_hw.c. Tests: the model. */
struct mlx5_nic_ops {
    const char *name;
    /* Opens the device, creates a UD QP in RTS with Q_Key qkey and room
     * for at least sq_wqes sends of up to want_inline inline bytes and
     * rq_wqes receives, and its CQs; describes them in *mem. */
    int (*open)(const udrpc_config_t *cfg, const union tp_addr *nexus, uint32_t qkey,
                unsigned sq_wqes, unsigned rq_wqes, unsigned want_inline,
                struct mlx5_qp_mem *mem, void **nic);
    /* Registers memory for the device to read and write: *lkey. */
    int (*reg_mem)(void *nic, void *base, size_t len, uint32_t *lkey);
    /* The address vector of the port (gid, lid): the datagram segment's AV. */
    int (*make_av)(void *nic, const uint8_t gid[16], uint16_t lid, struct mlx5_wqe_av *av);
    /* The QP went to the error state: RESET -> INIT -> RTR -> RTS. Its
     * producer and consumer indices restart at 0; the CQs go on. */
    int (*reset)(void *nic);
    /* Model only (NULL on hardware): after the doorbell register write,
     * the device reads the send queue; before the receive CQ is read, the
     * device delivers what has arrived. */
    void (*doorbell)(void *nic);
    void (*step)(void *nic);
    /* Model only: each ordering point with the device (a barrier) and the
     * stores and loads around it, in program order (enum mlx5_event). */
    void (*event)(void *nic, unsigned ev);
    void (*close)(void *nic);
};

/* What the model sees of the datapath's ordering (mlx5_internal.h). */
enum mlx5_event {
    MLX5_EV_SQ_WQES,          /* the burst's WQEs are written */
    MLX5_EV_SQ_TO_DEVICE,     /* udma_to_device_barrier before the record */
    MLX5_EV_SQ_DBR,           /* the send doorbell record is written */
    MLX5_EV_SQ_WC_START,      /* mmio_wc_start before the BlueFlame store */
    MLX5_EV_SQ_BF,            /* the BlueFlame register is written */
    MLX5_EV_SQ_WC_FLUSH,      /* mmio_flush_writes after it */
    MLX5_EV_RQ_TO_DEVICE,     /* udma_to_device_barrier before ... */
    MLX5_EV_RQ_DBR,           /* ... the receive doorbell record */
    MLX5_EV_RCQ_OWNER,        /* receive CQ: owner bytes read */
    MLX5_EV_RCQ_FROM_DEVICE,  /* udma_from_device_barrier */
    MLX5_EV_RCQ_BODY,         /* the CQEs' other fields read */
    MLX5_EV_SCQ_OWNER,        /* the same on the send CQ */
    MLX5_EV_SCQ_FROM_DEVICE,
    MLX5_EV_SCQ_BODY,
    MLX5_EV_MAX
};
/* Tests: leaves out the barriers named by mask (bit per mlx5_event) on a
 * transport over the model, to see the model catch each. */
void udrpc__mlx5_skip_barriers(struct transport *tp, uint32_t mask);

struct udrpc_mlx5_stats {
    uint64_t sent;            /* WQEs posted */
    uint64_t gathered;        /* of which with data segments (the rest inline) */
    uint64_t doorbells;
    uint64_t signalled;       /* WQEs with CQ update */
    uint64_t tx_errors, rx_errors; /* error CQEs, flushes apart */
    uint64_t flushed;         /* WR_FLUSH_ERR CQEs: WQEs behind a failure */
    uint8_t last_syndrome;    /* MLX5_CQE_SYNDROME_* of the last error CQE */
    uint8_t last_vendor_syndrome;
    uint64_t rx_short;        /* CQEs with a byte count under the GRH */
    uint64_t qp_resets;
    uint64_t down_drops;      /* packets not sent while the QP was being reset */
    uint64_t dropped, duplicated; /* fault injection on hardware (cfg.faults) */
};

/* Routes "mlx5" in this process to a software NIC (tests, benchmarks);
 * NULL: back to hardware. */
void udrpc__mlx5_use_nic(const struct mlx5_nic_ops *ops);
/* The hardware NIC (mlx5_hw.c). */
extern const struct mlx5_nic_ops udrpc__mlx5_hw_ops;
/* An mlx5 device with an active port (dev NULL: any) that mlx5dv drives. */
bool udrpc__mlx5_available(const char *dev);
int udrpc__mlx5_create(const udrpc_config_t *cfg, const struct tp_params *p,
                       struct transport **out);
void udrpc__mlx5_get_stats(struct transport *tp, struct udrpc_mlx5_stats *out);
/* Tests: the device handle under the transport (the model's QP). */
void *udrpc__mlx5_nic(struct transport *tp);

#endif
