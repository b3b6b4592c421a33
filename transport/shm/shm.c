/*
 * shm.c — the shared-memory transport, for endpoints on one host (one
 * kernel and one network namespace), in one process or several.
 *
 * A channel joins one client endpoint to one server endpoint; every
 * session between the two goes over it. It is a region of two rings
 * (shm_ring.h), one each way, in a memfd that the client makes, seals
 * against shrinking, and hands to the server over a Unix socket with
 * SCM_RIGHTS. The socket stays open for the channel's life: when either
 * process ends, even by kill -9, the other sees it hang up. Nothing has a
 * name in any file system: the region goes when the last of the two
 * processes that map it does.
 *
 * Set-up, off the datapath:
 *  - Each endpoint with shm listens on the abstract Unix socket
 *    "udrpc-shm/<SM port>/<rpc id>" (abstract names are per network
 *    namespace and vanish with their socket).
 *  - A client about to connect a session asks route_for: if the server's
 *    address is one of this host's and that socket answers, owned by our
 *    own uid, the client makes the region, sends a hello (its token, the
 *    ring size, the MTU) with the memfd and its eventfd, and puts the
 *    token in its SM connect's route.
 *  - The server accepts the socket (make_peer, or the 1 ms scan), checks
 *    the client's uid (SO_PEERCRED), the memfd's seals and size, maps it,
 *    and answers with its route's nonce and its own eventfd. The session
 *    finds its channel by the token; the client's, by the nonce in the
 *    server's SM answer, which proves that the endpoint that answered over
 *    the network is the one it shares memory with.
 *  - A server without shm, or one that did not get the hello, refuses the
 *    route, and the client connects over its next transport.
 *
 * The heap (shm_ring.h): the endpoint's msgbufs come from a memfd of its
 * own (lend_mem), sealed against shrinking, that each peer maps read-only:
 * the hello and the answer carry a read-only descriptor of it
 * (/proc/self/fd reopened O_RDONLY: a peer can neither write it nor map
 * it writable). UDRPC_SHM_HEAP_MB sizes it (virtual until used; 0: no
 * heap, every payload copied).
 *
 * The datapath: tx_burst writes each packet into its channel's ring: a
 * payload of SHM_REF_MIN bytes or more that lies in our heap by
 * reference, anything else copied (the copy a NIC's DMA would make); into
 * the backlog, copied, while that ring is full. rx_burst reads every open
 * channel's ring in place, and a reference where it points. No syscall,
 * unless a peer sleeps (idle_sleep_us, udrpc_get_fd): then its eventfd is
 * written once per burst.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "compiler.h"
#include "shm.h"
#include "shm_ring.h"

#define SHM_MAX_CHANS 256          /* channels per endpoint */
#define SHM_DEFAULT_MTU 65507u     /* udp's largest: shm never lowers an
                                      endpoint's MTU below its udp's */
#define SHM_RING_BYTES (4u << 20) /* per direction (UDRPC_SHM_RING_KB): 16
                                      MiB cost small RPCs a fifth of their
                                      rate (out of cache); 4 MiB against 1
                                      MiB: small RPCs the same, 1 MiB ones
                                      up to 1.7x (README) */
#define SHM_BACKLOG_BYTES (32u << 20) /* per endpoint, private: packets that
                                        found their ring full, in order */
#define SHM_BURST 64u
#define SHM_HEAP_MB 1024u          /* per endpoint (UDRPC_SHM_HEAP_MB), virtual
                                      until msgbufs use it */
#define SHM_PEER_HEAP_MAX (64ull << 30) /* the largest peer heap we map */

enum chan_state { CH_FREE = 0, CH_ACCEPTED, CH_OPEN, CH_DEAD };

struct shm_chan {
    uint8_t state;             /* enum chan_state */
    bool is_client;
    bool answered;             /* client: the server's answer read */
    uint32_t backlog;          /* its packets waiting in the backlog */
    uint32_t gen;              /* changes at each reuse of the slot */
    int sock;                  /* set-up, then hang-up notice */
    int peer_efd;              /* the peer's eventfd, -1 until known */
    uint64_t token;            /* the client's: names the channel */
    uint64_t server_nonce;     /* client: the server endpoint's */
    union tp_addr server;      /* client: the server's SM address */
    uint8_t server_rpc_id;
    void *region;
    size_t region_bytes;
    const void *peer_heap;     /* mapped read-only, or NULL */
    size_t peer_heap_bytes;
    struct shm_tx tx;
    struct shm_rx rx;
};

struct shm_transport {
    struct transport base;
    int listen_fd;
    int efd;                   /* ours: peers write it to wake us */
    uint64_t nonce;
    uid_t uid;
    uint64_t ring_bytes;       /* of each ring of the channels we make */
    uint16_t sm_port;
    uint8_t rpc_id;
    unsigned n_open;
    uint16_t open[SHM_MAX_CHANS];  /* the open channels, for rx_burst */
    unsigned rx_next;              /* where the next rx_burst starts */
    struct tp_faults faults;
    struct tp_tx_pkt faulted[2 * SHM_BURST];
    uint64_t refused, bad_rings, held, ref_sends;
    struct tp_rx_ref rx_refs[64]; /* the last rx_burst's references */
    /* The heap: msgbuf memory that peers map read-only. */
    uint8_t *heap;             /* NULL: none */
    size_t heap_bytes;
    _Atomic size_t heap_used;  /* lent so far (lend_mem, two threads) */
    _Atomic uint32_t *epoch;   /* at the heap's start (void_refs) */
    int heap_ro_fd;            /* sent to each peer; -1: none */
    /* The backlog: a FIFO of packets copied out of bursts whose ring was
     * full, sent on as the peer frees room. Records as in a ring (a
     * struct backlog_rec, the packet, padding to 64 bytes), never split at
     * the end. Touched only under back-pressure. */
    uint8_t *backlog;
    uint64_t bl_head, bl_tail;
    struct shm_chan chans[SHM_MAX_CHANS];
};

