/*
 * xdp.c — the AF_XDP transport: kernel bypass on any Linux network
 * interface, without DPDK. One AF_XDP socket per Rpc on one queue of one
 * interface; udrpc builds the Ethernet, IPv4 and UDP headers itself, so
 * its datagrams are the same udrpc packets udp sends, and a peer over xdp
 * looks like any UDP sender on the wire. This file: set-up and the
 * datapath; the XDP program, privileges and neighbours are xdp_ctl.c.
 *
 * Set-up. The interface: cfg->device, else UDRPC_XDP_IF, else the one
 * holding the Nexus's IPv4 address. A list ("eth1,eth2") gives each new
 * endpoint of the process the next interface none of the others holds
 * (one endpoint per interface queue). The queue: UDRPC_XDP_QUEUE (0). A
 * kernel UDP socket on the interface's address holds our data port (so
 * that nothing else takes it) and drops whatever reaches it: the XDP
 * program (xdp_ctl.c) redirects the port's datagrams on our queue to our
 * socket before the kernel sees them. Session management stays on the
 * Nexus's kernel socket. Routing info: MAC (6 bytes), IPv4 address (4),
 * port (2), queue (2), network order (the queue is for the record: the
 * peer's NIC, not the sender, decides where a frame lands).
 *
 * Modes, probed at creation, in udrpc_get_stats' xdp_mode:
 *  - native (the driver runs the program) or SKB (the kernel runs it on
 *    its socket buffers, any driver). UDRPC_XDP_MODE=native|skb|auto;
 *    auto takes SKB mode on veth, where it measured faster (the issue's
 *    lab: 162 K against 138 K round trips/s at depth 1), else native,
 *    falling back to SKB where the driver refuses;
 *  - zero-copy (the NIC DMAs into our frames) where the driver does it in
 *    native mode, else copy (the kernel copies each frame).
 *
 * Memory (UMEM): XDP_RX_FRAMES receive frames and XDP_TX_FRAMES send
 * frames of XDP_FRAME bytes, 4 MiB, then, where in-place sends are on, an
 * arena (UDRPC_XDP_ARENA_MB, 32 MiB) lent to the msgbuf allocator
 * (lend_mem). A send writes the peer's prebuilt Ethernet/IPv4/UDP header
 * and the udrpc header into a send frame and sums the UDP checksum (the
 * kernel does no checksum for AF_XDP). The payload:
 *  - copied into the frame behind the headers, by default;
 *  - in place: a payload of XDP_IN_PLACE_MIN bytes or more that lies in
 *    the arena goes as the packet's next descriptors (a multi-buffer
 *    packet, Linux 6.6), so the NIC reads it from the msgbuf, as verbs
 *    gathers from its MRs. tx_flush then waits for their completions
 *    (the runtime may reuse a msgbuf once it returns), for a second at
 *    most (void_stalled). On by default in zero-copy mode only: in copy
 *    mode the kernel copies each descriptor into a page of its own, and
 *    veth measured in-place sends at 0.97-1.05x the copying sends' RPC/s
 *    at 4 KiB, 0.87-0.89x at 64 KiB and 0.71-0.84x at 1 MiB
 *    (bench/xdp_ab.sh in_place). UDRPC_XDP_IN_PLACE=0|1 decides.
 *
 * Datapath, no allocation and at most one syscall per burst:
 *  - rx_burst returns the previous burst's frames to the fill ring, reaps
 *    send completions, re-kicks the kernel while sends wait in the send
 *    ring (in copy mode one kick moves at most 32 frames), then reads the
 *    receive ring. Each frame is checked in full: Ethernet to our MAC,
 *    IPv4 without options or fragments to our address, UDP to our port,
 *    lengths that agree with the frame, both checksums. A frame that
 *    fails is dropped and counted (xdp_rx_bad); the packet inside goes
 *    through the runtime's checks like any other.
 *  - tx_burst fills the send ring, one release store per burst, and kicks
 *    with one sendto where the kernel needs it (copy mode, or the ring's
 *    need-wakeup flag in zero-copy mode).
 * IPv4 only: an IPv6 Nexus gets -EAFNOSUPPORT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_xdp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "clock.h"
#include "compiler.h"
#include "xdp_internal.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)    /* Linux 6.6: packets of several descriptors */
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0) /* the packet goes on in the next descriptor */
#endif

#define XDP_FRAME 4096u
#define XDP_RX_FRAMES 512u
#define XDP_TX_FRAMES 512u
/* Send and completion ring entries: a packet sent in place takes up to 3
 * descriptors (its headers' frame, its payload on either side of a frame
 * boundary), so 3 per send frame always fit. */
#define XDP_TX_DESCS 2048u
_Static_assert(XDP_TX_DESCS >= 3 * XDP_TX_FRAMES, "in-place sends fit the send ring");
/* Payloads of at least this many bytes leave from their msgbuf in place,
 * where that is on (below it, a copy costs less than a descriptor). */
