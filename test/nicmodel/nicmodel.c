/*
 * nicmodel.c — the NIC model (see nicmodel.h).
 *
 * What it follows. The layouts and constants are rdma-core's public
 * infiniband/mlx5dv.h: struct mlx5_wqe_ctrl_seg, mlx5_wqe_datagram_seg
 * (mlx5_wqe_av), mlx5_wqe_data_seg, mlx5_wqe_inl_data_seg,
 * mlx5_cqe64 and mlx5_err_cqe. Its behaviour is a reading of rdma-core's
 * mlx5 provider (providers/mlx5/qp.c, cq.c, verbs.c, mlx5.c), which
 * writes the same queues for the same device:
 *  - the send queue is counted in 64-byte basic blocks (BBs); a WQE's
 *    control segment carries its BB index (opmod_idx_opcode bits 8..23),
 *    the QPN and its size in 16-byte units (qpn_ds, low 6 bits); its CQ
 *    update bit asks for a CQE (post_send: fm_ce_se, MLX5_WQE_CTRL_CQ_UPDATE);
 *  - segments after the control and datagram segments wrap at the end of
 *    the ring to its start, inline data even mid-copy (set_data_inl_seg);
 *  - an inline segment's byte count has MLX5_INLINE_SEG set and takes
 *    align(4 + bytes, 16) of the WQE;
 *  - the send doorbell record holds the BB producer counter, big-endian,
 *    16 bits (post_send_db: qp->db[MLX5_SND_DBR]); the receive one the
 *    receive WQE counter (qp->db[MLX5_RCV_DBR]); a CQ's word 0 the
 *    consumer index, 24 bits (update_cons_index);
 *  - a CQE is software's when its opcode is not MLX5_CQE_INVALID and its
 *    owner bit equals the lap parity of its index (get_sw_cqe); CQ buffers
 *    start as MLX5_CQE_INVALID << 4 (mlx5_alloc_cq_buf);
 *  - a send CQE's wqe_counter names the WQE's first BB (mlx5_poll_one);
 *    a receive CQE's names the receive WQE; byte_cnt counts the 40-byte
 *    GRH area of a UD receive; flags_rqpn holds the source QPN (low 24
 *    bits) and a non-zero GRH field (bits 28..29) (handle_responder);
 *  - error CQEs (struct mlx5_err_cqe) carry a syndrome
 *    (MLX5_CQE_SYNDROME_*); after one the QP is in the error state and
 *    every further WQE completes with WR_FLUSH_ERR.
 * Where the provider is silent, the model says what it assumes: a UD
 * receive longer than its buffer completes with LOCAL_LENGTH_ERR and takes
 * the QP to the error state (the transport must reset; were real hardware
 * to only drop it, the transport handles that too); a send whose data
 * exceeds the port MTU completes with LOCAL_LENGTH_ERR; a gather segment
 * outside its lkey's region with LOCAL_PROT_ERR; a malformed WQE with
 * LOCAL_QP_OP_ERR. RoCE v2 over IPv4 puts an IPv4 header in the last 20
 * bytes of the GRH area; otherwise a GRH with the source GID at byte 8.
 *
 * Threads: a sender's doorbell runs its send queue in the sender's
 * thread and writes each packet straight into the receiver's next posted
 * receive buffer and its receive CQ, under one fabric lock (taken once
 * per doorbell): one copy, as the NIC's DMA. The CQE's owner byte is
 * stored last with release semantics and read by the transport with an
 * acquire load; the transport's doorbell records are release stores the
 * model reads with acquire loads: the orderings a real device relies on,
 * in a form ThreadSanitizer checks.
 */
#include "nicmodel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QPS 1024
#define MAX_MRS 4096
#define QPN_BASE 0x100
#define WQE_MAX_DS 0x3f       /* qpn_ds's 6-bit size field */
#define MAX_MTU 4096          /* IB's largest; a wire slot holds one */

struct mr {
    uintptr_t base;
    size_t len;
};

struct arrival {               /* a packet as it reaches a receiving port */
    const uint8_t *data;
    uint32_t len;
    uint32_t src_qpn;
    uint32_t qkey;
    const uint8_t *src_gid;
};

struct nm_cq {
    struct mlx5_cqe64 *buf;
    uint32_t cqes, shift;
    uint32_t pi;              /* CQEs written, free running */
    __be32 dbrec[2];
};

struct nm_qp {
    unsigned idx;             /* in the fabric's table */
    struct mlx5_qp_mem mem;
    struct nicmodel_cfg cfg;
    uint32_t qkey;
    atomic_bool in_error;
    uint32_t sq_ci;           /* BBs executed, free running */
    uint32_t rq_ci;           /* receive WQEs consumed */
    uint32_t bf_offset;       /* where the next BlueFlame write lands */
    uint8_t *sq_alloc, *bf_page;
    __be32 qp_dbrec[2];
    struct nm_cq scq, rcq;
    struct mr mrs[MAX_MRS];
    unsigned n_mrs;
    /* faults of what this QP sends; a packet held back to be reordered */
    udrpc_faults_t faults;
    bool faults_on;
    uint64_t rng;
    uint8_t *pkt;             /* a send's gathered bytes */
    uint8_t *held;
    uint32_t held_len;
    struct mlx5_wqe_av held_av;
    bool has_held;
    /* the order checker (nm_event): the send queue's events since the last
     * doorbell, the receive queue's barrier since its last record, and per
     * CQ (0 receive, 1 send) how far a read has come: 1 owner read, 2 the
     * barrier after it */
    uint8_t sq_seq[8];
    unsigned sq_n;
    bool order_seen;          /* the transport reports its order (its ops
                                 table may leave the hook out: benchmarks) */
    bool rq_barrier;
    uint8_t cq_stage[2];
    struct nicmodel_stats st;
};

