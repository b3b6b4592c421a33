/*
 * rpc_sm.c — the session-management protocol, on the Rpc thread: connect
 * and disconnect with retries and deadlines, connect de-duplication at the
 * server, session checks, and liveness. SM packets arrive from the Nexus
 * thread through rpc->smq. (Sessions themselves: session.c.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "rpc_internal.h"

#define NO_SESSION 0xFFFFu

/* ------------------------------------------------------ SM sending ---- */

static void sm_req_pkt(struct udrpc *rpc, const struct session *s, uint8_t type,
                       struct sm_pkt *out);

void udrpc__sm_send_req(struct udrpc *rpc, struct session *s, uint8_t type)
{
    struct sm_pkt p;
    sm_req_pkt(rpc, s, type, &p);
    udrpc__nexus_sm_send(rpc->nx, &p, &s->remote_sm);
}

void udrpc__sm_send_cancel(struct udrpc *rpc, struct session *s, uint64_t req_num)
{
    struct sm_pkt p;
    sm_req_pkt(rpc, s, SM_CANCEL_REQ, &p);
    p.req_num = req_num;
    udrpc__nexus_sm_send(rpc->nx, &p, &s->remote_sm);
}

/* A client's SM request of type on session s. */
static void sm_req_pkt(struct udrpc *rpc, const struct session *s, uint8_t type,
                       struct sm_pkt *p)
{
    memset(p, 0, sizeof(*p));
    p->type = type;
    p->client_rpc_id = rpc->rpc_id;
    p->server_rpc_id = s->remote_rpc_id;
    p->client_session = s->local_num;
    p->server_session = s->remote_num;
    p->token = s->token;
    p->mtu = (uint16_t)rpc->mtu;
    p->max_msg_size = (uint32_t)rpc->max_msg_size;
    memcpy(p->client_uri, rpc->nx->uri, sizeof(p->client_uri));
    /* The session's transport's route (shm's names the channel). */
    const struct transport *tp = rpc->tps[s->peer.tpi];
    if (type != SM_CONNECT_REQ || !tp->ops->route_for ||
        tp->ops->route_for(rpc->tps[s->peer.tpi], &s->remote_sm, s->remote_rpc_id,
                           &p->client_route) != 0)
        p->client_route = tp->local;
}

/* A client session's transport: shm (a transport with route_for) where it
 * reaches the server, unless local is false (the server refused it);
 * else the first of the others. 0, or -EHOSTUNREACH: none. */
static int client_pick_transport(struct udrpc *rpc, struct session *s, bool local)
{
    for (unsigned t = 0; local && t < rpc->n_tps; t++) {
        struct transport *tp = rpc->tps[t];
        struct tp_route r;
        if (tp->ops->route_for &&
            tp->ops->route_for(tp, &s->remote_sm, s->remote_rpc_id, &r) == 0) {
            s->peer.tpi = (uint8_t)t;
            return 0;
        }
    }
    for (unsigned t = 0; t < rpc->n_tps; t++)
        if (!rpc->tps[t]->ops->route_for) {
            s->peer.tpi = (uint8_t)t;
            return 0;
        }
    return -EHOSTUNREACH;
}

static void sm_reply(struct udrpc *rpc, const struct sm_pkt *req, uint8_t type,
                     int err, const struct session *s, const union tp_addr *to)
{
    struct sm_pkt p = *req;
    p.type = type;
    p.err = (int16_t)err;
    p.max_msg_size = (uint32_t)rpc->max_msg_size;
    if (s) {
        p.server_session = s->local_num;
        p.server_route = rpc->tps[s->peer.tpi]->local; /* the session's transport */
    }
    udrpc__nexus_sm_send(rpc->nx, &p, to);
}

/* An answer to a stranger: a refusal, or an idempotent answer about a
 * session we do not have. Limited (sm.h). */
static void sm_reply_stranger(struct udrpc *rpc, const struct sm_pkt *req, uint8_t type,
                              int err, const union tp_addr *to)
{
    if (sm_reply_limit_take(&rpc->stranger_replies, rpc->now_tsc,
                            udrpc__us_to_tsc(rpc->clock, 1000000),
                            UDRPC_SM_STRANGER_REPLIES_PER_S))
        sm_reply(rpc, req, type, err, NULL, to);
    else
        rpc->stats.sm_drops++;
}

