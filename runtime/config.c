/*
 * config.c — an endpoint's configuration: defaults, the environment (read
 * here and nowhere else), and its checks; error and drop-reason strings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

static unsigned env_uint(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end == '\0' && x <= 0xFFFFFFFFul ? (unsigned)x : dflt;
}

void udrpc_config_default(udrpc_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *t = getenv("UDRPC_TRANSPORT");
    cfg->transport = t && *t ? t : "auto";
    cfg->device = getenv("UDRPC_DEVICE");
    cfg->mtu = env_uint("UDRPC_MTU", 0);
    cfg->session_credits = UDRPC_DEFAULT_CREDITS;
    cfg->rto_min_us = env_uint("UDRPC_RTO_MIN_US", UDRPC_DEFAULT_RTO_MIN_US);
    cfg->rto_max_us = env_uint("UDRPC_RTO_MAX_US", UDRPC_DEFAULT_RTO_MAX_US);
    cfg->peer_timeout_ms = env_uint("UDRPC_PEER_TIMEOUT_MS", UDRPC_DEFAULT_PEER_TIMEOUT_MS);
    cfg->connect_timeout_ms = UDRPC_DEFAULT_CONNECT_TIMEOUT_MS;
    cfg->max_sessions = UDRPC_DEFAULT_MAX_SESSIONS;
    cfg->max_msg_size = UDRPC_DEFAULT_MAX_MSG_SIZE;
    cfg->idle_sleep_us = env_uint("UDRPC_IDLE_SLEEP_US", 0);
    cfg->cc = env_uint("UDRPC_CC", 0) != 0;
    cfg->udp_gso = env_uint("UDRPC_UDP_GSO", 1) != 0;
    const char *gi = getenv("UDRPC_GID_INDEX");
    cfg->gid_index = gi && *gi ? (int)env_uint("UDRPC_GID_INDEX", 0) : -1;
    udrpc__timely_params_default(&cfg->timely);
}

int udrpc__config_check(const udrpc_config_t *c)
{
    if (!c->transport || c->session_credits == 0 || c->session_credits > 4096 ||
        c->rto_min_us == 0 || c->rto_max_us < c->rto_min_us || c->peer_timeout_ms < 10 ||
        c->connect_timeout_ms == 0 ||
        c->max_sessions == 0 || c->max_sessions > 65535 || c->max_msg_size == 0 ||
        c->max_msg_size > UDRPC_MAX_MSG_SIZE_LIMIT)
        return -EINVAL;
    const udrpc_timely_params_t *t = &c->timely;
    if (c->cc && (t->link_rate_bytes_per_s < 0 || t->min_rate_bytes_per_s <= 0 ||
                  t->add_rate_bytes_per_s < 0 || t->beta <= 0 || t->beta >= 1 ||
                  t->ewma_alpha <= 0 || t->ewma_alpha > 1 || t->min_rtt_us == 0 ||
                  t->t_low_us >= t->t_high_us))
        return -EINVAL;
    return 0;
}

const char *udrpc_drop_reason_str(udrpc_drop_reason_t r)
{
    static const char *const names[UDRPC_DROP_MAX] = {
        "short", "magic", "bad_type", "bad_session", "not_connected",
        "bad_source", "msg_size", "bad_length", "stale_req", "future_req",
        "bad_pkt_num", "duplicate", "out_of_order", "tx_full", "no_memory",
    };
    return (unsigned)r < UDRPC_DROP_MAX ? names[r] : "unknown";
}

const char *udrpc_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument (for a URI, udrpc_uri_check() says what is wrong)";
    case -ENOMEM: return "out of memory";
    case -ETIMEDOUT: return "timed out: the peer did not answer (in time)";
    case -ECANCELED: return "cancelled (udrpc_cancel)";
    case -ESHUTDOWN: return "the endpoint is closing (udrpc_close)";
    case -ECONNRESET: return "session failed or closed before the response";
    case -ECONNABORTED: return "the server no longer has the session (its endpoint closed, "
                               "or its process restarted)";
    case -ENOENT: return "no endpoint with that rpc_id at the remote Nexus";
    case -EPROTONOSUPPORT: return "the peers use different transports";
    case -ENOSPC: return "no free session";
    case -EMSGSIZE: return "message too large: a response larger than the response buffer, "
                           "or a request larger than the server's max_msg_size";
    case -EBADRQC: return "no handler for this request type at the server";
    case -ENOTCONN: return "session not connected";
    case -EPERM: return "called from a thread that does not own the endpoint";
    case -EBUSY: return "handlers are fixed once an endpoint exists";
    case -EEXIST: return "already exists";
    case -EALREADY: return "already under way";
    case -ENOTSUP: return "not supported (not implemented yet)";
    case -ENODEV: return "transport not available on this machine";
    case -EPROTO: return "protocol error in the peer's answer";
    case -EAFNOSUPPORT: return "our Nexus cannot reach that address family (bind it to [::] "
                               "for both)";
    case -EMEDIUMTYPE: return "the peers use different MTUs (set UDRPC_MTU alike)";
    case -EIO: return "I/O error";
    default: return "unknown error";
    }
}
