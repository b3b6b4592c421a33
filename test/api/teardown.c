/*
 * api/teardown.c — how sessions end: a disconnect with requests
 * outstanding; a server endpoint that closes (every continuation once with
 * -ECONNRESET, then SESSION_FAILED -ECONNABORTED) and a reconnect to its
 * successor; a server that forgot a session without a word (found out
 * when requests time out); a client endpoint destroyed without a
 * disconnect (its server frees the session at once); a reconnect inside
 * the failure callback, with handles that are never reused.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static uint64_t sessions_active(udrpc_t *rpc)
{
    udrpc_stats_t st;
    udrpc_get_stats(rpc, &st);
    return st.sessions_active;
}

/* n requests of size bytes of type on session s; their completions. */
static void send_n(struct fx *f, int s, uint8_t type, int n, size_t size, struct fx_done **d)
{
    static udrpc_msgbuf_t req[16], resp[16];
    CHECK(n <= 16);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, size, &req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(f->cli, size, &resp[i]), 0);
        memset(req[i].buf, 0x40 + i, size);
        d[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, s, type, &req[i], &resp[i], fx_cont, d[i]), 0);
    }
}

/* One echo on session s: it completes, with status 0. */
static void echo_ok(struct fx *f, int s)
{
    struct fx_done *d[1];
    send_n(f, s, FX_ECHO, 1, 64, d);
    FX_PUMP_UNTIL(f, d[0]->calls == 1, 2000);
    CHECK_EQ(d[0]->status, 0);
}

/* Two requests in a deferring handler: the disconnect ends each at once,
 * with -ECONNRESET, then the client hears DISCONNECTED; the server's late
 * answers go nowhere, and its session is gone. */
static void disconnect_outstanding(struct fx *f)
{
    struct fx_done *d[2];
    send_n(f, f->snum, FX_DEFER, 2, 3000, d);
    FX_PUMP_UNTIL(f, f->n_deferred == 2, 2000);
    CHECK_EQ(udrpc_disconnect(f->cli, f->snum), 0);
    CHECK_EQ(udrpc_disconnect(f->cli, f->snum), -EALREADY);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(d[i]->calls, 1);
        CHECK_EQ(d[i]->status, -ECONNRESET);
    }
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &resp), 0);
    struct fx_done never = { 0 };
    CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_ECHO, &req, &resp, fx_cont, &never),
             -ENOTCONN);
    FX_PUMP_UNTIL(f, f->disconnected == 1, 2000);
    CHECK_EQ(f->last_err, 0);
    for (int i = 0; i < f->n_deferred; i++)
        CHECK_EQ(udrpc_enqueue_response(f->deferred[i]), 0);
    f->n_deferred = 0;
    for (int i = 0; i < 1000; i++)
        fx_pump(f);
    CHECK_EQ(sessions_active(f->srv), 0);
    CHECK_EQ(never.calls, 0);
}

/* The server endpoint closes with 8 requests in its handlers and 4 more
 * queued at the client: it tells the client, whose continuations each run
 * once with -ECONNRESET, then SESSION_FAILED -ECONNABORTED (no timeout
 * needed). A new endpoint with the same rpc_id then serves a new session. */
static void server_closes(struct fx *f)
{
    struct fx_done *d[12];
    send_n(f, f->snum, FX_DEFER, 12, 5000, d);
    FX_PUMP_UNTIL(f, f->n_deferred == 8, 2000);
    f->n_deferred = 0; /* their handles die with the endpoint */
    udrpc_destroy(f->srv);
    f->srv = NULL;
    uint64_t t0 = fx_ms();
    FX_PUMP_UNTIL(f, f->session_failed == 1, 3000);
    printf("  the client knew after %llu ms\n", (unsigned long long)(fx_ms() - t0));
    CHECK_EQ(f->last_err, -ECONNABORTED);
    CHECK_EQ(f->last_session, f->snum);
    for (int i = 0; i < 12; i++) {
        CHECK_EQ(d[i]->calls, 1);
        CHECK_EQ(d[i]->status, -ECONNRESET);
    }
    CHECK(!udrpc_is_connected(f->cli, f->snum));
    udrpc_stats_t st;
    udrpc_get_stats(f->cli, &st);
    CHECK_EQ(st.sessions_failed, 1);

    f->srv = udrpc_create(f->nx, 2, f, NULL, &f->cfg);
    CHECK(f->srv != NULL);
    int s = fx_connect(f);
    echo_ok(f, s);
}

/* The server frees the session without a word (its notice lost, or a
 * restart): the client's next request times out, and from the second
 * timeout on the client asks; the answer fails the session with
 * -ECONNABORTED, well before peer_timeout would (the server's process is
 * alive and answers heartbeats, so silence never comes). */
static void forgotten_session(struct fx *f)
{
    udrpc__session_free(f->srv, f->ss);
    struct fx_done *d[1];
    uint64_t t0 = fx_ms();
    send_n(f, f->snum, FX_ECHO, 1, 64, d);
    FX_PUMP_UNTIL(f, f->session_failed == 1, 2000);
    printf("  failed -ECONNABORTED after %llu ms\n", (unsigned long long)(fx_ms() - t0));
    CHECK_EQ(f->last_err, -ECONNABORTED);
    CHECK_EQ(d[0]->calls, 1);
    CHECK_EQ(d[0]->status, -ECONNRESET);
    CHECK_EQ(f->handled, 0);
    int s = fx_connect(f);
    echo_ok(f, s);
}

