/*
 * verbs_dev.c — device set-up that the verbs and mlx5 transports share:
 * finding a device with an active port, the port's IPv4 RoCE v2 GID, MTU
 * codes, a UD QP's INIT -> RTR -> RTS, and the objects one endpoint keeps
 * in its protection domain (memory registrations, address handles).
 */
#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "verbs_dev.h"

struct verbs_ah_entry {
    union ibv_gid gid;
    uint16_t lid;
    struct ibv_ah *ah;
};

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

unsigned udrpc__verbs_mtu_bytes(int m)
{
    return m == IBV_MTU_256 ? 256 : m == IBV_MTU_512 ? 512 : m == IBV_MTU_1024 ? 1024
         : m == IBV_MTU_2048 ? 2048 : 4096;
}

int udrpc__verbs_find_gid(struct ibv_context *ctx, uint8_t port, int table_len,
                          const union tp_addr *nexus)
{
    static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint8_t want[16] = { 0 };
    bool exact = nexus && !udrpc__addr_is_any(nexus);
    bool want_v6 = nexus && nexus->sa.sa_family == AF_INET6;
    if (exact && want_v6) {
        memcpy(want, &nexus->v6.sin6_addr, 16);
    } else if (exact) {
        memcpy(want, v4_prefix, 12);
        memcpy(want + 12, &nexus->v4.sin_addr, 4);
    }
    int family_first = -1, v4_first = -1;
    for (int i = 0; i < table_len; i++) {
        union ibv_gid g;
        if (ibv_query_gid(ctx, port, i, &g) || !memcmp(g.raw, (uint8_t[16]){ 0 }, 16))
            continue;
        struct ibv_gid_entry e;
        if (ibv_query_gid_ex(ctx, port, (uint32_t)i, &e, 0) == 0 &&
            e.gid_type != IBV_GID_TYPE_ROCE_V2)
            continue;
        if (exact && !memcmp(g.raw, want, 16))
            return i;
        bool is_v4 = !memcmp(g.raw, v4_prefix, 12);
        if (is_v4 && v4_first < 0)
            v4_first = i;
        if (family_first < 0 && (want_v6 ? !is_v4 && !IN6_IS_ADDR_LINKLOCAL((struct in6_addr *)g.raw)
                                         : is_v4))
            family_first = i;
    }
    return family_first >= 0 ? family_first : v4_first >= 0 ? v4_first : 0;
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
