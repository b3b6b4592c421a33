/*
 * timely.h — Timely, RTT-gradient rate control (Mittal et al., "TIMELY:
 * RTT-based Congestion Control for the Datacenter", SIGCOMM 2015), per
 * client session, as eRPC uses it.
 *
 * Each RTT sample updates the rate:
 *   diff      = rtt - prev_rtt;  avg_diff = (1 - alpha) avg_diff + alpha diff
 *   gradient  = avg_diff / min_rtt (a parameter: the path's minimum RTT,
 *               2 us on eRPC's fabrics; set it to the network's)
 *   rtt < T_low:   rate += delta                      (additive increase)
 *   rtt > T_high:  rate *= 1 - beta (1 - T_high / rtt)
 *   otherwise:     gradient <= 0: rate += N delta, N = 5 after hai_after
 *                                 successive increases (hyperactive), else 1
 *                  gradient > 0:  rate *= 1 - beta gradient
 * then at most halved per update, and clamped to [min_rate, link_rate].
 * (The paper's decrease below T_high uses beta_g; like eRPC we use one
 * beta for both.)
 *
 * The common case is free (timely_bypass): a session at link rate whose
 * sample is under T_low would only be clamped back to link rate, so the
 * update is skipped, and so is pacing (the caller checks rate == link).
 */
#ifndef UDRPC_CC_TIMELY_H
#define UDRPC_CC_TIMELY_H

#include <stdbool.h>
#include <stdint.h>

#include "udrpc.h"

struct timely {
    double rate_bytes_per_s;
    double prev_rtt_us;
    double avg_rtt_diff_us;
    uint32_t increases_in_row;   /* for hyperactive increase */
    uint64_t updates;
};

/* Fills p with the defaults (paper and eRPC); link rate 0: the transport's. */
void udrpc__timely_params_default(udrpc_timely_params_t *p);
void udrpc__timely_init(struct timely *t, const udrpc_timely_params_t *p);
void udrpc__timely_update(struct timely *t, const udrpc_timely_params_t *p, double rtt_us);

/* The bypass: true if a sample needs no update (at link rate, under
 * T_low: the update would only clamp the rate back to the link's). The
 * datapath makes the same test on TSC ticks, before converting anything. */
static inline bool udrpc__timely_bypass(const struct timely *t, const udrpc_timely_params_t *p,
                                        double rtt_us)
{
    return t->rate_bytes_per_s >= p->link_rate_bytes_per_s && rtt_us < p->t_low_us;
}

#endif