#define XDP_IN_PLACE_MIN 512u
#define XDP_ARENA_MB 32u /* UMEM lent to msgbufs, by default */
#define XDP_FILL_RING (2 * XDP_RX_FRAMES) /* a returned frame's slot may show late */
#define XDP_RX_BURST 64u
#define XDP_TX_BURST 64u
#define XDP_HDRS 42u /* Ethernet 14, IPv4 20, UDP 8 */
/* What a frame holds in copy mode: the frame less the kernel's headroom. */
#define XDP_MAX_FRAME_LEN (XDP_FRAME - 256u)

/* One ring of the four, as mapped, and our cached view of its indices. */
struct xring {
    uint32_t *prod, *cons, *flags;
    void *descs;
    uint32_t mask;
    uint32_t cached_prod, cached_cons;
    void *map;
    size_t map_len;
};

/* A peer's send header, prebuilt, and the sums that do not change per
 * packet: the IPv4 header's (its length field 0) and the UDP checksum's
 * pseudo-header and ports. Fits tp_peer.tx. */
struct xdp_peer {
    uint8_t hdr[XDP_HDRS];
    uint16_t ip_sum;
    uint32_t udp_sum;
};
_Static_assert(sizeof(struct xdp_peer) <= sizeof(((struct tp_peer *)0)->tx), "xdp_peer fits");

struct xdp_transport {
    struct transport base;
    int fd;                     /* the AF_XDP socket */
    int port_fd;                /* kernel UDP socket holding the port */
    struct xdp_if ifc;
    char claimed[IF_NAMESIZE];  /* the interface claimed from a list, or "" */
    char notice_buf[320];       /* base.notice, where composed here */
    uint16_t port_be;
    uint32_t queue;
    bool zerocopy;
    bool rx_skip;               /* dropping the rest of a many-descriptor frame */
    struct xdp_prog prog;
    uint8_t *umem;
    size_t umem_len;
    /* Msgbuf memory inside the UMEM (lend_mem): sends take payloads of
     * XDP_IN_PLACE_MIN bytes or more from there in place. 0: none. */
    uint64_t arena_off;
    size_t arena_len, arena_used;
    uint32_t in_place_min;       /* payload bytes (UINT32_MAX: never) */
    uint64_t in_place_posted, in_place_done; /* their payload descriptors */
    uint64_t in_place_pkts;      /* udrpc_get_stats: xdp_in_place_sends */
    struct xring rx, fill, tx, comp;
    uint64_t held[XDP_RX_FRAMES]; /* receive frames lent out or not yet refilled */
    unsigned n_held;
    uint64_t tx_free[XDP_TX_FRAMES];
    unsigned n_tx_free;
    unsigned tx_outstanding;      /* send descriptors not completed */
    struct tp_faults faults;      /* tests: drop, duplicate */
    struct tp_tx_pkt faulted[XDP_TX_BURST];
    uint64_t rx_bad, tx_kicks;    /* udrpc_get_stats */
};

/* ---------------------------------------------------------- ring helpers */

static inline uint32_t load_acquire(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Entries the consumer may read now (rx, comp). */
static inline uint32_t ring_avail(struct xring *r)
{
    uint32_t n = r->cached_prod - r->cached_cons;
    if (n == 0) {
        r->cached_prod = load_acquire(r->prod);
        n = r->cached_prod - r->cached_cons;
    }
    return n;
}

/* Free slots the producer may fill now (fill, tx), of size. */
static inline uint32_t ring_room(struct xring *r, uint32_t size, uint32_t want)
{
    uint32_t room = size - (r->cached_prod - r->cached_cons);
    if (room < want) {
        r->cached_cons = load_acquire(r->cons);
        room = size - (r->cached_prod - r->cached_cons);
    }
    return room;
}

/* -------------------------------------------------------------- checksums */

/* The ones'-complement sum of len bytes at p, as 16-bit words of network
 * order read natively (the folded result is stored natively too). */
static inline uint64_t csum_add(uint64_t sum, const uint8_t *p, uint32_t len)
{
    while (len >= 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 4);
        sum += (uint64_t)a + b;
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t a;
        memcpy(&a, p, 4);
        sum += a;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t a;
        memcpy(&a, p, 2);
        sum += a;
        p += 2;
        len -= 2;
    }
    if (len)
        sum += *p; /* the odd last byte, as the high byte of a word */
    return sum;
}

static inline uint16_t csum_fold(uint64_t sum)
{
    sum = (sum & 0xFFFFFFFFu) + (sum >> 32);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)sum;
}

/* ------------------------------------------------------------------ RX */

/* The udrpc packet in frame f of len bytes, checked as the kernel would
 * have checked a datagram for our socket (and more: the checksums are
 * verified, not trusted); NULL for a frame to drop. */
