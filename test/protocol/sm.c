/*
 * protocol/sm.c — session management packets that arrive off the path: a
 * connect or a disconnect that copies a live session's URI, rpc_id and
 * session number but not its token must not touch that session (found by
 * fuzz_sm).
 */
#include <arpa/inet.h>
#include <string.h>

#include "fixture.h"

static struct sm_pkt forged(struct fx *f, uint8_t type)
{
    struct sm_pkt p;
    memset(&p, 0, sizeof(p));
    p.type = type;
    p.client_rpc_id = 1;
    p.server_rpc_id = 2;
    p.client_session = f->cs->local_num;
    p.server_session = f->ss->local_num;
    p.token = f->cs->token ^ 1;
    p.mtu = (uint16_t)f->cli->tp->mtu;
    p.max_msg_size = (uint32_t)f->cli->max_msg_size;
    strcpy(p.client_uri, udrpc_nexus_uri(f->nx));
    /* The route the client's own session gave (shm's names its channel:
     * the stranger shares it). */
    const struct transport *tp = f->cli->tp;
    if (!tp->ops->route_for ||
        tp->ops->route_for(f->cli->tp, &f->cs->remote_sm, 2, &p.client_route) != 0)
        p.client_route = tp->local;
    return p;
}

static void deliver(struct fx *f, struct sm_pkt *p)
{
    union tp_addr nowhere; /* the discard port of our own address */
    CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(f->nx), &nowhere, NULL), 0);
    udrpc__addr_set_port(&nowhere, 9);
    udrpc__rpc_sm_enqueue(f->srv, p, &nowhere);
    udrpc__sm_process_queue(f->srv);
}

/* The live session still serves after a packet to it. */
static void still_serves(struct fx *f, uint64_t req_num)
{
    CHECK(f->srv->sessions[f->cs->remote_num] == f->ss);
    fx_inject(f->srv, f->ss, PKT_REQ, 7, 0, req_num, 7);
    fx_expect_tx(f->srv, PKT_RESP, 0, req_num, 7, f->cs->local_num);
}

/* A connect with the wrong token is a stranger's: it gets a session of
 * its own. */
static void connect_without_token(struct fx *f)
{
    struct sm_pkt p = forged(f, SM_CONNECT_REQ);
    uint64_t active = f->srv->stats.sessions_active;
    deliver(f, &p);
    CHECK_EQ(f->srv->stats.sessions_active, active + 1);
    still_serves(f, 0);
}

/* A disconnect without the token is refused. */
static void disconnect_without_token(struct fx *f)
{
    struct sm_pkt p = forged(f, SM_DISCONNECT_REQ);
    uint64_t active = f->srv->stats.sessions_active;
    deliver(f, &p);
    CHECK_EQ(f->srv->stats.sessions_active, active);
    still_serves(f, 0);
    /* With the token it is the client's own: the session goes. */
    p.token = f->cs->token;
    deliver(f, &p);
    CHECK(f->srv->sessions[f->cs->remote_num] == NULL);
    CHECK_EQ(f->srv->stats.sessions_active, active - 1);
}

static void configure(udrpc_config_t *c)
{
    c->rto_min_us = c->rto_max_us = 1000000; /* no retransmission during a case */
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(connect_without_token),
        FX_CASE(disconnect_without_token),
    };
    return FX_RUN("protocol_sm", cases, configure);
}
