/* verbs_dev.h — device set-up shared by the verbs and mlx5 transports
 * (verbs_dev.c): built where rdma-core's headers are. */
#ifndef UDRPC_TRANSPORT_VERBS_DEV_H
#define UDRPC_TRANSPORT_VERBS_DEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "hash.h"

struct ibv_ah;
struct ibv_context;
struct ibv_device;
struct ibv_mr;
struct ibv_pd;
struct ibv_qp;

#define UDRPC_VERBS_MAX_MRS 4096

/* What one endpoint keeps in its protection domain: the memory
 * registrations of its allocators' regions (any thread may add one: a BG
 * worker's allocator too) and one address handle per remote (GID, LID),
 * found through the open-addressing table. Off the datapath. */
struct verbs_pd_objs {
    struct ibv_pd *pd;        /* set by the owner once allocated */
    uint8_t port;
    int gid_index;
    pthread_mutex_t mr_lock;
    struct ibv_mr *mrs[UDRPC_VERBS_MAX_MRS];
    unsigned n_mrs;
    struct hash_table ah_table;
    struct verbs_ah_entry *ahs;
    unsigned n_ahs, cap_ahs;
};
int udrpc__verbs_objs_init(struct verbs_pd_objs *o);
/* Registers [base, base + len) for local access: *lkey. */
int udrpc__verbs_objs_reg(struct verbs_pd_objs *o, void *base, size_t len, uint32_t *lkey);
/* The address handle of (gid, lid), made on first use; NULL on failure. */
struct ibv_ah *udrpc__verbs_objs_ah(struct verbs_pd_objs *o, const uint8_t gid[16], uint16_t lid);
/* Destroys the handles and registrations (not the PD). */
void udrpc__verbs_objs_fini(struct verbs_pd_objs *o);
int udrpc__verbs_open_device(const char *dev, bool (*want)(struct ibv_device *),
                             struct ibv_context **out, uint8_t *port_out);
/* The GID index to use where the config names none: the port's RoCE v2
 * GID equal to the Nexus's address (an IPv4 one as ::ffff:a.b.c.d, an
 * IPv6 one as itself: RoCE v2 over IPv6), else the first RoCE v2 GID of
 * the Nexus's family (IPv6: not link-local), else the first RoCE v2
 * IPv4-mapped one, else 0 (InfiniBand, RoCE v1). nexus may be NULL. */
int udrpc__verbs_find_gid(struct ibv_context *ctx, uint8_t port, int table_len,
                          const union tp_addr *nexus);
unsigned udrpc__verbs_mtu_bytes(int ibv_mtu);
int udrpc__verbs_qp_arm(struct ibv_qp *qp, uint8_t port, uint32_t qkey);
/* An RDMA device with an active port is present (dev NULL: any). */
bool udrpc__verbs_available(const char *dev);

#endif
