/*
 * shm_ring.h — one direction of a shm channel: a ring of bytes in memory
 * shared by two processes, one producer and one consumer. Records are
 * variable-length, so a ring holds as many small packets as fit, whatever
 * the MTU:
 *
 *   record  u64 pos | u32 len | u32 kind | len bytes (the packet) |
 *           padding to a multiple of 64 bytes
 *   pos     where the record starts, counted in bytes from the ring's
 *           first use (so it names the lap too): the consumer takes the
 *           record at its head once pos equals its head, and not before
 *   kind    SHM_REC_PKT; SHM_REC_REF, a packet by reference: its 16-byte
 *           header, then a struct shm_ref, where its payload lies in the
 *           producer's heap (below); or SHM_REC_WRAP: the rest of the ring
 *           up to its end is unused, the next record is at offset 0
 *
 * The producer writes a record's bytes, then its header, pos last (a
 * release store): so a packet of up to 32 bytes with udrpc's header is
 * one cache line, and crossing to the other core costs that line alone,
 * with no separate tail index to fetch. A record never straddles the
 * ring's end, so the consumer hands packets on in place (zero copy). The
 * consumer frees what it read with one release store of its head, at its
 * next read; the producer reads that head only when the ring looks full.
 *
 * The heap: each endpoint's msgbufs live in a memfd of its own, which
 * every peer it has a channel with maps read-only. A large payload that
 * lies there goes by reference, and the consumer reads it where the
 * producer's msgbuf holds it: one copy per message and direction, not two.
 * A reference may be read late: after its request was given up on (a
 * deadline, a cancel, a failed session) and the caller has its buffer
 * back, or after a torn-down session's buffers were freed. So each
 * carries the producer's epoch, a word at the start of its heap, which
 * the producer bumps before any such hand-back (void_refs); the consumer,
 * having copied the payload, reads the word again, and drops a payload
 * whose epoch moved, as a seqlock's reader would retry. What else is
 * read late is a duplicate, which the protocol drops unread.
 *
 * The peer writes what we read, and the peer may be buggy or hostile:
 * shm_rx_read reads each field once, checks it against the ring (and a
 * reference against the peer's heap) before using it, and reports a ring
 * that breaks the rules (-1), so that the channel is closed. Nothing read
 * from the ring can take a read or write outside it or the heap, or keep
 * the reader in a loop.
 */
#ifndef UDRPC_TRANSPORT_SHM_RING_H
#define UDRPC_TRANSPORT_SHM_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SHM_REC_ALIGN 64u
#define SHM_REC_HDR 16u
#define SHM_REC_PKT 0x54504B50u  /* "PKTP" */
#define SHM_REC_WRAP 0x50415257u /* "WRAP" */
#define SHM_REC_REF 0x46455252u  /* "RREF" */
#define SHM_PKT_HDR 16u          /* udrpc's packet header (TP_HDR_SIZE) */

/* What follows a REF record's packet header. */
struct shm_ref {
    uint64_t off;              /* in the producer's heap */
    uint32_t len;              /* the payload's bytes: 1 to MTU - header */
    uint32_t epoch;            /* the producer's epoch when sent */
};
/* A heap's first bytes, kept from msgbufs: the epoch word at offset 0. */
#define SHM_HEAP_RESERVED 4096u

/* A reference's check, for the consumer once it has copied the payload. */
struct shm_gen {
    const _Atomic uint32_t *word; /* NULL: a packet copied into the ring */
    uint32_t want;
};
#define SHM_REF_REC_LEN (SHM_PKT_HDR + (uint32_t)sizeof(struct shm_ref))
/* The least payload a producer sends by reference; smaller ones are
 * copied. By reference, RPCs of 1-32 KiB were 1.2-1.4x as fast at depth 1
 * but 0.6-0.9x at depth 8: the peer rewrites lines we still hold when its
 * buffer comes round again, where a ring's come back only a lap later.
 * 64 KiB and 1 MiB gained at every depth (README). */
#define SHM_REF_MIN 49152u

struct shm_rec_hdr {
    _Atomic uint64_t pos;
    uint32_t len;
    uint32_t kind;
};

