/*
 * udp.c — the kernel UDP transport: one non-blocking socket per Rpc,
 * recvmmsg/sendmmsg bursts, busy polling. The default where no RDMA device
 * exists. Datagrams are as large as the bound interface allows (its MTU
 * less headers: 1472 on Ethernet, 65507 on loopback) unless cfg->mtu says
 * otherwise. The socket is of the Nexus's family: IPv4, or IPv6 (on [::],
 * dual-stack: IPv4 peers then appear v4-mapped, see addr.h). Routing
 * info: the address (4 bytes, or 16 for IPv6) and port (2), network order;
 * an address of 0.0.0.0 or :: means "where my SM packets come from"
 * (make_peer).
 *
 * Batching in the kernel (cfg->udp_gso, on by default): the kernel's cost
 * is per send and per receive, not per byte, so
 *  - TX: a run of consecutive packets of a burst to one peer, all of one
 *    length but the last (which may be shorter), leaves as one UDP GSO
 *    send (a UDP_SEGMENT cmsg: the kernel cuts it into datagrams of that
 *    size); the burst's sends go out in one sendmmsg. At most gso_segs_max
 *    datagrams (probed at creation: 128, or 64 on older kernels) and
 *    65507 bytes per send.
 *  - RX: with UDP_GRO the kernel hands datagrams of one flow that arrive
 *    together as one buffer (up to 64 KB) and their size in a cmsg; rx_burst
 *    cuts it into packets. The socket filter sees only a buffer's first
 *    datagram, so the others go through the same checks here
 *    (datagram_filtered), counted where the filter's drops are.
 * A kernel or device that refuses either (no UDP_GRO; EIO or EINVAL on a
 * GSO send: no checksum offload) turns it off for the socket's life, logged
 * once; udrpc_get_stats' udp_offload says what is on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compiler.h"
#include "transport.h"
#include "udp.h"

#define UDP_RX_BUFS 32          /* buffers per recvmmsg without GRO ... */
#define UDP_RX_GRO_BUFS 16      /* ... and with it (each holds up to 64 KB) */
#define UDP_GRO_BUF_BYTES 65536 /* the most one GRO buffer holds */
#define UDP_TX_BURST 64
#define UDP_DEFAULT_MTU 1472 /* 1500-byte Ethernet MTU less IPv4 and UDP ... */
#define UDP_DEFAULT_MTU6 1452 /* ... or less IPv6 (40 bytes) and UDP */
#define UDP_MAX_MTU 65507    /* also the most one GSO send carries */
#define UDP_GSO_SEGS_TRY 128 /* UDP_MAX_SEGMENTS since Linux 5.4; 64 before */
#define UDP_SOCKBUF_BYTES (8 << 20)
#define UDP_TX_EAGAIN_SPINS 64

