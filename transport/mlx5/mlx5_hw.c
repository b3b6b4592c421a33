/*
 * mlx5_hw.c — the device under the mlx5 fast path on real hardware: a
 * ConnectX port opened through libibverbs (the verbs transport's set-up),
 * a UD QP made with mlx5dv_create_qp (scatter-to-CQE off: the receive CQ
 * poll reads data from the buffers only), its CQs, and then
 * mlx5dv_init_obj for the QP's queues, doorbell record and BlueFlame
 * register and the CQs' buffers and doorbell records, and for each
 * address handle's address vector.
 *
 * Each transport opens its own device context, so its QP's BlueFlame
 * register is not shared with another thread's (rdma-core's provider
 * would take a lock around it; we take none).
 *
 * Not yet run on a ConnectX NIC: none is reachable from here. The queue
 * logic above it has been run against test/nicmodel/ only; see
 * test/hw/mlx5-smoke.sh for the first run on hardware.
 */
#include <errno.h>
#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>
#include <stdlib.h>
#include <string.h>

#include "mlx5.h"
#include "verbs_dev.h"

struct mlx5_hw {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *scq, *rcq;
    struct ibv_qp *qp;
    uint8_t port;
    int gid_index;
    uint32_t qkey;
    struct verbs_pd_objs objs; /* registrations and address handles, as verbs' */
};

static bool is_mlx5(struct ibv_device *d)
{
    return mlx5dv_is_supported(d);
}

bool udrpc__mlx5_available(const char *dev)
{
    struct ibv_context *ctx;
    uint8_t port;
    if (udrpc__verbs_open_device(dev, is_mlx5, &ctx, &port) != 0)
        return false;
    ibv_close_device(ctx);
    return true;
}

static void hw_close(void *nic)
{
    struct mlx5_hw *h = nic;
    if (h->qp)
        ibv_destroy_qp(h->qp);
    if (h->scq)
        ibv_destroy_cq(h->scq);
    if (h->rcq)
        ibv_destroy_cq(h->rcq);
    udrpc__verbs_objs_fini(&h->objs);
    if (h->pd)
        ibv_dealloc_pd(h->pd);
    if (h->ctx)
        ibv_close_device(h->ctx);
    free(h);
}

static int cq_mem(struct ibv_cq *cq, struct mlx5_cqe64 **buf, uint32_t *cqes, __be32 **dbrec)
{
    struct mlx5dv_cq dv;
    struct mlx5dv_obj obj = { .cq = { .in = cq, .out = &dv } };
    if (mlx5dv_init_obj(&obj, MLX5DV_OBJ_CQ))
        return -ENOTSUP;
    if (dv.cqe_size != sizeof(struct mlx5_cqe64)) /* MLX5_CQE_SIZE=128 in the environment */
        return -ENOTSUP;
    *buf = dv.buf;
    *cqes = dv.cqe_cnt;
    *dbrec = dv.dbrec;
    return 0;
}

