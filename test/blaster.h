/*
 * blaster.h — a sender of crafted bad datagrams, for the tests that check a
 * server survives them (e2e_rpc --blast, flood_test): random bytes, valid
 * headers with random fields, plausible headers for live session numbers,
 * truncated headers, SM-sized garbage, valid-looking SM packets with forged
 * tokens (disconnects, connect responses, pings), connects from made-up
 * clients, and oversized datagrams. It stops after `count` datagrams or at
 * `until_ns` (CLOCK_MONOTONIC), whichever comes first.
 */
#ifndef UDRPC_TEST_BLASTER_H
#define UDRPC_TEST_BLASTER_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sm.h"
#include "clock.h"
#include "wire.h"

struct blaster {
    union tp_addr targets[4];    /* all of one family */
    unsigned n_targets;
    uint64_t count;          /* 0: no limit */
    uint64_t until_ns;       /* 0: no limit */
    uint64_t sent;
    atomic_int done;
};

static void *blaster_main(void *arg)
{
    struct blaster *b = arg;
    int fd = socket(b->targets[0].sa.sa_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return NULL;
    uint64_t r = 0xB1A57EDull;
    uint8_t buf[2048];
    for (uint64_t i = 0; b->count == 0 || i < b->count; i++) {
        if (b->until_ns && (i & 255) == 0 && udrpc__monotonic_ns() >= b->until_ns)
            break;
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        size_t len;
        unsigned kind = (unsigned)(i % 9);
        struct pkthdr h;
        switch (kind) {
        case 0: /* random bytes, random length */
            len = r % 1600;
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)(r >> (j % 56)) ^ (uint8_t)j;
            break;
        case 1: /* valid header, random fields */
            pkthdr_pack(&h, (uint8_t)r, (uint32_t)(r >> 8) & 0xFFFFFF, (uint16_t)(r >> 32),
                        (enum pkt_type)((r >> 48) & 3), 0, (uint16_t)(r >> 50), r >> 20);
            memcpy(buf, &h, 16);
            len = 16 + (r >> 40) % 64;
            break;
        case 2: /* plausible: live session numbers, small req and pkt numbers */
            pkthdr_pack(&h, 1, (uint32_t)(r % 64), (uint16_t)(r % 4),
                        (enum pkt_type)((r >> 8) & 3), 0, 0, (r >> 16) % 64);
            memcpy(buf, &h, 16);
            len = 16 + r % 64;
            break;
        case 3: /* truncated header */
            pkthdr_pack(&h, 1, 1, 0, PKT_REQ, 0, 0, 0);
            memcpy(buf, &h, 16);
            len = 1 + r % 15;
            break;
        case 4: /* SM-sized garbage */
            for (size_t j = 0; j < SM_PKT_SIZE; j++)
                buf[j] = (uint8_t)(r >> (j % 56));
            len = SM_PKT_SIZE;
            break;
        case 5:
        case 6:
        case 7: { /* valid-looking SM packets: forged tokens, made-up clients */
            struct sm_pkt p;
            memset(&p, 0, sizeof(p));
            p.type = kind == 5 ? SM_DISCONNECT_REQ : kind == 6 ? SM_CONNECT_RESP
                   : (r & 1) ? SM_PING_REQ : SM_CONNECT_REQ;
            p.client_rpc_id = (uint8_t)(r % 2);
            p.server_rpc_id = (uint8_t)((r >> 4) % 2);
            p.client_session = (uint16_t)(r % 4);
            p.server_session = (uint16_t)((r >> 8) % 4);
            p.token = r;
            p.mtu = 1472;
            snprintf(p.client_uri, sizeof(p.client_uri), "127.0.0.%u:%u",
                     (unsigned)(r >> 24) % 250 + 1, (unsigned)(r >> 32) % 60000 + 1);
            p.client_route.kind = TP_UDP;
            p.client_route.len = 6;
            p.server_route.kind = TP_UDP;
            p.server_route.len = 6;
            udrpc__sm_encode(&p, buf);
            len = SM_PKT_SIZE;
            break;
        }
        default: /* oversized */
            memset(buf, 0xB7, sizeof(buf));
            len = sizeof(buf);
            break;
        }
        const union tp_addr *to = &b->targets[i % b->n_targets];
        if (sendto(fd, buf, len, 0, &to->sa, udrpc__addr_len(to)) >= 0)
            b->sent++;
    }
    close(fd);
    atomic_store(&b->done, 1);
    return NULL;
}

#endif
