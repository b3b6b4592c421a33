/*
 * cc.h — congestion control of one client session: Timely's rate (timely.h)
 * and pacing at that rate, in TSC ticks. This module does the arithmetic;
 * the runtime owns the session, its slots and their timers, and asks:
 *
 *   udrpc__cc_pace()    may `bytes` leave now? (sessions below link rate)
 *   udrpc__cc_sample()  an RTT sample: the bypass test, Timely's update
 *                       off the bypass
 *
 * The bypass keeps the common case free: a session at link rate whose
 * sample is under T_low is neither updated nor paced (the test is made in
 * integers on TSC ticks, before converting anything).
 */
#ifndef UDRPC_CC_CC_H
#define UDRPC_CC_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "timely.h"

/* An endpoint's, fixed at its creation. */
struct cc_params {
    udrpc_timely_params_t timely;    /* link rate resolved */
    double us_per_tsc, tsc_per_s;
    uint64_t t_low_tsc;              /* Timely's T_low, for the bypass */
    uint64_t pace_slack_tsc;         /* lateness a paced send may make up */
};

/* A session's. */
struct cc_state {
    struct timely t;
    bool paced;                      /* below link rate: pace sends */
    uint64_t next_tx_tsc;            /* pacing: earliest next send */
    double tsc_per_byte;             /* pacing: 1 / rate */
    uint64_t last_rtt_tsc;           /* Timely's previous sample */
};

/* p->timely.link_rate 0: link_rate_bytes_per_s (the transport's). */
void udrpc__cc_params_init(struct cc_params *p, const udrpc_timely_params_t *timely,
                           double link_rate_bytes_per_s, double tsc_per_ns,
                           uint64_t t_low_tsc, uint64_t pace_slack_tsc);
void udrpc__cc_init(struct cc_state *cc, const struct cc_params *p);
/* A rate update off the bypass (out of line: the bypass is the rule). */
void udrpc__cc_update(struct cc_state *cc, const struct cc_params *p, uint64_t rtt_tsc);

/* Pacing of a paced session: true if a packet of wire_bytes may leave at
 * now_tsc, and then the schedule advances by its time at the rate; false
 * if not before cc->next_tx_tsc. A send the timer released late keeps its
 * place in the schedule (the rate holds on average); an idle session earns
 * no burst. */
static inline bool udrpc__cc_pace(struct cc_state *cc, const struct cc_params *p,
                                  uint64_t now_tsc, size_t wire_bytes)
{
    if (now_tsc < cc->next_tx_tsc)
        return false;
    uint64_t base = cc->next_tx_tsc + p->pace_slack_tsc > now_tsc ? cc->next_tx_tsc
                                                                   : now_tsc - p->pace_slack_tsc;
    cc->next_tx_tsc = base + (uint64_t)((double)wire_bytes * cc->tsc_per_byte);
    return true;
}

/* An RTT sample (its packet was sent once only): the bypass test, and
 * Timely's update off it. */
static inline void udrpc__cc_sample(struct cc_state *cc, const struct cc_params *p,
                                    uint64_t rtt_tsc)
{
    if (unlikely(cc->paced || rtt_tsc >= p->t_low_tsc))
        udrpc__cc_update(cc, p, rtt_tsc);
    cc->last_rtt_tsc = rtt_tsc;
}

#endif
