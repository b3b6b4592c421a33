/*
 * test_multi.c — one server endpoint on two transports at once
 * (cfg.transport "loop,udp"): a client endpoint on loop and one on udp
 * connect to it, and each session goes over the transport its client
 * speaks. Both keep 8 requests in flight for 2,000 RPCs each, every byte
 * of every answer checked, each continuation once; no packet dropped;
 * each transport carried its own session's packets (the loop fabric's
 * count of the server's sends matches the loop client's RPCs). Also: a
 * list naming an unknown transport, or two that both register memory,
 * is refused. And a transport with no connected session, which the loop
 * does not poll, still has its strays read (quiet_transport).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_clients.h"
#include "loop.h"
#include "rpc_internal.h"
#include "test.h"
#include "wire.h"

enum { COUNT = 2000, SIZE = 200 };

/* A transport without a connected session is left out of the event loop's
 * polls (an empty poll of udp is a syscall), yet what reaches it is read:
 * a loop,udp server with only a loop client counts strays sent to its udp
 * socket, each once, and serves the loop client meanwhile; once that
 * client is gone, neither transport counts a session. */
static void quiet_transport(udrpc_nexus_t *nx, udrpc_config_t *cfg)
{
    enum { STRAYS = 10 };
    cfg->transport = "loop,udp";
    cfg->idle_sleep_us = 50; /* it sleeps when idle: strays are read after a
                                sleep or at the 1 ms read, whichever comes first */
    udrpc_t *srv = udrpc_create(nx, 3, NULL, NULL, cfg);
    CHECK(srv != NULL);
    CHECK_EQ(srv->tp_sessions[0] + srv->tp_sessions[1], 0);
    cfg->idle_sleep_us = 0;
    cfg->transport = "loop";
    struct echo_client cl;
    memset(&cl, 0, sizeof(cl));
    cl.count = COUNT;
    cl.max_size = SIZE;
    cl.rpc = udrpc_create(nx, 4, &cl, echo_client_on_sm, cfg);
    CHECK(cl.rpc != NULL);
    cl.session = udrpc_connect(cl.rpc, udrpc_nexus_uri(nx), 3);
    CHECK(cl.session >= 0);
    echo_clients_pump(srv, &cl, 1, echo_clients_connected, 5);
    CHECK_EQ(srv->tp_sessions[0], 1);
    CHECK_EQ(srv->tp_sessions[1], 0);

    union tp_addr to;
    CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(nx), &to, NULL), 0);
    const struct tp_route *route = &srv->tps[1]->local;
    uint16_t port_be;
    memcpy(&port_be, route->bytes + route->len - 2, 2);
    udrpc__addr_set_port(&to, ntohs(port_be));
    int fd = socket(to.sa.sa_family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    uint8_t buf[TP_HDR_SIZE + 8] = { 0 };
    struct pkthdr h;
    pkthdr_pack(&h, ECHO_REQ, 8, 500, PKT_REQ, 0, 0, 0); /* no session 500 */
    memcpy(buf, &h, sizeof(h));
    for (int i = 0; i < STRAYS; i++)
        CHECK(sendto(fd, buf, sizeof(buf), 0, &to.sa, udrpc__addr_len(&to)) ==
              (ssize_t)sizeof(buf));
    close(fd);
    echo_client_start(&cl);
    echo_clients_pump(srv, &cl, 1, echo_clients_finished, 20);
    udrpc_run_event_loop(srv, 20); /* idle: it sleeps, and the strays wake it */
    udrpc_stats_t st;
    CHECK_EQ(udrpc_get_stats(srv, &st), 0);
    CHECK_EQ(st.reqs_handled, COUNT);
    CHECK_EQ(st.drops[UDRPC_DROP_BAD_SESSION], STRAYS);
    printf("multi: loop,udp with only a loop session: %d RPCs over loop, the %d strays "
           "sent to its unpolled udp socket read and dropped\n", COUNT, STRAYS);
    echo_client_free(&cl);
    udrpc_destroy(cl.rpc); /* tells the server, which frees its session */
    uint64_t end = udrpc__monotonic_ns() + 5000000000ull;
    while (srv->tp_sessions[0] != 0) {
        udrpc_run_event_loop_once(srv);
        CHECK(udrpc__monotonic_ns() < end);
    }
    CHECK_EQ(srv->tp_sessions[1], 0);
    udrpc_destroy(srv);
}

int main(void)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, ECHO_REQ, echo_xor, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.mtu = 4096; /* one datagram size for every transport of a session */

    cfg.transport = "loop,pigeon";
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
    cfg.transport = "";
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
#ifdef UDRPC_HAVE_MLX5
    cfg.transport = TEST_TRANSPORT("mlx5-model"); /* the NIC model as mlx5 */
    cfg.transport = "mlx5,mlx5"; /* two that register memory: a msgbuf has one lkey */
    CHECK(udrpc_create(nx, 9, NULL, NULL, &cfg) == NULL && errno == EINVAL);
    cfg.transport = "loop,mlx5";
    udrpc_t *ok = udrpc_create(nx, 9, NULL, NULL, &cfg);
    CHECK(ok != NULL);
    udrpc_destroy(ok);
#endif

    cfg.transport = "loop,udp";
    udrpc_t *srv = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(srv != NULL);
    CHECK_EQ(srv->n_tps, 2);
    struct echo_client cl[2];
    memset(cl, 0, sizeof(cl));
    const char *tps[2] = { "loop", "udp" };
    for (int k = 0; k < 2; k++) {
        cfg.transport = tps[k];
        cl[k].count = COUNT;
        cl[k].max_size = SIZE;
        cl[k].rpc = udrpc_create(nx, (uint8_t)(1 + k), &cl[k], echo_client_on_sm, &cfg);
        CHECK(cl[k].rpc != NULL);
        cl[k].session = udrpc_connect(cl[k].rpc, udrpc_nexus_uri(nx), 0);
        CHECK(cl[k].session >= 0);
    }
    echo_clients_pump(srv, cl, 2, echo_clients_connected, 5);
    CHECK_EQ(srv->tp_sessions[0], 1); /* both transports polled */
    CHECK_EQ(srv->tp_sessions[1], 1);
    for (int k = 0; k < 2; k++)
        echo_client_start(&cl[k]);
    struct udrpc_loop_stats ls0;
    udrpc__loop_get_stats(srv->tps[0], &ls0);
    echo_clients_pump(srv, cl, 2, echo_clients_finished, 20);
    echo_server_check(srv, 2, 2 * COUNT);
    /* The loop session's answers went out over loop, one per RPC (less
     * the 8 answered before ls0); the udp session's did not. */
    struct udrpc_loop_stats ls1;
    udrpc__loop_get_stats(srv->tps[0], &ls1);
    CHECK(ls1.sent - ls0.sent >= COUNT - ECHO_DEPTH && ls1.sent - ls0.sent <= COUNT);
    printf("multi: one server endpoint on loop and udp: %d RPCs from a loop client and %d "
           "from a udp client, %llu of its answers over loop\n",
           COUNT, COUNT, (unsigned long long)(ls1.sent - ls0.sent));
    for (int k = 0; k < 2; k++) {
        echo_client_free(&cl[k]);
        udrpc_destroy(cl[k].rpc);
    }
    udrpc_destroy(srv);
    quiet_transport(nx, &cfg);
    udrpc_nexus_destroy(nx);
    printf("test_multi: ok\n");
    return 0;
}
