/* verbs.h — the ibverbs transport's entry points and test controls (see
 * verbs.c). Built only where rdma-core's headers are (UDRPC_HAVE_VERBS).
 * The device set-up it shares with mlx5: verbs_dev.h. */
#ifndef UDRPC_TRANSPORT_VERBS_H
#define UDRPC_TRANSPORT_VERBS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "transport.h"
#include "verbs_dev.h"

struct udrpc_verbs_stats {
    uint64_t sent, dropped, duplicated; /* by fault injection (cfg.faults) */
    uint64_t tx_errors, rx_errors;/* completions with an error status */
    uint64_t rx_too_long;         /* of which: longer than the buffer */
    uint64_t post_errors, qp_resets;
    int last_rx_error_status;     /* enum ibv_wc_status */
};

/* src_id of a peer: the GID's low 8 bytes, and its QPN with 32 bits of a
 * hash of the high 8 (zero for IPv4-mapped GIDs) above it, under the
 * transport's tag. */
static inline void verbs_src_id(const uint8_t gid[16], uint32_t qpn, uint64_t tag,
                                uint64_t src_id[2])
{
    uint64_t lo, hi;
    memcpy(&hi, gid, 8);
    memcpy(&lo, gid + 8, 8);
    src_id[0] = lo;
    src_id[1] = (uint64_t)qpn | (hi ? ((hi * 0x9E3779B97F4A7C15ull) >> 32) << 24 : 0) | tag;
}

int udrpc__verbs_create(const udrpc_config_t *cfg, const struct tp_params *p,
                        struct transport **out);

void udrpc__verbs_get_stats(struct transport *tp, struct udrpc_verbs_stats *out);
/* Tests: sends len bytes of junk to peer with Q_Key qkey (0: the peer's). */
int udrpc__verbs_send_raw(struct transport *tp, const struct tp_peer *peer, uint32_t len,
                          uint32_t qkey);
/* Tests: moves the QP to the error state, as a fatal completion would. */
void udrpc__verbs_break_qp(struct transport *tp);

#endif
