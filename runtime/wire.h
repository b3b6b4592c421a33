/*
 * wire.h — the 16-byte data packet header, packed by hand.
 *
 * Two little-endian 64-bit words (no compiler bitfields):
 *   w0: [0,8) req_type  [8,32) msg_size  [32,48) dest_session
 *       [48,50) pkt_type  [50,54) status  [54,56) reserved (0)  [56,64) magic
 *   w1: [0,16) pkt_num  [16,64) req_num
 *
 * Packet types and numbering (R request packets, S response packets):
 *   REQ  pkt_num in [0, R)   client -> server, one credit each
 *   CR   pkt_num in [0, R-1) server -> client, credit return, cumulative:
 *        the server holds REQ packets 0..pkt_num (it reassembles in order,
 *        keeping up to 64 early packets aside); pkt_num == R-1 means
 *        "request complete, handler still running"
 *   RESP pkt_num in [0, S)   server -> client; RESP 0 acknowledges the whole
 *        request
 *   RFR  pkt_num in [1, S)   client -> server, asks for RESP pkt_num
 * status (RESP only): 0 ok, else a udrpc_wire_status.
 */
#ifndef UDRPC_RUNTIME_WIRE_H
#define UDRPC_RUNTIME_WIRE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "transport.h"

#define UDRPC_PKT_MAGIC 0xB7u
#define UDRPC_HDR_SIZE 16u
#define UDRPC_MAX_MSG_SIZE_LIMIT ((1u << 24) - 1)
#define UDRPC_MAX_PKTS_PER_MSG (1u << 16)
#define UDRPC_REQ_NUM_MASK ((1ull << 48) - 1)

enum pkt_type { PKT_REQ = 0, PKT_RESP = 1, PKT_RFR = 2, PKT_CR = 3 };

/* A response's status: the client's continuation gets 0, -EBADRQC (no
 * handler for the request type) or -ENOMEM (the server had no memory to
 * hand the request to a background handler). */
enum wire_status { WIRE_OK = 0, WIRE_NO_HANDLER = 1, WIRE_NO_MEMORY = 2, WIRE_STATUS_MAX = 3 };

struct pkthdr {
    uint64_t w0; /* little-endian on the wire */
    uint64_t w1;
};
_Static_assert(sizeof(struct pkthdr) == UDRPC_HDR_SIZE, "header is 16 bytes");
/* What transports know of the header (transport.h), for their socket
 * filters and gathers, agrees with this layout. */
_Static_assert(TP_HDR_SIZE == UDRPC_HDR_SIZE, "transport.h's header size");
_Static_assert(TP_HDR_MAGIC == UDRPC_PKT_MAGIC, "transport.h's magic");
_Static_assert(TP_HDR_MAGIC_OFF == 7 && TP_HDR_RESERVED_OFF == 6 && TP_HDR_RESERVED_BITS == 0xC0,
               "w0's top byte is the magic; bits 54-55 (byte 6, bits 6-7) are reserved");

struct pkthdr_fields {
    uint8_t req_type;
    uint8_t pkt_type;
    uint8_t status;
    uint16_t dest_session;
    uint16_t pkt_num;
    uint32_t msg_size;
    uint64_t req_num;
};

static inline void pkthdr_pack(struct pkthdr *h, uint8_t req_type,
                               uint32_t msg_size, uint16_t dest_session,
                               enum pkt_type type, uint8_t status,
                               uint16_t pkt_num, uint64_t req_num)
{
    uint64_t w0 = (uint64_t)req_type | (uint64_t)msg_size << 8 |
                  (uint64_t)dest_session << 32 | (uint64_t)type << 48 |
                  (uint64_t)(status & 0xF) << 50 | (uint64_t)UDRPC_PKT_MAGIC << 56;
    uint64_t w1 = (uint64_t)pkt_num | (req_num & UDRPC_REQ_NUM_MASK) << 16;
    h->w0 = htole64(w0);
    h->w1 = htole64(w1);
}

/* Decodes a header from possibly unaligned bytes. Returns 0, or -1 for a
 * wrong magic or non-zero reserved bits (all other checks need context). */
static inline int pkthdr_unpack(const void *p, struct pkthdr_fields *f)
{
    struct pkthdr h;
    memcpy(&h, p, sizeof(h));
    uint64_t w0 = le64toh(h.w0), w1 = le64toh(h.w1);
    if ((w0 >> 56) != UDRPC_PKT_MAGIC || ((w0 >> 54) & 0x3) != 0)
        return -1;
    f->req_type = (uint8_t)w0;
    f->msg_size = (uint32_t)(w0 >> 8) & 0xFFFFFF;
    f->dest_session = (uint16_t)(w0 >> 32);
    f->pkt_type = (uint8_t)(w0 >> 48) & 0x3;
    f->status = (uint8_t)(w0 >> 50) & 0xF;
    f->pkt_num = (uint16_t)w1;
    f->req_num = w1 >> 16;
    return 0;
}

#endif
