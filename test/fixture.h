/*
 * fixture.h — the fixture of the protocol and API tests (as eRPC's
 * tests/protocol_tests/): every case gets a fresh Nexus and a fresh pair
 * of endpoints on the transport the command line names, connected (unless
 * the case asks otherwise), and is torn down leak-clean after it.
 *
 * Protocol cases feed hand-built packets to one endpoint's receive path
 * (fx_inject) and check what it asked the transport to send (fx_expect_tx:
 * its TX batch, read before it is flushed) and which drop counter moved
 * (FX_EXPECT_DROP). API cases drive both endpoints' event loops (fx_pump,
 * FX_PUMP_UNTIL) and count every continuation in a struct fx_done.
 *
 *   <test> [transport [case]]     transport: loop (default), udp, mlx5-model
 */
#ifndef UDRPC_TEST_FIXTURE_H
#define UDRPC_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "rpc_internal.h"
#include "test.h"

/* The request types the fixture's Nexus serves. */
enum {
    FX_ECHO = 1,  /* answers with the request's bytes, at once */
    FX_DEFER = 3, /* keeps the handle in fx->deferred: the case answers */
    FX_IN_PLACE = 4, /* answers at once in the request's bytes, each XOR
                        FX_IN_PLACE_XOR (udrpc_resp_msgbuf_in_place) */
    FX_NONE = 99, /* no handler registered */
};
#define FX_IN_PLACE_XOR 0x5A

/* One request's completion: how often its continuation ran, with what. */
struct fx_done {
    int calls;
    int status;
    int order; /* the how-manieth continuation of the case this was */
};

struct fx {
    const char *transport;
    udrpc_config_t cfg;
    udrpc_nexus_t *nx;
    udrpc_t *cli, *srv; /* rpc_id 1 and 2; a case may destroy either (NULL) */
    int snum;           /* the client's session to the server (connected cases) */
    struct session *cs; /* that session at the client ... */
    struct session *ss; /* ... and at the server */
    size_t dpp;         /* data bytes per packet */
    /* SM events the client saw, and the error of the last. */
    int connected, connect_failed, disconnected, session_failed;
    int last_err, last_session;
    /* Handler runs. */
    int handled;                   /* FX_ECHO */
    int in_place_moved, in_place_copied; /* FX_IN_PLACE: no copy, a copy */
    udrpc_req_handle_t *deferred[64]; /* FX_DEFER, unanswered */
    int n_deferred;
    int conts; /* continuations run in this case */
    /* A case's own reaction to the client's SM events (may be NULL): runs
     * inside the sm_handler, after the counts above. */
    void (*on_sm)(struct fx *f, int session, udrpc_sm_event_t ev, int err);
    /* Completions of the case's accepted requests (fx_done_new): each must
     * have run exactly once when the pair is torn down. */
    struct fx_done done[256];
    unsigned n_done;
};

enum { FX_UNCONNECTED = 1 }; /* struct fx_case flags: no session made */

struct fx_case {
    const char *name;
    void (*run)(struct fx *f);
    unsigned flags;
    void (*configure)(udrpc_config_t *c); /* NULL, or this case's changes */
};
/* A case named for its function; optional: .flags = ..., .configure = ... */
#define FX_CASE(fn, ...) { .name = #fn, .run = fn, __VA_ARGS__ }

/* Runs each case (or only argv[2]'s) on a fresh pair on argv[1]'s transport;
 * configure (may be NULL) adjusts the endpoints' config first. Returns the
 * exit status: 0, or 77 if every case skipped itself (FX_SKIP). */
int fx_main(int argc, char **argv, const char *test, const struct fx_case *cases,
            size_t n_cases, void (*configure)(udrpc_config_t *c));
#define FX_RUN(test, cases, configure) \
    fx_main(argc, argv, test, cases, sizeof(cases) / sizeof((cases)[0]), configure)

/* The API cases' config: timeouts short enough that each failure shows
 * within a second (rto_min 2 ms, peer_timeout 100 ms, connect_timeout
 * 300 ms), and a 1024-byte MTU, so that a 3000-byte request is three
 * packets. */