static inline const uint8_t *frame_packet(const struct xdp_transport *x, const uint8_t *f,
                                          uint32_t len, uint32_t *pkt_len, uint64_t src[2])
{
    if (unlikely(len < XDP_HDRS || memcmp(f, x->ifc.mac, 6) != 0))
        return NULL;
    const uint8_t *ip = f + 14, *udp = f + 34;
    uint16_t ethertype, tot_be, frag_be, ulen_be, port_be, ucsum;
    memcpy(&ethertype, f + 12, 2);
    memcpy(&tot_be, ip + 2, 2);
    memcpy(&frag_be, ip + 6, 2);
    const uint32_t tot = ntohs(tot_be);
    uint32_t dst_ip;
    memcpy(&dst_ip, ip + 16, 4);
    if (unlikely(ethertype != htons(0x0800) || ip[0] != 0x45 || ip[9] != IPPROTO_UDP ||
                 tot < 28 || 14 + tot > len || (frag_be & htons(0x3FFF)) != 0 ||
                 dst_ip != x->ifc.ip_be || csum_fold(csum_add(0, ip, 20)) != 0xFFFF))
        return NULL;
    memcpy(&ulen_be, udp + 4, 2);
    memcpy(&port_be, udp + 2, 2);
    memcpy(&ucsum, udp + 6, 2);
    const uint32_t ulen = ntohs(ulen_be);
    if (unlikely(port_be != x->port_be || ulen != tot - 20))
        return NULL;
    if (ucsum != 0) { /* 0: the sender did not sum (IPv4 allows it) */
        uint64_t sum = csum_add(0, ip + 12, 8) + htons(IPPROTO_UDP) + ulen_be;
        if (unlikely(csum_fold(csum_add(sum, udp, ulen)) != 0xFFFF))
            return NULL;
    }
    uint32_t src_ip;
    uint16_t src_port;
    memcpy(&src_ip, ip + 12, 4);
    memcpy(&src_port, udp, 2);
    src[0] = (uint64_t)src_ip << 16 | src_port; /* as udp's src_id for IPv4 */
    src[1] = x->base.src_tag;
    *pkt_len = ulen - 8;
    return udp + 8;
}

/* Send frames the kernel is done with go back on the free list. */
static inline void reap_completions(struct xdp_transport *x)
{
    uint32_t n = ring_avail(&x->comp);
    if (n == 0)
        return;
    const uint64_t *addrs = x->comp.descs;
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t addr = addrs[(x->comp.cached_cons + i) & x->comp.mask];
        if (likely(addr < x->arena_off))
            x->tx_free[x->n_tx_free++] = addr; /* a send frame */
        else
            x->in_place_done++;                /* a msgbuf's payload */
    }
    x->comp.cached_cons += n;
    store_release(x->comp.cons, x->comp.cached_cons);
    x->tx_outstanding -= n;
}

static inline void kick(struct xdp_transport *x)
{
    x->tx_kicks++;
    (void)sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0); /* EAGAIN etc.: next pass */
}

/* Whether the kernel needs a kick to send: always in copy mode, in
 * zero-copy mode where the driver asks (the ring's need-wakeup flag). */
static inline bool wants_kick(const struct xdp_transport *x)
{
    return !x->zerocopy || (__atomic_load_n(x->tx.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP);
}

/* Sends still in the ring: the kernel stopped short (copy mode moves at
 * most 32 per kick, and none while the device queue is full): kick again. */
static inline void rekick(struct xdp_transport *x)
{
    if (__atomic_load_n(x->tx.cons, __ATOMIC_RELAXED) != x->tx.cached_prod && wants_kick(x))
        kick(x);
}

/* The frames lent out by the last burst go back to the fill ring (those
 * whose slot does not show free yet, next time). */
static inline void refill(struct xdp_transport *x)
{
    uint32_t n = ring_room(&x->fill, XDP_FILL_RING, x->n_held);
    if (n > x->n_held)
        n = x->n_held;
    uint64_t *addrs = x->fill.descs;
    for (uint32_t i = 0; i < n; i++)
        addrs[(x->fill.cached_prod + i) & x->fill.mask] = x->held[x->n_held - 1 - i];
    x->n_held -= n;
    x->fill.cached_prod += n;
    store_release(x->fill.prod, x->fill.cached_prod);
}

static unsigned xdp_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                             uint64_t now_tsc)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    (void)now_tsc;
    if (x->n_held)
        refill(x);
    if (x->tx_outstanding) {
        reap_completions(x);
        rekick(x);
    }
    uint32_t n = ring_avail(&x->rx);
    if (n == 0) {
        if (x->zerocopy && (__atomic_load_n(x->fill.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP))
            (void)recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        return 0;
    }
    if (n > max)
        n = max;
    if (n > XDP_RX_BURST)
        n = XDP_RX_BURST;
    if (n > XDP_RX_FRAMES - x->n_held)
        n = XDP_RX_FRAMES - x->n_held;
    const struct xdp_desc *d = x->rx.descs;
    unsigned out = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct xdp_desc *desc = &d[(x->rx.cached_cons + i) & x->rx.mask];
        const uint64_t addr = desc->addr;
        if (unlikely(addr + desc->len > (uint64_t)XDP_RX_FRAMES * XDP_FRAME)) {
            x->rx_bad++; /* not one of ours (never seen): not refilled */
            continue;
        }
        x->held[x->n_held++] = addr & ~(uint64_t)(XDP_FRAME - 1);
        /* A frame larger than ours comes in several descriptors (the socket
         * takes them for sends): never a udrpc packet. Dropped whole. */
        if (unlikely(x->rx_skip | (desc->options & XDP_PKT_CONTD))) {
            x->rx_bad += !x->rx_skip;
            x->rx_skip = (desc->options & XDP_PKT_CONTD) != 0;
            continue;
        }
        uint32_t len;
        const uint8_t *p = frame_packet(x, x->umem + addr, desc->len, &len, pkts[out].src_id);
        if (unlikely(!p)) {
            x->rx_bad++;
            continue;
        }
        pkts[out].buf = p;
        pkts[out].len = len;
        out++;
    }
    x->rx.cached_cons += n;
    store_release(x->rx.cons, x->rx.cached_cons);
    return out;
}

