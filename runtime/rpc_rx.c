/*
 * rpc_rx.c — every received packet checked field by field before use
 * (header, session, source, sizes, type for the session's role), then
 * handed to the client or the server side. A bad one is counted in
 * stats.drops[reason] and dropped, never trusted. Part of datapath.c.
 */
#include "rpc_dp.h"

/* ref: p->ref, passed apart so that the common case (NULL, a constant)
 * compiles without any of the by-reference checks. */
static inline __attribute__((always_inline)) void
process_pkt(struct udrpc *rpc, const struct tp_rx_pkt *p, const struct tp_rx_ref *ref)
{
    struct pkthdr_fields f;
    if (UDRPC_BENCH_SLOWDOWN) {
        volatile uint32_t waste = 0;
        for (uint32_t i = UDRPC_BENCH_SLOWDOWN; i > 0; i--)
            waste += i;
        (void)waste;
    }
    if (unlikely(p->len < UDRPC_HDR_SIZE))
        DROP(rpc, SHORT);
    if (unlikely(pkthdr_unpack(p->buf, &f) != 0))
        DROP(rpc, MAGIC);
    if (unlikely(f.dest_session >= rpc->max_sessions))
        DROP(rpc, BAD_SESSION);
    struct session *s = rpc->sessions[f.dest_session];
    if (unlikely(!s))
        DROP(rpc, BAD_SESSION);
    if (unlikely(s->state != SS_CONNECTED))
        DROP(rpc, NOT_CONNECTED);
    if (unlikely(p->src_id[0] != s->peer.src_id[0] || p->src_id[1] != s->peer.src_id[1]))
        DROP(rpc, BAD_SOURCE);
    s->last_rx_tsc = rpc->now_tsc; /* the peer is alive (liveness) */
    if (unlikely(f.msg_size > rpc->max_msg_size))
        DROP(rpc, MSG_SIZE);
    if (unlikely(f.status != WIRE_OK && (f.pkt_type != PKT_RESP || f.status >= WIRE_STATUS_MAX)))
        DROP(rpc, MAGIC);
    const uint8_t *data = ref ? ref->data : p->buf + UDRPC_HDR_SIZE;
    size_t len = p->len - UDRPC_HDR_SIZE;
    switch (f.pkt_type) {
    case PKT_REQ:
        if (unlikely(s->is_client))
            DROP(rpc, BAD_TYPE);
        server_rx_req(rpc, s, &f, data, len, ref);
        return;
    case PKT_RFR:
        if (unlikely(s->is_client))
            DROP(rpc, BAD_TYPE);
        server_rx_rfr(rpc, s, &f, len);
        return;
    case PKT_RESP:
        if (unlikely(!s->is_client))
            DROP(rpc, BAD_TYPE);
        client_rx_resp(rpc, s, &f, data, len, ref);
        return;
    default: /* PKT_CR */
        if (unlikely(!s->is_client))
            DROP(rpc, BAD_TYPE);
        client_rx_cr(rpc, s, &f, len);
        return;
    }
}

void udrpc__process_rx(struct udrpc *rpc, const struct tp_rx_pkt *pkts, unsigned n)
{
    rpc->stats.pkts_rx += n;
    for (unsigned i = 0; i < n; i++)
        process_pkt(rpc, &pkts[i], NULL);
}

void udrpc__process_rx_refs(struct udrpc *rpc, const struct tp_rx_pkt *pkts, unsigned n)
{
    rpc->stats.pkts_rx += n;
    for (unsigned i = 0; i < n; i++)
        process_pkt(rpc, &pkts[i], pkts[i].ref);
}
