/* test_wheel.c — the timing wheel: timers fire once, not early, in expiry
 * order across buckets; cancel and re-arm are O(1) and exact; timers past
 * the horizon wrap correctly; cancel after fire (on the expired list) and
 * cancel of an idle node are no-ops or removals as they should be. */
#include <string.h>

#include "test.h"
#include "wheel.h"

#define N 2000

int main(void)
{
    struct timing_wheel w;
    const uint64_t width = 100; /* tsc per bucket */
    CHECK_EQ(udrpc__wheel_init(&w, 64, width, 1000), 0); /* horizon 6400 */
    static struct wheel_node nodes[N];
    static int fired[N];
    memset(nodes, 0, sizeof(nodes));

    /* Random expiries, some far past the horizon (wrap-around). */
    uint64_t rng = 12345, expiry[N];
    for (int i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        expiry[i] = 1000 + (rng >> 33) % 50000; /* up to ~8 laps */
        udrpc__wheel_insert(&w, &nodes[i], expiry[i]);
        CHECK(udrpc__wheel_node_is_armed(&nodes[i]));
    }
    /* Cancel every 10th, re-arm every 7th later. */
    for (int i = 0; i < N; i += 10)
        udrpc__wheel_cancel(&w, &nodes[i]);
    for (int i = 3; i < N; i += 7) {
        if (i % 10 == 0)
            continue;
        expiry[i] += 777;
        udrpc__wheel_rearm(&w, &nodes[i], expiry[i]);
    }
    uint64_t now = 1000;
    int total = 0;
    while (now < 60000) {
        now += 37; /* uneven steps, sometimes several buckets */
        udrpc__wheel_advance(&w, now);
        struct wheel_node *n;
        while ((n = udrpc__wheel_pop_expired(&w)) != NULL) {
            int i = (int)(n - nodes);
            CHECK(i % 10 != 0);             /* cancelled ones never fire */
            CHECK(expiry[i] <= now);        /* never early */
            CHECK(expiry[i] + width + 37 > now); /* and at most a bucket+step late */
            CHECK(!udrpc__wheel_node_is_armed(n));
            fired[i]++;
            total++;
        }
    }
    for (int i = 0; i < N; i++)
        CHECK_EQ(fired[i], i % 10 == 0 ? 0 : 1);
    CHECK_EQ(total, N - N / 10);
    CHECK_EQ(w.armed, 0);

    /* Cancel after fire: a node on the expired list leaves it. */
    struct wheel_node a = { 0 }, b = { 0 };
    udrpc__wheel_insert(&w, &a, now + 10);
    udrpc__wheel_insert(&w, &b, now + 10);
    udrpc__wheel_advance(&w, now + 500);
    udrpc__wheel_cancel(&w, &b); /* b expired but not yet popped */
    CHECK(udrpc__wheel_pop_expired(&w) == &a);
    CHECK(udrpc__wheel_pop_expired(&w) == NULL);
    udrpc__wheel_cancel(&w, &a); /* popped: a no-op */
    udrpc__wheel_cancel(&w, &a);

    /* A jump of many laps fires everything due, once. */
    udrpc__wheel_insert(&w, &a, now + 600);
    udrpc__wheel_insert(&w, &b, now + 100000);
    udrpc__wheel_advance(&w, now + 1000000);
    int n = 0;
    while (udrpc__wheel_pop_expired(&w))
        n++;
    CHECK_EQ(n, 2);
    udrpc__wheel_fini(&w);
    printf("test_wheel: ok\n");
    return 0;
}