/* ------------------------------------------------------------------ TX */

static inline void put_desc(struct xdp_desc *d, uint64_t addr, uint32_t len, uint32_t options)
{
    d->addr = addr;
    d->len = len;
    d->options = options;
}

static inline unsigned xdp_send(struct xdp_transport *x, const struct tp_tx_pkt *pkts,
                                unsigned n)
{
    if (x->n_tx_free < n)
        reap_completions(x);
    if (n > x->n_tx_free)
        n = x->n_tx_free; /* the rest: not taken (retransmission recovers) */
    if (n == 0)
        return 0;
    struct xdp_desc *d = x->tx.descs;
    const uint8_t *arena = x->umem + x->arena_off;
    uint32_t k = x->tx.cached_prod; /* the next descriptor */
    for (unsigned i = 0; i < n; i++) {
        const struct tp_tx_pkt *p = &pkts[i];
        const struct xdp_peer *pp = (const struct xdp_peer *)(const void *)p->peer->tx;
        const uint64_t addr = x->tx_free[--x->n_tx_free];
        uint8_t *f = x->umem + addr;
        const uint32_t plen = TP_HDR_SIZE + p->data_len;
        const uint16_t ulen_be = htons((uint16_t)(8 + plen));
        memcpy(f, pp->hdr, XDP_HDRS);
        memcpy(f + XDP_HDRS, p->hdr, TP_HDR_SIZE);
        uint64_t sum = (uint64_t)pp->udp_sum + 2u * ulen_be;
        /* The payload's offset in the arena (huge where it is not there). */
        const uint64_t in_arena = (uint64_t)((const uint8_t *)p->data - arena);
        if (p->data_len >= x->in_place_min && in_arena < x->arena_len) {
            /* In place: the headers' frame, then the payload where it lies,
             * cut where it crosses a UMEM chunk (a descriptor may not). */
            sum = csum_add(csum_add(sum, f + XDP_HDRS, TP_HDR_SIZE), p->data, p->data_len);
            const uint64_t at = x->arena_off + in_arena;
            const uint32_t head = XDP_FRAME - (uint32_t)(at & (XDP_FRAME - 1));
            put_desc(&d[k++ & x->tx.mask], addr, XDP_HDRS + TP_HDR_SIZE, XDP_PKT_CONTD);
            if (p->data_len > head) {
                put_desc(&d[k++ & x->tx.mask], at, head, XDP_PKT_CONTD);
                put_desc(&d[k++ & x->tx.mask], at + head, p->data_len - head, 0);
                x->in_place_posted += 2;
            } else {
                put_desc(&d[k++ & x->tx.mask], at, p->data_len, 0);
                x->in_place_posted++;
            }
            x->in_place_pkts++;
        } else {
            if (p->data_len)
                memcpy(f + XDP_HDRS + TP_HDR_SIZE, p->data, p->data_len);
            sum = csum_add(sum, f + XDP_HDRS, plen);
            put_desc(&d[k++ & x->tx.mask], addr, XDP_HDRS + plen, 0);
        }
        const uint16_t tot_be = htons((uint16_t)(20 + 8 + plen));
        const uint16_t ip_csum = (uint16_t)~csum_fold((uint64_t)pp->ip_sum + tot_be);
        uint16_t ucsum = (uint16_t)~csum_fold(sum);
        if (ucsum == 0)
            ucsum = 0xFFFF; /* 0 would mean "no checksum" */
        memcpy(f + 16, &tot_be, 2);
        memcpy(f + 24, &ip_csum, 2);
        memcpy(f + 38, &ulen_be, 2);
        memcpy(f + 40, &ucsum, 2);
    }
    x->tx_outstanding += k - x->tx.cached_prod;
    x->tx.cached_prod = k;
    store_release(x->tx.prod, k);
    if (wants_kick(x))
        kick(x);
    return n;
}

static unsigned xdp_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                             uint64_t now_tsc)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    (void)now_tsc;
    if (n > XDP_TX_BURST)
        n = XDP_TX_BURST;
    if (unlikely(udrpc__tp_faults_on(&x->faults))) { /* tests */
        if (n > XDP_TX_BURST / 2)
            n = XDP_TX_BURST / 2; /* room to duplicate each */
        unsigned k = udrpc__tp_faults_apply(&x->faults, pkts, n, x->faulted);
        return udrpc__tp_faults_taken(n, xdp_send(x, x->faulted, k), k);
    }
    return xdp_send(x, pkts, n);
}

