/*
 * verbs.c — the ibverbs transport: one unreliable-datagram queue pair per
 * Rpc on any RDMA device (RoCE or InfiniBand; Soft-RoCE included), through
 * rdma-core's libibverbs.
 *
 * Set-up: the device (UDRPC_DEVICE, else the first with an active port),
 * port 1 .. n (the first active), a GID index (UDRPC_GID_INDEX, else the
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
#include <errno.h>
#include <pthread.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "compiler.h"
#include "transport.h"
#include "verbs.h"

#define RX_RING 512           /* receive buffers posted */
#define RX_BURST_MAX 32
#define TX_RING 512           /* send queue depth */
#define TX_BURST_MAX 64
#define TX_SIGNAL_EVERY 64
#define GRH_BYTES 40
#define UDRPC_QKEY 0x75647270u /* "udrp" */

struct verbs_peer {           /* in tp_peer.tx */
    struct ibv_ah *ah;
    uint32_t qpn;
    uint32_t qkey;
};
_Static_assert(sizeof(struct verbs_peer) <= sizeof(((struct tp_peer *)0)->tx),
               "peer fits tp_peer");

struct verbs_ah_entry {
    union ibv_gid gid;
    uint16_t lid;
    struct ibv_ah *ah;
};

struct verbs_transport {
    struct transport base;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *send_cq, *recv_cq;
    struct ibv_qp *qp;
    uint8_t port;
    int gid_index;
    struct verbs_pd_objs objs; /* registrations and address handles */
    bool gid_is_ipv4;         /* RoCE v2 over IPv4: the GRH area holds an IPv4 header */
    union ibv_gid gid;
    uint16_t lid;
    uint32_t max_inline;
    /* receive ring */
    uint8_t *rx_bufs;
    size_t rx_buf_size;
    struct ibv_mr *rx_mr;
    struct ibv_recv_wr rx_wr[RX_RING];
    struct ibv_sge rx_sge[RX_RING];
    uint32_t held[RX_BURST_MAX]; /* buffers read by the last rx_burst */
    unsigned n_held;
    struct ibv_wc rx_wc[RX_BURST_MAX];
    /* send queue */
    struct ibv_send_wr tx_wr[TX_BURST_MAX];
    struct ibv_sge tx_sge[TX_BURST_MAX][2];
    uint64_t tx_posted;       /* WRs posted, ever */
    uint64_t tx_done;         /* WRs retired by completions */
    uint64_t gather_posted;   /* index + 1 of the last gather (non-inline) WR */
    bool recover_pending;     /* reset after the Rpc is done with the burst */
    struct tp_faults faults;  /* tests: drop, duplicate */
    struct tp_tx_pkt faulted[TX_BURST_MAX];
    struct udrpc_verbs_stats stats;
};

static int rx_post_all(struct verbs_transport *v)
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
int udrpc__verbs_qp_arm(struct ibv_qp *qp, uint8_t port, uint32_t qkey)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RESET;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
        return -errno;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_INIT;
    a.pkey_index = 0;
    a.port_num = port;
    a.qkey = qkey;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
        return -errno;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTR;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
        return -errno;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTS;
    a.sq_psn = 0;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
        return -errno;
    return 0;
}

/* The QP went to the error state: reset it, re-arm it, repost the ring. */
static void qp_recover(struct verbs_transport *v)
{
    v->stats.qp_resets++;
    struct ibv_wc wc[16];
    while (ibv_poll_cq(v->send_cq, 16, wc) > 0) {
    }
    while (ibv_poll_cq(v->recv_cq, 16, wc) > 0) {
    }
    v->tx_done = v->tx_posted; /* flushed: nothing references a buffer */
    if (udrpc__verbs_qp_arm(v->qp, v->port, UDRPC_QKEY) == 0)
        rx_post_all(v);
}

