/*
 * rpc.c — the Rpc endpoint's life: creation (its transport from the
 * registry, allocators, session table, wheel) and destruction, the event
 * loop, message buffers, and its stats.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rpc_internal.h"

static void destroy_transports(udrpc_t *rpc)
{
    for (unsigned i = 0; i < rpc->n_tps; i++)
        rpc->tps[i]->ops->destroy(rpc->tps[i]);
    rpc->n_tps = 0;
}

/* "auto": shm beside the network transport, for peers on this host. Its
 * failure (its socket's name taken) fails nothing: peers on this host
 * then go over the network transport. */
static void add_auto_shm(udrpc_t *rpc)
{
    const struct transport_desc *d = udrpc__transport_find("shm", 3);
    if (!d || rpc->n_tps == UDRPC_MAX_TRANSPORTS)
        return;
    for (unsigned i = 0; i < rpc->n_tps; i++)
        if (rpc->tps[i]->desc == d)
            return;
    struct tp_params p = { .bind = rpc->nx->sm_addr,
                           .src_tag = (uint64_t)rpc->n_tps << TP_SRC_TAG_SHIFT,
                           .rpc_id = rpc->rpc_id };
    int ret = udrpc__transport_create(d, &rpc->cfg, &p, &rpc->tps[rpc->n_tps]);
    if (ret == 0)
        rpc->n_tps++;
    else
        UDRPC_LOG_INFO(rpc, -1, "auto: no shm beside %s (%s): peers on this host go over it",
                       rpc->tps[0]->name, udrpc_strerror(ret));
}

/* The transports the configuration names, from the registry: one name,
 * "auto", or a list ("loop,udp"). "auto" is the best network transport
 * here, and shm beside it for peers on this host (left out, with a note,
 * where it cannot be made). A client session goes over shm where its
 * server is on this host and speaks shm, else over the first of the
 * others; a server session takes the one whose kind its client speaks. Each
 * gets its index as the tag of its sources. All send datagrams of one
 * size, the smallest of their MTUs (packet boundaries are the endpoint's),
 * and at most one may register memory (a msgbuf has one lkey). */
static int make_transports(udrpc_t *rpc)
{
    const char *t = rpc->cfg.transport;
    int ret = 0;
    while (*t) {
        size_t len = strcspn(t, ",");
        const bool is_auto = len == 4 && !memcmp(t, "auto", 4);
        const struct transport_desc *d =
            is_auto ? udrpc__transport_auto(&rpc->cfg) : udrpc__transport_find(t, len);
        if (!d || rpc->n_tps == UDRPC_MAX_TRANSPORTS) {
            ret = -EINVAL;
            break;
        }
        char why[TP_WHY_LEN] = "";
        struct tp_params p = { .bind = rpc->nx->sm_addr,
                               .src_tag = (uint64_t)rpc->n_tps << TP_SRC_TAG_SHIFT,
                               .rpc_id = rpc->rpc_id,
                               .why = why };
        if ((ret = udrpc__transport_create(d, &rpc->cfg, &p, &rpc->tps[rpc->n_tps])) != 0) {
            if (why[0])
                UDRPC_LOG_WARN(rpc, -1, "%s", why);
            break;
        }
        rpc->n_tps++;
        if (is_auto)
            add_auto_shm(rpc);
        t += len;
        if (*t == ',')
            t++;
    }
    unsigned reg = 0;
    for (unsigned i = 0; ret == 0 && i < rpc->n_tps; i++) {
        reg += rpc->tps[i]->ops->reg_mem != NULL;
        if (i == 0 || rpc->tps[i]->mtu < rpc->mtu)
            rpc->mtu = rpc->tps[i]->mtu;
        if (rpc->tps[i]->ops->reg_mem)
            rpc->reg_tp = rpc->tps[i];
    }
    if (ret == 0 && (rpc->n_tps == 0 || reg > 1))
        ret = -EINVAL;
    if (ret != 0)
        destroy_transports(rpc);
    return ret;
}

/* The allocators' region hook: the memory registration of the transport
 * that needs one. */