void fx_api_configure(udrpc_config_t *c);

/* A case that cannot run on this transport: it says why and counts as skipped. */
#define FX_SKIP(f, why)                                                 \
    do {                                                                \
        fx_skipped((f), (why));                                         \
        return;                                                         \
    } while (0)
void fx_skipped(struct fx *f, const char *why);

/* The continuation of every fixture request: tag is its struct fx_done. */
void fx_cont(void *rpc_context, void *tag, int status);
/* A zeroed completion record that lives until the pair is torn down (an
 * endpoint's destruction completes what is outstanding); the teardown
 * checks that its continuation ran exactly once. */
struct fx_done *fx_done_new(struct fx *f);

uint64_t fx_ms(void); /* monotonic milliseconds */

/* One event-loop iteration of each endpoint still there. */
void fx_pump(struct fx *f);
#define FX_PUMP_UNTIL(f, cond, limit_ms)                                       \
    do {                                                                       \
        uint64_t _end = fx_ms() + (limit_ms);                                  \
        while (!(cond)) {                                                      \
            fx_pump(f);                                                        \
            if (fx_ms() > _end) {                                              \
                fprintf(stderr, "%s:%d: timed out after %u ms waiting for %s\n", \
                        __FILE__, __LINE__, (unsigned)(limit_ms), #cond);      \
                exit(1);                                                       \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Makes the client (client != 0) or the server afresh with cfg (an
 * unconnected case's: the old one is destroyed). */
void fx_reopen(struct fx *f, int client, const udrpc_config_t *cfg);

/* Connects the client to the server's rpc_id 2 and waits for CONNECTED:
 * the session number. */
int fx_connect(struct fx *f);

/* ---- protocol cases: packets in, TX batch out ---- */

/* The bytes fx_inject sends: payload[i] == (uint8_t)(i * 13 + 1). */
extern uint8_t fx_payload[1 << 16];

/* Feeds one packet to rpc's receive path as if from's peer had sent it,
 * starting from an empty TX batch. */
void fx_inject_raw(udrpc_t *rpc, const void *bytes, size_t len, const struct session *from);
/* A packet of session s's peer: a header with these fields (request type
 * FX_ECHO) and len bytes of fx_payload. */
void fx_inject(udrpc_t *rpc, struct session *s, enum pkt_type type, uint32_t msg_size,
               uint16_t pkt_num, uint64_t req_num, size_t len);
/* Data bytes of packet pkt of a msg_size-byte message. */
size_t fx_chunk(const struct fx *f, uint32_t msg_size, uint16_t pkt);
/* Expects exactly one packet in rpc's TX batch, with these fields; empties
 * it. A mismatch is reported at the caller's line. */
#define fx_expect_tx(rpc, type, pkt_num, req_num, msg_size, dest_session) \
    fx_expect_tx_at(__FILE__, __LINE__, rpc, type, pkt_num, req_num, msg_size, dest_session)
void fx_expect_tx_at(const char *file, int line, udrpc_t *rpc, enum pkt_type type,
                     uint16_t pkt_num, uint64_t req_num, uint32_t msg_size,
                     uint16_t dest_session);
/* The header of the i-th packet in rpc's TX batch (which must hold it). */
#define fx_tx_hdr(rpc, i) fx_tx_hdr_at(__FILE__, __LINE__, rpc, i)
struct pkthdr_fields fx_tx_hdr_at(const char *file, int line, udrpc_t *rpc, unsigned i);

/* stmt drops exactly one packet, counted under UDRPC_DROP_<reason>, and
 * sends nothing. */
#define FX_EXPECT_DROP(rpc, reason, stmt)                                \
    do {                                                                 \
        uint64_t _before = (rpc)->stats.drops[UDRPC_DROP_##reason];      \
        stmt;                                                            \
        CHECK_EQ((rpc)->stats.drops[UDRPC_DROP_##reason], _before + 1);  \
        CHECK_EQ((rpc)->tx_n, 0);                                        \
    } while (0)

#endif
