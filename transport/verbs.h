/* verbs.h — the ibverbs transport's entry points and test controls (see
 * verbs.c). Built only where rdma-core's headers are (UDRPC_HAVE_VERBS). */
#ifndef UDRPC_TRANSPORT_VERBS_H
#define UDRPC_TRANSPORT_VERBS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"
#include "transport.h"

struct udrpc_verbs_stats {
    uint64_t sent, dropped, duplicated; /* by fault injection (cfg.faults) */
    uint64_t tx_errors, rx_errors;/* completions with an error status */
    uint64_t rx_too_long;         /* of which: longer than the buffer */
    uint64_t post_errors, qp_resets;
    int last_rx_error_status;     /* enum ibv_wc_status */
};

/* src_id of a peer: the GID's low 8 bytes, and its QPN with a hash of the
 * high 8 (zero for IPv4-mapped GIDs) above it. */
static inline void verbs_src_id(const uint8_t gid[16], uint32_t qpn, uint64_t src_id[2])
{
    uint64_t lo, hi;
    memcpy(&hi, gid, 8);
    memcpy(&lo, gid + 8, 8);
    src_id[0] = lo;
    src_id[1] = (uint64_t)qpn | (hi ? (hi * 0x9E3779B97F4A7C15ull) << 24 : 0);
}

int udrpc__verbs_create(const udrpc_config_t *cfg, const struct tp_params *p,
                        struct transport **out);

/* Set-up shared with the mlx5 transport (mlx5/mlx5_hw.c). */
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
int udrpc__verbs_find_ipv4_gid(struct ibv_context *ctx, uint8_t port, int table_len);
unsigned udrpc__verbs_mtu_bytes(int ibv_mtu);
int udrpc__verbs_qp_arm(struct ibv_qp *qp, uint8_t port, uint32_t qkey);
/* An RDMA device with an active port is present (dev NULL: any). */
bool udrpc__verbs_available(const char *dev);
void udrpc__verbs_get_stats(struct transport *tp, struct udrpc_verbs_stats *out);
/* Tests: sends len bytes of junk to peer with Q_Key qkey (0: the peer's). */
int udrpc__verbs_send_raw(struct transport *tp, const struct tp_peer *peer, uint32_t len,
                          uint32_t qkey);
/* Tests: moves the QP to the error state, as a fatal completion would. */
void udrpc__verbs_break_qp(struct transport *tp);

#endif
