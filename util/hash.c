/* hash.c — open-addressing table (see hash.h). */
#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bits.h"

uint64_t udrpc__hash_bytes(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

int udrpc__hash_init(struct hash_table *t, uint32_t capacity_hint)
{
    uint64_t cap = udrpc__pow2_ceil((uint64_t)capacity_hint * 2);
    if (cap < 16)
        cap = 16;
    t->entries = calloc(cap, sizeof(*t->entries));
    if (!t->entries)
        return -ENOMEM;
    t->mask = (uint32_t)cap - 1;
    t->count = 0;
    return 0;
}

void udrpc__hash_fini(struct hash_table *t)
{
    free(t->entries);
    t->entries = NULL;
    t->count = 0;
}

static struct hash_entry *find_slot(const struct hash_table *t, uint64_t key)
{
    uint32_t i = (uint32_t)udrpc__hash_fx(key) & t->mask;
    while (t->entries[i].used && t->entries[i].key != key)
        i = (i + 1) & t->mask;
    return &t->entries[i];
}

static int grow(struct hash_table *t)
{
    struct hash_table bigger;
    if (udrpc__hash_init(&bigger, (t->mask + 1)) != 0)
        return -ENOMEM;
    for (uint32_t i = 0; i <= t->mask; i++) {
        if (t->entries[i].used) {
            struct hash_entry *e = find_slot(&bigger, t->entries[i].key);
            *e = t->entries[i];
            bigger.count++;
        }
    }
    free(t->entries);
    *t = bigger;
    return 0;
}

int udrpc__hash_put(struct hash_table *t, uint64_t key, uint64_t value)
{
    if ((t->count + 1) * 2 > t->mask + 1 && grow(t) != 0)
        return -ENOMEM;
    struct hash_entry *e = find_slot(t, key);
    if (!e->used) {
        e->used = true;
        e->key = key;
        t->count++;
    }
    e->value = value;
    return 0;
}

bool udrpc__hash_get(const struct hash_table *t, uint64_t key, uint64_t *value)
{
    const struct hash_entry *e = find_slot(t, key);
    if (!e->used)
        return false;
    *value = e->value;
    return true;
}

bool udrpc__hash_del(struct hash_table *t, uint64_t key)
{
    struct hash_entry *e = find_slot(t, key);
    if (!e->used)
        return false;
    /* Backward-shift: move later members of the probe run into the hole so
     * that lookups never stop early at it. */
    uint32_t hole = (uint32_t)(e - t->entries);
    uint32_t i = hole;
    for (;;) {
        i = (i + 1) & t->mask;
        if (!t->entries[i].used)
            break;
        uint32_t home = (uint32_t)udrpc__hash_fx(t->entries[i].key) & t->mask;
        /* Entry i may fill the hole unless its home lies in (hole, i]. */
        bool home_between = hole <= i ? (home > hole && home <= i)
                                      : (home > hole || home <= i);
        if (!home_between) {
            t->entries[hole] = t->entries[i];
            hole = i;
        }
    }
    t->entries[hole].used = false;
    t->count--;
    return true;
}
