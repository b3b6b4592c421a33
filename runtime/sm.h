/*
 * sm.h — session management packets (connect, disconnect) and URIs.
 *
 * SM packets travel over the Nexus's UDP port, one per datagram, fixed size
 * SM_PKT_SIZE, every field encoded by hand in little-endian order:
 *   off  0 u32 magic "USM1"    off  4 u8 version   off  5 u8 type
 *   off  6 i16 err (-errno)    off  8 u8 client_rpc_id  off 9 u8 server_rpc_id
 *   off 10 u16 client_session  off 12 u16 server_session  off 14 u16 mtu
 *   off 16 u64 token           off 24 char client_uri[64] (NUL-terminated)
 *   off 88 route client (48)   off 136 route server (48)
 *   off 184 u32 max_msg_size (the sender's endpoint's largest message)
 *   off 188 u64 req_num (SM_CANCEL_REQ: the request given up on)
 * A route is kind (u8), len (u8), bytes[46]. A packet of another version
 * or size is dropped whole (the socket filter, then the decoder): never
 * half-read.
 */
#ifndef UDRPC_RUNTIME_SM_H
#define UDRPC_RUNTIME_SM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "transport.h"
#include "udrpc.h"

#define SM_MAGIC 0x314D5355u /* "USM1" */
#define SM_VERSION 4 /* 4: max_msg_size, cancel notices; 3: heartbeats */
#define SM_PKT_SIZE 196

/* Answers to strangers (refusals, and the idempotent answers for sessions
 * that do not exist) are limited to UDRPC_SM_STRANGER_REPLIES_PER_S a
 * second per sender (each Rpc, and the Nexus thread for Rpcs it does not
 * have): forged requests must not turn an endpoint into a reflector or keep
 * it busy sending. Beyond the limit the request is dropped and counted; a
 * real client retries. `now` and `window` in any one unit. */
struct sm_reply_limit {
    uint64_t window_start;
    unsigned sent;
};

static inline bool sm_reply_limit_take(struct sm_reply_limit *l, uint64_t now,
                                       uint64_t window, unsigned max)
{
    if (now - l->window_start >= window) {
        l->window_start = now;
        l->sent = 0;
    }
    if (l->sent >= max)
        return false;
    l->sent++;
    return true;
}

enum sm_type {
    SM_CONNECT_REQ = 1,
    SM_CONNECT_RESP = 2,
    SM_DISCONNECT_REQ = 3,
    SM_DISCONNECT_RESP = 4,
    SM_PING_REQ = 5,        /* client -> server: do you still have this
                               session? (sent when its requests time out) */
    SM_PING_RESP = 6,       /* err -ENOENT: the server no longer has it; sent
                               unasked too, when a server endpoint closes */
    SM_HEARTBEAT_REQ = 7,   /* Nexus -> Nexus, token: the sender's nonce for
                               the receiver; answered by the Nexus thread */
    SM_HEARTBEAT_RESP = 8,  /* the same token back */
    SM_CANCEL_REQ = 9,      /* client -> server, best effort, unanswered:
                               request req_num was given up on (cancelled,
                               or past its deadline) */
    SM_TYPE_MAX = SM_CANCEL_REQ
};

struct sm_pkt {
    uint8_t type;
    int16_t err;
    uint8_t client_rpc_id, server_rpc_id;
    uint16_t client_session, server_session;
    uint16_t mtu;            /* the sender's datagram size: peers must agree */
    uint64_t token;
    char client_uri[UDRPC_MAX_URI_LEN];
    struct tp_route client_route, server_route;
    uint32_t max_msg_size;   /* connects and their answers: the sender's */
    uint64_t req_num;        /* SM_CANCEL_REQ */
};

void udrpc__sm_encode(const struct sm_pkt *p, uint8_t out[SM_PKT_SIZE]);
/* Returns 0, or -EBADMSG for anything malformed (length, magic, version,
 * type, unterminated URI, route length, non-zero padding). */
int udrpc__sm_decode(const uint8_t *buf, size_t len, struct sm_pkt *p);

/* URIs: "host:port", "[v6addr]:port", "[fe80::1%eth0]:port" (a zone only
 * on a link-local address: an interface name or index). A host without
 * brackets is an IPv4 literal or a name. Bad input: -EINVAL and *why (if
 * why is not NULL), a static string saying what is wrong. */

/* Splits uri into host (brackets removed, the zone kept), port and whether
 * it was bracketed; no lookup of any kind. */
int udrpc__uri_split(const char *uri, char host[UDRPC_MAX_URI_LEN], uint16_t *port,
                     bool *bracketed, const char **why);
/* Parses uri into *out (canonical: addr.h). A name resolves to the first
 * address getaddrinfo gives (RFC 6724's order) whose family this host can
 * open a socket of. May block on name lookup: control path only. */
int udrpc__uri_parse(const char *uri, union tp_addr *out, const char **why);

#endif
