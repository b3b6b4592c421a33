/*
 * test_timely.c — Timely's rate against fixed RTT sequences, computed by
 * hand from the update rule in cc/timely.h (defaults: alpha 0.46, beta
 * 0.26, min RTT 2 us, T_low 50 us, T_high 1000 us, step 5 MB/s, HAI after
 * 5), with a 1 GB/s link and a 1 MB/s floor.
 */
#include <math.h>

#include "timely.h"
#include "test.h"

#define CHECK_NEAR(a, b)                                                          \
    do {                                                                          \
        double _a = (a), _b = (b);                                                \
        if (fabs(_a - _b) > 1e-6 * fabs(_b) + 1e-9) {                             \
            fprintf(stderr, "%s:%d: %s = %.9g, want %.9g\n", __FILE__, __LINE__, #a, \
                    _a, _b);                                                      \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

static udrpc_timely_params_t p;

static struct timely at(double rate, double prev_rtt_us)
{
    struct timely t;
    udrpc__timely_init(&t, &p);
    t.rate_bytes_per_s = rate;
    t.prev_rtt_us = prev_rtt_us;
    return t;
}

int main(void)
{
    udrpc__timely_params_default(&p);
    p.link_rate_bytes_per_s = 1e9;
    CHECK_NEAR(p.beta, 0.26);
    CHECK_NEAR(p.ewma_alpha, 0.46);
    CHECK_EQ(p.min_rtt_us, 2);
    CHECK_EQ(p.t_low_us, 50);
    CHECK_EQ(p.t_high_us, 1000);
    CHECK_NEAR(p.add_rate_bytes_per_s, 5e6);
    CHECK_EQ(p.hai_after, 5);

    /* A new session starts at link rate; under T_low it takes the bypass
     * (no update), above T_low it does not. */
    struct timely t;
    udrpc__timely_init(&t, &p);
    CHECK_NEAR(t.rate_bytes_per_s, 1e9);
    CHECK(udrpc__timely_bypass(&t, &p, 10));
    CHECK(!udrpc__timely_bypass(&t, &p, 60));
    t.rate_bytes_per_s = 9e8;
    CHECK(!udrpc__timely_bypass(&t, &p, 10));
    t.rate_bytes_per_s = 1e9;

    /* Below T_low: additive increase. First sample: no difference yet. */
    t = at(5e8, 0);
    udrpc__timely_update(&t, &p, 10);
    CHECK_NEAR(t.rate_bytes_per_s, 5e8 + 5e6);
    CHECK_NEAR(t.avg_rtt_diff_us, 0);

    /* Above T_high: rate * (1 - beta (1 - T_high / rtt)). */
    udrpc__timely_update(&t, &p, 2000);
    CHECK_NEAR(t.avg_rtt_diff_us, 0.46 * 1990);                 /* 915.4 */
    CHECK_NEAR(t.rate_bytes_per_s, 5.05e8 * (1 - 0.26 * 0.5));  /* 4.3935e8 */

    /* Falling RTT between the thresholds: negative gradient, increase. */
    udrpc__timely_update(&t, &p, 500);
    CHECK_NEAR(t.avg_rtt_diff_us, 0.54 * 915.4 + 0.46 * -1500); /* -195.684 */
    CHECK_NEAR(t.rate_bytes_per_s, 4.3935e8 + 5e6);

    /* Rising RTT: gradient 0.46 / 2 = 0.23, rate * (1 - 0.26 * 0.23). */
    t = at(5e8, 100);
    udrpc__timely_update(&t, &p, 101);
    CHECK_NEAR(t.avg_rtt_diff_us, 0.46);
    CHECK_NEAR(t.rate_bytes_per_s, 5e8 * (1 - 0.26 * 0.23));

    /* A steep rise: 1 - 0.26 * 23 < 0, but one update at most halves. */
    t = at(5e8, 100);
    udrpc__timely_update(&t, &p, 200);
    CHECK_NEAR(t.rate_bytes_per_s, 2.5e8);

    /* Hyperactive increase: flat RTT (gradient 0) five times adds 5 MB/s
     * each, the sixth and later 25 MB/s; a decrease resets the count. */
    t = at(1e8, 100);
    for (int i = 0; i < 5; i++)
        udrpc__timely_update(&t, &p, 100);
    CHECK_NEAR(t.rate_bytes_per_s, 1.25e8);
    udrpc__timely_update(&t, &p, 100);
    CHECK_NEAR(t.rate_bytes_per_s, 1.5e8);
    udrpc__timely_update(&t, &p, 100);
    CHECK_NEAR(t.rate_bytes_per_s, 1.75e8);
    udrpc__timely_update(&t, &p, 2000); /* above T_high: x 0.87, count reset */
    double r = 1.75e8 * 0.87;
    CHECK_NEAR(t.rate_bytes_per_s, r);
    t.prev_rtt_us = 100;
    t.avg_rtt_diff_us = 0;
    udrpc__timely_update(&t, &p, 100);
    CHECK_NEAR(t.rate_bytes_per_s, r + 5e6);

    /* Clamps: never below the floor, never above the link. */
    t = at(1.5e6, 0);
    udrpc__timely_update(&t, &p, 100000); /* x (1 - 0.26 * 0.99) = 0.7426 */
    CHECK_NEAR(t.rate_bytes_per_s, 1.5e6 * 0.7426);
    udrpc__timely_update(&t, &p, 100000);
    CHECK_NEAR(t.rate_bytes_per_s, 1e6);
    t = at(1e9 - 1e6, 0);
    udrpc__timely_update(&t, &p, 10);
    CHECK_NEAR(t.rate_bytes_per_s, 1e9);
    printf("test_timely: ok\n");
    return 0;
}
