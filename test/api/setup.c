/*
 * api/setup.c — before any session: the Nexus URI, the rules of handler
 * registration, and udrpc_create()'s errors.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static void nop_handler(udrpc_req_handle_t *h, void *ctx)
{
    udrpc_enqueue_response(h);
    (void)ctx;
}

static void nexus_uri(struct fx *f)
{
    errno = 0;
    CHECK(udrpc_nexus_create("bad uri", NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(udrpc_nexus_create("127.0.0.1:99999", NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(udrpc_nexus_create("[::1:0", NULL) == NULL && errno == EINVAL);
    /* The URI it is bound to, with the real port: the local URI's host. */
    const char *uri = udrpc_nexus_uri(f->nx), *local = test_local_uri();
    size_t host_len = strlen(local) - 1; /* "127.0.0.1:" of "127.0.0.1:0" */
    CHECK(!strncmp(uri, local, host_len) && strcmp(uri, local) && uri[host_len] != '0');
    /* A client's Nexus for this one binds to the same address, port 0. */
    char mine[UDRPC_MAX_URI_LEN];
    CHECK_EQ(udrpc_local_uri_for(uri, mine), 0);
    CHECK(!strcmp(mine, local));
    CHECK_EQ(udrpc_local_uri_for("[::1:80", mine), -EINVAL);
    CHECK_EQ(udrpc_local_uri_for(NULL, mine), -EINVAL);
    CHECK_EQ(udrpc_local_uri_for(uri, NULL), -EINVAL);
}

static void handler_registration(struct fx *f)
{
    udrpc_nexus_t *nx = udrpc_nexus_create(test_local_uri(), NULL);
    CHECK(nx != NULL);
    CHECK_EQ(udrpc_register_handler(nx, 5, nop_handler, UDRPC_HANDLER_FG), 0);
    CHECK_EQ(udrpc_register_handler(nx, 5, nop_handler, UDRPC_HANDLER_FG), -EEXIST);
    CHECK_EQ(udrpc_register_handler(nx, 6, NULL, UDRPC_HANDLER_FG), -EINVAL);
    CHECK_EQ(udrpc_register_handler(nx, 6, nop_handler, UDRPC_HANDLER_BG), -EINVAL); /* no workers */
    CHECK_EQ(udrpc_register_handler(nx, 6, nop_handler, (udrpc_handler_mode_t)7), -EINVAL);
    udrpc_nexus_destroy(nx);
    /* Once an endpoint exists, the table is fixed. */
    CHECK_EQ(udrpc_register_handler(f->nx, 7, nop_handler, UDRPC_HANDLER_FG), -EBUSY);
}

static void create_errors(struct fx *f)
{
    udrpc_config_t c = f->cfg;
    c.cc = true;
    c.timely.t_low_us = c.timely.t_high_us; /* thresholds out of order */
    CHECK(udrpc_create(f->nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = f->cfg;
    c.cc = true;
    c.timely.beta = 1.5;
    CHECK(udrpc_create(f->nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = f->cfg;
    c.max_sessions = 0;
    CHECK(udrpc_create(f->nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c = f->cfg;
    c.transport = "carrier-pigeon";
    CHECK(udrpc_create(f->nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c.transport = "loop,carrier-pigeon";
    CHECK(udrpc_create(f->nx, 0, NULL, NULL, &c) == NULL && errno == EINVAL);
    c.transport = "verbs"; /* ENODEV where no RDMA port is active */
    udrpc_t *v = udrpc_create(f->nx, 0, NULL, NULL, &c);
    if (v)
        udrpc_destroy(v);
    else
        CHECK_EQ(errno, ENODEV);
    /* rpc_id 2 is the fixture's server. */
    CHECK(udrpc_create(f->nx, 2, NULL, NULL, &f->cfg) == NULL && errno == EEXIST);
    CHECK(!strcmp(udrpc_transport_name(f->cli), f->transport));
}

int main(int argc, char **argv)
{
    static const struct fx_case cases[] = {
        FX_CASE(nexus_uri, .flags = FX_UNCONNECTED),
        FX_CASE(handler_registration, .flags = FX_UNCONNECTED),
        FX_CASE(create_errors, .flags = FX_UNCONNECTED),
    };
    return FX_RUN("api_setup", cases, fx_api_configure);
}
