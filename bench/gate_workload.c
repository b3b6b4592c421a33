/*
 * gate_workload — the fixed workload the regression gate counts
 * instructions on: a client and a server endpoint in one thread, driven
 * alternately (client_step, server_step), COUNT echo RPCs of SIZE bytes at
 * DEPTH in flight after WARMUP unmeasured ones. One thread makes the count
 * repeatable under callgrind; the two steps are separate, non-inlined
 * functions so callgrind can attribute instructions to each side.
 *
 *   gate_workload --transport loop|udp [--count N] [--warmup N]
 *                 [--depth D] [--size B] [--cc 0|1]
 *                 [--handler-lib LIB.so [--plugin-arg ARG] --req-type T]
 *
 * --handler-lib runs a user's plugin (udrpc_plugin.h) instead of the
 * built-in echo: requests of type T come from its make_request (else SIZE
 * bytes of a pattern) and responses go through its check_response, each
 * through bench_plugin.h's never-inlined calls, so that cg_split can report
 * the plugin's instructions apart from udrpc's.
 *
 * --cc 1 turns Timely on for an idle network: every RTT under T_low. (The
 * thresholds are raised to seconds, since callgrind slows the loop ~50x
 * and would otherwise turn CPU time into "queueing".) The gate compares
 * its instruction count with --cc 0's: the cost of congestion control
 * when there is no congestion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "bench_plugin.h"
#include "udrpc.h"

static udrpc_t *cli, *srv;
static int session, connected;
static unsigned long issued, completed, total;
static udrpc_msgbuf_t reqs[256], resps[256];
static struct bench_plugin plugin;
static uint8_t req_type = 1;
static int plugin_requests, plugin_checks; /* the plugin has make_request, check_response */
static uint64_t seq;

static void echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void cont(void *ctx, void *tag, int status);

/* With a plugin: request i made by it, and the response checked by it. */
static void plugin_send(unsigned i)
{
    if (plugin_requests) {
        long n = bench_user_request(&plugin, req_type, seq++, reqs[i].buf, reqs[i].max_size);
        if (n < 0) {
            fprintf(stderr, "gate_workload: the plugin's request does not fit in %zu bytes\n",
                    reqs[i].max_size);
            exit(1);
        }
        udrpc_msgbuf_resize(&reqs[i], (size_t)n);
    }
    udrpc_enqueue_request(cli, session, req_type, &reqs[i], &resps[i], cont,
                          (void *)(uintptr_t)i);
}

__attribute__((noinline)) static void plugin_cont(unsigned i)
{
    if (plugin_checks && bench_user_check(&plugin, req_type, reqs[i].buf, reqs[i].size,
                                          resps[i].buf, resps[i].size) != 0) {
        fprintf(stderr, "gate_workload: the plugin's check_response refused a response\n");
        exit(1);
    }
    completed++;
    if (issued < total) {
        issued++;
        plugin_send(i);
    }
}

static void cont(void *ctx, void *tag, int status)
{
    (void)ctx;
    if (status != 0) {
        fprintf(stderr, "gate_workload: request failed: %s\n", udrpc_strerror(status));
        exit(1);
    }
    if (plugin.dl) { /* the echo's path below stays as it was: the baseline's */
        plugin_cont((unsigned)(uintptr_t)tag);
        return;
    }
    completed++;
    if (issued < total) {
        issued++;
        unsigned i = (unsigned)(uintptr_t)tag;
        udrpc_enqueue_request(cli, session, 1, &reqs[i], &resps[i], cont, tag);
    }
}

static void sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s;
    (void)err;
    (void)ctx;
    connected = ev == UDRPC_SM_CONNECTED ? 1 : -1;
}

__attribute__((noinline)) void client_step(void);
__attribute__((noinline)) void server_step(void);
void client_step(void) { udrpc_run_event_loop_once(cli); }
void server_step(void) { udrpc_run_event_loop_once(srv); }

static void run(unsigned long n, unsigned depth)
{
    total = issued + n;
    unsigned long target = completed + n;
    for (unsigned i = 0; i < depth && issued < total; i++) {
        issued++;
        if (plugin.dl)
            plugin_send(i);
        else
            udrpc_enqueue_request(cli, session, 1, &reqs[i], &resps[i], cont,
                                  (void *)(uintptr_t)i);
    }
    while (completed < target) {
        client_step();
        server_step();
    }
}

int main(int argc, char **argv)
{
    const char *transport = "loop";
    unsigned long count = 20000, warmup = 2000;
    unsigned depth = 8;
    size_t size = 32;
    int cc = 0;
    const char *lib = NULL, *plugin_arg = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--transport")) transport = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--warmup")) warmup = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--depth")) depth = (unsigned)strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--size")) size = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--cc")) cc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--handler-lib")) lib = argv[i + 1];
        else if (!strcmp(argv[i], "--plugin-arg")) plugin_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--req-type")) req_type = (uint8_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "gate_workload: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (lib) {
        if (bench_plugin_load(&plugin, lib, plugin_arg, NULL, 0) != 0)
            return 2;
        if (!plugin.by_type[req_type]) {
            fprintf(stderr, "gate_workload: plugin %s has no handler for --req-type %u\n", lib,
                    req_type);
            return 2;
        }
        plugin_requests = plugin.by_type[req_type]->make_request != NULL;
        plugin_checks = plugin.by_type[req_type]->check_response != NULL;
    }
    if (depth < 1 || depth > 256)
        depth = 8;
    udrpc_nexus_config_t ncfg;
    udrpc_nexus_config_default(&ncfg);
    ncfg.bg_threads = lib ? plugin.p->bg_threads : 0;
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", &ncfg);
    if (!nx || (lib ? bench_plugin_register(&plugin, nx)
                    : udrpc_register_handler(nx, 1, echo, UDRPC_HANDLER_FG)) != 0)
        return 1;
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = transport;
    cfg.rto_min_us = cfg.rto_max_us = 1000000; /* no timeouts: valgrind slows everything */
    cfg.peer_timeout_ms = 60000; /* no liveness scan in the measured part */
    cfg.connect_timeout_ms = 30000;
    cfg.cc = cc != 0;
    cfg.timely.t_low_us = 10000000;
    cfg.timely.t_high_us = 20000000;
    cli = udrpc_create(nx, 1, NULL, sm, &cfg);
    srv = udrpc_create(nx, 0, lib ? plugin.state : NULL, NULL, &cfg);
    if (!cli || !srv)
        return 1;
    session = udrpc_connect(cli, udrpc_nexus_uri(nx), 0);
    while (connected == 0) {
        client_step();
        server_step();
    }
    if (connected < 0)
        return 1;
    /* A plugin's requests and responses may be larger than SIZE. */
    size_t cap = lib && size < 65536 ? 65536 : size ? size : 1;
    for (unsigned i = 0; i < depth; i++) {
        udrpc_msgbuf_alloc(cli, cap, &reqs[i]);
        udrpc_msgbuf_alloc(cli, cap, &resps[i]);
        udrpc_msgbuf_resize(&reqs[i], size);
        memset(reqs[i].buf, (int)i, size);
    }
    run(warmup, depth); /* first-touch of buffers, allocator regions */
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_TOGGLE_COLLECT;
    run(count, depth);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_STOP_INSTRUMENTATION;
    printf("gate_workload: %s, %lu RPCs of type %u (%s) at depth %u, cc %s\n", transport, count,
           req_type, lib ? lib : "echo", depth, cc ? "on" : "off");
    udrpc_destroy(cli);
    udrpc_destroy(srv);
    udrpc_nexus_destroy(nx);
    bench_plugin_unload(&plugin);
    return 0;
}