/* A cmsg with one int (UDP_GRO) or uint16_t (UDP_SEGMENT), aligned. */
union udp_cmsg {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

struct udp_transport {
    struct transport base;
    int fd;
    bool v6;                                /* an AF_INET6 socket */
    bool gso, gro;                          /* on now (see the top) */
    unsigned gso_segs_max;                  /* datagrams per GSO send */
    /* RX: rx_n buffers from the last recvmmsg; rx_i is the next to report,
     * from byte rx_off of it (a GRO buffer may take several calls). */
    unsigned rx_bufs_n;
    unsigned rx_n, rx_i, rx_off;
    unsigned rx_used;                       /* headers the last recvmmsg changed */
    uint8_t *rx_bufs;                       /* rx_bufs_n buffers */
    struct mmsghdr rx_msgs[UDP_RX_BUFS];
    struct iovec rx_iov[UDP_RX_BUFS];
    struct sockaddr_in6 rx_addr[UDP_RX_BUFS]; /* or sockaddr_in */
    union udp_cmsg rx_ctrl[UDP_RX_BUFS];
    uint16_t rx_seg[UDP_RX_BUFS];           /* datagram size; 0: one datagram */
    /* TX: a burst's sends, and the first packet of each. */
    struct mmsghdr tx_msgs[UDP_TX_BURST];
    struct iovec tx_iov[UDP_TX_BURST * 2];
    union udp_cmsg tx_ctrl[UDP_TX_BURST];
    uint8_t tx_first[UDP_TX_BURST + 1];
    union tp_addr bound;                    /* the socket's address */
    struct tp_faults faults;                /* tests: drop, duplicate */
    struct tp_tx_pkt faulted[UDP_TX_BURST];
    /* udrpc_get_stats */
    uint64_t gso_sends, gso_pkts, gro_bufs, gro_pkts, filtered;
};

/* A source address (of the socket's family) as src_id. IPv4: address
 * and port in [0], exactly. IPv6: the address's low 64 bits in [0], and
 * in [1] below the tag the port (bits 32-47) and the high 64 bits folded
 * to 32. Two peers of one endpoint that differ only in the fold's
 * collisions would share an id: a sender that forges such a source can
 * forge any other too, and the runtime's session checks still apply. */
static inline void src_id_of(bool v6, const void *sa, uint64_t tag, uint64_t id[2])
{
    if (likely(!v6)) {
        const struct sockaddr_in *sin = sa;
        id[0] = (uint64_t)sin->sin_addr.s_addr << 16 | sin->sin_port;
        id[1] = tag;
        return;
    }
    const struct sockaddr_in6 *sin6 = sa;
    uint64_t hi, lo;
    memcpy(&hi, sin6->sin6_addr.s6_addr, 8);
    memcpy(&lo, sin6->sin6_addr.s6_addr + 8, 8);
    id[0] = lo;
    id[1] = tag | (uint64_t)sin6->sin6_port << 32 | (uint32_t)(hi ^ hi >> 32);
}

static inline bool same_peer(const struct tp_peer *a, const struct tp_peer *b)
{
    return a->src_id[0] == b->src_id[0] && a->src_id[1] == b->src_id[1];
}

/* What the socket filter (attach_data_filter) checks, for the datagrams
 * of a GRO buffer after its first, which the filter never sees: true if
 * it would have dropped this one. */
static inline bool datagram_filtered(const uint8_t *p, uint32_t len)
{
    return len < TP_HDR_SIZE || p[TP_HDR_MAGIC_OFF] != TP_HDR_MAGIC ||
           (p[TP_HDR_RESERVED_OFF] & TP_HDR_RESERVED_BITS) != 0;
}

/* The UDP_GRO cmsg's datagram size, or 0 (the buffer is one datagram). */
static uint16_t gro_seg_size(const struct msghdr *mh)
{
    for (const struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int seg;
            memcpy(&seg, CMSG_DATA(c), sizeof(seg));
            return seg > 0 && seg <= UDP_MAX_MTU ? (uint16_t)seg : 0;
        }
    return 0;
}

/* A fresh recvmmsg into every buffer: how many came. The kernel writes
 * back the address and control lengths of the headers it filled only, so
 * only those are reset (an empty poll resets none). */
static unsigned rx_fill(struct udp_transport *u)
{
    for (unsigned i = 0; i < u->rx_used; i++) {
        u->rx_msgs[i].msg_hdr.msg_namelen = sizeof(u->rx_addr[i]);
        u->rx_msgs[i].msg_hdr.msg_controllen = u->gro ? sizeof(u->rx_ctrl[i]) : 0;
    }
    u->rx_used = 0;
    int n = recvmmsg(u->fd, u->rx_msgs, u->rx_bufs_n, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    u->rx_used = (unsigned)n;
    for (int i = 0; i < n; i++) {
        const struct msghdr *mh = &u->rx_msgs[i].msg_hdr;
        u->rx_seg[i] = 0;
        if (mh->msg_controllen) {
            uint16_t seg = gro_seg_size(mh);
            if (seg && seg < u->rx_msgs[i].msg_len) {
                u->rx_seg[i] = seg;
                u->gro_bufs++;
            }
        }
    }
    u->rx_n = (unsigned)n;
    u->rx_i = 0;
    u->rx_off = 0;
    return (unsigned)n;
}

static unsigned udp_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts,
                             unsigned max, uint64_t now_tsc)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    (void)now_tsc;
    /* Receive only when every packet of the last call's buffers has been
     * reported: those the caller holds stay valid until the next call. */
    if (u->rx_i == u->rx_n && rx_fill(u) == 0)
        return 0;
    const uint64_t tag = u->base.src_tag;
    unsigned out = 0;
    while (out < max && u->rx_i < u->rx_n) {
        const unsigned i = u->rx_i;
        const struct msghdr *mh = &u->rx_msgs[i].msg_hdr;
        uint64_t src[2];
        src_id_of(u->v6, &u->rx_addr[i], tag, src);
        const uint8_t *buf = u->rx_iov[i].iov_base;
        const uint32_t len = u->rx_msgs[i].msg_len;
        const uint32_t seg = u->rx_seg[i];
        if (likely(seg == 0)) { /* one datagram */
            pkts[out].buf = buf;
            /* A truncated datagram is reported empty, so the Rpc drops it. */
            pkts[out].len = (mh->msg_flags & MSG_TRUNC) ? 0 : len;
            pkts[out].src_id[0] = src[0];
            pkts[out].src_id[1] = src[1];
            out++;
            u->rx_i++;
            continue;
        }
        /* A GRO buffer: datagrams of seg bytes, the last maybe shorter.
         * The first passed the socket filter; the rest are checked here. */
        uint32_t off = u->rx_off;
        while (out < max && off < len) {
            uint32_t l = len - off < seg ? len - off : seg;
            const uint8_t *p = buf + off;
            if (off != 0 && unlikely(datagram_filtered(p, l))) {
                u->filtered++;
            } else {
                pkts[out].buf = p;
                pkts[out].len = l;
                pkts[out].src_id[0] = src[0];
                pkts[out].src_id[1] = src[1];
                out++;
            }
            u->gro_pkts++;
            off += l;
        }
        if (off < len) {
            u->rx_off = off;
        } else {
            u->rx_i++;
            u->rx_off = 0;
        }
    }
    return out;
}

