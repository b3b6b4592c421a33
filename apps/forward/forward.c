/* forward.c: a nested RPC. A client asks the front endpoint; the front's
 * handler forwards a copy of the request to a back endpoint and answers its
 * client from the continuation. All three endpoints run on this thread
 * here; in a service they are separate threads or processes.
 *   forward [text]      prints "front: <TEXT IN CAPITALS>" */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <udrpc.h>

enum { REQ_GET = 1, REQ_UPPER = 2 };

/* The back end: answers with the request in capitals. */
static void upper(udrpc_req_handle_t *h, void *ctx) {
    (void)ctx;
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, req->size);
    if (resp)
        for (size_t i = 0; i < req->size; i++)
            resp->buf[i] = (uint8_t)toupper(req->buf[i]);
    udrpc_enqueue_response(h);
}

/* The front end: one forwarded request, from the handler to the answer. */
struct forwarded {
    udrpc_req_handle_t *h;               /* the client's request, answered later */
    udrpc_msgbuf_t req, resp;            /* the copy sent to the back end */
};
static int front_to_back = -1;           /* the front's session to the back end */

static void answer(udrpc_req_handle_t *h, const void *bytes, size_t len) {
    udrpc_msgbuf_t *resp = udrpc_resp_msgbuf(h, 7 + len);
    if (resp) {
        memcpy(resp->buf, "front: ", 7);
        memcpy(resp->buf + 7, bytes, len);
    }
    udrpc_enqueue_response(h);           /* resp NULL: an empty answer */
}

static void back_answered(void *ctx, void *tag, int status) {
    (void)ctx;
    struct forwarded *fw = tag;
    udrpc_t *front = udrpc_req_rpc(fw->h);
    if (status == 0)
        answer(fw->h, fw->resp.buf, fw->resp.size);
    else
        answer(fw->h, udrpc_strerror(status), strlen(udrpc_strerror(status)));
    udrpc_msgbuf_free(front, &fw->req);
    udrpc_msgbuf_free(front, &fw->resp);
    free(fw);
}

static void forward(udrpc_req_handle_t *h, void *ctx) {
    (void)ctx;
    udrpc_t *front = udrpc_req_rpc(h);   /* the endpoint this request came to */
    const udrpc_msgbuf_t *req = udrpc_req_msgbuf(h);
    struct forwarded *fw = calloc(1, sizeof(*fw));
    /* The request is the client's buffer, valid until we answer: the back
     * end gets a copy in a buffer of our own endpoint. */
    if (!fw || udrpc_msgbuf_alloc(front, req->size ? req->size : 1, &fw->req) != 0 ||
        udrpc_msgbuf_alloc(front, req->size ? req->size : 1, &fw->resp) != 0) {
        answer(h, "out of memory", 13);
        if (fw && fw->req.buf)
            udrpc_msgbuf_free(front, &fw->req);
        free(fw);
        return;
    }
    memcpy(fw->req.buf, req->buf, req->size);
    udrpc_msgbuf_resize(&fw->req, req->size);
    fw->h = h;
    int err = udrpc_enqueue_request(front, front_to_back, REQ_UPPER, &fw->req, &fw->resp,
                                    back_answered, fw);
    if (err)
        back_answered(NULL, fw, err);    /* answers the client with the error */
}

/* The client. */
static int connected[3], got;
static void on_session(int s, udrpc_sm_event_t ev, int err, void *ctx) {
    (void)s;
    int *c = ctx;
    *c = ev == UDRPC_SM_CONNECTED ? 1 : (err ? err : -1);
}
static void on_answer(void *ctx, void *tag, int status) {
    (void)ctx;
    const udrpc_msgbuf_t *resp = tag;
    if (status == 0)
        printf("%.*s\n", (int)resp->size, (const char *)resp->buf);
    else
        printf("request failed: %s\n", udrpc_strerror(status));
    got = status == 0 ? 1 : -1;
}

int main(int argc, char **argv) {
    const char *text = argc > 1 ? argv[1] : "hello, nested rpc";
    udrpc_nexus_t *nx = udrpc_nexus_create("127.0.0.1:0", NULL);
    if (!nx) { perror("udrpc_nexus_create"); return 1; }
    if (udrpc_register_handler(nx, REQ_GET, forward, UDRPC_HANDLER_FG) != 0 ||
        udrpc_register_handler(nx, REQ_UPPER, upper, UDRPC_HANDLER_FG) != 0)
        return 1;
    udrpc_t *back = udrpc_create(nx, 0, NULL, NULL, NULL);
    udrpc_t *front = udrpc_create(nx, 1, &connected[1], on_session, NULL);
    udrpc_t *client = udrpc_create(nx, 2, &connected[2], on_session, NULL);
    if (!back || !front || !client) { perror("udrpc_create"); return 1; }
    front_to_back = udrpc_connect(front, udrpc_nexus_uri(nx), 0);
    int s = udrpc_connect(client, udrpc_nexus_uri(nx), 1);
    udrpc_msgbuf_t req = { 0 }, resp = { 0 };
    size_t len = strlen(text);
    int rc = 1;
    if (front_to_back < 0 || s < 0 || udrpc_msgbuf_alloc(client, len ? len : 1, &req) != 0 ||
        udrpc_msgbuf_alloc(client, 7 + len, &resp) != 0) {
        fprintf(stderr, "setup failed\n");
    } else {
        memcpy(req.buf, text, len);
        udrpc_msgbuf_resize(&req, len);
        /* Requests may be enqueued before CONNECTED: they wait. */
        int err = udrpc_enqueue_request(client, s, REQ_GET, &req, &resp, on_answer, &resp);
        time_t end = time(NULL) + 5;     /* never spin forever */
        while (!err && got == 0 && connected[1] >= 0 && connected[2] >= 0 && time(NULL) <= end) {
            udrpc_run_event_loop_once(client);
            udrpc_run_event_loop_once(front);
            udrpc_run_event_loop_once(back);
        }
        if (err || got != 1)
            fprintf(stderr, "no answer: %s\n", err ? udrpc_strerror(err) : "see above");
        rc = got == 1 ? 0 : 1;
    }
    if (req.buf)
        udrpc_msgbuf_free(client, &req);
    if (resp.buf)
        udrpc_msgbuf_free(client, &resp);
    udrpc_destroy(client);
    udrpc_destroy(front);
    udrpc_destroy(back);
    udrpc_nexus_destroy(nx);
    return rc;
}
