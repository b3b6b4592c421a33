/* test_wire.c — the 16-byte data header: pack/unpack round trips over every
 * field's range, and rejection of a wrong magic or reserved bits. */
#include <string.h>

#include "test.h"
#include "wire.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(void)
{
    for (int i = 0; i < 100000; i++) {
        uint8_t req_type = (uint8_t)next();
        uint32_t msg_size = (uint32_t)next() & 0xFFFFFF;
        uint16_t sess = (uint16_t)next();
        enum pkt_type type = (enum pkt_type)(next() & 3);
        uint8_t status = (uint8_t)(next() & 0xF);
        uint16_t pkt = (uint16_t)next();
        uint64_t req_num = next() & UDRPC_REQ_NUM_MASK;
        if (i == 0) { msg_size = 0xFFFFFF; sess = 0xFFFF; pkt = 0xFFFF; req_num = UDRPC_REQ_NUM_MASK; }
        if (i == 1) { msg_size = 0; sess = 0; pkt = 0; req_num = 0; req_type = 0; }
        uint8_t raw[17];
        struct pkthdr h;
        pkthdr_pack(&h, req_type, msg_size, sess, type, status, pkt, req_num);
        memcpy(raw + 1, &h, 16); /* unaligned on purpose */
        struct pkthdr_fields f;
        CHECK_EQ(pkthdr_unpack(raw + 1, &f), 0);
        CHECK_EQ(f.req_type, req_type);
        CHECK_EQ(f.msg_size, msg_size);
        CHECK_EQ(f.dest_session, sess);
        CHECK_EQ(f.pkt_type, type);
        CHECK_EQ(f.status, status);
        CHECK_EQ(f.pkt_num, pkt);
        CHECK(f.req_num == req_num);
    }
    /* The wire is little-endian whatever the host: byte 7 is the magic. */
    struct pkthdr h;
    pkthdr_pack(&h, 0x11, 0x223344, 0x5566, PKT_RFR, 0, 0x7788, 0x99);
    const uint8_t *b = (const uint8_t *)&h;
    CHECK_EQ(b[0], 0x11);
    CHECK_EQ(b[1], 0x44);
    CHECK_EQ(b[3], 0x22);
    CHECK_EQ(b[4], 0x66);
    CHECK_EQ(b[7], UDRPC_PKT_MAGIC);
    CHECK_EQ(b[8], 0x88);

    /* Every wrong magic byte and every reserved bit is refused. */
    struct pkthdr_fields f;
    for (int m = 0; m < 256; m++) {
        uint8_t raw[16];
        memcpy(raw, &h, 16);
        raw[7] = (uint8_t)m;
        CHECK_EQ(pkthdr_unpack(raw, &f), m == UDRPC_PKT_MAGIC ? 0 : -1);
    }
    for (int bit = 54; bit < 56; bit++) {
        uint8_t raw[16];
        memcpy(raw, &h, 16);
        raw[bit / 8] |= (uint8_t)(1u << (bit % 8));
        CHECK_EQ(pkthdr_unpack(raw, &f), -1);
    }
    printf("test_wire: ok\n");
    return 0;
}
