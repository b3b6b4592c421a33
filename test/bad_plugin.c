/* bad_plugin.c — plugins rpc_bench must refuse with a clear message:
 * built with NO_ENTRY (no udrpc_plugin_entry symbol) and with
 * WRONG_VERSION (interface version 99). test/rpc_bench_plugin_test.sh. */
#include "udrpc_plugin.h"

static void handler(udrpc_req_handle_t *h, void *ctx)
{
    (void)ctx;
    udrpc_enqueue_response(h);
}

static const udrpc_plugin_handler_t handlers[] = {
    { 10, UDRPC_HANDLER_FG, "NOP", handler, NULL, NULL },
};

static const udrpc_plugin_t plugin = {
    .version = 99,
    .name = "bad",
    .n_handlers = 1,
    .handlers = handlers,
};

#ifdef NO_ENTRY
__attribute__((visibility("default"))) const udrpc_plugin_t *not_the_entry(void);
const udrpc_plugin_t *not_the_entry(void)
#else
__attribute__((visibility("default"))) const udrpc_plugin_t *udrpc_plugin_entry(void);
const udrpc_plugin_t *udrpc_plugin_entry(void)
#endif
{
    return &plugin;
}