struct backlog_rec {
    uint32_t chan, gen;        /* 0 length: the rest up to the end is unused */
    uint32_t len;
    uint32_t pad;
};

/* peer.tx: which channel, and which use of its slot. */
struct shm_peer_tx {
    uint32_t chan;
    uint32_t gen;
};

/* ----------------------------------------------------------- channels */

static void open_add(struct shm_transport *t, struct shm_chan *c)
{
    c->state = CH_OPEN;
    t->open[t->n_open++] = (uint16_t)(c - t->chans);
}

/* The peer is gone or broke the rules: no more packets either way. The
 * region stays mapped until the next scan, after any rx_burst that still
 * points into it. */
static void chan_kill(struct shm_transport *t, struct shm_chan *c)
{
    if (c->state == CH_OPEN) {
        uint16_t idx = (uint16_t)(c - t->chans);
        for (unsigned i = 0; i < t->n_open; i++)
            if (t->open[i] == idx) {
                t->open[i] = t->open[--t->n_open];
                break;
            }
    }
    c->state = CH_DEAD;
}

static void chan_free(struct shm_chan *c)
{
    if (c->region)
        munmap(c->region, c->region_bytes);
    if (c->peer_heap)
        munmap((void *)c->peer_heap, c->peer_heap_bytes);
    if (c->sock >= 0)
        close(c->sock);
    if (c->peer_efd >= 0)
        close(c->peer_efd);
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->sock = c->peer_efd = -1;
    c->state = CH_FREE;
}

static struct shm_chan *chan_alloc(struct shm_transport *t)
{
    for (unsigned i = 0; i < SHM_MAX_CHANS; i++)
        if (t->chans[i].state == CH_FREE)
            return &t->chans[i];
    return NULL;
}

static size_t region_bytes(uint64_t ring_bytes)
{
    return SHM_HDR_BYTES + 2 * (size_t)ring_bytes;
}

/* Points c's rings into its mapped region: ours to write, and ours to
 * read, by role. */
static void chan_rings(struct shm_chan *c, uint64_t ring_bytes, unsigned mtu)
{
    /* (the client maps the server's heap after this, from its answer) */
    struct shm_region *reg = c->region;
    uint8_t *c2s = (uint8_t *)c->region + SHM_HDR_BYTES;
    uint8_t *s2c = c2s + ring_bytes;
    const uint64_t pos0 = SHM_POS0(ring_bytes);
    c->tx = (struct shm_tx){ .ctl = c->is_client ? &reg->c2s : &reg->s2c,
                             .data = c->is_client ? c2s : s2c, .size = ring_bytes,
                             .tail = pos0, .head_seen = pos0 };
    c->rx = (struct shm_rx){ .ctl = c->is_client ? &reg->s2c : &reg->c2s,
                             .data = c->is_client ? s2c : c2s, .size = ring_bytes,
                             .mtu = mtu, .head = pos0, .head_pub = pos0,
                             .heap = c->peer_heap, .heap_bytes = c->peer_heap_bytes };
}

/* Maps a peer's heap (fd) read-only for c's receive ring: 0, or -errno
 * for one not sealed against shrinking (the peer could take pages from
 * under our reads: SIGBUS), too small to hold its epoch page, or too
 * large. */
static int chan_map_peer_heap(struct shm_chan *c, int fd)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) != 0 ||
        st.st_size < (off_t)SHM_HEAP_RESERVED || (uint64_t)st.st_size > SHM_PEER_HEAP_MAX)
        return -EPROTO;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    c->peer_heap = p;
    c->peer_heap_bytes = (size_t)st.st_size;
    c->rx.heap = p;
    c->rx.heap_bytes = (uint64_t)st.st_size;
    return 0;
}

static void listen_name(struct sockaddr_un *sa, socklen_t *len, uint16_t port, uint8_t rpc_id)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* sun_path[0] = 0: the abstract namespace */
    int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "udrpc-shm/%u/%u",
                     (unsigned)port, (unsigned)rpc_id);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static bool peer_uid_is(int fd, uid_t uid)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == uid;
}

/* One message and up to three descriptors; -errno, or the bytes read. */
static ssize_t recv_fds(int fd, void *buf, size_t len, int *fds, unsigned max_fds,
                        unsigned *n_fds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } ctrl;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
                        .msg_controllen = sizeof(ctrl.buf) };
    ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    *n_fds = 0;
    if (r < 0)
        return -errno;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        unsigned k = (unsigned)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[3];
        memcpy(got, CMSG_DATA(h), (k > 3 ? 3 : k) * sizeof(int));
        for (unsigned i = 0; i < k && i < 3; i++) {
            if (*n_fds < max_fds)
                fds[(*n_fds)++] = got[i];
            else
                close(got[i]);
        }
    }
    if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        return -EMSGSIZE;
    return r;
}