/* Sends that did not complete in XDP_FLUSH_WAIT_NS: the kernel holds them
 * (the interface went down, the driver stopped). Their msgbufs may be
 * reused once tx_flush returns, so each frame the kernel has not taken yet
 * is made one that no host accepts (its EtherType 0), in place sends stop,
 * and the protocol retransmits what was lost. In copy mode the kernel
 * takes frames only inside our own kicks, so this cannot race it; in
 * zero-copy mode a driver holding a frame for a second may still send a
 * reused payload, which the receiver's UDP checksum then drops unless the
 * new bytes happen to sum the same (1 in 65,536). */
#define XDP_FLUSH_WAIT_NS 1000000000ull
static void void_stalled(struct xdp_transport *x)
{
    const struct xdp_desc *d = x->tx.descs;
    for (uint32_t i = __atomic_load_n(x->tx.cons, __ATOMIC_ACQUIRE); i != x->tx.cached_prod; i++) {
        const uint64_t addr = d[i & x->tx.mask].addr;
        if (addr < x->arena_off)
            memset(x->umem + addr + 12, 0, 2);
    }
    x->in_place_min = UINT32_MAX;
    x->in_place_done = x->in_place_posted;
    x->base.notice = "xdp: sends stalled for a second (is the interface down?): the frames "
                     "waiting were voided, and payloads are copied from now on";
}

/* Returns once no send reads a msgbuf: every in-place payload completed
 * (kicking meanwhile where the kernel needs it, as in rx_burst). */
static void xdp_tx_flush(struct transport *tp)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    uint64_t deadline_ns = 0;
    for (unsigned spins = 1; x->in_place_done < x->in_place_posted; spins++) {
        reap_completions(x);
        if (x->in_place_done >= x->in_place_posted)
            return;
        rekick(x);
        if ((spins & 1023) == 0) {
            const uint64_t now_ns = udrpc__monotonic_ns();
            if (deadline_ns == 0) {
                deadline_ns = now_ns + XDP_FLUSH_WAIT_NS;
            } else if (now_ns > deadline_ns) {
                void_stalled(x);
                return;
            }
        }
    }
}

/* ---------------------------------------------------------------- peers */

static int xdp_make_peer(struct transport *tp, const struct tp_route *r,
                         const union tp_addr *peer_sm, struct tp_peer *peer)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    (void)peer_sm;
    if (r->kind != TP_XDP || r->len != 14)
        return -EINVAL;
    uint32_t ip_be;
    uint16_t port_be;
    memcpy(&ip_be, r->bytes + 6, 4);
    memcpy(&port_be, r->bytes + 10, 2);
    if (ip_be == 0 || port_be == 0)
        return -EINVAL;
    struct xdp_peer pp;
    memset(&pp, 0, sizeof(pp));
    int ret = udrpc__xdp_next_hop_mac(&x->ifc, ip_be, r->bytes, pp.hdr);
    if (ret)
        return ret;
    uint8_t *h = pp.hdr;
    memcpy(h + 6, x->ifc.mac, 6);
    h[12] = 0x08;                           /* IPv4 */
    h[13] = 0x00;
    uint8_t *ip = h + 14;
    ip[0] = 0x45;                           /* version 4, 20-byte header */
    ip[6] = 0x40;                           /* don't fragment */
    ip[8] = 64;                             /* TTL */
    ip[9] = IPPROTO_UDP;
    memcpy(ip + 12, &x->ifc.ip_be, 4);
    memcpy(ip + 16, &ip_be, 4);
    uint8_t *udp = h + 34;
    memcpy(udp, &x->port_be, 2);
    memcpy(udp + 2, &port_be, 2);
    pp.ip_sum = csum_fold(csum_add(0, ip, 20)); /* its length and checksum 0 */
    pp.udp_sum = csum_fold(csum_add(htons(IPPROTO_UDP), ip + 12, 8) + csum_add(0, udp, 4));
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->tx, &pp, sizeof(pp));
    peer->src_id[0] = (uint64_t)ip_be << 16 | port_be;
    peer->src_id[1] = tp->src_tag;
    return 0;
}

/* -------------------------------------------------------------- the rest */

/* Msgbuf regions from the arena, for in-place sends (none where they are
 * off: arena_len 0). Lock-free: two allocators' threads may call at once. */
