/*
 * api/request.c — udrpc_enqueue_request() and the handler's side: no
 * handler for the type (-EBADRQC), bad arguments (-EINVAL, refused with no
 * continuation), a response larger than the response buffer (-EMSGSIZE),
 * the wrong thread (-EPERM), responses deferred past the handler with the
 * request still readable, and the peers' max_msg_size exchanged at
 * connect (-EMSGSIZE for a request over the server's, NULL for a response
 * over the client's).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fixture.h"

struct bufs {
    udrpc_msgbuf_t req, resp;
};

static void alloc_bufs(struct fx *f, struct bufs *b, size_t req_size, size_t resp_size)
{
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, req_size, &b->req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, resp_size, &b->resp), 0);
    memset(b->req.buf, 0x5A, req_size);
}

static void free_bufs(struct fx *f, struct bufs *b)
{
    udrpc_msgbuf_free(f->cli, &b->req);
    udrpc_msgbuf_free(f->cli, &b->resp);
}

/* Sends one request and waits for its continuation: its status. */
static int call(struct fx *f, uint8_t type, struct bufs *b)
{
    struct fx_done *d = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, type, &b->req, &b->resp, fx_cont, d), 0);
    FX_PUMP_UNTIL(f, d->calls == 1, 2000);
    return d->status;
}

static void no_handler(struct fx *f)
{
    struct bufs b;
    alloc_bufs(f, &b, 64, 64);
    CHECK_EQ(call(f, FX_NONE, &b), -EBADRQC);
    CHECK_EQ(call(f, FX_ECHO, &b), 0); /* the session goes on */
    CHECK_EQ(b.resp.size, 64);
}

static void bad_arguments(struct fx *f)
{
    udrpc_t *cli = f->cli;
    int s = f->snum;
    struct bufs b;
    alloc_bufs(f, &b, 64, 64);
    struct fx_done never = { 0 };
    CHECK_EQ(udrpc_enqueue_request(cli, -1, FX_ECHO, &b.req, &b.resp, fx_cont, &never), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, 4000, FX_ECHO, &b.req, &b.resp, fx_cont, &never), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, 70000, FX_ECHO, &b.req, &b.resp, fx_cont, &never), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, s, FX_ECHO, NULL, &b.resp, fx_cont, &never), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, s, FX_ECHO, &b.req, NULL, fx_cont, &never), -EINVAL);
    CHECK_EQ(udrpc_enqueue_request(cli, s, FX_ECHO, &b.req, &b.resp, NULL, &never), -EINVAL);
    udrpc_msgbuf_t fake = b.req;
    fake.size = fake.max_size + 1;
    CHECK_EQ(udrpc_enqueue_request(cli, s, FX_ECHO, &fake, &b.resp, fx_cont, &never), -EINVAL);
    udrpc_msgbuf_t small;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 0, &small), -EINVAL);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 16u << 20, &small), -EINVAL);
    CHECK_EQ(udrpc_disconnect(cli, 1234), -EINVAL);
    CHECK_EQ(udrpc_disconnect(cli, f->cs->local_num + 1), -EINVAL); /* never opened */
    for (int i = 0; i < 2000; i++)
        fx_pump(f);
    CHECK_EQ(never.calls, 0);
    CHECK_EQ(f->handled, 0);
}

static void response_too_big(struct fx *f)
{
    struct bufs b;
    alloc_bufs(f, &b, 64, 10);
    CHECK_EQ(call(f, FX_ECHO, &b), -EMSGSIZE);
    CHECK_EQ(f->handled, 1);
}

static int enq_ret;
static struct fx *thr_fx;
static struct bufs *thr_bufs;
static void *other_thread(void *arg)
{
    enq_ret = udrpc_enqueue_request(thr_fx->cli, thr_fx->snum, FX_ECHO, &thr_bufs->req,
                                    &thr_bufs->resp, fx_cont, arg);
    return NULL;
}

static void wrong_thread(struct fx *f)
{
    struct bufs b;
    alloc_bufs(f, &b, 64, 64);
    struct fx_done never = { 0 };
    thr_fx = f;
    thr_bufs = &b;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, other_thread, &never), 0);
    pthread_join(th, NULL);
    CHECK_EQ(enq_ret, -EPERM);
    for (int i = 0; i < 1000; i++)
        fx_pump(f);
    CHECK_EQ(never.calls, 0);
}

/* Three requests (one single-packet, two of three packets) left unanswered
 * by their handler while RX buffers are reused for 2000 iterations, then
 * answered from outside the handler: each request's bytes intact to the
 * end, each response whole. */
