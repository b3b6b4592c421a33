/*
 * rpc_internal.h — the Rpc endpoint, its sessions and slots. Included only
 * by runtime/ files (and white-box tests).
 *
 * A session has 8 slots; request number r lives in slot r % 8 on both
 * sides, so no lookup is ever needed. Client slots carry the retransmission
 * timer (a wheel node embedded in the slot) and the go-back-N state
 * (num_tx: packets sent, num_rx: packets answered, in one numbering over the
 * request packets then the RFRs, see wire.h). Server slots are the request
 * handles given to handlers.
 */
#ifndef UDRPC_RUNTIME_RPC_INTERNAL_H
#define UDRPC_RUNTIME_RPC_INTERNAL_H

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "clock.h"
#include "cc.h"
#include "compiler.h"
#include "hash.h"
#include "msgbuf.h"
#include "sm.h"
#include "transport.h"
#include "tweak.h"
#include "udrpc.h"
#include "wheel.h"
#include "wire.h"

struct udrpc;
struct session;

/* ---- Nexus ---- */

struct handler_entry {
    udrpc_req_handler_t fn;
    udrpc_handler_mode_t mode;
};

/* A remote Nexus (a process) that sessions of ours talk to. The Nexus
 * thread sends it a heartbeat every interval_tsc and records its answers;
 * the Rpc threads read heard_tsc and unanswered (liveness, rpc_sm.c).
 * Heartbeats are matched to the entry by its nonce, which an off-path
 * sender cannot guess, not by the answer's source address. */
struct nexus_peer {
    union tp_addr addr;              /* its SM socket */
    uint64_t nonce;                  /* carried in our heartbeats to it */
    uint32_t refs;                   /* sessions holding it (peers_lock) */
    uint64_t interval_tsc;           /* the shortest period asked for */
    uint64_t next_hb_tsc;            /* Nexus thread only */
    _Atomic uint64_t heard_tsc;      /* its last answer (or our first ref) */
    atomic_uint unanswered;          /* heartbeats sent since that answer */
    struct nexus_peer *next;
};

struct udrpc_nexus {
    char uri[UDRPC_MAX_URI_LEN];
    union tp_addr sm_addr;
    int sm_fd;
    pthread_t sm_thread;
    atomic_bool stop;
    udrpc_nexus_config_t cfg;
    const struct udrpc_clock *clock;
    struct handler_entry handlers[UDRPC_MAX_REQ_TYPES];
    atomic_bool frozen;                /* an Rpc exists: handlers fixed */
    pthread_mutex_t lock;              /* guards rpcs[] */
    struct udrpc *rpcs[256];
    /* background handlers (bg.c) */
    pthread_t *bg_threads;
    pthread_mutex_t bg_lock;           /* guards the job queue */
    pthread_cond_t bg_cond;
    struct udrpc_req_handle *bg_head, *bg_tail;
    bool bg_stop;
    atomic_uint_fast64_t sm_drops;     /* packets the SM thread refused */
    struct sm_reply_limit stranger_replies; /* SM thread only */
    /* heartbeats (nexus.c) */
    pthread_mutex_t peers_lock;        /* guards peers and their refs */
    struct nexus_peer *peers;
};

/* Sends an SM packet from the Nexus socket (any thread). */
/* Whether the Nexus's SM socket can send to addr's family (an IPv6 one
 * reaches IPv4 only when bound to [::], dual-stack). */
bool udrpc__nexus_reaches(const udrpc_nexus_t *nx, const union tp_addr *addr);
void udrpc__nexus_sm_send(udrpc_nexus_t *nx, const struct sm_pkt *p,
                          const union tp_addr *to);
/* Handles one decoded SM packet as the Nexus thread does: heartbeats are
 * answered or recorded here, the rest go to the queue of the Rpc they
 * name. now_tsc: the caller's clock read. */
void udrpc__nexus_sm_route(udrpc_nexus_t *nx, const struct sm_pkt *p,
                           const union tp_addr *from, uint64_t now_tsc);
/* The heartbeat entry of the Nexus at addr, with one more reference
 * (made on first use, heard "now"); heartbeats go out at least every
 * interval_tsc. NULL: no memory. Any thread, off the datapath. */
struct nexus_peer *udrpc__nexus_peer_get(udrpc_nexus_t *nx, const union tp_addr *addr,
                                         uint64_t interval_tsc);