/* A violation of the device's ordering rules aborts, unless a test asked
 * to count them (nicmodel_count_order_violations). */
static bool g_order_count_only;

static struct {
    pthread_mutex_t lock;
    struct nm_qp *qps[MAX_QPS];
    struct nicmodel_cfg cfg;
    bool cfg_set;
} g_fab = { .lock = PTHREAD_MUTEX_INITIALIZER };

void nicmodel_default_cfg(struct nicmodel_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->sq_bbs = 1024;
    c->rq_wqes = 512;
    c->rq_stride = 16;
    c->scq_cqes = 512;
    c->rcq_cqes = 512;
    c->max_inline = 256;
    c->mtu = 4096;
    c->roce_ipv4 = true;
}

void nicmodel_configure(const struct nicmodel_cfg *cfg)
{
    pthread_mutex_lock(&g_fab.lock);
    if (cfg)
        g_fab.cfg = *cfg;
    else
        nicmodel_default_cfg(&g_fab.cfg);
    g_fab.cfg_set = true;
    pthread_mutex_unlock(&g_fab.lock);
}

const char *nicmodel_select(const char *transport)
{
    if (transport && strcmp(transport, "mlx5-model") == 0) {
        udrpc__mlx5_use_nic(&nicmodel_ops);
        return "mlx5";
    }
    return transport;
}

/* The port GID of QP idx: ::ffff:10.77.x.y (RoCE v2, IPv4), or
 * fe80::<interface id> (GRH). */
static void port_gid(const struct nicmodel_cfg *c, unsigned idx, uint8_t gid[16])
{
    memset(gid, 0, 16);
    if (c->roce_ipv4) {
        gid[10] = gid[11] = 0xff;
        gid[12] = 10;
        gid[13] = 77;
        gid[14] = (uint8_t)((idx + 1) >> 8);
        gid[15] = (uint8_t)(idx + 1);
    } else {
        gid[0] = 0xfe;
        gid[1] = 0x80;
        gid[8] = 0x02;
        gid[9] = 0x1b;
        gid[13] = 0x4d;
        gid[14] = (uint8_t)((idx + 1) >> 8);
        gid[15] = (uint8_t)(idx + 1);
    }
}

/* ---------------------------------------------------------------- CQ ---- */

static void cq_init(struct nm_cq *cq, uint32_t cqes)
{
    cq->cqes = cqes;
    cq->shift = (uint32_t)__builtin_ctz(cqes);
    cq->buf = aligned_alloc(4096, ((size_t)cqes * sizeof(struct mlx5_cqe64) + 4095) & ~(size_t)4095);
    if (cq->buf)
        for (uint32_t i = 0; i < cqes; i++) {
            memset(&cq->buf[i], 0, sizeof(cq->buf[i]));
            cq->buf[i].op_own = MLX5_CQE_INVALID << 4;
        }
}

/* The next CQE of cq to write, or NULL: the CQ is full (its consumer
 * index in the doorbell record is a whole ring behind), an overrun that
 * takes the QP to the error state. */
static inline __attribute__((always_inline)) struct mlx5_cqe64 *cq_slot(struct nm_qp *q, struct nm_cq *cq)
{
    uint32_t ci = be32toh(__atomic_load_n(&cq->dbrec[UDRPC_MLX5_CQ_SET_CI], __ATOMIC_ACQUIRE)) & 0xffffff;
    if (((cq->pi - ci) & 0xffffff) >= cq->cqes) {
        q->st.cq_overrun++;
        atomic_store_explicit(&q->in_error, true, memory_order_release);
        return NULL;
    }
    return &cq->buf[cq->pi & (cq->cqes - 1)];
}

/* Hands the CQE at c (its body written) to software: the opcode and owner
 * byte last, with release semantics. */
static inline __attribute__((always_inline)) void cq_publish(struct nm_cq *cq, struct mlx5_cqe64 *c,
                                                             uint8_t opcode)
{
    uint8_t owner = (uint8_t)((cq->pi >> cq->shift) & 1);
    __atomic_store_n(&c->op_own, (uint8_t)(opcode << 4 | owner), __ATOMIC_RELEASE);
    cq->pi++;
}

/* Writes one CQE from body. false: the CQ is full. */
static inline __attribute__((always_inline)) bool cq_push(struct nm_qp *q, struct nm_cq *cq,
                                                          const struct mlx5_cqe64 *body, uint8_t opcode)
{
    struct mlx5_cqe64 *c = cq_slot(q, cq);
    if (!c)
        return false;
    memcpy(c, body, offsetof(struct mlx5_cqe64, op_own));
    cq_publish(cq, c, opcode);
    return true;
}