static bool qp_in_error(struct verbs_transport *v)
{
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    return ibv_query_qp(v->qp, &a, IBV_QP_STATE, &ia) == 0 && a.qp_state == IBV_QPS_ERR;
}

/* The sender of a received datagram: its GID from the GRH area (for RoCE
 * v2 over IPv4, an IPv4 header in the area's last 20 bytes) and its QPN.
 * Same layout as verbs_src_id(). */
static void wc_src_id(const struct verbs_transport *v, const struct ibv_wc *wc,
                      const uint8_t *grh, uint64_t src_id[2])
{
    union ibv_gid g;
    if (!(wc->wc_flags & IBV_WC_GRH)) {
        memset(&g, 0, sizeof(g));
        g.raw[14] = (uint8_t)(wc->slid >> 8);
        g.raw[15] = (uint8_t)wc->slid;
    } else if (v->gid_is_ipv4) {
        memset(&g, 0, sizeof(g));
        g.raw[10] = g.raw[11] = 0xff;
        memcpy(&g.raw[12], grh + 20 + 12, 4); /* IPv4 saddr */
    } else {
        memcpy(g.raw, grh + 8, 16);            /* GRH / IPv6 sgid */
    }
    verbs_src_id(g.raw, wc->src_qp, src_id);
}

static unsigned verbs_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                               uint64_t now_tsc)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    (void)now_tsc;
    if (v->recover_pending) {
        v->recover_pending = false;
        qp_recover(v);
    }
    if (v->n_held) { /* the last burst's buffers are free again: one post */
        for (unsigned i = 0; i < v->n_held; i++)
            v->rx_wr[v->held[i]].next = i + 1 < v->n_held ? &v->rx_wr[v->held[i + 1]] : NULL;
        struct ibv_recv_wr *bad;
        if (ibv_post_recv(v->qp, &v->rx_wr[v->held[0]], &bad))
            v->stats.post_errors++;
        for (unsigned i = 0; i < v->n_held; i++)
            v->rx_wr[v->held[i]].next = NULL;
        v->n_held = 0;
    }
    if (max > RX_BURST_MAX)
        max = RX_BURST_MAX;
    int n = ibv_poll_cq(v->recv_cq, (int)max, v->rx_wc);
    if (n <= 0)
        return 0;
    unsigned out = 0;
    bool failed = false;
    for (int i = 0; i < n; i++) {
        const struct ibv_wc *wc = &v->rx_wc[i];
        uint32_t idx = (uint32_t)wc->wr_id;
        v->held[v->n_held++] = idx;
        if (wc->status != IBV_WC_SUCCESS) {
            v->stats.rx_errors++;
            v->stats.last_rx_error_status = wc->status;
            if (wc->status == IBV_WC_LOC_LEN_ERR)
                v->stats.rx_too_long++;
            failed = true;
            continue;
        }
        const uint8_t *buf = v->rx_bufs + (size_t)idx * v->rx_buf_size;
        if (wc->byte_len < GRH_BYTES) {
            v->stats.rx_errors++;
            continue;
        }
        pkts[out].buf = buf + GRH_BYTES;
        pkts[out].len = wc->byte_len - GRH_BYTES;
        wc_src_id(v, wc, buf, pkts[out].src_id);
        out++;
    }
    /* A receive error (a datagram longer than the buffer, on most
     * devices) takes the QP to the error state, which flushes every
     * posted buffer: reset it and re-arm. What was read stays valid: the
     * ring is reposted, not overwritten, until the next burst. */
    if (__builtin_expect(failed, 0) && qp_in_error(v)) {
        if (out == 0) {
            qp_recover(v);
        } else {
            v->recover_pending = true;
        }
    }
    return out;
}