static void sm_pending_add(struct udrpc *rpc, struct session *s, uint64_t now)
{
    const struct udrpc_clock *ck = rpc->clock;
    s->sm_deadline_tsc = now + udrpc__us_to_tsc(ck, (uint64_t)rpc->cfg.connect_timeout_ms * 1000);
    s->sm_retries = 0;
    s->sm_next_retry_tsc = now + rpc->sm_retry_tsc;
    s->sm_next = rpc->sm_pending;
    rpc->sm_pending = s;
}

/* ------------------------------------------------------ public API ---- */

int udrpc_connect(udrpc_t *rpc, const char *remote_uri, uint8_t remote_rpc_id)
{
    return udrpc_connect_ctx(rpc, remote_uri, remote_rpc_id, NULL);
}

int udrpc_connect_ctx(udrpc_t *rpc, const char *remote_uri, uint8_t remote_rpc_id,
                      void *session_ctx)
{
    if (!rpc)
        return -EINVAL;
    if (!rpc_is_owner(rpc))
        return -EPERM;
    if (rpc->closing)
        return -ESHUTDOWN;
    union tp_addr sin;
    const char *why = "port 0 (a peer's port is never 0)";
    if (udrpc__uri_parse(remote_uri, &sin, &why) != 0 || udrpc__addr_port(&sin) == 0) {
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, -1, "connect to \"%s\": %s",
                          remote_uri ? remote_uri : "(null)", why);
        return -EINVAL;
    }
    if (!udrpc__nexus_reaches(rpc->nx, &sin)) {
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, -1, "connect to %s: the Nexus at %s cannot "
                          "reach that address family", remote_uri, rpc->nx->uri);
        return -EAFNOSUPPORT;
    }
    uint64_t token;
    if (getrandom(&token, sizeof(token), 0) != sizeof(token))
        return -EIO;
    struct session *s = udrpc__session_alloc(rpc, true);
    if (!s)
        return -ENOSPC;
    s->np = udrpc__nexus_peer_get(rpc->nx, &sin, rpc->peer_timeout_tsc / UDRPC_HEARTBEATS);
    if (!s->np) {
        udrpc__session_free(rpc, s);
        return -ENOMEM;
    }
    s->state = SS_CONNECTING;
    s->ctx = session_ctx;
    s->token = token;
    s->remote_rpc_id = remote_rpc_id;
    s->remote_sm = sin;
    strncpy(s->remote_uri, remote_uri, sizeof(s->remote_uri) - 1);
    if (client_pick_transport(rpc, s, true) != 0)
        s->peer.tpi = 0; /* none: the server will say it does not take ours */
    sm_pending_add(rpc, s, udrpc__rdtsc());
    udrpc__sm_send_req(rpc, s, SM_CONNECT_REQ);
    UDRPC_LOG_INFO(rpc, s->local_num, "connecting to %s rpc %u", remote_uri, remote_rpc_id);
    return session_handle(s);
}

void *udrpc_session_context(const udrpc_t *rpc, int session)
{
    int err;
    if (!rpc)
        return NULL;
    if (session == rpc->notify_handle)
        return rpc->notify_ctx; /* inside sm_handler for this session */
    const struct session *s = session_of(rpc, session, &err);
    return s && s->is_client ? s->ctx : NULL;
}

int udrpc_disconnect(udrpc_t *rpc, int session)
{
    struct session *s;
    int err = client_session_arg(rpc, session, &s);
    if (err)
        return err;
    if (s->state == SS_DISCONNECTING)
        return -EALREADY;
    bool was_pending = s->state == SS_CONNECTING;
    s->state = SS_DISCONNECTING; /* no new requests from here on */
    udrpc__session_fail_requests(rpc, s, -ECONNRESET);
    if (was_pending)
        udrpc__sm_pending_remove(rpc, s);
    sm_pending_add(rpc, s, udrpc__rdtsc());
    udrpc__sm_send_req(rpc, s, SM_DISCONNECT_REQ);
    return 0;
}