/* Appends packet p's bytes to the iovecs at v: one iovec when its header
 * room lies just before its data (packet 0 of a message), else two (one
 * if it has no data). Returns how many. */
static inline unsigned add_iov(struct iovec *v, const struct tp_tx_pkt *p)
{
    v[0].iov_base = (void *)p->hdr;
    v[0].iov_len = TP_HDR_SIZE;
    if (!p->data_len)
        return 1;
    if ((const uint8_t *)p->hdr + TP_HDR_SIZE == (const uint8_t *)p->data) {
        v[0].iov_len = TP_HDR_SIZE + p->data_len;
        return 1;
    }
    v[1].iov_base = (void *)p->data;
    v[1].iov_len = p->data_len;
    return 2;
}

/* Where the kernel or the device refused a GSO send: off from now on. */
static void gso_refused(struct udp_transport *u, int err)
{
    u->gso = false;
    u->base.notice = err == EIO ? "udp: the device refused a GSO send (EIO: no checksum "
                                  "offload); sending one datagram per send from now on"
                                : "udp: the kernel refused a GSO send (EINVAL); sending "
                                  "one datagram per send from now on";
}

/* Gives send m a UDP_SEGMENT cmsg: the kernel cuts it into seg-byte
 * datagrams. */
static inline void set_segment(struct udp_transport *u, unsigned m, uint32_t seg)
{
    struct msghdr *mh = &u->tx_msgs[m].msg_hdr;
    struct cmsghdr *c = (struct cmsghdr *)u->tx_ctrl[m].buf;
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg16 = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &seg16, sizeof(seg16));
    mh->msg_control = c;
    mh->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
}

/* Builds pkts[0, n) into sends: with GSO, a run of packets to one peer of
 * one length (the last may be shorter) becomes one send. Returns how many
 * sends; tx_first[m] is send m's first packet. */