static void push_error(struct nm_qp *q, struct nm_cq *cq, uint8_t opcode, uint8_t syndrome,
                       uint16_t wqe_counter, uint8_t wqe_opcode)
{
    struct mlx5_cqe64 body;
    memset(&body, 0, sizeof(body));
    struct mlx5_err_cqe *e = (struct mlx5_err_cqe *)&body;
    e->syndrome = syndrome;
    e->vendor_err_synd = syndrome == MLX5_CQE_SYNDROME_WR_FLUSH_ERR ? 0xf9 : 0x51;
    e->s_wqe_opcode_qpn = htobe32((uint32_t)wqe_opcode << 24 | q->mem.qpn);
    e->wqe_counter = htobe16(wqe_counter);
    if (cq_push(q, cq, &body, opcode)) {
        if (syndrome == MLX5_CQE_SYNDROME_WR_FLUSH_ERR) {
            q->st.flush_cqes++;
        } else {
            q->st.err_cqes++;
            q->st.last_syndrome = syndrome;
        }
    }
    atomic_store_explicit(&q->in_error, true, memory_order_release);
}

/* --------------------------------------------------------------- send ---- */

/* Reads len bytes at p in the send ring, wrapping at its end. */
static const uint8_t *sq_read(struct nm_qp *q, const uint8_t *p, void *dst, uint32_t len)
{
    const uint8_t *end = q->mem.sq_buf + ((size_t)q->mem.sq_bbs << MLX5_SEND_WQE_SHIFT);
    uint32_t room = (uint32_t)(end - p);
    if (len < room) {
        memcpy(dst, p, len);
        return p + len;
    }
    memcpy(dst, p, room);
    memcpy((uint8_t *)dst + room, q->mem.sq_buf, len - room);
    return q->mem.sq_buf + (len - room);
}

static inline __attribute__((always_inline)) const struct mr *mr_find(struct nm_qp *q, uint32_t lkey)
{
    uint32_t i = lkey & 0xffff;
    if ((lkey >> 16) != q->idx + 1 || i >= q->n_mrs)
        return NULL;
    return &q->mrs[i];
}

static inline __attribute__((always_inline)) bool mr_covers(const struct mr *mr, uint64_t addr, uint32_t len)
{
    return mr && addr >= mr->base && addr - mr->base <= mr->len && len <= mr->len - (addr - mr->base);
}

/* ------------------------------------------------------------ receive ---- */

/* Where a packet for q would land: its next posted receive WQE, or why
 * it cannot. Changes nothing (fabric lock held). */
enum rx_fate { RX_OK, RX_QP_ERROR, RX_BAD_QKEY, RX_NO_RQE, RX_PROT_ERR };
struct rx_slot {
    uint8_t *buf;
    uint32_t room;
    uint16_t counter;
};

static inline __attribute__((always_inline)) enum rx_fate rx_peek(struct nm_qp *q, uint32_t qkey, struct rx_slot *rs)
{
    if (atomic_load_explicit(&q->in_error, memory_order_relaxed))
        return RX_QP_ERROR;
    if (qkey != q->qkey) /* the device drops it: no CQE */
        return RX_BAD_QKEY;
    uint16_t posted = (uint16_t)be32toh(__atomic_load_n(&q->qp_dbrec[MLX5_RCV_DBR], __ATOMIC_ACQUIRE));
    if (posted == (uint16_t)q->rq_ci)
        return RX_NO_RQE;
    const uint8_t *rqe = q->mem.rq_buf + (size_t)(q->rq_ci & (q->mem.rq_wqes - 1)) * q->mem.rq_stride;
    struct mlx5_wqe_data_seg d;
    memcpy(&d, rqe, sizeof(d));
    rs->room = be32toh(d.byte_count);
    rs->buf = (uint8_t *)(uintptr_t)be64toh(d.addr);
    rs->counter = (uint16_t)q->rq_ci;
    if (!mr_covers(mr_find(q, be32toh(d.lkey)), (uintptr_t)rs->buf, rs->room))
        return RX_PROT_ERR;
    return RX_OK;
}

static inline __attribute__((always_inline)) void write_grh(const struct nm_qp *q, const uint8_t *src_gid, uint32_t len, uint8_t *p)
{
    memset(p, 0, UDRPC_MLX5_GRH_BYTES);
    if (q->cfg.roce_ipv4) {
        uint8_t *ip = p + 20;
        uint16_t tot = htobe16((uint16_t)(20 + 8 + 12 + 8 + len + 4)); /* IP UDP BTH DETH ICRC */
        ip[0] = 0x45;
        memcpy(ip + 2, &tot, 2);
        ip[8] = 64;
        ip[9] = 17;
        memcpy(ip + 12, src_gid + 12, 4);
        memcpy(ip + 16, q->mem.gid + 12, 4);
    } else {
        uint16_t plen = htobe16((uint16_t)(12 + 8 + len + 4));
        p[0] = 0x60;
        memcpy(p + 4, &plen, 2);
        p[6] = 0x1b; /* next header: IBA BTH */
        p[7] = 64;
        memcpy(p + 8, src_gid, 16);
        memcpy(p + 24, q->mem.gid, 16);
    }
}

/* The outcome of an arrival at q: a receive CQE for the len payload bytes
 * already at rs->buf + 40 (RX_OK), an error CQE, or a counted drop
 * (fabric lock held). */
