/*
 * test_xdp.c — the xdp transport's own cases, between two network
 * namespaces joined by a veth (test/xdp_test.sh makes them and passes
 * their names): a server endpoint on va in NS_A (a thread that enters
 * it), clients and a raw frame sender on vb in NS_B (the main thread).
 *
 *   noperm   a process without privileges (uid nobody, no capabilities)
 *            is refused: udrpc_create fails with EPERM and the log names
 *            the missing capabilities.
 *   stale    a udrpc program attached the old way and left behind (as by
 *            a crashed older process) is replaced at create, with a
 *            notice; the endpoint's own goes with it at destroy.
 *   junk     frames to the server's port that break the Ethernet, IPv4 or
 *            UDP rules, and a well-formed 6,000-byte frame, which reaches
 *            the server's socket (it takes multi-buffer packets, with
 *            in-place sends on) in two descriptors: each dropped and
 *            counted once in xdp_rx_bad; one
 *            with IPv4 options, which the program passes to the kernel,
 *            dropped by the port's socket (kernel_drops); well-formed
 *            frames with a bad udrpc header, dropped by the runtime
 *            (drops[MAGIC]). Then 2000 RPCs from a client over xdp, every
 *            byte checked, each continuation once.
 *   foreign  a plain kernel UDP echo on another port of va answers
 *            beside udrpc, before and during the RPCs.
 *
 *   test_xdp NS_A NS_B   (addresses 10.79.0.1 on va, 10.79.0.2 on vb)
 *   test_xdp --probe     exit 0 where AF_XDP sockets can be made, else 77
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "echo_server.h"
#include "rpc_internal.h"
#include "test.h"
#include "udrpc.h"
#include "xdp.h"

#define IP_A "10.79.0.1"
#define IP_B "10.79.0.2"
#define ECHO_PORT 31907
#define REQ_ECHO 1 /* echo_server.h's echo_inverted */

static const char *ns_a, *ns_b;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Log lines, kept for the checks (the log hook may run on any thread). */
static char g_log[8192];
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static void keep_log(int level, const char *line, void *ctx)
{
    (void)level;
    (void)ctx;
    pthread_mutex_lock(&g_log_mu);
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof(g_log) - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_mu);
    fprintf(stderr, "log: %s\n", line);
}
static bool log_has(const char *s)
{
    pthread_mutex_lock(&g_log_mu);
    bool yes = strstr(g_log, s) != NULL;
    pthread_mutex_unlock(&g_log_mu);
    return yes;
}

static udrpc_config_t xdp_cfg(void)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "xdp";
    return cfg;
}

/* ---------------------------------------------------------------- noperm */