/* Reaps send completions; a completion retires every WR up to it. */
static void tx_reap(struct verbs_transport *v)
{
    struct ibv_wc wc[16];
    int n;
    while ((n = ibv_poll_cq(v->send_cq, 16, wc)) > 0) {
        for (int i = 0; i < n; i++) {
            if (wc[i].status != IBV_WC_SUCCESS) {
                v->stats.tx_errors++;
                if (qp_in_error(v)) {
                    qp_recover(v);
                    return;
                }
            }
            if (wc[i].wr_id + 1 > v->tx_done)
                v->tx_done = wc[i].wr_id + 1;
        }
    }
}

/* Reaps until every WR before index `until` is retired. A QP that went
 * to the error state may never complete them: it is checked now and then,
 * and recovery retires everything. */
static void tx_wait(struct verbs_transport *v, uint64_t until)
{
    tx_reap(v);
    for (unsigned polls = 1; v->tx_done < until; polls++) {
        tx_reap(v);
        if ((polls & 0xFFFF) == 0 && qp_in_error(v))
            qp_recover(v);
    }
}

static unsigned verbs_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                               uint64_t now_tsc)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    (void)now_tsc;
    if (n > TX_BURST_MAX)
        n = TX_BURST_MAX;
    /* Room in the send queue (one WR in TX_SIGNAL_EVERY is signalled, so a
     * full queue always has a completion coming). */
    if (v->tx_posted - v->tx_done + n > TX_RING - 1)
        tx_wait(v, v->tx_posted + n - (TX_RING - 1));
    const unsigned taken = n; /* dropped by fault injection or not: taken */
    if (unlikely(udrpc__tp_faults_on(&v->faults))) { /* tests */
        if (n > TX_BURST_MAX / 2)
            n = TX_BURST_MAX / 2;
        n = udrpc__tp_faults_apply(&v->faults, pkts, n, v->faulted);
        pkts = v->faulted;
    }
    unsigned k = 0;
    bool gather = false;
    for (unsigned i = 0; i < n; i++) {
        const struct tp_tx_pkt *p = &pkts[i];
        const struct verbs_peer *vp = (const struct verbs_peer *)p->peer->tx;
        struct ibv_send_wr *wr = &v->tx_wr[k];
        struct ibv_sge *sge = v->tx_sge[k];
        uint32_t len = TP_HDR_SIZE + p->data_len;
        memset(wr, 0, sizeof(*wr));
        wr->wr_id = v->tx_posted + k;
        wr->opcode = IBV_WR_SEND;
        wr->sg_list = sge;
        wr->wr.ud.ah = vp->ah;
        wr->wr.ud.remote_qpn = vp->qpn;
        wr->wr.ud.remote_qkey = vp->qkey;
        sge[0].addr = (uintptr_t)p->hdr;
        sge[0].lkey = p->lkey;
        if (p->data_len && (const uint8_t *)p->hdr + TP_HDR_SIZE == (const uint8_t *)p->data) {
            sge[0].length = len; /* header room right before the data */
            wr->num_sge = 1;
        } else {
            sge[0].length = TP_HDR_SIZE;
            wr->num_sge = 1;
            if (p->data_len) {
                sge[1].addr = (uintptr_t)p->data;
                sge[1].length = p->data_len;
                sge[1].lkey = p->lkey;
                wr->num_sge = 2;
            }
        }
        if (len <= v->max_inline) {
            wr->send_flags = IBV_SEND_INLINE; /* copied at post: no buffer held */
        } else {
            gather = true;
            v->gather_posted = wr->wr_id + 1;
        }
        if ((wr->wr_id % TX_SIGNAL_EVERY) == TX_SIGNAL_EVERY - 1)
            wr->send_flags |= IBV_SEND_SIGNALED;
        if (k)
            v->tx_wr[k - 1].next = wr;
        k++;
    }
    if (k == 0)
        return taken;
    if (gather)
        v->tx_wr[k - 1].send_flags |= IBV_SEND_SIGNALED; /* tx_flush waits for it */
    struct ibv_send_wr *bad;
    if (ibv_post_send(v->qp, &v->tx_wr[0], &bad)) {
        /* The WRs before bad were posted; the rest are lost (the protocol
         * retransmits). A QP in error is re-armed. */
        unsigned posted = (unsigned)(bad - v->tx_wr);
        v->stats.post_errors++;
        v->tx_posted += posted;
        if (qp_in_error(v))
            qp_recover(v);
        return taken;
    }
    v->tx_posted += k;
    v->stats.sent += k;
    return taken;
}