static int reg_region(void *ctx, void *base, size_t len, uint32_t *lkey)
{
    struct transport *tp = ctx;
    return tp->ops->reg_mem(tp, base, len, lkey);
}

void udrpc__void_refs(struct udrpc *rpc)
{
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->ops->void_refs)
            rpc->tps[t]->ops->void_refs(rpc->tps[t]);
}

/* The allocators' borrow hook: memory the transport sends from in place. */
static void *lent_region(void *ctx, size_t len)
{
    struct transport *tp = ctx;
    return tp->ops->lend_mem(tp, len);
}

/* --------------------------------------------------- create/destroy ---- */

udrpc_t *udrpc_create(udrpc_nexus_t *nx, uint8_t rpc_id, void *rpc_context,
                      udrpc_sm_handler_t sm_handler, const udrpc_config_t *cfg)
{
    int err;
    if (!nx) {
        errno = EINVAL;
        return NULL;
    }
    /* Cache-line aligned: the datapath's fields fill its first lines. */
    udrpc_t *rpc = aligned_alloc(UDRPC_CACHE_LINE, sizeof(*rpc));
    if (!rpc) {
        errno = ENOMEM;
        return NULL;
    }
    memset(rpc, 0, sizeof(*rpc));
    if (cfg)
        rpc->cfg = *cfg;
    else
        udrpc_config_default(&rpc->cfg);
    if ((err = udrpc__config_check(&rpc->cfg)) != 0)
        goto out_free;
    rpc->nx = nx;
    rpc->rpc_id = rpc_id;
    rpc->ctx = rpc_context;
    rpc->sm_handler = sm_handler;
    rpc->owner = pthread_self();
    rpc->tx_gen = 1; /* a fresh slot's 0 never reads as "queued in this batch" */
    rpc->clock = udrpc__clock_init();
    rpc->handlers = nx->handlers;
    rpc->max_sessions = rpc->cfg.max_sessions;
    rpc->max_msg_size = rpc->cfg.max_msg_size;
    rpc->session_credits = rpc->cfg.session_credits;
    rpc->rto_min_tsc = udrpc__us_to_tsc(rpc->clock, rpc->cfg.rto_min_us);
    rpc->rto_max_tsc = udrpc__us_to_tsc(rpc->clock, rpc->cfg.rto_max_us);
    rpc->stall_tsc = udrpc__us_to_tsc(rpc->clock, UDRPC_STALL_US);
    rpc->peer_timeout_tsc = udrpc__us_to_tsc(rpc->clock, (uint64_t)rpc->cfg.peer_timeout_ms * 1000);
    if (rpc->cfg.idle_sleep_us) /* cleared below if the transport cannot block */
        rpc->idle_sleep_tsc = udrpc__us_to_tsc(rpc->clock, rpc->cfg.idle_sleep_us);
    rpc->liveness_scan_tsc = rpc->peer_timeout_tsc / UDRPC_LIVENESS_SCANS;
    rpc->silence_tsc = rpc->peer_timeout_tsc / UDRPC_SILENCE_DEN * UDRPC_SILENCE_NUM;
    rpc->sm_retry_tsc = udrpc__us_to_tsc(rpc->clock, (uint64_t)nx->cfg.sm_retry_ms * 1000);
    rpc->now_tsc = rpc->loop_tsc = udrpc__rdtsc();
    pthread_mutex_init(&rpc->smq_lock, NULL);
    pthread_mutex_init(&rpc->bg_alloc_lock, NULL);

    pthread_mutex_lock(&nx->lock); /* (shm's socket is named after rpc_id) */
    bool taken = nx->rpcs[rpc_id] != NULL;
    pthread_mutex_unlock(&nx->lock);
    if (taken) {
        err = -EEXIST;
        goto out_lock;
    }
    if ((err = make_transports(rpc)) != 0)
        goto out_lock;
    rpc->tp = rpc->tps[0];
    rpc->tp_ops = rpc->tp->ops;
    rpc->cc = rpc->cfg.cc;
    rpc->sample_mask = rpc->cc ? UINT64_MAX
                               : (uint64_t)(UDRPC_RTT_SAMPLE_EVERY - 1) * UDRPC_SLOTS_PER_SESSION;
    udrpc__cc_params_init(&rpc->ccp, &rpc->cfg.timely, rpc->tp->link_rate_bytes_per_s,
                          rpc->clock->tsc_per_ns,
                          udrpc__us_to_tsc(rpc->clock, rpc->cfg.timely.t_low_us),
                          udrpc__us_to_tsc(rpc->clock, 2 * UDRPC_WHEEL_BUCKET_US));
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (!rpc->tps[t]->ops->poll_fd)
            rpc->idle_sleep_tsc = 0; /* a transport that only busy-polls */
    rpc->dpp = rpc->mtu - UDRPC_HDR_SIZE;
    if (msgbuf_pkts(rpc->max_msg_size, rpc->dpp) >= UDRPC_MAX_PKTS_PER_MSG) {
        err = -EINVAL; /* pkt_num is 16 bits: raise the MTU or lower the max */
        goto out_tp;
    }
    mb_reg_fn reg = rpc->reg_tp ? reg_region : NULL;
    udrpc__msgbuf_alloc_init(&rpc->alloc, rpc->dpp, reg, rpc->reg_tp);
    udrpc__msgbuf_alloc_init(&rpc->bg_alloc, rpc->dpp, reg, rpc->reg_tp);
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->ops->lend_mem) {
            udrpc__msgbuf_alloc_borrow(&rpc->alloc, lent_region, rpc->tps[t]);
            udrpc__msgbuf_alloc_borrow(&rpc->bg_alloc, lent_region, rpc->tps[t]);
            break;
        }
    if ((err = udrpc__msgbuf_get(&rpc->alloc, UDRPC_CTRL_HDRS * UDRPC_HDR_SIZE,
                                 &rpc->ctrl_mb)) != 0)
        goto out_alloc;
    rpc->ctrl_hdrs = rpc->ctrl_mb.buf;
    rpc->ctrl_lkey = msgbuf_lkey(&rpc->ctrl_mb);
    rpc->sessions = calloc(rpc->max_sessions, sizeof(*rpc->sessions));
    rpc->free_sessions = malloc(sizeof(*rpc->free_sessions) * rpc->max_sessions);
    rpc->session_gen = malloc(sizeof(*rpc->session_gen) * rpc->max_sessions);
    if (!rpc->sessions || !rpc->free_sessions || !rpc->session_gen) {
        err = -ENOMEM;
        goto out_arrays;
    }
    for (uint32_t i = 0; i < rpc->max_sessions; i++) {
        rpc->free_sessions[i] = rpc->max_sessions - 1 - i; /* 0 is handed out first */
        rpc->session_gen[i] = 1;
    }
    rpc->n_free_sessions = rpc->max_sessions;
    rpc->notify_handle = -1;
    rpc->ev_epfd = rpc->ev_timerfd = -1;
    atomic_init(&rpc->ev_notify_fd, -1);
    if ((err = udrpc__wheel_init(&rpc->wheel, UDRPC_WHEEL_BUCKETS,
                                 udrpc__us_to_tsc(rpc->clock, UDRPC_WHEEL_BUCKET_US),
                                 rpc->now_tsc)) != 0)
        goto out_arrays;
    if ((err = udrpc__hash_init(&rpc->dedup, 64)) != 0)
        goto out_wheel;

    pthread_mutex_lock(&nx->lock);
    if (nx->rpcs[rpc_id]) {
        pthread_mutex_unlock(&nx->lock);
        err = -EEXIST;
        goto out_hash;
    }
    nx->rpcs[rpc_id] = rpc;
    atomic_store(&nx->frozen, true);
    pthread_mutex_unlock(&nx->lock);
    UDRPC_LOG_INFO(rpc, -1, "created on %s%s, mtu %u", rpc->tp->name,
                   rpc->n_tps > 1 ? " and more" : "", rpc->mtu);
    return rpc;