static void test_noperm(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        test_enter_netns(ns_a);
        udrpc_nexus_t *nx = udrpc_nexus_create(IP_A ":0", NULL);
        CHECK(nx != NULL);
        /* uid nobody: the kernel clears every capability. */
        CHECK_EQ(setgid(65534), 0);
        CHECK_EQ(setuid(65534), 0);
        udrpc_config_t cfg = xdp_cfg();
        errno = 0;
        udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
        CHECK(rpc == NULL);
        CHECK_EQ(errno, EPERM);
        CHECK(log_has("missing: CAP_NET_ADMIN CAP_NET_RAW CAP_BPF"));
        printf("noperm: uid nobody refused with EPERM, the log names the capabilities\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ----------------------------------------------------------------- stale */

static void test_stale(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        test_enter_netns(ns_a);
        CHECK_EQ(udrpc__xdp_attached_id("va"), 0);
        CHECK_EQ(udrpc__xdp_plant_stale("va"), 0);
        const int stale_id = udrpc__xdp_attached_id("va");
        CHECK(stale_id > 0);
        udrpc_nexus_t *nx = udrpc_nexus_create(IP_A ":0", NULL);
        CHECK(nx != NULL);
        udrpc_config_t cfg = xdp_cfg();
        udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
        CHECK(rpc != NULL);
        const int ours = udrpc__xdp_attached_id("va");
        CHECK(ours > 0 && ours != stale_id);
        uint64_t end = now_ms() + 2000; /* the notice is logged by the 1 ms scan */
        while (!log_has("replaced a stale udrpc XDP program") && now_ms() < end)
            udrpc_run_event_loop_once(rpc);
        CHECK(log_has("replaced a stale udrpc XDP program"));
        /* A second endpoint on the same interface is refused, the first kept. */
        udrpc_t *second = udrpc_create(nx, 1, NULL, NULL, &cfg);
        CHECK(second == NULL);
        CHECK_EQ(errno, EBUSY);
        CHECK(log_has("already carries a live udrpc endpoint's program"));
        CHECK_EQ(udrpc__xdp_attached_id("va"), ours);
        udrpc_destroy(rpc);
        CHECK_EQ(udrpc__xdp_attached_id("va"), 0);
        udrpc_nexus_destroy(nx);
        printf("stale: program %d replaced by %d (noticed), a second endpoint refused "
               "(EBUSY), nothing left after destroy\n", stale_id, ours);
        fflush(stdout);
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ------------------------------------------------------- the server side */

static struct {
    atomic_int ready, stop, want_stats, stats_ready;
    uint8_t mac[6];
    uint16_t port_be;
    udrpc_stats_t stats;
} srv;

/* The server thread in NS_A: an xdp endpoint and, beside it, a kernel
 * UDP echo on ECHO_PORT. */
static void *server_main(void *arg)
{
    (void)arg;
    test_enter_netns(ns_a);
    udrpc_nexus_t *nx = udrpc_nexus_create(IP_A ":31900", NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, REQ_ECHO, echo_inverted, UDRPC_HANDLER_FG), 0);
    udrpc_config_t cfg = xdp_cfg();
    udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
    CHECK(rpc != NULL);
    const struct tp_route *r = &rpc->tps[0]->local;
    memcpy(srv.mac, r->bytes, 6);
    memcpy(&srv.port_be, r->bytes + 10, 2);
    int echo = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in ea = { .sin_family = AF_INET, .sin_port = htons(ECHO_PORT) };
    inet_pton(AF_INET, IP_A, &ea.sin_addr);
    CHECK_EQ(bind(echo, (struct sockaddr *)&ea, sizeof(ea)), 0);
    atomic_store(&srv.ready, 1);
    while (!atomic_load(&srv.stop)) {
        udrpc_run_event_loop_once(rpc);
        char buf[256];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(echo, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n > 0)
            (void)sendto(echo, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
        if (atomic_load(&srv.want_stats)) {
            udrpc_get_stats(rpc, &srv.stats);
            atomic_store(&srv.want_stats, 0);
            atomic_store(&srv.stats_ready, 1);
        }
    }
    close(echo);
    udrpc_destroy(rpc);
    udrpc_nexus_destroy(nx);
    return NULL;
}

static udrpc_stats_t server_stats(void)
{
    atomic_store(&srv.stats_ready, 0);
    atomic_store(&srv.want_stats, 1);
    while (!atomic_load(&srv.stats_ready))
        sched_yield();
    return srv.stats;
}

/* ---------------------------------------------------------- junk frames */

static uint16_t csum16(const void *p, size_t len, uint32_t sum)
{
    const uint8_t *b = p;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (len & 1)
        sum += (uint32_t)b[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

enum junk { J_SHORT_IP, J_IP_CSUM, J_UDP_CSUM, J_UDP_LEN, J_FRAGMENT, J_OTHER_MAC, J_JUMBO,
            J_N_BAD, /* the rest reach the runtime or the kernel */
            J_IP_OPTIONS = J_N_BAD, J_BAD_MAGIC_NOSUM, J_BAD_MAGIC };

/* The jumbo frame's UDP payload: more than a 4 KiB UMEM frame holds, within
 * the veth's MTU of 9000 (test/xdp_test.sh sets it). A multiple of 32. */
#define JUMBO_PAYLOAD 6016u

/* A frame from vb to the server's port with payload "junk...", made wrong
 * as kind says; its length. */
static size_t make_frame(uint8_t *f, enum junk kind, const uint8_t src_mac[6])
{
    const bool opts = kind == J_IP_OPTIONS;
    const unsigned ihl = opts ? 24 : 20, payload = kind == J_JUMBO ? JUMBO_PAYLOAD : 32;
    uint8_t *ip = f + 14, *udp = ip + ihl;
    memset(f, 0, 14 + ihl + 8 + payload);
    memcpy(f, srv.mac, 6);
    if (kind == J_OTHER_MAC)
        f[5] ^= 0x01;
    memcpy(f + 6, src_mac, 6);
    f[12] = 0x08;
    ip[0] = (uint8_t)(0x40 | ihl / 4);
    uint16_t tot = (uint16_t)(ihl + 8 + payload);
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    if (kind == J_SHORT_IP)
        ip[3] = (uint8_t)(tot + 100); /* longer than the frame */
    if (kind == J_FRAGMENT)
        ip[6] = 0x20; /* more fragments */
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    inet_pton(AF_INET, IP_B, ip + 12);
    inet_pton(AF_INET, IP_A, ip + 16);
    if (opts)
        ip[20] = 1; /* four NOP options */
    if (opts)
        ip[21] = ip[22] = ip[23] = 1;
    uint16_t c = csum16(ip, ihl, 0);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    if (kind == J_IP_CSUM)
        ip[11] ^= 0x5A;
    udp[0] = 0x7C; /* source port 31800 */
    udp[1] = 0x38;
    memcpy(udp + 2, &srv.port_be, 2);
    uint16_t ulen = (uint16_t)(8 + payload);
    udp[4] = (uint8_t)(ulen >> 8);
    udp[5] = (uint8_t)(kind == J_UDP_LEN ? ulen - 4 : ulen);
    for (unsigned i = 0; i < payload; i += 32)
        memcpy(udp + 8 + i, "junk: not a udrpc header at all.", 32);
    if (kind != J_BAD_MAGIC_NOSUM) {
        uint8_t pseudo[12];
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = IPPROTO_UDP;
        pseudo[10] = (uint8_t)(ulen >> 8);
        pseudo[11] = (uint8_t)ulen;
        uint32_t s = (uint16_t)~csum16(pseudo, 12, 0);
        c = csum16(udp, ulen, s);
        udp[6] = (uint8_t)(c >> 8);
        udp[7] = (uint8_t)c;
        if (kind == J_UDP_CSUM)
            udp[7] ^= 0x33;
    }
    return 14 + ihl + 8 + payload;
}

static void send_junk(void)
{
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    CHECK(fd >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "vb");
    CHECK_EQ(ioctl(fd, SIOCGIFHWADDR, &ifr), 0);
    uint8_t mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("vb"),
                              .sll_halen = 6 };
    memcpy(ll.sll_addr, srv.mac, 6);
    udrpc_stats_t s0 = server_stats();
    for (int k = 0; k <= J_BAD_MAGIC; k++) {
        static uint8_t f[14 + 24 + 8 + JUMBO_PAYLOAD];
        size_t len = make_frame(f, (enum junk)k, mac);
        CHECK_EQ(sendto(fd, f, len, 0, (struct sockaddr *)&ll, sizeof(ll)), (long)len);
    }
    close(fd);
    udrpc_stats_t s1;
    uint64_t end = now_ms() + 3000;
    do {
        s1 = server_stats();
    } while ((s1.xdp_rx_bad - s0.xdp_rx_bad < J_N_BAD ||
              s1.drops[UDRPC_DROP_MAGIC] - s0.drops[UDRPC_DROP_MAGIC] < 2 ||
              s1.kernel_drops == s0.kernel_drops) && now_ms() < end);
    usleep(100000); /* and nothing more comes */
    s1 = server_stats();
    printf("junk: xdp_rx_bad +%llu (of %d malformed), drops[MAGIC] +%llu, kernel_drops +%llu\n",
           (unsigned long long)(s1.xdp_rx_bad - s0.xdp_rx_bad), J_N_BAD,
           (unsigned long long)(s1.drops[UDRPC_DROP_MAGIC] - s0.drops[UDRPC_DROP_MAGIC]),
           (unsigned long long)(s1.kernel_drops - s0.kernel_drops));
    CHECK_EQ(s1.xdp_rx_bad - s0.xdp_rx_bad, J_N_BAD);
    CHECK_EQ(s1.drops[UDRPC_DROP_MAGIC] - s0.drops[UDRPC_DROP_MAGIC], 2);
    CHECK_EQ(s1.kernel_drops - s0.kernel_drops, 1);
    CHECK_EQ(s1.pkts_rx - s0.pkts_rx, 2);
}

/* ------------------------------------------------------------- foreign */

static void foreign_echo(const char *when)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(ECHO_PORT) };
    inet_pton(AF_INET, IP_A, &to.sin_addr);
    struct timeval tv = { 0, 200000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char msg[32], back[64];
    int ok = 0;
    for (int i = 0; i < 10 && !ok; i++) {
        snprintf(msg, sizeof(msg), "plain udp %d", i);
        CHECK(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to)) > 0);
        ssize_t n = recv(fd, back, sizeof(back), 0);
        ok = n == (ssize_t)strlen(msg) && !memcmp(back, msg, (size_t)n);
    }
    close(fd);
    CHECK(ok);
    printf("foreign: a plain UDP echo on port %d answered %s\n", ECHO_PORT, when);
}

/* --------------------------------------------------------------- client */

static struct {
    udrpc_t *rpc;
    int session, connected;
    udrpc_msgbuf_t req[8], resp[8];
    unsigned calls[8];
    uint64_t ok, issued, goal;
} cl;

static void cl_sm(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)session;
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED && err == 0)
        cl.connected = 1;
}

