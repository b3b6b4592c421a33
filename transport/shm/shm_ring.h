/*
 * shm_ring.h — one direction of a shm channel: a ring of bytes in memory
 * shared by two processes, one producer and one consumer. Records are
 * variable-length, so a ring holds as many small packets as fit, whatever
 * the MTU:
 *
 *   record  u32 len | u32 kind | len bytes (the packet) | padding to 64 B
 *   kind    SHM_REC_PKT, or SHM_REC_WRAP: the rest of the ring up to its
 *           end is unused, the next record is at offset 0
 *
 * A record never straddles the ring's end, so the consumer hands packets
 * on in place (zero copy). The producer publishes its tail with one
 * release store per burst; the consumer frees what it read with one
 * release store of its head, at its next read.
 *
 * The peer writes what we read, and the peer may be buggy or hostile:
 * shm_rx_read reads each index and length once, checks it against the
 * ring before using it, and reports a ring that breaks the rules (-1), so
 * that the channel is closed. Nothing read from the ring can take a read
 * or write outside it.
 */
#ifndef UDRPC_TRANSPORT_SHM_RING_H
#define UDRPC_TRANSPORT_SHM_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define SHM_REC_ALIGN 64u
#define SHM_REC_HDR 8u
#define SHM_REC_PKT 0x54504B50u  /* "PKTP" */
#define SHM_REC_WRAP 0x50415257u /* "WRAP" */

/* A ring's control block, in the shared region: each side's index on a
 * cache line of its own, and the consumer's "about to sleep" flag on a
 * third, which the producer reads (and finds unchanged, in its cache)
 * after each burst. */
struct shm_ring_ctl {
    _Alignas(64) _Atomic uint64_t tail;   /* producer: bytes written */
    _Alignas(64) _Atomic uint64_t head;   /* consumer: bytes freed */
    _Alignas(64) _Atomic uint32_t sleeping;
};

/* A channel's region (a memfd of SHM_HDR_BYTES + 2 rings): this header
 * page, then the client-to-server ring's bytes, then the other's. */
#define SHM_HDR_BYTES 4096u
struct shm_region {
    struct shm_ring_ctl c2s;   /* client to server */
    struct shm_ring_ctl s2c;
};

/* The set-up messages on the channel's Unix socket: the client's hello,
 * with its memfd and eventfd (SCM_RIGHTS), and the server's answer, with
 * its eventfd. */
#define SHM_MAGIC 0x31436d6853445575ull
#define SHM_VERSION 1u
struct shm_hello {
    uint64_t magic;
    uint32_t version;
    uint32_t mtu;              /* the endpoints' (both must use one) */
    uint64_t ring_bytes;       /* each ring's: a power of two */
    uint64_t token;            /* names the channel in SM routes */
};
struct shm_answer {
    uint64_t magic;
    uint64_t nonce;            /* the server endpoint's (its route) */
};

/* Our end of a ring we write. */
struct shm_tx {
    struct shm_ring_ctl *ctl;
    uint8_t *data;
    uint64_t size;       /* bytes, a power of two */
    uint64_t tail;       /* written so far; published at the burst's end */
    uint64_t head_seen;  /* the consumer's head, as last read */
};

/* Our end of a ring we read. */
struct shm_rx {
    struct shm_ring_ctl *ctl;
    const uint8_t *data;
    uint64_t size;       /* bytes, a power of two */
    uint32_t mtu;        /* the longest packet we accept */
    uint64_t head;       /* read so far */
    uint64_t head_pub;   /* freed: the producer may write below it */
};

static inline uint64_t shm_rec_bytes(uint32_t len)
{
    return ((uint64_t)SHM_REC_HDR + len + SHM_REC_ALIGN - 1) & ~(uint64_t)(SHM_REC_ALIGN - 1);
}

/* Room for a packet of len bytes: writes the record's header (and a wrap
 * marker first where the record would not fit before the ring's end) and
 * returns where the packet's bytes go; NULL when the ring is full. */
static inline uint8_t *shm_tx_reserve(struct shm_tx *t, uint32_t len)
{
    uint64_t need = shm_rec_bytes(len);
    uint64_t pos = t->tail & (t->size - 1);
    uint64_t skip = t->size - pos < need ? t->size - pos : 0;
    if (t->tail + skip + need - t->head_seen > t->size) {
        t->head_seen = atomic_load_explicit(&t->ctl->head, memory_order_acquire);
        if (t->tail + skip + need - t->head_seen > t->size)
            return NULL; /* (a consumer's head beyond our tail reads as full) */
    }
    uint32_t h[2];
    if (skip) {
        h[0] = 0;
        h[1] = SHM_REC_WRAP;
        memcpy(t->data + pos, h, sizeof(h));
        t->tail += skip;
        pos = 0;
    }
    h[0] = len;
    h[1] = SHM_REC_PKT;
    memcpy(t->data + pos, h, sizeof(h));
    t->tail += need;
    return t->data + pos + SHM_REC_HDR;
}

/* Makes what shm_tx_reserve wrote visible to the consumer. */
static inline void shm_tx_publish(struct shm_tx *t)
{
    atomic_store_explicit(&t->ctl->tail, t->tail, memory_order_release);
}

/* Frees the records the last shm_rx_read returned: the producer may
 * overwrite them from now on. */
static inline void shm_rx_release(struct shm_rx *r)
{
    if (r->head != r->head_pub) {
        atomic_store_explicit(&r->ctl->head, r->head, memory_order_release);
        r->head_pub = r->head;
    }
}

/* true if the producer has written something we have not read. */
static inline int shm_rx_ready(const struct shm_rx *r)
{
    return atomic_load_explicit(&r->ctl->tail, memory_order_acquire) != r->head;
}

/* Reads up to max packets: bufs[i] and lens[i] point at each in the ring,
 * valid until the next shm_rx_release. Returns how many, or -1 for a ring
 * the producer broke: a tail more than a ring ahead of us, an unknown
 * kind, a length over the MTU, or a record past the tail or the end. */
static inline int shm_rx_read(struct shm_rx *r, const uint8_t **bufs, uint32_t *lens,
                              unsigned max)
{
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    if (tail == r->head)
        return 0;
    if (tail - r->head > r->size)
        return -1;
    unsigned n = 0;
    while (n < max && r->head != tail) {
        uint64_t pos = r->head & (r->size - 1); /* a multiple of 64 */
        uint64_t left = tail - r->head;
        /* One read of each field: the producer may change them under us. */
        const uint32_t *h = (const uint32_t *)(const void *)(r->data + pos);
        uint32_t len = __atomic_load_n(&h[0], __ATOMIC_RELAXED);
        uint32_t kind = __atomic_load_n(&h[1], __ATOMIC_RELAXED);
        if (kind == SHM_REC_WRAP) {
            uint64_t skip = r->size - pos;
            if (pos == 0 || skip > left)
                return -1;
            r->head += skip;
            continue;
        }
        uint64_t need = shm_rec_bytes(len);
        if (kind != SHM_REC_PKT || len > r->mtu || need > r->size - pos || need > left)
            return -1;
        bufs[n] = r->data + pos + SHM_REC_HDR;
        lens[n] = len;
        n++;
        r->head += need;
    }
    return (int)n;
}

#endif
