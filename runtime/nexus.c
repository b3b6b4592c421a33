/*
 * nexus.c — the per-process Nexus: the SM UDP socket and its thread, the
 * handler table, the registry of Rpcs by rpc_id, and heartbeats. The SM
 * thread decodes and routes: each SM packet goes to the queue of the Rpc it
 * names, and that Rpc's thread acts on it. A connect to an rpc_id that does
 * not exist is refused here with -ENOENT.
 *
 * Heartbeats tell a live process from a dead one, apart from whether its
 * endpoint threads are keeping up: every remote Nexus that a session of
 * ours talks to gets a heartbeat per interval from this thread, and its
 * Nexus thread answers. Endpoint threads that are busy, stalled in a
 * handler or not polled at all do not delay them; only a dead, frozen or
 * unreachable process goes unheard (rpc_sm.c turns that into failure).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "rpc_internal.h"

#define SM_POLL_MS 50
#define SM_BURST 32

void udrpc_nexus_config_default(udrpc_nexus_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->sm_retry_ms = UDRPC_DEFAULT_SM_RETRY_MS;
    cfg->bg_threads = 0;
}

bool udrpc__nexus_reaches(const udrpc_nexus_t *nx, const union tp_addr *addr)
{
    union tp_addr out;
    return udrpc__addr_reach(&nx->sm_addr, addr, &out);
}

void udrpc__nexus_sm_send(udrpc_nexus_t *nx, const struct sm_pkt *p,
                          const union tp_addr *to)
{
    uint8_t buf[SM_PKT_SIZE];
    union tp_addr dst;
    if (!udrpc__addr_reach(&nx->sm_addr, to, &dst))
        return; /* udrpc_connect refuses such peers; nothing else has one */
    udrpc__sm_encode(p, buf);
    /* Loss is fine: every SM request is retried until its deadline. */
    (void)sendto(nx->sm_fd, buf, sizeof(buf), MSG_DONTWAIT, &dst.sa, udrpc__addr_len(&dst));
}

/* ------------------------------------------------------- heartbeats ---- */

struct nexus_peer *udrpc__nexus_peer_get(udrpc_nexus_t *nx, const union tp_addr *addr,
                                         uint64_t interval_tsc)
{
    pthread_mutex_lock(&nx->peers_lock);
    struct nexus_peer *np = nx->peers;
    while (np && !udrpc__addr_equal(&np->addr, addr))
        np = np->next;
    if (np) {
        np->refs++;
        if (interval_tsc < np->interval_tsc)
            np->interval_tsc = interval_tsc;
    } else if ((np = calloc(1, sizeof(*np))) != NULL) {
        uint64_t now = udrpc__rdtsc();
        if (getrandom(&np->nonce, sizeof(np->nonce), 0) != sizeof(np->nonce))
            np->nonce = now ^ (uint64_t)(uintptr_t)np; /* still not guessable off-path */
        np->addr = *addr;
        np->refs = 1;
        np->interval_tsc = interval_tsc;
        np->next_hb_tsc = now + interval_tsc;
        atomic_store_explicit(&np->heard_tsc, now, memory_order_relaxed);
        np->next = nx->peers;
        nx->peers = np;
    }
    pthread_mutex_unlock(&nx->peers_lock);
    return np;
}

void udrpc__nexus_peer_put(udrpc_nexus_t *nx, struct nexus_peer *np)
{
    if (!np)
        return;
    pthread_mutex_lock(&nx->peers_lock);
    if (--np->refs == 0) {
        struct nexus_peer **pp = &nx->peers;
        while (*pp != np)
            pp = &(*pp)->next;
        *pp = np->next;
        free(np);
    }
    pthread_mutex_unlock(&nx->peers_lock);
}

uint64_t udrpc__nexus_heartbeats(udrpc_nexus_t *nx, uint64_t now_tsc)
{
    uint64_t next = UINT64_MAX;
    struct sm_pkt p;
    memset(&p, 0, sizeof(p));
    p.type = SM_HEARTBEAT_REQ;
    pthread_mutex_lock(&nx->peers_lock);
    for (struct nexus_peer *np = nx->peers; np; np = np->next) {
        if (now_tsc >= np->next_hb_tsc) {
            p.token = np->nonce;
            udrpc__nexus_sm_send(nx, &p, &np->addr);
            atomic_fetch_add_explicit(&np->unanswered, 1, memory_order_relaxed);
            np->next_hb_tsc = now_tsc + np->interval_tsc;
        }
        if (np->next_hb_tsc < next)
            next = np->next_hb_tsc;
    }
    pthread_mutex_unlock(&nx->peers_lock);
    return next;
}

/* An answer to one of our heartbeats: its nonce names the peer. */
static void heartbeat_answered(udrpc_nexus_t *nx, uint64_t nonce, uint64_t now_tsc)
{
    pthread_mutex_lock(&nx->peers_lock);
    struct nexus_peer *np = nx->peers;
    while (np && np->nonce != nonce)
        np = np->next;
    if (np) {
        atomic_store_explicit(&np->heard_tsc, now_tsc, memory_order_relaxed);
        atomic_store_explicit(&np->unanswered, 0, memory_order_relaxed);
    } else {
        atomic_fetch_add(&nx->sm_drops, 1); /* late, or forged */
    }
    pthread_mutex_unlock(&nx->peers_lock);
}

