/* test_hist.c — rpc_bench's latency histogram: every value lands in a
 * bucket whose upper edge is at most 1/32 above it (from 1 tick to 2^40),
 * and percentiles of a known distribution come out where they should. */
#include <string.h>

#include "bench_util.h"
#include "test.h"

int main(void)
{
    for (uint64_t v = 1; v < (1ull << 40); v = v * 3 / 2 + 1) {
        CHECK(hist_bucket(v) < HIST_BUCKETS);
        static struct lat_hist h;
        memset(&h, 0, sizeof(h));
        hist_add(&h, v);
        uint64_t u = hist_percentile(&h, 0.5);
        CHECK(u == v); /* capped at the maximum seen */
    }
    static struct lat_hist empty;
    CHECK_EQ(hist_percentile(&empty, 0.5), 0);
    /* Uniform 1000..1999: p50 near 1500, p99 near 1990, within 1/32. */
    static struct lat_hist h;
    for (uint64_t v = 1000; v < 2000; v++)
        hist_add(&h, v);
    uint64_t p50 = hist_percentile(&h, 0.5), p99 = hist_percentile(&h, 0.99);
    printf("test_hist: p50 %llu, p99 %llu\n", (unsigned long long)p50, (unsigned long long)p99);
    CHECK(p50 >= 1499 && p50 <= 1500 + 1500 / 32);
    CHECK(p99 >= 1989 && p99 <= 1999);
    CHECK_EQ(hist_percentile(&h, 1.0), 1999);
    /* Bucket edges are monotonic: a larger value never lands lower. */
    unsigned prev = 0;
    for (uint64_t v = 1; v < 100000; v++) {
        unsigned b = hist_bucket(v);
        CHECK(b >= prev);
        prev = b;
    }
    return 0;
}