static int send_fds(int fd, const void *buf, size_t len, const int *fds, unsigned n_fds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } ctrl;
    memset(&ctrl, 0, sizeof(ctrl));
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
                        .msg_controllen = CMSG_SPACE(n_fds * sizeof(int)) };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
    memcpy(CMSG_DATA(h), fds, n_fds * sizeof(int));
    return sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -errno;
}

/* Our answer, or our hello: fds and our heap's read-only descriptor. */
static int send_with_heap(struct shm_transport *t, int sock, const void *msg, size_t len,
                          int fd0, int fd1)
{
    int fds[3] = { fd0, fd1, t->heap_ro_fd };
    unsigned n = fd1 >= 0 ? 2 : 1;
    if (t->heap_ro_fd >= 0)
        fds[n++] = t->heap_ro_fd;
    return send_fds(sock, msg, len, fds, n);
}

/* Server: a client's hello on channel c (accepted): its region, its
 * eventfd, and its heap if it has one. 0: open; -EAGAIN: not here yet;
 * else the channel is to be closed. */
static int server_hello(struct shm_transport *t, struct shm_chan *c)
{
    struct shm_hello h;
    int fds[3] = { -1, -1, -1 };
    unsigned n_fds;
    ssize_t r = recv_fds(c->sock, &h, sizeof(h), fds, 3, &n_fds);
    if (r == -EAGAIN)
        return -EAGAIN;
    int ret = -EPROTO;
    struct stat st;
    int seals;
    if (r != (ssize_t)sizeof(h) || n_fds < 2 || h.magic != SHM_MAGIC ||
        h.version != SHM_VERSION || h.mtu != t->base.mtu || h.ring_bytes < 4096 ||
        h.ring_bytes > (1ull << 30) || (h.ring_bytes & (h.ring_bytes - 1)) ||
        h.ring_bytes < 4 * shm_rec_bytes(t->base.mtu))
        goto out;
    /* Sealed against shrinking, so the client cannot take pages from under
     * us (SIGBUS), and exactly as large as it says. */
    seals = fcntl(fds[0], F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fds[0], &st) != 0 ||
        (uint64_t)st.st_size != region_bytes(h.ring_bytes))
        goto out;
    c->region_bytes = region_bytes(h.ring_bytes);
    c->region = mmap(NULL, c->region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (c->region == MAP_FAILED) {
        c->region = NULL;
        ret = -ENOMEM;
        goto out;
    }
    if (n_fds == 3 && (ret = chan_map_peer_heap(c, fds[2])) != 0)
        goto out;
    struct shm_answer a = { .magic = SHM_MAGIC, .nonce = t->nonce };
    if ((ret = send_with_heap(t, c->sock, &a, sizeof(a), t->efd, -1)) != 0)
        goto out;
    c->token = h.token;
    c->peer_efd = fds[1];
    fds[1] = -1;
    chan_rings(c, h.ring_bytes, t->base.mtu);
    open_add(t, c);
    ret = 0;
out:
    for (unsigned i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ret;
}

/* Server: every connection waiting on our socket, and every hello. */
static void server_accept(struct shm_transport *t)
{
    for (;;) {
        int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        struct shm_chan *c = peer_uid_is(fd, t->uid) ? chan_alloc(t) : NULL;
        if (!c) {
            t->refused++; /* another uid, or no room */
            close(fd);
            continue;
        }
        c->sock = fd;
        c->state = CH_ACCEPTED;
    }
    for (unsigned i = 0; i < SHM_MAX_CHANS; i++) {
        struct shm_chan *c = &t->chans[i];
        if (c->state != CH_ACCEPTED)
            continue;
        int ret = server_hello(t, c);
        if (ret != 0 && ret != -EAGAIN) {
            t->refused++;
            chan_free(c);
        }
    }
}

/* Client: the server's answer to our hello, if it is here: its eventfd,
 * and its heap if it has one. */
static void client_answer(struct shm_transport *t, struct shm_chan *c)
{
    struct shm_answer a;
    int fds[2] = { -1, -1 };
    unsigned n_fds;
    ssize_t r = recv_fds(c->sock, &a, sizeof(a), fds, 2, &n_fds);
    if (r == -EAGAIN)
        return;
    bool ok = r == (ssize_t)sizeof(a) && n_fds >= 1 && a.magic == SHM_MAGIC &&
              (n_fds == 1 || chan_map_peer_heap(c, fds[1]) == 0);
    if (fds[1] >= 0)
        close(fds[1]);
    if (!ok) {
        if (fds[0] >= 0)
            close(fds[0]);
        t->bad_rings++;
        chan_kill(t, c);
        return;
    }
    c->server_nonce = a.nonce;
    c->peer_efd = fds[0];
    c->answered = true;
}

/* Client: is a a local address (one we could bind), so that a server
 * there shares our kernel? */
static bool addr_is_local(const union tp_addr *a)
{
    union tp_addr b = *a;
    udrpc__addr_set_port(&b, 0);
    int fd = udrpc__addr_socket(&b, 0);
    if (fd < 0)
        return false;
    bool ok = bind(fd, &b.sa, udrpc__addr_len(&b)) == 0;
    close(fd);
    return ok;
}

/* Client: a new channel to the server endpoint (peer_sm, rpc_id). */
static int client_open(struct shm_transport *t, const union tp_addr *peer_sm, uint8_t rpc_id,
                       struct shm_chan **out)
{
    if (!addr_is_local(peer_sm))
        return -EHOSTUNREACH;
    struct shm_chan *c = chan_alloc(t);
    if (!c)
        return -ENOSPC;
    struct sockaddr_un sa;
    socklen_t sa_len;
    listen_name(&sa, &sa_len, udrpc__addr_port(peer_sm), rpc_id);
    int ret, mfd = -1;
    c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sa, sa_len) != 0) {
        ret = -EHOSTUNREACH; /* no endpoint with shm there (or its backlog is full) */
        goto fail;
    }
    if (!peer_uid_is(c->sock, t->uid)) {
        ret = -EACCES; /* never share memory with another user's process */
        goto fail;
    }
    const uint64_t ring = t->ring_bytes;
    c->region_bytes = region_bytes(ring);
    mfd = memfd_create("udrpc-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || ftruncate(mfd, (off_t)c->region_bytes) != 0 ||
        fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        ret = -errno;
        goto fail;
    }
    c->region = mmap(NULL, c->region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (c->region == MAP_FAILED) {
        c->region = NULL;
        ret = -ENOMEM;
        goto fail;
    }
    if (getrandom(&c->token, sizeof(c->token), 0) != sizeof(c->token)) {
        ret = -EIO;
        goto fail;
    }
    struct shm_hello h = { .magic = SHM_MAGIC, .version = SHM_VERSION, .mtu = t->base.mtu,
                           .ring_bytes = ring, .token = c->token };
    if ((ret = send_with_heap(t, c->sock, &h, sizeof(h), mfd, t->efd)) != 0)
        goto fail;
    close(mfd);
    c->is_client = true;
    c->server = *peer_sm;
    c->server_rpc_id = rpc_id;
    chan_rings(c, ring, t->base.mtu);
    open_add(t, c);
    *out = c;
    return 0;
fail:
    if (mfd >= 0)
        close(mfd);
    chan_free(c);
    return ret;
}