static void *xdp_lend_mem(struct transport *tp, size_t len)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    size_t used = __atomic_load_n(&x->arena_used, __ATOMIC_RELAXED);
    do {
        if (len > x->arena_len - used)
            return NULL;
    } while (!__atomic_compare_exchange_n(&x->arena_used, &used, used + len, false,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return x->umem + x->arena_off + used;
}

static int xdp_poll_fd(struct transport *tp)
{
    return ((struct xdp_transport *)tp)->fd;
}

static void xdp_stats(struct transport *tp, udrpc_stats_t *out)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    out->xdp_mode |= UDRPC_XDP_ON | (x->zerocopy ? UDRPC_XDP_ZEROCOPY : 0) |
                     (x->prog.skb_mode ? 0 : UDRPC_XDP_NATIVE) |
                     (x->in_place_min != UINT32_MAX ? UDRPC_XDP_IN_PLACE : 0);
    out->xdp_in_place_sends += x->in_place_pkts;
    out->xdp_rx_bad += x->rx_bad;
    out->xdp_tx_kicks += x->tx_kicks;
    /* What reached the port's kernel socket (an IPv4 header with options,
     * which the program passes): dropped by its filter. */
    out->kernel_drops += udrpc__sock_drops(x->port_fd);
}

static void ring_unmap(struct xring *r)
{
    if (r->map && r->map != MAP_FAILED)
        munmap(r->map, r->map_len);
    r->map = NULL;
}

/* Undoes socket_setup, for another try or for good. */
static void socket_teardown(struct xdp_transport *x)
{
    ring_unmap(&x->rx);
    ring_unmap(&x->tx);
    ring_unmap(&x->fill);
    ring_unmap(&x->comp);
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
    if (x->umem)
        munmap(x->umem, x->umem_len);
    x->umem = NULL;
    x->arena_len = 0;
}

static void xdp_destroy(struct transport *tp)
{
    struct xdp_transport *x = (struct xdp_transport *)tp;
    udrpc__xdp_prog_detach(&x->prog);
    socket_teardown(x);
    if (x->port_fd >= 0)
        close(x->port_fd);
    if (x->claimed[0])
        udrpc__xdp_if_release(x->claimed);
    free(x);
}

static const struct transport_ops xdp_ops = {
    .rx_burst = xdp_rx_burst,
    .tx_burst = xdp_tx_burst,
    .tx_flush = xdp_tx_flush,
    .make_peer = xdp_make_peer,
    .poll_fd = xdp_poll_fd,
    .lend_mem = xdp_lend_mem,
    .stats = xdp_stats,
    .destroy = xdp_destroy,
};

/* Maps one ring (off: its offsets, pgoff: its mmap offset). */
static int ring_map(int fd, struct xring *r, const struct xdp_ring_offset *off, uint64_t pgoff,
                    uint32_t entries, size_t desc_size)
{
    r->map_len = off->desc + entries * desc_size;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  (off_t)pgoff);
    if (r->map == MAP_FAILED) {
        r->map = NULL;
        return -errno;
    }
    uint8_t *m = r->map;
    r->prod = (uint32_t *)(void *)(m + off->producer);
    r->cons = (uint32_t *)(void *)(m + off->consumer);
    r->flags = (uint32_t *)(void *)(m + off->flags);
    r->descs = m + off->desc;
    r->mask = entries - 1;
    r->cached_prod = *r->prod;
    r->cached_cons = *r->cons;
    return 0;
}

/* The socket, its UMEM (the frames, then arena_len bytes to lend to
 * msgbufs) and its four rings, bound to the queue in zero-copy or copy
 * mode, taking packets of several descriptors (sg) or not: 0, or -errno
 * (why says what), after which socket_teardown. */
