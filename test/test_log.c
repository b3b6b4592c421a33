/*
 * test_log.c — the logger: levels from UDRPC_LOG, the line format (level,
 * rpc id, session), the per-call-site rate limit, the program's own log
 * function (udrpc_set_log_fn), and compile-out: this
 * file is built with UDRPC_LOG_MIN_LEVEL = debug, so a trace call's
 * arguments are never evaluated, whatever the runtime level.
 */
#undef UDRPC_LOG_MIN_LEVEL
#define UDRPC_LOG_MIN_LEVEL UDRPC_LVL_DEBUG

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

struct fake_rpc {
    int rpc_id;
};

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

/* Runs fn with stderr going to a temporary file; returns what it wrote. */
static char captured[4096];
static const char *capture(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(captured, 1, sizeof(captured) - 1, tmp);
    captured[n] = 0;
    fclose(tmp);
    return captured;
}

static struct fake_rpc rpc3_storage = { 3 };
static struct fake_rpc *rpc3 = &rpc3_storage;

static void log_debug_and_trace(void)
{
    UDRPC_LOG_DEBUG(rpc3, 7, "debug %d", 5);
    UDRPC_LOG_AT(UDRPC_LVL_TRACE, rpc3, 7, "trace %d", side_effect());
}

static void log_limited_20(void)
{
    for (int i = 0; i < 20; i++)
        UDRPC_LOG_LIMITED(UDRPC_LVL_WARN, rpc3, i, "limited %d", i);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int program_lines, program_level;
static char program_line[320];

static void to_program(int level, const char *line, void *ctx)
{
    (*(int *)ctx)++;
    program_level = level;
    snprintf(program_line, sizeof(program_line), "%s", line);
}

int main(void)
{
    /* Levels from the environment. */
    setenv("UDRPC_LOG", "trace", 1);
    CHECK_EQ(udrpc__log_level_init(), UDRPC_LVL_TRACE);
    setenv("UDRPC_LOG", "error", 1);
    CHECK_EQ(udrpc__log_level_init(), UDRPC_LVL_ERROR);
    setenv("UDRPC_LOG", "loud", 1);
    CHECK_EQ(udrpc__log_level_init(), UDRPC_LVL_WARN); /* unknown: the default */
    unsetenv("UDRPC_LOG");
    CHECK_EQ(udrpc__log_level_init(), UDRPC_LVL_WARN);

    /* At runtime level trace: the debug line prints in the documented
     * format; the trace line is compiled out (its argument not even
     * evaluated). */
    udrpc__log_level = UDRPC_LVL_TRACE;
    const char *out = capture(log_debug_and_trace);
    CHECK(strcmp(out, "udrpc debug rpc=3 session=7: debug 5\n") == 0);
    CHECK_EQ(evaluated, 0);

    /* At runtime level warn: nothing. */
    udrpc__log_level = UDRPC_LVL_WARN;
    out = capture(log_debug_and_trace);
    CHECK_EQ(out[0], '\0');

    /* A call site a remote sender can trigger: 5 lines a second at most. */
    out = capture(log_limited_20);
    CHECK_EQ(count_lines(out), UDRPC_LOG_BURST);
    CHECK(strstr(out, "udrpc warn rpc=3 session=0: limited 0\n") == out);

    /* The program's own log function: every line, nothing on stderr;
     * NULL gives stderr back. */
    udrpc__log_level = UDRPC_LVL_TRACE;
    udrpc_set_log_fn(to_program, &program_lines);
    out = capture(log_debug_and_trace);
    CHECK_EQ(out[0], '\0');
    CHECK_EQ(program_lines, 1);
    CHECK_EQ(program_level, UDRPC_LVL_DEBUG);
    CHECK(!strcmp(program_line, "rpc=3 session=7: debug 5"));
    udrpc_set_log_fn(NULL, NULL);
    out = capture(log_debug_and_trace);
    CHECK(strcmp(out, "udrpc debug rpc=3 session=7: debug 5\n") == 0);
    CHECK_EQ(program_lines, 1);
    printf("test_log: ok\n");
    return 0;
}