/* What on c's socket means its peer hung up (ended, or closed its
 * endpoint): nothing else is ever sent on it once the answer is read. */
static short hang_up_events(const struct shm_chan *c)
{
    short bad = POLLHUP | POLLERR;
    if (!c->is_client || c->answered)
        bad |= POLLIN; /* (a message after the answer breaks the protocol) */
    return bad;
}

/* Has c's peer hung up? */
static bool chan_hung_up(struct shm_transport *t, struct shm_chan *c)
{
    if (c->is_client && !c->answered)
        client_answer(t, c);
    struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
    return c->state != CH_OPEN || (poll(&pfd, 1, 0) == 1 && (pfd.revents & hang_up_events(c)));
}

/* ---------------------------------------------------------- datapath */

/* Wakes the peer of c if it said it sleeps (idle_sleep_us). A wake-up
 * may be missed in a race of nanoseconds with its going to sleep (no
 * fence here, on the busy path): the sleeper then wakes at its timeout,
 * within 1 ms. Read once per burst and channel: a line that only changes
 * when the peer sleeps, so it stays in our cache. */
static void wake_peer(struct shm_chan *c)
{
    if (atomic_load_explicit(&c->tx.ctl->sleeping, memory_order_relaxed) && c->peer_efd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(c->peer_efd, &one, sizeof(one));
        (void)r;
    }
}

/* Copies a packet for channel c into the backlog: false if it is full. */
static bool backlog_push(struct shm_transport *t, struct shm_chan *c, const struct tp_tx_pkt *pkt)
{
    uint32_t len = TP_HDR_SIZE + pkt->data_len;
    uint64_t need = shm_rec_bytes(len), off = t->bl_tail & (SHM_BACKLOG_BYTES - 1);
    uint64_t skip = SHM_BACKLOG_BYTES - off < need ? SHM_BACKLOG_BYTES - off : 0;
    if (t->bl_tail + skip + need - t->bl_head > SHM_BACKLOG_BYTES)
        return false;
    if (skip) {
        memset(t->backlog + off, 0, sizeof(struct backlog_rec));
        t->bl_tail += skip;
        off = 0;
    }
    struct backlog_rec r = { (uint32_t)(c - t->chans), c->gen, len, 0 };
    memcpy(t->backlog + off, &r, sizeof(r));
    uint8_t *p = t->backlog + off + SHM_REC_HDR;
    memcpy(p, pkt->hdr, TP_HDR_SIZE);
    if (pkt->data_len)
        memcpy(p + TP_HDR_SIZE, pkt->data, pkt->data_len);
    t->bl_tail += need;
    c->backlog++;
    t->held++;
    return true;
}

/* Moves what waits in the backlog into its rings, in order, until one is
 * still full. A packet whose channel is gone is dropped. */
static __attribute__((noinline)) void backlog_drain(struct shm_transport *t)
{
    while (t->bl_head != t->bl_tail) {
        uint64_t off = t->bl_head & (SHM_BACKLOG_BYTES - 1);
        struct backlog_rec r;
        memcpy(&r, t->backlog + off, sizeof(r));
        if (r.len == 0) {
            t->bl_head += SHM_BACKLOG_BYTES - off;
            continue;
        }
        struct shm_chan *c = &t->chans[r.chan];
        if (c->gen == r.gen && c->state == CH_OPEN) {
            uint8_t *p = shm_tx_reserve(&c->tx, r.len);
            if (!p)
                return;
            memcpy(p, t->backlog + off + SHM_REC_HDR, r.len);
            shm_tx_commit(&c->tx, r.len, SHM_REC_PKT);
            c->backlog--;
            wake_peer(c);
        }
        t->bl_head += shm_rec_bytes(r.len);
    }
}

