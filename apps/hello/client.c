/*
 * hello client: connects to a hello server and sends one request.
 *   hello_client [server host:port] [name]
 */
#include <stdio.h>
#include <string.h>

#include "udrpc.h"

enum { REQ_HELLO = 1 };

struct app {
    int connected;   /* 1 connected, -1 failed */
    int done;
};

static void sm_handler(int session, udrpc_sm_event_t ev, int err, void *ctx)
{
    struct app *app = ctx;
    app->connected = ev == UDRPC_SM_CONNECTED ? 1 : -1;
    if (err)
        fprintf(stderr, "session %d: %s\n", session, udrpc_strerror(err));
}

static void on_response(void *ctx, void *tag, int status)
{
    struct app *app = ctx;
    udrpc_msgbuf_t *resp = tag;
    if (status == 0)
        printf("%.*s\n", (int)resp->size, (const char *)resp->buf);
    else
        fprintf(stderr, "request failed: %s\n", udrpc_strerror(status));
    app->done = 1;
}

int main(int argc, char **argv)
{
    const char *server = argc > 1 ? argv[1] : "127.0.0.1:31850";
    const char *name = argc > 2 ? argv[2] : "world";
    struct app app = { 0, 0 };

    /* Our Nexus binds where our routes reach the server from: its family
     * ("[::1]:31850" works as well as "127.0.0.1:31850"). */
    char local[UDRPC_MAX_URI_LEN];
    int err = udrpc_local_uri_for(server, local);
    if (err) {
        fprintf(stderr, "%s: %s\n", server, udrpc_strerror(err));
        return 1;
    }
    udrpc_nexus_t *nx = udrpc_nexus_create(local, NULL);
    udrpc_t *rpc = nx ? udrpc_create(nx, 0, &app, sm_handler, NULL) : NULL;
    if (!rpc) {
        perror("udrpc");
        return 1;
    }
    int session = udrpc_connect(rpc, server, 0);
    while (session >= 0 && app.connected == 0)
        udrpc_run_event_loop_once(rpc);
    if (app.connected != 1)
        return 1;

    udrpc_msgbuf_t req, resp;
    udrpc_msgbuf_alloc(rpc, strlen(name), &req);
    udrpc_msgbuf_alloc(rpc, 256, &resp);
    memcpy(req.buf, name, strlen(name));
    udrpc_enqueue_request(rpc, session, REQ_HELLO, &req, &resp, on_response, &resp);
    while (!app.done)
        udrpc_run_event_loop_once(rpc);

    udrpc_msgbuf_free(rpc, &req);
    udrpc_msgbuf_free(rpc, &resp);
    udrpc_destroy(rpc);
    udrpc_nexus_destroy(nx);
    return 0;
}