bool udrpc_is_connected(const udrpc_t *rpc, int session)
{
    int err;
    const struct session *s = rpc ? session_of(rpc, session, &err) : NULL;
    return s && s->state == SS_CONNECTED;
}

/* ---------------------------------------------------- SM receiving ---- */

/* A connect is identified by the client's URI, rpc_id, session number and
 * token: a retry carries all four. The token is part of it, so that a
 * stranger who knows the first three cannot reach an existing session. */
static uint64_t dedup_key(const struct sm_pkt *p)
{
    uint64_t h = udrpc__hash_bytes(p->client_uri, strnlen(p->client_uri, UDRPC_MAX_URI_LEN));
    h = udrpc__hash_fx_add(h, p->client_rpc_id);
    h = udrpc__hash_fx_add(h, p->client_session);
    return udrpc__hash_fx_add(h, p->token);
}

/* The server session that a connect from this client created, if any. */
static struct session *dedup_find(struct udrpc *rpc, const struct sm_pkt *p, uint64_t key)
{
    uint64_t num;
    if (!udrpc__hash_get(&rpc->dedup, key, &num))
        return NULL;
    struct session *s = rpc->sessions[num];
    if (!s || s->is_client || s->remote_rpc_id != p->client_rpc_id ||
        s->remote_num != p->client_session || s->token != p->token ||
        strncmp(s->remote_uri, p->client_uri, UDRPC_MAX_URI_LEN) != 0)
        return NULL; /* a hash collision: not this client */
    return s;
}

/* A connect's or its answer's max_msg_size is usable: a limit of it + 1
 * fits in 32 bits and lets something through. */
static bool sm_max_msg_ok(const struct sm_pkt *p)
{
    return p->max_msg_size != 0 && p->max_msg_size != UINT32_MAX;
}

static void sm_on_connect_req(struct udrpc *rpc, const struct sm_pkt *p,
                              const union tp_addr *from)
{
    /* The session goes over our transport of the kind the client speaks. */
    unsigned tpi = 0;
    while (tpi < rpc->n_tps && rpc->tps[tpi]->kind != p->client_route.kind)
        tpi++;
    if (tpi == rpc->n_tps) {
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -EPROTONOSUPPORT, from);
        return;
    }
    if (!sm_max_msg_ok(p)) {
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -EPROTO, from);
        return;
    }
    if (rpc->closing) {
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -ESHUTDOWN, from);
        return;
    }
    if (p->mtu != rpc->mtu) {
        /* Packet boundaries follow the MTU: both ends must use one. */
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, -1,
                          "refused %s: its MTU %u is not ours (%u); set UDRPC_MTU alike",
                          p->client_uri, p->mtu, rpc->mtu);
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -EMEDIUMTYPE, from);
        return;
    }
    uint64_t key = dedup_key(p);
    struct session *s = dedup_find(rpc, p, key);
    if (s) {
        sm_reply(rpc, p, SM_CONNECT_RESP, 0, s, from); /* a retried connect */
        return;
    }
    /* A new token for a known URI, rpc and session number (a restarted
     * client, or a stranger) gets a session of its own: the old one is
     * left alone, and liveness frees it if its client is really gone. */
    s = udrpc__session_alloc(rpc, false);
    if (!s) {
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -ENOSPC, from);
        return;
    }
    s->np = udrpc__nexus_peer_get(rpc->nx, from, rpc->peer_timeout_tsc / UDRPC_HEARTBEATS);
    if (!s->np) {
        udrpc__session_free(rpc, s);
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -ENOMEM, from);
        return;
    }
    struct transport *tp = rpc->tps[tpi];
    int ret = tp->ops->make_peer(tp, &p->client_route, from, &s->peer);
    if (ret != 0) {
        udrpc__session_free(rpc, s);
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP,
                          ret == -EAFNOSUPPORT ? -EAFNOSUPPORT : -EPROTONOSUPPORT, from);
        return;
    }
    s->peer.tpi = (uint8_t)tpi;
    /* Responses: up to the smaller of the client's limit and ours. */
    s->peer_msg_limit = (p->max_msg_size < rpc->max_msg_size ? p->max_msg_size
                                                              : (uint32_t)rpc->max_msg_size) + 1u;
    s->remote_num = p->client_session;
    s->remote_rpc_id = p->client_rpc_id;
    s->token = p->token;
    memcpy(s->remote_uri, p->client_uri, sizeof(s->remote_uri));
    s->remote_sm = *from;
    s->dedup_key = key;
    udrpc__session_connected(rpc, s);
    if (udrpc__hash_put(&rpc->dedup, key, s->local_num) != 0) {
        udrpc__session_free(rpc, s);
        sm_reply_stranger(rpc, p, SM_CONNECT_RESP, -ENOMEM, from);
        return;
    }
    rpc->stats.sessions_connected++;
    sm_reply(rpc, p, SM_CONNECT_RESP, 0, s, from);
    UDRPC_LOG_LIMITED(UDRPC_LVL_INFO, rpc, s->local_num, "accepted %s rpc %u session %u",
                      p->client_uri, p->client_rpc_id, p->client_session);
}

