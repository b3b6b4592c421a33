/*
 * log.h — leveled logging, one line per event with the Rpc id and session.
 * The level comes from UDRPC_LOG=error|warn|info|debug|trace (default
 * warn), read once. Calls below UDRPC_LOG_MIN_LEVEL are compiled out, so
 * datapath debug lines cost nothing in a normal build.
 */
#ifndef UDRPC_RUNTIME_LOG_H
#define UDRPC_RUNTIME_LOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "udrpc.h"

/* UDRPC_LVL_*, not LOG_*: <syslog.h> defines LOG_INFO and LOG_DEBUG. */
enum udrpc_log_level {
    UDRPC_LVL_ERROR = 0,
    UDRPC_LVL_WARN,
    UDRPC_LVL_INFO,
    UDRPC_LVL_DEBUG,
    UDRPC_LVL_TRACE,
};

#ifndef UDRPC_LOG_MIN_LEVEL
#define UDRPC_LOG_MIN_LEVEL UDRPC_LVL_INFO
#endif

extern int udrpc__log_level; /* -1 until read from the environment */
int udrpc__log_level_init(void);
void udrpc__log(int level, int rpc_id, int session, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Compiled in, and on at run time. */
#define UDRPC_LOG_ON(level)                                                     \
    ((level) <= UDRPC_LOG_MIN_LEVEL &&                                          \
     (level) <= (udrpc__log_level >= 0 ? udrpc__log_level : udrpc__log_level_init()))

#define UDRPC_LOG_AT(level, rpc, sess, ...)                                     \
    do {                                                                        \
        if (UDRPC_LOG_ON(level))                                                \
            udrpc__log((level), (rpc) ? (int)(rpc)->rpc_id : -1, (sess),       \
                       __VA_ARGS__);                                            \
    } while (0)

/* For events a remote sender can trigger at will (refused connects, dropped
 * packets): at most UDRPC_LOG_BURST lines per call site per second, so that
 * a flood of bad packets cannot become a flood of log lines. The limiter
 * (a clock read) runs only when the line is on. */
#define UDRPC_LOG_BURST 5
int udrpc__log_allow(_Atomic uint64_t *window_start_ns, _Atomic uint32_t *count);
#define UDRPC_LOG_LIMITED(level, rpc, sess, ...)                                \
    do {                                                                        \
        static _Atomic uint64_t udrpc_log_win_;                                 \
        static _Atomic uint32_t udrpc_log_n_;                                   \
        if (UDRPC_LOG_ON(level) && udrpc__log_allow(&udrpc_log_win_, &udrpc_log_n_)) \
            udrpc__log((level), (rpc) ? (int)(rpc)->rpc_id : -1, (sess),       \
                       __VA_ARGS__);                                            \
    } while (0)

#define UDRPC_LOG_ERROR(rpc, sess, ...) UDRPC_LOG_AT(UDRPC_LVL_ERROR, rpc, sess, __VA_ARGS__)
#define UDRPC_LOG_WARN(rpc, sess, ...) UDRPC_LOG_AT(UDRPC_LVL_WARN, rpc, sess, __VA_ARGS__)
#define UDRPC_LOG_INFO(rpc, sess, ...) UDRPC_LOG_AT(UDRPC_LVL_INFO, rpc, sess, __VA_ARGS__)
#define UDRPC_LOG_DEBUG(rpc, sess, ...) UDRPC_LOG_AT(UDRPC_LVL_DEBUG, rpc, sess, __VA_ARGS__)

#endif
