/*
 * session.c — sessions: allocation (array-indexed by session number, a
 * stack of free numbers), release (a server session whose handlers still
 * hold request handles becomes a zombie until the last answers), failure
 * of a client session, and the notices an endpoint sends its peers as it
 * closes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_internal.h"

#define NO_SESSION 0xFFFFu

struct session *udrpc__session_alloc(struct udrpc *rpc, bool is_client)
{
    if (rpc->n_free_sessions == 0)
        return NULL;
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rpc = rpc;
    s->is_client = is_client;
    s->credits = rpc->session_credits;
    s->peer_msg_limit = UINT32_MAX; /* until the handshake says */
    s->remote_num = NO_SESSION;
    s->last_rx_tsc = rpc->now_tsc;
    for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++) {
        if (is_client) {
            s->c[i].sess = s;
            s->c[i].next_req_num = i;
            s->c[i].rto.kind = TIMER_RTO;
            s->c[i].pace.kind = TIMER_PACE;
            s->c[i].deadline.kind = TIMER_DEADLINE;
            s->c[i].sample_idx = NO_SAMPLE;
            s->c[i].rtx_req_num = UINT64_MAX;
        } else {
            s->s[i].sess = s; /* response buffers come with first use */
            atomic_init(&s->s[i].abandoned_req, UINT64_MAX);
        }
    }
    if (is_client) {
        s->free_slots = (uint8_t)((1u << UDRPC_SLOTS_PER_SESSION) - 1);
        udrpc__cc_init(&s->cc, &rpc->ccp);
        s->rtt_min_tsc = UINT64_MAX;
        s->rto_tsc = rpc->rto_min_tsc; /* until the first RTT sample */
        s->rto_floor_tsc = rpc->rto_min_tsc;
    }
    s->local_num = (uint16_t)rpc->free_sessions[--rpc->n_free_sessions];
    s->gen = rpc->session_gen[s->local_num];
    rpc->sessions[s->local_num] = s;
    rpc->stats.sessions_active++;
    return s;
}

/* The session is connected: its packets come over its transport, which the
 * event loop now polls (rpc->tp_sessions), until the session is freed. */
void udrpc__session_connected(struct udrpc *rpc, struct session *s)
{
    s->state = SS_CONNECTED;
    if (!s->tp_counted) {
        s->tp_counted = true;
        rpc->tp_sessions[s->peer.tpi]++;
    }
}

void udrpc__session_free(struct udrpc *rpc, struct session *s)
{
    /* Queued sends point at the session's peer and buffers: send them now. */
    udrpc__tx_flush(rpc);
    if (s->tp_counted) {
        s->tp_counted = false;
        rpc->tp_sessions[s->peer.tpi]--;
    }
    if (s->state != SS_ZOMBIE) {
        rpc->sessions[s->local_num] = NULL;
        rpc->free_sessions[rpc->n_free_sessions++] = s->local_num;
        /* The number's next session gets a new handle (1..0x7FFF). */
        rpc->session_gen[s->local_num] = (uint16_t)(s->gen == 0x7FFF ? 1 : s->gen + 1);
        rpc->stats.sessions_active--;
        udrpc__sm_pending_remove(rpc, s);
        uint64_t v;
        if (!s->is_client && udrpc__hash_get(&rpc->dedup, s->dedup_key, &v) &&
            v == s->local_num)
            udrpc__hash_del(&rpc->dedup, s->dedup_key);
        if (s->is_client) {
            for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++) {
                udrpc__wheel_cancel(&rpc->wheel, &s->c[i].rto);
                udrpc__wheel_cancel(&rpc->wheel, &s->c[i].pace);
                udrpc__wheel_cancel(&rpc->wheel, &s->c[i].deadline);
                if (s->c[i].abandoned) /* its continuation ran long ago */
                    udrpc__msgbuf_put(&rpc->alloc, &s->c[i].own_req);
            }
            UDRPC_ASSERT(!s->q_head); /* failed before (fail_requests) */
        } else if (s->in_handler) {
            /* Handlers still hold request handles into this session: keep
             * the memory until the last of them answers. */
            s->state = SS_ZOMBIE;
            s->zombie_next = rpc->zombies; /* udrpc_destroy frees the rest */
            rpc->zombies = s;
            return;
        }
    } else {
        struct session **pp = &rpc->zombies; /* few, and off the datapath */
        while (*pp != s)
            pp = &(*pp)->zombie_next;
        *pp = s->zombie_next;
    }
    udrpc__nexus_peer_put(rpc->nx, s->np);
    s->np = NULL;
    if (!s->is_client) {
        udrpc__void_refs(rpc); /* responses the client may read late */
        for (unsigned i = 0; i < UDRPC_SLOTS_PER_SESSION; i++) {
            sslot_t *h = &s->s[i];
            if (h->req_owned)
                udrpc__msgbuf_put(&rpc->alloc, &h->req);
            if (h->dyn_resp.priv)
                udrpc__sslot_put_dyn_resp(rpc, h);
            udrpc__msgbuf_put(&rpc->alloc, &h->small_resp);
        }
    }
    free(s);
}

void udrpc__session_fail(struct udrpc *rpc, struct session *s, int err)
{
    int num = s->local_num, handle = session_handle(s);
    void *ctx = s->ctx;
    s->state = SS_DISCONNECTING;
    rpc->stats.sessions_failed++;
    if (err == -ETIMEDOUT)
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, num, "peer %s silent (peer_timeout %u ms): session failed",
                          s->remote_uri, rpc->cfg.peer_timeout_ms);
    else
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc, num, "peer %s closed the session: %s",
                          s->remote_uri, udrpc_strerror(err));
    udrpc__session_fail_requests(rpc, s, -ECONNRESET);
    udrpc__sm_send_req(rpc, s, SM_DISCONNECT_REQ); /* best effort: frees a live server's side */
    udrpc__session_free(rpc, s);
    udrpc__sm_notify(rpc, handle, ctx, UDRPC_SM_SESSION_FAILED, err);
}

/* udrpc_destroy: tells each peer, best effort, that its session is gone
 * (a lost notice is found out later: the server's side by heartbeats once
 * the client's process is gone; the client's when its next request times
 * out and it asks). */

void udrpc__session_notify_closed(struct udrpc *rpc, struct session *s)
{
    if (s->state != SS_CONNECTED)
        return;
    if (s->is_client) {
        udrpc__sm_send_req(rpc, s, SM_DISCONNECT_REQ);
        return;
    }
    struct sm_pkt p;
    memset(&p, 0, sizeof(p));
    p.type = SM_PING_RESP;
    p.err = -ENOENT;
    p.client_rpc_id = s->remote_rpc_id;
    p.server_rpc_id = rpc->rpc_id;
    p.client_session = s->remote_num;
    p.server_session = s->local_num;
    p.token = s->token;
    udrpc__nexus_sm_send(rpc->nx, &p, &s->remote_sm);
}

