/* log.c — the logger behind log.h: stderr, one line per event. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int udrpc__log_level = -1;

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

int udrpc__log_level_init(void)
{
    const char *env = getenv("UDRPC_LOG");
    int level = LOG_WARN;
    for (int i = 0; env && i <= LOG_TRACE; i++)
        if (strcmp(env, level_names[i]) == 0)
            level = i;
    udrpc__log_level = level;
    return level;
}

void udrpc__log(int level, int rpc_id, int session, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "udrpc %s rpc=%d session=%d: %s\n", level_names[level], rpc_id,
            session, msg);
}
