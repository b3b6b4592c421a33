/*
 * kv_server — an in-memory key-value server on udrpc. N worker threads,
 * each owning a udrpc_t (rpc_id = thread index) and a partition of the
 * table; GET, PUT and DELETE are foreground handlers on the owning thread,
 * SCAN a background handler on the Nexus's worker pool (it walks the whole
 * partition, under the partition's read lock). Wire format: kv.h.
 *
 *   kv_server [--uri host:port] [--threads N] [--bg-threads M]
 *             [--idle-sleep-us U]
 *
 * Threads sleep after U microseconds without work (default 20; 0: busy-
 * poll): with more threads than cores (2 server threads and a client on a
 * 2-core machine), busy-polling threads take turns in scheduler time
 * slices and every request waits for one (kv_load's default mix, measured
 * here: 6,845 ops/s busy-polling, 161,610-216,268 sleeping after 5-50 us).
 * Prints "kv_server at URI threads N" once every thread serves, and runs
 * until SIGINT or SIGTERM. The transport follows UDRPC_TRANSPORT.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kv_store.h"
#include "udrpc.h"

static unsigned n_threads = 2;

static void handle_info(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 5);
    if (resp) {
        resp->buf[0] = KV_OK;
        kv_put32(resp->buf + 1, n_threads);
    }
    udrpc_enqueue_response(h);
}

/* --------------------------------------------------------- threads ---- */

static unsigned idle_sleep_us = 20;
static atomic_bool stop;
static atomic_uint ready;

struct worker {
    pthread_t thread;
    udrpc_nexus_t *nx;
    unsigned id;
    struct kv_part part;
    int err;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.idle_sleep_us = idle_sleep_us;
    udrpc_t *rpc = udrpc_create(w->nx, (uint8_t)w->id, &w->part, NULL, &cfg);
    if (!rpc) {
        w->err = errno;
        atomic_fetch_add(&ready, 1);
        return NULL;
    }
    atomic_fetch_add(&ready, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        udrpc_run_event_loop(rpc, 100);
    udrpc_destroy(rpc);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop, true);
}

int main(int argc, char **argv)
{
    const char *uri = "127.0.0.1:31851";
    unsigned bg_threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--uri") && i + 1 < argc)
            uri = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bg-threads") && i + 1 < argc)
            bg_threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--idle-sleep-us") && i + 1 < argc)
            idle_sleep_us = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: kv_server [--uri host:port] [--threads N] "
                            "[--bg-threads M] [--idle-sleep-us U]\n");
            return 2;
        }
    }
    if (n_threads == 0 || n_threads > KV_MAX_THREADS || bg_threads == 0) {
        fprintf(stderr, "kv_server: threads 1..%d, bg-threads at least 1\n", KV_MAX_THREADS);
        return 2;
    }
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    ncfg.bg_threads = bg_threads;
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, &ncfg);
    if (!nx) {
        fprintf(stderr, "kv_server: %s: %s\n", uri, udrpc_strerror(-errno));
        return 1;
    }
    udrpc_register_handler(nx, KV_GET, kv_handle_get, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_PUT, kv_handle_put, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_DELETE, kv_handle_delete, UDRPC_HANDLER_FG);
    udrpc_register_handler(nx, KV_SCAN, kv_handle_scan, UDRPC_HANDLER_BG);
    udrpc_register_handler(nx, KV_INFO, handle_info, UDRPC_HANDLER_FG);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct worker *w = calloc(n_threads, sizeof(*w));
    if (!w)
        return 1;
    int ret = 0;
    for (unsigned i = 0; i < n_threads; i++) {
        w[i].nx = nx;
        w[i].id = i;
        if (kv_part_init(&w[i].part) != 0 ||
            pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "kv_server: out of memory or threads\n");
            return 1;
        }
    }
    while (atomic_load(&ready) < n_threads) {
        struct timespec ms = { .tv_nsec = 1000000 };
        nanosleep(&ms, NULL);
    }
    for (unsigned i = 0; i < n_threads; i++)
        if (w[i].err) {
            fprintf(stderr, "kv_server: thread %u: udrpc_create: %s\n", i,
                    udrpc_strerror(-w[i].err));
            atomic_store(&stop, true);
            ret = 1;
        }
    if (!ret) {
        printf("kv_server at %s threads %u\n", udrpc_nexus_uri(nx), n_threads);
        fflush(stdout);
    }
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(w[i].thread, NULL);
    for (unsigned i = 0; i < n_threads; i++) {
        if (!ret)
            fprintf(stderr, "kv_server: thread %u: %llu ops, %zu keys\n", i,
                    (unsigned long long)w[i].part.ops, w[i].part.n_items);
        kv_part_fini(&w[i].part);
    }
    free(w);
    udrpc_nexus_destroy(nx);
    return ret;
}
