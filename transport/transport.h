/*
 * transport.h — the interface between the Rpc datapath and a datagram
 * transport. The Rpc calls it per burst, never per packet, through one
 * table of function pointers.
 *
 * Contracts:
 *  - rx_burst fills up to max packets; each points into the transport's own
 *    receive buffers (zero copy) and stays valid until the next rx_burst.
 *    A packet is its header and its payload, which follows it but for shm's
 *    packets by reference (ref: the payload where the peer's msgbuf holds
 *    it).
 *  - tx_burst takes up to n packets (header + payload gathered, zero copy)
 *    and returns how many it took; the rest were not sent.
 *  - tx_flush returns once no send still references caller memory
 *    (a no-op for transports that copy at tx_burst, such as udp).
 *  - A peer is a session's remote endpoint: the transport builds it from
 *    the routing info the peer advertised during session management, and
 *    rx_burst reports each packet's source as a src_id comparable with
 *    peer.src_id, so the Rpc can check that a packet comes from its
 *    session's peer. Every src_id a transport makes carries its src_tag
 *    in src_id[1]'s top byte (the endpoint's index of the transport), so
 *    that two transports of one endpoint never report the same source.
 */
#ifndef UDRPC_TRANSPORT_H
#define UDRPC_TRANSPORT_H

#include <linux/filter.h>
#include <linux/sock_diag.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "udrpc.h"

enum tp_kind { TP_UDP = 1, TP_LOOP = 2, TP_VERBS = 3, TP_MLX5 = 4, TP_SHM = 5, TP_XDP = 6 };

/* The data header as transports see it (runtime/wire.h has the layout and
 * checks these against it): its size, and what the udp socket filter
 * tests, the magic in byte 7 and two reserved bits in byte 6. */
#define TP_HDR_SIZE 16u
#define TP_HDR_MAGIC_OFF 7u
#define TP_HDR_MAGIC 0xB7u
#define TP_HDR_RESERVED_OFF 6u
#define TP_HDR_RESERVED_BITS 0xC0u

#define TP_ROUTE_MAX 46

/* Routing info as carried by SM packets. */
struct tp_route {
    uint8_t kind;               /* enum tp_kind */
    uint8_t len;                /* bytes used */
    uint8_t bytes[TP_ROUTE_MAX];
};

struct tp_peer {
    uint64_t src_id[2];         /* rx_burst reports this for the peer */
    uint8_t tx[48];             /* transport-private TX address */
    uint8_t tpi;                /* the endpoint's: which of its transports */
};

struct tp_tx_pkt {
    const struct tp_peer *peer;
    const void *hdr;            /* UDRPC_HDR_SIZE bytes */
    const void *data;           /* data_len bytes; may be NULL if 0 */
    uint32_t data_len;
    uint32_t lkey;              /* memory key of data (RDMA transports) */
};

/* A payload by reference (shm): where it lies, in memory its sender may
 * still change. It is what was sent only if, once copied, *epoch_word
 * still reads epoch (the sender bumps it before it frees or hands back a
 * buffer that an unread reference may name: a seqlock's check). */
struct tp_rx_ref {
    const uint8_t *data;        /* len - UDRPC_HDR_SIZE bytes */
    const _Atomic uint32_t *epoch_word;
    uint32_t epoch;
};

struct tp_rx_pkt {
    const uint8_t *buf;         /* header, then payload (but see ref) */
    const struct tp_rx_ref *ref; /* NULL, or the payload is elsewhere (read
                                   only in a burst after which the
                                   transport's rx_refs is true) */
    uint32_t len;               /* bytes, header included */
    uint64_t src_id[2];
};

struct transport;