/* ---------------------------------------------------------- routing ---- */

/* Answers to strangers are limited (sm.h). */
static bool stranger_reply_ok(udrpc_nexus_t *nx)
{
    if (sm_reply_limit_take(&nx->stranger_replies, udrpc__monotonic_ns(), 1000000000ull,
                            UDRPC_SM_STRANGER_REPLIES_PER_S))
        return true;
    atomic_fetch_add(&nx->sm_drops, 1);
    return false;
}

void udrpc__nexus_sm_route(udrpc_nexus_t *nx, const struct sm_pkt *p,
                           const union tp_addr *from, uint64_t now_tsc)
{
    if (p->type == SM_HEARTBEAT_REQ) {
        /* Same size back, and to anyone: a reflector gains nothing, and
         * the limit caps what a forger can make us send. */
        if (stranger_reply_ok(nx)) {
            struct sm_pkt r = *p;
            r.type = SM_HEARTBEAT_RESP;
            udrpc__nexus_sm_send(nx, &r, from);
        }
        return;
    }
    if (p->type == SM_HEARTBEAT_RESP) {
        heartbeat_answered(nx, p->token, now_tsc);
        return;
    }
    bool to_server = p->type == SM_CONNECT_REQ || p->type == SM_DISCONNECT_REQ ||
                     p->type == SM_PING_REQ || p->type == SM_CANCEL_REQ;
    uint8_t id = to_server ? p->server_rpc_id : p->client_rpc_id;
    pthread_mutex_lock(&nx->lock);
    struct udrpc *rpc = nx->rpcs[id];
    if (rpc)
        udrpc__rpc_sm_enqueue(rpc, p, from); /* under nx->lock: rpc stays alive */
    pthread_mutex_unlock(&nx->lock);
    if (rpc)
        return;
    if (!to_server || p->type == SM_CANCEL_REQ) {
        atomic_fetch_add(&nx->sm_drops, 1); /* for an endpoint that is gone */
    } else if (stranger_reply_ok(nx)) {
        struct sm_pkt r = *p;
        r.type = (uint8_t)(p->type + 1); /* each request type's response follows it */
        r.err = p->type == SM_DISCONNECT_REQ ? 0 : -ENOENT;
        udrpc__nexus_sm_send(nx, &r, from);
    }
}

/* Keeps datagrams of SM size with our magic and version (sm.h's layout;
 * BPF loads words big-endian: "USM1" reads 0x55534D31). */
static void attach_sm_filter(int fd)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 8 + SM_PKT_SIZE, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __builtin_bswap32(htole32(SM_MAGIC)), 0, 3),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SM_VERSION, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFFu),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    udrpc__sock_filter(fd, code, sizeof(code) / sizeof(code[0]));
}

static void *sm_thread_main(void *arg)
{
    udrpc_nexus_t *nx = arg;
    /* Bursts, so that a flood of SM-port garbage costs one syscall per
     * SM_BURST datagrams, not one each. */
    static __thread uint8_t bufs[SM_BURST][SM_PKT_SIZE + 1];
    struct mmsghdr msgs[SM_BURST];
    struct iovec iov[SM_BURST];
    union tp_addr from[SM_BURST];
    while (!atomic_load(&nx->stop)) {
        uint64_t now = udrpc__rdtsc();
        uint64_t next_hb = udrpc__nexus_heartbeats(nx, now);
        int wait_ms = SM_POLL_MS;
        if (next_hb != UINT64_MAX) {
            uint64_t ms = next_hb > now ? (next_hb - now) / (nx->clock->tsc_per_us * 1000) + 1 : 0;
            if (ms < (uint64_t)wait_ms)
                wait_ms = (int)ms;
        }
        struct pollfd pfd = { .fd = nx->sm_fd, .events = POLLIN };
        if (poll(&pfd, 1, wait_ms) <= 0)
            continue;
        unsigned handled = 0;
        for (;;) {
            for (int i = 0; i < SM_BURST; i++) {
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = sizeof(bufs[i]);
                memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = &from[i];
                msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
            }
            int n = recvmmsg(nx->sm_fd, msgs, SM_BURST, MSG_DONTWAIT, NULL);
            if (n <= 0)
                break;
            handled += (unsigned)n;
            now = udrpc__rdtsc();
            for (int i = 0; i < n; i++) {
                struct sm_pkt p;
                if (msgs[i].msg_hdr.msg_namelen != udrpc__addr_len(&from[i]) ||
                    from[i].sa.sa_family != nx->sm_addr.sa.sa_family ||
                    udrpc__sm_decode(bufs[i], msgs[i].msg_len, &p) != 0) {
                    atomic_fetch_add(&nx->sm_drops, 1);
                    continue;
                }
                udrpc__addr_canon(&from[i]); /* an IPv4 peer of [::] */
                udrpc__nexus_sm_route(nx, &p, &from[i], now);
            }
        }
        /* More than a burst in one wakeup is a storm (thousands of
         * sessions connecting, or a flood): let the queue fill for a
         * while and take it in full bursts, rather than wake for every
         * few packets and compete for a core with the Rpc threads. */
        if (handled > SM_BURST) {
            struct timespec gap = { .tv_nsec = UDRPC_SM_STORM_GAP_US * 1000 };
            nanosleep(&gap, NULL);
        }
    }
    return NULL;
}

