/* test_sm_codec.c — SM packets: encode/decode round trip, rejection of each
 * malformed field; URI parsing, good and bad. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "sm.h"
#include "test.h"

static struct sm_pkt sample(void)
{
    struct sm_pkt p;
    memset(&p, 0, sizeof(p));
    p.type = SM_CONNECT_RESP;
    p.err = -ENOENT;
    p.client_rpc_id = 7;
    p.server_rpc_id = 9;
    p.client_session = 1234;
    p.server_session = 65535;
    p.token = 0x0123456789ABCDEFull;
    p.mtu = 65507;
    strcpy(p.client_uri, "127.0.0.1:31850");
    p.client_route.kind = TP_UDP;
    p.client_route.len = 6;
    memcpy(p.client_route.bytes, "\x7f\x00\x00\x01\x12\x34", 6);
    p.server_route.kind = TP_LOOP;
    p.server_route.len = TP_ROUTE_MAX;
    memset(p.server_route.bytes, 0xAB, TP_ROUTE_MAX);
    return p;
}

int main(void)
{
    struct sm_pkt p = sample(), q;
    uint8_t buf[SM_PKT_SIZE];
    udrpc__sm_encode(&p, buf);
    CHECK_EQ(udrpc__sm_decode(buf, sizeof(buf), &q), 0);
    CHECK_EQ(q.type, p.type);
    CHECK_EQ(q.err, p.err);
    CHECK_EQ(q.client_rpc_id, 7);
    CHECK_EQ(q.server_rpc_id, 9);
    CHECK_EQ(q.client_session, 1234);
    CHECK_EQ(q.server_session, 65535);
    CHECK(q.token == p.token);
    CHECK_EQ(q.mtu, 65507);
    CHECK(strcmp(q.client_uri, p.client_uri) == 0);
    CHECK(memcmp(&q.client_route, &p.client_route, sizeof(p.client_route)) == 0);
    CHECK(memcmp(&q.server_route, &p.server_route, sizeof(p.server_route)) == 0);

    /* Malformed: each must be refused. */
    CHECK_EQ(udrpc__sm_decode(buf, sizeof(buf) - 1, &q), -EBADMSG);
    uint8_t bad[SM_PKT_SIZE + 1];
    memcpy(bad, buf, sizeof(buf));
    bad[SM_PKT_SIZE] = 0;
    CHECK_EQ(udrpc__sm_decode(bad, sizeof(bad), &q), -EBADMSG);
    struct { int off; uint8_t val; } muts[] = {
        { 0, 0x00 },          /* magic */
        { 4, 1 },             /* version 1: before the MTU field */
        { 4, 2 },             /* version 2: before heartbeats */
        { 5, 0 },             /* type 0 */
        { 5, SM_TYPE_MAX + 1 },/* a type after the last */
        { 6, 0x01 }, { 7, 0x00 }, /* err = +1 (positive) */
        { 24 + 63, 'x' },     /* URI not terminated: byte 63 set */
        { 24 + 40, 'x' },     /* garbage after the URI's NUL */
        { 88 + 1, 47 },       /* route length over 46 */
        { 88 + 40, 1 },       /* route padding */
    };
    for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
        memcpy(bad, buf, sizeof(buf));
        bad[muts[i].off] = muts[i].val;
        if (muts[i].off == 6)
            bad[7] = 0;
        if (muts[i].off == 24 + 63)
            memset(bad + 24, 'a', 64);
        if (udrpc__sm_decode(bad, SM_PKT_SIZE, &q) != -EBADMSG) {
            fprintf(stderr, "mutation %zu (offset %d) was accepted\n", i, muts[i].off);
            return 1;
        }
    }

    /* URIs: good ones, and what each parses to (canonical, formatted). */
    struct { const char *uri, *formatted; } good[] = {
        { "127.0.0.1:31850", "127.0.0.1:31850" },
        { "0.0.0.0:0", "0.0.0.0:0" },
        { "[::1]:80", "[::1]:80" },
        { "[::]:65535", "[::]:65535" },
        { "[2001:db8::1]:1", "[2001:db8::1]:1" },
        { "[2001:0db8:0000:0000:0000:0000:0000:0001]:7", "[2001:db8::1]:7" },
        { "[::ffff:10.1.2.3]:9", "10.1.2.3:9" },       /* v4-mapped is IPv4 */
        { "[fe80::1%lo]:5", "[fe80::1%lo]:5" },       /* a zone by name ... */
        { "[fe80::1%1]:5", "[fe80::1%lo]:5" },        /* ... or index (lo is 1) */
        { "[fe80::1]:5", "[fe80::1]:5" },             /* link-local, no zone yet */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        union tp_addr a;
        const char *why = NULL;
        char text[TP_ADDR_STRLEN];
        if (udrpc__uri_parse(good[i].uri, &a, &why) != 0) {
            fprintf(stderr, "%s refused: %s\n", good[i].uri, why);
            return 1;
        }
        udrpc__addr_format(&a, text);
        if (strcmp(text, good[i].formatted) != 0) {
            fprintf(stderr, "%s parsed as %s, not %s\n", good[i].uri, text, good[i].formatted);
            return 1;
        }
        union tp_addr again;
        CHECK_EQ(udrpc__uri_parse(text, &again, NULL), 0); /* formatting round-trips */
        CHECK(udrpc__addr_equal(&a, &again));
    }
    union tp_addr a;
    CHECK_EQ(udrpc__uri_parse("127.0.0.1:31850", &a, NULL), 0);
    CHECK_EQ(a.sa.sa_family, AF_INET);
    CHECK_EQ(a.v4.sin_addr.s_addr, htonl(0x7F000001));
    CHECK_EQ(udrpc__addr_port(&a), 31850);
    CHECK_EQ(udrpc__uri_parse("[fe80::2%lo]:1", &a, NULL), 0);
    CHECK_EQ(a.v6.sin6_scope_id, 1);
    /* A name: the first address of a family this host has. */
    CHECK_EQ(udrpc__uri_parse("localhost:0", &a, NULL), 0);
    CHECK(a.sa.sa_family == AF_INET ? a.v4.sin_addr.s_addr == htonl(0x7F000001)
                                    : IN6_IS_ADDR_LOOPBACK(&a.v6.sin6_addr));
    /* Bad ones: -EINVAL, and the reason. */
    struct { const char *uri, *why; } bad_uris[] = {
        { "", "empty URI" },
        { ":1", "empty host" },
        { "[]:1", "empty host" },
        { "[%lo]:1", "empty host" },
        { "127.0.0.1", "no port (host:port)" },
        { "127.0.0.1:", "no port after ':' (host:port)" },
        { "[::1]:", "no port after ':' (host:port)" },
        { "127.0.0.1:65536", "the port is out of range (0 to 65535)" },
        { "[::1]:99999", "the port is out of range (0 to 65535)" },
        { "127.0.0.1:12a", "the port is not a number" },
        { "127.0.0.1:-1", "the port is not a number" },
        { "::1:80", "an IPv6 address needs brackets: [addr]:port" },
        { "[::1:80", "unterminated '[' (an IPv6 address is written [addr]:port)" },
        { "[::1]80", "expected ':port' right after ']'" },
        { "[::1]", "expected ':port' right after ']'" },
        { "[[::1]]:80", "'[' inside [...]" },
        { "::1]:80", "an IPv6 address needs brackets: [addr]:port" },
        { "a]:80", "']' or '%' outside [...]" },
        { "fe80::1%lo:80", "an IPv6 address needs brackets: [addr]:port" },
        { "host%lo:80", "']' or '%' outside [...]" },
        { "[1.2.3.4]:80", "not an IPv6 address inside [...]" },
        { "[localhost]:80", "not an IPv6 address inside [...]" },
        { "[::1%lo]:80", "a zone (%...) is only for a link-local address (fe80::/10)" },
        { "[2001:db8::1%lo]:80", "a zone (%...) is only for a link-local address (fe80::/10)" },
        { "[fe80::1%]:80", "empty zone after '%'" },
        { "[fe80::1%no_such_if0]:80", "the zone names no interface of this host" },
        { "[fe80::1%0]:80", "the zone names no interface of this host" },
        { "no.such.host.invalid:1", "the name does not resolve" },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1",
          "URI too long (at most 63 characters)" },
        { NULL, "no URI (NULL)" },
    };
    for (size_t i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++) {
        const char *why = NULL;
        int ret = udrpc__uri_parse(bad_uris[i].uri, &a, &why);
        if (ret != -EINVAL || !why || strcmp(why, bad_uris[i].why) != 0) {
            fprintf(stderr, "\"%s\": %d, \"%s\" (want -EINVAL, \"%s\")\n",
                    bad_uris[i].uri ? bad_uris[i].uri : "(null)", ret, why ? why : "(none)", bad_uris[i].why);
            return 1;
        }
        /* The public check says the same. */
        const char *pwhy = NULL;
        CHECK_EQ(udrpc_uri_check(bad_uris[i].uri, &pwhy), -EINVAL);
        CHECK(pwhy && !strcmp(pwhy, why));
    }
    const char *pwhy = "unchanged";
    CHECK_EQ(udrpc_uri_check("[::1]:80", &pwhy), 0);
    CHECK(pwhy == NULL);
    CHECK_EQ(udrpc_uri_check("127.0.0.1:80", NULL), 0);

    /* Routes of either family round-trip through an SM packet. */
    struct sm_pkt p6, q6;
    memset(&p6, 0, sizeof(p6));
    p6.type = SM_CONNECT_REQ;
    strcpy(p6.client_uri, "[fe80::aaaa:bbbb:cccc:dddd%ifname_15chars]:65535");
    p6.client_route.kind = TP_UDP;
    p6.client_route.len = 18;
    for (int i = 0; i < 18; i++)
        p6.client_route.bytes[i] = (uint8_t)(0xA0 + i);
    uint8_t raw[SM_PKT_SIZE];
    udrpc__sm_encode(&p6, raw);
    CHECK_EQ(udrpc__sm_decode(raw, SM_PKT_SIZE, &q6), 0);
    CHECK_EQ(q6.client_route.len, 18);
    CHECK(!memcmp(q6.client_route.bytes, p6.client_route.bytes, 18));
    CHECK(!strcmp(q6.client_uri, p6.client_uri));
    /* A packet of another version is refused whole, never half-read. */
    raw[4] = SM_VERSION + 1;
    CHECK_EQ(udrpc__sm_decode(raw, SM_PKT_SIZE, &q6), -EBADMSG);
    printf("test_sm_codec: ok\n");
    return 0;
}