out_hash:
    udrpc__hash_fini(&rpc->dedup);
out_wheel:
    udrpc__wheel_fini(&rpc->wheel);
out_arrays:
    free(rpc->sessions);
    free(rpc->free_sessions);
    free(rpc->session_gen);
out_alloc:
    udrpc__msgbuf_alloc_fini(&rpc->alloc);
    udrpc__msgbuf_alloc_fini(&rpc->bg_alloc);
out_tp:
    destroy_transports(rpc);
out_lock:
    pthread_mutex_destroy(&rpc->bg_alloc_lock);
    pthread_mutex_destroy(&rpc->smq_lock);
out_free:
    free(rpc);
    errno = -err;
    return NULL;
}

/* udrpc_close: what is still under way. want_clients: client sessions
 * count too (the disconnect phase), not only their requests. */
static bool close_busy(const struct udrpc *rpc, bool want_clients)
{
    if (atomic_load_explicit(&rpc->bg_done, memory_order_relaxed) != NULL)
        return true; /* answers of BG handlers not sent yet */
    for (uint32_t i = 0; i < rpc->max_sessions; i++) {
        const struct session *s = rpc->sessions[i];
        if (!s)
            continue;
        if (!s->is_client) {
            if (s->in_handler)
                return true; /* a handler still holds a request */
            for (unsigned k = 0; k < UDRPC_SLOTS_PER_SESSION; k++) {
                const sslot_t *h = &s->s[k];
                if (h->state == SV_RECEIVING ||
                    (h->state == SV_RESPONDED && h->resp_pulled < h->resp_pkts))
                    return true; /* a request still arriving, an answer not
                                    yet pulled whole */
            }
            continue;
        }
        if (want_clients || s->q_head)
            return true;
        for (unsigned k = 0; k < UDRPC_SLOTS_PER_SESSION; k++)
            if (s->c[k].active && !s->c[k].abandoned)
                return true; /* (one given up on: its continuation ran) */
    }
    return rpc->zombies != NULL;
}

