/*
 * tweak.h — every compile-time tunable of the runtime in one place, used in
 * plain `if`s (no #ifdef), with units in the names.
 */
#ifndef UDRPC_RUNTIME_TWEAK_H
#define UDRPC_RUNTIME_TWEAK_H

#define UDRPC_SLOTS_PER_SESSION 8       /* window: req_num mod 8 is the slot */
#define UDRPC_RX_BURST 32               /* packets per rx_burst (libuv's cap) */
#define UDRPC_RX_BURSTS_MAX 2           /* full bursts taken before one TX flush */
#define UDRPC_TX_BATCH 64               /* packets per tx_burst */
#define UDRPC_MAX_TRANSPORTS 4          /* per endpoint (cfg.transport's list) */
#define UDRPC_CTRL_HDRS 256             /* header ring for CR/RFR packets */
#define UDRPC_WHEEL_BUCKETS 4096
#define UDRPC_WHEEL_BUCKET_US 10        /* horizon: 4096 * 10 us = 41 ms */
#define UDRPC_SM_CHECK_US 1000          /* SM retry/timeout scan period */
#define UDRPC_SM_QUEUE_LEN 8192         /* SM packets waiting per Rpc, at most */
#define UDRPC_SM_QUEUE_MIN 16           /* ...and at first: it grows on demand */
#define UDRPC_QREQ_CHUNK 64             /* queued-request pool growth */
#define UDRPC_SMALL_RESP_BYTES 512      /* per-slot response buffer, kept */
#define UDRPC_FAST_RETRANSMIT_SIGNALS 3 /* signs of a gap before a resend */
#define UDRPC_RTT_SAMPLE_EVERY 16       /* RTO estimator's samples: without cc,
                                           one request in 16 per slot is
                                           timed; with cc, one Timely
                                           sample in 16 feeds it */
#define UDRPC_RTO_FLOOR_FADE 128        /* a floor raised by needless timeouts
                                           loses 1/128 of its excess over
                                           rto_min per RTT sample */
#define UDRPC_RTO_CHECK_AFTER 2         /* timeouts in a row of one request
                                           before each further one also asks
                                           the server whether it still has
                                           the session */
#define UDRPC_LIVENESS_SCANS 16         /* liveness scans per peer_timeout */
#define UDRPC_SILENCE_NUM 3             /* a peer silent for 3/4 of */
#define UDRPC_SILENCE_DEN 4             /* peer_timeout is dead (with the
                                           heartbeat interval and the scan's
                                           period, detection stays within
                                           peer_timeout of its last word) */
#define UDRPC_HEARTBEATS 8              /* heartbeats per peer_timeout */
#define UDRPC_HEARTBEATS_UNANSWERED 3   /* unanswered in a row (and the
                                           timeout passed) before a peer's
                                           process is declared dead */
#define UDRPC_SM_RETRY_MAX_MS 1000      /* SM retries back off up to this */
#define UDRPC_STALL_US 200              /* a longer gap between two iterations
                                           of the event loop is a stall of
                                           ours (descheduled, or the caller
                                           away), not the network's */
#define UDRPC_SM_STRANGER_REPLIES_PER_S 1000 /* see sm.h */
#define UDRPC_SM_STORM_GAP_US 1000      /* SM thread's pause in a storm */
#define UDRPC_IDLE_SLEEP_MAX_US 1000    /* longest idle sleep: timers' lateness */

/* Extra work per received packet, for testing the regression gate only:
 * a build with -DUDRPC_BENCH_SLOWDOWN=N (CMake option of the same name)
 * must fail bench/gate. 0 in every real build. */
#ifndef UDRPC_BENCH_SLOWDOWN
#define UDRPC_BENCH_SLOWDOWN 0
#endif

#define UDRPC_DEFAULT_CREDITS 32
#define UDRPC_DEFAULT_RTO_MIN_US 5000
#define UDRPC_DEFAULT_RTO_MAX_US 100000
#define UDRPC_DEFAULT_PEER_TIMEOUT_MS 2000
#define UDRPC_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define UDRPC_DEFAULT_MAX_SESSIONS 4096
#define UDRPC_DEFAULT_MAX_MSG_SIZE (8u << 20)
#define UDRPC_DEFAULT_SM_RETRY_MS 20
/* udrpc_close on a server: how long no packet must have come before the
 * last answers count as delivered (a client pulls a long response with
 * RFRs, or asks again after a loss, well within it on a LAN). */
#define UDRPC_CLOSE_QUIET_US 5000

#endif