/* A ring's control block, in the shared region: the consumer's head, and
 * its "about to sleep" flag, which the producer reads (and finds
 * unchanged, in its cache) after each burst. Each has 128 bytes to itself:
 * x86's adjacent-line prefetcher fetches lines in pairs. */
struct shm_ring_ctl {
    _Alignas(128) _Atomic uint64_t head;  /* consumer: bytes freed */
    _Alignas(128) _Atomic uint32_t sleeping;
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
#define SHM_VERSION 2u /* 2: heaps and REF records */
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

/* Positions start at the ring's size, not 0: a ring's zeroed bytes then
 * never read as a record written at the position the consumer waits on. */
#define SHM_POS0(size) (size)

/* Our end of a ring we write. */
struct shm_tx {
    struct shm_ring_ctl *ctl;
    uint8_t *data;
    uint64_t size;       /* bytes, a power of two */
    uint64_t tail;       /* where the next record goes */
    uint64_t head_seen;  /* the consumer's head, as last read */
    uint64_t rec;        /* the record shm_tx_reserve opened */
};

/* Our end of a ring we read. */
struct shm_rx {
    struct shm_ring_ctl *ctl;
    const uint8_t *data;
    uint64_t size;       /* bytes, a power of two */
    uint32_t mtu;        /* the longest packet we accept */
    uint64_t head;       /* read so far */
    uint64_t head_pub;   /* freed: the producer may write below it */
    const uint8_t *heap; /* the producer's heap, read-only (NULL: none) */
    uint64_t heap_bytes;
};

static inline uint64_t shm_rec_bytes(uint32_t len)
{
    return ((uint64_t)SHM_REC_HDR + len + SHM_REC_ALIGN - 1) & ~(uint64_t)(SHM_REC_ALIGN - 1);
}

static inline struct shm_rec_hdr *shm_rec_at(uint8_t *data, uint64_t off)
{
    return (struct shm_rec_hdr *)(void *)(data + off);
}

/* Room for a packet of len bytes (after a wrap marker where the record
 * would not fit before the ring's end): where its bytes go, or NULL when
 * the ring is full. shm_tx_commit then makes it visible. */
static inline uint8_t *shm_tx_reserve(struct shm_tx *t, uint32_t len)
{
    uint64_t need = shm_rec_bytes(len);
    uint64_t off = t->tail & (t->size - 1);
    uint64_t skip = t->size - off < need ? t->size - off : 0;
    if (t->tail + skip + need - t->head_seen > t->size) {
        t->head_seen = atomic_load_explicit(&t->ctl->head, memory_order_acquire);
        if (t->tail + skip + need - t->head_seen > t->size)
            return NULL; /* (a consumer's head beyond our tail reads as full) */
    }
    if (skip) {
        struct shm_rec_hdr *w = shm_rec_at(t->data, off);
        w->len = 0;
        w->kind = SHM_REC_WRAP;
        atomic_store_explicit(&w->pos, t->tail, memory_order_release);
        t->tail += skip;
        off = 0;
    }
    t->rec = t->tail;
    t->tail += need;
    return t->data + off + SHM_REC_HDR;
}

/* Publishes the record shm_tx_reserve(t, len) opened, once its bytes are
 * written: a SHM_REC_PKT or a SHM_REC_REF. */
static inline void shm_tx_commit(struct shm_tx *t, uint32_t len, uint32_t kind)
{
    struct shm_rec_hdr *h = shm_rec_at(t->data, t->rec & (t->size - 1));
    h->len = len;
    h->kind = kind;
    atomic_store_explicit(&h->pos, t->rec, memory_order_release);
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

static inline uint64_t shm_rx_pos(const struct shm_rx *r, uint64_t off)
{
    const struct shm_rec_hdr *h = (const struct shm_rec_hdr *)(const void *)(r->data + off);
    return atomic_load_explicit(&h->pos, memory_order_acquire);
}

/* true if the producer has written a record we have not read. */
static inline int shm_rx_ready(const struct shm_rx *r)
{
    return shm_rx_pos(r, r->head & (r->size - 1)) == r->head;
}

/* Reads up to max packets copied into the ring: bufs[i] and lens[i] point
 * at each (header, then payload) and give its length; valid until the
 * next shm_rx_release. Stops before a reference, and says so in *other
 * (shm_rx_read_one takes it). Returns how many, or -1 for a ring the
 * producer broke: an unknown kind, a length over the MTU, a record past
 * the ring's end, or a wrap marker at its start. */
static inline int shm_rx_read(struct shm_rx *r, const uint8_t **bufs, uint32_t *lens,
                              unsigned max, bool *other)
{
    unsigned n = 0;
    *other = false;
    while (n < max) {
        uint64_t off = r->head & (r->size - 1); /* a multiple of 64 */
        if (shm_rx_pos(r, off) != r->head)
            break; /* not written yet */
        /* One read of each field: the producer may change them under us. */
        const struct shm_rec_hdr *h = (const struct shm_rec_hdr *)(const void *)(r->data + off);
        uint32_t len = __atomic_load_n(&h->len, __ATOMIC_RELAXED);
        uint32_t kind = __atomic_load_n(&h->kind, __ATOMIC_RELAXED);
        if (kind == SHM_REC_WRAP) {
            if (off == 0)
                return -1; /* (a wrap there would skip a whole lap) */
            r->head += r->size - off;
            continue; /* (the record at 0 is no wrap: this loop ends) */
        }
        if (kind == SHM_REC_REF) {
            *other = true; /* (left at the head, read again there) */
            break;
        }
        uint64_t need = shm_rec_bytes(len);
        if (kind != SHM_REC_PKT || len > r->mtu || need > r->size - off)
            return -1;
        bufs[n] = r->data + off + SHM_REC_HDR;
        lens[n] = len;
        n++;
        r->head += need;
    }
    return (int)n;
}

/* The record at the consumer's head, of either kind: 1 and the packet
 * (its header at *buf, its payload at *data, behind the header or in the
 * producer's heap, its length with the header, and for a reference its
 * check, gen->word NULL otherwise), 0 if none is written yet, -1 for a
 * broken ring (as shm_rx_read, or a reference outside the producer's
 * heap). */
static inline int shm_rx_read_one(struct shm_rx *r, const uint8_t **buf, const uint8_t **data,
                                  uint32_t *plen, struct shm_gen *gen)
{
    for (;;) {
        uint64_t off = r->head & (r->size - 1);
        if (shm_rx_pos(r, off) != r->head)
            return 0;
        const struct shm_rec_hdr *h = (const struct shm_rec_hdr *)(const void *)(r->data + off);
        uint32_t len = __atomic_load_n(&h->len, __ATOMIC_RELAXED);
        uint32_t kind = __atomic_load_n(&h->kind, __ATOMIC_RELAXED);
        if (kind == SHM_REC_WRAP) {
            if (off == 0)
                return -1;
            r->head += r->size - off;
            continue;
        }
        uint64_t need = shm_rec_bytes(len);
        if (len > r->mtu || need > r->size - off)
            return -1;
        const uint8_t *pkt = r->data + off + SHM_REC_HDR;
        gen->word = NULL;
        if (kind == SHM_REC_PKT) {
            *data = pkt + SHM_PKT_HDR;
        } else if (kind == SHM_REC_REF && len == SHM_REF_REC_LEN) {
            const struct shm_ref *ref = (const struct shm_ref *)(const void *)(pkt + SHM_PKT_HDR);
            uint64_t ref_off = __atomic_load_n(&ref->off, __ATOMIC_RELAXED);
            uint32_t ref_len = __atomic_load_n(&ref->len, __ATOMIC_RELAXED);
            if (ref_len == 0 || ref_len > r->mtu - SHM_PKT_HDR || ref_off > r->heap_bytes ||
                ref_len > r->heap_bytes - ref_off)
                return -1; /* (no heap: heap_bytes is 0; else at least 4 KiB) */
            *data = r->heap + ref_off;
            gen->word = (const _Atomic uint32_t *)(const void *)r->heap;
            gen->want = __atomic_load_n(&ref->epoch, __ATOMIC_RELAXED);
            len = SHM_PKT_HDR + ref_len;
        } else {
            return -1;
        }
        *buf = pkt;
        *plen = len;
        r->head += need;
        return 1;
    }
}

#endif
