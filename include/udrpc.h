/**
 * @file udrpc.h
 * @brief The whole public API of udrpc, a datagram RPC runtime in the
 * line of eRPC (NSDI 2019).
 *
 * Model: one process creates one Nexus (udrpc_nexus_t), which owns the UDP
 * port used for session management (SM) and the table of request handlers.
 * Each thread that sends or serves RPCs creates its own endpoint (udrpc_t)
 * and drives it with udrpc_run_event_loop_once(); an endpoint is never shared
 * between threads. Clients open sessions to remote endpoints, named by the
 * remote Nexus URI ("host:port") and the remote endpoint's rpc_id, and
 * enqueue requests on them; the response arrives in a continuation.
 *
 * Conventions, for every function below:
 *  - Errors are negative errno values; udrpc_strerror() explains them.
 *  - "Rpc thread" means the thread that created the udrpc_t. Functions that
 *    take a udrpc_t (or a request handle) must be called from it; calls
 *    from other threads are detected where cheap and refused with -EPERM.
 *  - Message buffers (udrpc_msgbuf_t) come from udrpc_msgbuf_alloc() on the
 *    same udrpc_t that uses them.
 */
#ifndef UDRPC_H
#define UDRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the library's exported symbols (everything else is hidden). */
#if defined(UDRPC_BUILDING) && defined(__GNUC__)
#define UDRPC_API __attribute__((visibility("default")))
#else
#define UDRPC_API
#endif

/** API version: a minor bump adds, a major bump breaks. */
#define UDRPC_VERSION_MAJOR 0
/** API version: see UDRPC_VERSION_MAJOR. */
#define UDRPC_VERSION_MINOR 11 /* 0.11: shm's heap (stats shm_ref_sends,
                                  UDRPC_SHM_HEAP_MB);
                                  0.10: udrpc_resp_msgbuf_in_place;
                                  0.9: xdp's in-place sends (stats
                                  xdp_in_place_sends, UDRPC_XDP_IN_PLACE);
                                  0.8: the xdp transport, stats xdp_*;
                                  0.7: the shm transport, stats shm_*;
                                  0.6: udrpc_req_type;
                                  0.5: deadlines and cancellation, max_msg_size
                                  exchanged at connect (SM version 4);
                                  0.4: IPv6 URIs, udrpc_uri_check;
                                  0.3: udp batching (config udp_gso, stats
                                  udp_*); 0.2: time-based liveness,
                                  adaptive RTO (rto_min_us, rto_max_us,
                                  peer_timeout_ms replace rto_us and
                                  max_retries) */

/** Number of request types: req_type is a uint8_t. */
#define UDRPC_MAX_REQ_TYPES 256
/** Longest Nexus URI, "host:port" or "[v6addr]:port", including the
 *  terminating NUL. */
#define UDRPC_MAX_URI_LEN 64

/** The process's Nexus: the session-management UDP port and thread, the
 *  request handler table and the background workers. One per process. */
typedef struct udrpc_nexus udrpc_nexus_t;
/** An endpoint ("Rpc"): sessions, the datapath and its event loop. One per
 *  thread, used only by the thread that created it. */
typedef struct udrpc udrpc_t;
/** A server's handle of one received request, given to its handler; valid
 *  until udrpc_enqueue_response(). */
typedef struct udrpc_req_handle udrpc_req_handle_t;

/** A message buffer. Data lives in memory owned by the udrpc_t that
 *  allocated it (registered with the NIC on RDMA transports); the library
 *  keeps per-packet header room around it, so sending is zero-copy. */
typedef struct udrpc_msgbuf {
    uint8_t *buf;      /**< application bytes */
    size_t   size;     /**< bytes in use (what is sent) */
    size_t   max_size; /**< capacity */
    void    *priv;     /**< library-owned; do not touch */
} udrpc_msgbuf_t;

/** Session events, delivered to the endpoint's udrpc_sm_handler_t. */
typedef enum {
    UDRPC_SM_CONNECTED,      /**< udrpc_connect() succeeded; err is 0 */
    UDRPC_SM_CONNECT_FAILED, /**< err: -ETIMEDOUT (no answer), -ENOENT (no
                                  such rpc_id), -EPROTONOSUPPORT (transport
                                  mismatch), -EMEDIUMTYPE (MTU mismatch),
                                  -ENOSPC (server full) */
    UDRPC_SM_DISCONNECTED,   /**< udrpc_disconnect() done; err 0 or -ETIMEDOUT
                                  (the peer did not confirm; freed anyway) */
    UDRPC_SM_SESSION_FAILED, /**< the session is over: every request on it
                                  has completed with -ECONNRESET and it is
                                  freed. err: -ETIMEDOUT (nothing heard
                                  from the peer's process for
                                  peer_timeout_ms), or -ECONNABORTED (the
                                  server says it no longer has the
                                  session: its endpoint was destroyed, or
                                  its process restarted) */
} udrpc_sm_event_t;

/** Where a request handler runs (udrpc_register_handler()). */
typedef enum {
    UDRPC_HANDLER_FG, /**< runs on the Rpc thread inside the event loop */
    UDRPC_HANDLER_BG, /**< runs on a Nexus worker thread: may block or run
                           long; needs bg_threads > 0 */
} udrpc_handler_mode_t;