struct transport_ops {
    unsigned (*rx_burst)(struct transport *tp, struct tp_rx_pkt *pkts,
                         unsigned max, uint64_t now_tsc);
    unsigned (*tx_burst)(struct transport *tp, const struct tp_tx_pkt *pkts,
                         unsigned n, uint64_t now_tsc);
    void (*tx_flush)(struct transport *tp);
    /* Returns 0, or -EINVAL for routing info this transport cannot use
     * (-EAFNOSUPPORT: an address family it cannot reach). peer_sm is the
     * peer Nexus's SM address as we reach it: udp takes the address from
     * it when the route's is 0.0.0.0 or :: (a peer bound to every
     * address), and the zone of a link-local one. */
    int (*make_peer)(struct transport *tp, const struct tp_route *r,
                     const union tp_addr *peer_sm, struct tp_peer *peer);
    /* The route a client advertises to the server endpoint (peer_sm,
     * rpc_id): 0, or -errno where this transport cannot reach it (shm: not
     * on this host), and the session goes over the endpoint's next
     * transport. NULL: tp->local, for any peer. Off the datapath. */
    int (*route_for)(struct transport *tp, const union tp_addr *peer_sm, uint8_t rpc_id,
                     struct tp_route *out);
    /* The Rpc's 1 ms scan, off the datapath (shm: new channels, hang-ups).
     * NULL: nothing to do. */
    void (*scan)(struct transport *tp);
    /* A file descriptor that polls readable (POLLIN) when rx_burst may have
     * packets, once arm has been called: for idle sleep and udrpc_get_fd.
     * NULL for a transport that cannot block (its endpoints busy-poll). */
    int (*poll_fd)(struct transport *tp);
    /* Before the endpoint blocks on poll_fd: makes new packets signal it
     * (shm: its peers write its eventfd only while it says it sleeps).
     * false: packets are waiting already, do not block. disarm: the
     * endpoint is awake again. NULL: poll_fd always signals (udp's
     * socket). Off the busy-polling path. */
    bool (*arm)(struct transport *tp);
    void (*disarm)(struct transport *tp);
    /* Adds the transport's own counters to out (kernel_drops: datagrams
     * the kernel dropped before we saw them, its socket filter or a full
     * receive buffer; udp's offload fields). NULL where it has none. Read
     * by udrpc_get_stats(), never on the datapath. */
    void (*stats)(struct transport *tp, udrpc_stats_t *out);
    /* Registers [base, base + len) for sends (RDMA: an MR); *lkey goes in
     * each msgbuf of the region. NULL: no registration needed. The
     * transport releases its registrations when destroyed. */
    int (*reg_mem)(struct transport *tp, void *base, size_t len, uint32_t *lkey);
    /* Lends len bytes of memory the transport can send from without a copy
     * (xdp: its UMEM), for msgbuf regions: NULL where it has no more, and
     * the allocator maps its own. The memory stays the transport's, valid
     * until destroy. Called from the Rpc's thread and the background
     * allocator's at once. NULL: it lends none. */
    void *(*lend_mem)(struct transport *tp, size_t len);
    /* Voids every payload sent by reference so far (shm): a peer that
     * reads one later drops it as stale. The Rpc calls it before it frees
     * or hands back a buffer while the peer may still hold an unread
     * reference to it: a request given up on, or failed, a session torn
     * down. Off the datapath. NULL: it sends none. */
    void (*void_refs)(struct transport *tp);
    void (*destroy)(struct transport *tp);
};

struct transport_desc;

struct transport {
    const struct transport_ops *ops;
    const struct transport_desc *desc; /* its registry row */
    const char *name;
    enum tp_kind kind;
    unsigned mtu;               /* largest datagram, header included */
    double link_rate_bytes_per_s; /* congestion control's default link rate */
    struct tp_route local;      /* what this endpoint advertises */
    uint64_t src_tag;           /* OR-ed into every src_id[1] (tp_params) */
    bool rx_refs;               /* set by rx_burst when some of the packets
                                   it returns came by reference (shm), and
                                   every one's tp_rx_pkt.ref is set; the
                                   Rpc reads ref only then, and clears it */
    /* A change the transport made on its own (udp: GSO or GRO refused and
     * turned off), for the Rpc to log once, off the datapath, and clear.
     * NULL: nothing to say. */
    const char *notice;
};

/* Datagrams the kernel dropped at socket fd since it was made (filter or
 * full buffer): SK_MEMINFO_DROPS, a 32-bit counter. 0 if unknown. */
static inline uint64_t udrpc__sock_drops(int fd)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
        len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t))
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

