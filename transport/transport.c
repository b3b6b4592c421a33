/*
 * transport.c — the transport registry: one row per transport, with its
 * name, whether it can run on this machine (probe), how to make one
 * (create), and its rank for "auto". Adding a transport is one folder and
 * one row. udrpc_config_t.transport names one, "auto", or a list
 * ("loop,udp"): an endpoint may hold several, each session on one of them.
 */
#include <errno.h>
#include <string.h>

#include "loop.h"
#include "shm.h"
#include "transport.h"
#include "udp.h"
#ifdef UDRPC_HAVE_VERBS
#include "verbs.h"
#endif
#ifdef UDRPC_HAVE_MLX5
#include "mlx5.h"
#endif
#ifdef UDRPC_HAVE_XDP
#include "xdp.h"
#endif

static bool always(const udrpc_config_t *cfg)
{
    (void)cfg;
    return true;
}

#ifdef UDRPC_HAVE_VERBS
static bool verbs_probe(const udrpc_config_t *cfg)
{
    return udrpc__verbs_available(cfg->device);
}
#endif
#ifdef UDRPC_HAVE_MLX5
static bool mlx5_probe(const udrpc_config_t *cfg)
{
    return udrpc__mlx5_available(cfg->device);
}
#endif

/* "auto" takes the usable row of highest rank (rank 0: only by name).
 * A row without create is a transport this build left out. */
static const struct transport_desc registry[] = {
#ifdef UDRPC_HAVE_MLX5
    { "mlx5", TP_MLX5, 40, mlx5_probe, udrpc__mlx5_create },
#else
    { "mlx5", TP_MLX5, 40, NULL, NULL },
#endif
#ifdef UDRPC_HAVE_VERBS
    { "verbs", TP_VERBS, 30, verbs_probe, udrpc__verbs_create },
#else
    { "verbs", TP_VERBS, 30, NULL, NULL },
#endif
#ifdef UDRPC_HAVE_XDP
    /* Above udp only where it would run zero-copy (udrpc__xdp_auto_probe);
     * copy mode when named. */
    { "xdp", TP_XDP, 20, udrpc__xdp_auto_probe, udrpc__xdp_create },
#else
    { "xdp", TP_XDP, 20, NULL, NULL },
#endif
    { "udp", TP_UDP, 10, always, udrpc__udp_create },
    { "shm", TP_SHM, 0, always, udrpc__shm_create },
    { "loop", TP_LOOP, 0, always, udrpc__loop_create },
};
#define N_ROWS (sizeof(registry) / sizeof(registry[0]))

const struct transport_desc *udrpc__transport_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strlen(registry[i].name) == len && memcmp(registry[i].name, name, len) == 0)
            return &registry[i];
    return NULL;
}

const struct transport_desc *udrpc__transport_auto(const udrpc_config_t *cfg)
{
    const struct transport_desc *best = NULL;
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct transport_desc *d = &registry[i];
        if (d->rank > 0 && d->create && (!best || d->rank > best->rank) && d->probe(cfg))
            best = d;
    }
    return best;
}

int udrpc__transport_create(const struct transport_desc *d, const udrpc_config_t *cfg,
                            const struct tp_params *p, struct transport **out)
{
    if (!d->create)
        return -ENODEV; /* not built here (no rdma-core or libbpf headers) */
    int ret = d->create(cfg, p, out);
    if (ret == 0) {
        (*out)->desc = d;
        (*out)->src_tag = p->src_tag;
    }
    return ret;
}

/* ------------------------------------------------------- fault injection */

int udrpc__tp_faults_check(const udrpc_faults_t *cfg, unsigned what)
{
    if (what == TP_FAULTS_DROP_DUP &&
        (cfg->reorder_ppm || cfg->corrupt_ppm || cfg->delay_ppm))
        return -ENOTSUP;
    return 0;
}

void udrpc__tp_faults_init(struct tp_faults *f, const udrpc_faults_t *cfg, uint64_t salt)
{
    memset(f, 0, sizeof(*f));
    f->drop_ppm = cfg->drop_ppm;
    f->dup_ppm = cfg->dup_ppm;
    f->rng = (cfg->seed ^ (0x9E3779B97F4A7C15ull * (salt + 1))) | 1;
}

unsigned udrpc__tp_faults_apply(struct tp_faults *f, const struct tp_tx_pkt *in, unsigned n,
                                struct tp_tx_pkt *out)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        if (udrpc__chance_ppm(&f->rng, f->drop_ppm)) {
            f->dropped++;
            continue;
        }
        out[k++] = in[i];
        if (udrpc__chance_ppm(&f->rng, f->dup_ppm)) {
            out[k++] = in[i];
            f->duplicated++;
        }
    }
    return k;
}