static inline __attribute__((always_inline)) unsigned
build_sends(struct udp_transport *u, const struct tp_tx_pkt *pkts, unsigned n)
{
    unsigned m = 0, v = 0;
    const unsigned max_segs = u->gso ? u->gso_segs_max : 1;
    for (unsigned i = 0; i < n; m++) {
        const struct tp_peer *peer = pkts[i].peer;
        struct msghdr *mh = &u->tx_msgs[m].msg_hdr;
        mh->msg_name = (void *)peer->tx; /* the rest is set at creation */
        mh->msg_iov = &u->tx_iov[v];
        mh->msg_controllen = 0;
        u->tx_first[m] = (uint8_t)i;
        unsigned iovs = add_iov(&u->tx_iov[v], &pkts[i]);
        unsigned j = i + 1;
        if (j < n && max_segs > 1 && same_peer(pkts[j].peer, peer)) {
            const uint32_t seg = TP_HDR_SIZE + pkts[i].data_len;
            uint32_t total = seg;
            do {
                uint32_t l = TP_HDR_SIZE + pkts[j].data_len;
                if (l > seg || total + l > UDP_MAX_MTU)
                    break;
                iovs += add_iov(&u->tx_iov[v + iovs], &pkts[j]);
                total += l;
                j++;
                if (l < seg)
                    break; /* only the last may be shorter */
            } while (j < n && j - i < max_segs && same_peer(pkts[j].peer, peer));
            if (j - i > 1) {
                set_segment(u, m, seg);
                u->gso_sends++;
                u->gso_pkts += j - i;
            }
        }
        mh->msg_iovlen = iovs;
        v += iovs;
        i = j;
    }
    u->tx_first[m] = (uint8_t)n;
    return m;
}

/* Sends [from, m) did not leave: out of the GSO counts. */
static void gso_uncount(struct udp_transport *u, unsigned from, unsigned m)
{
    for (unsigned k = from; k < m; k++)
        if (u->tx_msgs[k].msg_hdr.msg_controllen) {
            u->gso_sends--;
            u->gso_pkts -= u->tx_first[k + 1] - u->tx_first[k];
        }
}

static unsigned udp_send_any(struct udp_transport *u, const struct tp_tx_pkt *pkts,
                             unsigned n);

/* Sends pkts[0, n) with sendmmsg; returns how many packets the kernel took. */
static inline __attribute__((always_inline)) unsigned
udp_send(struct udp_transport *u, const struct tp_tx_pkt *pkts, unsigned n)
{
    unsigned m = build_sends(u, pkts, n);
    unsigned sent = 0, spins = 0; /* sends */
    while (sent < m) {
        int r = sendmmsg(u->fd, u->tx_msgs + sent, m - sent, 0);
        if (likely(r > 0)) {
            sent += (unsigned)r;
            continue;
        }
        int err = r < 0 ? errno : EAGAIN;
        if (unlikely((err == EIO || err == EINVAL) && u->tx_msgs[sent].msg_hdr.msg_controllen)) {
            /* GSO refused: the rest again, one datagram per send. */
            gso_uncount(u, sent, m);
            gso_refused(u, err);
            unsigned done = u->tx_first[sent];
            return done + udp_send_any(u, pkts + done, n - done);
        }
        /* The socket buffer is full: give the receiver a moment, then
         * leave the rest to retransmission. */
        if ((err == EAGAIN || err == ENOBUFS || err == EINTR) && ++spins < UDP_TX_EAGAIN_SPINS)
            continue;
        if (err != EAGAIN && err != ENOBUFS && err != EINTR) {
            gso_uncount(u, sent, sent + 1);
            sent++; /* a per-destination error (ECONNREFUSED...): skip it */
        } else {
            break;
        }
    }
    if (unlikely(sent < m))
        gso_uncount(u, sent, m);
    return u->tx_first[sent];
}

static __attribute__((noinline)) unsigned udp_send_any(struct udp_transport *u,
                                                       const struct tp_tx_pkt *pkts, unsigned n)
{
    return udp_send(u, pkts, n);
}

static unsigned udp_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts,
                             unsigned n, uint64_t now_tsc)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    (void)now_tsc;
    if (n > UDP_TX_BURST)
        n = UDP_TX_BURST;
    const unsigned taken = n;
    if (unlikely(udrpc__tp_faults_on(&u->faults))) { /* tests */
        if (n > UDP_TX_BURST / 2)
            n = UDP_TX_BURST / 2; /* room to duplicate each */
        unsigned k = udrpc__tp_faults_apply(&u->faults, pkts, n, u->faulted);
        return udrpc__tp_faults_taken(n, udp_send_any(u, u->faulted, k), k);
    }
    return udp_send(u, pkts, taken);
}


