/*
 * fixture.c — a fresh connected endpoint pair per case (fixture.h).
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"

uint8_t fx_payload[1 << 16];

static int skipped; /* the running case called fx_skipped */

static void echo_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct fx *f = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    CHECK(resp != NULL);
    memcpy(resp->buf, req->buf, req->size);
    CHECK(udrpc_resp_msgbuf(h, 1) == NULL); /* once per request */
    CHECK(udrpc_req_rpc(h) == f->srv);
    f->handled++;
    CHECK_EQ(udrpc_enqueue_response(h), 0);
    CHECK_EQ(udrpc_enqueue_response(h), -EINVAL); /* answered already */
}

/* The request's own buffer answers where it is the library's (several
 * packets); a single-packet request is copied into a new one. */
static void in_place_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct fx *f = ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    const uint8_t *req_buf = req->buf;
    size_t size = req->size;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf_in_place(h);
    CHECK(resp != NULL);
    CHECK_EQ(resp->size, size);
    CHECK(udrpc_resp_msgbuf_in_place(h) == NULL); /* once per request, */
    CHECK(udrpc_resp_msgbuf(h, 1) == NULL);       /* either way */
    if (size > f->dpp) {
        CHECK(resp->buf == req_buf);
        f->in_place_moved++;
    } else {
        CHECK(size == 0 || (resp->buf != req_buf && !memcmp(resp->buf, req_buf, size)));
        f->in_place_copied++;
    }
    for (size_t i = 0; i < size; i++)
        resp->buf[i] ^= FX_IN_PLACE_XOR;
    CHECK_EQ(udrpc_enqueue_response(h), 0);
}

static void defer_handler(udrpc_req_handle_t *h, void *ctx)
{
    struct fx *f = ctx;
    CHECK(f->n_deferred < 64);
    f->deferred[f->n_deferred++] = h;
}

static void sm_handler(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct fx *f = ctx;
    f->last_err = err;
    f->last_session = session;
    switch (ev) {
    case UDRPC_SM_CONNECTED: f->connected++; break;
    case UDRPC_SM_CONNECT_FAILED: f->connect_failed++; break;
    case UDRPC_SM_DISCONNECTED: f->disconnected++; break;
    case UDRPC_SM_SESSION_FAILED: f->session_failed++; break;
    }
    if (f->on_sm)
        f->on_sm(f, session, ev, err);
}

void fx_cont(void *ctx, void *tag, int status)
{
    struct fx *f = ctx;
    struct fx_done *d = tag;
    d->calls++;
    d->status = status;
    d->order = f->conts++;
}

struct fx_done *fx_done_new(struct fx *f)
{
    CHECK(f->n_done < sizeof(f->done) / sizeof(f->done[0]));
    return &f->done[f->n_done++];
}

uint64_t fx_ms(void) { return udrpc__monotonic_ns() / 1000000; }

void fx_pump(struct fx *f)
{
    if (f->cli)
        udrpc_run_event_loop_once(f->cli);
    if (f->srv)
        udrpc_run_event_loop_once(f->srv);
}

void fx_skipped(struct fx *f, const char *why)
{
    printf("  skipped on %s: %s\n", f->transport, why);
    skipped = 1;
}

void fx_api_configure(udrpc_config_t *c)
{
    c->rto_min_us = 2000;
    c->peer_timeout_ms = 100;
    c->connect_timeout_ms = 300;
    c->mtu = 1024;
}

int fx_connect(struct fx *f)
{
    int before = f->connected;
    int s = udrpc_connect(f->cli, udrpc_nexus_uri(f->nx), 2);
    CHECK(s >= 0);
    FX_PUMP_UNTIL(f, f->connected > before, 10000);
    CHECK_EQ(f->last_session, s);
    return s;
}

void fx_reopen(struct fx *f, int client, const udrpc_config_t *cfg)
{
    udrpc_t **rpc = client ? &f->cli : &f->srv;
    if (*rpc)
        udrpc_destroy(*rpc);
    *rpc = udrpc_create(f->nx, client ? 1 : 2, f, client ? sm_handler : NULL, cfg);
    CHECK(*rpc != NULL);
}