/* Drops a reference; the last one frees the entry. NULL is ignored. */
void udrpc__nexus_peer_put(udrpc_nexus_t *nx, struct nexus_peer *np);
/* Sends the heartbeats that are due; returns the TSC of the next one
 * due (UINT64_MAX: none). The Nexus thread (and tests). */
uint64_t udrpc__nexus_heartbeats(udrpc_nexus_t *nx, uint64_t now_tsc);

/* ---- Sessions and slots ---- */

enum session_state {
    SS_CONNECTING,      /* client: CONNECT_REQ sent, waiting */
    SS_CONNECTED,
    SS_DISCONNECTING,   /* client: DISCONNECT_REQ sent, waiting */
    SS_ZOMBIE,          /* server: closed, freed once deferred handlers answer */
};

/* SV_IN_BG: a background worker has the request, until the Rpc thread
 * takes its answer off the done stack. Only the Rpc thread writes state. */
enum sslot_state { SV_IDLE, SV_RECEIVING, SV_IN_HANDLER, SV_RESPONDED, SV_IN_BG };
#define SV_MASK(st) (1u << (st))
/* The transitions a server slot may make (UDRPC_ASSERT checks them):
 * a new request starts receiving or goes to its handler; a handler runs
 * here or is handed to a worker, and answers. */
static const uint8_t sv_allowed_from[] = {
    [SV_IDLE] = 0,
    [SV_RECEIVING] = SV_MASK(SV_IDLE) | SV_MASK(SV_RESPONDED),
    [SV_IN_HANDLER] = SV_MASK(SV_IDLE) | SV_MASK(SV_RESPONDED) | SV_MASK(SV_RECEIVING),
    [SV_RESPONDED] = SV_MASK(SV_IN_HANDLER) | SV_MASK(SV_IN_BG),
    [SV_IN_BG] = SV_MASK(SV_IN_HANDLER),
};
#define SV_SET(h, st)                                                           \
    do {                                                                        \
        UDRPC_ASSERT(sv_allowed_from[(st)] & SV_MASK((h)->state));              \
        (h)->state = (st);                                                      \
    } while (0)
/* A request is under way (a new one on the slot would be early). */
#define SV_BUSY (SV_MASK(SV_RECEIVING) | SV_MASK(SV_IN_HANDLER) | SV_MASK(SV_IN_BG))
/* A handler holds the request (it may ask for a response buffer). */
#define SV_HANDLED (SV_MASK(SV_IN_HANDLER) | SV_MASK(SV_IN_BG))

enum { TIMER_RTO = 0, TIMER_PACE = 1, TIMER_DEADLINE = 2, TIMER_QDEADLINE = 3 };
#define NO_SAMPLE UINT32_MAX

struct cslot {                       /* client slot */
    struct wheel_node rto;           /* retransmission timer (TIMER_RTO) */
    struct wheel_node pace;          /* next send time (TIMER_PACE, cc) */
    struct wheel_node deadline;      /* the request's (TIMER_DEADLINE) */
    uint32_t sample_idx;             /* packet whose RTT is being timed */
    uint64_t sample_tx_tsc;          /* ...and when it was sent */
    struct session *sess;
    udrpc_msgbuf_t *req, *resp;
    udrpc_cont_t cont;
    void *tag;
    uint64_t req_num;                /* of the active request */
    uint64_t next_req_num;           /* slot index, then += 8 per request */
    uint64_t tx_gen;                 /* rpc->tx_gen when last queued to TX */
    struct cslot *stall_next;        /* credit-stall queue link */
    uint32_t req_pkts, resp_pkts;    /* resp_pkts 0 until RESP 0 arrives */
    uint32_t resp_size;
    uint32_t num_tx, num_rx;         /* num_tx >= num_rx always */
    uint64_t rx_ahead;               /* bit i: packet num_rx + i arrived early */
    uint32_t retries;                /* RTOs since the last progress: the
                                        backoff's exponent */
    uint64_t rtx_req_num;            /* the last request resent on an RTO,
                                        until found needless (or not) */
    uint32_t gap_signals;            /* signs of a lost packet since progress */
    uint8_t req_type;
    bool active, stalled;
    bool abandoned;                  /* cancelled or past its deadline while
                                        in flight: its continuation has run;
                                        the slot finishes the exchange
                                        (request sent whole, from own_req,
                                        until the server's RESP 0) so that
                                        the server's slot moves on, and
                                        never touches the caller's buffers */
    udrpc_msgbuf_t own_req;          /* abandoned: the request's copy */
};