static void udp_tx_flush(struct transport *tp)
{
    (void)tp; /* sendmmsg copied every byte */
}

static int udp_make_peer(struct transport *tp, const struct tp_route *r,
                         const union tp_addr *peer_sm, struct tp_peer *peer)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    union tp_addr a, tx;
    memset(&a, 0, sizeof(a));
    if (r->kind != TP_UDP || (r->len != 6 && r->len != 18))
        return -EINVAL;
    const size_t alen = r->len - 2u;
    uint16_t port_be;
    memcpy(&port_be, r->bytes + alen, 2);
    if (port_be == 0)
        return -EINVAL;
    if (alen == 4) {
        a.v4.sin_family = AF_INET;
        memcpy(&a.v4.sin_addr, r->bytes, 4);
    } else {
        a.v6.sin6_family = AF_INET6;
        memcpy(&a.v6.sin6_addr, r->bytes, 16);
    }
    /* A peer bound to every address: reach it where its SM answers come
     * from. A link-local one: through the zone we reach its SM at, or
     * else our own. */
    if (udrpc__addr_is_any(&a) && peer_sm && !udrpc__addr_is_any(peer_sm))
        a = *peer_sm;
    udrpc__addr_set_port(&a, ntohs(port_be));
    udrpc__addr_canon(&a);
    if (a.sa.sa_family == AF_INET6 && udrpc__addr_is_link_local(&a.v6.sin6_addr) &&
        a.v6.sin6_scope_id == 0)
        a.v6.sin6_scope_id = peer_sm && peer_sm->sa.sa_family == AF_INET6 &&
                                     peer_sm->v6.sin6_scope_id
                                 ? peer_sm->v6.sin6_scope_id
                                 : u->bound.v6.sin6_scope_id;
    if (!udrpc__addr_reach(&u->bound, &a, &tx))
        return -EAFNOSUPPORT;
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->tx, &tx, udrpc__addr_len(&tx));
    src_id_of(u->v6, &tx, tp->src_tag, peer->src_id);
    return 0;
}

static void udp_destroy(struct transport *tp)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    close(u->fd);
    free(u->rx_bufs);
    free(u);
}

static int udp_poll_fd(struct transport *tp)
{
    return ((struct udp_transport *)tp)->fd;
}

static void udp_stats(struct transport *tp, udrpc_stats_t *out)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    /* A GRO buffer's datagram that the filter would have dropped counts
     * as the filter's drops do. */
    out->kernel_drops += udrpc__sock_drops(u->fd) + u->filtered;
    out->udp_offload |= (u->gso ? UDRPC_UDP_GSO : 0) | (u->gro ? UDRPC_UDP_GRO : 0);
    out->udp_gso_sends += u->gso_sends;
    out->udp_gso_pkts += u->gso_pkts;
    out->udp_gro_bufs += u->gro_bufs;
    out->udp_gro_pkts += u->gro_pkts;
}

int udrpc__udp_fd(const struct transport *tp)
{
    return tp->kind == TP_UDP ? ((const struct udp_transport *)tp)->fd : -1;
}

/* Keeps datagrams that can hold a data header: at least 16 bytes, the
 * magic byte (w0's top byte, payload offset 7) and the two reserved bits
 * below it (offset 6, bits 6-7) clear. The rest of the checks need the
 * session table and stay in the runtime (rpc_rx.c). */
static void attach_data_filter(int fd)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 8 + TP_HDR_SIZE, 0, 5), /* short: drop */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + TP_HDR_MAGIC_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TP_HDR_MAGIC, 0, 3),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + TP_HDR_RESERVED_OFF),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, TP_HDR_RESERVED_BITS, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFFu),              /* keep */
        BPF_STMT(BPF_RET | BPF_K, 0),                        /* drop */
    };
    udrpc__sock_filter(fd, code, sizeof(code) / sizeof(code[0]));
}

