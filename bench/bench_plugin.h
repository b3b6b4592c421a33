/* bench_plugin.h — loading a udrpc plugin (udrpc_plugin.h) into rpc_bench
 * and gate_workload, and the calls into it.
 *
 * Every call into the plugin goes through one of three functions that
 * are never inlined (bench_user_handler on the server, bench_user_request
 * and bench_user_check on the client), so that callgrind can tell the
 * plugin's instructions from udrpc's: bench/udrpc_gate reports them apart. */
#ifndef UDRPC_BENCH_PLUGIN_H
#define UDRPC_BENCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "udrpc_plugin.h"

struct bench_plugin {
    void *dl;
    const udrpc_plugin_t *p;
    void *state;
    const char *path;
    const udrpc_plugin_handler_t *by_type[256];
};

/* Loads path and calls its init(arg): 0, or -1 after printing why on
 * stderr (a file that does not load, no entry symbol, another version, a
 * malformed handler table, init's refusal). reserved: request types the
 * host keeps for itself (NULL-free list of n). */
int bench_plugin_load(struct bench_plugin *bp, const char *path, const char *arg,
                      const uint8_t *reserved, unsigned n_reserved);
/* Registers every handler on nx (through bench_user_handler): 0 or -1. */
int bench_plugin_register(struct bench_plugin *bp, udrpc_nexus_t *nx);
/* fini(state), then dlclose. */
void bench_plugin_unload(struct bench_plugin *bp);

/* The plugin's handler of h's type, called with the endpoint's context. */
void bench_user_handler(udrpc_req_handle_t *h, void *ctx);
/* The plugin's make_request for type t (it must have one). */
long bench_user_request(const struct bench_plugin *bp, uint8_t t, uint64_t seq, uint8_t *buf,
                        size_t cap);
/* The plugin's check_response for type t (it must have one). */
int bench_user_check(const struct bench_plugin *bp, uint8_t t, const uint8_t *req,
                     size_t req_len, const uint8_t *resp, size_t resp_len);

#endif
