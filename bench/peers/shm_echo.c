/*
 * shm_echo.c — the memory floor for request/response between two
 * processes: the shm transport's own rings (transport/shm/shm_ring.h), one
 * each way in a shared mapping, and nothing else. The client keeps depth
 * messages of size bytes in flight, each carrying its index; the server
 * copies each back as it reads it; both busy-poll. What udrpc's shm
 * transport adds on top of this is the runtime's cost. A message of more
 * than 64 KiB goes as records of 64 KiB, as udrpc's packets do; a ring
 * too full for the next record never stalls the client, which reads the
 * echoes meanwhile (the server may wait for room in its own ring).
 *
 * Its copies: the client's into the ring, and the server's from one ring
 * to the other. udrpc's echo makes five (the client's into the ring and
 * out of it, the server's out of the ring, its handler's, and into the
 * ring), so for large messages this is the bound of a transport that
 * copies, not only of the runtime (four when the request fits one
 * packet: its handler reads it in the ring).
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
    bool other; /* (never: the floor sends no references) */
    uint32_t lens[BURST];
    for (;;) {
        shm_rx_release(&rx);
        int n = shm_rx_read(&rx, bufs, lens, BURST, &other);
        for (int i = 0; i < n; i++) {
            uint8_t *p;
            while (!(p = shm_tx_reserve(&tx, lens[i])))
                ;
            memcpy(p, bufs[i], lens[i]);
            shm_tx_commit(&tx, lens[i], SHM_REC_PKT);
        }
    }
}

/* A message of more than CHUNK bytes goes as several records of CHUNK
 * (the last shorter), as udrpc's shm packets are at most 64 KiB: each
 * record starts with the message's index, its top bit set on the last. */
#define CHUNK 65536u
#define LAST_BIT 0x80000000u

int shm_echo_run(size_t size, unsigned depth, double duration_s, int server_cpu, int client_cpu,
                 struct bench_result *r)
{
    const struct udrpc_clock *ck = udrpc__clock_init();
    if (size < sizeof(unsigned))
        size = sizeof(unsigned);
    if (size > (64u << 20) || depth == 0 || depth > MAX_DEPTH)
        return -1;
    uint32_t rec_max = size < CHUNK ? (uint32_t)size : CHUNK;
    size_t bytes = SHM_HDR_BYTES + 2 * (size_t)RING_BYTES;
    struct shm_region *reg = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint8_t *msg = malloc(size);
    if (reg == MAP_FAILED || !msg) {
        if (reg != MAP_FAILED)
            munmap(reg, bytes);
        free(msg);
        return -1;
    }
    struct floor_args a = { reg, rec_max, server_cpu };
    char ok;
    pid_t pid = bench_fork_server(floor_server, &a, &ok, 1);
    if (pid < 0) {
        munmap(reg, bytes);
        free(msg);
        return -1;
    }
    bench_pin_cpu(client_cpu);
    struct shm_tx tx;
    struct shm_rx rx;
    rings(reg, 1, &tx, &rx, rec_max);
    static uint64_t sent_tsc[MAX_DEPTH];
    static unsigned ready[MAX_DEPTH]; /* messages to send, in order */
    static struct lat_hist lat;
    memset(&lat, 0, sizeof(lat));
    memset(msg, 0x5A, size);
    unsigned ready_head = 0, n_ready = depth;
    for (unsigned i = 0; i < depth; i++)
        ready[i] = i;
    size_t off = 0; /* sent of ready[ready_head] */
    uint64_t start = udrpc__rdtsc();
    uint64_t warm_end = start + udrpc__us_to_tsc(ck, 300000);
    uint64_t end = warm_end + udrpc__us_to_tsc(ck, (uint64_t)(duration_s * 1e6));
    const uint8_t *bufs[BURST];
    bool other; /* (never: the floor sends no references) */
    uint32_t lens[BURST];
    uint64_t done = 0, now = start;
    while (now < end) {
        /* Send what fits; the ring full, read the echoes (the server may
         * wait for room in its own ring, so the client never waits). */
        while (n_ready) {
            unsigned idx = ready[ready_head];
            uint32_t len = size - off < rec_max ? (uint32_t)(size - off) : rec_max;
            uint8_t *p = shm_tx_reserve(&tx, len);
            if (!p)
                break;
            unsigned tag = idx | (off + len == size ? LAST_BIT : 0);
            memcpy(msg + off, &tag, sizeof(tag));
            memcpy(p, msg + off, len);
            if (off == 0)
                sent_tsc[idx] = udrpc__rdtsc();
            shm_tx_commit(&tx, len, SHM_REC_PKT);
            off += len;
            if (off == size) {
                off = 0;
                ready_head = (ready_head + 1) % depth;
                n_ready--;
            }
        }
        shm_rx_release(&rx);
        int n = shm_rx_read(&rx, bufs, lens, BURST, &other);
        now = udrpc__rdtsc();
        for (int i = 0; i < n; i++) {
            unsigned tag;
            memcpy(&tag, bufs[i], sizeof(tag));
            unsigned idx = tag & ~LAST_BIT;
            if (!(tag & LAST_BIT) || idx >= depth)
                continue;
            if (now >= warm_end) {
                hist_add(&lat, now - sent_tsc[idx]);
                done++;
            }
            ready[(ready_head + n_ready) % depth] = idx;
            n_ready++;
        }
    }
    bench_stop_server(pid);
    munmap(reg, bytes);
    free(msg);
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