static const struct transport_ops udp_ops = {
    .rx_burst = udp_rx_burst,
    .tx_burst = udp_tx_burst,
    .tx_flush = udp_tx_flush,
    .make_peer = udp_make_peer,
    .poll_fd = udp_poll_fd,
    .stats = udp_stats,
    .destroy = udp_destroy,
};

/* The MTU of the interface that holds addr, less IP (20 bytes, or 40 for
 * IPv6) and UDP (8) headers, as the datagram size; the Ethernet default
 * when there is none (0.0.0.0, ::) or the lookup fails. Loopback gives
 * the largest UDP datagram, 65507 bytes (65488 over IPv6). */
static unsigned interface_mtu(int fd, const union tp_addr *addr)
{
    const bool v6 = addr->sa.sa_family == AF_INET6;
    const unsigned headers = v6 ? 48 : 28;
    struct ifaddrs *ifs, *i;
    unsigned mtu = v6 ? UDP_DEFAULT_MTU6 : UDP_DEFAULT_MTU;
    if (udrpc__addr_is_any(addr) || getifaddrs(&ifs) != 0)
        return mtu;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != addr->sa.sa_family)
            continue;
        const union tp_addr *ia = (const union tp_addr *)(const void *)i->ifa_addr;
        if (v6 ? memcmp(&ia->v6.sin6_addr, &addr->v6.sin6_addr, 16) != 0 ||
                     (addr->v6.sin6_scope_id && ia->v6.sin6_scope_id != addr->v6.sin6_scope_id)
               : ia->v4.sin_addr.s_addr != addr->v4.sin_addr.s_addr)
            continue;
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        strncpy(ifr.ifr_name, i->ifa_name, IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > (int)headers + 64) {
            mtu = (unsigned)ifr.ifr_mtu - headers;
            if (mtu > UDP_MAX_MTU)
                mtu = UDP_MAX_MTU;
        }
        break;
    }
    freeifaddrs(ifs);
    return mtu;
}