/** Server-side request handler. It reads the request with
 *  udrpc_req_msgbuf(), fills udrpc_resp_msgbuf() and calls
 *  udrpc_enqueue_response(), now or later. FG handlers run on the Rpc
 *  thread inside the event loop, and must not block; they may issue
 *  requests of their own (nested RPCs) and answer in the continuation. BG
 *  handlers run on a Nexus worker; their response is handed back to the
 *  Rpc thread, which sends it at its next loop iteration. A BG handler must
 *  not call functions that take a udrpc_t (they return -EPERM off the Rpc
 *  thread): it has no event loop for a continuation to run on. */
typedef void (*udrpc_req_handler_t)(udrpc_req_handle_t *h, void *rpc_context);
/** Client continuation: runs exactly once per accepted request, on the Rpc
 *  thread, with status 0 (the response is in the resp msgbuf, resp->size
 *  set) or a negative errno. */
typedef void (*udrpc_cont_t)(void *rpc_context, void *tag, int status);
/** Session-management events of sessions this endpoint opened; session is
 *  the handle udrpc_connect() returned (for an ending session, the handle
 *  is already refused with -ENOTCONN). */
typedef void (*udrpc_sm_handler_t)(int session, udrpc_sm_event_t ev, int err,
                                   void *rpc_context);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/** Nexus configuration. Initialise with udrpc_nexus_config_default(). */
typedef struct udrpc_nexus_config {
    unsigned sm_retry_ms;   /**< SM request retry interval (default 20) */
    unsigned bg_threads;    /**< worker threads for UDRPC_HANDLER_BG
                                 handlers, shared by the Nexus's
                                 endpoints (default 0: none, and BG
                                 registration fails) */
} udrpc_nexus_config_t;

/** Fault injection (tests), on the sending side of every transport.
 *  Probabilities are in parts per million of packets; all zero by default.
 *  loop does every kind; udp, verbs and mlx5 drop and duplicate (a
 *  transport given a kind it cannot do fails udrpc_create with
 *  -ENOTSUP); the NIC model under mlx5 in the tests does every kind. */
typedef struct udrpc_faults {
    uint64_t seed;          /**< PRNG seed: runs with one seed are repeatable */
    uint32_t drop_ppm;      /**< drop a packet */
    uint32_t dup_ppm;       /**< deliver a packet twice */
    uint32_t reorder_ppm;   /**< hold a packet back behind the next one */
    uint32_t corrupt_ppm;   /**< flip one random bit */
    uint32_t delay_ppm;     /**< hold a packet for delay_us */
    uint32_t delay_us;      /**< how long a delayed packet is held */
} udrpc_faults_t;

/** The "loop" transport's link model of this endpoint's downlink (0:
 *  none): every packet to it is serialised at link_bytes_per_s through
 *  one FIFO queue of link_queue_bytes (tail drop when full), then delayed
 *  by link_delay_us; in real time (TSC), like a switch port. */
typedef struct udrpc_loop_link {
    uint64_t link_bytes_per_s;/**< the link's rate (0: no link model) */
    uint32_t link_delay_us;   /**< propagation delay of the link model */
    uint32_t link_queue_bytes;/**< its queue's capacity (default 1 MiB) */
} udrpc_loop_link_t;

/** Timely congestion control's parameters (Mittal et al., SIGCOMM 2015),
 *  per endpoint; udrpc_config_default() sets the paper's and eRPC's. */
typedef struct udrpc_timely_params {
    double   link_rate_bytes_per_s; /**< a session's starting and highest
                                         rate; 0: the transport's (loop: its
                                         link model's rate, else 100 Gbit/s;
                                         udp: 10 Gbit/s) */
    double   min_rate_bytes_per_s;  /**< the lowest rate (1 MB/s) */
    double   add_rate_bytes_per_s;  /**< additive increase step (5 MB/s) */
    double   beta;                  /**< multiplicative decrease (0.26) */
    double   ewma_alpha;            /**< weight of the newest RTT difference
                                         (0.46) */
    unsigned min_rtt_us;            /**< normalises the gradient (2) */
    unsigned t_low_us;              /**< below: additive increase (50) */
    unsigned t_high_us;             /**< above: decrease by RTT (1000) */
    unsigned hai_after;             /**< increases in a row before the step
                                         is 5x (hyperactive increase, 5) */
} udrpc_timely_params_t;

/** Rpc configuration. Initialise with udrpc_config_default(), which applies
 *  the environment (UDRPC_TRANSPORT, UDRPC_DEVICE, UDRPC_MTU,
 *  UDRPC_RTO_MIN_US, UDRPC_RTO_MAX_US, UDRPC_PEER_TIMEOUT_MS,
 *  UDRPC_IDLE_SLEEP_US, UDRPC_CC, UDRPC_UDP_GSO, UDRPC_GID_INDEX), then change fields. */
