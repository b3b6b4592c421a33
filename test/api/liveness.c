/*
 * api/liveness.c — sessions that must not fail (peer_timeout 100 ms): one
 * idle for ten timeouts, kept by the Nexus heartbeats alone with no packet
 * on the session; one whose server endpoint is not polled for three
 * timeouts (the Nexus thread answers for the process); and, on the loop
 * transport's link, data-path partitions shorter and three times longer
 * than peer_timeout, after which the request in flight completes.
 */
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "loop.h"

static uint64_t sessions_active(udrpc_t *rpc)
{
    udrpc_stats_t st;
    udrpc_get_stats(rpc, &st);
    return st.sessions_active;
}

static void echo_ok(struct fx *f)
{
    static udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(f->cli, 64, &resp), 0);
    memset(req.buf, 0x77, 64);
    struct fx_done *d = fx_done_new(f);
    CHECK_EQ(udrpc_enqueue_request(f->cli, f->snum, FX_ECHO, &req, &resp, fx_cont, d), 0);
    FX_PUMP_UNTIL(f, d->calls == 1, 3000);
    CHECK_EQ(d->status, 0);
    CHECK_EQ(resp.buf[63], 0x77);
}

static void idle_session(struct fx *f)
{
    udrpc_stats_t st0, st;
    udrpc_get_stats(f->cli, &st0);
    uint64_t end = fx_ms() + 10 * f->cfg.peer_timeout_ms;
    while (fx_ms() < end)
        fx_pump(f);
    CHECK(udrpc_is_connected(f->cli, f->snum));
    CHECK_EQ(f->session_failed, 0);
    CHECK_EQ(sessions_active(f->srv), 1);
    udrpc_get_stats(f->cli, &st);
    CHECK_EQ(st.pkts_tx, st0.pkts_tx); /* nothing sent on the session */
    echo_ok(f);
}

static void unpolled_endpoint(struct fx *f)
{
    echo_ok(f);
    usleep(3 * f->cfg.peer_timeout_ms * 1000); /* a stalled handler, a long continuation */
    for (int k = 0; k < 1000; k++)
        fx_pump(f);
    CHECK(udrpc_is_connected(f->cli, f->snum));
    CHECK_EQ(f->session_failed, 0);
    CHECK_EQ(sessions_active(f->srv), 1);
    echo_ok(f);
}

static void partition(struct fx *f)
{
    if (strcmp(f->transport, "loop"))
        FX_SKIP(f, "partitions are made on the loop transport's link");
    unsigned part_ms[2] = { f->cfg.peer_timeout_ms / 10, 3 * f->cfg.peer_timeout_ms };
    for (int k = 0; k < 2; k++) {
        udrpc__loop_partition(f->srv->tp, part_ms[k]);
        udrpc__loop_partition(f->cli->tp, part_ms[k]);
        echo_ok(f);
        CHECK(udrpc_is_connected(f->cli, f->snum));
    }
    struct udrpc_loop_stats ls;
    udrpc__loop_get_stats(f->cli->tp, &ls);
    CHECK(ls.dropped > 0);
    CHECK_EQ(f->session_failed, 0);
    printf("  %u ms and %u ms (3x peer_timeout) survived\n", part_ms[0], part_ms[1]);
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(idle_session),
        FX_CASE(unpolled_endpoint),
        FX_CASE(partition),
    };
    return FX_RUN("api_liveness", cases, fx_api_configure);
}
