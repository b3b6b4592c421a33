/* sm.c — SM packet codec and URI parsing (see sm.h). */
#include "sm.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

enum { OFF_URI = 24, OFF_CROUTE = 88, OFF_SROUTE = 136, ROUTE_SIZE = 48, OFF_MAX_MSG = 184,
       OFF_REQ_NUM = 188 };
_Static_assert(OFF_REQ_NUM + 8 == SM_PKT_SIZE, "SM layout");
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
    put32(out + OFF_MAX_MSG, p->max_msg_size);
    put64(out + OFF_REQ_NUM, p->req_num);
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
    p->max_msg_size = get32(buf + OFF_MAX_MSG);
    p->req_num = get64(buf + OFF_REQ_NUM);
    return 0;
}

/* Sets *why (if why) and returns -EINVAL. */
static int uri_bad(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -EINVAL;
}

static int parse_port(const char *s, uint16_t *port, const char **why)
{
    if (*s == '\0')
        return uri_bad(why, "no port after ':' (host:port)");
    unsigned long port_ul = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return uri_bad(why, "the port is not a number");
        port_ul = port_ul * 10 + (unsigned long)(*c - '0');
        if (port_ul > 65535)
            return uri_bad(why, "the port is out of range (0 to 65535)");
    }
    *port = (uint16_t)port_ul;
    return 0;
}

/* "[addr%zone]": the IPv6 literal and its zone's interface index. */
static int parse_v6_literal(const char *host, struct sockaddr_in6 *v6, const char **why)
{
    char addr[UDRPC_MAX_URI_LEN];
    strcpy(addr, host);
    char *pct = strchr(addr, '%');
    if (pct)
        *pct++ = '\0';
    if (addr[0] == '\0')
        return uri_bad(why, "empty host");
    memset(v6, 0, sizeof(*v6));
    v6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) != 1)
        return uri_bad(why, "not an IPv6 address inside [...]");
    if (!pct)
        return 0;
    if (!udrpc__addr_is_link_local(&v6->sin6_addr))
        return uri_bad(why, "a zone (%...) is only for a link-local address (fe80::/10)");
    if (*pct == '\0')
        return uri_bad(why, "empty zone after '%'");
    unsigned idx = if_nametoindex(pct);
    if (idx == 0) {
        char *end;
        unsigned long n = strtoul(pct, &end, 10);
        if (*end != '\0' || n == 0 || n > UINT32_MAX)
            return uri_bad(why, "the zone names no interface of this host");
        idx = (unsigned)n;
    }
    v6->sin6_scope_id = idx;
    return 0;
}

int udrpc__uri_split(const char *uri, char host[UDRPC_MAX_URI_LEN], uint16_t *port_out,
                     bool *bracketed, const char **why)
{
    if (!uri)
        return uri_bad(why, "no URI (NULL)");
    size_t len = strnlen(uri, UDRPC_MAX_URI_LEN);
    if (len == 0)
        return uri_bad(why, "empty URI");
    if (len >= UDRPC_MAX_URI_LEN)
        return uri_bad(why, "URI too long (at most 63 characters)");
    const char *h = uri, *colon;
    size_t hlen;
    *bracketed = uri[0] == '[';
    if (*bracketed) {
        const char *close = strchr(uri, ']');
        if (!close)
            return uri_bad(why, "unterminated '[' (an IPv6 address is written [addr]:port)");
        h = uri + 1;
        hlen = (size_t)(close - h);
        if (memchr(h, '[', hlen))
            return uri_bad(why, "'[' inside [...]");
        if (close[1] != ':')
            return uri_bad(why, "expected ':port' right after ']'");
        colon = close + 1;
    } else {
        colon = strrchr(uri, ':');
        if (!colon)
            return uri_bad(why, "no port (host:port)");
        hlen = (size_t)(colon - uri);
        if (memchr(uri, ':', hlen))
            return uri_bad(why, "an IPv6 address needs brackets: [addr]:port");
        if (memchr(uri, ']', hlen) || memchr(uri, '%', hlen))
            return uri_bad(why, "']' or '%' outside [...]");
    }
    if (hlen == 0)
        return uri_bad(why, "empty host");
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return parse_port(colon + 1, port_out, why);
}

/* Whether this host can open a UDP socket of family fam. */
static bool family_usable(int fam)
{
    int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int udrpc__uri_parse(const char *uri, union tp_addr *out, const char **why)
{
    char host[UDRPC_MAX_URI_LEN];
    uint16_t port;
    bool bracketed;
    if (udrpc__uri_split(uri, host, &port, &bracketed, why) != 0)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (bracketed) {
        if (parse_v6_literal(host, &out->v6, why) != 0)
            return -EINVAL;
    } else if (inet_pton(AF_INET, host, &out->v4.sin_addr) == 1) {
        out->v4.sin_family = AF_INET;
    } else {
        /* A name: the first address getaddrinfo gives (RFC 6724 order;
         * /etc/gai.conf may change it) of a family this host has. */
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
        struct addrinfo *res = NULL, *r;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
            return uri_bad(why, "the name does not resolve");
        for (r = res; r; r = r->ai_next)
            if ((r->ai_family == AF_INET || r->ai_family == AF_INET6) &&
                r->ai_addrlen <= sizeof(*out) && family_usable(r->ai_family))
                break;
        if (r)
            memcpy(out, r->ai_addr, r->ai_addrlen);
        freeaddrinfo(res);
        if (!r)
            return uri_bad(why, "the name resolves to no address this host can use");
    }
    udrpc__addr_canon(out); /* [::ffff:a.b.c.d] is IPv4 */
    udrpc__addr_set_port(out, port);
    return 0;
}

int udrpc_uri_check(const char *uri, const char **why)
{
    union tp_addr a;
    const char *reason = NULL;
    int ret = udrpc__uri_parse(uri, &a, &reason);
    if (why)
        *why = ret ? reason : NULL;
    return ret;
}

int udrpc_local_uri_for(const char *remote_uri, char out[UDRPC_MAX_URI_LEN])
{
    union tp_addr to, me;
    if (!out || udrpc__uri_parse(remote_uri, &to, NULL) != 0)
        return -EINVAL;
    if (udrpc__addr_port(&to) == 0)
        udrpc__addr_set_port(&to, 9); /* connect() wants one; nothing is sent */
    int fd = socket(to.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t len = sizeof(me);
    int ret = 0;
    if (connect(fd, &to.sa, udrpc__addr_len(&to)) != 0 || getsockname(fd, &me.sa, &len) != 0)
        ret = -errno;
    close(fd);
    if (ret)
        return ret;
    udrpc__addr_canon(&me);
    udrpc__addr_set_port(&me, 0);
    char text[TP_ADDR_STRLEN];
    udrpc__addr_format(&me, text);
    if (strlen(text) >= UDRPC_MAX_URI_LEN)
        return -ENAMETOOLONG;
    memcpy(out, text, strlen(text) + 1);
    return 0;
}