/* No send may still read a buffer: wait for the last gather WR. */
static void verbs_tx_flush(struct transport *tp)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    tx_wait(v, v->gather_posted);
}

int udrpc__verbs_objs_init(struct verbs_pd_objs *o)
{
    pthread_mutex_init(&o->mr_lock, NULL);
    return udrpc__hash_init(&o->ah_table, 64);
}

struct ibv_ah *udrpc__verbs_objs_ah(struct verbs_pd_objs *o, const uint8_t gid[16], uint16_t lid)
{
    uint64_t key = udrpc__hash_bytes(gid, 16) ^ lid;
    uint64_t idx;
    if (udrpc__hash_get(&o->ah_table, key, &idx) && memcmp(o->ahs[idx].gid.raw, gid, 16) == 0 &&
        o->ahs[idx].lid == lid)
        return o->ahs[idx].ah;
    struct ibv_ah_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.dlid = lid;
    attr.port_num = o->port;
    attr.is_global = 1;
    memcpy(attr.grh.dgid.raw, gid, 16);
    attr.grh.sgid_index = (uint8_t)o->gid_index;
    attr.grh.hop_limit = 64;
    struct ibv_ah *ah = ibv_create_ah(o->pd, &attr);
    if (!ah)
        return NULL;
    if (o->n_ahs == o->cap_ahs) {
        unsigned cap = o->cap_ahs ? o->cap_ahs * 2 : 16;
        struct verbs_ah_entry *n = realloc(o->ahs, cap * sizeof(*n));
        if (!n) {
            ibv_destroy_ah(ah);
            return NULL;
        }
        o->ahs = n;
        o->cap_ahs = cap;
    }
    struct verbs_ah_entry *e = &o->ahs[o->n_ahs];
    memcpy(e->gid.raw, gid, 16);
    e->lid = lid;
    e->ah = ah;
    if (udrpc__hash_put(&o->ah_table, key, o->n_ahs) != 0) {
        ibv_destroy_ah(ah);
        return NULL;
    }
    o->n_ahs++;
    return ah;
}

int udrpc__verbs_objs_reg(struct verbs_pd_objs *o, void *base, size_t len, uint32_t *lkey)
{
    int ret = 0;
    pthread_mutex_lock(&o->mr_lock);
    struct ibv_mr *mr = NULL;
    if (o->n_mrs == UDRPC_VERBS_MAX_MRS)
        ret = -ENOMEM;
    else if (!(mr = ibv_reg_mr(o->pd, base, len, IBV_ACCESS_LOCAL_WRITE)))
        ret = errno ? -errno : -ENOMEM;
    else
        o->mrs[o->n_mrs++] = mr;
    pthread_mutex_unlock(&o->mr_lock);
    if (mr)
        *lkey = mr->lkey;
    return ret;
}

void udrpc__verbs_objs_fini(struct verbs_pd_objs *o)
{
    for (unsigned i = 0; i < o->n_ahs; i++)
        ibv_destroy_ah(o->ahs[i].ah);
    free(o->ahs);
    o->ahs = NULL;
    o->n_ahs = 0;
    udrpc__hash_fini(&o->ah_table);
    for (unsigned i = 0; i < o->n_mrs; i++)
        ibv_dereg_mr(o->mrs[i]);
    o->n_mrs = 0;
    pthread_mutex_destroy(&o->mr_lock);
}