static void fx_open(struct fx *f, const char *transport, const udrpc_config_t *cfg,
                    unsigned flags)
{
    memset(f, 0, sizeof(*f));
    f->transport = transport;
    f->cfg = *cfg;
    f->nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(f->nx != NULL);
    CHECK_EQ(udrpc_register_handler(f->nx, FX_ECHO, echo_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(f->nx, FX_DEFER, defer_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(f->nx, FX_IN_PLACE, in_place_handler, UDRPC_HANDLER_FG), 0);
    f->cli = udrpc_create(f->nx, 1, f, sm_handler, &f->cfg);
    CHECK(f->cli != NULL);
    f->srv = udrpc_create(f->nx, 2, f, NULL, &f->cfg);
    CHECK(f->srv != NULL);
    f->dpp = udrpc_max_data_per_pkt(f->srv);
    if (flags & FX_UNCONNECTED)
        return;
    f->snum = fx_connect(f);
    f->cs = udrpc__session_get(f->cli, f->snum);
    f->ss = f->srv->sessions[f->cs->remote_num];
    CHECK(f->ss != NULL && !f->ss->is_client);
}

static void fx_close(struct fx *f)
{
    for (int i = 0; i < f->n_deferred; i++) /* answered into the void: freed */
        udrpc_enqueue_response(f->deferred[i]);
    if (f->cli)
        udrpc_destroy(f->cli);
    if (f->srv)
        udrpc_destroy(f->srv);
    udrpc_nexus_destroy(f->nx);
    for (unsigned i = 0; i < f->n_done; i++)
        if (f->done[i].calls != 1) {
            fprintf(stderr, "request %u of the case: %d continuations (status %d)\n", i,
                    f->done[i].calls, f->done[i].status);
            exit(1);
        }
}

int fx_main(int argc, char **argv, const char *test, const struct fx_case *cases,
            size_t n_cases, void (*configure)(udrpc_config_t *c))
{
    const char *transport = argc > 1 ? TEST_TRANSPORT(argv[1]) : "loop";
    const char *only = argc > 2 ? argv[2] : NULL;
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = transport;
    if (configure)
        configure(&cfg);
    for (size_t i = 0; i < sizeof(fx_payload); i++)
        fx_payload[i] = (uint8_t)(i * 13 + 1);

    unsigned ran = 0, n_skipped = 0;
    for (size_t i = 0; i < n_cases; i++) {
        if (only && strcmp(only, cases[i].name))
            continue;
        /* Named first: a failing CHECK exits, and this says in which case. */
        printf("%s.%s: %s\n", test, argc > 1 ? argv[1] : "loop", cases[i].name);
        fflush(stdout);
        static struct fx f;
        uint64_t t0 = fx_ms();
        skipped = 0;
        udrpc_config_t case_cfg = cfg;
        if (cases[i].configure)
            cases[i].configure(&case_cfg);
        fx_open(&f, transport, &case_cfg, cases[i].flags);
        cases[i].run(&f);
        fx_close(&f);
        ran++;
        n_skipped += skipped;
        if (!skipped)
            printf("  ok (%llu ms)\n", (unsigned long long)(fx_ms() - t0));
    }
    if (ran == 0) {
        fprintf(stderr, "%s: no case named %s\n", test, only);
        return 2;
    }
    printf("%s: %u cases, %u passed, %u skipped\n", test, ran, ran - n_skipped, n_skipped);
    return n_skipped == ran ? 77 : 0;
}

size_t fx_chunk(const struct fx *f, uint32_t msg_size, uint16_t pkt)
{
    size_t off = (size_t)pkt * f->dpp;
    return msg_size - off < f->dpp ? msg_size - off : f->dpp;
}

void fx_inject_raw(udrpc_t *rpc, const void *bytes, size_t len, const struct session *from)
{
    static uint8_t buf[1 << 16];
    memcpy(buf, bytes, len);
    struct tp_rx_pkt p = { .buf = buf, .len = (uint32_t)len };
    p.src_id[0] = from->peer.src_id[0];
    p.src_id[1] = from->peer.src_id[1];
    rpc->tx_n = 0;
    rpc->now_tsc = udrpc__rdtsc();
    udrpc__process_rx(rpc, &p, 1);
}

void fx_inject(udrpc_t *rpc, struct session *s, enum pkt_type type, uint32_t msg_size,
               uint16_t pkt_num, uint64_t req_num, size_t len)
{
    static uint8_t pkt[16 + sizeof(fx_payload)];
    struct pkthdr h;
    CHECK(len <= sizeof(fx_payload));
    pkthdr_pack(&h, FX_ECHO, msg_size, s->local_num, type, 0, pkt_num, req_num);
    memcpy(pkt, &h, 16);
    memcpy(pkt + 16, fx_payload, len);
    fx_inject_raw(rpc, pkt, 16 + len, s);
}

/* CHECK_EQ at the caller's file and line. */
#define EQ_AT(file, line, a, b)                                                   \
    do {                                                                          \
        long long _a = (long long)(a), _b = (long long)(b);                       \
        if (_a != _b) {                                                           \
            fprintf(stderr, "%s:%d: expected %s == %s: %lld != %lld\n", file, line, \
                    #a, #b, _a, _b);                                              \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

struct pkthdr_fields fx_tx_hdr_at(const char *file, int line, udrpc_t *rpc, unsigned i)
{
    struct pkthdr_fields fl;
    EQ_AT(file, line, i < rpc->tx_n, 1);
    EQ_AT(file, line, pkthdr_unpack(rpc->tx[i].hdr, &fl), 0);
    return fl;
}

void fx_expect_tx_at(const char *file, int line, udrpc_t *rpc, enum pkt_type type,
                     uint16_t pkt_num, uint64_t req_num, uint32_t msg_size,
                     uint16_t dest_session)
{
    EQ_AT(file, line, rpc->tx_n, 1);
    struct pkthdr_fields fl = fx_tx_hdr_at(file, line, rpc, 0);
    EQ_AT(file, line, fl.pkt_type, type);
    EQ_AT(file, line, fl.pkt_num, pkt_num);
    EQ_AT(file, line, fl.req_num, req_num);
    EQ_AT(file, line, fl.msg_size, msg_size);
    EQ_AT(file, line, fl.dest_session, dest_session);
    rpc->tx_n = 0;
}