static inline __attribute__((always_inline)) void rx_finish(struct nm_qp *q, enum rx_fate fate, const struct rx_slot *rs,
                      const uint8_t *src_gid, uint32_t src_qpn, uint32_t len)
{
    switch (fate) {
    case RX_QP_ERROR: q->st.drop_qp_error++; return;
    case RX_BAD_QKEY: q->st.drop_qkey++; return;
    case RX_NO_RQE: q->st.drop_no_rqe++; return;
    case RX_PROT_ERR:
        q->rq_ci++;
        push_error(q, &q->rcq, MLX5_CQE_RESP_ERR, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, rs->counter, 0);
        return;
    case RX_OK:
        break;
    }
    q->rq_ci++;
    write_grh(q, src_gid, len, rs->buf);
    struct mlx5_cqe64 *c = cq_slot(q, &q->rcq);
    if (!c)
        return;
    memset(c, 0, offsetof(struct mlx5_cqe64, op_own));
    c->byte_cnt = htobe32(UDRPC_MLX5_GRH_BYTES + len);
    c->wqe_counter = htobe16(rs->counter);
    c->flags_rqpn = htobe32(1u << 28 | src_qpn);
    c->sop_drop_qpn = htobe32(q->mem.qpn);
    c->l4_hdr_type_etc = (uint8_t)((q->cfg.roce_ipv4 ? 2 : 1) << 2); /* L3 header type */
    cq_publish(&q->rcq, c, MLX5_CQE_RESP_SEND);
    q->st.rx_cqes++;
    q->st.delivered++;
}

/* One arrival from a copy of its bytes, into q's next posted receive WQE
 * or a counted drop; a receive WQE too small completes with a length
 * error (fabric lock held). */
static void deliver(struct nm_qp *q, const struct arrival *a)
{
    struct rx_slot rs = { 0 };
    enum rx_fate fate = rx_peek(q, a->qkey, &rs);
    if (fate == RX_OK && UDRPC_MLX5_GRH_BYTES + a->len > rs.room) {
        q->rq_ci++;
        push_error(q, &q->rcq, MLX5_CQE_RESP_ERR, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, rs.counter, 0);
        return;
    }
    if (fate == RX_OK)
        memcpy(rs.buf + UDRPC_MLX5_GRH_BYTES, a->data, a->len);
    rx_finish(q, fate, &rs, a->src_gid, a->src_qpn, a->len);
}

/* --------------------------------------------------------------- send ---- */

/* The port and QP an address vector names, or NULL (fabric lock held). */
static inline __attribute__((always_inline)) struct nm_qp *route(const struct mlx5_wqe_av *av)
{
    uint32_t di = (be32toh(av->dqp_dct) & 0xffffff) - QPN_BASE;
    struct nm_qp *d = di < MAX_QPS ? g_fab.qps[di] : NULL;
    if (!d)
        return NULL;
    uint64_t a[2], b[2];
    memcpy(a, d->mem.gid, 16);
    memcpy(b, av->rgid, 16);
    return a[0] == b[0] && a[1] == b[1] ? d : NULL;
}

/* Sends len bytes of src->pkt to where av points, through the fault
 * injection (fabric lock held). */
static void wire_put(struct nm_qp *src, const struct mlx5_wqe_av *av, uint32_t len)
{
    struct nm_qp *d = route(av);
    if (!d) {
        src->st.drop_no_route++;
        return;
    }
    /* loss; corruption is loss too: the receiving port's ICRC check drops it */
    if (udrpc__chance_ppm(&src->rng, src->faults.drop_ppm) || udrpc__chance_ppm(&src->rng, src->faults.corrupt_ppm)) {
        src->st.injected_drop++;
        return;
    }
    if (!src->has_held && udrpc__chance_ppm(&src->rng, src->faults.reorder_ppm)) { /* overtaken by the next */
        memcpy(src->held, src->pkt, len);
        src->held_len = len;
        src->held_av = *av;
        src->has_held = true;
        src->st.injected_reorder++;
        return;
    }
    struct arrival a = { src->pkt, len, src->mem.qpn, be32toh(av->key.qkey.qkey), src->mem.gid };
    deliver(d, &a);
    if (udrpc__chance_ppm(&src->rng, src->faults.dup_ppm)) {
        src->st.injected_dup++;
        deliver(d, &a);
    }
    if (src->has_held) { /* the one held back arrives after this one */
        src->has_held = false;
        struct nm_qp *hd = route(&src->held_av);
        struct arrival h = { src->held, src->held_len, src->mem.qpn,
                             be32toh(src->held_av.key.qkey.qkey), src->mem.gid };
        if (hd)
            deliver(hd, &h);
    }
}

/* Gathers a WQE's data segments (after its control and datagram
 * segments: units of 16 bytes) into dst, at most the port MTU: *total
 * bytes, or a syndrome. Returns 0 or the syndrome. */