typedef struct udrpc_config {
    const char *transport;      /**< "auto" (mlx5 where mlx5dv drives an
                                     active port, else verbs where any
                                     RDMA port is active, else xdp where
                                     it would run zero-copy on the named
                                     interface, else udp; with shm beside
                                     it for peers on this host), "udp",
                                     "loop", "verbs", "mlx5", "shm", "xdp"
                                     (AF_XDP on interface device, else
                                     UDRPC_XDP_IF, else the one holding the
                                     Nexus's IPv4 address; a list of
                                     interfaces gives each endpoint of the
                                     process the next free one; queue
                                     UDRPC_XDP_QUEUE, 0; mode
                                     UDRPC_XDP_MODE native|skb, by default
                                     SKB on veth and native elsewhere;
                                     needs CAP_NET_ADMIN, CAP_NET_RAW and
                                     CAP_BPF, or root); or a
                                     comma-separated list of them
                                     ("loop,udp", up to 4): the endpoint
                                     holds each, its client sessions use
                                     the first, and a server session the
                                     one its client speaks (all send one
                                     datagram size, the smallest MTU: set
                                     mtu alike at both ends; at most one
                                     may be verbs or mlx5). udrpc_create()
                                     fails with ENODEV where a named one is
                                     absent, EINVAL for an unknown name */
    const char *device;         /**< RDMA device name; NULL: first active.
                                     xdp: the network interface, or a
                                     comma-separated list of them */
    unsigned mtu;               /**< largest datagram incl. 16 B header;
                                     0: the transport's default (udp: the
                                     bound interface's MTU less IP and UDP
                                     headers; loop: 4096). Both ends of a
                                     session must use the same. */
    unsigned session_credits;   /**< packets in flight per session (32) */
    unsigned rto_min_us;        /**< the retransmission timeout before a
                                     session's first RTT sample, and the
                                     least margin it keeps above the
                                     smoothed RTT (5000; env
                                     UDRPC_RTO_MIN_US). The RTO adapts per
                                     session: RFC 6298's SRTT + max(4
                                     RTTVAR, rto_min_us) (the floor as
                                     Linux applies it), at most rto_max_us;
                                     it doubles on each timeout of a
                                     request, for that request. Lower
                                     recovers losses sooner, but
                                     resends for nothing whenever a busy
                                     machine delays a reply by more than
                                     it. */
    unsigned rto_max_us;        /**< highest RTO, the backoff's cap (100000;
                                     env UDRPC_RTO_MAX_US) */
    unsigned peer_timeout_ms;   /**< a session fails (client: its requests
                                     end with -ECONNRESET and sm_handler
                                     hears SESSION_FAILED -ETIMEDOUT;
                                     server: it is freed) within this long
                                     of the last thing heard from the
                                     peer's process: a data packet, or an
                                     answer to the heartbeats that the two
                                     Nexus threads exchange 8 times in
                                     it; the peer is declared dead once
                                     silent for 3/4 of it (2000; env
                                     UDRPC_PEER_TIMEOUT_MS). Heartbeats are
                                     answered by the Nexus thread, so a
                                     peer whose endpoint thread is busy,
                                     stalled in a handler or not polled
                                     stays alive; only a dead, frozen or
                                     unreachable process is declared dead.
                                     The default rides out a 500 ms freeze
                                     (a GC pause, stolen VM time, a
                                     debugger) with room to spare; lower
                                     detects a killed peer sooner, at the
                                     risk of failing live sessions across
                                     such pauses. Min 10. */
    unsigned connect_timeout_ms;/**< CONNECT_FAILED -ETIMEDOUT after (1000) */
    unsigned max_sessions;      /**< sessions per endpoint (4096, max 65535) */
    size_t   max_msg_size;      /**< largest request or response (8 MiB,
                                     max 16 MiB - 1) */
    unsigned idle_sleep_us;     /**< udrpc_run_event_loop() sleeps in the
                                     kernel (at most 1 ms at a time, waking
                                     at the next packet) once the endpoint
                                     has sent and received nothing for this
                                     long; 0: never sleep, busy-poll (the
                                     default; env UDRPC_IDLE_SLEEP_US).
                                     udrpc_run_event_loop_once() never
                                     sleeps. Transports that cannot block
                                     (loop, verbs, mlx5) always busy-poll;
                                     an endpoint of several transports
                                     (shm,udp) sleeps on all of them. */
    bool     cc;                /**< Timely congestion control with pacing
                                     (default false; env UDRPC_CC=1) */
    bool     udp_gso;           /**< udp: batch in the kernel (default true;
                                     env UDRPC_UDP_GSO=0 turns it off): a
                                     burst's packets to one peer leave as
                                     one UDP GSO send, and the kernel hands
                                     datagrams that arrive together as one
                                     buffer (UDP GRO). Where the kernel or
                                     the device refuses either, it is off,
                                     logged once; udrpc_stats_t's
                                     udp_offload says what is on. Peers
                                     need not agree: a receiver without
                                     GRO gets separate datagrams. */
    udrpc_timely_params_t timely; /**< its parameters, when cc is on */
    int      gid_index;         /**< verbs and mlx5: the GID index of the
                                     port; -1 (default): the first IPv4
                                     (RoCE v2) one, else 0 (env
                                     UDRPC_GID_INDEX) */
    udrpc_faults_t faults;      /**< fault injection (tests): none by default */
    udrpc_loop_link_t loop;     /**< "loop" transport only: its link model */
} udrpc_config_t;

/** Statistics of one endpoint, counted since udrpc_create(). */
typedef enum {
    UDRPC_DROP_SHORT,        /**< datagram shorter than the header */
    UDRPC_DROP_MAGIC,        /**< wrong magic or reserved bits set */
    UDRPC_DROP_BAD_TYPE,     /**< packet type invalid for the session role */
    UDRPC_DROP_BAD_SESSION,  /**< session number out of range or unused */
    UDRPC_DROP_NOT_CONNECTED,/**< session exists but is not connected */
    UDRPC_DROP_BAD_SOURCE,   /**< source is not the session's peer */
    UDRPC_DROP_MSG_SIZE,     /**< message size over the limit */
    UDRPC_DROP_BAD_LENGTH,   /**< payload length does not match the header */
    UDRPC_DROP_STALE_REQ,    /**< request number behind the slot; or (shm)
                                  a payload by reference that its sender
                                  may have taken back before we read it */
    UDRPC_DROP_FUTURE_REQ,   /**< request number ahead of the slot's window */
    UDRPC_DROP_BAD_PKT_NUM,  /**< packet number outside the message */
    UDRPC_DROP_DUPLICATE,    /**< already received */
    UDRPC_DROP_OUT_OF_ORDER, /**< ahead of the next expected packet */
    UDRPC_DROP_TX_FULL,      /**< the transport could not take a packet */
    UDRPC_DROP_NO_MEMORY,    /**< no buffer for a multi-packet request */
    UDRPC_DROP_MAX
} udrpc_drop_reason_t;

