/* bench_plugin.c — see bench_plugin.h. */
#include "bench_plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* bench_user_handler finds the handler by type; one host loads one plugin. */
static const struct bench_plugin *loaded;

int bench_plugin_load(struct bench_plugin *bp, const char *path, const char *arg,
                      const uint8_t *reserved, unsigned n_reserved)
{
    memset(bp, 0, sizeof(*bp));
    bp->path = path;
    /* A bare name would be looked up in the library path, not here. */
    char local[4096];
    if (!strchr(path, '/') && strlen(path) + 3 < sizeof(local)) {
        snprintf(local, sizeof(local), "./%s", path);
        path = local;
    }
    bp->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!bp->dl) {
        fprintf(stderr, "plugin %s: cannot load: %s\n", bp->path, dlerror());
        return -1;
    }
    udrpc_plugin_entry_fn entry;
    void *sym = dlsym(bp->dl, UDRPC_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof(entry));
    if (!entry) {
        fprintf(stderr, "plugin %s: no symbol %s (see udrpc_plugin.h)\n", bp->path,
                UDRPC_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    bp->p = entry();
    if (!bp->p) {
        fprintf(stderr, "plugin %s: %s() returned NULL\n", bp->path, UDRPC_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    if (bp->p->version != UDRPC_PLUGIN_VERSION) {
        fprintf(stderr, "plugin %s: interface version %u, this host takes %d: rebuild it "
                        "against this udrpc_plugin.h\n",
                bp->path, bp->p->version, UDRPC_PLUGIN_VERSION);
        goto fail;
    }
    if (bp->p->n_handlers == 0 || !bp->p->handlers) {
        fprintf(stderr, "plugin %s: no handlers\n", bp->path);
        goto fail;
    }
    for (unsigned i = 0; i < bp->p->n_handlers; i++) {
        const udrpc_plugin_handler_t *h = &bp->p->handlers[i];
        if (!h->handler || h->req_type == 0 || bp->by_type[h->req_type]) {
            fprintf(stderr, "plugin %s: handler %u: %s\n", bp->path, i,
                    !h->handler ? "no function" : h->req_type == 0 ? "request type 0"
                                                                   : "its type is taken twice");
            goto fail;
        }
        for (unsigned r = 0; r < n_reserved; r++)
            if (h->req_type == reserved[r]) {
                fprintf(stderr, "plugin %s: request type %u is the host's own\n", bp->path,
                        h->req_type);
                goto fail;
            }
        bp->by_type[h->req_type] = h;
    }
    if (bp->p->init) {
        const char *why = "init failed";
        bp->state = bp->p->init(arg, &why);
        if (!bp->state) {
            fprintf(stderr, "plugin %s: %s\n", bp->path, why);
            goto fail;
        }
    }
    loaded = bp;
    return 0;
fail:
    dlclose(bp->dl);
    bp->dl = NULL;
    bp->p = NULL;
    return -1;
}

int bench_plugin_register(struct bench_plugin *bp, udrpc_nexus_t *nx)
{
    for (unsigned i = 0; i < bp->p->n_handlers; i++) {
        const udrpc_plugin_handler_t *h = &bp->p->handlers[i];
        int ret = udrpc_register_handler(nx, h->req_type, bench_user_handler, h->mode);
        if (ret != 0) {
            fprintf(stderr, "plugin %s: handler %s (type %u): %s%s\n", bp->path,
                    h->name ? h->name : "?", h->req_type, udrpc_strerror(ret),
                    h->mode == UDRPC_HANDLER_BG ? " (a background handler needs bg_threads)"
                                                : "");
            return -1;
        }
    }
    return 0;
}

void bench_plugin_unload(struct bench_plugin *bp)
{
    if (!bp->dl)
        return;
    if (bp->p->fini && bp->state)
        bp->p->fini(bp->state);
    dlclose(bp->dl);
    if (loaded == bp)
        loaded = NULL;
    memset(bp, 0, sizeof(*bp));
}

__attribute__((noinline)) void bench_user_handler(udrpc_req_handle_t *h, void *ctx)
{
    loaded->by_type[udrpc_req_type(h)]->handler(h, ctx);
}

__attribute__((noinline)) long bench_user_request(const struct bench_plugin *bp, uint8_t t,
                                                  uint64_t seq, uint8_t *buf, size_t cap)
{
    return bp->by_type[t]->make_request(bp->state, seq, buf, cap);
}

__attribute__((noinline)) int bench_user_check(const struct bench_plugin *bp, uint8_t t,
                                               const uint8_t *req, size_t req_len,
                                               const uint8_t *resp, size_t resp_len)
{
    return bp->by_type[t]->check_response(bp->state, req, req_len, resp, resp_len);
}
