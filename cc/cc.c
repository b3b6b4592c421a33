/* cc.c — congestion control of a session: set-up and rate updates (cc.h). */
#include "cc.h"

void udrpc__cc_params_init(struct cc_params *p, const udrpc_timely_params_t *timely,
                           double link_rate_bytes_per_s, double tsc_per_ns,
                           uint64_t t_low_tsc, uint64_t pace_slack_tsc)
{
    p->timely = *timely;
    if (p->timely.link_rate_bytes_per_s <= 0)
        p->timely.link_rate_bytes_per_s = link_rate_bytes_per_s;
    if (p->timely.min_rate_bytes_per_s > p->timely.link_rate_bytes_per_s)
        p->timely.min_rate_bytes_per_s = p->timely.link_rate_bytes_per_s;
    p->tsc_per_s = tsc_per_ns * 1e9;
    p->us_per_tsc = 1e-3 / tsc_per_ns;
    p->t_low_tsc = t_low_tsc;
    p->pace_slack_tsc = pace_slack_tsc;
}

void udrpc__cc_init(struct cc_state *cc, const struct cc_params *p)
{
    udrpc__timely_init(&cc->t, &p->timely);
    cc->paced = false;
    cc->next_tx_tsc = 0;
    cc->tsc_per_byte = p->tsc_per_s / cc->t.rate_bytes_per_s;
    cc->last_rtt_tsc = 0;
}

void udrpc__cc_update(struct cc_state *cc, const struct cc_params *p, uint64_t rtt_tsc)
{
    /* The previous sample may have taken the bypass: it is kept in ticks. */
    cc->t.prev_rtt_us = (double)cc->last_rtt_tsc * p->us_per_tsc;
    udrpc__timely_update(&cc->t, &p->timely, (double)rtt_tsc * p->us_per_tsc);
    cc->tsc_per_byte = p->tsc_per_s / cc->t.rate_bytes_per_s;
    cc->paced = cc->t.rate_bytes_per_s < p->timely.link_rate_bytes_per_s;
}