/* A packet whose payload lies in our heap, as a reference to it: true if
 * sent so; false for a payload elsewhere, or a ring full or with packets
 * waiting before it (the caller copies it then, into the backlog). */
static __attribute__((noinline)) bool tx_by_ref(struct shm_transport *t, struct shm_chan *c,
                                                const struct tp_tx_pkt *pkt)
{
    uint64_t heap_off = (uint64_t)((uintptr_t)pkt->data - (uintptr_t)t->heap);
    if (!t->heap || heap_off >= t->heap_bytes || pkt->data_len > t->heap_bytes - heap_off ||
        c->backlog)
        return false;
    uint8_t *p = shm_tx_reserve(&c->tx, SHM_REF_REC_LEN);
    if (!p)
        return false;
    struct shm_ref ref = { .off = heap_off, .len = pkt->data_len,
                           .epoch = atomic_load_explicit(t->epoch, memory_order_relaxed) };
    memcpy(p, pkt->hdr, TP_HDR_SIZE);
    memcpy(p + TP_HDR_SIZE, &ref, sizeof(ref));
    shm_tx_commit(&c->tx, SHM_REF_REC_LEN, SHM_REC_REF);
    t->ref_sends++;
    return true;
}

static unsigned shm_tx_burst(struct transport *tp, const struct tp_tx_pkt *pkts, unsigned n,
                             uint64_t now_tsc)
{
    (void)now_tsc;
    struct shm_transport *t = (struct shm_transport *)tp;
    if (n > SHM_BURST)
        n = SHM_BURST;
    unsigned wanted = n;
    if (__builtin_expect(udrpc__tp_faults_on(&t->faults), 0)) {
        n = udrpc__tp_faults_apply(&t->faults, pkts, n, t->faulted);
        pkts = t->faulted;
    }
    if (unlikely(t->bl_head != t->bl_tail))
        backlog_drain(t);
    unsigned sent = 0;
    struct shm_chan *last = NULL;
    for (unsigned i = 0; i < n; i++) {
        struct shm_peer_tx pt;
        memcpy(&pt, pkts[i].peer->tx, sizeof(pt));
        struct shm_chan *c = &t->chans[pt.chan];
        if (c->gen != pt.gen || c->state != CH_OPEN) {
            sent++; /* the peer is gone: lost, as on a network */
            continue;
        }
        uint32_t len = TP_HDR_SIZE + pkts[i].data_len;
        if (unlikely(len > t->base.mtu))
            continue; /* (never from the Rpc) */
        if (unlikely(pkts[i].data_len >= SHM_REF_MIN) && tx_by_ref(t, c, &pkts[i])) {
            sent++;
        } else {
            /* Behind what already waits for this ring, or waiting itself. */
            uint8_t *p = c->backlog ? NULL : shm_tx_reserve(&c->tx, len);
            if (unlikely(!p)) {
                sent += backlog_push(t, c, &pkts[i]); /* (full too: the Rpc counts a drop) */
                continue;
            }
            memcpy(p, pkts[i].hdr, TP_HDR_SIZE);
            if (pkts[i].data_len)
                memcpy(p + TP_HDR_SIZE, pkts[i].data, pkts[i].data_len);
            shm_tx_commit(&c->tx, len, SHM_REC_PKT);
            sent++;
        }
        if (c != last) { /* (a sleeper wakes to the first; the rest follow) */
            wake_peer(c);
            last = c;
        }
    }
    if (pkts == t->faulted) /* (as udp: the share of the burst taken) */
        return sent == n ? wanted : (unsigned)((uint64_t)wanted * sent / (n ? n : 1));
    return sent;
}

static void shm_tx_flush(struct transport *tp)
{
    (void)tp; /* tx_burst copied every byte */
}

/* The rest of a burst from channel c once a reference is at its head:
 * record by record, from pkts[n] to at most max, each packet's ref set.
 * Returns the new n, or -1 for a broken ring. */
static __attribute__((noinline)) int rx_slow(struct shm_transport *t, struct shm_chan *c,
                                             struct tp_rx_pkt *pkts, unsigned n, unsigned max,
                                             uint64_t src1)
{
    while (n < max) {
        struct shm_gen gen;
        const uint8_t *buf, *data;
        uint32_t len;
        int got = shm_rx_read_one(&c->rx, &buf, &data, &len, &gen);
        if (got <= 0)
            return got < 0 ? -1 : (int)n;
        pkts[n].buf = buf;
        pkts[n].len = len;
        pkts[n].src_id[0] = c->token;
        pkts[n].src_id[1] = src1;
        pkts[n].ref = NULL;
        if (gen.word) {
            t->rx_refs[n] = (struct tp_rx_ref){ data, gen.word, gen.want };
            pkts[n].ref = &t->rx_refs[n];
        }
        n++;
    }
    return (int)n;
}