struct udrpc_req_handle {            /* server slot */
    struct session *sess;
    uint64_t req_num;
    uint64_t tx_gen;
    udrpc_msgbuf_t req;              /* zero-copy view, or owned (req_owned) */
    udrpc_msgbuf_t small_resp;       /* up to UDRPC_SMALL_RESP_BYTES, allocated
                                        at the slot's first use, then kept */
    udrpc_msgbuf_t dyn_resp;         /* larger ones, freed at the next request */
    udrpc_msgbuf_t *resp;            /* small_resp or dyn_resp once chosen */
    uint32_t req_size;               /* of the current request */
    uint32_t req_pkts, num_rx;       /* request reassembly */
    uint64_t rx_ahead;               /* bit i: packet num_rx + i arrived early */
    uint32_t resp_pkts;
    uint32_t resp_pulled;            /* response packets asked for (RESP 0,
                                        then RFRs): udrpc_close serves until
                                        every response was pulled whole */
    uint8_t state;                   /* enum sslot_state */
    uint8_t req_type;
    uint8_t status;                  /* enum wire_status of the response */
    bool has_req, req_owned;
    bool req_in_resp;                /* req is a view of dyn_resp, the buffer
                                        it arrived in (udrpc_resp_msgbuf_in_place) */
    bool dyn_resp_bg;                /* dyn_resp is from rpc->bg_alloc */
    bool bg_answered;                /* set by the worker; cleared by the
                                        Rpc thread when it hands the slot
                                        to a worker again */
    atomic_uint_least64_t abandoned_req; /* the request the client gave up
                                        on (udrpc_req_abandoned): no store
                                        per request; UINT64_MAX: none */
    struct udrpc_req_handle *bg_next;/* job queue or done stack link */
};
typedef struct udrpc_req_handle sslot_t;

struct queued_req {                  /* a request waiting for a free slot */
    struct queued_req *next;
    struct session *sess;
    struct wheel_node deadline;      /* TIMER_QDEADLINE, armed if it has one */
    udrpc_msgbuf_t *req, *resp;
    udrpc_cont_t cont;
    void *tag;
    uint8_t req_type;
};

struct session {
    struct udrpc *rpc;
    uint16_t local_num, remote_num;
    uint16_t gen;                    /* rpc->session_gen[local_num] when made */
    void *ctx;                       /* client: udrpc_connect_ctx's */
    uint8_t state;                   /* enum session_state */
    bool is_client;
    bool tp_counted;                 /* in rpc->tp_sessions[peer.tpi] */
    uint8_t free_slots;              /* client: bitmask of idle slots */
    uint8_t in_handler;              /* server: slots waiting for a response */
    uint32_t credits;
    uint32_t peer_msg_limit;         /* the peer's max_msg_size + 1: a message
                                        of this size or more is refused
                                        (UINT32_MAX until a client hears it;
                                        0 once udrpc_close refuses all) */
    uint64_t req_timeout_tsc;        /* client: requests' default timeout
                                        (udrpc_set_request_timeout); 0 none */
    struct tp_peer peer;
    /* session management */
    uint64_t token;
    uint8_t remote_rpc_id;
    char remote_uri[UDRPC_MAX_URI_LEN];  /* client: server URI; server: client's */
    union tp_addr remote_sm;
    struct nexus_peer *np;           /* the peer's Nexus: its heartbeats */
    uint64_t sm_deadline_tsc, sm_next_retry_tsc;
    uint32_t sm_retries;             /* of the pending SM request: backoff */
    uint64_t last_rx_tsc;            /* the peer's last packet or SM answer */
    struct session *sm_next;         /* pending-SM list link */
    struct session *zombie_next;     /* rpc->zombies link */
    uint64_t dedup_key;              /* server: key in rpc->dedup */
    /* congestion control (client, rpc->cc) */
    struct cc_state cc;              /* Timely's rate and pacing (cc.h) */
    uint64_t pkts_paced, paced_tsc;
    uint64_t rtt_samples, rtt_min_tsc;
    uint64_t srtt_tsc, rttvar_tsc;   /* RFC 6298's estimators (client) */
    uint64_t rto_tsc;                /* SRTT + max(4 RTTVAR, rto_floor), at
                                        most rto_max: a request's first
                                        timeout (each further one doubles
                                        it, for that request) */
    uint64_t rto_floor_tsc;          /* rto_min, raised by needless timeouts */
    /* requests beyond the window, FIFO */
    struct queued_req *q_head, *q_tail;
    union {
        struct cslot c[UDRPC_SLOTS_PER_SESSION];
        sslot_t s[UDRPC_SLOTS_PER_SESSION];
    };
};