/* Looks up the client session an SM response is for; NULL if stale. */
/* (sm_notify is udrpc__sm_notify, with the sessions in session.c) */
static struct session *sm_client_session(struct udrpc *rpc, const struct sm_pkt *p,
                                         enum session_state want)
{
    if (p->client_session >= rpc->max_sessions)
        return NULL;
    struct session *s = rpc->sessions[p->client_session];
    if (!s || !s->is_client || s->state != want || s->token != p->token ||
        s->remote_rpc_id != p->server_rpc_id)
        return NULL;
    return s;
}

static void connect_failed(struct udrpc *rpc, struct session *s, int err)
{
    int num = s->local_num, handle = session_handle(s);
    void *ctx = s->ctx;
    s->state = SS_DISCONNECTING;
    udrpc__session_fail_requests(rpc, s, -ECONNRESET);
    udrpc__session_free(rpc, s);
    UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, num, "connect failed: %s", udrpc_strerror(err));
    udrpc__sm_notify(rpc, handle, ctx, UDRPC_SM_CONNECT_FAILED, err);
}

static void sm_on_connect_resp(struct udrpc *rpc, const struct sm_pkt *p)
{
    struct session *s = sm_client_session(rpc, p, SS_CONNECTING);
    if (!s) {
        rpc->stats.sm_drops++;
        return;
    }
    udrpc__sm_pending_remove(rpc, s);
    unsigned tpi = s->peer.tpi;
    struct transport *tp = rpc->tps[tpi];
    int ret = p->err ? p->err
              : p->server_session == NO_SESSION || !sm_max_msg_ok(p)
                  ? -EPROTO
                  : tp->ops->make_peer(tp, &p->server_route, &s->remote_sm, &s->peer);
    if (ret != 0 && tp->ops->route_for && (ret == -EPROTONOSUPPORT || ret == -EINVAL) &&
        client_pick_transport(rpc, s, false) == 0) {
        /* The server does not take this route (shm: it is not on this
         * host, or has no shm): the next transport, under a new token, so
         * that the server sees a new session. */
        if (getrandom(&s->token, sizeof(s->token), 0) == sizeof(s->token)) {
            sm_pending_add(rpc, s, rpc->now_tsc);
            udrpc__sm_send_req(rpc, s, SM_CONNECT_REQ);
            return;
        }
        ret = -EIO;
    }
    if (ret != 0) {
        connect_failed(rpc, s, p->err || ret == -EAFNOSUPPORT ? ret : -EPROTO);
        return;
    }
    s->peer.tpi = (uint8_t)tpi; /* (make_peer wrote the peer whole) */
    /* Requests above it: -EMSGSIZE (all of them once udrpc_close began). */
    s->peer_msg_limit = rpc->closing ? 0 : p->max_msg_size + 1u;
    s->remote_num = p->server_session;
    udrpc__session_connected(rpc, s);
    s->last_rx_tsc = rpc->now_tsc;
    rpc->stats.sessions_connected++;
    udrpc__client_check_queued(rpc, s);
    udrpc__client_start_queued(rpc, s);
    udrpc__sm_notify(rpc, session_handle(s), s->ctx, UDRPC_SM_CONNECTED, 0);
}