udrpc_nexus_t *udrpc_nexus_create(const char *local_uri, const udrpc_nexus_config_t *cfg)
{
    union tp_addr sin;
    const char *why;
    if (udrpc__uri_parse(local_uri, &sin, &why) != 0) {
        UDRPC_LOG_WARN((struct udrpc *)NULL, -1, "udrpc_nexus_create(\"%s\"): %s",
                       local_uri ? local_uri : "(null)", why);
        errno = EINVAL;
        return NULL;
    }
    udrpc_nexus_t *nx = calloc(1, sizeof(*nx));
    if (!nx) {
        errno = ENOMEM;
        return NULL;
    }
    int err;
    if (cfg)
        nx->cfg = *cfg;
    else
        udrpc_nexus_config_default(&nx->cfg);
    if (nx->cfg.sm_retry_ms == 0)
        nx->cfg.sm_retry_ms = UDRPC_DEFAULT_SM_RETRY_MS;
    nx->clock = udrpc__clock_init();
    pthread_mutex_init(&nx->lock, NULL);
    pthread_mutex_init(&nx->peers_lock, NULL);
    nx->sm_fd = udrpc__addr_socket(&sin, 0);
    if (nx->sm_fd < 0) {
        err = -nx->sm_fd;
        goto out_free;
    }
    /* Connects and pings of thousands of sessions arrive in bursts: a
     * default-sized receive buffer (~200 datagrams) would drop them. */
    attach_sm_filter(nx->sm_fd);
    int bytes = 8 << 20;
    if (setsockopt(nx->sm_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
        (void)setsockopt(nx->sm_fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    socklen_t len = sizeof(sin);
    if (bind(nx->sm_fd, &sin.sa, udrpc__addr_len(&sin)) != 0 ||
        getsockname(nx->sm_fd, &sin.sa, &len) != 0) {
        err = errno;
        goto out_close;
    }
    udrpc__addr_canon(&sin);
    nx->sm_addr = sin;
    char text[TP_ADDR_STRLEN];
    udrpc__addr_format(&sin, text);
    if (strlen(text) >= sizeof(nx->uri)) {
        err = ENAMETOOLONG; /* its own URI would not fit in UDRPC_MAX_URI_LEN */
        goto out_close;
    }
    memcpy(nx->uri, text, strlen(text) + 1);
    if ((err = udrpc__bg_start(nx)) != 0)
        goto out_close;
    if ((err = pthread_create(&nx->sm_thread, NULL, sm_thread_main, nx)) != 0) {
        udrpc__bg_stop(nx);
        goto out_close;
    }
    return nx;

out_close:
    close(nx->sm_fd);
out_free:
    pthread_mutex_destroy(&nx->peers_lock);
    pthread_mutex_destroy(&nx->lock);
    free(nx);
    errno = err;
    return NULL;
}

const char *udrpc_nexus_uri(const udrpc_nexus_t *nx)
{
    return nx ? nx->uri : NULL;
}

int udrpc_register_handler(udrpc_nexus_t *nx, uint8_t req_type,
                           udrpc_req_handler_t fn, udrpc_handler_mode_t mode)
{
    if (!nx || !fn)
        return -EINVAL;
    if (mode != UDRPC_HANDLER_FG && mode != UDRPC_HANDLER_BG)
        return -EINVAL;
    if (mode == UDRPC_HANDLER_BG && nx->cfg.bg_threads == 0)
        return -EINVAL; /* no workers to run it: set bg_threads */
    pthread_mutex_lock(&nx->lock);
    int ret = 0;
    if (atomic_load(&nx->frozen))
        ret = -EBUSY; /* Rpcs read the table without locks */
    else if (nx->handlers[req_type].fn)
        ret = -EEXIST;
    else
        nx->handlers[req_type] = (struct handler_entry){ fn, mode };
    pthread_mutex_unlock(&nx->lock);
    return ret;
}

void udrpc_nexus_destroy(udrpc_nexus_t *nx)
{
    if (!nx)
        return;
    atomic_store(&nx->stop, true);
    pthread_join(nx->sm_thread, NULL);
    udrpc__bg_stop(nx);
    close(nx->sm_fd);
    while (nx->peers) { /* left by endpoints not destroyed first (a misuse) */
        struct nexus_peer *np = nx->peers;
        nx->peers = np->next;
        free(np);
    }
    pthread_mutex_destroy(&nx->peers_lock);
    pthread_mutex_destroy(&nx->lock);
    free(nx);
}
