/*
 * verbs_internal.h — what the verbs transport's files share (verbs.c:
 * set-up, peers, recovery; verbs_dp.c: the datapath). Included only in
 * transport/verbs/.
 */
#ifndef UDRPC_TRANSPORT_VERBS_INTERNAL_H
#define UDRPC_TRANSPORT_VERBS_INTERNAL_H

#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

/* verbs.c */
int udrpc__verbs_rx_post_all(struct verbs_transport *v);
void udrpc__verbs_qp_recover(struct verbs_transport *v);
bool udrpc__verbs_qp_in_error(struct verbs_transport *v);
/* verbs_dp.c */
unsigned udrpc__verbs_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                               uint64_t now_tsc);
unsigned udrpc__verbs_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                               uint64_t now_tsc);
void udrpc__verbs_tx_flush(struct transport *tp);

#endif