static inline __attribute__((always_inline)) uint8_t gather(struct nm_qp *q, const uint8_t *wqe, uint32_t start, uint32_t units,
                      uint8_t *dst, uint32_t *total)
{
    const uint8_t *ring_end = q->mem.sq_buf + ((size_t)q->mem.sq_bbs << MLX5_SEND_WQE_SHIFT);
    bool wraps = (start & (q->mem.sq_bbs - 1)) + (4 + units + 3) / 4 > q->mem.sq_bbs;
    const uint8_t *seg = wqe + MLX5_SEND_WQE_BB;
    if (seg == ring_end)
        seg = q->mem.sq_buf;
    /* The common shape, one inline segment, in a WQE that does not end the
     * ring: 16-byte moves, which may read up to 4 bytes past the WQE (into
     * the ring's next BB) and write up to 15 past n (into the buffer's
     * MTU bytes, a multiple of 16: nm_open). */
    if ((start & (q->mem.sq_bbs - 1)) + (4 + units + 3) / 4 < q->mem.sq_bbs) {
        __be32 bc_be;
        memcpy(&bc_be, seg, sizeof(bc_be));
        uint32_t bc = be32toh(bc_be), n = bc & ~MLX5_INLINE_SEG;
        if ((bc & MLX5_INLINE_SEG) && (4 + n + 15) / 16 == units && n <= q->cfg.max_inline &&
            n <= q->cfg.mtu) {
            for (uint32_t i = 0; i < n; i += 16)
                memcpy(dst + i, seg + 4 + i, 16);
            *total = n;
            q->st.inline_segs++;
            return 0;
        }
    }
    uint32_t n_total = 0;
    while (units) {
        __be32 bc_be;
        if (wraps)
            sq_read(q, seg, &bc_be, sizeof(bc_be));
        else
            memcpy(&bc_be, seg, sizeof(bc_be));
        uint32_t bc = be32toh(bc_be);
        uint32_t used;
        if (bc & MLX5_INLINE_SEG) {
            uint32_t n = bc & ~MLX5_INLINE_SEG;
            used = (4 + n + 15) / 16;
            if (used > units || n > q->cfg.max_inline)
                return MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR;
            if (n_total + n > q->cfg.mtu)
                return MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR;
            const uint8_t *from = seg + 4;
            if (!wraps) {
                memcpy(dst + n_total, from, n);
            } else {
                if (from == ring_end)
                    from = q->mem.sq_buf;
                if (n > (uint32_t)(ring_end - from))
                    q->st.split_inline++;
                sq_read(q, from, dst + n_total, n);
            }
            n_total += n;
            q->st.inline_segs++;
        } else {
            struct mlx5_wqe_data_seg d;
            if (wraps)
                sq_read(q, seg, &d, sizeof(d));
            else
                memcpy(&d, seg, sizeof(d));
            uint32_t n = be32toh(d.byte_count), lkey = be32toh(d.lkey);
            uint64_t addr = be64toh(d.addr);
            used = 1;
            if (lkey == MLX5_INVALID_LKEY) /* end of the gather list */
                break;
            if (n == 0 || n_total + n > q->cfg.mtu) /* 0 means 2 GiB to the device */
                return MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR;
            if (!mr_covers(mr_find(q, lkey), addr, n))
                return MLX5_CQE_SYNDROME_LOCAL_PROT_ERR;
            memcpy(dst + n_total, (const void *)(uintptr_t)addr, n);
            n_total += n;
            q->st.data_segs++;
        }
        units -= used;
        seg += used * 16;
        if (seg >= ring_end)
            seg -= ring_end - q->mem.sq_buf;
    }
    *total = n_total;
    return 0;
}

/* Executes the WQE at BB q->sq_ci: returns its size in BBs. Without
 * fault injection the data goes straight into the receiver's posted
 * buffer: one copy, as the device's DMA. */