static int socket_setup(struct xdp_transport *x, bool zerocopy, bool sg, size_t arena_len,
                        char *why, size_t why_len)
{
    x->arena_off = (uint64_t)(XDP_RX_FRAMES + XDP_TX_FRAMES) * XDP_FRAME;
    x->umem_len = x->arena_off + arena_len;
    x->umem = mmap(NULL, x->umem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x->umem == MAP_FAILED) {
        x->umem = NULL;
        return -ENOMEM;
    }
    x->arena_len = arena_len;
    x->arena_used = 0;
    x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (x->fd < 0) {
        int ret = -errno;
        snprintf(why, why_len, "xdp: no AF_XDP socket (%s)", strerror(errno));
        return ret;
    }
    struct xdp_umem_reg mr = { .addr = (uintptr_t)x->umem, .len = x->umem_len,
                               .chunk_size = XDP_FRAME, .headroom = 0 };
    int sizes[4] = { XDP_FILL_RING, XDP_TX_DESCS, XDP_RX_FRAMES, XDP_TX_DESCS };
    if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr)) != 0 ||
        setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &sizes[0], sizeof(int)) != 0 ||
        setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &sizes[1], sizeof(int)) != 0 ||
        setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &sizes[2], sizeof(int)) != 0 ||
        setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &sizes[3], sizeof(int)) != 0) {
        int ret = -errno;
        snprintf(why, why_len, "xdp: cannot set up the socket's memory (%s)", strerror(errno));
        return ret;
    }
    struct xdp_mmap_offsets off;
    socklen_t olen = sizeof(off);
    int ret;
    if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &olen) != 0)
        return -errno;
    if ((ret = ring_map(x->fd, &x->rx, &off.rx, XDP_PGOFF_RX_RING, XDP_RX_FRAMES,
                        sizeof(struct xdp_desc))) != 0 ||
        (ret = ring_map(x->fd, &x->tx, &off.tx, XDP_PGOFF_TX_RING, XDP_TX_DESCS,
                        sizeof(struct xdp_desc))) != 0 ||
        (ret = ring_map(x->fd, &x->fill, &off.fr, XDP_UMEM_PGOFF_FILL_RING, XDP_FILL_RING,
                        sizeof(uint64_t))) != 0 ||
        (ret = ring_map(x->fd, &x->comp, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING,
                        XDP_TX_DESCS, sizeof(uint64_t))) != 0)
        return ret;
    /* Every receive frame into the fill ring; every send frame free. */
    uint64_t *fill = x->fill.descs;
    for (uint32_t i = 0; i < XDP_RX_FRAMES; i++)
        fill[i] = (uint64_t)i * XDP_FRAME;
    x->fill.cached_prod += XDP_RX_FRAMES;
    store_release(x->fill.prod, x->fill.cached_prod);
    for (uint32_t i = 0; i < XDP_TX_FRAMES; i++)
        x->tx_free[i] = (uint64_t)(XDP_RX_FRAMES + XDP_TX_FRAMES - 1 - i) * XDP_FRAME;
    x->n_tx_free = XDP_TX_FRAMES;

    struct sockaddr_xdp sa = { .sxdp_family = AF_XDP, .sxdp_ifindex = (uint32_t)x->ifc.ifindex,
                               .sxdp_queue_id = x->queue };
    sa.sxdp_flags = (zerocopy ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP |
                    (sg ? XDP_USE_SG : 0);
    /* A socket just closed on this queue frees it a moment later (the
     * kernel's deferred release): EBUSY for up to some milliseconds. */
    int rc;
    for (unsigned attempt = 0;; attempt++) {
        rc = bind(x->fd, (struct sockaddr *)&sa, sizeof(sa));
        if (rc == 0 || errno != EBUSY || attempt == 100)
            break;
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    if (rc != 0) {
        ret = -errno;
        snprintf(why, why_len, "xdp: cannot bind to %s queue %u%s%s (%s)", x->ifc.name,
                 x->queue, zerocopy ? ", zero-copy" : "", sg ? ", multi-buffer" : "",
                 strerror(errno));
        return ret;
    }
    x->zerocopy = zerocopy;
    return 0;
}

/* The socket, in the best mode the driver takes: zero-copy where asked
 * (native mode), else copy; with the arena and in-place sends where
 * in_place says (1: on, 0: off, -1: where zero-copy), which needs sockets
 * that take packets of several descriptors (Linux 6.6), else without. */
static int socket_open(struct xdp_transport *x, bool try_zerocopy, int in_place,
                       size_t arena_len, char *why, size_t why_len)
{
    struct bind_try {
        bool zc, sg;
    } tries[4];
    unsigned n = 0;
    if (try_zerocopy) {
        if (in_place != 0)
            tries[n++] = (struct bind_try){ true, true };
        tries[n++] = (struct bind_try){ true, false };
    }
    if (in_place == 1)
        tries[n++] = (struct bind_try){ false, true };
    tries[n++] = (struct bind_try){ false, false };
    int ret = -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        ret = socket_setup(x, tries[i].zc, tries[i].sg, tries[i].sg ? arena_len : 0, why, why_len);
        if (ret == 0)
            break;
        socket_teardown(x);
    }
    x->in_place_min = x->arena_len ? XDP_IN_PLACE_MIN : UINT32_MAX;
    return ret;
}

/* A kernel UDP socket on addr that holds a port for us (*port_be) and
 * drops everything it gets. */
static int hold_port(uint32_t ip_be, uint16_t *port_be)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
    udrpc__sock_filter(fd, &drop, 1);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = ip_be };
    socklen_t len = sizeof(sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        int ret = -errno;
        close(fd);
        return ret;
    }
    *port_be = sin.sin_port;
    return fd;
}