/* A client endpoint destroyed without udrpc_disconnect says so on its way
 * out: the server frees its session at once; the other session lives. */
static void client_destroyed(struct fx *f)
{
    if (!strcmp(f->transport, "xdp"))
        FX_SKIP(f, "a third endpoint: xdp holds one per interface, and the test's veth has two");
    udrpc_t *ghost = udrpc_create(f->nx, 3, NULL, NULL, &f->cfg);
    CHECK(ghost != NULL);
    int gs = udrpc_connect(ghost, udrpc_nexus_uri(f->nx), 2);
    uint64_t end = fx_ms() + 2000;
    while (!udrpc_is_connected(ghost, gs) && fx_ms() < end) {
        udrpc_run_event_loop_once(ghost);
        fx_pump(f);
    }
    CHECK(udrpc_is_connected(ghost, gs));
    CHECK_EQ(sessions_active(f->srv), 2);
    udrpc_destroy(ghost);
    uint64_t t0 = fx_ms();
    FX_PUMP_UNTIL(f, sessions_active(f->srv) == 1, 1000);
    printf("  its session freed after %llu ms\n", (unsigned long long)(fx_ms() - t0));
    CHECK(udrpc_is_connected(f->cli, f->snum));
    echo_ok(f, f->snum);
}

/* Handles are not reused: a reconnect made inside the failure callback
 * of a session gets that session's number but a handle of its own; the
 * old handle is refused with -ENOTCONN inside the callback and after it,
 * by every call, and never reaches the new session. Session contexts
 * follow their handles. */
static int old_handle, new_handle, in_callback_enqueue;
static udrpc_msgbuf_t cb_req, cb_resp;
static char ctx_old, ctx_new;

static void reconnect_on_failure(struct fx *f, int session, udrpc_sm_event_t ev, int err)
{
    (void)err;
    if (ev != UDRPC_SM_SESSION_FAILED)
        return;
    CHECK_EQ(session, old_handle);
    CHECK(udrpc_session_context(f->cli, session) == &ctx_old); /* its own, to the end */
    in_callback_enqueue = udrpc_enqueue_request(f->cli, session, FX_ECHO, &cb_req, &cb_resp,
                                                fx_cont, NULL);
    new_handle = udrpc_connect_ctx(f->cli, udrpc_nexus_uri(f->nx), 2, &ctx_new);
    CHECK(new_handle >= 0);
}

static void reconnect_in_failure_callback(struct fx *f)
{
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &cb_req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &cb_resp), 0);
    old_handle = udrpc_connect_ctx(f->cli, udrpc_nexus_uri(f->nx), 2, &ctx_old);
    CHECK(old_handle >= 0);
    FX_PUMP_UNTIL(f, f->connected == 1, 2000);
    CHECK(udrpc_session_context(f->cli, old_handle) == &ctx_old);
    f->on_sm = reconnect_on_failure;
    /* The server endpoint goes, and a new one takes its rpc_id. */
    udrpc_destroy(f->srv);
    f->srv = udrpc_create(f->nx, 2, f, NULL, &f->cfg);
    CHECK(f->srv != NULL);
    FX_PUMP_UNTIL(f, f->session_failed == 1 && f->connected == 2, 3000);
    f->on_sm = NULL;
    CHECK_EQ(in_callback_enqueue, -ENOTCONN);
    CHECK(new_handle != old_handle);
    CHECK_EQ(new_handle & 0xFFFF, old_handle & 0xFFFF); /* the same number */
    CHECK_EQ(f->last_session, new_handle);
    /* The old handle, after the callback: the same answer from each call. */
    struct fx_done never = { 0, 0, 0 };
    CHECK_EQ(udrpc_enqueue_request(f->cli, old_handle, FX_ECHO, &cb_req, &cb_resp, fx_cont, &never),
             -ENOTCONN);
    CHECK_EQ(udrpc_disconnect(f->cli, old_handle), -ENOTCONN);
    CHECK_EQ(udrpc_cancel(f->cli, old_handle, NULL), -ENOTCONN);
    CHECK_EQ(udrpc_set_request_timeout(f->cli, old_handle, 5), -ENOTCONN);
    udrpc_session_stats_t ss;
    CHECK_EQ(udrpc_get_session_stats(f->cli, old_handle, &ss), -ENOTCONN);
    CHECK(!udrpc_is_connected(f->cli, old_handle));
    CHECK(udrpc_session_context(f->cli, old_handle) == NULL);
    CHECK(udrpc_session_context(f->cli, new_handle) == &ctx_new);
    CHECK(udrpc_is_connected(f->cli, new_handle));
    echo_ok(f, new_handle);
    CHECK_EQ(never.calls, 0);
    udrpc_msgbuf_free(f->cli, &cb_req);
    udrpc_msgbuf_free(f->cli, &cb_resp);
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(disconnect_outstanding),
        FX_CASE(server_closes),
        FX_CASE(forgotten_session),
        FX_CASE(client_destroyed),
        FX_CASE(reconnect_in_failure_callback, .flags = FX_UNCONNECTED),
    };
    return FX_RUN("api_teardown", cases, fx_api_configure);
}