/* ---- The Rpc ---- */

struct sm_qentry {
    struct sm_pkt pkt;
    union tp_addr from;
};

struct udrpc {
    /* ---- the datapath's, in the first cache lines (asserted below) ---- */
    /* line 0: read at every packet */
    struct transport *tp;            /* the first (client sessions') */
    const struct transport_ops *tp_ops;
    uint64_t now_tsc;                /* read once per loop iteration */
    uint64_t tx_gen;                 /* bumped at every TX flush */
    struct session **sessions;       /* indexed by local session number */
    uint32_t max_sessions;
    unsigned tx_n;                   /* packets in tx[] */
    size_t dpp;                      /* data bytes per packet */
    size_t max_msg_size;
    /* line 1: per request */
    uint8_t *ctrl_hdrs;              /* UDRPC_CTRL_HDRS headers for CR/RFR */
    uint32_t ctrl_hdr_idx;
    uint32_t ctrl_lkey;
    uint32_t session_credits;
    bool cc;                         /* Timely and pacing on */
    bool closing;                    /* udrpc_close: no new requests, sessions */
    bool ev_mode;                    /* udrpc_get_fd was called (rpc.c) */
    bool ev_kick;                    /* ev_mode, and outside the event loop:
                                        work queued now must wake the fd */
    uint64_t sample_mask;            /* request numbers timed at their start:
                                        req_num & mask == 0 (see client_start) */
    struct cslot *stall_head, *stall_tail;
    struct handler_entry *handlers;  /* the Nexus table (frozen) */
    void *ctx;
    /* lines 2-3: per iteration */
    struct timing_wheel wheel;
    uint64_t loop_tsc;               /* when the last iteration began */
    uint64_t loop_gap_tsc;           /* ...and how long after the one before */
    uint64_t stall_tsc;              /* a longer gap is a stall (UDRPC_STALL_US) */
    uint64_t stalled_at_tsc;         /* the iteration after the last stall */
    uint64_t rto_min_tsc, rto_max_tsc;
    udrpc_stats_t stats;
    struct cc_params ccp;            /* Timely's parameters, link rate resolved */
    unsigned n_tps;                  /* transports (tps[0] == tp) */
    struct transport *tps[UDRPC_MAX_TRANSPORTS];
    /* Of several transports, the loop polls only those that carry a
     * connected session (counted here): an empty poll of udp is a
     * syscall, which an endpoint that talks only over shm would otherwise
     * pay every iteration. The rest are read every UDRPC_SM_CHECK_US and
     * after a sleep, so that strays do not pile up. */
    uint32_t tp_sessions[UDRPC_MAX_TRANSPORTS];
    struct tp_tx_pkt tx[UDRPC_TX_BATCH] __attribute__((aligned(UDRPC_CACHE_LINE)));
    struct tp_rx_pkt rx[UDRPC_RX_BURST];
    udrpc_msgbuf_t ctrl_mb;

