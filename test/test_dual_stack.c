/*
 * test_dual_stack.c — one udp server bound to "[::]:0" (dual-stack) with an
 * IPv4 client (its Nexus on 127.0.0.1) and an IPv6 client (on ::1)
 * connected at the same time, each keeping 8 requests of up to 3 packets
 * in flight for 2,000 RPCs; every byte of every answer checked, each
 * continuation once, no packet dropped at the server. The server's udp
 * route says "::" (every address): each client reaches it where its SM
 * answers came from, the IPv4 one over IPv4. Also: an IPv6-only Nexus
 * ([::1]) refuses an IPv4 peer at once (-EAFNOSUPPORT), and an IPv4 one an
 * IPv6 peer. Skipped (77) where the host has no ::1.
 */
#include <errno.h>
#include <string.h>

#include "echo_clients.h"
#include "rpc_internal.h"
#include "test.h"

enum { COUNT = 2000, MTU = 4096 };

/* "host" with the port of uri ("[::]:4711" -> "127.0.0.1:4711"). */
static void with_port_of(char out[UDRPC_MAX_URI_LEN], const char *host, const char *uri)
{
    snprintf(out, UDRPC_MAX_URI_LEN, "%s%s", host, strrchr(uri, ':'));
}

int main(void)
{
    setenv("UDRPC_TEST_URI", "[::1]:0", 1);
    (void)test_local_uri(); /* skipped (77) without ::1 */
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "udp";
    cfg.mtu = MTU; /* one datagram size at both ends, whatever each interface's */

    udrpc_nexus_t *snx = udrpc_nexus_create("[::]:0", NULL);
    CHECK(snx != NULL);
    CHECK(!strncmp(udrpc_nexus_uri(snx), "[::]:", 5));
    CHECK_EQ(udrpc_register_handler(snx, ECHO_REQ, echo_xor, UDRPC_HANDLER_FG), 0);
    udrpc_t *srv = udrpc_create(snx, 0, NULL, NULL, &cfg);
    CHECK(srv != NULL);
    CHECK_EQ(srv->tp->local.len, 18); /* "::" and the port */

    struct echo_client cl[2];
    udrpc_nexus_t *cnx[2];
    memset(cl, 0, sizeof(cl));
    const char *local[2] = { "127.0.0.1:0", "[::1]:0" }, *host[2] = { "127.0.0.1", "[::1]" };
    for (int k = 0; k < 2; k++) {
        cnx[k] = udrpc_nexus_create(local[k], NULL);
        CHECK(cnx[k] != NULL);
        cl[k].count = COUNT;
        cl[k].max_size = 3 * MTU; /* 0 to 3 packets */
        cl[k].vary_size = 1;
        cl[k].rpc = udrpc_create(cnx[k], 1, &cl[k], echo_client_on_sm, &cfg);
        CHECK(cl[k].rpc != NULL);
        char to[UDRPC_MAX_URI_LEN];
        with_port_of(to, host[k], udrpc_nexus_uri(snx));
        cl[k].session = udrpc_connect(cl[k].rpc, to, 0);
        CHECK(cl[k].session >= 0);
        /* A Nexus of one family cannot reach the other. */
        with_port_of(to, host[1 - k], udrpc_nexus_uri(snx));
        CHECK_EQ(udrpc_connect(cl[k].rpc, to, 0), -EAFNOSUPPORT);
    }
    echo_clients_pump(srv, cl, 2, echo_clients_connected, 5);
    /* Each client's session goes over its own family. */
    const struct session *s4 = udrpc__session_get(cl[0].rpc, cl[0].session);
    const struct session *s6 = udrpc__session_get(cl[1].rpc, cl[1].session);
    CHECK_EQ(((const struct sockaddr *)s4->peer.tx)->sa_family, AF_INET);
    CHECK_EQ(((const struct sockaddr *)s6->peer.tx)->sa_family, AF_INET6);

    for (int k = 0; k < 2; k++)
        echo_client_start(&cl[k]);
    echo_clients_pump(srv, cl, 2, echo_clients_finished, 30);
    echo_server_check(srv, 2, 2 * COUNT);
    printf("dual stack: %llu RPCs from an IPv4 client and %llu from an IPv6 client to one "
           "server at %s, every byte checked\n",
           (unsigned long long)cl[0].done, (unsigned long long)cl[1].done, udrpc_nexus_uri(snx));

    /* An IPv6-only Nexus refuses an IPv4 peer, and the reverse. */
    udrpc_nexus_t *only6 = udrpc_nexus_create("[::1]:0", NULL);
    CHECK(only6 != NULL);
    udrpc_t *r6 = udrpc_create(only6, 2, NULL, NULL, &cfg);
    CHECK(r6 != NULL);
    CHECK_EQ(udrpc_connect(r6, "127.0.0.1:9", 0), -EAFNOSUPPORT);
    CHECK(udrpc_connect(r6, "[::1]:9", 0) >= 0);
    udrpc_destroy(r6);
    udrpc_nexus_destroy(only6);

    for (int k = 0; k < 2; k++) {
        echo_client_free(&cl[k]);
        udrpc_destroy(cl[k].rpc);
        udrpc_nexus_destroy(cnx[k]);
    }
    udrpc_destroy(srv);
    udrpc_nexus_destroy(snx);
    printf("test_dual_stack: ok\n");
    return 0;
}
