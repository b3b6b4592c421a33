/* timely.c — see timely.h. */
#include "timely.h"

void udrpc__timely_params_default(udrpc_timely_params_t *p)
{
    p->link_rate_bytes_per_s = 0;          /* the transport's */
    p->min_rate_bytes_per_s = 1e6;         /* 1 MB/s */
    p->add_rate_bytes_per_s = 5e6;         /* delta: 5 MB/s */
    p->beta = 0.26;
    p->ewma_alpha = 0.46;
    p->min_rtt_us = 2;
    p->t_low_us = 50;
    p->t_high_us = 1000;
    p->hai_after = 5;
}

void udrpc__timely_init(struct timely *t, const udrpc_timely_params_t *p)
{
    *t = (struct timely){ 0 };
    t->rate_bytes_per_s = p->link_rate_bytes_per_s;
}

void udrpc__timely_update(struct timely *t, const udrpc_timely_params_t *p, double rtt_us)
{
    double diff = t->prev_rtt_us > 0 ? rtt_us - t->prev_rtt_us : 0;
    t->prev_rtt_us = rtt_us;
    t->avg_rtt_diff_us = (1 - p->ewma_alpha) * t->avg_rtt_diff_us + p->ewma_alpha * diff;
    double rate = t->rate_bytes_per_s, next;
    if (rtt_us < p->t_low_us) {
        next = rate + p->add_rate_bytes_per_s;
    } else if (rtt_us > p->t_high_us) {
        next = rate * (1 - p->beta * (1 - p->t_high_us / rtt_us));
        t->increases_in_row = 0;
    } else {
        double gradient = t->avg_rtt_diff_us / p->min_rtt_us;
        if (gradient <= 0) {
            unsigned n = t->increases_in_row >= p->hai_after ? 5 : 1;
            next = rate + n * p->add_rate_bytes_per_s;
            t->increases_in_row++;
        } else {
            next = rate * (1 - p->beta * gradient);
            t->increases_in_row = 0;
        }
    }
    if (next < rate / 2)
        next = rate / 2; /* at most halved per update */
    if (next > p->link_rate_bytes_per_s)
        next = p->link_rate_bytes_per_s;
    if (next < p->min_rate_bytes_per_s)
        next = p->min_rate_bytes_per_s;
    t->rate_bytes_per_s = next;
    t->updates++;
}