    /* control */
    unsigned mtu;                    /* the datagram size of all transports */
    struct transport *reg_tp;        /* the one that registers memory, if any */
    struct msgbuf_alloc alloc;
    udrpc_nexus_t *nx;
    uint8_t rpc_id;
    pthread_t owner;
    udrpc_sm_handler_t sm_handler;
    udrpc_config_t cfg;
    const struct udrpc_clock *clock;
    uint32_t *free_sessions;         /* stack of free session numbers */
    uint16_t *session_gen;           /* per number: the generation of its
                                        next session (1..0x7FFF) */
    /* udrpc_get_fd: an epoll set of the transports' fds, an eventfd that
     * the Nexus thread and BG workers write when they hand us work, and a
     * timerfd armed for the loop's next timer; -1 until asked for. */
    int ev_epfd, ev_timerfd;
    atomic_int ev_notify_fd;
    int notify_handle;               /* the session sm_handler is told of
                                        now (-1: none), and its context */
    void *notify_ctx;
    uint32_t n_free_sessions;
    struct session *sm_pending;      /* sessions with an SM request out */
    struct session *zombies;         /* closed, waiting for deferred answers */
    uint64_t sm_next_check_tsc;
    uint64_t sm_retry_tsc;
    struct sm_reply_limit stranger_replies;
    uint64_t idle_sleep_tsc;         /* 0: never sleep, or no tp wait */
    uint64_t idle_pkts;              /* pkts_rx + pkts_tx when last busy */
    uint64_t idle_since_tsc;
    uint64_t peer_timeout_tsc;       /* cfg.peer_timeout_ms */
    uint64_t silence_tsc;            /* 3/4 of it: a peer silent so long is dead */
    uint64_t liveness_scan_tsc;      /* peer_timeout / UDRPC_LIVENESS_SCANS */
    uint64_t next_liveness_tsc;
    struct hash_table dedup;         /* server: connect de-duplication */
    struct queued_req *qreq_free;
    void **qreq_chunks;
    uint32_t n_qreq_chunks;
    /* background handlers (bg.c) */
    _Atomic(struct udrpc_req_handle *) bg_done; /* answered, for this thread */
    atomic_uint bg_running;          /* handlers of ours running on workers */
    uint32_t bg_pending;             /* handed to workers, not yet answered */
    struct msgbuf_alloc bg_alloc;    /* large responses made on workers */
    pthread_mutex_t bg_alloc_lock;
    /* SM packets from the Nexus thread: a ring that grows on demand, up to
     * UDRPC_SM_QUEUE_LEN (a storm of thousands of connects) */
    pthread_mutex_t smq_lock;
    atomic_uint smq_count;
    uint32_t smq_head, smq_cap;
    struct sm_qentry *smq;
};
/* The datapath's fields come first and stay within their lines. */
_Static_assert(offsetof(struct udrpc, tp) == 0 && offsetof(struct udrpc, max_msg_size) < 64,
               "line 0: read at every packet");
_Static_assert(offsetof(struct udrpc, ctx) < 128, "line 1: per request");
_Static_assert(offsetof(struct udrpc, stalled_at_tsc) < 256, "lines 2-3: per iteration");
_Static_assert(offsetof(struct udrpc, tx) % UDRPC_CACHE_LINE == 0, "tx[] starts a line");

static inline bool rpc_is_owner(const struct udrpc *rpc)
{
    return pthread_equal(rpc->owner, pthread_self());
}

/* Queues the SM packet for the Rpc thread (called by the Nexus thread). */
void udrpc__rpc_sm_enqueue(struct udrpc *rpc, const struct sm_pkt *p,
                           const union tp_addr *from);

/* config.c: 0, or -EINVAL for a configuration out of range. */
int udrpc__config_check(const udrpc_config_t *c);

/* rpc_sm.c */
void udrpc__sm_process_queue(struct udrpc *rpc);
void udrpc__sm_check_timers(struct udrpc *rpc);
void udrpc__check_liveness(struct udrpc *rpc);
void udrpc__sm_send_req(struct udrpc *rpc, struct session *s, uint8_t type);
/* Tells the server, best effort, that request req_num was given up on. */
void udrpc__sm_send_cancel(struct udrpc *rpc, struct session *s, uint64_t req_num);
void udrpc__sm_pending_remove(struct udrpc *rpc, struct session *s);
void udrpc__sm_notify(struct udrpc *rpc, int session, void *session_ctx, udrpc_sm_event_t ev,
                      int err);
/* Asks the server whether it still has the session (SM_PING_REQ). */
void udrpc__session_check(struct udrpc *rpc, struct session *s);

/* session.c */
struct session *udrpc__session_alloc(struct udrpc *rpc, bool is_client);
void udrpc__session_free(struct udrpc *rpc, struct session *s);
void udrpc__session_connected(struct udrpc *rpc, struct session *s);
/* The client session is over (err: -ETIMEDOUT, the peer went silent;
 * -ECONNABORTED, the server says it no longer has it). */
void udrpc__session_fail(struct udrpc *rpc, struct session *s, int err);
/* Tells the session's peer, best effort, that this endpoint is closing. */
void udrpc__session_notify_closed(struct udrpc *rpc, struct session *s);

/* datapath.c: the datapath (rpc_tx.c, rpc_client.c, rpc_pkt_loss.c,
 * rpc_server.c, rpc_rx.c) */