/** Counters of one endpoint since udrpc_create(), from udrpc_get_stats().
 *  On a clean network retransmits and every drop counter stay 0. */
typedef struct udrpc_stats {
    uint64_t pkts_tx;            /**< datagrams sent */
    uint64_t pkts_rx;            /**< datagrams received (drops included) */
    uint64_t reqs_sent;          /**< requests accepted by enqueue_request */
    uint64_t reqs_completed;     /**< continuations run (any status) */
    uint64_t reqs_handled;       /**< handler invocations (server) */
    uint64_t retransmits;        /**< packets sent again */
    uint64_t rto_fired;          /**< retransmission timeouts */
    uint64_t rto_needless;       /**< timeouts found needless: the server
                                      had the request all along (its
                                      answer was slow, not lost); each
                                      raises the session's RTO margin */
    uint64_t credit_stalls;      /**< times a request found its session's
                                      credits spent (32 packets in flight,
                                      session_credits) and had to wait for
                                      some to come back: each wait counts
                                      once, so large messages on a few
                                      sessions count millions per second.
                                      A sign of windows, not of loss */
    uint64_t dup_rx;             /**< duplicate packets received */
    uint64_t sessions_connected; /**< sessions that reached CONNECTED */
    uint64_t sessions_failed;    /**< sessions failed (peer silent) */
    uint64_t sessions_active;    /**< sessions open now */
    uint64_t drops[UDRPC_DROP_MAX]; /**< received packets dropped, by
                                      reason (udrpc_drop_reason_t; names
                                      from udrpc_drop_reason_str()) */
    uint64_t sm_drops;           /**< malformed or unexpected SM packets,
                                      and requests from strangers beyond
                                      the answer limit (1000/s) */
    uint64_t kernel_drops;       /**< datagrams the kernel dropped at this
                                      endpoint's socket and its Nexus's SM
                                      socket before udrpc saw them: ones
                                      that cannot be udrpc's (the socket
                                      filter, which udp also applies to
                                      each datagram after the first of a
                                      GRO buffer) or a full receive buffer */
    uint32_t udp_offload;        /**< udp: what kernel batching is on,
                                      UDRPC_UDP_GSO | UDRPC_UDP_GRO; 0 when
                                      off (config udp_gso) or refused */
    uint64_t udp_gso_sends;      /**< udp: sends that carried several
                                      datagrams (GSO) ... */
    uint64_t udp_gso_pkts;       /**< ... and the datagrams they carried */
    uint64_t udp_gro_bufs;       /**< udp: receives that held several
                                      datagrams (GRO) ... */
    uint64_t udp_gro_pkts;       /**< ... and the datagrams they held */
    uint64_t reqs_abandoned;     /**< client: requests ended early, past
                                      their deadline (-ETIMEDOUT) or
                                      cancelled (-ECANCELED), queued or in
                                      flight */
    uint64_t late_responses;     /**< client: answers to requests already
                                      ended early, read and ignored */
    uint64_t reqs_abandoned_by_client; /**< server: notices that a client
                                      gave up on a request whose handler
                                      still held it (udrpc_req_abandoned) */
    uint64_t shm_channels;       /**< shm: channels open now (one per
                                      endpoint pair on this host) */
    uint64_t shm_refused;        /**< shm: attaches refused (another uid,
                                      a bad hello or region, no room) */
    uint64_t shm_bad_rings;      /**< shm: channels closed because the
                                      peer broke a ring's rules */
    uint64_t shm_ring_full;      /**< shm: packets that found their ring
                                      full and waited in the endpoint's
                                      backlog (32 MiB); beyond it, they count
                                      in drops[UDRPC_DROP_TX_FULL] */
    uint32_t xdp_mode;           /**< xdp: UDRPC_XDP_ON, with
                                      UDRPC_XDP_NATIVE (the driver runs
                                      the XDP program; else SKB mode) and
                                      UDRPC_XDP_ZEROCOPY (else copy mode);
                                      0 without xdp */
    uint64_t xdp_rx_bad;         /**< xdp: frames to this endpoint's port
                                      dropped as malformed: a bad or short
                                      Ethernet, IPv4 or UDP header, lengths
                                      that disagree, a fragment, a wrong
                                      checksum */
    uint64_t xdp_tx_kicks;       /**< xdp: sendto calls that told the
                                      kernel to send (one per burst, and
                                      one per event-loop pass while sends
                                      wait in the ring) */
    uint64_t xdp_in_place_sends; /**< xdp: packets whose payload the
                                      kernel or NIC read from the msgbuf in
                                      place, not from a copy */
    uint64_t shm_ref_sends;      /**< shm: packets sent by reference, their
                                      payload read by the peer where our
                                      msgbuf holds it, not copied into the
                                      ring (48 KiB and up, msgbufs in the
                                      endpoint's shm heap) */
} udrpc_stats_t;