static void deferred_responses(struct fx *f)
{
    static struct bufs b[3];
    struct fx_done *d[3];
    for (int i = 0; i < 3; i++) {
        alloc_bufs(f, &b[i], 3000, 3000);
        udrpc_msgbuf_resize(&b[i].req, i == 0 ? 40 : 3000);
        memset(b[i].req.buf, 0x30 + i, b[i].req.size);
        d[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_DEFER, &b[i].req, &b[i].resp, fx_cont,
                                       d[i]),
                 0);
    }
    FX_PUMP_UNTIL(f, f->n_deferred == 3, 2000);
    for (int k = 0; k < 2000; k++)
        fx_pump(f);
    for (int i = 0; i < 3; i++) {
        udrpc_req_handle_t *h = f->deferred[i];
        const udrpc_msgbuf_t *r = udrpc_req_msgbuf(h);
        int which = r->buf[0] - 0x30;
        CHECK(which >= 0 && which < 3);
        CHECK_EQ(r->size, b[which].req.size);
        for (size_t j = 0; j < r->size; j++)
            CHECK_EQ(r->buf[j], 0x30 + which);
        udrpc_msgbuf_t *o = udrpc_resp_msgbuf(h, r->size);
        memcpy(o->buf, r->buf, r->size);
        CHECK_EQ(udrpc_enqueue_response(h), 0);
    }
    f->n_deferred = 0;
    CHECK_EQ(d[0]->calls + d[1]->calls + d[2]->calls, 0);
    FX_PUMP_UNTIL(f, d[0]->calls && d[1]->calls && d[2]->calls, 2000);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(d[i]->status, 0);
        CHECK_EQ(b[i].resp.size, b[i].req.size);
        CHECK(memcmp(b[i].resp.buf, b[i].req.buf, b[i].req.size) == 0);
    }
}

/* A server whose max_msg_size is smaller than the client's: the handshake
 * tells the client. A request over it enqueued before CONNECTED ends with
 * -EMSGSIZE once the session connects; one enqueued after is refused at
 * once (-EMSGSIZE); a request of exactly the limit and a small one both
 * complete, and the session lives on. */
static void peer_max_msg_smaller(struct fx *f)
{
    enum { LIMIT = 65536 };
    udrpc_config_t small = f->cfg;
    small.max_msg_size = LIMIT;
    fx_reopen(f, 0, &small);
    struct bufs big_early, ok_early, big, exact;
    alloc_bufs(f, &big_early, LIMIT + 1, 64);
    alloc_bufs(f, &ok_early, 3000, 3000);
    alloc_bufs(f, &big, LIMIT + 1, 64);
    alloc_bufs(f, &exact, LIMIT, LIMIT);
    int s = udrpc_connect(f->cli, udrpc_nexus_uri(f->nx), 2);
    CHECK(s >= 0);
    struct fx_done *d1 = fx_done_new(f), *d2 = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &big_early.req, &big_early.resp, fx_cont, d1), 0);
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &ok_early.req, &ok_early.resp, fx_cont, d2), 0);
    FX_PUMP_UNTIL(f, d1->calls && d2->calls, 2000);
    CHECK_EQ(d1->status, -EMSGSIZE);
    CHECK_EQ(d2->status, 0);
    CHECK_EQ(ok_early.resp.size, 3000);
    CHECK(!memcmp(ok_early.resp.buf, ok_early.req.buf, 3000));
    struct fx_done refused = { 0, 0, 0 };
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &big.req, &big.resp, fx_cont, &refused),
             -EMSGSIZE);
    struct fx_done *d3 = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_ECHO, &exact.req, &exact.resp, fx_cont, d3), 0);
    FX_PUMP_UNTIL(f, d3->calls, 2000);
    CHECK_EQ(d3->status, 0);
    CHECK_EQ(exact.resp.size, LIMIT);
    CHECK(!memcmp(exact.resp.buf, exact.req.buf, LIMIT));
    CHECK(udrpc_is_connected(f->cli, s));
    CHECK_EQ(f->session_failed, 0);
    CHECK_EQ(refused.calls, 0); /* refused: its continuation never ran */
    free_bufs(f, &big_early);
    free_bufs(f, &ok_early);
    free_bufs(f, &big);
    free_bufs(f, &exact);
}

/* A client whose max_msg_size is smaller than the server's: a handler
 * cannot make a response larger than the client takes (NULL), and one of
 * exactly the limit arrives whole. */
static void peer_max_msg_smaller_resp(struct fx *f)
{
    enum { LIMIT = 65536 };
    udrpc_config_t small = f->cfg;
    small.max_msg_size = LIMIT;
    fx_reopen(f, 1, &small);
    int s = fx_connect(f);
    struct bufs b;
    alloc_bufs(f, &b, 16, LIMIT);
    struct fx_done *d = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, s, FX_DEFER, &b.req, &b.resp, fx_cont, d), 0);
    FX_PUMP_UNTIL(f, f->n_deferred == 1, 2000);
    udrpc_req_handle_t *h = f->deferred[--f->n_deferred];
    CHECK(udrpc_resp_msgbuf(h, LIMIT + 1) == NULL);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, LIMIT);
    CHECK(resp != NULL);
    memset(resp->buf, 0x6B, LIMIT);
    CHECK_EQ(udrpc_enqueue_response(h), 0);
    FX_PUMP_UNTIL(f, d->calls, 2000);
    CHECK_EQ(d->status, 0);
    CHECK_EQ(b.resp.size, LIMIT);
    for (size_t i = 0; i < LIMIT; i++)
        CHECK_EQ(b.resp.buf[i], 0x6B);
    free_bufs(f, &b);
}

