/* bench_util.c — see bench_util.h. */
#include "bench_util.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void lat_init(struct lat_samples *l, size_t cap)
{
    l->tsc = malloc(cap * sizeof(*l->tsc));
    l->n = 0;
    l->cap = l->tsc ? cap : 0;
}

void lat_free(struct lat_samples *l)
{
    free(l->tsc);
    l->tsc = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const struct lat_samples *l, double p, double ns_per_tsc)
{
    if (l->n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(l->n - 1));
    return (double)l->tsc[i] * ns_per_tsc / 1000.0;
}

void lat_summarize(struct lat_samples *l, double ns_per_tsc, struct bench_result *r)
{
    qsort(l->tsc, l->n, sizeof(*l->tsc), cmp_u64);
    r->p50_us = pct(l, 0.50, ns_per_tsc);
    r->p90_us = pct(l, 0.90, ns_per_tsc);
    r->p99_us = pct(l, 0.99, ns_per_tsc);
    r->p999_us = pct(l, 0.999, ns_per_tsc);
    r->max_us = pct(l, 1.0, ns_per_tsc);
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

pid_t bench_fork_server(int (*fn)(void *arg, int fd), void *arg, void *buf, size_t len)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
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
