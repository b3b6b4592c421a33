/*
 * datapath.c — the datapath, one file per protocol concern (as eRPC's
 * rpc_impl/), compiled here as one translation unit so that the
 * per-packet calls between them inline as they would in one file, without
 * link-time optimisation:
 *
 *   rpc_tx.c        the TX batch: data and control packets
 *   rpc_client.c    requests out: slots, credits, acknowledgements,
 *                   responses, continuations
 *   rpc_pkt_loss.c  RTT samples and the RTO, timeouts, fast retransmit,
 *                   timers, credit stalls
 *   rpc_server.c    requests in: new, reassembled, duplicate; handlers;
 *                   responses
 *   rpc_rx.c        validation of every received packet, and dispatch
 *
 * They share rpc_dp.h. No allocation happens on this path except for
 * multi-packet messages (from the msgbuf allocator's free lists).
 */
#include "rpc_tx.c"
#include "rpc_pkt_loss.c"
#include "rpc_client.c"
#include "rpc_server.c"
#include "rpc_rx.c"
