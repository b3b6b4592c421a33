/*
 * echo_clients.h — clients that keep ECHO_DEPTH requests in flight on one
 * session each until `count` have completed, checking every byte of every
 * answer (the server's echo_xor: each byte XOR 0x5A) and each continuation
 * exactly once; pumped in one thread together with their server
 * (test_multi, test_dual_stack). Request i's size: max_size, or with
 * vary_size anything from 0 to max_size.
 */
#ifndef UDRPC_TEST_ECHO_CLIENTS_H
#define UDRPC_TEST_ECHO_CLIENTS_H

#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "test.h"
#include "udrpc.h"

enum { ECHO_REQ = 1, ECHO_DEPTH = 8 };

static void echo_xor(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    CHECK(resp != NULL);
    for (size_t i = 0; i < req->size; i++)
        resp->buf[i] = (uint8_t)(req->buf[i] ^ 0x5A);
    udrpc_enqueue_response(h);
    (void)ctx;
}

struct echo_client {
    udrpc_t *rpc;               /* made with this struct as its context */
    int session, connected;
    uint64_t count;             /* RPCs to complete */
    size_t max_size;
    int vary_size;
    udrpc_msgbuf_t req[ECHO_DEPTH], resp[ECHO_DEPTH];
    int calls[ECHO_DEPTH];
    uint64_t issued, done;
};

static void echo_client_issue(struct echo_client *c, int i);

static void echo_client_cont(void *ctx, void *tag, int status)
{
    struct echo_client *c = ctx;
    int i = (int)(intptr_t)tag;
    CHECK_EQ(status, 0);
    CHECK_EQ(++c->calls[i], 1);
    CHECK_EQ(c->resp[i].size, c->req[i].size);
    for (size_t j = 0; j < c->req[i].size; j++)
        CHECK_EQ(c->resp[i].buf[j], (uint8_t)(c->req[i].buf[j] ^ 0x5A));
    c->done++;
    if (c->issued < c->count)
        echo_client_issue(c, i);
}

static void echo_client_issue(struct echo_client *c, int i)
{
    c->calls[i] = 0;
    size_t size = c->vary_size ? (size_t)(c->issued * 2654435761u % (c->max_size + 1))
                               : c->max_size;
    udrpc_msgbuf_resize(&c->req[i], size);
    for (size_t j = 0; j < size; j++)
        c->req[i].buf[j] = (uint8_t)(c->issued * 7 + j);
    c->issued++;
    CHECK_EQ(udrpc_enqueue_request(c->rpc, c->session, ECHO_REQ, &c->req[i], &c->resp[i],
                                   echo_client_cont, (void *)(intptr_t)i), 0);
}

static void echo_client_on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct echo_client *c = ctx;
    (void)s;
    if (ev != UDRPC_SM_CONNECTED) {
        fprintf(stderr, "session event %d: %s\n", ev, udrpc_strerror(err));
        exit(1);
    }
    c->connected = 1;
}

/* Pumps srv and the n clients until done(cl, n) or timeout_s passes (a
 * failed check). */
static void echo_clients_pump(udrpc_t *srv, struct echo_client *cl, int n,
                              int (*done)(const struct echo_client *, int), unsigned timeout_s)
{
    uint64_t end = udrpc__monotonic_ns() + timeout_s * 1000000000ull;
    while (!done(cl, n)) {
        udrpc_run_event_loop_once(srv);
        for (int k = 0; k < n; k++)
            udrpc_run_event_loop_once(cl[k].rpc);
        CHECK(udrpc__monotonic_ns() < end);
    }
}

static int echo_clients_connected(const struct echo_client *cl, int n)
{
    for (int k = 0; k < n; k++)
        if (!cl[k].connected)
            return 0;
    return 1;
}

static int echo_clients_finished(const struct echo_client *cl, int n)
{
    for (int k = 0; k < n; k++)
        if (cl[k].done < cl[k].count)
            return 0;
    return 1;
}

/* The server served exactly `sessions` sessions and `reqs` requests, and
 * dropped no packet. */
static void echo_server_check(udrpc_t *srv, uint64_t sessions, uint64_t reqs)
{
    udrpc_stats_t st;
    CHECK_EQ(udrpc_get_stats(srv, &st), 0);
    CHECK_EQ(st.sessions_active, sessions);
    CHECK_EQ(st.reqs_handled, reqs);
    uint64_t drops = 0;
    for (int r = 0; r < UDRPC_DROP_MAX; r++)
        drops += st.drops[r];
    CHECK_EQ(drops, 0);
}

/* Allocates the buffers and puts ECHO_DEPTH requests in flight. */
static void echo_client_start(struct echo_client *c)
{
    for (int i = 0; i < ECHO_DEPTH; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(c->rpc, c->max_size ? c->max_size : 1, &c->req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(c->rpc, c->max_size ? c->max_size : 1, &c->resp[i]), 0);
        echo_client_issue(c, i);
    }
}

static void echo_client_free(struct echo_client *c)
{
    for (int i = 0; i < ECHO_DEPTH; i++) {
        udrpc_msgbuf_free(c->rpc, &c->req[i]);
        udrpc_msgbuf_free(c->rpc, &c->resp[i]);
    }
}

#endif
