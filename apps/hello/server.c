/*
 * hello server: answers request type 1 with "hello, " + the request.
 *   hello_server [host:port]      (default 127.0.0.1:31850)
 */
#include <stdio.h>
#include <string.h>

#include "udrpc.h"

enum { REQ_HELLO = 1 };

static void hello_handler(udrpc_req_handle_t *h, void *ctx)
{
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    static const char prefix[] = "hello, ";
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, sizeof(prefix) - 1 + req->size);
    if (resp) {
        memcpy(resp->buf, prefix, sizeof(prefix) - 1);
        memcpy(resp->buf + sizeof(prefix) - 1, req->buf, req->size);
    }
    udrpc_enqueue_response(h); /* an empty response if resp was NULL */
    (void)ctx;
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "127.0.0.1:31850";
    udrpc_nexus_t *nx = udrpc_nexus_create(uri, NULL);
    if (!nx) {
        perror("udrpc_nexus_create");
        return 1;
    }
    udrpc_register_handler(nx, REQ_HELLO, hello_handler, UDRPC_HANDLER_FG);
    udrpc_t *rpc = udrpc_create(nx, 0, NULL, NULL, NULL); /* rpc_id 0 */
    if (!rpc) {
        perror("udrpc_create");
        return 1;
    }
    printf("hello server at %s, rpc_id 0\n", udrpc_nexus_uri(nx));
    fflush(stdout);
    for (;;)
        udrpc_run_event_loop(rpc, 1000);
}