static uint32_t exec_wqe(struct nm_qp *q)
{
    uint32_t start = q->sq_ci;
    const uint8_t *wqe = q->mem.sq_buf + ((size_t)(start & (q->mem.sq_bbs - 1)) << MLX5_SEND_WQE_SHIFT);
    const struct mlx5_wqe_ctrl_seg *ctrl = (const struct mlx5_wqe_ctrl_seg *)wqe;
    uint32_t oio = be32toh(ctrl->opmod_idx_opcode);
    uint8_t opcode = (uint8_t)oio;
    uint16_t idx = (uint16_t)(oio >> 8);
    uint32_t qd = be32toh(ctrl->qpn_ds);
    uint32_t ds = qd & WQE_MAX_DS;
    uint32_t bbs = ds ? (ds * 16 + MLX5_SEND_WQE_BB - 1) / MLX5_SEND_WQE_BB : 1;
    bool signalled = ctrl->fm_ce_se & MLX5_WQE_CTRL_CQ_UPDATE;
    /* Fence mode (bits 5..7) orders a WQE behind earlier RDMA reads and
     * atomics, which a UD QP never has: counted, no effect. The solicited
     * bit (1) asks the receiver for an event: counted. */
    if (ctrl->fm_ce_se & 0xe0)
        q->st.fenced++;
    if (ctrl->fm_ce_se & MLX5_WQE_CTRL_SOLICITED)
        q->st.solicited++;
    if (atomic_load_explicit(&q->in_error, memory_order_relaxed)) {
        push_error(q, &q->scq, MLX5_CQE_REQ_ERR, MLX5_CQE_SYNDROME_WR_FLUSH_ERR, idx, opcode);
        return bbs;
    }
    /* Control segment: a SEND of this QP at this index, with a datagram
     * segment (a UD address vector, extended) and at least one data
     * segment. */
    const struct mlx5_wqe_datagram_seg *dg = (const struct mlx5_wqe_datagram_seg *)(wqe + sizeof(*ctrl));
    if (opcode != MLX5_OPCODE_SEND || idx != (uint16_t)start || (qd >> 8) != q->mem.qpn || ds < 5 ||
        !(be32toh(dg->av.dqp_dct) & MLX5_EXTENDED_UD_AV)) {
        push_error(q, &q->scq, MLX5_CQE_REQ_ERR, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, idx, opcode);
        return bbs;
    }
    const struct mlx5_wqe_av *av = &dg->av;
    /* Where the bytes go: the receiver's buffer when nothing can happen
     * to them on the way and it holds any packet; else a copy first. */
    struct nm_qp *d = q->faults_on ? NULL : route(av);
    struct rx_slot rs = { 0 };
    enum rx_fate fate = RX_QP_ERROR;
    uint8_t *dst = q->pkt;
    if (d) {
        fate = rx_peek(d, be32toh(av->key.qkey.qkey), &rs);
        if (fate == RX_OK && rs.room >= UDRPC_MLX5_GRH_BYTES + q->cfg.mtu)
            dst = rs.buf + UDRPC_MLX5_GRH_BYTES;
    }
    uint32_t total = 0;
    uint8_t syndrome = gather(q, wqe, start, ds - 4, dst, &total);
    if (syndrome) {
        push_error(q, &q->scq, MLX5_CQE_REQ_ERR, syndrome, idx, opcode);
        return bbs;
    }
    q->st.wqes++;
    q->st.last_ds = ds;
    if (ds > q->st.max_ds)
        q->st.max_ds = ds;
    if ((start & (q->mem.sq_bbs - 1)) + bbs > q->mem.sq_bbs)
        q->st.wrapped_wqes++;
    if (dst != q->pkt) {
        rx_finish(d, RX_OK, &rs, q->mem.gid, q->mem.qpn, total);
    } else if (d && fate != RX_OK) {
        rx_finish(d, fate, &rs, q->mem.gid, q->mem.qpn, total);
    } else {
        wire_put(q, av, total);
    }
    if (signalled) {
        struct mlx5_cqe64 body;
        memset(&body, 0, sizeof(body));
        body.wqe_counter = htobe16(idx);
        body.sop_drop_qpn = htobe32((uint32_t)MLX5_OPCODE_SEND << 24 | q->mem.qpn);
        body.byte_cnt = htobe32(total);
        if (cq_push(q, &q->scq, &body, MLX5_CQE_REQ))
            q->st.tx_cqes++;
    }
    return bbs;
}

static void order_violation(struct nm_qp *q, uint64_t *count, const char *what)
{
    (*count)++;
    if (!g_order_count_only) {
        fprintf(stderr, "nicmodel: QP %u: %s\n", q->idx, what);
        abort();
    }
}

/* What the transport did, in program order (mlx5.h: enum mlx5_event):
 * each barrier where rdma-core puts it. The model shares coherent memory
 * with the CPU, so a missing barrier would change nothing it reads: it
 * checks the order of the barriers and the stores and loads around them
 * instead, as rdma-core's providers/mlx5 requires it. */
static void nm_event(void *nic, unsigned ev)
{
    struct nm_qp *q = nic;
    q->order_seen = true;
    switch (ev) {
    case MLX5_EV_SQ_WQES:
    case MLX5_EV_SQ_TO_DEVICE:
    case MLX5_EV_SQ_DBR:
    case MLX5_EV_SQ_WC_START:
    case MLX5_EV_SQ_BF:
    case MLX5_EV_SQ_WC_FLUSH:
        if (q->sq_n < sizeof(q->sq_seq))
            q->sq_seq[q->sq_n++] = (uint8_t)ev; /* checked at the doorbell */
        return;
    case MLX5_EV_RQ_TO_DEVICE:
        q->rq_barrier = true;
        return;
    case MLX5_EV_RQ_DBR:
        if (!q->rq_barrier)
            order_violation(q, &q->st.order_rq,
                            "receive doorbell record written with no udma_to_device_barrier "
                            "before it");
        q->rq_barrier = false;
        return;
    default: { /* the CQs */
        unsigned cq = ev >= MLX5_EV_SCQ_OWNER, step = ev - (cq ? MLX5_EV_SCQ_OWNER : MLX5_EV_RCQ_OWNER);
        if (step == 0) {
            q->cq_stage[cq] = 1;
        } else if (step == 1) {
            if (q->cq_stage[cq] == 1)
                q->cq_stage[cq] = 2;
        } else {
            if (q->cq_stage[cq] != 2)
                order_violation(q, cq ? &q->st.order_scq : &q->st.order_rcq,
                                "a CQE's body read with no udma_from_device_barrier after its "
                                "owner byte");
            q->cq_stage[cq] = 0;
        }
        return;
    }
    }
}

/* The doorbell: first the order of what led to it (nm_event); the
 * BlueFlame write must carry the first 8 bytes of the last WQE posted;
 * then every WQE up to the doorbell record runs. */
