/* loop.h — test controls of the in-process loop transport (see loop.c). */
#ifndef UDRPC_TRANSPORT_LOOP_H
#define UDRPC_TRANSPORT_LOOP_H

#include <stdint.h>

#include "transport.h"

struct udrpc_loop_stats {
    uint64_t sent, dropped, duplicated, reordered, corrupted, delayed, overflow;
    uint64_t fcs_dropped; /* corrupted frames the receiving end refused */
};

/* Drops every packet this endpoint sends for the next ms milliseconds. */
void udrpc__loop_partition(struct transport *tp, unsigned ms);
void udrpc__loop_get_stats(struct transport *tp, struct udrpc_loop_stats *out);

#endif