/** udrpc_stats_t.xdp_mode: an xdp transport is in use ... */
#define UDRPC_XDP_ON 1u
/** ... with its program run by the driver (native mode; else SKB mode) ... */
#define UDRPC_XDP_NATIVE 2u
/** ... and zero-copy frames (else the kernel copies each frame). */
#define UDRPC_XDP_ZEROCOPY 4u
/** ... and payloads of 512 B and more sent from their msgbuf in place
 * (msgbufs then come from the socket's UMEM: UDRPC_XDP_ARENA_MB, 32 MiB by
 * default; beyond it they are copied). On by default in zero-copy mode;
 * UDRPC_XDP_IN_PLACE=0|1 decides. Needs Linux 6.6 (multi-buffer sockets). */
#define UDRPC_XDP_IN_PLACE 8u

/** udrpc_stats_t.udp_offload: GSO (batched sends) is on. */
#define UDRPC_UDP_GSO 1u
/** udrpc_stats_t.udp_offload: GRO (batched receives) is on. */
#define UDRPC_UDP_GRO 2u

/* ------------------------------------------------------------------------ */
/* Nexus                                                                     */
/* ------------------------------------------------------------------------ */

/** A program's log function: level 0 error, 1 warn, 2 info, 3 debug, 4
 *  trace; line is "rpc=N session=M: text", without a newline, valid for
 *  the call only. */
typedef void (*udrpc_log_fn_t)(int level, const char *line, void *ctx);

/** Sends udrpc's log lines to fn instead of stderr (NULL: stderr again).
 *  Which lines are on is still UDRPC_LOG's (default warn). Process-wide,
 *  any thread; fn is called from whichever udrpc thread logs (endpoint
 *  threads, the Nexus thread), possibly at once. */
UDRPC_API void udrpc_set_log_fn(udrpc_log_fn_t fn, void *ctx);

/** Fills *cfg with defaults. Any thread. */
UDRPC_API void udrpc_nexus_config_default(udrpc_nexus_config_t *cfg);

/** Checks a URI as udrpc_nexus_create() and udrpc_connect() read it:
 *  - "a.b.c.d:port", an IPv4 literal;
 *  - "[v6addr]:port", an IPv6 literal ("[::1]:31850"); a link-local one
 *    may carry a zone, "[fe80::1%eth0]:port" (interface name or index);
 *  - "name:port", a name that resolves to either family: the first
 *    address getaddrinfo() gives (RFC 6724's order, which /etc/gai.conf
 *    may change) of a family this host can open a socket of. That is
 *    ::1 for "localhost" on most systems: a server and its clients that
 *    use one name agree.
 *  Port 0..65535 (a Nexus's port 0 picks one; a peer's is never 0).
 *  Returns 0, or -EINVAL and, if why is not NULL, *why: a static string
 *  saying what is wrong (an unterminated bracket, a zone on a global
 *  address, a port out of range, an empty host, a name that does not
 *  resolve, ...). May block on a name lookup. Any thread. */
UDRPC_API int udrpc_uri_check(const char *uri, const char **why);

/** The URI a client's Nexus binds to in order to reach remote_uri: the
 *  address of this host that its routes send from ("[::1]:0" for
 *  "[::1]:31850", "127.0.0.1:0" for "127.0.0.1:31850", the outgoing
 *  interface's address for another host), port 0, written into out. Both
 *  ends then have the same family, and the same MTU on loopback. Returns 0,
 *  -EINVAL for a bad URI, or -errno (-ENETUNREACH: no route). Sends
 *  nothing; may block on a name lookup. Any thread. */
UDRPC_API int udrpc_local_uri_for(const char *remote_uri, char out[UDRPC_MAX_URI_LEN]);

/** Creates the process's Nexus: binds the SM UDP socket at local_uri (see
 *  udrpc_uri_check(); port 0 picks one) and starts the SM thread. An IPv6
 *  address binds IPv6 only, except "[::]": dual-stack, every address of
 *  both families. Endpoints' udp sockets bind where the Nexus does. cfg
 *  may be NULL (defaults). Returns NULL on failure with errno set (EINVAL
 *  bad URI, logged with the reason; EADDRINUSE, ...). Any thread. */
UDRPC_API udrpc_nexus_t *udrpc_nexus_create(const char *local_uri,
                                            const udrpc_nexus_config_t *cfg);

/** The URI the Nexus is bound to ("127.0.0.1:31850", "[::1]:31850"), with
 *  the real port when it was created with port 0. Owned by the Nexus. Any
 *  thread. */
UDRPC_API const char *udrpc_nexus_uri(const udrpc_nexus_t *nx);

/** Registers fn for req_type. Must precede the first udrpc_create():
 *  returns -EBUSY after it, -EEXIST if req_type has a handler, -EINVAL for
 *  a NULL fn or mode, or UDRPC_HANDLER_BG without bg_threads. Returns 0 on
 *  success. Any thread, before endpoints exist. */
UDRPC_API int udrpc_register_handler(udrpc_nexus_t *nx, uint8_t req_type,
                                     udrpc_req_handler_t fn,
                                     udrpc_handler_mode_t mode);

/** Stops the SM thread and frees the Nexus. Every udrpc_t of this Nexus
 *  must have been destroyed. NULL is ignored. */
UDRPC_API void udrpc_nexus_destroy(udrpc_nexus_t *nx);

/* ------------------------------------------------------------------------ */
/* Rpc endpoint                                                              */
/* ------------------------------------------------------------------------ */

/** Fills *cfg with defaults, then applies the environment. Any thread. */
UDRPC_API void udrpc_config_default(udrpc_config_t *cfg);

