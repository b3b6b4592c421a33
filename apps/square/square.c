/* square.c: a server endpoint squares numbers for a client endpoint.
 *   square [rpc_id]    (default 0, the server; any other shows a failed connect) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <udrpc.h>

enum { REQ_SQUARE = 1 };

static void square(udrpc_req_handle_t *h, void *ctx) {
    (void)ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, sizeof(uint64_t));
    if (resp && req->size == sizeof(uint64_t)) {
        uint64_t x;
        memcpy(&x, req->buf, sizeof(x));
        uint64_t y = x * x;
        memcpy(resp->buf, &y, sizeof(y));
    } else if (resp) {
        udrpc_msgbuf_resize(resp, 0);       /* a bad request: an empty answer */
    }
    udrpc_enqueue_response(h);              /* resp NULL (no memory): an empty answer */
}

static int session_state;                   /* 0 connecting, 1 connected, -errno failed */
static int answered;

static void on_session(int s, udrpc_sm_event_t ev, int err, void *ctx) {
    (void)s, (void)ctx;
    session_state = ev == UDRPC_SM_CONNECTED ? 1 : (err ? err : -1);
}

static void on_answer(void *ctx, void *tag, int status) {
    (void)ctx;
    const udrpc_msgbuf_t *resp = tag;
    uint64_t y = 0;
    if (status == 0 && resp->size == sizeof(y))
        memcpy(&y, resp->buf, sizeof(y));
    printf("%s -> %llu\n", status ? udrpc_strerror(status) : "ok", (unsigned long long)y);
    answered++;
}

/* Runs both endpoints (they live on this thread) until *flag differs from
 * `from`, for 5 seconds at most: never spins forever. */
static int pump(udrpc_t *client, udrpc_t *server, const int *flag, int from) {
    time_t end = time(NULL) + 5;
    while (*flag == from) {
        udrpc_run_event_loop_once(client);
        udrpc_run_event_loop_once(server);
        if (time(NULL) > end)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int rpc_id = argc > 1 ? atoi(argv[1]) : 0;
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL); /* port 0: any free one */
    if (!nx) { perror("udrpc_nexus_create"); return 1; }
    int err = udrpc_register_handler(nx, REQ_SQUARE, square, UDRPC_HANDLER_FG);
    udrpc_t *server = err ? NULL : udrpc_create(nx, 0, NULL, NULL, NULL);
    udrpc_t *client = server ? udrpc_create(nx, 1, NULL, on_session, NULL) : NULL;
    if (!client) {
        fprintf(stderr, "setup: %s\n", err ? udrpc_strerror(err) : "udrpc_create failed");
        return 1;
    }
    int rc = 1;
    int s = udrpc_connect(client, udrpc_nexus_uri(nx), (uint8_t)rpc_id);
    if (s < 0) {
        fprintf(stderr, "udrpc_connect: %s\n", udrpc_strerror(s));
    } else if (pump(client, server, &session_state, 0) != 0 || session_state != 1) {
        fprintf(stderr, "connect to rpc_id %d: %s\n", rpc_id,
                session_state < 0 ? udrpc_strerror(session_state) : "no answer in 5 s");
    } else {
        udrpc_msgbuf_t req = { 0 }, resp = { 0 };
        if (udrpc_msgbuf_alloc(client, sizeof(uint64_t), &req) != 0 ||
            udrpc_msgbuf_alloc(client, sizeof(uint64_t), &resp) != 0) {
            fprintf(stderr, "udrpc_msgbuf_alloc: out of memory\n");
        } else {
            rc = 0;
            for (uint64_t x = 1; x <= 3 && rc == 0; x++) {
                memcpy(req.buf, &x, sizeof(x));
                int before = answered;
                err = udrpc_enqueue_request(client, s, REQ_SQUARE, &req, &resp, on_answer, &resp);
                if (err || pump(client, server, &answered, before) != 0) {
                    fprintf(stderr, "request: %s\n", err ? udrpc_strerror(err) : "no answer in 5 s");
                    rc = 1;
                }
            }
        }
        if (req.buf)
            udrpc_msgbuf_free(client, &req);
        if (resp.buf)
            udrpc_msgbuf_free(client, &resp);
    }
    udrpc_destroy(client);
    udrpc_destroy(server);
    udrpc_nexus_destroy(nx);
    return rc;
}
