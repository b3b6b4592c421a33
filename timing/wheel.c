/* wheel.c — the timing wheel's set-up and advance (see wheel.h). */
#include "wheel.h"

#include "bits.h"

#include <errno.h>
#include <stdlib.h>

int udrpc__wheel_init(struct timing_wheel *w, uint32_t nbuckets,
                      uint64_t width_tsc, uint64_t now_tsc)
{
    uint32_t n = (uint32_t)udrpc__pow2_ceil(nbuckets < 64 ? 64 : nbuckets);
    w->buckets = calloc(n, sizeof(*w->buckets));
    w->occupied = calloc(n / 64, sizeof(*w->occupied));
    if (!w->buckets || !w->occupied) {
        free(w->buckets);
        free(w->occupied);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        w->buckets[i].next = w->buckets[i].prev = &w->buckets[i];
    w->expired.next = w->expired.prev = &w->expired;
    w->width_tsc = width_tsc ? width_tsc : 1;
    w->cur_tick = now_tsc / w->width_tsc;
    w->mask = n - 1;
    w->armed = 0;
    return 0;
}

void udrpc__wheel_fini(struct timing_wheel *w)
{
    free(w->buckets);
    free(w->occupied);
    w->buckets = NULL;
    w->occupied = NULL;
}

void udrpc__wheel_advance(struct timing_wheel *w, uint64_t now_tsc)
{
    uint64_t now_tick = now_tsc / w->width_tsc;
    if (now_tick < w->cur_tick || w->armed == 0) {
        if (now_tick > w->cur_tick)
            w->cur_tick = now_tick;
        return;
    }
    /* One lap visits every bucket: past that, more ticks find nothing new. */
    uint64_t last = now_tick;
    if (last - w->cur_tick > w->mask)
        last = w->cur_tick + w->mask;
    for (uint64_t t = w->cur_tick; t <= last && w->armed;) {
        uint32_t idx = (uint32_t)t & w->mask;
        uint64_t bits = w->occupied[idx >> 6] >> (idx & 63);
        if (!bits) { /* the rest of this word's buckets are empty */
            t += 64 - (idx & 63);
            continue;
        }
        t += (unsigned)__builtin_ctzll(bits);
        if (t > last)
            break;
        idx = (uint32_t)t & w->mask;
        struct wheel_node *head = &w->buckets[idx];
        if (head->next == head) { /* emptied by cancels since: clear lazily */
            w->occupied[idx >> 6] &= ~(1ull << (idx & 63));
            t++;
            continue;
        }
        /* Detach the bucket so that re-filed timers land in a clean list. */
        struct wheel_node *n = head->next;
        head->prev->next = NULL;
        head->next = head->prev = head;
        w->occupied[idx >> 6] &= ~(1ull << (idx & 63)); /* re-set by re-files */
        w->cur_tick = t;
        while (n) {
            struct wheel_node *next = n->next;
            n->next = n->prev = NULL;
            w->armed--;
            if (n->expiry_tsc <= now_tsc) {
                n->expiry_tsc = UINT64_MAX; /* marks "on the expired list" */
                wheel_link(w->expired.prev, n); /* append: keeps fire order */
            } else {
                udrpc__wheel_insert(w, n, n->expiry_tsc);
            }
            n = next;
        }
        t++;
    }
    w->cur_tick = now_tick;
}
