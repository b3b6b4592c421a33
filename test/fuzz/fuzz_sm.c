/*
 * fuzz_sm.c — the SM packet parser and the handshake state machine. The
 * input's first byte picks the endpoint (even: server, odd: client); the
 * rest is an SM datagram. It is decoded as the Nexus thread would, and a
 * packet that decodes is handed to that endpoint's SM queue and processed,
 * as if it came from 127.0.0.1:9 (discard); heartbeats go where the Nexus
 * thread handles them. The client has a connected
 * session and sessions still connecting, so responses meet every state.
 */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int pending_made;
    fz_setup();
    if (!pending_made) {
        /* two sessions that stay CONNECTING: nobody answers on port 9 */
        udrpc_connect(fz_cli, "127.0.0.1:9", 0);
        udrpc_connect(fz_cli, "127.0.0.1:9", 3);
        pending_made = 1;
    }
    if (size < 1)
        return 0;
    udrpc_t *to = (data[0] & 1) ? fz_cli : fz_srv;
    struct sm_pkt p;
    if (udrpc__sm_decode(data + 1, size - 1, &p) != 0)
        return 0;
    const struct session *real = fz_session >= 0 ? udrpc__session_get(fz_cli, fz_session) : NULL;
    /* libFuzzer sees every comparison, so it can learn the token (an
     * off-path sender cannot): once an input has carried it, the session
     * may end; until then, nothing may end it. */
    static int token_seen;
    if (real && p.token == real->token)
        token_seen = 1;
    union tp_addr from = { .v4 = { .sin_family = AF_INET, .sin_port = htons(9),
                                   .sin_addr.s_addr = htonl(0x7F000001) } };
    to->now_tsc = udrpc__rdtsc();
    if (p.type == SM_HEARTBEAT_REQ || p.type == SM_HEARTBEAT_RESP) {
        udrpc__nexus_sm_route(fz_nx, &p, &from, to->now_tsc); /* the Nexus thread's */
    } else {
        udrpc__rpc_sm_enqueue(to, &p, &from);
        udrpc__sm_process_queue(to);
    }
    fz_pump(2);
    if (fz_session >= 0 && !udrpc_is_connected(fz_cli, fz_session)) {
        if (!token_seen)
            abort(); /* ended by packets that did not carry its token */
        /* start over with a fresh session and token */
        if (udrpc__session_get(fz_cli, fz_session))
            udrpc_disconnect(fz_cli, fz_session);
        fz_connected = 0;
        fz_session = udrpc_connect(fz_cli, udrpc_nexus_uri(fz_nx), 0);
        for (int i = 0; i < 100000 && !fz_connected; i++)
            fz_pump(1);
        if (!fz_connected) {
            /* Refused because forged connects filled the server (a limit
             * the README names, bounded by max_sessions): no crash. */
            if (fz_srv->stats.sessions_active < fz_srv->max_sessions)
                abort();
            fz_session = -1;
        }
        token_seen = 0;
    }
    return 0;
}
