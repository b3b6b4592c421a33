/*
 * udp_echo.c — the kernel's floor for datagram request/response: a minimal
 * echo server and client on UDP loopback, batched with recvmmsg/sendmmsg
 * and busy polling, as udrpc's udp transport is. No protocol at all: what
 * udrpc adds on top of this is the runtime's cost.
 *
 * With gso, the best a kernel-UDP program can do: both ends receive with
 * UDP_GRO (datagrams that arrive together come as one buffer) and send
 * back what one buffer held as one UDP_SEGMENT send; the client's initial
 * window leaves in sends of as many datagrams as fit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "clock.h"

#define BURST 32
#define MAX_DEPTH 1024
#define GSO_SEGS 64       /* datagrams per GSO send, at most */
#define GSO_BYTES 65507   /* bytes per GSO send, at most */

union ctrl {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

/* Turns UDP_GRO on; 0 or -1. */
static int gro_on(int fd)
{
    int on = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on));
}

/* The datagram size of a GRO buffer, or its length (one datagram). */
static unsigned seg_size(const struct msghdr *mh, unsigned len)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int seg;
            memcpy(&seg, CMSG_DATA(c), sizeof(seg));
            return seg > 0 && (unsigned)seg < len ? (unsigned)seg : len;
        }
    return len;
}

/* Makes mh a send cut into datagrams of seg bytes (no cmsg if it is one). */
static void set_segment(struct msghdr *mh, union ctrl *ctrl, unsigned seg, size_t total)
{
    if (total <= seg) {
        mh->msg_control = NULL;
        mh->msg_controllen = 0;
        return;
    }
    mh->msg_control = ctrl->buf;
    mh->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t s16 = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &s16, sizeof(s16));
}

/* Points msgs[i] at bufs[i] (and names[i], ctrls[i], if given) for a
 * recvmmsg. */