/* Runs the loop until nothing is under way (close_busy) or end: whether
 * something still is. The scan covers every session, so it runs once per
 * UDRPC_CLOSE_SCAN_EVERY iterations, not each. */
#define UDRPC_CLOSE_SCAN_EVERY 64
static bool close_run(struct udrpc *rpc, bool want_clients, uint64_t end)
{
    while (close_busy(rpc, want_clients)) {
        if (udrpc__rdtsc() >= end)
            return true;
        for (unsigned i = 0; i < UDRPC_CLOSE_SCAN_EVERY; i++)
            udrpc_run_event_loop_once(rpc);
    }
    return false;
}

int udrpc_close(udrpc_t *rpc, unsigned timeout_ms)
{
    if (!rpc)
        return -EINVAL;
    if (!rpc_is_owner(rpc))
        return -EPERM;
    uint64_t end = udrpc__rdtsc() + udrpc__us_to_tsc(rpc->clock, (uint64_t)timeout_ms * 1000);
    rpc->closing = true;
    for (uint32_t i = 0; i < rpc->max_sessions; i++) /* no more requests: -ESHUTDOWN */
        if (rpc->sessions[i] && rpc->sessions[i]->is_client)
            rpc->sessions[i]->peer_msg_limit = 0;
    /* 1. Requests in flight complete, handlers answer (and are sent). */
    close_run(rpc, false, end);
    /* 2. Every client session says goodbye; what is left of its requests
     * ends with -ECONNRESET. The server's answer frees it. */
    for (uint32_t i = 0; i < rpc->max_sessions; i++) {
        struct session *s = rpc->sessions[i];
        if (s && s->is_client && s->state != SS_DISCONNECTING)
            (void)udrpc_disconnect(rpc, session_handle(s));
    }
    int ret = close_run(rpc, true, end) ? -ETIMEDOUT : 0;
    /* 3. Server sessions: every answer has been pulled whole (close_busy),
     * but its last packets may be lost and asked for again: serve until no
     * packet has come for UDRPC_CLOSE_QUIET_US. */
    bool serving = false;
    for (uint32_t i = 0; i < rpc->max_sessions && !serving; i++)
        serving = rpc->sessions[i] && !rpc->sessions[i]->is_client;
    const uint64_t quiet_tsc = udrpc__us_to_tsc(rpc->clock, UDRPC_CLOSE_QUIET_US);
    while (serving && !close_run(rpc, false, end)) {
        uint64_t rx = rpc->stats.pkts_rx, quiet_end = udrpc__rdtsc() + quiet_tsc;
        do
            udrpc_run_event_loop_once(rpc);
        while (rpc->stats.pkts_rx == rx && rpc->now_tsc < quiet_end && rpc->now_tsc < end);
        serving = rpc->stats.pkts_rx != rx && rpc->now_tsc < end; /* not quiet yet */
    }
    /* 4. The rest as udrpc_destroy: server sessions' clients are told. */
    udrpc_destroy(rpc);
    return ret;
}