static void nm_doorbell(void *nic)
{
    struct nm_qp *q = nic;
    static const uint8_t want[] = { MLX5_EV_SQ_WQES, MLX5_EV_SQ_TO_DEVICE, MLX5_EV_SQ_DBR,
                                    MLX5_EV_SQ_WC_START, MLX5_EV_SQ_BF, MLX5_EV_SQ_WC_FLUSH };
    if (q->order_seen && (q->sq_n != sizeof(want) || memcmp(q->sq_seq, want, sizeof(want)) != 0))
        order_violation(q, &q->st.order_sq,
                        "send doorbell not as rdma-core's post_send_db: WQEs, "
                        "udma_to_device_barrier, record, mmio_wc_start, BlueFlame, "
                        "mmio_flush_writes");
    q->sq_n = 0;
    q->st.doorbells++;
    uint16_t pi = (uint16_t)be32toh(__atomic_load_n(&q->qp_dbrec[MLX5_SND_DBR], __ATOMIC_ACQUIRE));
    uint64_t bf;
    memcpy(&bf, q->bf_page + q->bf_offset, sizeof(bf));
    uint32_t bf_idx = (be32toh((__be32)bf) >> 8) & 0xffff;
    q->bf_offset ^= q->mem.bf_size;
    pthread_mutex_lock(&g_fab.lock);
    uint32_t last = q->sq_ci;
    while ((uint16_t)q->sq_ci != pi) {
        uint16_t posted = (uint16_t)(pi - (uint16_t)q->sq_ci);
        last = q->sq_ci;
        uint32_t bbs = exec_wqe(q);
        if (bbs > posted) { /* a WQE reaching past the doorbell record */
            push_error(q, &q->scq, MLX5_CQE_REQ_ERR, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR,
                       (uint16_t)q->sq_ci, 0);
            bbs = posted;
        }
        q->sq_ci += bbs;
    }
    pthread_mutex_unlock(&g_fab.lock);
    if (bf_idx != (uint16_t)last)
        q->st.bf_mismatch++;
}

/* The device's side of a read of the receive CQ: a QP in the error state
 * flushes its posted receive WQEs; a packet this QP's sender held back
 * (reordering) and nothing overtook goes out now. */
static void nm_step(void *nic)
{
    struct nm_qp *q = nic;
    if (!atomic_load_explicit(&q->in_error, memory_order_acquire) && !q->has_held)
        return;
    pthread_mutex_lock(&g_fab.lock);
    if (atomic_load_explicit(&q->in_error, memory_order_relaxed)) {
        uint16_t posted = (uint16_t)be32toh(__atomic_load_n(&q->qp_dbrec[MLX5_RCV_DBR], __ATOMIC_ACQUIRE));
        while ((uint16_t)q->rq_ci != posted && !q->st.cq_overrun) {
            push_error(q, &q->rcq, MLX5_CQE_RESP_ERR, MLX5_CQE_SYNDROME_WR_FLUSH_ERR,
                       (uint16_t)q->rq_ci, 0);
            q->rq_ci++;
        }
    }
    if (q->has_held) {
        q->has_held = false;
        struct nm_qp *hd = route(&q->held_av);
        struct arrival h = { q->held, q->held_len, q->mem.qpn, be32toh(q->held_av.key.qkey.qkey),
                             q->mem.gid };
        if (hd)
            deliver(hd, &h);
    }
    pthread_mutex_unlock(&g_fab.lock);
}

/* ---------------------------------------------------------- set-up ---- */

static void nm_close(void *nic)
{
    struct nm_qp *q = nic;
    pthread_mutex_lock(&g_fab.lock);
    if (g_fab.qps[q->idx] == q)
        g_fab.qps[q->idx] = NULL;
    pthread_mutex_unlock(&g_fab.lock);
    free(q->sq_alloc);
    free(q->mem.rq_buf);
    free(q->scq.buf);
    free(q->rcq.buf);
    free(q->bf_page);
    free(q->held);
    free(q->pkt);
    free(q);
}

