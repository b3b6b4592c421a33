/*
 * loop.c — the in-process transport: every Rpc of the process is an
 * endpoint of one software fabric. A packet is copied once, at tx_burst,
 * into the destination's inbox ring (as a NIC's DMA would) and read there
 * in place by rx_burst. Deterministic fault injection (seeded per sender):
 * drop, duplicate, reorder, corrupt (one bit flip), delay, and partition.
 *
 * One fabric lock, taken once per burst (never per packet), makes it safe
 * for endpoints on different threads; an atomic count lets an idle poll
 * skip the lock. Routing info: the pid (4 bytes) and endpoint id (4):
 * a peer in another process is refused at connect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "loop.h"
#include "clock.h"

#define LOOP_DEFAULT_MTU 4096
#define LOOP_INBOX_SLOTS 4096 /* power of two */
#define LOOP_MAX_ENDPOINTS 1024
#define LOOP_QDELAY_BUCKETS 16384 /* us; the last one holds the rest */

struct loop_slot {
    uint64_t deliver_tsc;
    uint64_t fcs;          /* frame check sequence, when has_fcs */
    uint32_t len;
    uint32_t src;
    uint32_t has_fcs;
    uint8_t data[]; /* mtu bytes */
};

struct loop_ep {
    struct transport base;
    uint32_t id;
    udrpc_faults_t faults;
    uint64_t rng;
    uint64_t partition_until_tsc;
    const struct udrpc_clock *clock;
    /* inbox: written by senders under the fabric lock */
    uint8_t *slots;
    size_t slot_bytes;
    uint32_t head, tail;        /* free-running; head = oldest unread */
    uint32_t held_for_rx;       /* read by the last rx_burst, freed at the next */
    _Atomic uint32_t count;     /* tail - head, for a lock-free idle check */
    /* one packet held back by reorder injection */
    uint8_t *held;
    uint32_t held_len, held_dst;
    int has_held;
    struct udrpc_loop_stats stats;
    /* the link model of this endpoint's downlink (cfg.loop) */
    double link_tsc_per_byte;
    uint64_t link_free_tsc;     /* when the link finishes what it holds */
    uint64_t link_delay_tsc;
    uint64_t link_queue_bytes;
    uint32_t *qdelay_hist;      /* queueing delay, 1 us buckets */
};

static struct {
    pthread_mutex_t lock;
    struct loop_ep *eps[LOOP_MAX_ENDPOINTS];
    uint32_t next_id;
} g_fabric = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct loop_slot *slot_at(struct loop_ep *ep, uint32_t i)
{
    return (struct loop_slot *)(ep->slots + (size_t)(i & (LOOP_INBOX_SLOTS - 1)) * ep->slot_bytes);
}

/* The link model: a FIFO queue in front of a link of fixed rate, then a
 * propagation delay. A packet waits for those ahead of it (their bytes at
 * the link rate), or is dropped at the tail if they fill the queue.
 * Returns its arrival time, or 0 for a drop. Fabric lock held. */
static uint64_t link_enqueue(struct loop_ep *dst, uint32_t len, uint64_t now_tsc)
{
    uint64_t start = dst->link_free_tsc > now_tsc ? dst->link_free_tsc : now_tsc;
    uint64_t wait_tsc = start - now_tsc;
    uint64_t backlog = (uint64_t)((double)wait_tsc / dst->link_tsc_per_byte);
    if (backlog + len > dst->link_queue_bytes) {
        dst->stats.link_dropped++;
        return 0;
    }
    if (backlog > dst->stats.link_max_backlog_bytes)
        dst->stats.link_max_backlog_bytes = backlog;
    uint64_t wait_us = (uint64_t)udrpc__tsc_to_ns(dst->clock, wait_tsc) / 1000;
    dst->qdelay_hist[wait_us < LOOP_QDELAY_BUCKETS ? wait_us : LOOP_QDELAY_BUCKETS - 1]++;
    dst->link_free_tsc = start + (uint64_t)((double)len * dst->link_tsc_per_byte);
    dst->stats.link_pkts++;
    dst->stats.link_bytes += len;
    return dst->link_free_tsc + dst->link_delay_tsc;
}

