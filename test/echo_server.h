/*
 * echo_server.h — the server process of the multi-process tests
 * (test_kill, flood_test, scale_test): request type 1 is answered with the
 * request's bytes inverted, so a client can check every byte. Type 2
 * stalls the endpoint's thread: its handler sleeps for the milliseconds
 * in the request's first 4 bytes, then echoes the same way. The child
 * binds bind_uri, reports the URI it got through a pipe, serves until
 * killed, and dies with its parent; it runs in a fresh image of the test
 * (echo_server_exec_entry).
 */
#ifndef UDRPC_TEST_ECHO_SERVER_H
#define UDRPC_TEST_ECHO_SERVER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "test.h"
#include "udrpc.h"

static void echo_inverted(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    if (resp)
        for (size_t i = 0; i < req->size; i++)
            resp->buf[i] = (uint8_t)(0xFFu ^ req->buf[i]);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void stall_then_echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    uint32_t ms = 0;
    if (req->size >= 4)
        memcpy(&ms, req->buf, 4);
    usleep(ms * 1000u); /* the Rpc thread polls nothing meanwhile */
    echo_inverted(h, ctx);
}

/* The child: binds bind_uri, writes the URI it got to fd, serves until
 * killed. */
static __attribute__((unused, noreturn)) void echo_server_main(int fd, const char *bind_uri,
                                                                unsigned max_sessions)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(test_peer_enter(bind_uri, test_local_uri()), NULL);
    if (!nx || udrpc_register_handler(nx, 1, echo_inverted, UDRPC_HANDLER_FG) != 0 ||
        udrpc_register_handler(nx, 2, stall_then_echo, UDRPC_HANDLER_FG) != 0)
        _exit(3);
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    if (max_sessions)
        cfg.max_sessions = max_sessions;
    udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, &cfg);
    if (!rpc)
        _exit(4);
    char out[UDRPC_MAX_URI_LEN] = { 0 };
    strcpy(out, udrpc_nexus_uri(nx));
    if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
        _exit(5);
    for (;;)
        udrpc_run_event_loop(rpc, 1000);
}

/* The child runs in a fresh image of this program, not in the fork's copy:
 * a test forks its server again after its own Nexus thread runs (test_kill
 * restarts one), and a child that goes on from such a fork keeps any lock
 * that thread held at that moment. Under ASan the allocator's did in
 * rpc_bench, which forked the same way: the child's Nexus thread hung in
 * its first calloc. So the child execs /proc/self/exe with
 * ECHO_SERVER_ENV set, and this constructor runs the server before main. */
#define ECHO_SERVER_ENV "UDRPC_TEST_ECHO_SERVER"

__attribute__((constructor)) static void echo_server_exec_entry(void)
{
    const char *e = getenv(ECHO_SERVER_ENV);
    if (!e)
        return;
    int fd;
    unsigned max_sessions;
    char uri[257];
    if (sscanf(e, "%d %u %256s", &fd, &max_sessions, uri) != 3 ||
        strlen(uri) >= UDRPC_MAX_URI_LEN)
        _exit(6);
    unsetenv(ECHO_SERVER_ENV);
    echo_server_main(fd, uri, max_sessions);
}

/* Forks the server; *uri_out (UDRPC_MAX_URI_LEN bytes) gets its URI.
 * max_sessions 0: the default. */
static __attribute__((unused)) pid_t spawn_echo_server(const char *bind_uri, unsigned max_sessions, char *uri_out)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char env[64 + UDRPC_MAX_URI_LEN];
    snprintf(env, sizeof(env), "%s=%d %u %s", ECHO_SERVER_ENV, p[1], max_sessions, bind_uri);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* (kept across exec) */
        close(p[0]);
        putenv(env);
        execl("/proc/self/exe", "echo_server", (char *)NULL);
        _exit(7);
    }
    close(p[1]);
    CHECK_EQ(read(p[0], uri_out, UDRPC_MAX_URI_LEN), (long)UDRPC_MAX_URI_LEN);
    close(p[0]);
    return pid;
}

#endif
