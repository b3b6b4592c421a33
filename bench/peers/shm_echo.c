/*
 * shm_echo.c — the memory floor for request/response between two
 * processes: the shm transport's own rings (transport/shm/shm_ring.h), one
 * each way in a shared mapping, and nothing else. The client keeps depth
 * messages of size bytes in flight, each carrying its index; the server
 * copies each back as it reads it; both busy-poll. What udrpc's shm
 * transport adds on top of this is the runtime's cost.
 *
 * Also the memcpy peer of large messages: how fast one core copies size
 * bytes, the bound for a transport that copies once.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "clock.h"
#include "shm_ring.h"

#define RING_BYTES (4u << 20) /* as shm's */
#define MAX_DEPTH 1024
#define BURST 64

struct floor_args {
    struct shm_region *reg;
    size_t size;
    int cpu;
};

static void rings(struct shm_region *reg, int client, struct shm_tx *tx, struct shm_rx *rx,
                  uint32_t mtu)
{
    uint8_t *c2s = (uint8_t *)reg + SHM_HDR_BYTES, *s2c = c2s + RING_BYTES;
    const uint64_t pos0 = SHM_POS0(RING_BYTES);
    *tx = (struct shm_tx){ .ctl = client ? &reg->c2s : &reg->s2c, .data = client ? c2s : s2c,
                           .size = RING_BYTES, .tail = pos0, .head_seen = pos0 };
    *rx = (struct shm_rx){ .ctl = client ? &reg->s2c : &reg->c2s, .data = client ? s2c : c2s,
                           .size = RING_BYTES, .mtu = mtu, .head = pos0, .head_pub = pos0 };
}

static int floor_server(void *argp, int fd_out)
{
    struct floor_args *a = argp;
    bench_pin_cpu(a->cpu);
    struct shm_tx tx;
    struct shm_rx rx;
    rings(a->reg, 0, &tx, &rx, (uint32_t)a->size);
    char ok = 1;
    if (write(fd_out, &ok, 1) != 1)
        return 1;
    close(fd_out);
    const uint8_t *bufs[BURST];
    uint32_t lens[BURST];
    for (;;) {
        shm_rx_release(&rx);
        int n = shm_rx_read(&rx, bufs, lens, BURST);
        for (int i = 0; i < n; i++) {
            uint8_t *p;
            while (!(p = shm_tx_reserve(&tx, lens[i])))
                ;
            memcpy(p, bufs[i], lens[i]);
            shm_tx_commit(&tx, lens[i]);
        }
    }
}

int shm_echo_run(size_t size, unsigned depth, double duration_s, int server_cpu, int client_cpu,
                 struct bench_result *r)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    if (size < sizeof(unsigned))
        size = sizeof(unsigned);
    if (size > 65536 || depth > MAX_DEPTH)
        return -1;
    size_t bytes = SHM_HDR_BYTES + 2 * (size_t)RING_BYTES;
    struct shm_region *reg = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (reg == MAP_FAILED)
        return -1;
    struct floor_args a = { reg, size, server_cpu };
    char ok;
    pid_t pid = bench_fork_server(floor_server, &a, &ok, 1);
    if (pid < 0) {
        munmap(reg, bytes);
        return -1;
    }
    bench_pin_cpu(client_cpu);
    struct shm_tx tx;
    struct shm_rx rx;
    rings(reg, 1, &tx, &rx, (uint32_t)size);
    static uint8_t msg[65536];
    static uint64_t sent_tsc[MAX_DEPTH];
    static struct lat_hist lat;
    memset(&lat, 0, sizeof(lat));
    memset(msg, 0x5A, size);
    uint64_t start = udrpc__rdtsc();
    uint64_t warm_end = start + udrpc__us_to_tsc(ck, 300000);
    uint64_t end = warm_end + udrpc__us_to_tsc(ck, (uint64_t)(duration_s * 1e6));
    for (unsigned i = 0; i < depth; i++) {
        uint8_t *p = shm_tx_reserve(&tx, (uint32_t)size);
        memcpy(msg, &i, sizeof(i));
        memcpy(p, msg, size);
        sent_tsc[i] = udrpc__rdtsc();
        shm_tx_commit(&tx, (uint32_t)size);
    }
    const uint8_t *bufs[BURST];
    uint32_t lens[BURST];
    uint64_t done = 0, now = start;
    while (now < end) {
        shm_rx_release(&rx);
        int n = shm_rx_read(&rx, bufs, lens, BURST);
        now = udrpc__rdtsc();
        for (int i = 0; i < n; i++) {
            unsigned idx;
            memcpy(&idx, bufs[i], sizeof(idx));
            if (idx >= depth)
                continue;
            if (now >= warm_end) {
                hist_add(&lat, now - sent_tsc[idx]);
                done++;
            }
            uint8_t *p;
            while (!(p = shm_tx_reserve(&tx, (uint32_t)size)))
                ;
            memcpy(msg, &idx, sizeof(idx));
            memcpy(p, msg, size);
            sent_tsc[idx] = now;
            shm_tx_commit(&tx, (uint32_t)size);
        }
    }
    bench_stop_server(pid);
    munmap(reg, bytes);
    r->count = done;
    r->resent = 0;
    r->rpc_per_s = (double)done / duration_s;
    hist_summarize(&lat, ck->ns_per_tsc, r);
    return 0;
}

double memcpy_bytes_per_s(size_t size, double duration_s, int cpu)
{
    bench_pin_cpu(cpu);
    uint8_t *src = malloc(size), *dst = malloc(size);
    if (!src || !dst) {
        free(src);
        free(dst);
        return 0;
    }
    memset(src, 0x5A, size);
    memset(dst, 0, size);
    const struct udrpc_clock *ck = udrpc__clock_init();
    uint64_t t0 = udrpc__rdtsc(), end = t0 + udrpc__us_to_tsc(ck, (uint64_t)(duration_s * 1e6));
    uint64_t copies = 0, now = t0;
    while (now < end) {
        memcpy(dst, src, size);
        __asm__ volatile("" : : "r"(dst) : "memory");
        src[copies % size] ^= 1; /* not the same copy again */
        copies++;
        now = udrpc__rdtsc();
    }
    double secs = (double)(now - t0) * ck->ns_per_tsc / 1e9;
    free(src);
    free(dst);
    return secs > 0 ? (double)copies * (double)size / secs : 0;
}
