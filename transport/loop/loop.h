/* loop.h — the in-process loop transport (loop.c): its registry row's
 * constructor, and the controls tests use. */
#ifndef UDRPC_TRANSPORT_LOOP_H
#define UDRPC_TRANSPORT_LOOP_H

#include <stdint.h>

#include "transport.h"

int udrpc__loop_create(const udrpc_config_t *cfg, const struct tp_params *p,
                       struct transport **out);

struct udrpc_loop_stats {
    uint64_t sent, dropped, duplicated, reordered, corrupted, delayed, overflow;
    uint64_t fcs_dropped; /* corrupted frames the receiving end refused */
    /* the link model (receiving end): packets and bytes through it, tail
     * drops, the deepest queue a packet found */
    uint64_t link_pkts, link_bytes, link_dropped, link_max_backlog_bytes;
};

/* Drops every packet this endpoint sends for the next ms milliseconds. */
void udrpc__loop_partition(struct transport *tp, unsigned ms);
void udrpc__loop_get_stats(struct transport *tp, struct udrpc_loop_stats *out);
/* The link model: zero its counters; the queueing delay (us) below which
 * fraction p of the packets since then waited (-1: none yet). */
void udrpc__loop_link_reset(struct transport *tp);
double udrpc__loop_link_qdelay_us(struct transport *tp, double p);

#endif
