/*
 * test_verbs.c — the verbs transport's handling of bad input and errors,
 * on a real device (run inside the rxe guest by verbs_test.sh; exit 77
 * where there is no RDMA device):
 *  - set-up errors: a device that does not exist fails udrpc_create with
 *    ENODEV; an MTU above the port's with EINVAL; "mlx5" on rxe (no
 *    ConnectX) with ENODEV, and "auto" picks verbs there;
 *  - 2,000 echo RPCs over rxe0, single- and multi-packet, bytes checked;
 *  - a datagram longer than the receiver's buffers: an error completion,
 *    counted (rx_too_long), the buffer reposted, RPCs go on;
 *  - a datagram with a wrong Q_Key: the device drops it, nothing arrives;
 *  - the client's QP forced into the error state: the next send fails,
 *    the QP is reset and re-armed (qp_resets), and every request still
 *    completes exactly once (retransmission);
 *  - a forged source: a datagram from a QP that is not the session's peer
 *    (same GID, another QPN) is dropped as bad_source;
 *  - with the Nexus on an IPv6 address, the GID is that address (RoCE v2
 *    over IPv6: the receive path reads the sender from a 40-byte GRH).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"
#include "test.h"
#include "verbs.h"

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    for (size_t i = 0; i < req->size; i++)
        resp->buf[i] = (uint8_t)~req->buf[i];
    udrpc_enqueue_response(h);
}

static udrpc_t *cli, *srv, *stranger;
static int connected, done_calls, bad_status;

static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s, (void)err, (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        connected++;
}

static void cont(void *ctx, void *tag, int status)
{
    (void)ctx, (void)tag;
    done_calls++;
    if (status)
        bad_status++;
}

static void pump(void)
{
    udrpc_run_event_loop_once(cli);
    udrpc_run_event_loop_once(srv);
    if (stranger)
        udrpc_run_event_loop_once(stranger);
}

/* n RPCs of size bytes, one after another, every byte checked. */
static void rpcs(int session, int n, size_t size)
{
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, size ? size : 1, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, size ? size : 1, &resp), 0);
    udrpc_msgbuf_resize(&req, size);
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < size; j++)
            req.buf[j] = (uint8_t)(i * 13 + j);
        int before = done_calls;
        CHECK_EQ(udrpc_enqueue_request(cli, session, 1, &req, &resp, cont, NULL), 0);
        uint64_t end = udrpc__monotonic_ns() + 20000000000ull;
        while (done_calls == before) {
            pump();
            CHECK(udrpc__monotonic_ns() < end);
        }
        CHECK_EQ(done_calls, before + 1);
        CHECK_EQ(bad_status, 0);
        CHECK_EQ(resp.size, size);
        for (size_t j = 0; j < size; j++)
            CHECK_EQ(resp.buf[j], (uint8_t)~(uint8_t)(i * 13 + j));
    }
    udrpc_msgbuf_free(cli, &req);
    udrpc_msgbuf_free(cli, &resp);
}

