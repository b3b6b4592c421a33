/* bench_util.c — see bench_util.h. */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t bucket_upper(unsigned b)
{
    if (b < HIST_SUB)
        return b;
    unsigned msb = b / HIST_SUB + HIST_SUB_BITS - 1, sub = b % HIST_SUB;
    return ((uint64_t)(HIST_SUB + sub + 1) << (msb - HIST_SUB_BITS)) - 1;
}

uint64_t hist_percentile(const struct lat_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= want) {
            uint64_t v = bucket_upper(b);
            return v < h->max_tsc ? v : h->max_tsc;
        }
    }
    return h->max_tsc;
}

void hist_summarize(const struct lat_hist *h, double ns_per_tsc, struct bench_result *r)
{
    r->p50_us = (double)hist_percentile(h, 0.50) * ns_per_tsc / 1000.0;
    r->p90_us = (double)hist_percentile(h, 0.90) * ns_per_tsc / 1000.0;
    r->p99_us = (double)hist_percentile(h, 0.99) * ns_per_tsc / 1000.0;
    r->p999_us = (double)hist_percentile(h, 0.999) * ns_per_tsc / 1000.0;
    r->max_us = (double)h->max_tsc * ns_per_tsc / 1000.0;
}

void bench_pin_cpu(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof(set), &set);
}

const char *bench_server_netns, *bench_server_host;

/* The child enters bench_server_netns: 0, or 1 where it cannot. */
static int enter_server_netns(void)
{
    if (!bench_server_netns)
        return 0;
    char path[256];
    snprintf(path, sizeof(path), "/run/netns/%s", bench_server_netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "rpc_bench: cannot enter network namespace %s\n", bench_server_netns);
        return 1;
    }
    close(fd);
    return 0;
}

pid_t bench_fork_server(int (*fn)(void *arg, int fd), void *arg, void *buf, size_t len)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* A busy-polling server must not outlive a bench that failed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        if (enter_server_netns() != 0)
            _exit(1);
        _exit(fn(arg, p[1]));
    }
    close(p[1]);
    if (pid < 0 || read(p[0], buf, len) <= 0) {
        close(p[0]);
        if (pid > 0)
            bench_stop_server(pid);
        return -1;
    }
    close(p[0]);
    return pid;
}

void bench_stop_server(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int bench_read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    int err = ferror(f) ? -EIO : buf ? 0 : -ENOMEM;
    fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
