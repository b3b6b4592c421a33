/* bench_util.h — shared pieces of rpc_bench and its peers: the latency
 * histogram (fixed size: no allocation while measuring), CPU pinning,
 * forking a server process that reports its address through a pipe. */
#ifndef UDRPC_BENCH_UTIL_H
#define UDRPC_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A log-bucketed latency histogram: 32 sub-buckets per power of two of
 * TSC ticks (about 3% resolution), fixed size, so recording never
 * allocates. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 * HIST_SUB)
struct lat_hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n, max_tsc;
};

static inline unsigned hist_bucket(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return (msb - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

static inline void hist_add(struct lat_hist *h, uint64_t tsc)
{
    h->count[hist_bucket(tsc)]++;
    h->n++;
    if (tsc > h->max_tsc)
        h->max_tsc = tsc;
}

/* The value (TSC ticks) below which fraction p of the samples lie: the
 * upper edge of that bucket. */
uint64_t hist_percentile(const struct lat_hist *h, double p);

struct bench_result {
    double rpc_per_s;
    double p50_us, p90_us, p99_us, p999_us, max_us;
    uint64_t count;
    uint64_t resent;  /* raw UDP echo: datagrams sent again after a loss */
};

void hist_summarize(const struct lat_hist *h, double ns_per_tsc, struct bench_result *r);

void bench_pin_cpu(int cpu);
/* The whole of path in a new buffer (*len bytes, then a NUL): 0, or a
 * negative errno (the file's, -EIO, -ENOMEM). */
int bench_read_file(const char *path, uint8_t **out, size_t *len);
/* Where forked servers run (rpc_bench --server-netns, --server-host): a
 * network namespace (ip netns) the child enters before fn, and the
 * address its servers bind there; NULL: here, and the client's host. */
extern const char *bench_server_netns, *bench_server_host;
/* Forks; the child runs fn(arg, write_fd) and exits with its status. The
 * parent gets the child's first message (up to len bytes) into buf. */
pid_t bench_fork_server(int (*fn)(void *arg, int fd), void *arg, void *buf, size_t len);
void bench_stop_server(pid_t pid);

/* The raw UDP echo peer (peers/udp_echo.c) on host (an IPv4 or IPv6
 * literal; NULL: 127.0.0.1): depth datagrams of size bytes in flight for
 * duration_s, recvmmsg/sendmmsg on both sides; gso: with UDP GSO sends and
 * UDP GRO receives (-1 where the kernel refuses them). */
int udp_echo_run(const char *host, size_t size, unsigned depth, double duration_s,
                 int server_cpu, int client_cpu, int gso, struct bench_result *r);

/* The shm ring floor (peers/shm_echo.c): depth messages of size bytes in
 * flight between two processes through shm's rings and nothing else. */
int shm_echo_run(size_t size, unsigned depth, double duration_s, int server_cpu, int client_cpu,
                 struct bench_result *r);
/* One core's memcpy of size bytes, in bytes per second. */
double memcpy_bytes_per_s(size_t size, double duration_s, int cpu);

#endif