/** Creates an endpoint with id rpc_id (unique in its Nexus) owned by the
 *  calling thread. rpc_context is passed to handlers, continuations and
 *  sm_handler (which may be NULL for a server). cfg NULL: defaults.
 *  Returns NULL with errno set: EEXIST (rpc_id taken), EINVAL (bad cfg),
 *  ENODEV (no such transport here), ENOMEM. */
UDRPC_API udrpc_t *udrpc_create(udrpc_nexus_t *nx, uint8_t rpc_id,
                                void *rpc_context,
                                udrpc_sm_handler_t sm_handler,
                                const udrpc_config_t *cfg);

/** Destroys the endpoint: outstanding requests complete with -ECONNRESET,
 *  each session's peer is told once, best effort (a client's server frees
 *  its side; a server's clients hear SESSION_FAILED -ECONNABORTED), with
 *  no wait for answers, and memory is returned. Rpc thread. NULL is
 *  ignored. */
UDRPC_API void udrpc_destroy(udrpc_t *rpc);

/** Closes the endpoint gracefully, then destroys it: rpc is gone when
 *  this returns, whatever the result. In order, for at most timeout_ms:
 *  1. no new request, connect or session is accepted (-ESHUTDOWN, also
 *     from continuations that run meanwhile); the requests in flight
 *     complete (not those given up on already: their continuations ran),
 *     and handlers that hold requests (deferred FG, BG) answer and their
 *     answers are sent;
 *  2. every client session is disconnected (what is still outstanding ends
 *     with -ECONNRESET) and the servers' acknowledgements are awaited, so
 *     that servers free their sessions at once instead of finding the
 *     client silent;
 *  3. an endpoint with server sessions keeps serving until every answer
 *     has been pulled whole (a client asks for a long response packet by
 *     packet, and after a loss only once its RTO fires), then until no
 *     packet has come for 5 ms (a lost last packet asked for again; one
 *     asked for later than that finds the server gone);
 *  4. as udrpc_destroy(): the clients of server sessions are told
 *     (SESSION_FAILED -ECONNABORTED), memory is returned.
 *  The loop runs on this thread meanwhile (continuations, sm_handler).
 *  Returns 0, or -ETIMEDOUT if the time ran out first (the rest was cut
 *  short as udrpc_destroy does), -EINVAL, -EPERM (wrong thread: nothing
 *  done). Rpc thread; not from a handler or continuation. */
UDRPC_API int udrpc_close(udrpc_t *rpc, unsigned timeout_ms);

/** A file descriptor for an existing event loop (epoll, poll, libuv,
 *  io_uring): it polls readable (POLLIN, level-triggered) when
 *  udrpc_run_event_loop_once(rpc) has work: packets, a due timer
 *  (retransmission, pacing, deadlines: within 1 ms of its time, as with
 *  idle_sleep_us; the liveness scan), an SM event, a BG handler's answer.
 *  Wait on it, then call udrpc_run_event_loop_once() (again while it stays
 *  readable). It is an epoll set owned by rpc (closed by udrpc_destroy;
 *  every call returns the same one); from the first call on, each
 *  iteration of the loop pays three system calls to keep it current,
 *  which an endpoint that never asks does not. Returns the fd, or
 *  -ENOTSUP for a transport that can only busy-poll (loop, verbs, mlx5),
 *  -EPERM (wrong thread), -errno. Rpc thread. */
UDRPC_API int udrpc_get_fd(udrpc_t *rpc);

/** Opens a session to endpoint remote_rpc_id at remote_uri (the remote
 *  Nexus's URI, see udrpc_uri_check()). Returns the session's handle
 *  (>= 0) at once; the outcome arrives at sm_handler (CONNECTED, or
 *  CONNECT_FAILED within connect_timeout_ms). Requests may be enqueued
 *  before CONNECTED: they wait in the session, and if the connect fails
 *  each ends with -ECONNRESET before sm_handler hears CONNECT_FAILED.
 *
 *  A handle is not an index: it carries a generation, so that a handle
 *  whose session has ended (failed, disconnected) is refused with
 *  -ENOTCONN by every call, before and after sm_handler heard of the end,
 *  and never reaches a later session, even one made inside that
 *  sm_handler call. udrpc_connect may be called from sm_handler and from
 *  continuations. Errors: -EINVAL bad URI (logged
 *  with the reason), -EAFNOSUPPORT an address of a family our Nexus's
 *  socket cannot reach (an IPv4 Nexus and an IPv6 peer, or an IPv6 Nexus
 *  other than [::] and an IPv4 peer), -ENOSPC no free session, -EPERM
 *  wrong thread. */
UDRPC_API int udrpc_connect(udrpc_t *rpc, const char *remote_uri,
                            uint8_t remote_rpc_id);

/** As udrpc_connect(), with a context of the caller's for the session:
 *  udrpc_session_context() returns it, from sm_handler (for its session
 *  argument, also in the event that ends the session) and from
 *  continuations (the session the request was enqueued on). Rpc thread. */
UDRPC_API int udrpc_connect_ctx(udrpc_t *rpc, const char *remote_uri, uint8_t remote_rpc_id,
                                void *session_ctx);

/** The context given to udrpc_connect_ctx() for session (NULL for
 *  udrpc_connect(), or a handle whose session has ended, except inside
 *  sm_handler's call that reports its end). Rpc thread. */
UDRPC_API void *udrpc_session_context(const udrpc_t *rpc, int session);

/** Closes a client session. Every request still on it completes with
 *  -ECONNRESET first; sm_handler then hears DISCONNECTED. Returns 0,
 *  -EINVAL (no such session), -EALREADY (disconnect already under way).
 *  Rpc thread. */
