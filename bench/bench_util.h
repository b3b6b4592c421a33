/* bench_util.h — shared pieces of rpc_bench and its peers: latency samples
 * (preallocated, no allocation while measuring), percentiles, CPU pinning,
 * forking a server process that reports its address through a pipe. */
#ifndef UDRPC_BENCH_UTIL_H
#define UDRPC_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lat_samples {
    uint64_t *tsc;        /* round-trip times in TSC ticks */
    size_t n, cap;
};

struct bench_result {
    double rpc_per_s;
    double p50_us, p90_us, p99_us, p999_us, max_us;
    uint64_t count;
};

void lat_init(struct lat_samples *l, size_t cap);
void lat_free(struct lat_samples *l);
static inline void lat_add(struct lat_samples *l, uint64_t tsc)
{
    if (l->n < l->cap)
        l->tsc[l->n++] = tsc;
}
/* Sorts the samples and fills the percentiles (us). */
void lat_summarize(struct lat_samples *l, double ns_per_tsc, struct bench_result *r);

void bench_pin_cpu(int cpu);
/* Forks; the child runs fn(arg, write_fd) and exits with its status. The
 * parent gets the child's first message (up to len bytes) into buf. */
pid_t bench_fork_server(int (*fn)(void *arg, int fd), void *arg, void *buf, size_t len);
void bench_stop_server(pid_t pid);

/* The raw UDP echo peer (peers/udp_echo.c): depth datagrams of size bytes
 * in flight for duration_s, recvmmsg/sendmmsg on both sides. */
int udp_echo_run(size_t size, unsigned depth, double duration_s, int server_cpu,
                 int client_cpu, struct bench_result *r);

#endif
