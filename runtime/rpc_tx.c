/*
 * rpc_tx.c — the TX batch: packets queued as the datapath decides to send
 * them (data packets gathered from the msgbuf, header-only CRs and RFRs
 * from a ring of headers), flushed to the transport in one burst per event
 * loop iteration (or when full). Part of datapath.c.
 */
#include "rpc_dp.h"

/* An endpoint with several transports: each its own packets of the batch,
 * in order. */
static __attribute__((noinline)) void tx_flush_each(struct udrpc *rpc)
{
    struct tp_tx_pkt mine[UDRPC_TX_BATCH];
    unsigned first = rpc->tx[0].peer->tpi, same = 1;
    while (same < rpc->tx_n && rpc->tx[same].peer->tpi == first)
        same++;
    if (same == rpc->tx_n) { /* all for one transport (auto: shm, or the network): as is */
        struct transport *tp = rpc->tps[first];
        unsigned sent = tp->ops->tx_burst(tp, rpc->tx, rpc->tx_n, rpc->now_tsc);
        rpc->stats.pkts_tx += sent;
        rpc->stats.drops[UDRPC_DROP_TX_FULL] += rpc->tx_n - sent;
        tp->ops->tx_flush(tp);
        return;
    }
    for (unsigned t = 0; t < rpc->n_tps; t++) {
        unsigned k = 0;
        for (unsigned i = 0; i < rpc->tx_n; i++)
            if (rpc->tx[i].peer->tpi == t)
                mine[k++] = rpc->tx[i];
        if (k == 0)
            continue;
        struct transport *tp = rpc->tps[t];
        unsigned sent = tp->ops->tx_burst(tp, mine, k, rpc->now_tsc);
        rpc->stats.pkts_tx += sent;
        rpc->stats.drops[UDRPC_DROP_TX_FULL] += k - sent; /* retransmission recovers */
        tp->ops->tx_flush(tp);
    }
}

void udrpc__tx_flush(struct udrpc *rpc)
{
    unsigned n = rpc->tx_n;
    if (n == 0)
        return;
    if (likely(rpc->n_tps == 1)) {
        unsigned sent = rpc->tp_ops->tx_burst(rpc->tp, rpc->tx, n, rpc->now_tsc);
        rpc->stats.pkts_tx += sent;
        rpc->stats.drops[UDRPC_DROP_TX_FULL] += n - sent; /* retransmission recovers */
        rpc->tp_ops->tx_flush(rpc->tp);
    } else {
        tx_flush_each(rpc);
    }
    rpc->tx_n = 0;
    rpc->tx_gen++;
}

/* A header-only packet (CR, RFR) from the control header ring. The ring
 * is longer than a TX batch, so a header is never reused before the batch
 * holding it has been flushed. */
static void tx_ctrl(struct udrpc *rpc, const struct session *s, uint8_t req_type,
                    uint32_t msg_size, enum pkt_type type, uint16_t pkt_num,
                    uint64_t req_num)
{
    uint8_t *h = rpc->ctrl_hdrs + UDRPC_HDR_SIZE * (rpc->ctrl_hdr_idx++ % UDRPC_CTRL_HDRS);
    struct pkthdr ph;
    pkthdr_pack(&ph, req_type, msg_size, s->remote_num, type, WIRE_OK, pkt_num, req_num);
    memcpy(h, &ph, sizeof(ph));
    tx_queue(rpc, s, h, NULL, 0, rpc->ctrl_lkey);
}

/* Data packet pkt of message mb (header written into mb's header room). */
static void tx_data(struct udrpc *rpc, const struct session *s,
                    const udrpc_msgbuf_t *mb, uint8_t req_type, uint32_t msg_size,
                    enum pkt_type type, uint8_t status, uint32_t pkt, uint64_t req_num)
{
    struct pkthdr ph;
    pkthdr_pack(&ph, req_type, msg_size, s->remote_num, type, status,
                (uint16_t)pkt, req_num);
    uint8_t *h = msgbuf_hdr(mb, pkt);
    memcpy(h, &ph, sizeof(ph));
    tx_queue(rpc, s, h, mb->buf + (size_t)pkt * rpc->dpp,
             (uint32_t)pkt_len(msg_size, rpc->dpp, pkt), msgbuf_lkey(mb));
}
