/*
 * udp.c — the kernel UDP transport: one non-blocking socket per Rpc,
 * recvmmsg/sendmmsg bursts, busy polling. The default where no RDMA device
 * exists. Datagrams are as large as the bound interface allows (its MTU
 * less headers: 1472 on Ethernet, 65507 on loopback) unless cfg->mtu says
 * otherwise. Routing info: IPv4 address (4 bytes) and port (2), network
 * order.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#define UDP_RX_BURST 32
#define UDP_TX_BURST 64
#define UDP_DEFAULT_MTU 1472 /* 1500-byte Ethernet MTU less IP and UDP */
#define UDP_MAX_MTU 65507
#define UDP_SOCKBUF_BYTES (8 << 20)
#define UDP_TX_EAGAIN_SPINS 64

struct udp_transport {
    struct transport base;
    int fd;
    uint8_t *rx_bufs;                       /* UDP_RX_BURST * mtu */
    struct mmsghdr rx_msgs[UDP_RX_BURST];
    struct iovec rx_iov[UDP_RX_BURST];
    struct sockaddr_in rx_addr[UDP_RX_BURST];
    struct mmsghdr tx_msgs[UDP_TX_BURST];
    struct iovec tx_iov[UDP_TX_BURST][2];
    struct tp_faults faults;                /* tests: drop, duplicate */
    struct tp_tx_pkt faulted[UDP_TX_BURST];
};

static uint64_t sin_src_id(const struct sockaddr_in *sin)
{
    return (uint64_t)sin->sin_addr.s_addr << 16 | sin->sin_port;
}

static unsigned udp_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts,
                             unsigned max, uint64_t now_tsc)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    (void)now_tsc;
    if (max > UDP_RX_BURST)
        max = UDP_RX_BURST;
    for (unsigned i = 0; i < max; i++)
        u->rx_msgs[i].msg_hdr.msg_namelen = sizeof(u->rx_addr[i]);
    int n = recvmmsg(u->fd, u->rx_msgs, max, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    const uint64_t tag = u->base.src_tag;
    for (int i = 0; i < n; i++) {
        const struct msghdr *mh = &u->rx_msgs[i].msg_hdr;
        pkts[i].buf = u->rx_iov[i].iov_base;
        /* A truncated datagram is reported empty, so the Rpc drops it. */
        pkts[i].len = (mh->msg_flags & MSG_TRUNC) ? 0 : u->rx_msgs[i].msg_len;
        pkts[i].src_id[0] = sin_src_id(&u->rx_addr[i]);
        pkts[i].src_id[1] = tag;
    }
    return (unsigned)n;
}

static inline unsigned udp_send(struct udp_transport *u, const struct tp_tx_pkt *pkts,
                                unsigned n);

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
        unsigned wanted = n;
        n = udrpc__tp_faults_apply(&u->faults, pkts, n, u->faulted);
        pkts = u->faulted;
        unsigned sent = udp_send(u, pkts, n);
        return sent == n ? wanted : (unsigned)((uint64_t)wanted * sent / (n ? n : 1));
    }
    return udp_send(u, pkts, taken);
}

/* Sends pkts[0, n) with sendmmsg; returns how many the kernel took. */
static inline unsigned udp_send(struct udp_transport *u, const struct tp_tx_pkt *pkts,
                                unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct msghdr *mh = &u->tx_msgs[i].msg_hdr;
        u->tx_iov[i][0].iov_base = (void *)pkts[i].hdr;
        u->tx_iov[i][0].iov_len = 16;
        u->tx_iov[i][1].iov_base = (void *)pkts[i].data;
        u->tx_iov[i][1].iov_len = pkts[i].data_len;
        /* Packet 0's header room lies just before its data: one segment
         * for the kernel to copy instead of two. */
        unsigned segs = pkts[i].data_len ? 2 : 1;
        if (segs == 2 && (const uint8_t *)pkts[i].hdr + 16 == (const uint8_t *)pkts[i].data) {
            u->tx_iov[i][0].iov_len = 16 + pkts[i].data_len;
            segs = 1;
        }
        mh->msg_name = (void *)pkts[i].peer->tx; /* the rest is set at creation */
        mh->msg_iovlen = segs;
    }
    unsigned sent = 0, spins = 0;
    while (sent < n) {
        int r = sendmmsg(u->fd, u->tx_msgs + sent, n - sent, 0);
        if (r > 0) {
            sent += (unsigned)r;
            continue;
        }
        /* The socket buffer is full: give the receiver a moment, then
         * leave the rest to retransmission. */
        if (r < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) &&
            ++spins < UDP_TX_EAGAIN_SPINS)
            continue;
        if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
            sent++; /* a per-destination error (ECONNREFUSED...): skip it */
        else
            break;
    }
    return sent;
}

