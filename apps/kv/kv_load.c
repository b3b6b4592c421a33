/*
 * kv_load — a load generator for kv_server: GET/PUT mix over a key space
 * with uniform or Zipf-skewed popularity, a fixed number of operations in
 * flight, a progress line a second, and ops/s with latency percentiles at
 * the end. With --check it also keeps a model of the table and checks
 * every answer against it: each GET's bytes, each DELETE's and PUT's
 * status, and every few thousand operations, with nothing in flight, a
 * SCAN of every partition against the model. (At most one operation per
 * key is in flight, so the model's order is the server's.)
 *
 *   kv_load [--server host:port] [--keys N] [--value-size B] [--get-pct P]
 *           [--zipf THETA] [--depth D] [--duration S] [--ops N] [--check]
 *           [--no-preload] [--quiet] [--seed X] [--idle-sleep-us U]
 *
 * --idle-sleep-us: as kv_server's (default 20; 0: busy-poll).
 * Bounded: stops after --duration seconds or --ops operations, whichever
 * comes first. Exit status 0 only if every operation completed (and, with
 * --check, matched).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "kv.h"
#include "kv_client.h"

static struct {
    const char *server;
    uint32_t keys;
    uint32_t value_size;
    unsigned get_pct;
    double zipf;
    unsigned depth;
    double duration_s;
    uint64_t max_ops;
    int check, preload, quiet;
    uint64_t seed;
    unsigned idle_sleep_us;
} opt = { "127.0.0.1:31851", 100000, 64, 90, 0.99, 32, 10, 0, 0, 1, 0, 1, 20 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state;
static uint64_t rng(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rng_unit(void) { return (double)(rng() >> 11) / 9007199254740992.0; }

/* Zipf over [0, n) (Gray et al., "Quickly generating billion-record
 * synthetic databases", as YCSB does), then scrambled so that the hot keys
 * spread over partitions. theta 0: uniform. */
static struct { double theta, alpha, zetan, eta; uint32_t n; } zipf;