static void cl_issue(int i);
static void cl_cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    int i = (int)(intptr_t)tag;
    CHECK_EQ(status, 0);
    CHECK_EQ(cl.calls[i], 1);
    cl.calls[i] = 0;
    const udrpc_msgbuf_t *q = &cl.req[i], *r = &cl.resp[i];
    CHECK_EQ(r->size, q->size);
    for (size_t k = 0; k < q->size; k++)
        CHECK_EQ(r->buf[k], (uint8_t)(0xFFu ^ q->buf[k]));
    cl.ok++;
    if (cl.issued < cl.goal)
        cl_issue(i);
}

static void cl_issue(int i)
{
    size_t size = (cl.issued * 7919u) % 6000u; /* 0 B to several packets */
    udrpc_msgbuf_resize(&cl.req[i], size);
    for (size_t k = 0; k < size; k++)
        cl.req[i].buf[k] = (uint8_t)(k * 31u + cl.issued);
    udrpc_msgbuf_resize(&cl.resp[i], 6000);
    cl.calls[i] = 1;
    cl.issued++;
    CHECK_EQ(udrpc_enqueue_request(cl.rpc, cl.session, REQ_ECHO, &cl.req[i], &cl.resp[i], cl_cont,
                                   (void *)(intptr_t)i),
             0);
}