static void udp_tx_flush(struct transport *tp)
{
    (void)tp; /* sendmmsg copied every byte */
}

static int udp_make_peer(struct transport *tp, const struct tp_route *r,
                         struct tp_peer *peer)
{
    if (r->kind != TP_UDP || r->len != 6)
        return -EINVAL;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr.s_addr, r->bytes, 4);
    memcpy(&sin.sin_port, r->bytes + 4, 2);
    if (sin.sin_port == 0)
        return -EINVAL;
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->tx, &sin, sizeof(sin));
    peer->src_id[0] = sin_src_id(&sin);
    peer->src_id[1] = tp->src_tag;
    return 0;
}

static void udp_destroy(struct transport *tp)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    close(u->fd);
    free(u->rx_bufs);
    free(u);
}

static void udp_wait(struct transport *tp, unsigned timeout_us)
{
    struct udp_transport *u = (struct udp_transport *)tp;
    struct pollfd pfd = { .fd = u->fd, .events = POLLIN };
    struct timespec ts = { .tv_sec = timeout_us / 1000000,
                           .tv_nsec = (long)(timeout_us % 1000000) * 1000 };
    (void)ppoll(&pfd, 1, &ts, NULL); /* EINTR or a timeout: the loop polls again */
}

static uint64_t udp_kernel_drops(struct transport *tp)
{
    return udrpc__sock_drops(((struct udp_transport *)tp)->fd);
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
    .wait = udp_wait,
    .kernel_drops = udp_kernel_drops,
    .destroy = udp_destroy,
};

/* The MTU of the interface that holds addr, less IP and UDP headers, as
 * the datagram size; UDP_DEFAULT_MTU when there is none (0.0.0.0) or the
 * lookup fails. Loopback gives the largest UDP datagram, 65507 bytes. */
static unsigned interface_mtu(int fd, uint32_t addr)
{
    struct ifaddrs *ifs, *i;
    unsigned mtu = UDP_DEFAULT_MTU;
    if (addr == htonl(INADDR_ANY) || getifaddrs(&ifs) != 0)
        return mtu;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != addr)
            continue;
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        strncpy(ifr.ifr_name, i->ifa_name, IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 28 + 64) {
            mtu = (unsigned)ifr.ifr_mtu - 28; /* IPv4 (20) and UDP (8) headers */
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

int udrpc__udp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out)
{
    uint32_t bind_ip = p->bind_ip;
    if (cfg->mtu && (cfg->mtu < 64 || cfg->mtu > UDP_MAX_MTU))
        return -EINVAL;
    int ret = udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP);
    if (ret)
        return ret;
    struct udp_transport *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    udrpc__tp_faults_init(&u->faults, &cfg->faults, bind_ip);
    u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        ret = -errno;
        goto out_free;
    }
    unsigned mtu = cfg->mtu ? cfg->mtu : interface_mtu(u->fd, bind_ip);
    attach_data_filter(u->fd);
    set_sockbuf(u->fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_sockbuf(u->fd, SO_SNDBUFFORCE, SO_SNDBUF);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = bind_ip };
    socklen_t len = sizeof(sin);
    if (bind(u->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(u->fd, (struct sockaddr *)&sin, &len) != 0) {
        ret = -errno;
        goto out_close;
    }
    u->rx_bufs = malloc((size_t)UDP_RX_BURST * mtu);
    if (!u->rx_bufs) {
        ret = -ENOMEM;
        goto out_close;
    }
    for (unsigned i = 0; i < UDP_RX_BURST; i++) {
        u->rx_iov[i].iov_base = u->rx_bufs + (size_t)i * mtu;
        u->rx_iov[i].iov_len = mtu;
        u->rx_msgs[i].msg_hdr.msg_name = &u->rx_addr[i];
        u->rx_msgs[i].msg_hdr.msg_iov = &u->rx_iov[i];
        u->rx_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (unsigned i = 0; i < UDP_TX_BURST; i++) { /* what no send changes (no control) */
        u->tx_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
        u->tx_msgs[i].msg_hdr.msg_iov = u->tx_iov[i];
    }
    u->base.ops = &udp_ops;
    u->base.name = "udp";
    u->base.kind = TP_UDP;
    u->base.mtu = mtu;
    u->base.link_rate_bytes_per_s = 1.25e9; /* 10 Gbit/s */
    u->base.local.kind = TP_UDP;
    u->base.local.len = 6;
    memcpy(u->base.local.bytes, &sin.sin_addr.s_addr, 4);
    memcpy(u->base.local.bytes + 4, &sin.sin_port, 2);
    *out = &u->base;
    return 0;

out_close:
    close(u->fd);
out_free:
    free(u);
    return ret;
}
