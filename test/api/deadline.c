/*
 * api/deadline.c — deadlines and cancellation: a deadline passing on one
 * request while the others on its session complete; the session's default
 * timeout and a call's own; a deadline on a queued request; cancelling
 * queued and in-flight requests; the server told (udrpc_req_abandoned);
 * the late answer read and ignored, with the caller's buffers untouched
 * after its continuation ran; the slot free again afterwards; and each
 * call's errors.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"

enum { SIZE = 3000 }; /* three packets at the fixture's MTU */

struct req {
    udrpc_msgbuf_t req, resp;
    struct fx_done *done;
};

static void req_alloc(struct fx *f, struct req *r, uint8_t fill)
{
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, SIZE, &r->req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, SIZE, &r->resp), 0);
    memset(r->req.buf, fill, SIZE);
    memset(r->resp.buf, 0xEE, SIZE);
    r->done = fx_done_new(f);
}

static void req_free(struct fx *f, struct req *r)
{
    udrpc_msgbuf_free(f->cli, &r->req);
    udrpc_msgbuf_free(f->cli, &r->resp);
}

/* Sends r as type with timeout_ms (UINT32_MAX: udrpc_enqueue_request). */
static void send_req(struct fx *f, struct req *r, uint8_t type, uint32_t timeout_ms)
{
    int ret = timeout_ms == UINT32_MAX
                  ? udrpc_enqueue_request(f->cli, f->snum, type, &r->req, &r->resp, fx_cont, r->done)
                  : udrpc_enqueue_request_timeout(f->cli, f->snum, type, &r->req, &r->resp, fx_cont,
                                                  r->done, timeout_ms);
    CHECK_EQ(ret, 0);
}

/* Answers every deferred request with its own bytes. */
static void answer_deferred(struct fx *f)
{
    for (int i = 0; i < f->n_deferred; i++) {
        udrpc_req_handle_t *h = f->deferred[i];
        const udrpc_msgbuf_t *q = udrpc_req_msgbuf(h);
        udrpc_msgbuf_t *o = udrpc_resp_msgbuf(h, q->size);
        CHECK(o != NULL);
        memcpy(o->buf, q->buf, q->size);
        CHECK_EQ(udrpc_enqueue_response(h), 0);
    }
    f->n_deferred = 0;
}

static void check_echoed(const struct req *r)
{
    CHECK_EQ(r->done->calls, 1);
    CHECK_EQ(r->done->status, 0);
    CHECK_EQ(r->resp.size, SIZE);
    CHECK(!memcmp(r->resp.buf, r->req.buf, SIZE));
}

static uint64_t stat_of(udrpc_t *rpc, size_t off)
{
    udrpc_stats_t st;
    CHECK_EQ(udrpc_get_stats(rpc, &st), 0);
    return *(const uint64_t *)((const char *)&st + off);
}
#define STAT(rpc, field) stat_of((rpc), offsetof(udrpc_stats_t, field))

/* One request's deadline (30 ms) passes while its handler holds it; three
 * echoes on the session complete meanwhile. The server hears that the
 * client gave up; its late answer is ignored and leaves the caller's
 * buffers as they were; the slot serves again: 8 more requests held by
 * the server at once (every slot), then answered. */
static void deadline_one_of_many(struct fx *f)
{
    struct req slow, echo[3], more[8];
    req_alloc(f, &slow, 0x11);
    send_req(f, &slow, FX_DEFER, 30);
    for (int i = 0; i < 3; i++) {
        req_alloc(f, &echo[i], (uint8_t)(0x20 + i));
        send_req(f, &echo[i], FX_ECHO, 1000);
    }
    uint64_t t0 = fx_ms();
    FX_PUMP_UNTIL(f, slow.done->calls == 1, 2000);
    uint64_t waited = fx_ms() - t0;
    CHECK_EQ(slow.done->status, -ETIMEDOUT);
    CHECK(waited >= 25); /* not before its deadline (wheel resolution: < 5 ms) */
    FX_PUMP_UNTIL(f, echo[0].done->calls && echo[1].done->calls && echo[2].done->calls, 2000);
    for (int i = 0; i < 3; i++)
        check_echoed(&echo[i]);
    CHECK_EQ(f->n_deferred, 1);
    FX_PUMP_UNTIL(f, udrpc_req_abandoned(f->deferred[0]), 2000);
    CHECK_EQ(STAT(f->srv, reqs_abandoned_by_client), 1);
    /* The caller may reuse its buffers at once: the late answer must not
     * land in them. */
    memset(slow.req.buf, 0x77, SIZE);
    uint64_t late0 = STAT(f->cli, late_responses);
    answer_deferred(f);
    FX_PUMP_UNTIL(f, STAT(f->cli, late_responses) > late0, 2000);
    for (size_t j = 0; j < SIZE; j++)
        CHECK_EQ(slow.resp.buf[j], 0xEE);
    CHECK_EQ(slow.done->calls, 1);
    /* Eight requests held by the server at once: only if every slot,
     * the abandoned one too, is free again. */
    for (int i = 0; i < 8; i++) {
        req_alloc(f, &more[i], (uint8_t)(0x40 + i));
        send_req(f, &more[i], FX_DEFER, UINT32_MAX);
    }
    FX_PUMP_UNTIL(f, f->n_deferred == 8, 2000);
    answer_deferred(f);
    for (int i = 0; i < 8; i++) {
        FX_PUMP_UNTIL(f, more[i].done->calls, 2000);
        check_echoed(&more[i]);
    }
    CHECK(udrpc_is_connected(f->cli, f->snum));
    CHECK_EQ(STAT(f->cli, reqs_abandoned), 1);
    CHECK_EQ(f->session_failed, 0);
    req_free(f, &slow);
    for (int i = 0; i < 3; i++)
        req_free(f, &echo[i]);
    for (int i = 0; i < 8; i++)
        req_free(f, &more[i]);
}