static unsigned env_uint(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

int udrpc__xdp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out)
{
    char why_here[TP_WHY_LEN];
    char *why = p->why ? p->why : why_here;
    const size_t why_len = TP_WHY_LEN;
    int ret = udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP);
    if (ret)
        return ret;
    if (p->bind.sa.sa_family != AF_INET) {
        snprintf(why, why_len, "xdp: IPv4 only; the Nexus is bound to IPv6");
        return -EAFNOSUPPORT;
    }
    if ((ret = udrpc__xdp_caps_check(why, why_len)) != 0)
        return ret;
    struct xdp_transport *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->fd = x->port_fd = -1;
    x->prog.prog_fd = x->prog.map_fd = x->prog.link_fd = -1;
    const char *names = udrpc__xdp_if_names(cfg);
    char ifname[IF_NAMESIZE] = "";
    if (names && *names) {
        if ((ret = udrpc__xdp_if_claim(names, ifname, why, why_len)) != 0)
            goto fail;
        memcpy(x->claimed, ifname, sizeof(ifname));
    }
    if ((ret = udrpc__xdp_if_find(ifname, p->bind.v4.sin_addr.s_addr, &x->ifc, why, why_len)))
        goto fail;
    x->queue = env_uint("UDRPC_XDP_QUEUE", 0);
    /* A datagram: the interface's MTU less IPv4 and UDP headers, and what
     * a frame holds less all three headers. */
    unsigned mtu = x->ifc.mtu > 28 + 64 ? x->ifc.mtu - 28 : 64;
    if (mtu > XDP_MAX_FRAME_LEN - XDP_HDRS)
        mtu = XDP_MAX_FRAME_LEN - XDP_HDRS;
    if (cfg->mtu) {
        if (cfg->mtu < 64 || cfg->mtu > mtu) {
            ret = -EINVAL;
            snprintf(why, why_len, "xdp: mtu %u outside 64..%u", cfg->mtu, mtu);
            goto fail;
        }
        mtu = cfg->mtu;
    }
    ret = hold_port(x->ifc.ip_be, &x->port_be);
    if (ret < 0)
        goto fail;
    x->port_fd = ret;
    /* Native or SKB mode: UDRPC_XDP_MODE, else SKB on veth (measured
     * faster there), else native with SKB as the fallback. */
    const char *mode = getenv("UDRPC_XDP_MODE");
    bool skb = mode && !strcmp(mode, "skb");
    const bool forced = mode && (!strcmp(mode, "skb") || !strcmp(mode, "native"));
    if (!forced)
        skb = x->ifc.is_veth;
    const char *notice = NULL;
    ret = udrpc__xdp_prog_attach(&x->ifc, x->port_be, x->queue, skb, &x->prog, &notice, why,
                                 why_len);
    if (ret && !skb && !forced && ret != -EBUSY)
        ret = udrpc__xdp_prog_attach(&x->ifc, x->port_be, x->queue, true, &x->prog, &notice,
                                     why, why_len);
    if (ret)
        goto fail;
    /* In-place sends: UDRPC_XDP_IN_PLACE=0|1, by default where zero-copy;
     * UDRPC_XDP_ARENA_MB of UMEM lent to msgbufs for them. */
    const char *ip_env = getenv("UDRPC_XDP_IN_PLACE");
    const int in_place = ip_env && *ip_env ? (*ip_env == '1') : -1;
    const size_t arena_len = (size_t)env_uint("UDRPC_XDP_ARENA_MB", XDP_ARENA_MB) << 20;
    if ((ret = socket_open(x, !x->prog.skb_mode, arena_len ? in_place : 0, arena_len, why,
                           why_len)) != 0)
        goto fail;
    const uint32_t key = x->queue;
    const uint32_t val = (uint32_t)x->fd;
    if ((ret = bpf_map_update_elem(x->prog.map_fd, &key, &val, 0)) != 0) {
        snprintf(why, why_len, "xdp: cannot add the socket to the XSK map (%s)", strerror(-ret));
        goto fail;
    }
    udrpc__tp_faults_init(&x->faults, &cfg->faults, ntohl(x->ifc.ip_be));
    x->base.ops = &xdp_ops;
    x->base.name = "xdp";
    x->base.kind = TP_XDP;
    x->base.mtu = mtu;
    x->base.link_rate_bytes_per_s = 1.25e9; /* 10 Gbit/s */
    if (x->ifc.rx_queues > 1) {
        /* RSS spreads flows over the queues; the program redirects only
         * what lands on ours, and the kernel drops the rest at our port. */
        snprintf(x->notice_buf, sizeof(x->notice_buf),
                 "%s%sxdp: %s has %u receive queues: frames for port %u that land on any but "
                 "queue %u reach the kernel and are dropped (kernel_drops); steer them: "
                 "ethtool -N %s flow-type udp4 dst-port %u action %u",
                 notice ? notice : "", notice ? "; " : "", x->ifc.name, x->ifc.rx_queues,
                 ntohs(x->port_be), x->queue, x->ifc.name, ntohs(x->port_be), x->queue);
        notice = x->notice_buf;
    }
    x->base.notice = notice;
    x->base.local.kind = TP_XDP;
    x->base.local.len = 14;
    memcpy(x->base.local.bytes, x->ifc.mac, 6);
    memcpy(x->base.local.bytes + 6, &x->ifc.ip_be, 4);
    memcpy(x->base.local.bytes + 10, &x->port_be, 2);
    const uint16_t q_be = htons((uint16_t)x->queue);
    memcpy(x->base.local.bytes + 12, &q_be, 2);
    *out = &x->base;
    return 0;

fail:
    xdp_destroy(&x->base);
    return ret;
}

bool udrpc__xdp_auto_probe(const udrpc_config_t *cfg)
{
    const char *names = udrpc__xdp_if_names(cfg);
    char ifname[IF_NAMESIZE] = "";
    if (names)
        snprintf(ifname, sizeof(ifname), "%.*s", (int)strcspn(names, ","), names);
    char why[16];
    int ifindex = ifname[0] ? (int)if_nametoindex(ifname) : 0;
    return ifindex > 0 && udrpc__xdp_caps_check(why, sizeof(why)) == 0 &&
           udrpc__xdp_if_zerocopy(ifindex);
}