static unsigned shm_rx_burst(struct transport *tp, struct tp_rx_pkt *pkts, unsigned max,
                             uint64_t now_tsc)
{
    (void)now_tsc;
    struct shm_transport *t = (struct shm_transport *)tp;
    unsigned n = 0, n_open = t->n_open;
    if (unlikely(t->bl_head != t->bl_tail))
        backlog_drain(t); /* (its peer may have made room since) */
    if (n_open == 0)
        return 0;
    const uint8_t *bufs[64];
    uint32_t lens[64];
    unsigned ref_valid = 0; /* pkts[0, ref_valid) have ref set */
    bool other;
    if (max > 64)
        max = 64;
    unsigned start = t->rx_next < n_open ? t->rx_next : 0;
    for (unsigned k = 0; k < n_open && n < max; k++) {
        unsigned i = start + k < n_open ? start + k : start + k - n_open;
        struct shm_chan *c = &t->chans[t->open[i]];
        shm_rx_release(&c->rx); /* what the last burst returned */
        int got = shm_rx_read(&c->rx, bufs, lens, max - n, &other);
        uint64_t src1 = tp->src_tag | (uint64_t)t->open[i];
        for (int j = 0; j < got; j++) {
            pkts[n].buf = bufs[j];
            pkts[n].len = lens[j];
            pkts[n].src_id[0] = c->token;
            pkts[n].src_id[1] = src1;
            n++;
        }
        if (unlikely(other) && got >= 0) {
            /* A reference: the Rpc will read every packet's ref. */
            for (; ref_valid < n; ref_valid++)
                pkts[ref_valid].ref = NULL;
            got = rx_slow(t, c, pkts, n, max, src1);
            if (got >= 0)
                n = ref_valid = (unsigned)got;
        }
        if (got < 0) {
            t->bad_rings++;
            chan_kill(t, c); /* (the open list changed: stop here) */
            break;
        }
        if (n == max)
            t->rx_next = i + 1; /* the next burst starts after the full one */
    }
    if (unlikely(ref_valid != 0)) {
        for (; ref_valid < n; ref_valid++)
            pkts[ref_valid].ref = NULL;
        t->base.rx_refs = true; /* (the Rpc clears it) */
    }
    return n;
}

/* ------------------------------------------------------ session set-up */

static int shm_route_for(struct transport *tp, const union tp_addr *peer_sm, uint8_t rpc_id,
                         struct tp_route *out)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    struct shm_chan *c = NULL;
    for (unsigned i = 0; i < t->n_open && !c; i++) {
        struct shm_chan *o = &t->chans[t->open[i]];
        if (o->is_client && o->server_rpc_id == rpc_id && udrpc__addr_equal(&o->server, peer_sm)) {
            if (!chan_hung_up(t, o))
                c = o;
            else if (o->state == CH_OPEN)
                chan_kill(t, o); /* a server that is gone: a new channel to its successor */
        }
    }
    if (!c) {
        int ret = client_open(t, peer_sm, rpc_id, &c);
        if (ret != 0)
            return ret;
    }
    out->kind = TP_SHM;
    out->len = 8;
    memcpy(out->bytes, &c->token, 8);
    return 0;
}

static void peer_of(struct shm_transport *t, struct shm_chan *c, struct tp_peer *peer)
{
    struct shm_peer_tx pt = { .chan = (uint32_t)(c - t->chans), .gen = c->gen };
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->tx, &pt, sizeof(pt));
    peer->src_id[0] = c->token;
    peer->src_id[1] = t->base.src_tag | pt.chan;
}

/* Server: the route is a client's token (its hello named the channel).
 * Client: the route is the server's nonce, which its answer on the
 * channel to peer_sm carried. */
static int shm_make_peer(struct transport *tp, const struct tp_route *r,
                         const union tp_addr *peer_sm, struct tp_peer *peer)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    if (r->kind != TP_SHM || r->len != 8)
        return -EINVAL;
    uint64_t v;
    memcpy(&v, r->bytes, 8);
    server_accept(t);
    for (unsigned i = 0; i < t->n_open; i++) {
        struct shm_chan *c = &t->chans[t->open[i]];
        if (!c->is_client && c->token == v) {
            peer_of(t, c, peer);
            return 0;
        }
        if (c->is_client && peer_sm && udrpc__addr_equal(&c->server, peer_sm)) {
            if (!c->answered)
                client_answer(t, c);
            if (c->state == CH_OPEN && c->answered && c->server_nonce == v) {
                peer_of(t, c, peer);
                return 0;
            }
        }
    }
    return -EINVAL; /* no channel: the client is not on this host */
}

/* Every 1 ms, off the datapath: new connections, answers, and hang-ups. */
static void shm_scan(struct transport *tp)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    server_accept(t);
    struct pollfd pfd[SHM_MAX_CHANS];
    uint16_t idx[SHM_MAX_CHANS];
    unsigned n = 0;
    for (unsigned i = 0; i < SHM_MAX_CHANS; i++) {
        struct shm_chan *c = &t->chans[i];
        if (c->state == CH_DEAD) {
            chan_free(c); /* no rx_burst points into it any more */
            continue;
        }
        if (c->state != CH_OPEN)
            continue;
        if (c->is_client && !c->answered)
            client_answer(t, c);
        pfd[n] = (struct pollfd){ .fd = c->sock, .events = POLLIN };
        idx[n++] = (uint16_t)i;
    }
    if (n == 0 || poll(pfd, n, 0) <= 0) /* one call for every channel */
        return;
    for (unsigned k = 0; k < n; k++) {
        struct shm_chan *c = &t->chans[idx[k]];
        if (c->state == CH_OPEN && (pfd[k].revents & hang_up_events(c)))
            chan_kill(t, c);
    }
}