void udrpc_destroy(udrpc_t *rpc)
{
    if (!rpc)
        return;
    pthread_mutex_lock(&rpc->nx->lock);
    rpc->nx->rpcs[rpc->rpc_id] = NULL; /* the SM thread stops routing to us */
    pthread_mutex_unlock(&rpc->nx->lock);
    udrpc__bg_detach(rpc); /* no worker touches our handles after this */
    int efd = atomic_exchange(&rpc->ev_notify_fd, -1); /* nobody writes it now */
    if (efd >= 0)
        close(efd);
    if (rpc->ev_epfd >= 0)
        close(rpc->ev_epfd);
    if (rpc->ev_timerfd >= 0)
        close(rpc->ev_timerfd);
    for (uint32_t i = 0; i < rpc->max_sessions; i++) {
        struct session *s = rpc->sessions[i];
        if (!s)
            continue;
        udrpc__session_notify_closed(rpc, s);
        if (s->is_client) {
            s->state = SS_DISCONNECTING;
            udrpc__session_fail_requests(rpc, s, -ECONNRESET);
        } else {
            s->in_handler = 0; /* deferred handles die with the endpoint */
        }
        udrpc__session_free(rpc, s);
    }
    while (rpc->zombies) /* their deferred handles die with the endpoint */
        udrpc__session_free(rpc, rpc->zombies);
    udrpc__tx_flush(rpc);
    udrpc__hash_fini(&rpc->dedup);
    udrpc__wheel_fini(&rpc->wheel);
    free(rpc->sessions);
    free(rpc->free_sessions);
    free(rpc->session_gen);
    for (uint32_t i = 0; i < rpc->n_qreq_chunks; i++)
        free(rpc->qreq_chunks[i]);
    free(rpc->qreq_chunks);
    destroy_transports(rpc);
    udrpc__msgbuf_alloc_fini(&rpc->alloc);
    udrpc__msgbuf_alloc_fini(&rpc->bg_alloc);
    pthread_mutex_destroy(&rpc->bg_alloc_lock);
    pthread_mutex_destroy(&rpc->smq_lock);
    free(rpc->smq);
    free(rpc);
}

/* ------------------------------------------------------- event loop ---- */

/* A full burst means more are waiting: take up to UDRPC_RX_BURSTS_MAX
 * bursts before sending, so that one TX batch (one sendmmsg) answers them
 * all. Nothing queued for TX points into the RX buffers. */
static inline __attribute__((always_inline)) void
rx_bursts(struct udrpc *rpc, struct transport *tp, const struct transport_ops *ops)
{
    for (unsigned b = 0; b < UDRPC_RX_BURSTS_MAX; b++) {
        unsigned n = ops->rx_burst(tp, rpc->rx, UDRPC_RX_BURST, rpc->now_tsc);
        if (n) {
            if (unlikely(tp->rx_refs)) {
                tp->rx_refs = false;
                udrpc__process_rx_refs(rpc, rpc->rx, n);
            } else
                udrpc__process_rx(rpc, rpc->rx, n);
        }
        if (n < UDRPC_RX_BURST)
            break;
    }
}

/* Of several transports, those without a connected session, which the loop
 * does not poll (rpc->tp_sessions): read what strays reached them. Every
 * UDRPC_SM_CHECK_US, and after a sleep that one of them may have ended. */