static void prep_rx(struct mmsghdr *msgs, struct iovec *iov, uint8_t (*bufs)[65536],
                    struct sockaddr_in6 *names, union ctrl *ctrls)
{
    for (int i = 0; i < BURST; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof(bufs[i]);
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if (names) {
            msgs[i].msg_hdr.msg_name = &names[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
        }
        if (ctrls) {
            msgs[i].msg_hdr.msg_control = ctrls[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof(ctrls[i].buf);
        }
    }
}

/* The same socket buffers as udrpc's udp transport (8 MiB), so that the
 * floor is measured with the same kernel settings. */
static void big_buffers(int fd)
{
    int bytes = 8 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

struct echo_args {
    size_t size;
    int cpu;
    int gso;
    struct sockaddr_in6 addr; /* where to bind (port 0): IPv4 or IPv6 */
};

/* host ("127.0.0.1", "::1"; NULL: 127.0.0.1) as a socket address, port 0.
 * Returns its length, or 0 for something that is not an address. */
static socklen_t host_addr(const char *host, struct sockaddr_in6 *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (!host || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        if (!host)
            v4->sin_addr.s_addr = htonl(0x7F000001);
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, host, &out->sin6_addr) != 1)
        return 0;
    out->sin6_family = AF_INET6;
    return sizeof(*out);
}

static int echo_server(void *argp, int fd_out)
{
    struct echo_args *a = argp;
    bench_pin_cpu(a->cpu);
    struct sockaddr_in6 sin = a->addr;
    if (bench_server_host && !host_addr(bench_server_host, &sin))
        return 1;
    int fd = socket(sin.sin6_family, SOCK_DGRAM, 0);
    socklen_t sl = sin.sin6_family == AF_INET6 ? sizeof(sin) : sizeof(struct sockaddr_in);
    if (fd >= 0)
        big_buffers(fd);
    if (fd < 0 || (a->gso && gro_on(fd) != 0) || bind(fd, (struct sockaddr *)&sin, sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
        return 1;
    if (write(fd_out, &sin, sizeof(sin)) != sizeof(sin))
        return 1;
    close(fd_out);
    static uint8_t bufs[BURST][65536];
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    struct sockaddr_in6 from[BURST];
    static union ctrl ctrls[BURST], out_ctrls[BURST];
    for (;;) {
        prep_rx(msgs, iov, bufs, from, a->gso ? ctrls : NULL);
        int n = recvmmsg(fd, msgs, BURST, MSG_DONTWAIT, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            iov[i].iov_len = msgs[i].msg_len;
            /* A GRO buffer goes back as one send of the same datagrams. */
            unsigned seg = a->gso ? seg_size(&msgs[i].msg_hdr, msgs[i].msg_len) : msgs[i].msg_len;
            set_segment(&msgs[i].msg_hdr, &out_ctrls[i], seg, msgs[i].msg_len);
        }
        int sent = 0;
        while (sent < n) {
            int r = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), 0);
            if (r > 0)
                sent += r;
        }
    }
}

int udp_echo_run(const char *host, size_t size, unsigned depth, double duration_s,
                 int server_cpu, int client_cpu, int gso, struct bench_result *r)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    struct echo_args a = { size < 8 ? 8 : size, server_cpu, gso, { 0 } };
    const socklen_t srv_len = host_addr(host, &a.addr);
    if (!srv_len)
        return -1;
    struct sockaddr_in6 srv;
    pid_t pid = bench_fork_server(echo_server, &a, &srv, sizeof(srv));
    if (pid < 0)
        return -1;
    bench_pin_cpu(client_cpu);
    int fd = socket(a.addr.sin6_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    big_buffers(fd);
    if (gso && gro_on(fd) != 0) {
        close(fd);
        bench_stop_server(pid);
        return -1;
    }
    r->resent = 0;
    if (depth > MAX_DEPTH)
        depth = MAX_DEPTH;
    /* datagrams per send: as many as one GSO send may carry */
    unsigned per_send = 1;
    if (gso) {
        per_send = GSO_BYTES / (unsigned)a.size;
        if (per_send > GSO_SEGS)
            per_send = GSO_SEGS;
        if (per_send < 1)
            per_send = 1;
    }
    static uint8_t tx[MAX_DEPTH][65536], rx[BURST][65536];
    static uint64_t sent_tsc[MAX_DEPTH];
    static struct iovec oiov[MAX_DEPTH];
    static union ctrl ctrls[BURST], out_ctrls[MAX_DEPTH];
    static struct mmsghdr out[MAX_DEPTH];
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    static struct lat_hist lat;
    memset(&lat, 0, sizeof(lat));
    uint64_t start = udrpc__rdtsc();
    uint64_t warm_end = start + udrpc__us_to_tsc(ck, 300000);
    uint64_t end = warm_end + udrpc__us_to_tsc(ck, (uint64_t)(duration_s * 1e6));
    uint64_t done = 0;
    /* Each of the depth messages carries its index; its echo re-sends it.
     * out[m] sends oiov[first, first + k): k datagrams of a.size. */
    unsigned m = 0;
    for (unsigned i = 0; i < depth; i++) {
        memcpy(tx[i], &i, sizeof(i));
        sent_tsc[i] = udrpc__rdtsc();
        oiov[i].iov_base = tx[i];
        oiov[i].iov_len = a.size;
    }
    for (unsigned i = 0; i < depth; i += per_send, m++) {
        unsigned k = depth - i < per_send ? depth - i : per_send;
        memset(&out[m].msg_hdr, 0, sizeof(out[m].msg_hdr));
        out[m].msg_hdr.msg_iov = &oiov[i];
        out[m].msg_hdr.msg_iovlen = k;
        out[m].msg_hdr.msg_name = &srv;
        out[m].msg_hdr.msg_namelen = srv_len;
        set_segment(&out[m].msg_hdr, &out_ctrls[m], (unsigned)a.size, (size_t)k * a.size);
    }
    for (unsigned sent = 0; sent < m;) {
        int k = sendmmsg(fd, out + sent, m - sent, 0);
        if (k > 0)
            sent += (unsigned)k;
    }
    /* No protocol, but no shrinking depth either: a datagram lost to a full
     * socket buffer is sent again after 20 ms, or the echo would run at a
     * lower depth than asked and its latency would read too low. */
    uint64_t resend_tsc = udrpc__us_to_tsc(ck, 20000), next_check = start;
    uint64_t now = start;
    while (now < end) {
        if (now >= next_check) {
            next_check = now + resend_tsc / 4;
            for (unsigned i = 0; i < depth; i++)
                if ((int64_t)(now - sent_tsc[i]) > (int64_t)resend_tsc) {
                    sent_tsc[i] = now;
                    r->resent++;
                    (void)sendto(fd, tx[i], a.size, 0, (struct sockaddr *)&srv, srv_len);
                }
        }
        prep_rx(msgs, iov, rx, NULL, gso ? ctrls : NULL);
        int n = recvmmsg(fd, msgs, BURST, MSG_DONTWAIT, NULL);
        now = udrpc__rdtsc();
        if (n <= 0)
            continue;
        /* What one buffer held goes back as one send (one datagram each
         * without gso). */
        unsigned v = 0;
        m = 0;
        for (int i = 0; i < n; i++) {
            unsigned len = msgs[i].msg_len;
            unsigned seg = gso ? seg_size(&msgs[i].msg_hdr, len) : len;
            unsigned first = v;
            for (unsigned off = 0; off + sizeof(unsigned) <= len && seg; off += seg) {
                unsigned idx;
                memcpy(&idx, rx[i] + off, sizeof(idx));
                if (idx >= depth)
                    continue;
                if (now >= warm_end) {
                    hist_add(&lat, now - sent_tsc[idx]);
                    done++;
                }
                sent_tsc[idx] = now;
                oiov[v].iov_base = tx[idx];
                oiov[v].iov_len = a.size;
                v++;
            }
            if (v == first)
                continue;
            memset(&out[m].msg_hdr, 0, sizeof(out[m].msg_hdr));
            out[m].msg_hdr.msg_iov = &oiov[first];
            out[m].msg_hdr.msg_iovlen = v - first;
            out[m].msg_hdr.msg_name = &srv;
            out[m].msg_hdr.msg_namelen = srv_len;
            set_segment(&out[m].msg_hdr, &out_ctrls[m], (unsigned)a.size,
                        (size_t)(v - first) * a.size);
            m++;
        }
        unsigned sent = 0;
        while (sent < m) {
            int k = sendmmsg(fd, out + sent, m - sent, 0);
            if (k > 0)
                sent += (unsigned)k;
        }
    }
    close(fd);
    bench_stop_server(pid);
    r->count = done;
    /* a resent message's round trip counts from the resend: the sample is
     * optimistic for those few, and r->resent says how many */
    r->rpc_per_s = (double)done / duration_s;
    hist_summarize(&lat, ck->ns_per_tsc, r);
    return 0;
}