/* The endpoint may sleep: each ring we read says so, so that its
 * producer writes our eventfd; false if a packet came meanwhile. */
static bool shm_arm(struct transport *tp)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    for (unsigned i = 0; i < t->n_open; i++)
        atomic_store(&t->chans[t->open[i]].rx.ctl->sleeping, 1); /* seq_cst */
    for (unsigned i = 0; i < t->n_open; i++)
        if (shm_rx_ready(&t->chans[t->open[i]].rx))
            return false;
    return true;
}

static void shm_disarm(struct transport *tp)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    for (unsigned i = 0; i < t->n_open; i++)
        atomic_store_explicit(&t->chans[t->open[i]].rx.ctl->sleeping, 0, memory_order_relaxed);
    uint64_t v;
    ssize_t r = read(t->efd, &v, sizeof(v)); /* (nonblocking: the wake-ups are spent) */
    (void)r;
}

static int shm_poll_fd(struct transport *tp)
{
    return ((struct shm_transport *)tp)->efd;
}

static void shm_stats(struct transport *tp, udrpc_stats_t *out)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    out->shm_channels += t->n_open;
    out->shm_refused += t->refused;
    out->shm_bad_rings += t->bad_rings;
    out->shm_ring_full += t->held;
    out->shm_ref_sends += t->ref_sends;
}

/* Voids every reference sent so far: one bump of our epoch, ordered
 * before whatever the caller writes next (a seqlock's write side). */
static void shm_void_refs(struct transport *tp)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    if (!t->heap)
        return;
    atomic_store_explicit(t->epoch, atomic_load_explicit(t->epoch, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

/* Msgbuf memory from the heap: len bytes at a time, never returned (the
 * allocator keeps its regions). Called from two threads. */
static void *shm_lend_mem(struct transport *tp, size_t len)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    if (!t->heap)
        return NULL;
    size_t off = atomic_fetch_add_explicit(&t->heap_used, len, memory_order_relaxed);
    if (off > t->heap_bytes || len > t->heap_bytes - off)
        return NULL; /* full: the allocator maps its own, copied when sent */
    return t->heap + off;
}

static void shm_destroy(struct transport *tp)
{
    struct shm_transport *t = (struct shm_transport *)tp;
    for (unsigned i = 0; i < SHM_MAX_CHANS; i++)
        if (t->chans[i].state != CH_FREE)
            chan_free(&t->chans[i]);
    close(t->listen_fd);
    close(t->efd);
    if (t->heap)
        munmap(t->heap, t->heap_bytes);
    if (t->heap_ro_fd >= 0)
        close(t->heap_ro_fd);
    free(t->backlog);
    free(t);
}

/* The heap: a memfd of bytes, sealed against resizing, mapped here, and a
 * read-only descriptor of it for peers. Without one (bytes 0, or no /proc
 * to reopen it by), every payload is copied. */
static void heap_create(struct shm_transport *t, size_t bytes)
{
    if (bytes < SHM_HEAP_RESERVED)
        return;
    int fd = memfd_create("udrpc-shm-heap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return;
    char path[40];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)bytes) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0 &&
        (t->heap_ro_fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        if (t->heap_ro_fd >= 0)
            close(t->heap_ro_fd);
        t->heap_ro_fd = -1;
        return;
    }
    t->heap = p;
    t->heap_bytes = bytes;
    t->epoch = (_Atomic uint32_t *)p;
    atomic_init(&t->heap_used, SHM_HEAP_RESERVED);
}

static const struct transport_ops shm_ops = {
    .rx_burst = shm_rx_burst,
    .tx_burst = shm_tx_burst,
    .tx_flush = shm_tx_flush,
    .make_peer = shm_make_peer,
    .route_for = shm_route_for,
    .scan = shm_scan,
    .poll_fd = shm_poll_fd,
    .arm = shm_arm,
    .disarm = shm_disarm,
    .stats = shm_stats,
    .lend_mem = shm_lend_mem,
    .void_refs = shm_void_refs,
    .destroy = shm_destroy,
};