/* Attaches a classic BPF program to a UDP socket, so that the kernel drops
 * what cannot be ours before it is queued: on loopback and under a flood,
 * that work is done in the sender's context, not ours. Offsets in the
 * program count from the UDP header (8 bytes before the payload). Best
 * effort: without it, the same checks happen in user space. */
static inline void udrpc__sock_filter(int fd, struct sock_filter *code, unsigned short n)
{
    struct sock_fprog prog = { .len = n, .filter = code };
    (void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* Fault injection's dice (loop's faults, verbs' and mlx5's drop_ppm, the
 * NIC model): xorshift64*, fast, and one seed gives one sequence. The
 * state must not be 0. */
static inline uint64_t udrpc__rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* true with probability ppm / 10^6 (never for 0, which draws nothing). */
static inline bool udrpc__chance_ppm(uint64_t *state, uint32_t ppm)
{
    return ppm && (uint32_t)(udrpc__rng_next(state) % 1000000u) < ppm;
}

/* Fault injection on a send path (udrpc_config_t.faults), for transports
 * with no fault model of their own (udp, verbs, mlx5 on hardware): drops
 * and duplicates. Off the common path: one test per burst when off. */
#define TP_FAULTS_DROP_DUP 1u   /* what udrpc__tp_faults_check accepts */
#define TP_FAULTS_ALL 2u
struct tp_faults {
    uint32_t drop_ppm, dup_ppm; /* both 0: off */
    uint64_t rng;
    uint64_t dropped, duplicated;
};
/* 0, or -ENOTSUP if cfg asks for a kind of fault beyond what (one of the
 * TP_FAULTS_*) allows. */
int udrpc__tp_faults_check(const udrpc_faults_t *cfg, unsigned what);
void udrpc__tp_faults_init(struct tp_faults *f, const udrpc_faults_t *cfg, uint64_t salt);
static inline bool udrpc__tp_faults_on(const struct tp_faults *f)
{
    return (f->drop_ppm | f->dup_ppm) != 0;
}
/* Writes into out (room for 2n) what is to be sent of in[0, n): each
 * packet dropped or sent twice by chance. Returns how many. */
unsigned udrpc__tp_faults_apply(struct tp_faults *f, const struct tp_tx_pkt *in, unsigned n,
                                struct tp_tx_pkt *out);
/* What tx_burst returns for the wanted packets it was given, once sent of
 * the k that udrpc__tp_faults_apply made of them left: all wanted when
 * all k did, else the same share of them. */
static inline unsigned udrpc__tp_faults_taken(unsigned wanted, unsigned sent, unsigned k)
{
    return sent == k ? wanted : (unsigned)((uint64_t)wanted * sent / (k ? k : 1));
}

/* ---- The registry (transport.c) ---- */

/* What an endpoint tells a transport it makes. */
struct tp_params {
    union tp_addr bind;         /* the Nexus's address (its port: the SM's) */
    uint64_t src_tag;           /* for src_id[1]'s top byte: index << 56 */
    uint8_t rpc_id;             /* the endpoint's (shm: its socket's name) */
    char *why;                  /* TP_WHY_LEN bytes, "" on entry: where
                                   create fails, what went wrong, for the
                                   log (xdp: which capability is missing) */
};
#define TP_WHY_LEN 200
#define TP_SRC_TAG_SHIFT 56

struct transport_desc {
    const char *name;
    enum tp_kind kind;
    int rank;                   /* "auto" takes the usable one of highest
                                   rank; 0: only when named */
    bool (*probe)(const udrpc_config_t *cfg); /* can it run here? */
    /* Makes one: 0 and *out, or -errno. NULL: left out of this build. */
    int (*create)(const udrpc_config_t *cfg, const struct tp_params *p,
                  struct transport **out);
};

/* The row named name[0, len), or NULL. */
const struct transport_desc *udrpc__transport_find(const char *name, size_t len);
/* The row "auto" picks here, or NULL. */
const struct transport_desc *udrpc__transport_auto(const udrpc_config_t *cfg);
/* Makes a transport of row d: 0, -ENODEV (not built here, or no device),
 * or the transport's -errno. */
int udrpc__transport_create(const struct transport_desc *d, const udrpc_config_t *cfg,
                            const struct tp_params *p, struct transport **out);

#endif