/* Appends one packet to dst's inbox; fabric lock held. */
static void deliver(struct loop_ep *src, struct loop_ep *dst, const uint8_t *hdr,
                    const uint8_t *data, uint32_t data_len, uint64_t deliver_tsc,
                    int corrupt)
{
    uint32_t len = 16 + data_len;
    if (dst->tail - dst->head >= LOOP_INBOX_SLOTS || len > dst->base.mtu) {
        src->stats.overflow++;
        return;
    }
    if (__builtin_expect(dst->qdelay_hist != NULL, 0) &&
        (deliver_tsc = link_enqueue(dst, len, deliver_tsc)) == 0)
        return;
    struct loop_slot *s = slot_at(dst, dst->tail);
    memcpy(s->data, hdr, 16);
    if (data_len)
        memcpy(s->data + 16, data, data_len);
    /* Every real link checks frames (Ethernet FCS, UDP checksum, RoCE ICRC)
     * and drops the corrupt ones before software sees them. The model does
     * the same, paying for the check only when corruption is injected. */
    s->has_fcs = src->faults.corrupt_ppm != 0;
    if (s->has_fcs)
        s->fcs = XXH3_64bits(s->data, len);
    if (corrupt) {
        uint64_t bit = udrpc__rng_next(&src->rng) % ((uint64_t)len * 8);
        s->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        src->stats.corrupted++;
    }
    s->len = len;
    s->src = src->id;
    s->deliver_tsc = deliver_tsc;
    dst->tail++;
    atomic_store_explicit(&dst->count, dst->tail - dst->head, memory_order_release);
}

static void release_held(struct loop_ep *ep, uint64_t now_tsc)
{
    if (!ep->has_held)
        return;
    ep->has_held = 0;
    struct loop_ep *dst = g_fabric.eps[ep->held_dst % LOOP_MAX_ENDPOINTS];
    if (dst && dst->id == ep->held_dst)
        deliver(ep, dst, ep->held, ep->held + 16, ep->held_len - 16, now_tsc, 0);
}

static unsigned loop_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts,
                              unsigned n, uint64_t now_tsc)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    const udrpc_faults_t *f = &ep->faults;
    pthread_mutex_lock(&g_fabric.lock);
    for (unsigned i = 0; i < n; i++) {
        uint32_t dst_id;
        memcpy(&dst_id, pkts[i].peer->tx, 4);
        struct loop_ep *dst = g_fabric.eps[dst_id % LOOP_MAX_ENDPOINTS];
        ep->stats.sent++;
        if (!dst || dst->id != dst_id || now_tsc < ep->partition_until_tsc) {
            ep->stats.dropped++;
            continue;
        }
        if (udrpc__chance_ppm(&ep->rng, f->drop_ppm)) {
            ep->stats.dropped++;
            continue;
        }
        uint64_t at = now_tsc;
        if (udrpc__chance_ppm(&ep->rng, f->delay_ppm)) {
            at += udrpc__us_to_tsc(ep->clock, f->delay_us);
            ep->stats.delayed++;
        }
        int corrupt = udrpc__chance_ppm(&ep->rng, f->corrupt_ppm);
        if (!ep->has_held && udrpc__chance_ppm(&ep->rng, f->reorder_ppm) &&
            16 + pkts[i].data_len <= ep->base.mtu) {
            memcpy(ep->held, pkts[i].hdr, 16);
            if (pkts[i].data_len)
                memcpy(ep->held + 16, pkts[i].data, pkts[i].data_len);
            ep->held_len = 16 + pkts[i].data_len;
            ep->held_dst = dst_id;
            ep->has_held = 1;
            ep->stats.reordered++;
            continue;
        }
        deliver(ep, dst, pkts[i].hdr, pkts[i].data, pkts[i].data_len, at, corrupt);
        if (udrpc__chance_ppm(&ep->rng, f->dup_ppm)) {
            deliver(ep, dst, pkts[i].hdr, pkts[i].data, pkts[i].data_len, at, 0);
            ep->stats.duplicated++;
        }
        release_held(ep, now_tsc); /* the held packet goes behind this one */
    }
    pthread_mutex_unlock(&g_fabric.lock);
    return n; /* a full inbox drops, like a switch: the sender never blocks */
}