static int verbs_make_peer(struct transport *tp, const struct tp_route *r, struct tp_peer *peer)
{
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
        verbs_src_id(gid.raw, qpn, peer->src_id);
    } else {
        union ibv_gid lg = { .raw = { 0 } };
        lg.raw[14] = (uint8_t)(lid >> 8);
        lg.raw[15] = (uint8_t)lid;
        verbs_src_id(lg.raw, qpn, peer->src_id);
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
    .rx_burst = verbs_rx_burst,
    .tx_burst = verbs_tx_burst,
    .tx_flush = verbs_tx_flush,
    .make_peer = verbs_make_peer,
    .reg_mem = verbs_reg_mem,
    .destroy = verbs_destroy,
};

unsigned udrpc__verbs_mtu_bytes(int m)
{
    return m == IBV_MTU_256 ? 256 : m == IBV_MTU_512 ? 512 : m == IBV_MTU_1024 ? 1024
         : m == IBV_MTU_2048 ? 2048 : 4096;
}

/* The port's RoCE v2 IPv4-mapped GID (::ffff:a.b.c.d), or -1. */
int udrpc__verbs_find_ipv4_gid(struct ibv_context *ctx, uint8_t port, int table_len)
{
    for (int i = 0; i < table_len; i++) {
        union ibv_gid g;
        if (ibv_query_gid(ctx, port, i, &g))
            continue;
        static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(g.raw, prefix, 12) != 0)
            continue;
        struct ibv_gid_entry e;
        if (ibv_query_gid_ex(ctx, port, (uint32_t)i, &e, 0) == 0 &&
            e.gid_type != IBV_GID_TYPE_ROCE_V2)
            continue;
        return i;
    }
    return -1;
}

/* Opens the device named dev (NULL: the first with an active port that
 * want accepts; want NULL: any). */
int udrpc__verbs_open_device(const char *dev, bool (*want)(struct ibv_device *),
                             struct ibv_context **out, uint8_t *port_out)
{
    int n;
    struct ibv_device **list = ibv_get_device_list(&n);
    if (!list)
        return -ENODEV;
    int ret = -ENODEV;
    for (int i = 0; i < n && ret != 0; i++) {
        if (dev && *dev && strcmp(ibv_get_device_name(list[i]), dev) != 0)
            continue;
        if (want && !want(list[i]))
            continue;
        struct ibv_context *ctx = ibv_open_device(list[i]);
        if (!ctx)
            continue;
        struct ibv_device_attr da;
        if (ibv_query_device(ctx, &da) == 0) {
            for (uint8_t p = 1; p <= da.phys_port_cnt; p++) {
                struct ibv_port_attr pa;
                if (ibv_query_port(ctx, p, &pa) == 0 && pa.state == IBV_PORT_ACTIVE) {
                    *out = ctx;
                    *port_out = p;
                    ret = 0;
                    break;
                }
            }
        }
        if (ret != 0)
            ibv_close_device(ctx);
    }
    ibv_free_device_list(list);
    return ret;
}

bool udrpc__verbs_available(const char *dev)
{
    struct ibv_context *ctx;
    uint8_t port;
    if (udrpc__verbs_open_device(dev, NULL, &ctx, &port) != 0)
        return false;
    ibv_close_device(ctx);
    return true;
}

int udrpc__verbs_create(const udrpc_config_t *cfg, const struct tp_params *p,
                        struct transport **out)
{
    (void)p;
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
    v->gid_index = cfg->gid_index >= 0 ? cfg->gid_index
                                        : udrpc__verbs_find_ipv4_gid(v->ctx, v->port, pa.gid_tbl_len);
    if (v->gid_index < 0)
        v->gid_index = 0;
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
    if ((ret = rx_post_all(v)) != 0)
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
    verbs_tx_flush(tp);
    return 0;
}

void udrpc__verbs_break_qp(struct transport *tp)
{
    struct verbs_transport *v = (struct verbs_transport *)tp;
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
    ibv_modify_qp(v->qp, &a, IBV_QP_STATE);
}