static void client_rpcs(unsigned n)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(IP_B ":0", NULL);
    CHECK(nx != NULL);
    udrpc_config_t cfg = xdp_cfg();
    cl.rpc = udrpc_create(nx, 0, NULL, cl_sm, &cfg);
    CHECK(cl.rpc != NULL);
    cl.session = udrpc_connect(cl.rpc, IP_A ":31900", 0);
    CHECK(cl.session >= 0);
    uint64_t end = now_ms() + 5000;
    while (!cl.connected && now_ms() < end)
        udrpc_run_event_loop_once(cl.rpc);
    CHECK(cl.connected);
    cl.goal = n;
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(udrpc_msgbuf_alloc(cl.rpc, 6000, &cl.req[i]), 0);
        CHECK_EQ(udrpc_msgbuf_alloc(cl.rpc, 6000, &cl.resp[i]), 0);
        cl_issue(i);
    }
    end = now_ms() + 20000;
    while (cl.ok < n && now_ms() < end)
        udrpc_run_event_loop_once(cl.rpc);
    CHECK_EQ(cl.ok, n);
    udrpc_stats_t s;
    udrpc_get_stats(cl.rpc, &s);
    CHECK_EQ(s.xdp_mode & UDRPC_XDP_ON, UDRPC_XDP_ON);
    CHECK_EQ(s.xdp_rx_bad, 0);
    CHECK_EQ(s.reqs_completed, n);
    const char *in_place = getenv("UDRPC_XDP_IN_PLACE");
    if (in_place && !strcmp(in_place, "1")) { /* xdp_test.sh own: forced on */
        CHECK_EQ(s.xdp_mode & UDRPC_XDP_IN_PLACE, UDRPC_XDP_IN_PLACE);
        CHECK(s.xdp_in_place_sends > 0);
    }
    printf("client: %u RPCs of 0..5999 B over xdp (%s, %s), each byte checked, each "
           "continuation once; %llu retransmits, %llu kicks, %llu in-place sends\n", n,
           s.xdp_mode & UDRPC_XDP_NATIVE ? "native" : "SKB mode",
           s.xdp_mode & UDRPC_XDP_ZEROCOPY ? "zero-copy" : "copy",
           (unsigned long long)s.retransmits, (unsigned long long)s.xdp_tx_kicks,
           (unsigned long long)s.xdp_in_place_sends);
    for (int i = 0; i < 8; i++) {
        udrpc_msgbuf_free(cl.rpc, &cl.req[i]);
        udrpc_msgbuf_free(cl.rpc, &cl.resp[i]);
    }
    udrpc_destroy(cl.rpc);
    udrpc_nexus_destroy(nx);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--probe")) { /* for test/xdp_ns_run.sh */
        if (getuid() != 0)
            SKIP("xdp's tests need root (namespaces, XDP programs)");
        int fd = socket(AF_XDP, SOCK_RAW, 0);
        if (fd < 0)
            SKIP("no AF_XDP sockets in this kernel");
        close(fd);
        return 0;
    }
    if (argc < 3)
        SKIP("run by test/xdp_test.sh: test_xdp NS_A NS_B");
    ns_a = argv[1];
    ns_b = argv[2];
    udrpc_set_log_fn(keep_log, NULL);
    test_noperm();
    test_stale();

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, server_main, NULL), 0);
    test_enter_netns(ns_b); /* this thread: the client side */
    uint64_t end = now_ms() + 5000;
    while (!atomic_load(&srv.ready) && now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&srv.ready));
    foreign_echo("before any RPC");
    send_junk();
    client_rpcs(2000);
    foreign_echo("after the RPCs");
    atomic_store(&srv.stop, 1);
    pthread_join(t, NULL);
    printf("test_xdp: ok\n");
    return 0;
}