int main(void)
{
    if (!udrpc__verbs_available(NULL))
        SKIP("no RDMA device with an active port (run by verbs_test.sh in the rxe guest)");
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, 1, echo, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "verbs";
    cfg.device = "no_such_device";
    CHECK(udrpc_create(nx, 0, NULL, NULL, &cfg) == NULL && errno == ENODEV);
    cfg.device = NULL;
    cfg.mtu = 65536;
    CHECK(udrpc_create(nx, 0, NULL, NULL, &cfg) == NULL && errno == EINVAL);
    cfg.mtu = 0;
#ifdef UDRPC_HAVE_MLX5
    /* Soft-RoCE is no ConnectX: "mlx5" finds no device that mlx5dv drives
     * (ENODEV, nothing half made), and "auto" takes verbs. */
    CHECK(!udrpc__mlx5_available(NULL));
    cfg.transport = "mlx5";
    CHECK(udrpc_create(nx, 0, NULL, NULL, &cfg) == NULL && errno == ENODEV);
    cfg.transport = "auto";
    udrpc_t *a = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(a && !strcmp(udrpc_transport_name(a), "verbs"));
    udrpc_destroy(a);
    cfg.transport = "verbs";
    printf("mlx5 on rxe0: ENODEV; auto: verbs\n");
#endif
    cfg.rto_min_us = 20000; /* the guest is emulated: slow, jittery */
    srv = udrpc_create(nx, 0, NULL, NULL, &cfg);
    cli = udrpc_create(nx, 1, NULL, on_sm, &cfg);
    stranger = udrpc_create(nx, 2, NULL, on_sm, &cfg);
    CHECK(srv && cli && stranger);
    CHECK(!strcmp(udrpc_transport_name(cli), "verbs"));
    /* A Nexus on an IPv6 address (verbs_test.sh VERBS_TEST_IPV6=1): the
     * endpoints advertise the GID equal to it, RoCE v2 over IPv6. */
    union tp_addr nexus;
    CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(nx), &nexus, NULL), 0);
    if (nexus.sa.sa_family == AF_INET6 && !udrpc__addr_is_any(&nexus)) {
        CHECK(!memcmp(srv->tp->local.bytes, &nexus.v6.sin6_addr, 16));
        CHECK(!memcmp(cli->tp->local.bytes, &nexus.v6.sin6_addr, 16));
        printf("verbs: GID of the Nexus's address %s: RoCE v2 over IPv6\n", udrpc_nexus_uri(nx));
    }
    printf("verbs: MTU %u on %s\n", srv->tp->mtu, getenv("UDRPC_DEVICE") ? getenv("UDRPC_DEVICE")
                                                                          : "the first device");
    int s = udrpc_connect(cli, udrpc_nexus_uri(nx), 0);
    int s2 = udrpc_connect(stranger, udrpc_nexus_uri(nx), 0);
    uint64_t end = udrpc__monotonic_ns() + 20000000000ull;
    while (connected < 2) {
        pump();
        CHECK(udrpc__monotonic_ns() < end);
    }
    rpcs(s, 1000, 32);
    rpcs(s, 200, 3 * srv->tp->mtu + 100); /* multi-packet */
    printf("verbs: 1200 RPCs, bytes checked\n");

    /* Longer than the receiver's buffers: an endpoint with MTU 512 (buffers
     * of 552 bytes) gets a 900-byte datagram (within the port's MTU). */
    cfg.mtu = 512;
    udrpc_t *small = udrpc_create(nx, 3, NULL, NULL, &cfg);
    cfg.mtu = 0;
    CHECK(small != NULL);
    struct tp_peer to_small;
    CHECK_EQ(cli->tp_ops->make_peer(cli->tp, &small->tp->local, NULL, &to_small), 0);
    struct udrpc_verbs_stats vs0, vs1;
    udrpc__verbs_get_stats(small->tp, &vs0);
    CHECK_EQ(udrpc__verbs_send_raw(cli->tp, &to_small, 900, 0), 0);
    end = udrpc__monotonic_ns() + 2000000000ull;
    do {
        udrpc_run_event_loop_once(small);
        udrpc__verbs_get_stats(small->tp, &vs1);
    } while (vs1.rx_errors == vs0.rx_errors && udrpc__monotonic_ns() < end);
    printf("verbs: 900 B into 552 B buffers: %llu failed receive completions (first status "
           "%d; %llu too long), QP resets %llu\n",
           (unsigned long long)(vs1.rx_errors - vs0.rx_errors), vs1.last_rx_error_status,
           (unsigned long long)vs1.rx_too_long, (unsigned long long)vs1.qp_resets);
    CHECK(vs1.rx_errors > vs0.rx_errors);
    /* The QP went to the error state (which flushed every buffer) and was
     * reset and re-armed: a datagram that fits arrives again. */
    CHECK(vs1.qp_resets > vs0.qp_resets);
    udrpc_stats_t sst0, sst1;
    udrpc_get_stats(small, &sst0);
    CHECK_EQ(udrpc__verbs_send_raw(cli->tp, &to_small, 100, 0), 0);
    end = udrpc__monotonic_ns() + 2000000000ull;
    do {
        udrpc_run_event_loop_once(small);
        udrpc_get_stats(small, &sst1);
    } while (sst1.pkts_rx == sst0.pkts_rx && udrpc__monotonic_ns() < end);
    CHECK_EQ(sst1.pkts_rx, sst0.pkts_rx + 1);
    udrpc_destroy(small);
    const struct tp_peer *to_srv = &udrpc__session_get(cli, s)->peer;
    rpcs(s, 100, 32);

    /* A wrong Q_Key: the device drops it before the receive queue. */
    udrpc_stats_t st0, st1;
    udrpc_get_stats(srv, &st0);
    udrpc__verbs_get_stats(srv->tp, &vs0);
    CHECK_EQ(udrpc__verbs_send_raw(cli->tp, to_srv, 64, 0x1234), 0);
    for (int i = 0; i < 20000; i++)
        udrpc_run_event_loop_once(srv);
    udrpc_get_stats(srv, &st1);
    udrpc__verbs_get_stats(srv->tp, &vs1);
    CHECK_EQ(st1.pkts_rx, st0.pkts_rx);
    CHECK_EQ(vs1.rx_errors, vs0.rx_errors);
    printf("verbs: wrong Q_Key: nothing received\n");
    rpcs(s, 100, 32);

    /* A forged source: the stranger's QP sends a plausible header for the
     * client's session at the server. Same GID, other QPN: bad_source. */
    udrpc_get_stats(srv, &st0);
    const struct tp_peer *stranger_to_srv = &udrpc__session_get(stranger, s2)->peer;
    struct pkthdr h;
    uint16_t srv_session = udrpc__session_get(cli, s)->remote_num;
    pkthdr_pack(&h, 1, 8, srv_session, PKT_REQ, 0, 0, 1000 * UDRPC_SLOTS_PER_SESSION);
    stranger->ctrl_hdrs[0] = 0;
    memcpy(stranger->ctrl_hdrs, &h, sizeof(h));
    struct tp_tx_pkt forged = { .peer = stranger_to_srv, .hdr = stranger->ctrl_hdrs,
                                .data = NULL, .data_len = 0, .lkey = stranger->ctrl_lkey };
    stranger->tp_ops->tx_burst(stranger->tp, &forged, 1, udrpc__rdtsc());
    stranger->tp_ops->tx_flush(stranger->tp);
    end = udrpc__monotonic_ns() + 2000000000ull;
    do {
        udrpc_run_event_loop_once(srv);
        udrpc_get_stats(srv, &st1);
    } while (st1.pkts_rx == st0.pkts_rx && udrpc__monotonic_ns() < end);
    printf("verbs: forged source: bad_source %llu -> %llu\n",
           (unsigned long long)st0.drops[UDRPC_DROP_BAD_SOURCE],
           (unsigned long long)st1.drops[UDRPC_DROP_BAD_SOURCE]);
    CHECK_EQ(st1.drops[UDRPC_DROP_BAD_SOURCE], st0.drops[UDRPC_DROP_BAD_SOURCE] + 1);

    /* The client's QP in the error state: reset, re-armed, nothing lost. */
    udrpc__verbs_get_stats(cli->tp, &vs0);
    udrpc__verbs_break_qp(cli->tp);
    rpcs(s, 50, 32);
    udrpc__verbs_get_stats(cli->tp, &vs1);
    printf("verbs: QP error: %llu reset(s), %llu failed completions, RPCs complete\n",
           (unsigned long long)(vs1.qp_resets - vs0.qp_resets),
           (unsigned long long)(vs1.tx_errors + vs1.post_errors));
    CHECK(vs1.qp_resets > vs0.qp_resets);

    udrpc_destroy(stranger);
    udrpc_destroy(cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    printf("test_verbs: ok\n");
    return 0;
}