int udrpc__shm_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out)
{
    if (cfg->mtu && (cfg->mtu < 64 || cfg->mtu > SHM_DEFAULT_MTU))
        return -EINVAL;
    int ret = udrpc__tp_faults_check(&cfg->faults, TP_FAULTS_DROP_DUP);
    if (ret)
        return ret;
    struct shm_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (unsigned i = 0; i < SHM_MAX_CHANS; i++)
        t->chans[i].sock = t->chans[i].peer_efd = -1;
    t->base.mtu = cfg->mtu ? cfg->mtu : SHM_DEFAULT_MTU;
    /* UDRPC_SHM_RING_KB: a power of two from 256 KiB to 64 MiB (the
     * client's choice: the server takes the size its hello names). */
    t->ring_bytes = SHM_RING_BYTES;
    const char *kb = getenv("UDRPC_SHM_RING_KB");
    if (kb && *kb) {
        unsigned long v = strtoul(kb, NULL, 10);
        if (v < 256 || v > 65536 || (v & (v - 1)) || (uint64_t)v * 1024 < 4 * shm_rec_bytes(t->base.mtu)) {
            free(t->backlog);
            free(t);
            return -EINVAL;
        }
        t->ring_bytes = (uint64_t)v * 1024;
    }
    /* UDRPC_SHM_HEAP_MB: 0 (no heap) to 65536. */
    size_t heap_mb = SHM_HEAP_MB;
    const char *mb = getenv("UDRPC_SHM_HEAP_MB");
    if (mb && *mb) {
        char *end;
        unsigned long v = strtoul(mb, &end, 10);
        if (*end || v > 65536) {
            free(t);
            return -EINVAL;
        }
        heap_mb = v;
    }
    t->heap_ro_fd = -1;
    t->uid = geteuid();
    t->sm_port = udrpc__addr_port(&p->bind);
    t->rpc_id = p->rpc_id;
    udrpc__tp_faults_init(&t->faults, &cfg->faults, ((uint64_t)t->sm_port << 8) | p->rpc_id);
    t->backlog = malloc(SHM_BACKLOG_BYTES); /* (virtual until used) */
    if (!t->backlog) {
        free(t);
        return -ENOMEM;
    }
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    socklen_t sa_len;
    listen_name(&sa, &sa_len, t->sm_port, t->rpc_id);
    if (t->efd < 0 || t->listen_fd < 0 || getrandom(&t->nonce, 8, 0) != 8 ||
        bind(t->listen_fd, (struct sockaddr *)&sa, sa_len) != 0 ||
        listen(t->listen_fd, 128) != 0) {
        ret = errno == EADDRINUSE ? -EADDRINUSE : -errno;
        if (t->efd >= 0)
            close(t->efd);
        if (t->listen_fd >= 0)
            close(t->listen_fd);
        free(t->backlog);
        free(t);
        return ret;
    }
    heap_create(t, heap_mb << 20);
    t->base.ops = &shm_ops;
    t->base.name = "shm";
    t->base.kind = TP_SHM;
    t->base.link_rate_bytes_per_s = 10e9; /* memory: ~80 Gbit/s */
    t->base.local.kind = TP_SHM;
    t->base.local.len = 8;
    memcpy(t->base.local.bytes, &t->nonce, 8);
    *out = &t->base;
    return 0;
}

/* ---------------------------------------------------------- for tests */

int udrpc__shm_fuzz_rx(const uint8_t *data, size_t size)
{
    /* A ring of RING bytes holding the input: its first 8 bytes are where
     * the consumer's head starts (an offset in the ring, in its first lap
     * after SHM_POS0), the rest the ring's bytes. References point into a
     * peer heap of HEAP bytes. */
    enum { RING = 4096, HEAP = 8192 };
    static struct shm_ring_ctl ctl;
    static _Alignas(64) uint8_t ring[RING];
    static uint8_t heap[HEAP];
    uint64_t head = 0;
    memcpy(&head, data, size < 8 ? size : 8);
    memset(ring, 0, sizeof(ring));
    if (size > 8)
        memcpy(ring, data + 8, size - 8 < RING ? size - 8 : RING);
    head = SHM_POS0(RING) + (head & (RING - 1) & ~(uint64_t)(SHM_REC_ALIGN - 1));
    struct shm_rx rx = { .ctl = &ctl, .data = ring, .size = RING, .mtu = 1024,
                         .head = head, .head_pub = head, .heap = heap, .heap_bytes = HEAP };
    const uint8_t *bufs[32], *datas[32];
    uint32_t lens[32];
    struct shm_gen gens[32];
    int total = 0;
    for (int round = 0; round < 64; round++) {
        /* As rx_burst reads: the fast reader, then record by record from
         * a reference on. */
        bool other;
        int n = shm_rx_read(&rx, bufs, lens, 32, &other);
        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++) {
            datas[i] = bufs[i] + (lens[i] < SHM_PKT_HDR ? lens[i] : SHM_PKT_HDR);
            gens[i].word = NULL;
        }
        while (other && n < 32) {
            int got = shm_rx_read_one(&rx, &bufs[n], &datas[n], &lens[n], &gens[n]);
            if (got < 0)
                return -1;
            if (got == 0)
                break;
            n++;
        }
        if (n == 0)
            return total;
        for (int i = 0; i < n; i++) {
            /* Every header lies inside the ring, every payload inside the
             * ring or the heap (ASan would see them read). */
            volatile uint8_t sum = 0;
            uint32_t hdr = lens[i] < SHM_PKT_HDR ? lens[i] : SHM_PKT_HDR;
            const uint8_t *d = datas[i], *d_end = d + (lens[i] - hdr);
            for (uint32_t b = 0; b < hdr; b++)
                sum ^= bufs[i][b];
            for (const uint8_t *q = d; q < d_end; q++)
                sum ^= *q;
            if (gens[i].word) /* the epoch word, inside the heap */
                sum ^= (uint8_t)atomic_load(gens[i].word);
            (void)sum;
            if (bufs[i] < ring || bufs[i] + hdr > ring + RING ||
                (lens[i] > hdr && !((d >= ring && d_end <= ring + RING) ||
                                    (d >= heap && d_end <= heap + HEAP))))
                __builtin_trap();
        }
        total += n;
        shm_rx_release(&rx);
    }
    return total;
}