static __attribute__((noinline)) void rx_quiet_tps(struct udrpc *rpc)
{
    for (unsigned t = 0; rpc->n_tps > 1 && t < rpc->n_tps; t++)
        if (!rpc->tp_sessions[t])
            rx_bursts(rpc, rpc->tps[t], rpc->tps[t]->ops);
}

/* udrpc_get_fd's mode: the wake-ups this iteration answers are used up
 * before it looks at the queues, so that work handed over during it wakes
 * the next wait. */
static __attribute__((noinline, cold)) void ev_drain(struct udrpc *rpc)
{
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->ops->disarm)
            rpc->tps[t]->ops->disarm(rpc->tps[t]);
    uint64_t v;
    ssize_t r = read(atomic_load(&rpc->ev_notify_fd), &v, sizeof(v));
    r = read(rpc->ev_timerfd, &v, sizeof(v));
    (void)r;
    rpc->ev_kick = false; /* the loop sends what it queues */
}

/* ...and after it, the timerfd is armed for the loop's next timer: the
 * timing wheel's (RTO, pacing, deadlines: within 1 ms, as with
 * idle_sleep_us), pending SM retries, and the liveness scan. */
static __attribute__((noinline, cold)) void ev_rearm(struct udrpc *rpc)
{
    rpc->ev_kick = true;
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->ops->arm && !rpc->tps[t]->ops->arm(rpc->tps[t]))
            udrpc__ev_notify(rpc); /* a packet came meanwhile: poll again */
    uint64_t next = rpc->next_liveness_tsc;
    if (rpc->sm_pending && rpc->sm_next_check_tsc < next)
        next = rpc->sm_next_check_tsc;
    uint64_t soon = rpc->now_tsc + udrpc__us_to_tsc(rpc->clock, UDRPC_IDLE_SLEEP_MAX_US);
    if ((rpc->wheel.armed || rpc->stall_head) && soon < next)
        next = soon;
    uint64_t ns = next > rpc->now_tsc ? udrpc__tsc_to_ns(rpc->clock, next - rpc->now_tsc) : 0;
    if (ns < 1000)
        ns = 1000; /* 0 would disarm it */
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000u),
                                            .tv_nsec = (long)(ns % 1000000000u) } };
    (void)timerfd_settime(rpc->ev_timerfd, 0, &its, NULL);
}

int udrpc_get_fd(udrpc_t *rpc)
{
    if (!rpc)
        return -EINVAL;
    if (!rpc_is_owner(rpc))
        return -EPERM;
    if (rpc->ev_epfd >= 0)
        return rpc->ev_epfd;
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (!rpc->tps[t]->ops->poll_fd)
            return -ENOTSUP; /* a transport that only busy-polls */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int tm = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int err = ep < 0 || ev < 0 || tm < 0 ? -errno : 0;
    struct epoll_event e = { .events = EPOLLIN };
    for (unsigned t = 0; !err && t < rpc->n_tps; t++)
        if (epoll_ctl(ep, EPOLL_CTL_ADD, rpc->tps[t]->ops->poll_fd(rpc->tps[t]), &e) != 0)
            err = -errno;
    if (!err && (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0 ||
                 epoll_ctl(ep, EPOLL_CTL_ADD, tm, &e) != 0))
        err = -errno;
    if (err) {
        if (ep >= 0)
            close(ep);
        if (ev >= 0)
            close(ev);
        if (tm >= 0)
            close(tm);
        return err;
    }
    rpc->ev_epfd = ep;
    rpc->ev_timerfd = tm;
    atomic_store_explicit(&rpc->ev_notify_fd, ev, memory_order_release);
    rpc->ev_mode = true;
    rpc->now_tsc = udrpc__rdtsc();
    ev_rearm(rpc);
    return ep;
}

static inline __attribute__((always_inline)) void loop_once(struct udrpc *rpc);