static int hw_open(const udrpc_config_t *cfg, const union tp_addr *nexus, uint32_t qkey,
                   unsigned sq_wqes, unsigned rq_wqes, unsigned want_inline,
                   struct mlx5_qp_mem *mem, void **nicp)
{
    struct mlx5_hw *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    int ret = udrpc__verbs_objs_init(&h->objs);
    if (ret) {
        free(h);
        return ret;
    }
    h->qkey = qkey;
    if ((ret = udrpc__verbs_open_device(cfg->device, is_mlx5, &h->ctx, &h->port)) != 0)
        goto fail;
    struct ibv_port_attr pa;
    if (ibv_query_port(h->ctx, h->port, &pa)) {
        ret = -errno;
        goto fail;
    }
    h->gid_index = cfg->gid_index >= 0
                       ? cfg->gid_index
                       : udrpc__verbs_find_gid(h->ctx, h->port, pa.gid_tbl_len, nexus);
    union ibv_gid gid;
    if (ibv_query_gid(h->ctx, h->port, h->gid_index, &gid)) {
        ret = -EINVAL;
        goto fail;
    }
    /* A send CQ with room for a CQE per WQE that may ask for one. */
    if (!(h->pd = ibv_alloc_pd(h->ctx)) ||
        !(h->scq = ibv_create_cq(h->ctx, (int)(sq_wqes * 8), NULL, NULL, 0)) ||
        !(h->rcq = ibv_create_cq(h->ctx, (int)rq_wqes, NULL, NULL, 0))) {
        ret = errno ? -errno : -ENOMEM;
        goto fail;
    }
    h->objs.pd = h->pd;
    h->objs.port = h->port;
    h->objs.gid_index = h->gid_index;
    struct ibv_qp_init_attr_ex qa;
    memset(&qa, 0, sizeof(qa));
    qa.qp_type = IBV_QPT_UD;
    qa.send_cq = h->scq;
    qa.recv_cq = h->rcq;
    qa.sq_sig_all = 0;
    qa.cap.max_send_wr = sq_wqes;
    qa.cap.max_recv_wr = rq_wqes;
    qa.cap.max_send_sge = 2;
    qa.cap.max_recv_sge = 1;
    qa.comp_mask = IBV_QP_INIT_ATTR_PD;
    qa.pd = h->pd;
    /* Scatter-to-CQE off, so received bytes are always in the buffer;
     * older kernels refuse the flag (the receive path then copies
     * scattered data back: mlx5_cq.c, rx_slow). A device with a smaller
     * inline limit gets a smaller request, down to none. */
    struct mlx5dv_qp_init_attr dqa;
    for (unsigned inl = want_inline;; inl /= 2) {
        qa.cap.max_inline_data = inl;
        for (int flags = 1; flags >= 0 && !h->qp; flags--) {
            memset(&dqa, 0, sizeof(dqa));
            if (flags) {
                dqa.comp_mask = MLX5DV_QP_INIT_ATTR_MASK_QP_CREATE_FLAGS;
                dqa.create_flags = MLX5DV_QP_CREATE_DISABLE_SCATTER_TO_CQE;
            }
            h->qp = mlx5dv_create_qp(h->ctx, &qa, &dqa);
        }
        if (h->qp)
            break;
        if (inl == 0) {
            ret = errno ? -errno : -ENOMEM;
            goto fail;
        }
        if (inl < 32)
            inl = 1; /* next: 0 */
    }
    struct mlx5dv_qp dq;
    memset(&dq, 0, sizeof(dq));
    struct mlx5dv_obj obj = { .qp = { .in = h->qp, .out = &dq } };
    if (mlx5dv_init_obj(&obj, MLX5DV_OBJ_QP) || dq.sq.stride != MLX5_SEND_WQE_BB) {
        ret = -ENOTSUP;
        goto fail;
    }
    if ((ret = cq_mem(h->scq, &mem->scq, &mem->scq_cqes, &mem->scq_dbrec)) != 0 ||
        (ret = cq_mem(h->rcq, &mem->rcq, &mem->rcq_cqes, &mem->rcq_dbrec)) != 0)
        goto fail;
    if ((ret = udrpc__verbs_qp_arm(h->qp, h->port, qkey)) != 0)
        goto fail;
    mem->sq_buf = dq.sq.buf;
    mem->sq_bbs = dq.sq.wqe_cnt;
    mem->rq_buf = dq.rq.buf;
    mem->rq_wqes = dq.rq.wqe_cnt;
    mem->rq_stride = dq.rq.stride;
    mem->qp_dbrec = dq.dbrec;
    mem->bf_reg = dq.bf.reg;
    mem->bf_size = dq.bf.size;
    mem->qpn = h->qp->qp_num;
    mem->max_inline = qa.cap.max_inline_data;
    mem->mtu = udrpc__verbs_mtu_bytes(pa.active_mtu);
    memcpy(mem->gid, gid.raw, 16);
    mem->lid = pa.lid;
    static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    mem->gid_is_ipv4 = memcmp(gid.raw, v4, 12) == 0;
    *nicp = h;
    return 0;
fail:
    hw_close(h);
    return ret;
}

static int hw_reg_mem(void *nic, void *base, size_t len, uint32_t *lkey)
{
    return udrpc__verbs_objs_reg(&((struct mlx5_hw *)nic)->objs, base, len, lkey);
}

/* The address handle of the remote port (one per port, cached as the
 * verbs transport's), and the AV mlx5dv reads out of it for the peer's
 * datagram segment. Once per session, off the datapath. */
static int hw_make_av(void *nic, const uint8_t gid[16], uint16_t lid, struct mlx5_wqe_av *av)
{
    struct mlx5_hw *h = nic;
    struct ibv_ah *ah = udrpc__verbs_objs_ah(&h->objs, gid, lid);
    if (!ah)
        return -EHOSTUNREACH;
    struct mlx5dv_ah dah;
    struct mlx5dv_obj obj = { .ah = { .in = ah, .out = &dah } };
    if (mlx5dv_init_obj(&obj, MLX5DV_OBJ_AH))
        return -ENOTSUP;
    *av = *dah.av;
    return 0;
}

/* The provider zeroes its indices and doorbell record on the way through
 * RESET, as our datapath does its own. */
static int hw_reset(void *nic)
{
    struct mlx5_hw *h = nic;
    return udrpc__verbs_qp_arm(h->qp, h->port, h->qkey);
}

const struct mlx5_nic_ops udrpc__mlx5_hw_ops = {
    .name = "hw",
    .open = hw_open,
    .reg_mem = hw_reg_mem,
    .make_av = hw_make_av,
    .reset = hw_reset,
    .close = hw_close,
};