static void set_sockbuf(int fd, int opt_force, int opt)
{
    int bytes = UDP_SOCKBUF_BYTES;
    if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof(bytes)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

/* The most datagrams one GSO send may carry to addr, tried with a socket
 * of its own that sends to itself: UDP_GSO_SEGS_TRY, else half of it (the
 * limit before Linux 5.4); 0 where GSO is refused (no UDP_SEGMENT, or a
 * device without checksum offload). */
static unsigned probe_gso(const union tp_addr *addr)
{
    union tp_addr sin = *addr;
    udrpc__addr_set_port(&sin, 0);
    if (udrpc__addr_is_any(&sin)) { /* the family's loopback */
        if (sin.sa.sa_family == AF_INET6)
            sin.v6.sin6_addr = in6addr_loopback;
        else
            sin.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    int fd = udrpc__addr_socket(&sin, SOCK_NONBLOCK);
    if (fd < 0)
        return 0;
    socklen_t len = sizeof(sin);
    unsigned ok = 0;
    if (bind(fd, &sin.sa, udrpc__addr_len(&sin)) == 0 &&
        getsockname(fd, &sin.sa, &len) == 0) {
        static const uint8_t zeros[UDP_GSO_SEGS_TRY];
        for (unsigned segs = UDP_GSO_SEGS_TRY; segs >= UDP_GSO_SEGS_TRY / 2 && !ok; segs /= 2) {
            int seg = 1; /* 1-byte datagrams: the socket's own queue takes them */
            if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0)
                break;
            /* A send can fail for a moment without GSO being refused: a
             * netfilter rule dropped it (EPERM; nft_gso.udp's 5% loss did,
             * twice in a row, once) or buffers ran short. */
            for (unsigned attempt = 0; attempt < 4 && !ok; attempt++) {
                ssize_t r = sendto(fd, zeros, segs, 0, &sin.sa, udrpc__addr_len(&sin));
                if (r == (ssize_t)segs)
                    ok = segs;
                else if (r >= 0 || (errno != EPERM && errno != ENOBUFS && errno != EAGAIN))
                    break; /* refused */
            }
        }
    }
    close(fd);
    return ok;
}

int udrpc__udp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out)
{
    if (cfg->mtu && (cfg->mtu < 64 || cfg->mtu > UDP_MAX_MTU))
        return -EINVAL;
    int ret = udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP);
    if (ret)
        return ret;
    struct udp_transport *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    union tp_addr sin = p->bind;
    udrpc__addr_set_port(&sin, 0);
    u->v6 = sin.sa.sa_family == AF_INET6;
    uint32_t salt; /* the address's last 4 bytes */
    memcpy(&salt, u->v6 ? &sin.v6.sin6_addr.s6_addr[12] : (const void *)&sin.v4.sin_addr, 4);
    udrpc__tp_faults_init(&u->faults, &cfg->faults, salt);
    u->fd = udrpc__addr_socket(&sin, SOCK_NONBLOCK);
    if (u->fd < 0) {
        ret = u->fd;
        goto out_free;
    }
    unsigned mtu = cfg->mtu ? cfg->mtu : interface_mtu(u->fd, &sin);
    attach_data_filter(u->fd);
    set_sockbuf(u->fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_sockbuf(u->fd, SO_SNDBUFFORCE, SO_SNDBUF);
    socklen_t len = sizeof(sin);
    if (bind(u->fd, &sin.sa, udrpc__addr_len(&sin)) != 0 ||
        getsockname(u->fd, &sin.sa, &len) != 0) {
        ret = -errno;
        goto out_close;
    }
    u->bound = sin;
    if (cfg->udp_gso) {
        u->gso_segs_max = probe_gso(&sin);
        u->gso = u->gso_segs_max > 1;
        int on = 1;
        u->gro = setsockopt(u->fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
        if (!u->gso || !u->gro)
            u->base.notice = !u->gso && !u->gro ? "udp: the kernel refused UDP GSO and GRO: "
                                                  "one datagram per send and per receive"
                             : !u->gso ? "udp: the kernel or device refused UDP GSO: one "
                                         "datagram per send"
                                       : "udp: the kernel refused UDP GRO: one datagram "
                                         "per receive";
    }
    /* With GRO a buffer holds up to 64 KB of datagrams: fewer buffers. */
    u->rx_bufs_n = u->gro ? UDP_RX_GRO_BUFS : UDP_RX_BUFS;
    const size_t buf_bytes = u->gro ? UDP_GRO_BUF_BYTES : mtu;
    u->rx_bufs = malloc(u->rx_bufs_n * buf_bytes);
    if (!u->rx_bufs) {
        ret = -ENOMEM;
        goto out_close;
    }
    for (unsigned i = 0; i < u->rx_bufs_n; i++) {
        u->rx_iov[i].iov_base = u->rx_bufs + i * buf_bytes;
        u->rx_iov[i].iov_len = buf_bytes;
        u->rx_msgs[i].msg_hdr.msg_name = &u->rx_addr[i];
        u->rx_msgs[i].msg_hdr.msg_iov = &u->rx_iov[i];
        u->rx_msgs[i].msg_hdr.msg_iovlen = 1;
        u->rx_msgs[i].msg_hdr.msg_control = u->gro ? u->rx_ctrl[i].buf : NULL;
    }
    u->rx_used = u->rx_bufs_n; /* rx_fill sets their lengths */
    for (unsigned i = 0; i < UDP_TX_BURST; i++) /* what no send changes */
        u->tx_msgs[i].msg_hdr.msg_namelen = udrpc__addr_len(&sin);
    u->base.ops = &udp_ops;
    u->base.name = "udp";
    u->base.kind = TP_UDP;
    u->base.mtu = mtu;
    u->base.link_rate_bytes_per_s = 1.25e9; /* 10 Gbit/s */
    u->base.local.kind = TP_UDP;
    const unsigned alen = u->v6 ? 16 : 4;
    u->base.local.len = (uint8_t)(alen + 2);
    memcpy(u->base.local.bytes, u->v6 ? (const void *)&sin.v6.sin6_addr : &sin.v4.sin_addr, alen);
    memcpy(u->base.local.bytes + alen, u->v6 ? &sin.v6.sin6_port : &sin.v4.sin_port, 2);
    *out = &u->base;
    return 0;

out_close:
    close(u->fd);
out_free:
    free(u);
    return ret;
}