/* udrpc_resp_msgbuf_in_place. Answered in the handler, sizes 0, 40, one
 * packet, one packet and a byte, three packets: a single-packet request
 * (read where it arrived) is copied, a larger one answers in its own
 * buffer. Then three deferred: each request was copied when its handler
 * returned, so each answers in that copy; one shrinks its response. Every
 * byte is the request's XOR the key, every continuation runs once. */
static void in_place_responses(struct fx *f)
{
    const size_t sizes[] = { 0, 40, f->dpp, f->dpp + 1, 3 * f->dpp };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    static struct bufs b[N], later[3];
    struct fx_done *d[N], *dl[3];
    for (unsigned i = 0; i < N; i++) {
        alloc_bufs(f, &b[i], sizes[i] ? sizes[i] : 1, sizes[i] ? sizes[i] : 1);
        udrpc_msgbuf_resize(&b[i].req, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            b[i].req.buf[j] = (uint8_t)(i * 7 + j * 13);
        d[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_IN_PLACE, &b[i].req, &b[i].resp,
                                       fx_cont, d[i]), 0);
    }
    FX_PUMP_UNTIL(f, d[0]->calls && d[1]->calls && d[2]->calls && d[3]->calls && d[4]->calls,
                  2000);
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(d[i]->calls, 1);
        CHECK_EQ(d[i]->status, 0);
        CHECK_EQ(b[i].resp.size, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            CHECK_EQ(b[i].resp.buf[j], (uint8_t)(b[i].req.buf[j] ^ FX_IN_PLACE_XOR));
    }
    CHECK_EQ(f->in_place_copied, 3);
    CHECK_EQ(f->in_place_moved, 2);

    const size_t later_sizes[3] = { 40, 2 * f->dpp + 5, 3000 };
    for (unsigned i = 0; i < 3; i++) {
        alloc_bufs(f, &later[i], later_sizes[i], later_sizes[i]);
        memset(later[i].req.buf, 0x40 + (int)i, later_sizes[i]);
        dl[i] = fx_done_new(f);
        CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_DEFER, &later[i].req,
                                       &later[i].resp, fx_cont, dl[i]), 0);
    }
    FX_PUMP_UNTIL(f, f->n_deferred == 3, 2000);
    for (int k = 0; k < 200; k++) /* RX buffers reused meanwhile */
        fx_pump(f);
    for (int i = 0; i < 3; i++) {
        udrpc_req_handle_t *h = f->deferred[i];
        const udrpc_msgbuf_t *r = udrpc_req_msgbuf(h);
        const uint8_t *req_buf = r->buf;
        int which = r->buf[0] - 0x40;
        CHECK(which >= 0 && which < 3);
        udrpc_msgbuf_t *o = udrpc_resp_msgbuf_in_place(h);
        CHECK(o != NULL && o->buf == req_buf); /* the copy made at the return */
        CHECK_EQ(o->size, later_sizes[which]);
        CHECK(udrpc_resp_msgbuf_in_place(h) == NULL);
        for (size_t j = 0; j < o->size; j++)
            CHECK_EQ(o->buf[j], 0x40 + which);
        for (size_t j = 0; j < o->size; j++)
            o->buf[j] ^= FX_IN_PLACE_XOR;
        if (which == 1)
            udrpc_msgbuf_resize(o, 100);
        CHECK_EQ(udrpc_enqueue_response(h), 0);
    }
    f->n_deferred = 0;
    FX_PUMP_UNTIL(f, dl[0]->calls && dl[1]->calls && dl[2]->calls, 2000);
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(dl[i]->calls, 1);
        CHECK_EQ(dl[i]->status, 0);
        CHECK_EQ(later[i].resp.size, i == 1 ? 100 : later_sizes[i]);
        for (size_t j = 0; j < later[i].resp.size; j++)
            CHECK_EQ(later[i].resp.buf[j], (0x40 + i) ^ FX_IN_PLACE_XOR);
    }
    for (unsigned i = 0; i < N; i++)
        free_bufs(f, &b[i]);
    for (unsigned i = 0; i < 3; i++)
        free_bufs(f, &later[i]);
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(no_handler),
        FX_CASE(bad_arguments),
        FX_CASE(response_too_big),
        FX_CASE(wrong_thread),
        FX_CASE(deferred_responses),
        FX_CASE(in_place_responses),
        FX_CASE(peer_max_msg_smaller, .flags = FX_UNCONNECTED),
        FX_CASE(peer_max_msg_smaller_resp, .flags = FX_UNCONNECTED),
    };
    return FX_RUN("api_request", cases, fx_api_configure);
}