static int nm_open(const udrpc_config_t *cfg, const union tp_addr *nexus, uint32_t qkey,
                   unsigned sq_wqes, unsigned rq_wqes, unsigned want_inline,
                   struct mlx5_qp_mem *mem, void **nicp)
{
    (void)nexus; /* the model's GID comes from its config (roce_ipv4) */
    if (cfg->faults.delay_ppm)
        return -ENOTSUP; /* the model drops, duplicates, reorders and corrupts */
    (void)sq_wqes;
    (void)rq_wqes;
    struct nm_qp *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    pthread_mutex_lock(&g_fab.lock);
    if (!g_fab.cfg_set) {
        nicmodel_default_cfg(&g_fab.cfg);
        g_fab.cfg_set = true;
    }
    q->cfg = g_fab.cfg;
    unsigned i = 0;
    while (i < MAX_QPS && g_fab.qps[i])
        i++;
    if (i == MAX_QPS) {
        pthread_mutex_unlock(&g_fab.lock);
        free(q);
        return -EMFILE;
    }
    q->idx = i;
    g_fab.qps[i] = q;
    pthread_mutex_unlock(&g_fab.lock);
    if (!q->cfg.max_inline)
        q->cfg.max_inline = want_inline;
    q->qkey = qkey;
    q->faults = cfg->faults;
    q->faults_on = cfg->faults.drop_ppm || cfg->faults.dup_ppm || cfg->faults.reorder_ppm ||
                   cfg->faults.corrupt_ppm;
    q->rng = (cfg->faults.seed * 0x9E3779B97F4A7C15ull + i + 1) | 1;
    if (q->cfg.mtu > MAX_MTU || q->cfg.mtu < 256 || q->cfg.mtu % 16) {
        nm_close(q);
        return -EINVAL;
    }
    size_t sq_bytes = (size_t)q->cfg.sq_bbs << MLX5_SEND_WQE_SHIFT;
    q->sq_alloc = aligned_alloc(4096, sq_bytes);
    q->mem.rq_buf = aligned_alloc(4096, ((size_t)q->cfg.rq_wqes * q->cfg.rq_stride + 4095) & ~(size_t)4095);
    q->bf_page = aligned_alloc(4096, 4096);
    q->held = malloc(MAX_MTU);
    q->pkt = malloc(MAX_MTU);
    cq_init(&q->scq, q->cfg.scq_cqes);
    cq_init(&q->rcq, q->cfg.rcq_cqes);
    if (!q->sq_alloc || !q->mem.rq_buf || !q->bf_page || !q->held || !q->pkt || !q->scq.buf ||
        !q->rcq.buf) {
        nm_close(q);
        return -ENOMEM;
    }
    memset(q->sq_alloc, 0, sq_bytes);
    memset(q->mem.rq_buf, 0, (size_t)q->cfg.rq_wqes * q->cfg.rq_stride);
    memset(q->bf_page, 0, 4096);
    mem->sq_buf = q->sq_alloc;
    mem->sq_bbs = q->cfg.sq_bbs;
    mem->rq_buf = q->mem.rq_buf;
    mem->rq_wqes = q->cfg.rq_wqes;
    mem->rq_stride = q->cfg.rq_stride;
    mem->qp_dbrec = q->qp_dbrec;
    mem->bf_reg = q->bf_page;
    mem->bf_size = 256;
    mem->scq = q->scq.buf;
    mem->scq_cqes = q->scq.cqes;
    mem->scq_dbrec = q->scq.dbrec;
    mem->rcq = q->rcq.buf;
    mem->rcq_cqes = q->rcq.cqes;
    mem->rcq_dbrec = q->rcq.dbrec;
    mem->qpn = QPN_BASE + i;
    mem->max_inline = q->cfg.max_inline;
    mem->mtu = q->cfg.mtu;
    port_gid(&q->cfg, i, mem->gid);
    mem->lid = 0;
    mem->gid_is_ipv4 = q->cfg.roce_ipv4;
    q->mem = *mem;
    *nicp = q;
    return 0;
}

static int nm_reg_mem(void *nic, void *base, size_t len, uint32_t *lkey)
{
    /* Any thread may register (a BG worker's allocator): the fabric lock,
     * which the device's reads of the table hold too. */
    struct nm_qp *q = nic;
    int ret = 0;
    pthread_mutex_lock(&g_fab.lock);
    if (q->n_mrs == MAX_MRS) {
        ret = -ENOMEM;
    } else {
        q->mrs[q->n_mrs] = (struct mr){ (uintptr_t)base, len };
        *lkey = (q->idx + 1) << 16 | q->n_mrs;
        q->n_mrs++;
    }
    pthread_mutex_unlock(&g_fab.lock);
    return ret;
}

static int nm_make_av(void *nic, const uint8_t gid[16], uint16_t lid, struct mlx5_wqe_av *av)
{
    (void)nic;
    memset(av, 0, sizeof(*av));
    av->rlid = htobe16(lid);
    av->hop_limit = 64;
    memcpy(av->rgid, gid, 16);
    return 0;
}

/* RESET -> RTS: the indices and the doorbell record restart at 0 (as the
 * provider's mlx5_modify_qp does on RESET); the CQs go on. */
static int nm_reset(void *nic)
{
    struct nm_qp *q = nic;
    pthread_mutex_lock(&g_fab.lock);
    atomic_store(&q->in_error, false);
    q->sq_ci = 0;
    q->rq_ci = 0;
    q->bf_offset = 0;
    __atomic_store_n(&q->qp_dbrec[MLX5_RCV_DBR], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&q->qp_dbrec[MLX5_SND_DBR], 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&g_fab.lock);
    return 0;
}

const struct mlx5_nic_ops nicmodel_ops = {
    .name = "nicmodel",
    .open = nm_open,
    .reg_mem = nm_reg_mem,
    .make_av = nm_make_av,
    .reset = nm_reset,
    .doorbell = nm_doorbell,
    .step = nm_step,
    .event = nm_event,
    .close = nm_close,
};

void nicmodel_count_order_violations(bool count_only)
{
    g_order_count_only = count_only;
}

void nicmodel_get_stats(void *nic, struct nicmodel_stats *out)
{
    *out = ((struct nm_qp *)nic)->st;
}

bool nicmodel_in_error(void *nic)
{
    return atomic_load(&((struct nm_qp *)nic)->in_error);
}

const struct mlx5_qp_mem *nicmodel_mem(void *nic)
{
    return &((struct nm_qp *)nic)->mem;
}

uint32_t nicmodel_sq_ci(void *nic)
{
    return ((struct nm_qp *)nic)->sq_ci;
}

uint32_t nicmodel_rq_ci(void *nic)
{
    return ((struct nm_qp *)nic)->rq_ci;
}