/* udrpc_get_fd's mode: the same iteration between ev_drain and ev_rearm. */
static __attribute__((noinline)) void loop_once_ev(struct udrpc *rpc)
{
    ev_drain(rpc);
    loop_once(rpc);
    ev_rearm(rpc);
}

void udrpc_run_event_loop_once(udrpc_t *rpc)
{
    if (unlikely(rpc->ev_mode)) {
        loop_once_ev(rpc);
        return;
    }
    loop_once(rpc);
}

static inline __attribute__((always_inline)) void loop_once(struct udrpc *rpc)
{
    rpc->now_tsc = udrpc__rdtsc(); /* the only clock read of the iteration */
    rpc->loop_gap_tsc = rpc->now_tsc - rpc->loop_tsc;
    rpc->loop_tsc = rpc->now_tsc;
    if (unlikely(rpc->loop_gap_tsc > rpc->stall_tsc))
        rpc->stalled_at_tsc = rpc->now_tsc; /* Timely ignores samples begun before */
    if (likely(rpc->n_tps == 1)) {
        rx_bursts(rpc, rpc->tp, rpc->tp_ops);
    } else {
        for (unsigned t = 0; t < rpc->n_tps; t++)
            if (rpc->tp_sessions[t] || rpc->ev_mode)
                rx_bursts(rpc, rpc->tps[t], rpc->tps[t]->ops);
    }
    if (rpc->stall_head)
        udrpc__process_stalls(rpc);
    /* What those packets asked for (responses, the requests continuations
     * made) goes now, not behind the timers and SM checks below. */
    if (rpc->tx_n)
        udrpc__tx_flush(rpc);
    if (unlikely(atomic_load_explicit(&rpc->bg_done, memory_order_relaxed) != NULL))
        udrpc__bg_process_done(rpc);
    udrpc__fire_timers(rpc);
    if (unlikely(atomic_load_explicit(&rpc->smq_count, memory_order_acquire)))
        udrpc__sm_process_queue(rpc);
    if (unlikely(rpc->now_tsc >= rpc->sm_next_check_tsc)) {
        udrpc__sm_check_timers(rpc);
        rx_quiet_tps(rpc);
    }
    if (unlikely(rpc->now_tsc >= rpc->next_liveness_tsc))
        udrpc__check_liveness(rpc);
    if (rpc->tx_n) /* what the timers and SM made */
        udrpc__tx_flush(rpc);
}

/* Blocks until a packet may be waiting on one of the transports, or
 * timeout_us passes: each armed, then one poll over their descriptors. */
static __attribute__((noinline)) void tps_wait(struct udrpc *rpc, unsigned timeout_us)
{
    struct pollfd pfd[UDRPC_MAX_TRANSPORTS];
    bool ready = false;
    for (unsigned t = 0; t < rpc->n_tps; t++) {
        struct transport *tp = rpc->tps[t];
        pfd[t] = (struct pollfd){ .fd = tp->ops->poll_fd(tp), .events = POLLIN };
        if (tp->ops->arm && !tp->ops->arm(tp))
            ready = true;
    }
    if (!ready) {
        struct timespec ts = { .tv_sec = timeout_us / 1000000,
                               .tv_nsec = (long)(timeout_us % 1000000) * 1000 };
        (void)ppoll(pfd, rpc->n_tps, &ts, NULL); /* EINTR or a timeout: the loop polls again */
    }
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (rpc->tps[t]->ops->disarm)
            rpc->tps[t]->ops->disarm(rpc->tps[t]);
    rx_quiet_tps(rpc); /* (else a stray there would end every sleep at once) */
}

/* The idle test lives here, not in udrpc_run_event_loop_once(), so that
 * busy-polling costs nothing extra: an iteration that moved no packet leaves
 * the packet counters alone. Timers fire late by at most the 1 ms cap, and SM
 * packets (which reach the Rpc through the Nexus thread, not the socket)
 * wait at most as long. The idle time carries over between calls, so that a
 * caller's own loop around udrpc_run_event_loop(rpc, 0) sleeps too. */
