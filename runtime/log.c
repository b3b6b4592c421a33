/* log.c — the logger behind log.h: one line per event, to stderr or to
 * the program's own function (udrpc_set_log_fn). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int udrpc__log_level = -1;

/* The program's log function and its context (udrpc_set_log_fn), or
 * NULL: stderr. Set once, before the library logs, or at any time: a
 * line goes to one or the other whole. */
static _Atomic(udrpc_log_fn_t) log_fn;
static void *_Atomic log_ctx;

void udrpc_set_log_fn(udrpc_log_fn_t fn, void *ctx)
{
    atomic_store(&log_ctx, ctx);
    atomic_store(&log_fn, fn);
}

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

int udrpc__log_level_init(void)
{
    const char *env = getenv("UDRPC_LOG");
    int level = UDRPC_LVL_WARN;
    for (int i = 0; env && i <= UDRPC_LVL_TRACE; i++)
        if (strcmp(env, level_names[i]) == 0)
            level = i;
    udrpc__log_level = level;
    return level;
}

int udrpc__log_allow(_Atomic uint64_t *window_start_ns, _Atomic uint32_t *count)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t start = atomic_load_explicit(window_start_ns, memory_order_relaxed);
    if (now - start >= 1000000000ull) {
        atomic_store_explicit(window_start_ns, now, memory_order_relaxed);
        atomic_store_explicit(count, 0, memory_order_relaxed);
    }
    return atomic_fetch_add_explicit(count, 1, memory_order_relaxed) < UDRPC_LOG_BURST;
}

void udrpc__log(int level, int rpc_id, int session, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    udrpc_log_fn_t fn = atomic_load(&log_fn);
    if (fn) {
        char line[320];
        snprintf(line, sizeof(line), "rpc=%d session=%d: %s", rpc_id, session, msg);
        fn(level, line, atomic_load(&log_ctx));
        return;
    }
    fprintf(stderr, "udrpc %s rpc=%d session=%d: %s\n", level_names[level], rpc_id,
            session, msg);
}
