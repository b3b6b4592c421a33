/*
 * rpc_dp.h — what the datapath's files share (runtime/datapath.c compiles
 * them as one unit): the drop macro, the TX batch's inline helpers, and
 * the static functions one file calls in another. Included only there.
 */
#ifndef UDRPC_RUNTIME_RPC_DP_H
#define UDRPC_RUNTIME_RPC_DP_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_internal.h"

/* The per-packet receive functions: compiled into both copies of the
 * receive path (rpc_rx.c), each with its own constant reference, never
 * called out of line (GCC would share one copy between the two and keep
 * every check: about +40 instructions per RPC each side). */
#define DP_INLINE static inline __attribute__((always_inline))

/* Counts the drop; a trace line (compiled out below UDRPC_LOG_MIN_LEVEL
 * trace, and rate-limited: a remote sender chooses what we drop). */
#define DROP(rpc, reason)                                                     \
    do {                                                                      \
        (rpc)->stats.drops[UDRPC_DROP_##reason]++;                            \
        UDRPC_LOG_LIMITED(UDRPC_LVL_TRACE, rpc, -1, "dropped a packet: %s",         \
                          udrpc_drop_reason_str(UDRPC_DROP_##reason));        \
        return;                                                               \
    } while (0)

/* Expected payload bytes of packet pkt of a msg_size-byte message. */
static inline size_t pkt_len(size_t msg_size, size_t dpp, uint32_t pkt)
{
    size_t off = (size_t)pkt * dpp;
    return msg_size - off < dpp ? msg_size - off : dpp;
}

static inline void tx_queue(struct udrpc *rpc, const struct session *s,
                            const void *hdr, const void *data, uint32_t len,
                            uint32_t lkey)
{
    if (unlikely(rpc->tx_n == UDRPC_TX_BATCH))
        udrpc__tx_flush(rpc);
    struct tp_tx_pkt *t = &rpc->tx[rpc->tx_n++];
    t->peer = &s->peer;
    t->hdr = hdr;
    t->data = data;
    t->data_len = len;
    t->lkey = lkey;
}

/* After a payload sent by reference was copied: false if its sender has
 * voided its references since (udrpc__void_refs: it may have taken the
 * buffer back), so that the copy may hold bytes of a later use. */
static inline bool rx_ref_intact(const struct tp_rx_ref *r)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(r->epoch_word, memory_order_relaxed) == r->epoch;
}

/* rpc_tx.c */
static void tx_ctrl(struct udrpc *rpc, const struct session *s, uint8_t req_type,
                    uint32_t msg_size, enum pkt_type type, uint16_t pkt_num,
                    uint64_t req_num);
static void tx_data(struct udrpc *rpc, const struct session *s,
                    const udrpc_msgbuf_t *mb, uint8_t req_type, uint32_t msg_size,
                    enum pkt_type type, uint8_t status, uint32_t pkt, uint64_t req_num);
/* rpc_client.c */
static void client_pump(struct udrpc *rpc, struct cslot *c);
/* A request's deadline passed: in a slot, or still queued (rpc_client.c). */
static void client_deadline(struct udrpc *rpc, struct cslot *c);
static void queued_end(struct udrpc *rpc, struct queued_req *q, int status);
DP_INLINE void client_rx_cr(struct udrpc *rpc, struct session *s,
                            const struct pkthdr_fields *f, size_t len);
DP_INLINE void client_rx_resp(struct udrpc *rpc, struct session *s,
                              const struct pkthdr_fields *f, const uint8_t *data,
                              size_t len, const struct tp_rx_ref *ref);
/* rpc_pkt_loss.c */
static inline void rtt_sample(struct udrpc *rpc, struct session *s, uint64_t sent_tsc);
static void rto_was_needless(struct udrpc *rpc, struct session *s);
static void client_gap_signal(struct udrpc *rpc, struct cslot *c);
/* rpc_server.c */
DP_INLINE void server_rx_req(struct udrpc *rpc, struct session *s,
                             const struct pkthdr_fields *f, const uint8_t *data,
                             size_t len, const struct tp_rx_ref *ref);
DP_INLINE void server_rx_rfr(struct udrpc *rpc, struct session *s,
                             const struct pkthdr_fields *f, size_t len);

#endif