static void sm_on_disconnect_req(struct udrpc *rpc, const struct sm_pkt *p,
                                 const union tp_addr *from)
{
    struct session *s = NULL;
    if (p->server_session == NO_SESSION) /* the client never heard our answer */
        s = dedup_find(rpc, p, dedup_key(p));
    else if (p->server_session < rpc->max_sessions)
        s = rpc->sessions[p->server_session];
    if (s && (s->is_client || s->token != p->token || s->remote_num != p->client_session)) {
        rpc->stats.sm_drops++; /* not the session's owner: refuse */
        return;
    }
    if (!s) {
        sm_reply_stranger(rpc, p, SM_DISCONNECT_RESP, 0, from); /* idempotent */
        return;
    }
    udrpc__session_free(rpc, s);
    sm_reply(rpc, p, SM_DISCONNECT_RESP, 0, NULL, from);
}

static void sm_on_disconnect_resp(struct udrpc *rpc, const struct sm_pkt *p)
{
    struct session *s = sm_client_session(rpc, p, SS_DISCONNECTING);
    if (!s) {
        rpc->stats.sm_drops++;
        return;
    }
    int handle = session_handle(s);
    void *ctx = s->ctx;
    udrpc__session_free(rpc, s);
    udrpc__sm_notify(rpc, handle, ctx, UDRPC_SM_DISCONNECTED, 0);
}

/* The server session an SM request from its client names (number, token
 * and the client's session number all match), or NULL. */
static struct session *sm_server_session(struct udrpc *rpc, const struct sm_pkt *p)
{
    struct session *s = p->server_session < rpc->max_sessions
                            ? rpc->sessions[p->server_session] : NULL;
    if (s && (s->is_client || s->token != p->token || s->remote_num != p->client_session))
        return NULL; /* not a session of that client (any more) */
    return s;
}

/* A client asks whether we still have its session (its requests are
 * timing out): yes, or -ENOENT from here or from the Nexus. */
static void sm_on_ping_req(struct udrpc *rpc, const struct sm_pkt *p,
                           const union tp_addr *from)
{
    struct session *s = sm_server_session(rpc, p);
    if (!s) {
        sm_reply_stranger(rpc, p, SM_PING_RESP, -ENOENT, from);
        return;
    }
    s->last_rx_tsc = rpc->now_tsc; /* the token proves the client is alive */
    sm_reply(rpc, p, SM_PING_RESP, 0, NULL, from);
}

static void sm_on_ping_resp(struct udrpc *rpc, const struct sm_pkt *p)
{
    struct session *s = sm_client_session(rpc, p, SS_CONNECTED);
    if (!s || s->remote_num != p->server_session) {
        rpc->stats.sm_drops++;
        return;
    }
    if (p->err)
        udrpc__session_fail(rpc, s, -ECONNABORTED); /* it closed, or restarted */
    else
        s->last_rx_tsc = rpc->now_tsc;
}

/* A client gave up on a request: if its handler still holds it, it may
 * stop early (udrpc_req_abandoned). Best effort and unanswered: a lost
 * notice only means the handler runs to its end. */
static void sm_on_cancel_req(struct udrpc *rpc, const struct sm_pkt *p)
{
    struct session *s = sm_server_session(rpc, p);
    if (!s) {
        rpc->stats.sm_drops++;
        return;
    }
    sslot_t *h = &s->s[p->req_num & (UDRPC_SLOTS_PER_SESSION - 1)];
    if (h->has_req && h->req_num == p->req_num && (SV_MASK(h->state) & SV_HANDLED)) {
        atomic_store_explicit(&h->abandoned_req, h->req_num, memory_order_relaxed);
        rpc->stats.reqs_abandoned_by_client++;
    }
}