static void zipf_init(uint32_t n, double theta)
{
    zipf.n = n;
    zipf.theta = theta;
    if (theta <= 0)
        return;
    double zeta2 = 1.0 + pow(0.5, theta), zetan = 0;
    for (uint32_t i = 1; i <= n; i++)
        zetan += 1.0 / pow((double)i, theta);
    zipf.zetan = zetan;
    zipf.alpha = 1.0 / (1.0 - theta);
    zipf.eta = (1.0 - pow(2.0 / n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
}

static uint32_t zipf_next(void)
{
    if (zipf.theta <= 0)
        return (uint32_t)(rng() % zipf.n);
    double u = rng_unit(), uz = u * zipf.zetan;
    uint64_t rank;
    if (uz < 1.0)
        rank = 0;
    else if (uz < 1.0 + pow(0.5, zipf.theta))
        rank = 1;
    else
        rank = (uint64_t)((double)zipf.n * pow(zipf.eta * u - zipf.eta + 1.0, zipf.alpha));
    if (rank >= zipf.n)
        rank = zipf.n - 1;
    return (uint32_t)((rank * 0x9E3779B97F4A7C15ull >> 17) % zipf.n);
}

/* ------------------------------------------------------------ model ---- */

static int key_of(uint32_t k, char *buf) { return sprintf(buf, "k%08" PRIu32, k); }

static uint8_t value_byte(uint32_t k, uint32_t version, uint32_t j)
{
    return (uint8_t)(k * 131u + version * 7u + j * 13u + (j >> 8));
}

static uint32_t *version;   /* per key: 0 absent, else the version stored */
static uint32_t *next_version;
static uint8_t *in_flight;  /* per key (check mode) */
static uint8_t *value_buf;

/* -------------------------------------------------------------- ops ---- */

enum { OP_GET, OP_PUT, OP_DELETE };
struct op_ctx {
    uint64_t start_ns;
    uint32_t key, version;
    uint8_t kind;
};

static struct kvc *kv;
static struct op_ctx *ctxs;
static struct op_ctx **free_ctx;
static unsigned n_free_ctx;
static struct lat_hist hist_get, hist_put, hist_all;
static uint64_t done, errors, mismatches, gets_checked, not_found;

static void fail(const char *what, uint32_t key, int status)
{
    if (mismatches++ < 10)
        fprintf(stderr, "kv_load: MISMATCH %s key %" PRIu32 " status %d\n", what, key, status);
}

static void op_done(void *arg, int status, const uint8_t *data, size_t len)
{
    struct op_ctx *o = arg;
    uint64_t lat = now_ns() - o->start_ns;
    hist_add(&hist_all, lat);
    hist_add(o->kind == OP_GET ? &hist_get : &hist_put, lat);
    done++;
    free_ctx[n_free_ctx++] = o;
    if (status < 0) {
        if (errors++ < 10)
            fprintf(stderr, "kv_load: operation failed: %s\n", udrpc_strerror(status));
        return;
    }
    if (status == KV_NOT_FOUND)
        not_found++;
    if (!opt.check)
        return;
    in_flight[o->key] = 0;
    switch (o->kind) {
    case OP_GET: {
        gets_checked++;
        uint32_t v = version[o->key];
        if (v == 0) {
            if (status != KV_NOT_FOUND)
                fail("GET of an absent key found", o->key, status);
            return;
        }
        if (status != KV_OK || len != opt.value_size) {
            fail("GET", o->key, status);
            return;
        }
        for (uint32_t j = 0; j < len; j++)
            if (data[j] != value_byte(o->key, v, j)) {
                fail("GET bytes", o->key, status);
                return;
            }
        return;
    }
    case OP_PUT:
        if (status != KV_OK)
            fail("PUT", o->key, status);
        version[o->key] = o->version;
        return;
    default:
        if (status != (version[o->key] ? KV_OK : KV_NOT_FOUND))
            fail("DELETE", o->key, status);
        version[o->key] = 0;
        return;
    }
}

/* Issues one operation; 0, or -EAGAIN when none can start now. */
static int issue(uint8_t kind, uint32_t key)
{
    if (n_free_ctx == 0)
        return -EAGAIN;
    if (opt.check) {
        /* one operation per key in flight: take the next free key */
        for (unsigned tries = 0; in_flight[key]; tries++) {
            key = (key + 1) % opt.keys;
            if (tries > opt.depth)
                return -EAGAIN;
        }
    }
    struct op_ctx *o = free_ctx[n_free_ctx - 1];
    char k[16];
    int klen = key_of(key, k);
    o->key = key;
    o->kind = kind;
    o->start_ns = now_ns();
    int ret;
    if (kind == OP_GET) {
        ret = kvc_get(kv, k, (size_t)klen, op_done, o);
    } else if (kind == OP_PUT) {
        o->version = ++next_version[key];
        for (uint32_t j = 0; j < opt.value_size; j++)
            value_buf[j] = value_byte(key, o->version, j);
        ret = kvc_put(kv, k, (size_t)klen, value_buf, opt.value_size, op_done, o);
    } else {
        ret = kvc_delete(kv, k, (size_t)klen, op_done, o);
    }
    if (ret != 0)
        return ret;
    n_free_ctx--;
    if (opt.check)
        in_flight[key] = 1;
    return 0;
}

/* ------------------------------------------------------------- scan ---- */

static uint32_t scan_seen, scan_parts_done;
static uint8_t *scan_mark;

static void scan_done(void *arg, int status, const uint8_t *data, size_t len)
{
    (void)arg;
    scan_parts_done++;
    if (status != KV_OK || len < 4) {
        fail("SCAN status", 0, status);
        return;
    }
    uint32_t count = kv_get32(data);
    size_t off = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (off + 6 > len) {
            fail("SCAN framing", 0, status);
            return;
        }
        uint16_t klen = kv_get16(data + off);
        uint32_t vlen = kv_get32(data + off + 2);
        if (off + 6 + klen + vlen > len || klen != 9 || data[off + 6] != 'k') {
            fail("SCAN entry", 0, status);
            return;
        }
        char kbuf[10];
        memcpy(kbuf, data + off + 6, 9);
        kbuf[9] = 0;
        uint32_t k = (uint32_t)strtoul(kbuf + 1, NULL, 10);
        const uint8_t *v = data + off + 6 + klen;
        uint32_t ver = k < opt.keys ? version[k] : 0;
        if (ver == 0 || scan_mark[k] || vlen != opt.value_size) {
            fail("SCAN key", k, status);
        } else {
            for (uint32_t j = 0; j < vlen; j++)
                if (v[j] != value_byte(k, ver, j)) {
                    fail("SCAN bytes", k, status);
                    break;
                }
            scan_mark[k] = 1;
            scan_seen++;
        }
        off += 6 + klen + vlen;
    }
}

/* With nothing in flight: every key with prefix "k0000" (keys below
 * 10,000) on every partition matches the model, and none is missing. */
static void check_scan(void)
{
    while (kvc_in_flight(kv))
        kvc_poll(kv);
    memset(scan_mark, 0, opt.keys);
    scan_seen = scan_parts_done = 0;
    unsigned parts = kvc_partitions(kv);
    for (unsigned p = 0; p < parts; p++)
        while (kvc_scan(kv, p, "k0000", 5, UINT32_MAX, scan_done, NULL) == -EAGAIN)
            kvc_poll(kv);
    while (scan_parts_done < parts)
        kvc_poll(kv);
    uint32_t expect = 0;
    for (uint32_t k = 0; k < opt.keys && k < 10000; k++)
        expect += version[k] != 0;
    if (scan_seen != expect)
        fail("SCAN count", scan_seen, (int)expect);
}

/* ------------------------------------------------------------- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: kv_load [--server host:port] [--keys N] [--value-size B] "
                    "[--get-pct P] [--zipf THETA] [--depth D] [--duration S] [--ops N] "
                    "[--check] [--no-preload] [--quiet] [--seed X] [--idle-sleep-us U]\n");
    exit(2);
}

static void print_line(const char *what, double secs, uint64_t ops)
{
    struct bench_result r;
    hist_summarize(&hist_all, 1.0, &r);
    fprintf(stderr, "kv_load: %s %.0f s: %.0f ops/s, p50 %.1f us, p99 %.1f us\n", what, secs,
            (double)ops / (secs > 0 ? secs : 1), r.p50_us, r.p99_us);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--check")) { opt.check = 1; continue; }
        if (!strcmp(a, "--no-preload")) { opt.preload = 0; continue; }
        if (!strcmp(a, "--quiet")) { opt.quiet = 1; continue; }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--server")) opt.server = v;
        else if (!strcmp(a, "--keys")) opt.keys = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--value-size")) opt.value_size = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--get-pct")) opt.get_pct = (unsigned)atoi(v);
        else if (!strcmp(a, "--zipf")) opt.zipf = atof(v);
        else if (!strcmp(a, "--depth")) opt.depth = (unsigned)atoi(v);
        else if (!strcmp(a, "--duration")) opt.duration_s = atof(v);
        else if (!strcmp(a, "--ops")) opt.max_ops = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--idle-sleep-us")) opt.idle_sleep_us = (unsigned)atoi(v);
        else usage();
    }
    if (opt.keys == 0 || opt.depth == 0 || opt.get_pct > 100 || opt.zipf < 0 ||
        opt.zipf >= 1 || opt.duration_s <= 0 || opt.value_size > (1u << 20))
        usage();
    rng_state = opt.seed * 0x9E3779B97F4A7C15ull + 1;
    zipf_init(opt.keys, opt.zipf);

    char local[UDRPC_MAX_URI_LEN]; /* where our routes reach the server from */
    int lerr = udrpc_local_uri_for(opt.server, local);
    if (lerr) {
        fprintf(stderr, "kv_load: %s: %s\n", opt.server, udrpc_strerror(lerr));
        return 1;
    }
    udrpc_nexus_t *nx = udrpc_nexus_create(local, NULL);
    if (!nx) {
        fprintf(stderr, "kv_load: udrpc_nexus_create: %s\n", udrpc_strerror(-errno));
        return 1;
    }
    int err;
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    cfg.idle_sleep_us = opt.idle_sleep_us;
    kv = kvc_create(nx, 0, &cfg, opt.server, opt.value_size, opt.depth + 1, 5000, &err);
    if (!kv) {
        fprintf(stderr, "kv_load: %s: %s\n", opt.server, udrpc_strerror(err));
        return 1;
    }
    version = calloc(opt.keys, sizeof(*version));
    next_version = calloc(opt.keys, sizeof(*next_version));
    in_flight = calloc(opt.keys, 1);
    scan_mark = calloc(opt.keys, 1);
    value_buf = malloc(opt.value_size + 1);
    ctxs = calloc(opt.depth, sizeof(*ctxs));
    free_ctx = calloc(opt.depth, sizeof(*free_ctx));
    if (!version || !next_version || !in_flight || !scan_mark || !value_buf || !ctxs ||
        !free_ctx)
        return 1;
    for (unsigned i = 0; i < opt.depth; i++)
        free_ctx[n_free_ctx++] = &ctxs[i];

    uint64_t t0 = now_ns();
    uint64_t end_ns = t0 + (uint64_t)(opt.duration_s * 1e9);
    if (opt.preload) {
        for (uint32_t k = 0; k < opt.keys && now_ns() < end_ns; k++)
            while (issue(OP_PUT, k) == -EAGAIN)
                kvc_poll(kv);
        while (kvc_in_flight(kv))
            kvc_poll(kv);
        if (!opt.quiet)
            fprintf(stderr, "kv_load: preloaded %" PRIu32 " keys of %" PRIu32 " bytes\n",
                    opt.keys, opt.value_size);
    }
    memset(&hist_all, 0, sizeof(hist_all));
    memset(&hist_get, 0, sizeof(hist_get));
    memset(&hist_put, 0, sizeof(hist_put));
    uint64_t preload_done = done;
    done = 0;
    uint64_t issued = 0, start = now_ns(), next_line = start + 1000000000ull;
    uint64_t next_scan = 50000, scans = 0;
    end_ns = start + (uint64_t)(opt.duration_s * 1e9);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end_ns || (opt.max_ops && issued >= opt.max_ops))
            break;
        if (opt.check && issued >= next_scan) {
            check_scan();
            scans++;
            next_scan += 50000;
        }
        while (n_free_ctx && (!opt.max_ops || issued < opt.max_ops)) {
            unsigned r = (unsigned)(rng() % 100);
            uint8_t kind = r < opt.get_pct ? OP_GET : OP_PUT;
            if (opt.check && kind == OP_PUT && r % 10 == 9)
                kind = OP_DELETE; /* a tenth of the writes */
            if (issue(kind, zipf_next()) != 0)
                break;
            issued++;
        }
        kvc_poll(kv);
        if (!opt.quiet && now >= next_line) {
            print_line("at", (double)(now - start) / 1e9, done);
            next_line += 1000000000ull;
        }
    }
    uint64_t drain_end = now_ns() + 5000000000ull;
    while (kvc_in_flight(kv) && now_ns() < drain_end)
        kvc_poll(kv);
    double secs = (double)(now_ns() - start) / 1e9;
    if (opt.check) {
        check_scan();
        scans++;
    }

    struct bench_result rg, rp;
    hist_summarize(&hist_get, 1.0, &rg);
    hist_summarize(&hist_put, 1.0, &rp);
    printf("kv_load: %" PRIu64 " ops in %.2f s: %.0f ops/s (%u partitions, %" PRIu32
           " keys, %" PRIu32 " B values, %u%% GET, zipf %.2f, depth %u)\n",
           done, secs, (double)done / secs, kvc_partitions(kv), opt.keys, opt.value_size,
           opt.get_pct, opt.zipf, opt.depth);
    printf("kv_load: GET %" PRIu64 " p50 %.1f us p99 %.1f us p99.9 %.1f us; "
           "PUT/DELETE %" PRIu64 " p50 %.1f us p99 %.1f us p99.9 %.1f us\n",
           hist_get.n, rg.p50_us, rg.p99_us, rg.p999_us, hist_put.n, rp.p50_us, rp.p99_us,
           rp.p999_us);
    if (opt.check)
        printf("kv_load: checked %" PRIu64 " GETs (%" PRIu64 " not found), %" PRIu64
               " scans of every partition, %" PRIu64 " preload PUTs: %" PRIu64
               " mismatches\n",
               gets_checked, not_found, scans, preload_done, mismatches);
    unsigned left = kvc_in_flight(kv);
    kvc_destroy(kv);
    udrpc_nexus_destroy(nx);
    if (errors || mismatches || left || done != issued) {
        printf("kv_load: FAILED: %" PRIu64 " errors, %" PRIu64 " mismatches, %u still in "
               "flight, %" PRIu64 " of %" PRIu64 " completed\n",
               errors, mismatches, left, done, issued);
        return 1;
    }
    return 0;
}
