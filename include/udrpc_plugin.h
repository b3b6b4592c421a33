/**
 * @file udrpc_plugin.h
 * udrpc_plugin.h — handlers in a shared library, for rpc_bench and the
 * gate (bench/udrpc_gate) to run inside their own server.
 *
 * A plugin is a shared object that exports one function,
 * udrpc_plugin_entry(), returning a udrpc_plugin_t that describes its
 * handlers and, optionally, how a client makes their requests and checks
 * their responses:
 *
 *   rpc_bench --handler-lib ./libmyhandlers.so [--plugin-arg STR]
 *   bench/gate_workload --handler-lib ./libmyhandlers.so --req-type 10
 *
 * The host loads it with dlopen, checks version, calls init(arg) once, and
 * registers every handler on its server's Nexus; the server endpoint's
 * rpc_context is init's state, so handlers get it as their ctx. The host
 * provides udrpc's functions: build the plugin with -fPIC -shared and do
 * not link libudrpc into it (the host's copy is the one that runs).
 *
 * Threads: the server runs in another process (the default), another
 * thread (rpc_bench --threads) or the client's thread (loop transport,
 * gate_workload). make_request and check_response run on the client's
 * thread, handlers on the server's, with the same state: they must not
 * touch what the handlers write.
 *
 * Versioning: version is UDRPC_PLUGIN_VERSION of the header the plugin was
 * built with; a host refuses any other. A field added at the end bumps it.
 */
#ifndef UDRPC_PLUGIN_H
#define UDRPC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "udrpc.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The plugin interface's version; hosts take exactly this one. */
#define UDRPC_PLUGIN_VERSION 1
/** The one symbol a host looks up. */
#define UDRPC_PLUGIN_ENTRY_SYMBOL "udrpc_plugin_entry"

/** One request type a plugin serves. */
typedef struct udrpc_plugin_handler {
    uint8_t req_type;            /**< 1..255; rpc_bench keeps 1 and 2 */
    udrpc_handler_mode_t mode;   /**< UDRPC_HANDLER_FG or _BG */
    const char *name;            /**< for tables and reports ("GET") */
    udrpc_req_handler_t handler; /**< as for udrpc_register_handler */
    /** Client, optional: writes request number seq (0, 1, ...) into buf
     *  (cap bytes) and returns its size, or -1 if it does not fit. NULL:
     *  the host's payload generator (rpc_bench --payload) makes them. */
    long (*make_request)(void *state, uint64_t seq, uint8_t *buf, size_t cap);
    /** Client, optional: 0 if resp is a right answer to req, else -1.
     *  NULL: the host's --expect check, if any. */
    int (*check_response)(void *state, const uint8_t *req, size_t req_len,
                          const uint8_t *resp, size_t resp_len);
} udrpc_plugin_handler_t;

/** What udrpc_plugin_entry() returns: static storage, never freed. */
typedef struct udrpc_plugin {
    uint32_t version;            /**< UDRPC_PLUGIN_VERSION */
    const char *name;            /**< for reports ("kv") */
    /** Optional: the state for handlers (rpc_context) and the client
     *  hooks, from the host's --plugin-arg (NULL if none). Returns NULL
     *  and sets *why on failure. */
    void *(*init)(const char *arg, const char **why);
    /** Optional: frees init's state, once, after every endpoint is gone. */
    void (*fini)(void *state);
    /** Background handlers need this many Nexus workers (0: none). */
    unsigned bg_threads;
    unsigned n_handlers;                     /**< entries in handlers */
    const udrpc_plugin_handler_t *handlers;  /**< one per request type */
} udrpc_plugin_t;

/** The entry point a plugin exports, named UDRPC_PLUGIN_ENTRY_SYMBOL:
 *  const udrpc_plugin_t *udrpc_plugin_entry(void). */
typedef const udrpc_plugin_t *(*udrpc_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
