/*
 * fuzz_common.h — shared set-up of the fuzz targets: one Nexus with a
 * client and a server endpoint on the loop transport, connected for real,
 * so that fuzzed packets meet live sessions. Made once per process.
 */
#ifndef UDRPC_FUZZ_COMMON_H
#define UDRPC_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

static udrpc_nexus_t *fz_nx;
static udrpc_t *fz_cli, *fz_srv;
static int fz_session = -1, fz_connected;

static void fz_echo(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    if (resp)
        memcpy(resp->buf, req->buf, req->size);
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void fz_sm(int s, udrpc_sm_event_t ev, int err, void *ctx)
{
    (void)s;
    (void)err;
    (void)ctx;
    if (ev == UDRPC_SM_CONNECTED)
        fz_connected = 1;
}

static void fz_pump(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        udrpc_run_event_loop_once(fz_cli);
        udrpc_run_event_loop_once(fz_srv);
    }
}

static void fz_setup(void)
{
    if (fz_nx)
        return;
    setenv("UDRPC_LOG", "error", 1);
    fz_nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    if (!fz_nx || udrpc_register_handler(fz_nx, 1, fz_echo, UDRPC_HANDLER_FG) != 0)
        abort();
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.transport = "loop";
    cfg.mtu = 1024; /* multi-packet messages stay small */
    cfg.max_msg_size = 64 << 10;
    cfg.rto_min_us = cfg.rto_max_us = 1000000;
    cfg.connect_timeout_ms = 60000;
    cfg.max_sessions = 64;
    fz_cli = udrpc_create(fz_nx, 1, NULL, fz_sm, &cfg);
    fz_srv = udrpc_create(fz_nx, 0, NULL, NULL, &cfg);
    if (!fz_cli || !fz_srv)
        abort();
    fz_session = udrpc_connect(fz_cli, udrpc_nexus_uri(fz_nx), 0);
    while (!fz_connected)
        fz_pump(1);
}

#endif
