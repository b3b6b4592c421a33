/*
 * test.h — a tiny assert header: each failed check prints file, line,
 * expression and both values, then exits 1. SKIP() exits 77 (ctest skip).
 */
#ifndef UDRPC_TEST_H
#define UDRPC_TEST_H

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A transport name from the command line: "mlx5-model" runs "mlx5" on the
 * NIC model of test/nicmodel/ (where the mlx5 transport is built). */
#ifdef UDRPC_HAVE_MLX5
#include "nicmodel/nicmodel.h"
#define TEST_TRANSPORT(name) nicmodel_select(name)
#else
#define TEST_TRANSPORT(name) (name)
#endif

#define CHECK(expr)                                                           \
    do {                                                                      \
        if (!(expr)) {                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,  \
                    #expr);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long _a = (long long)(a), _b = (long long)(b);                   \
        if (_a != _b) {                                                       \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
                    __FILE__, __LINE__, #a, #b, _a, _b);                      \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define SKIP(why)                                                             \
    do {                                                                      \
        fprintf(stderr, "skipped: %s\n", why);                                \
        exit(77);                                                             \
    } while (0)

/* Moves the calling thread into network namespace ns (made by ip netns);
 * exits 1 where it cannot. */
static inline void test_enter_netns(const char *ns)
{
    char path[256];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "cannot enter network namespace %s\n", ns);
        exit(1);
    }
    close(fd);
}

/* For tests whose peer processes run in another network namespace (xdp
 * holds one endpoint per interface, so a server and its clients live on
 * the two ends of a veth: test/xdp_test.sh). A forked peer calls this
 * first with the URI it would bind: where UDRPC_TEST_PEER_NETNS names a
 * namespace (ip netns), it moves there, and the local URI (test_local_uri)
 * becomes UDRPC_TEST_PEER_URI; any other URI (a restarted server's own)
 * stays. Elsewhere: uri. */
static inline const char *test_peer_enter(const char *uri, const char *local_uri)
{
    const char *ns = getenv("UDRPC_TEST_PEER_NETNS");
    if (!ns || !*ns)
        return uri;
    test_enter_netns(ns);
    const char *peer = getenv("UDRPC_TEST_PEER_URI");
    return strcmp(uri, local_uri) == 0 && peer && *peer ? peer : uri;
}

/* The URI a test binds its Nexus to: "127.0.0.1:0", or UDRPC_TEST_URI
 * (ctest's <feature>.udp6 runs give "[::1]:0": the same tests over IPv6).
 * Skipped (77) where that address cannot be bound (no IPv6 here). */
static inline const char *test_local_uri(void)
{
    const char *u = getenv("UDRPC_TEST_URI");
    if (!u || !*u)
        return "127.0.0.1:0";
    if (!strncmp(u, "[::1]", 5)) {
        int fd = socket(AF_INET6, SOCK_DGRAM, 0);
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (!ok)
            SKIP("no IPv6 loopback (::1) here");
    }
    return u;
}

#endif