void udrpc__rpc_sm_enqueue(struct udrpc *rpc, const struct sm_pkt *p,
                           const union tp_addr *from)
{
    pthread_mutex_lock(&rpc->smq_lock);
    unsigned n = atomic_load_explicit(&rpc->smq_count, memory_order_relaxed);
    if (n == rpc->smq_cap && n < UDRPC_SM_QUEUE_LEN) {
        /* Grow (twice the size, in order from the head): an endpoint
         * holds a few entries, until a storm of connects needs thousands. */
        uint32_t cap = n ? 2 * n : UDRPC_SM_QUEUE_MIN;
        struct sm_qentry *q = malloc(cap * sizeof(*q));
        if (q) {
            for (uint32_t i = 0; i < n; i++)
                q[i] = rpc->smq[(rpc->smq_head + i) % rpc->smq_cap];
            free(rpc->smq);
            rpc->smq = q;
            rpc->smq_head = 0;
            rpc->smq_cap = cap;
        }
    }
    if (n < rpc->smq_cap) {
        struct sm_qentry *e = &rpc->smq[(rpc->smq_head + n) % rpc->smq_cap];
        e->pkt = *p;
        e->from = *from;
        atomic_store_explicit(&rpc->smq_count, n + 1, memory_order_release);
        udrpc__ev_notify(rpc);
    } else {
        atomic_fetch_add(&rpc->nx->sm_drops, 1); /* full: the sender retries */
    }
    pthread_mutex_unlock(&rpc->smq_lock);
}

void udrpc__sm_process_queue(struct udrpc *rpc)
{
    for (;;) {
        struct sm_qentry e;
        pthread_mutex_lock(&rpc->smq_lock);
        unsigned n = atomic_load_explicit(&rpc->smq_count, memory_order_relaxed);
        if (n == 0) {
            pthread_mutex_unlock(&rpc->smq_lock);
            return;
        }
        e = rpc->smq[rpc->smq_head];
        rpc->smq_head = (rpc->smq_head + 1) % rpc->smq_cap;
        atomic_store_explicit(&rpc->smq_count, n - 1, memory_order_relaxed);
        pthread_mutex_unlock(&rpc->smq_lock);

        switch (e.pkt.type) {
        case SM_CONNECT_REQ:
            sm_on_connect_req(rpc, &e.pkt, &e.from);
            break;
        case SM_CONNECT_RESP:
            sm_on_connect_resp(rpc, &e.pkt);
            break;
        case SM_DISCONNECT_REQ:
            sm_on_disconnect_req(rpc, &e.pkt, &e.from);
            break;
        case SM_PING_REQ:
            sm_on_ping_req(rpc, &e.pkt, &e.from);
            break;
        case SM_PING_RESP:
            sm_on_ping_resp(rpc, &e.pkt);
            break;
        case SM_DISCONNECT_RESP:
            sm_on_disconnect_resp(rpc, &e.pkt);
            break;
        case SM_CANCEL_REQ:
            sm_on_cancel_req(rpc, &e.pkt);
            break;
        default: /* heartbeats are the Nexus thread's */
            rpc->stats.sm_drops++;
            break;
        }
    }
}

/* Retries and deadlines of pending SM requests; runs every
 * UDRPC_SM_CHECK_US, scanning only sessions with a request out. */
void udrpc__sm_check_timers(struct udrpc *rpc)
{
    uint64_t now = rpc->now_tsc;
    rpc->sm_next_check_tsc = now + udrpc__us_to_tsc(rpc->clock, UDRPC_SM_CHECK_US);
    for (unsigned t = 0; t < rpc->n_tps; t++) {
        struct transport *tp = rpc->tps[t];
        if (tp->ops->scan)
            tp->ops->scan(tp);
        if (unlikely(tp->notice != NULL)) { /* what a transport changed on its own */
            UDRPC_LOG_AT(UDRPC_LVL_WARN, rpc, -1, "%s", tp->notice);
            tp->notice = NULL;
        }
    }
    struct session *s = rpc->sm_pending;
    while (s) {
        struct session *next = s->sm_next;
        if (now >= s->sm_deadline_tsc) {
            udrpc__sm_pending_remove(rpc, s);
            if (s->state == SS_CONNECTING) {
                connect_failed(rpc, s, -ETIMEDOUT);
            } else {
                int handle = session_handle(s);
                void *ctx = s->ctx;
                udrpc__session_free(rpc, s);
                udrpc__sm_notify(rpc, handle, ctx, UDRPC_SM_DISCONNECTED, -ETIMEDOUT);
            }
        } else if (now >= s->sm_next_retry_tsc) {
            /* Doubling: a server that is slow to answer thousands of
             * connects is not also buried in their retries. */
            uint64_t gap = rpc->sm_retry_tsc << (s->sm_retries < 16 ? s->sm_retries : 16);
            uint64_t cap = udrpc__us_to_tsc(rpc->clock, UDRPC_SM_RETRY_MAX_MS * 1000);
            s->sm_retries++;
            s->sm_next_retry_tsc = now + (gap < cap ? gap : cap);
            udrpc__sm_send_req(rpc, s, s->state == SS_CONNECTING ? SM_CONNECT_REQ
                                                          : SM_DISCONNECT_REQ);
        }
        s = next;
    }
}

