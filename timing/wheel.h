/*
 * wheel.h — an O(1) slot-indexed timing wheel.
 *
 * Each timer is a struct wheel_node embedded in its owner (a session slot),
 * so insert, cancel and re-arm are pointer operations: no search, no
 * allocation. Buckets are nbuckets (a power of two) of width_tsc each;
 * a timer further out than the horizon (nbuckets * width_tsc) parks in the
 * last bucket of the horizon and is re-filed when that bucket is reached.
 * advance() costs O(expired + re-filed far timers + buckets passed / 64):
 * a bitmap marks the buckets that may hold timers (set on insert, cleared
 * lazily by advance, so cancel stays two pointer writes), and advance
 * jumps over the empty ones a word at a time. Its cost so does not grow
 * with the time that passed between two calls, nor, under valgrind, with
 * how slowly the caller runs.
 * Expired nodes move to the wheel's expired list; the owner pops them with
 * udrpc__wheel_pop_expired(). Cancelling a node on that list removes it, so
 * a handler that cancels other timers never sees a stale one.
 */
#ifndef UDRPC_TIMING_WHEEL_H
#define UDRPC_TIMING_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

struct wheel_node {
    struct wheel_node *next, *prev; /* NULL when not armed */
    uint64_t expiry_tsc;
    uint32_t kind;                  /* the owner's: which timer of it */
};

struct timing_wheel {
    struct wheel_node *buckets;     /* sentinels, nbuckets of them */
    uint64_t *occupied;             /* bit per bucket: may hold a timer */
    struct wheel_node expired;      /* sentinel of the expired list */
    uint64_t width_tsc;
    uint64_t cur_tick;              /* bucket index (unmasked) last advanced */
    uint32_t mask;                  /* nbuckets - 1 */
    uint32_t armed;                 /* timers in buckets (not expired list) */
};

/* nbuckets is rounded up to a power of two. Returns 0 or -ENOMEM. */
int udrpc__wheel_init(struct timing_wheel *w, uint32_t nbuckets,
                      uint64_t width_tsc, uint64_t now_tsc);
void udrpc__wheel_fini(struct timing_wheel *w);

static inline bool udrpc__wheel_node_is_armed(const struct wheel_node *n)
{
    return n->next != NULL;
}

static inline void wheel_link(struct wheel_node *head, struct wheel_node *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void wheel_unlink(struct wheel_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* Arms n to fire at expiry_tsc (in the past: at the next advance). n must
 * not be armed. */
static inline void udrpc__wheel_insert(struct timing_wheel *w,
                                       struct wheel_node *n, uint64_t expiry_tsc)
{
    UDRPC_ASSERT(n->next == NULL); /* armed twice would corrupt two lists */
    uint64_t tick = expiry_tsc / w->width_tsc;
    if (tick < w->cur_tick)
        tick = w->cur_tick;
    if (tick - w->cur_tick > w->mask)
        tick = w->cur_tick + w->mask; /* beyond the horizon: park, re-file */
    n->expiry_tsc = expiry_tsc;
    uint32_t idx = (uint32_t)tick & w->mask;
    wheel_link(&w->buckets[idx], n);
    w->occupied[idx >> 6] |= 1ull << (idx & 63);
    w->armed++;
}

/* Disarms n wherever it is (bucket or expired list); no-op if not armed. */
static inline void udrpc__wheel_cancel(struct timing_wheel *w, struct wheel_node *n)
{
    if (!n->next)
        return;
    if (n->expiry_tsc != UINT64_MAX)
        w->armed--;
    wheel_unlink(n);
}

/* Re-arms n (armed or not) to fire at expiry_tsc. */
static inline void udrpc__wheel_rearm(struct timing_wheel *w,
                                      struct wheel_node *n, uint64_t expiry_tsc)
{
    udrpc__wheel_cancel(w, n);
    udrpc__wheel_insert(w, n, expiry_tsc);
}

/* Moves every timer with expiry_tsc <= now_tsc to the expired list. */
void udrpc__wheel_advance(struct timing_wheel *w, uint64_t now_tsc);

/* Next expired timer, unlinked (not armed), or NULL. */
static inline struct wheel_node *udrpc__wheel_pop_expired(struct timing_wheel *w)
{
    struct wheel_node *n = w->expired.next;
    if (n == &w->expired)
        return NULL;
    wheel_unlink(n);
    return n;
}

#endif
