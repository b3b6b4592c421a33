/* sm.c — SM packet codec and URI parsing (see sm.h). */
#include "sm.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

enum { OFF_URI = 24, OFF_CROUTE = 88, OFF_SROUTE = 136, ROUTE_SIZE = 48 };
_Static_assert(OFF_SROUTE + ROUTE_SIZE == SM_PKT_SIZE, "SM layout");
_Static_assert(sizeof(struct tp_route) == ROUTE_SIZE, "route size");

static void put_route(uint8_t *p, const struct tp_route *r)
{
    memset(p, 0, ROUTE_SIZE);
    p[0] = r->kind;
    p[1] = r->len <= TP_ROUTE_MAX ? r->len : TP_ROUTE_MAX;
    memcpy(p + 2, r->bytes, p[1]);
}

static int get_route(const uint8_t *p, struct tp_route *r)
{
    if (p[1] > TP_ROUTE_MAX)
        return -EBADMSG;
    r->kind = p[0];
    r->len = p[1];
    memset(r->bytes, 0, sizeof(r->bytes));
    memcpy(r->bytes, p + 2, r->len);
    for (unsigned i = 2u + r->len; i < ROUTE_SIZE; i++)
        if (p[i])
            return -EBADMSG;
    return 0;
}

void udrpc__sm_encode(const struct sm_pkt *p, uint8_t out[SM_PKT_SIZE])
{
    memset(out, 0, SM_PKT_SIZE);
    put32(out, SM_MAGIC);
    out[4] = SM_VERSION;
    out[5] = p->type;
    put16(out + 6, (uint16_t)p->err);
    out[8] = p->client_rpc_id;
    out[9] = p->server_rpc_id;
    put16(out + 10, p->client_session);
    put16(out + 12, p->server_session);
    put16(out + 14, p->mtu);
    put64(out + 16, p->token);
    size_t ulen = strnlen(p->client_uri, UDRPC_MAX_URI_LEN - 1);
    memcpy(out + OFF_URI, p->client_uri, ulen);
    put_route(out + OFF_CROUTE, &p->client_route);
    put_route(out + OFF_SROUTE, &p->server_route);
}

int udrpc__sm_decode(const uint8_t *buf, size_t len, struct sm_pkt *p)
{
    if (len != SM_PKT_SIZE || get32(buf) != SM_MAGIC || buf[4] != SM_VERSION)
        return -EBADMSG;
    p->type = buf[5];
    if (p->type < SM_CONNECT_REQ || p->type > SM_TYPE_MAX)
        return -EBADMSG;
    p->err = (int16_t)get16(buf + 6);
    if (p->err > 0)
        return -EBADMSG;
    p->mtu = get16(buf + 14);
    p->client_rpc_id = buf[8];
    p->server_rpc_id = buf[9];
    p->client_session = get16(buf + 10);
    p->server_session = get16(buf + 12);
    p->token = get64(buf + 16);
    const uint8_t *uri = buf + OFF_URI;
    size_t ulen = strnlen((const char *)uri, UDRPC_MAX_URI_LEN);
    if (ulen == UDRPC_MAX_URI_LEN)
        return -EBADMSG;
    for (size_t i = ulen; i < UDRPC_MAX_URI_LEN; i++)
        if (uri[i])
            return -EBADMSG;
    memcpy(p->client_uri, uri, UDRPC_MAX_URI_LEN);
    if (get_route(buf + OFF_CROUTE, &p->client_route) ||
        get_route(buf + OFF_SROUTE, &p->server_route))
        return -EBADMSG;
    return 0;
}

int udrpc__uri_split(const char *uri, char host[UDRPC_MAX_URI_LEN], uint16_t *port_out)
{
    if (!uri)
        return -EINVAL;
    size_t len = strnlen(uri, UDRPC_MAX_URI_LEN);
    if (len == 0 || len >= UDRPC_MAX_URI_LEN)
        return -EINVAL;
    const char *colon = strrchr(uri, ':');
    if (!colon || colon == uri || colon[1] == '\0')
        return -EINVAL;
    size_t hlen = (size_t)(colon - uri);
    memcpy(host, uri, hlen);
    host[hlen] = '\0';
    if (memchr(host, ':', hlen))
        return -EINVAL; /* IPv6 literals are not supported yet */
    unsigned long port = 0;
    for (const char *c = colon + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        port = port * 10 + (unsigned long)(*c - '0');
        if (port > 65535)
            return -EINVAL;
    }
    *port_out = (uint16_t)port;
    return 0;
}

int udrpc__uri_parse(const char *uri, struct sockaddr_in *sin)
{
    char host[UDRPC_MAX_URI_LEN];
    uint16_t port;
    if (udrpc__uri_split(uri, host, &port) != 0)
        return -EINVAL;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1)
        return 0;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -EINVAL;
    sin->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}