/* Liveness, every peer_timeout / UDRPC_LIVENESS_SCANS: a connected
 * session whose peer has been silent for 3/4 of peer_timeout is over (a
 * client's fails, a server's is freed with its slots and stored
 * responses). Heard: a data packet or SM answer on the session, or the
 * peer's Nexus answering our Nexus's heartbeats (every peer_timeout /
 * UDRPC_HEARTBEATS). So a peer that dies is found out between 5/8 and
 * 13/16 of peer_timeout after its death: within the bound, never early.
 * Silence alone is not proof: the peer must also have left
 * UDRPC_HEARTBEATS_UNANSWERED heartbeats in a row unanswered, so that a
 * process of ours that was itself frozen or descheduled for a while does
 * not blame its peers when it wakes up. A scan of the session table, off
 * the datapath; the datapath's share is one store per packet
 * (last_rx_tsc). */
void udrpc__check_liveness(struct udrpc *rpc)
{
    uint64_t now = rpc->now_tsc;
    rpc->next_liveness_tsc = now + rpc->liveness_scan_tsc;
    for (uint32_t i = 0; i < rpc->max_sessions; i++) {
        struct session *s = rpc->sessions[i];
        if (!s || s->state != SS_CONNECTED)
            continue;
        uint64_t heard = atomic_load_explicit(&s->np->heard_tsc, memory_order_relaxed);
        if (s->last_rx_tsc > heard)
            heard = s->last_rx_tsc;
        if (now < heard || now - heard <= rpc->silence_tsc ||
            atomic_load_explicit(&s->np->unanswered, memory_order_relaxed) <
                UDRPC_HEARTBEATS_UNANSWERED)
            continue;
        if (s->is_client) {
            udrpc__session_fail(rpc, s, -ETIMEDOUT);
        } else {
            UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, (int)i,
                              "client %s silent (peer_timeout %u ms): session freed", s->remote_uri,
                              rpc->cfg.peer_timeout_ms);
            rpc->stats.sessions_failed++;
            udrpc__session_free(rpc, s);
        }
    }
}

void udrpc__sm_pending_remove(struct udrpc *rpc, struct session *s)
{
    for (struct session **pp = &rpc->sm_pending; *pp; pp = &(*pp)->sm_next) {
        if (*pp == s) {
            *pp = s->sm_next;
            s->sm_next = NULL;
            return;
        }
    }
}

void udrpc__sm_notify(struct udrpc *rpc, int session, void *session_ctx, udrpc_sm_event_t ev,
                      int err)
{
    if (!rpc->sm_handler)
        return;
    /* During the call, udrpc_session_context() answers for this handle,
     * whose session may be gone already. */
    int prev_handle = rpc->notify_handle;
    void *prev_ctx = rpc->notify_ctx;
    rpc->notify_handle = session;
    rpc->notify_ctx = session_ctx;
    rpc->sm_handler(session, ev, err, rpc->ctx);
    rpc->notify_handle = prev_handle;
    rpc->notify_ctx = prev_ctx;
}

void udrpc__session_check(struct udrpc *rpc, struct session *s)
{
    udrpc__sm_send_req(rpc, s, SM_PING_REQ);
}

