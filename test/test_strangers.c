/*
 * test_strangers.c — what a UDP endpoint does with datagrams from strangers,
 * and how it idles:
 *  - datagrams that cannot be udrpc's (short, wrong magic, reserved bits,
 *    wrong SM size or magic) are dropped by the kernel's socket filter
 *    before udrpc reads them, and counted in kernel_drops, exactly;
 *  - answers to strangers (refusals, pings for sessions that do not exist)
 *    are limited to 1000 a second; every request beyond is counted in
 *    sm_drops, so that answers + drops = requests, exactly;
 *  - with idle_sleep_us set, an idle endpoint sleeps in udrpc_run_event_loop
 *    (CPU time well under wall time) and still answers at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc_internal.h"
#include "sm.h"
#include "test.h"
#include "wire.h"

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static uint64_t thread_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

static int connected;
static void on_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s, (void)err, (void)ctx;
    connected = ev == UDRPC_SM_CONNECTED;
}

static int done_calls;
static void cont(void *ctx, void *tag, int status)
{
    (void)ctx, (void)tag;
    CHECK_EQ(status, 0);
    done_calls++;
}

int main(void)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, 1, echo, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "udp";
    cfg.idle_sleep_us = 50;
    udrpc_t *srv = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(srv != NULL);

    /* The Nexus's family (UDRPC_TEST_URI: IPv4, or IPv6 for strangers.udp6):
     * the filters' offsets count from the UDP header in both. */
    union tp_addr sm_to, data_to;
    CHECK_EQ(udrpc__uri_parse(udrpc_nexus_uri(nx), &sm_to, NULL), 0);
    data_to = sm_to;
    const struct tp_route *route = &srv->tp->local;
    CHECK_EQ(route->len, sm_to.sa.sa_family == AF_INET6 ? 18 : 6);
    uint16_t port_be;
    memcpy(&port_be, route->bytes + route->len - 2, 2);
    udrpc__addr_set_port(&data_to, ntohs(port_be));
    printf("forged datagrams over %s\n", sm_to.sa.sa_family == AF_INET6 ? "IPv6" : "IPv4");
    int fd = socket(sm_to.sa.sa_family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    int rcv = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    /* 1. The socket filters. Each kind 25 times at each socket. */
    udrpc_stats_t st0, st1;
    udrpc_get_stats(srv, &st0);
    uint8_t buf[SM_PKT_SIZE];
    unsigned junk = 0;
    for (int i = 0; i < 25; i++) {
        struct pkthdr h;
        pkthdr_pack(&h, 1, 8, 0, PKT_REQ, 0, 0, 0);
        memcpy(buf, &h, sizeof(h));
        /* data socket: short; wrong magic; reserved bits set */
        CHECK(sendto(fd, buf, 15, 0, &data_to.sa, udrpc__addr_len(&data_to)) == 15);
        buf[7] ^= 1;
        CHECK(sendto(fd, buf, 24, 0, &data_to.sa, udrpc__addr_len(&data_to)) == 24);
        buf[7] ^= 1;
        buf[6] |= 0x40;
        CHECK(sendto(fd, buf, 24, 0, &data_to.sa, udrpc__addr_len(&data_to)) == 24);
        /* SM socket: wrong size; wrong magic; wrong version */
        struct sm_pkt p;
        memset(&p, 0, sizeof(p));
        p.type = SM_PING_REQ;
        udrpc__sm_encode(&p, buf);
        CHECK(sendto(fd, buf, SM_PKT_SIZE - 1, 0, &sm_to.sa, udrpc__addr_len(&sm_to)) ==
              SM_PKT_SIZE - 1);
        buf[0] ^= 1;
        CHECK(sendto(fd, buf, SM_PKT_SIZE, 0, &sm_to.sa, udrpc__addr_len(&sm_to)) ==
              SM_PKT_SIZE);
        buf[0] ^= 1;
        buf[4]++;
        CHECK(sendto(fd, buf, SM_PKT_SIZE, 0, &sm_to.sa, udrpc__addr_len(&sm_to)) ==
              SM_PKT_SIZE);
        junk += 6;
    }
    udrpc_run_event_loop(srv, 20);
    udrpc_get_stats(srv, &st1);
    printf("socket filters: %llu of %u junk datagrams dropped by the kernel\n",
           (unsigned long long)(st1.kernel_drops - st0.kernel_drops), junk);
    CHECK_EQ(st1.kernel_drops - st0.kernel_drops, junk);
    CHECK_EQ(st1.pkts_rx, st0.pkts_rx);      /* none reached the datapath */
    CHECK_EQ(st1.sm_drops, st0.sm_drops);    /* nor the SM thread */

    /* 2. Answers to strangers: 1500 pings for sessions that do not exist.
     * Sent in one go (well under a second) and then answered. */
    enum { PINGS = 1500 };
    uint64_t t0 = udrpc__monotonic_ns();
    for (unsigned i = 0; i < PINGS; i++) {
        struct sm_pkt p;
        memset(&p, 0, sizeof(p));
        p.type = SM_PING_REQ;
        p.server_rpc_id = 0;
        p.server_session = (uint16_t)(100 + i % 1000);
        p.token = i;
        udrpc__sm_encode(&p, buf);
        CHECK(sendto(fd, buf, SM_PKT_SIZE, 0, &sm_to.sa, udrpc__addr_len(&sm_to)) ==
              SM_PKT_SIZE);
    }
    udrpc_run_event_loop(srv, 100);
    uint64_t elapsed_ns = udrpc__monotonic_ns() - t0;
    unsigned answers = 0;
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == SM_PKT_SIZE)
        answers++;
    udrpc_get_stats(srv, &st0);
    printf("strangers: %u pings, %u answered (-ENOENT), %llu dropped, in %.0f ms\n", PINGS,
           answers, (unsigned long long)(st0.sm_drops - st1.sm_drops), elapsed_ns / 1e6);
    CHECK_EQ(answers + (st0.sm_drops - st1.sm_drops), PINGS);
    if (elapsed_ns < 1000000000ull) /* one window (a slow sanitizer run may see two) */
        CHECK_EQ(answers, UDRPC_SM_STRANGER_REPLIES_PER_S);
    else
        CHECK(answers >= UDRPC_SM_STRANGER_REPLIES_PER_S);

    /* 3. Idle sleep: 300 ms of an idle endpoint's loop costs little CPU. */
    uint64_t cpu0 = thread_cpu_us();
    udrpc_run_event_loop(srv, 300);
    uint64_t idle_cpu_us = thread_cpu_us() - cpu0;
    printf("idle: %llu us of CPU in 300 ms of udrpc_run_event_loop (idle_sleep_us 50)\n",
           (unsigned long long)idle_cpu_us);
    CHECK(idle_cpu_us < 100000);

    /* ...and answers at once: a client (busy-polling) against it. */
    cfg.idle_sleep_us = 0;
    udrpc_t *cli = udrpc_create(nx, 1, NULL, on_sm, &cfg);
    CHECK(cli != NULL);
    int s = udrpc_connect(cli, udrpc_nexus_uri(nx), 0);
    CHECK(s >= 0);
    uint64_t end = udrpc__monotonic_ns() + 2000000000ull;
    while (!connected && udrpc__monotonic_ns() < end) {
        udrpc_run_event_loop_once(cli);
        udrpc_run_event_loop(srv, 1);
    }
    CHECK(connected);
    udrpc_msgbuf_t req, resp;
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 32, &req), 0);
    CHECK_EQ(udrpc_msgbuf_alloc(cli, 32, &resp), 0);
    for (int i = 0; i < 100; i++) {
        memset(req.buf, i, 32);
        CHECK_EQ(udrpc_enqueue_request(cli, s, 1, &req, &resp, cont, NULL), 0);
        while (done_calls != i + 1 && udrpc__monotonic_ns() < end) {
            udrpc_run_event_loop_once(cli);
            udrpc_run_event_loop(srv, 1);
        }
        CHECK_EQ(done_calls, i + 1);
        CHECK_EQ(resp.size, 32);
        for (int j = 0; j < 32; j++)
            CHECK_EQ(resp.buf[j], i);
    }
    udrpc_msgbuf_free(cli, &req);
    udrpc_msgbuf_free(cli, &resp);
    udrpc_destroy(cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    close(fd);
    printf("test_strangers: ok\n");
    return 0;
}
