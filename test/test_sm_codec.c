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

    struct sockaddr_in sin;
    CHECK_EQ(udrpc__uri_parse("127.0.0.1:31850", &sin), 0);
    CHECK_EQ(ntohs(sin.sin_port), 31850);
    CHECK_EQ(sin.sin_addr.s_addr, htonl(0x7F000001));
    CHECK_EQ(udrpc__uri_parse("localhost:0", &sin), 0);
    CHECK_EQ(sin.sin_addr.s_addr, htonl(0x7F000001));
    const char *bad_uris[] = { "", ":1", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                               "127.0.0.1:12a", "::1:80", "[::1]:80",
                               "no.such.host.invalid:1",
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1" };
    for (size_t i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++)
        CHECK_EQ(udrpc__uri_parse(bad_uris[i], &sin), -EINVAL);
    CHECK_EQ(udrpc__uri_parse(NULL, &sin), -EINVAL);
    printf("test_sm_codec: ok\n");
    return 0;
}
