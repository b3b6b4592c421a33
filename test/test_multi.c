/*
 * test_multi.c — one server endpoint on two transports at once
 * (cfg.transport "loop,udp"): a client endpoint on loop and one on udp
 * connect to it, and each session goes over the transport its client
 * speaks. Both keep 8 requests in flight for 2,000 RPCs each, every byte
 * of every answer checked, each continuation once; no packet dropped;
 * each transport carried its own session's packets (the loop fabric's
 * count of the server's sends matches the loop client's RPCs). Also: a
 * list naming an unknown transport, or two that both register memory,
 * is refused.
 */
#include <errno.h>
#include <string.h>

#include "echo_clients.h"
#include "loop.h"
#include "rpc_internal.h"
#include "test.h"

enum { COUNT = 2000, SIZE = 200 };

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
    udrpc_nexus_destroy(nx);
    printf("test_multi: ok\n");
    return 0;
}