static unsigned loop_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts,
                              unsigned max, uint64_t now_tsc)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    if (ep->held_for_rx == 0 &&
        atomic_load_explicit(&ep->count, memory_order_acquire) == 0)
        return 0;
    pthread_mutex_lock(&g_fabric.lock);
    ep->head += ep->held_for_rx; /* the previous burst's buffers are free now */
    ep->held_for_rx = 0;
    unsigned n = 0, used = 0;
    uint32_t avail = ep->tail - ep->head;
    while (n < max && used < avail) {
        struct loop_slot *s = slot_at(ep, ep->head + used);
        if (s->deliver_tsc > now_tsc)
            break; /* delayed: the link is FIFO, later packets wait too */
        used++;
        if (s->has_fcs && XXH3_64bits(s->data, s->len) != s->fcs) {
            ep->stats.fcs_dropped++;
            continue;
        }
        pkts[n].buf = s->data;
        pkts[n].len = s->len;
        pkts[n].src_id[0] = s->src;
        pkts[n].src_id[1] = ep->base.src_tag;
        n++;
    }
    ep->held_for_rx = used;
    atomic_store_explicit(&ep->count, ep->tail - ep->head - used, memory_order_release);
    pthread_mutex_unlock(&g_fabric.lock);
    return n;
}

static void loop_tx_flush(struct transport *tp)
{
    (void)tp; /* tx_burst copied every byte */
}

static int loop_make_peer(struct transport *tp, const struct tp_route *r,
                          const union tp_addr *peer_sm, struct tp_peer *peer)
{
    (void)peer_sm;
    uint32_t pid, id;
    if (r->kind != TP_LOOP || r->len != 8)
        return -EINVAL;
    memcpy(&pid, r->bytes, 4);
    memcpy(&id, r->bytes + 4, 4);
    if (pid != (uint32_t)getpid())
        return -EINVAL; /* the loop fabric does not leave the process */
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->tx, &id, 4);
    peer->src_id[0] = id;
    peer->src_id[1] = tp->src_tag;
    return 0;
}

static void loop_destroy(struct transport *tp)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    pthread_mutex_lock(&g_fabric.lock);
    g_fabric.eps[ep->id % LOOP_MAX_ENDPOINTS] = NULL;
    pthread_mutex_unlock(&g_fabric.lock);
    free(ep->slots);
    free(ep->held);
    free(ep->qdelay_hist);
    free(ep);
}

static const struct transport_ops loop_ops = {
    .rx_burst = loop_rx_burst,
    .tx_burst = loop_tx_burst,
    .tx_flush = loop_tx_flush,
    .make_peer = loop_make_peer,
    .destroy = loop_destroy,
};

int udrpc__loop_create(const udrpc_config_t *cfg, const struct tp_params *p,
                       struct transport **out)
{
    (void)p;
    unsigned mtu = cfg->mtu ? cfg->mtu : LOOP_DEFAULT_MTU;
    if (mtu < 64 || mtu > 65536)
        return -EINVAL;
    struct loop_ep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return -ENOMEM;
    ep->slot_bytes = (sizeof(struct loop_slot) + mtu + 63) & ~(size_t)63;
    ep->slots = malloc(ep->slot_bytes * LOOP_INBOX_SLOTS);
    ep->held = malloc(mtu);
    if (!ep->slots || !ep->held) {
        free(ep->slots);
        free(ep->held);
        free(ep);
        return -ENOMEM;
    }
    ep->clock = udrpc__clock_init();
    ep->faults = cfg->faults;
    if (cfg->loop.link_bytes_per_s) {
        ep->qdelay_hist = calloc(LOOP_QDELAY_BUCKETS, sizeof(*ep->qdelay_hist));
        if (!ep->qdelay_hist) {
            free(ep->slots);
            free(ep->held);
            free(ep);
            return -ENOMEM;
        }
        ep->link_tsc_per_byte = ep->clock->tsc_per_ns * 1e9 / (double)cfg->loop.link_bytes_per_s;
        ep->link_delay_tsc = udrpc__us_to_tsc(ep->clock, cfg->loop.link_delay_us);
        ep->link_queue_bytes = cfg->loop.link_queue_bytes ? cfg->loop.link_queue_bytes : 1u << 20;
    }
    ep->base.ops = &loop_ops;
    ep->base.name = "loop";
    ep->base.kind = TP_LOOP;
    ep->base.mtu = mtu;
    ep->base.link_rate_bytes_per_s = cfg->loop.link_bytes_per_s ? (double)cfg->loop.link_bytes_per_s
                                                                : 12.5e9; /* 100 Gbit/s */