/* The session's default timeout applies to udrpc_enqueue_request; a
 * call's own timeout of 0 means none. */
static void session_default_timeout(struct fx *f)
{
    CHECK_EQ(udrpc_set_request_timeout(f->cli, f->snum, 20), 0);
    struct req a, b;
    req_alloc(f, &a, 0x31);
    req_alloc(f, &b, 0x32);
    send_req(f, &a, FX_DEFER, UINT32_MAX); /* the default: 20 ms */
    send_req(f, &b, FX_DEFER, 0);          /* none */
    FX_PUMP_UNTIL(f, a.done->calls == 1, 2000);
    CHECK_EQ(a.done->status, -ETIMEDOUT);
    for (int k = 0; k < 20000 && !b.done->calls; k++)
        fx_pump(f); /* well past 20 ms */
    CHECK_EQ(b.done->calls, 0);
    FX_PUMP_UNTIL(f, f->n_deferred == 2, 2000);
    answer_deferred(f);
    FX_PUMP_UNTIL(f, b.done->calls == 1, 2000);
    check_echoed(&b);
    CHECK_EQ(a.done->calls, 1);
    CHECK_EQ(udrpc_set_request_timeout(f->cli, f->snum, 0), 0);
    req_free(f, &a);
    req_free(f, &b);
}

/* Every slot held by the server (8 deferred), two requests queued behind
 * them: the second's deadline passes while queued; the first is
 * cancelled while queued (its continuation runs inside udrpc_cancel), and
 * an in-flight one is cancelled too. Then the rest complete. */
static void queued_deadline_and_cancel(struct fx *f)
{
    struct req held[8], q1, q2;
    for (int i = 0; i < 8; i++) {
        req_alloc(f, &held[i], (uint8_t)(0x50 + i));
        send_req(f, &held[i], FX_DEFER, UINT32_MAX);
    }
    FX_PUMP_UNTIL(f, f->n_deferred == 8, 2000);
    req_alloc(f, &q1, 0x61);
    req_alloc(f, &q2, 0x62);
    send_req(f, &q1, FX_ECHO, UINT32_MAX);
    send_req(f, &q2, FX_ECHO, 20);
    CHECK(f->cs->q_head != NULL); /* both wait for a slot */
    FX_PUMP_UNTIL(f, q2.done->calls == 1, 2000);
    CHECK_EQ(q2.done->status, -ETIMEDOUT);
    CHECK_EQ(udrpc_cancel(f->cli, f->snum, q1.done), 0);
    CHECK_EQ(q1.done->calls, 1); /* before udrpc_cancel returned */
    CHECK_EQ(q1.done->status, -ECANCELED);
    CHECK_EQ(udrpc_cancel(f->cli, f->snum, q1.done), -ENOENT);
    CHECK(f->cs->q_head == NULL);
    /* In flight: held[3]. */
    CHECK_EQ(udrpc_cancel(f->cli, f->snum, held[3].done), 0);
    CHECK_EQ(held[3].done->calls, 1);
    CHECK_EQ(held[3].done->status, -ECANCELED);
    CHECK_EQ(udrpc_cancel(f->cli, f->snum, held[3].done), -ENOENT);
    answer_deferred(f);
    for (int i = 0; i < 8; i++) {
        FX_PUMP_UNTIL(f, held[i].done->calls == 1, 2000);
        if (i != 3)
            check_echoed(&held[i]);
    }
    CHECK_EQ(held[3].done->status, -ECANCELED); /* once, with its first status */
    CHECK_EQ(STAT(f->cli, reqs_abandoned), 3);
    for (int i = 0; i < 8; i++)
        req_free(f, &held[i]);
    req_free(f, &q1);
    req_free(f, &q2);
}

static void errors(struct fx *f)
{
    CHECK_EQ(udrpc_cancel(NULL, f->snum, NULL), -EINVAL);
    CHECK_EQ(udrpc_cancel(f->cli, -1, NULL), -EINVAL);
    CHECK_EQ(udrpc_cancel(f->cli, 65535, NULL), -EINVAL);
    CHECK_EQ(udrpc_cancel(f->cli, f->snum, (void *)f), -ENOENT);
    CHECK_EQ(udrpc_cancel(f->srv, f->cs->remote_num, NULL), -EINVAL); /* a server session */
    CHECK_EQ(udrpc_set_request_timeout(NULL, f->snum, 5), -EINVAL);
    CHECK_EQ(udrpc_set_request_timeout(f->cli, f->snum + 1, 5), -ENOTCONN); /* no session */
    CHECK_EQ(udrpc_set_request_timeout(f->cli, f->snum & 0xFFFF, 5), -EINVAL); /* no handle */
    CHECK_EQ(udrpc_set_request_timeout(f->srv, f->cs->remote_num, 5), -EINVAL);
    CHECK(!udrpc_req_abandoned(NULL));
    CHECK(udrpc_req_rpc(NULL) == NULL);
    struct req r;
    req_alloc(f, &r, 0x71);
    CHECK_EQ(udrpc_enqueue_request_timeout(f->cli, -5, FX_ECHO, &r.req, &r.resp, fx_cont, r.done, 5),
             -EINVAL);
    f->n_done--; /* refused: no continuation */
    req_free(f, &r);
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(deadline_one_of_many),
        FX_CASE(session_default_timeout),
        FX_CASE(queued_deadline_and_cancel),
        FX_CASE(errors),
    };
    return FX_RUN("api_deadline", cases, fx_api_configure);
}
