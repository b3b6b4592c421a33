/*
 * fuzz_rx.c — the data header parser and the whole receive path of an Rpc
 * with live sessions. An input is a list of records
 *   [flags u8][len u16 le][len bytes]
 * flags bit 0: to the server (else the client); bit 1: from a stranger
 * (else from the session's peer, which reaches past source validation);
 * bit 2: first start a real request (sizes from the next record byte), so
 * that responses and credit returns have live slots to land in. Between
 * records and at the end, the endpoints run, so what the fuzzed packets
 * made them send is delivered too. Invariant: every continuation runs at
 * most once per request.
 */
#include <stdint.h>

#include "fuzz_common.h"

#define SLOTS 16
static udrpc_msgbuf_t reqs[SLOTS], resps[SLOTS];
static int busy[SLOTS];

static void cont(void *ctx, void *tag, int status)
{
    int i = (int)(intptr_t)tag;
    (void)ctx;
    (void)status;
    if (!busy[i])
        abort(); /* a continuation ran twice */
    busy[i] = 0;
}

static void start_request(uint8_t size_sel)
{
    for (int i = 0; i < SLOTS; i++) {
        if (busy[i])
            continue;
        if (!reqs[i].buf &&
            (udrpc_msgbuf_alloc(fz_cli, 4096, &reqs[i]) || udrpc_msgbuf_alloc(fz_cli, 4096, &resps[i])))
            abort();
        udrpc_msgbuf_resize(&reqs[i], (size_t)size_sel * 16);
        if (udrpc_enqueue_request(fz_cli, fz_session, 1, &reqs[i], &resps[i], cont,
                                  (void *)(intptr_t)i) == 0)
            busy[i] = 1;
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pkt[1 << 12] __attribute__((aligned(64)));
    fz_setup();
    while (size >= 3) {
        uint8_t flags = data[0];
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (len > sizeof(pkt))
            len = sizeof(pkt);
        if ((flags & 4) && len)
            start_request(data[0]);
        udrpc_t *to = (flags & 1) ? fz_srv : fz_cli;
        udrpc_t *peer_of = (flags & 1) ? fz_cli : fz_srv;
        memcpy(pkt, data, len);
        struct tp_rx_pkt rx = { .buf = pkt, .len = (uint32_t)len };
        uint32_t peer_id;
        memcpy(&peer_id, peer_of->tp->local.bytes + 4, 4);
        rx.src_id[0] = (flags & 2) ? 0xBAD : peer_id;
        to->now_tsc = udrpc__rdtsc();
        udrpc__process_rx(to, &rx, 1);
        udrpc__tx_flush(to);
        fz_pump(2);
        data += len;
        size -= len;
    }
    fz_pump(4);
    return 0;
}