    pthread_mutex_lock(&g_fabric.lock);
    uint32_t id = 0;
    for (uint32_t tries = 0; tries < LOOP_MAX_ENDPOINTS; tries++) {
        /* ids keep growing so a stale peer never reaches a new endpoint */
        id = ++g_fabric.next_id;
        if (!g_fabric.eps[id % LOOP_MAX_ENDPOINTS])
            break;
        id = 0;
    }
    if (id == 0) {
        pthread_mutex_unlock(&g_fabric.lock);
        free(ep->slots);
        free(ep->held);
        free(ep);
        return -ENOSPC;
    }
    ep->id = id;
    ep->rng = (cfg->faults.seed ^ (0x9E3779B97F4A7C15ull * id)) | 1;
    g_fabric.eps[id % LOOP_MAX_ENDPOINTS] = ep;
    pthread_mutex_unlock(&g_fabric.lock);

    uint32_t pid = (uint32_t)getpid();
    ep->base.local.kind = TP_LOOP;
    ep->base.local.len = 8;
    memcpy(ep->base.local.bytes, &pid, 4);
    memcpy(ep->base.local.bytes + 4, &id, 4);
    *out = &ep->base;
    return 0;
}

void udrpc__loop_partition(struct transport *tp, unsigned ms)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    pthread_mutex_lock(&g_fabric.lock);
    ep->partition_until_tsc = udrpc__rdtsc() + udrpc__us_to_tsc(ep->clock, (uint64_t)ms * 1000);
    pthread_mutex_unlock(&g_fabric.lock);
}

void udrpc__loop_get_stats(struct transport *tp, struct udrpc_loop_stats *out)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    pthread_mutex_lock(&g_fabric.lock);
    *out = ep->stats;
    pthread_mutex_unlock(&g_fabric.lock);
}

void udrpc__loop_link_reset(struct transport *tp)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    pthread_mutex_lock(&g_fabric.lock);
    ep->stats.link_pkts = ep->stats.link_bytes = ep->stats.link_dropped = 0;
    ep->stats.link_max_backlog_bytes = 0;
    if (ep->qdelay_hist)
        memset(ep->qdelay_hist, 0, LOOP_QDELAY_BUCKETS * sizeof(*ep->qdelay_hist));
    pthread_mutex_unlock(&g_fabric.lock);
}

double udrpc__loop_link_qdelay_us(struct transport *tp, double p)
{
    struct loop_ep *ep = (struct loop_ep *)tp;
    double at = -1;
    pthread_mutex_lock(&g_fabric.lock);
    uint64_t n = 0, seen = 0;
    for (unsigned i = 0; ep->qdelay_hist && i < LOOP_QDELAY_BUCKETS; i++)
        n += ep->qdelay_hist[i];
    for (unsigned i = 0; n && i < LOOP_QDELAY_BUCKETS; i++) {
        seen += ep->qdelay_hist[i];
        if ((double)seen >= p * (double)n) {
            at = i + 1; /* the bucket's upper edge */
            break;
        }
    }
    pthread_mutex_unlock(&g_fabric.lock);
    return at;
}