static void idle_check(struct udrpc *rpc, uint64_t end_tsc)
{
    uint64_t pkts = rpc->stats.pkts_rx + rpc->stats.pkts_tx;
    if (pkts != rpc->idle_pkts || rpc->stall_head) {
        rpc->idle_pkts = pkts;
        rpc->idle_since_tsc = rpc->now_tsc;
        return;
    }
    if (rpc->now_tsc - rpc->idle_since_tsc < rpc->idle_sleep_tsc)
        return;
    unsigned sleep_us = UDRPC_IDLE_SLEEP_MAX_US;
    if (end_tsc > rpc->now_tsc) {
        uint64_t left_us = (end_tsc - rpc->now_tsc) / rpc->clock->tsc_per_us + 1;
        if (left_us < sleep_us)
            sleep_us = (unsigned)left_us;
    }
    tps_wait(rpc, sleep_us);
}

void udrpc_run_event_loop(udrpc_t *rpc, unsigned timeout_ms)
{
    uint64_t end = udrpc__rdtsc() + udrpc__us_to_tsc(rpc->clock, (uint64_t)timeout_ms * 1000);
    do {
        udrpc_run_event_loop_once(rpc);
        if (rpc->idle_sleep_tsc)
            idle_check(rpc, end);
    } while (rpc->now_tsc < end);
}

/* ------------------------------------------------------------ msgbuf ---- */

int udrpc_msgbuf_alloc(udrpc_t *rpc, size_t max_size, udrpc_msgbuf_t *out)
{
    if (!rpc || !out || max_size == 0 || max_size > rpc->max_msg_size)
        return -EINVAL;
    if (!rpc_is_owner(rpc))
        return -EPERM;
    return udrpc__msgbuf_get(&rpc->alloc, max_size, out);
}

void udrpc_msgbuf_free(udrpc_t *rpc, udrpc_msgbuf_t *mb)
{
    if (rpc && mb)
        udrpc__msgbuf_put(&rpc->alloc, mb);
}

void udrpc_msgbuf_resize(udrpc_msgbuf_t *mb, size_t size)
{
    if (mb)
        mb->size = size <= mb->max_size ? size : mb->max_size;
}

/* ------------------------------------------------------------- misc ---- */

int udrpc_get_stats(const udrpc_t *rpc, udrpc_stats_t *out)
{
    if (!rpc || !out)
        return -EINVAL;
    *out = rpc->stats;
    out->sm_drops += atomic_load(&rpc->nx->sm_drops);
    out->kernel_drops = udrpc__sock_drops(rpc->nx->sm_fd);
    for (unsigned i = 0; i < rpc->n_tps; i++)
        if (rpc->tps[i]->ops->stats)
            rpc->tps[i]->ops->stats(rpc->tps[i], out);
    return 0;
}

int udrpc_get_session_stats(const udrpc_t *rpc, int session, udrpc_session_stats_t *out)
{
    int err = -EINVAL;
    if (!rpc || !out)
        return -EINVAL;
    const struct session *s = session_of(rpc, session, &err);
    if (!s)
        return err;
    if (!s->is_client)
        return -EINVAL;
    out->rate_bytes_per_s = s->cc.t.rate_bytes_per_s;
    out->rtt_min_us = s->rtt_samples ? (double)s->rtt_min_tsc * rpc->ccp.us_per_tsc : 0;
    out->rtt_avg_us = (double)s->srtt_tsc * rpc->ccp.us_per_tsc;
    out->rttvar_us = (double)s->rttvar_tsc * rpc->ccp.us_per_tsc;
    out->rto_us = (double)s->rto_tsc * rpc->ccp.us_per_tsc;
    out->rtt_samples = s->rtt_samples;
    out->rate_updates = s->cc.t.updates;
    out->pkts_paced = s->pkts_paced;
    out->paced_us = (uint64_t)((double)s->paced_tsc * rpc->ccp.us_per_tsc);
    return 0;
}

const char *udrpc_transport_name(const udrpc_t *rpc)
{
    return rpc ? rpc->tp->name : NULL;
}

size_t udrpc_max_data_per_pkt(const udrpc_t *rpc)
{
    return rpc ? rpc->dpp : 0;
}