UDRPC_API int udrpc_disconnect(udrpc_t *rpc, int session);

/** True when the session exists and its handshake has completed. Rpc
 *  thread. */
UDRPC_API bool udrpc_is_connected(const udrpc_t *rpc, int session);

/** Allocates a message buffer of max_size bytes (0 < max_size <=
 *  max_msg_size) from the endpoint's allocator; out->size = max_size.
 *  Returns 0, -EINVAL, or -ENOMEM. The buffer belongs to the caller until
 *  udrpc_msgbuf_free(). Rpc thread. */
UDRPC_API int udrpc_msgbuf_alloc(udrpc_t *rpc, size_t max_size,
                                 udrpc_msgbuf_t *out);

/** Returns a buffer to the allocator. It must not be in use by a request
 *  whose continuation has not run. mb->buf is NULL afterwards. Rpc thread. */
UDRPC_API void udrpc_msgbuf_free(udrpc_t *rpc, udrpc_msgbuf_t *mb);

/** Sets mb->size (size <= mb->max_size; larger sizes are clamped). */
UDRPC_API void udrpc_msgbuf_resize(udrpc_msgbuf_t *mb, size_t size);

/** Client: sends req (req->size bytes) as a request of req_type on session;
 *  the response is written into resp (up to resp->max_size bytes). Returns
 *  0 when accepted: cont(rpc_context, tag, status) then runs exactly once.
 *  req and resp stay owned by the caller, who must not touch them until
 *  cont runs. Requests beyond the 8-request window wait in the session in
 *  FIFO order. Status: 0, -ECONNRESET (session failed or closed),
 *  -EMSGSIZE (response larger than resp->max_size; or, for a request
 *  enqueued before CONNECTED, larger than the server's max_msg_size),
 *  -EBADRQC (no handler for req_type at the server), -ENOMEM (the server
 *  had no memory to hand the request to a background handler). Returns
 *  -EINVAL (bad session or buffer, size over our max_msg_size), -EMSGSIZE
 *  (size over the server's max_msg_size, which the two endpoints exchange
 *  when they connect: the session and its other requests go on),
 *  -ENOTCONN (session failed or closing), -EPERM (wrong thread); then cont
 *  never runs. Rpc thread, including from inside
 *  handlers and continuations. */
UDRPC_API int udrpc_enqueue_request(udrpc_t *rpc, int session, uint8_t req_type,
                                    udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
                                    udrpc_cont_t cont, void *tag);

/** Client: as udrpc_enqueue_request(), with a deadline timeout_ms from
 *  now (0: none, whatever the session's default). If no response has come
 *  by then, cont runs once with -ETIMEDOUT; the session and its other
 *  requests go on, and a response that comes later is read and ignored
 *  (udrpc_stats_t.late_responses). Until the server has answered, the
 *  request keeps its slot (one of 8 per session) and udrpc keeps a copy of
 *  it: the caller's req and resp are free again once cont has run. The
 *  server is told, best effort, that the request was given up on
 *  (udrpc_req_abandoned). Deadlines are checked by the event loop, at the
 *  timing wheel's resolution. Rpc thread. */
UDRPC_API int udrpc_enqueue_request_timeout(udrpc_t *rpc, int session, uint8_t req_type,
                                            udrpc_msgbuf_t *req, udrpc_msgbuf_t *resp,
                                            udrpc_cont_t cont, void *tag,
                                            uint32_t timeout_ms);

/** Client: the default timeout of session's requests made with
 *  udrpc_enqueue_request() from now on (0: none, the default); see
 *  udrpc_enqueue_request_timeout(). Returns 0, -EINVAL (not a client
 *  session), -EPERM (wrong thread). Rpc thread. */
UDRPC_API int udrpc_set_request_timeout(udrpc_t *rpc, int session, uint32_t timeout_ms);

/** Client: ends the oldest request on session whose tag is tag, queued or
 *  in flight: its continuation runs once with -ECANCELED before this
 *  returns (so it must not be called from that continuation for the same
 *  request). What happens to an in-flight request afterwards is as for a
 *  deadline (udrpc_enqueue_request_timeout). Returns 0, -ENOENT (no such
 *  request: it completed already), -EINVAL (not a client session),
 *  -ENOMEM (no memory for the request's copy: nothing changed), -EPERM
 *  (wrong thread). Rpc thread. */
UDRPC_API int udrpc_cancel(udrpc_t *rpc, int session, void *tag);

/** Server: whether the client has given up on h's request (cancelled it,
 *  or its deadline passed) and said so; a long handler may then stop early
 *  and answer anything (the client ignores the answer). Best effort: the
 *  notice may be lost, and it reaches only a handler that still holds h
 *  (FG deferred, or BG). Any thread holding h. */
UDRPC_API bool udrpc_req_abandoned(const udrpc_req_handle_t *h);

/** Server: the endpoint that received h's request, for a handler
 *  registered per Nexus that must find its endpoint (to issue nested
 *  requests from an FG handler). Any thread holding h; the endpoint's
 *  functions still belong to its own thread. */
UDRPC_API udrpc_t *udrpc_req_rpc(const udrpc_req_handle_t *h);

/** Server: the request type of h's request, for one handler function
 *  registered for several types (a proxy, a plugin host). Any thread
 *  holding h. */
UDRPC_API uint8_t udrpc_req_type(const udrpc_req_handle_t *h);

/** Server: the request of handle h. Read-only; valid until
 *  udrpc_enqueue_response(h). The thread running h's handler. */