void udrpc__process_rx(struct udrpc *rpc, const struct tp_rx_pkt *pkts, unsigned n);
/* The same, for a transport whose packets may come by reference. */
void udrpc__process_rx_refs(struct udrpc *rpc, const struct tp_rx_pkt *pkts, unsigned n);
void udrpc__tx_flush(struct udrpc *rpc);
void udrpc__fire_timers(struct udrpc *rpc);
void udrpc__process_stalls(struct udrpc *rpc);
void udrpc__client_start_queued(struct udrpc *rpc, struct session *s);
/* At CONNECTED: requests queued before it over the server's max_msg_size
 * end with -EMSGSIZE. */
void udrpc__client_check_queued(struct udrpc *rpc, struct session *s);
/* Every request on the client session, queued or in flight, ends: its
 * continuation runs once with err. */
void udrpc__session_fail_requests(struct udrpc *rpc, struct session *s, int err);
void udrpc__server_respond_bg(struct udrpc *rpc, sslot_t *h);
void udrpc__sslot_put_dyn_resp(struct udrpc *rpc, sslot_t *h);
/* Voids every payload its transports have sent by reference (shm), before
 * a buffer an unread reference may name is freed or handed back. */
void udrpc__void_refs(struct udrpc *rpc);

/* bg.c: background handlers */
int udrpc__bg_start(udrpc_nexus_t *nx);
void udrpc__bg_stop(udrpc_nexus_t *nx);
void udrpc__bg_submit(struct udrpc *rpc, sslot_t *h);
void udrpc__bg_done_push(struct udrpc *rpc, sslot_t *h);
void udrpc__bg_process_done(struct udrpc *rpc);
void udrpc__bg_detach(struct udrpc *rpc);

/* A session's handle, what the user holds: its number, and in bits
 * 16-30 its generation, so that the handle of a session that has ended
 * never reaches a later session with the same number. */
static inline int session_handle(const struct session *s)
{
    return (int)((uint32_t)s->gen << 16 | s->local_num);
}

/* The live session of handle h (tests: udrpc__session_get);  NULL with *err -EINVAL (never a handle of
 * ours) or -ENOTCONN (its session has ended). */
static inline struct session *session_of(const struct udrpc *rpc, int h, int *err)
{
    /* A negative h has gen >= 0x8000, which no session has. */
    uint32_t num = (uint32_t)h & 0xFFFFu, gen = (uint32_t)h >> 16;
    struct session *s = likely(num < rpc->max_sessions) ? rpc->sessions[num] : NULL;
    if (unlikely(!s || s->gen != gen)) {
        *err = h < 0 || gen == 0 || num >= rpc->max_sessions ? -EINVAL : -ENOTCONN;
        return NULL;
    }
    return s;
}

/* Another thread handed this endpoint work (an SM packet, a BG answer):
 * wake an event loop that waits on udrpc_get_fd. One load when none does. */
static inline void udrpc__ev_notify(struct udrpc *rpc)
{
    int fd = atomic_load_explicit(&rpc->ev_notify_fd, memory_order_acquire);
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof(one));
        (void)w; /* EAGAIN: the counter is full, so it is readable anyway */
    }
}

/* A call outside the event loop queued sends (or other work) that the
 * next iteration carries out: with udrpc_get_fd, make the fd readable so
 * that a caller waiting on it runs that iteration. */
static inline void udrpc__ev_kick(struct udrpc *rpc)
{
    if (unlikely(rpc->ev_kick))
        udrpc__ev_notify(rpc);
}

/* The public calls that take a client session (not the datapath's
 * enqueue, which orders its checks for speed): 0 and *out, or -EINVAL (no
 * rpc, no handle, a server session), -EPERM (wrong thread), -ENOTCONN
 * (the session has ended). */
static inline int client_session_arg(struct udrpc *rpc, int h, struct session **out)
{
    int err = -EINVAL;
    if (!rpc)
        return -EINVAL;
    if (!rpc_is_owner(rpc))
        return -EPERM;
    struct session *s = session_of(rpc, h, &err);
    if (!s)
        return err;
    if (!s->is_client)
        return -EINVAL;
    *out = s;
    return 0;
}

/* Tests and tools: the live session of handle h, or NULL. */
static inline struct session *udrpc__session_get(const struct udrpc *rpc, int h)
{
    int err;
    return session_of(rpc, h, &err);
}

#endif