UDRPC_API const udrpc_msgbuf_t *udrpc_req_msgbuf(const udrpc_req_handle_t *h);

/** Server: a response buffer of size bytes for h, owned by the library
 *  (freed when the client's next request on the slot arrives). Returns
 *  NULL if size exceeds max_msg_size (ours, or the client's, exchanged at
 *  connect) or memory is short. Call it once per
 *  request, before udrpc_enqueue_response(). The thread running h's
 *  handler (FG: the Rpc thread; BG: the worker, or the one it passed h
 *  to). */
UDRPC_API udrpc_msgbuf_t *udrpc_resp_msgbuf(udrpc_req_handle_t *h, size_t size);

/** Server: instead of udrpc_resp_msgbuf(), a response buffer that holds
 *  the request's bytes (size: the request's), for a handler that answers
 *  in place: an echo, a proxy, a transform of the request's bytes. Where
 *  the library holds the request in a buffer of its own (a request of
 *  more than one packet, reassembled; or a copy, made for a BG handler or
 *  a deferred answer) that buffer itself becomes the response's: no copy,
 *  no allocation. A single-packet request read where it arrived is copied
 *  into a new buffer. From then on udrpc_req_msgbuf(h) may share the
 *  response's bytes: read and write the returned buffer only. Shrink it
 *  with udrpc_msgbuf_resize(); it cannot grow. Returns NULL as
 *  udrpc_resp_msgbuf() does (a response buffer chosen already, the size
 *  over the client's max_msg_size, memory short). Same threads. */
UDRPC_API udrpc_msgbuf_t *udrpc_resp_msgbuf_in_place(udrpc_req_handle_t *h);

/** Server: sends the response of h (an empty one if udrpc_resp_msgbuf was
 *  not called). h is invalid afterwards. Returns 0, -EINVAL (h already
 *  answered), or -ENOMEM (no buffer for the empty response: h stays valid,
 *  call again later). FG: the Rpc thread, inside the handler or later. BG:
 *  any thread, once; the Rpc thread sends it. A handle answered after
 *  udrpc_destroy() of its endpoint is a use after free (FG and BG alike). */
UDRPC_API int udrpc_enqueue_response(udrpc_req_handle_t *h);

/** Runs one iteration of the event loop: receive a burst, run handlers
 *  and continuations, fire timers, send the batch. Never blocks. Rpc
 *  thread. */
UDRPC_API void udrpc_run_event_loop_once(udrpc_t *rpc);

/** Runs the event loop for timeout_ms milliseconds (0: one iteration).
 *  Busy-polls, unless idle_sleep_us is set: then, once the endpoint has
 *  moved no packet for that long, it sleeps until a packet arrives, at
 *  most 1 ms at a time and never past the timeout, except that with
 *  timeout_ms 0 one such sleep (up to 1 ms) may follow the iteration, so
 *  that a caller's own loop around it idles too. Rpc thread. */
UDRPC_API void udrpc_run_event_loop(udrpc_t *rpc, unsigned timeout_ms);

/** Copies the endpoint's counters into *out. Returns 0 or -EINVAL. Rpc
 *  thread (or any thread while the Rpc thread is quiescent). */
UDRPC_API int udrpc_get_stats(const udrpc_t *rpc, udrpc_stats_t *out);

/** Round trips, retransmission timeout and congestion control of one
 *  client session, from udrpc_get_session_stats(). Without cc, rate is the
 *  link rate, and RTT samples come from one request in 16 per slot. */
typedef struct udrpc_session_stats {
    double   rate_bytes_per_s;  /**< the session's current Timely rate */
    double   rtt_min_us;        /**< lowest RTT sample (0: none yet) */
    double   rtt_avg_us;        /**< smoothed RTT (RFC 6298's SRTT: a moving
                                     average with gain 1/8; with cc, of
                                     one sample in 16) */
    double   rttvar_us;         /**< RTT variation (RTTVAR, gain 1/4) */
    double   rto_us;            /**< the retransmission timeout now: SRTT
                                     + max(4 RTTVAR, rto_min_us, or more
                                     after needless timeouts), at most
                                     rto_max_us (rto_min_us until the first
                                     sample) */
    uint64_t rtt_samples;       /**< samples taken (with cc: one per slot
                                     per RTT; without: one request in 16
                                     per slot) */
    uint64_t rate_updates;      /**< samples that changed the rate (the
                                     rest took the bypass: at link rate
                                     with RTT under t_low) */
    uint64_t pkts_paced;        /**< packets that waited for their send
                                     time on the timing wheel */
    uint64_t paced_us;          /**< total time they waited */
} udrpc_session_stats_t;

/** Copies client session's congestion-control state into *out. Returns 0,
 *  or -EINVAL (no such client session). Rpc thread. */
UDRPC_API int udrpc_get_session_stats(const udrpc_t *rpc, int session,
                                      udrpc_session_stats_t *out);

/** Name of a drop reason ("bad_source"), for printing stats. */
UDRPC_API const char *udrpc_drop_reason_str(udrpc_drop_reason_t r);

/** The transport the endpoint runs on ("udp", "loop", ...). */
UDRPC_API const char *udrpc_transport_name(const udrpc_t *rpc);

/** Largest payload of one packet on this endpoint: messages up to this
 *  size are single-packet. */
UDRPC_API size_t udrpc_max_data_per_pkt(const udrpc_t *rpc);

/** A static description of a negative errno value. */
UDRPC_API const char *udrpc_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* UDRPC_H */
