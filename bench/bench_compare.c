/* bench_compare.c — see bench_compare.h. Reads rpc_bench's own JSON: an
 * array of flat objects whose values are numbers, strings, booleans or
 * arrays of numbers; anything else is refused with the byte offset. */
#include "bench_compare.h"
#include "bench_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 32
#define MAX_POINTS 4096

struct cpoint {
    double req_type, size, depth, sessions;
    double rps, p50, p99;
    double s_rps[MAX_SAMPLES], s_p50[MAX_SAMPLES], s_p99[MAX_SAMPLES];
    unsigned n_rps, n_p50, n_p99;
};

struct parser {
    const char *path, *s, *p;
};

static int fail(struct parser *ps, const char *what)
{
    fprintf(stderr, "rpc_bench --compare: %s: %s at byte %ld\n", ps->path, what,
            (long)(ps->p - ps->s));
    return -1;
}

static void ws(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static int expect_ch(struct parser *ps, char c)
{
    ws(ps);
    if (*ps->p != c) {
        char what[32];
        snprintf(what, sizeof(what), "expected '%c'", c);
        return fail(ps, what);
    }
    ps->p++;
    return 0;
}

/* A string into out (escapes kept as they are: keys and values of ours
 * need none to compare). */
static int string(struct parser *ps, char *out, size_t cap)
{
    if (expect_ch(ps, '"'))
        return -1;
    size_t n = 0;
    while (*ps->p && *ps->p != '"') {
        if (*ps->p == '\\' && ps->p[1])
            ps->p++;
        if (n + 1 < cap)
            out[n++] = *ps->p;
        ps->p++;
    }
    out[n] = '\0';
    if (*ps->p != '"')
        return fail(ps, "unterminated string");
    ps->p++;
    return 0;
}

static int number(struct parser *ps, double *v)
{
    ws(ps);
    char *end;
    *v = strtod(ps->p, &end);
    if (end == ps->p)
        return fail(ps, "expected a number");
    ps->p = end;
    return 0;
}

static int numbers(struct parser *ps, double *v, unsigned *n)
{
    *n = 0;
    if (expect_ch(ps, '['))
        return -1;
    ws(ps);
    if (*ps->p == ']') {
        ps->p++;
        return 0;
    }
    for (;;) {
        double x;
        if (number(ps, &x))
            return -1;
        if (*n < MAX_SAMPLES)
            v[(*n)++] = x;
        ws(ps);
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (expect_ch(ps, ','))
            return -1;
    }
}

static int object(struct parser *ps, struct cpoint *pt)
{
    memset(pt, 0, sizeof(*pt));
    if (expect_ch(ps, '{'))
        return -1;
    for (;;) {
        char key[64], sval[256];
        double x = 0;
        if (string(ps, key, sizeof(key)) || expect_ch(ps, ':'))
            return -1;
        ws(ps);
        if (*ps->p == '"') {
            if (string(ps, sval, sizeof(sval)))
                return -1;
        } else if (*ps->p == '[') {
            double *dst = !strcmp(key, "rpc_per_s_samples") ? pt->s_rps
                        : !strcmp(key, "p50_us_samples")    ? pt->s_p50
                        : !strcmp(key, "p99_us_samples")    ? pt->s_p99
                                                            : NULL;
            double tmp[MAX_SAMPLES];
            unsigned n;
            if (numbers(ps, dst ? dst : tmp, &n))
                return -1;
            if (dst == pt->s_rps)
                pt->n_rps = n;
            else if (dst == pt->s_p50)
                pt->n_p50 = n;
            else if (dst == pt->s_p99)
                pt->n_p99 = n;
        } else if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
            ps->p += *ps->p == 't' ? 4 : 5;
        } else {
            if (number(ps, &x))
                return -1;
            if (!strcmp(key, "req_type"))
                pt->req_type = x;
            else if (!strcmp(key, "size"))
                pt->size = x;
            else if (!strcmp(key, "depth"))
                pt->depth = x;
            else if (!strcmp(key, "sessions"))
                pt->sessions = x;
            else if (!strcmp(key, "rpc_per_s"))
                pt->rps = x;
            else if (!strcmp(key, "p50_us"))
                pt->p50 = x;
            else if (!strcmp(key, "p99_us"))
                pt->p99 = x;
        }
        ws(ps);
        if (*ps->p == '}') {
            ps->p++;
            return 0;
        }
        if (expect_ch(ps, ','))
            return -1;
    }
}

/* The points of path into a new array: their count, or -1. */
static int load(const char *path, struct cpoint **out)
{
    uint8_t *bytes;
    size_t len;
    int err = bench_read_file(path, &bytes, &len);
    if (err) {
        fprintf(stderr, "rpc_bench --compare: %s: %s\n", path, strerror(-err));
        return -1;
    }
    char *buf = (char *)bytes; /* NUL-terminated */
    struct parser ps = { path, buf, buf };
    struct cpoint *pts = calloc(MAX_POINTS, sizeof(*pts));
    int count = 0;
    if (!pts || expect_ch(&ps, '['))
        goto bad;
    ws(&ps);
    if (*ps.p == ']')
        goto done;
    for (;;) {
        if (count == MAX_POINTS) {
            fail(&ps, "too many points");
            goto bad;
        }
        if (object(&ps, &pts[count]))
            goto bad;
        count++;
        ws(&ps);
        if (*ps.p == ']')
            break;
        if (expect_ch(&ps, ','))
            goto bad;
    }
done:
    free(buf);
    *out = pts;
    return count;
bad:
    free(buf);
    free(pts);
    return -1;
}

/* (max - min) / median of samples; 0 for fewer than 2. */
static double spread(const double *v, unsigned n, double median)
{
    if (n < 2 || median <= 0)
        return 0;
    double lo = v[0], hi = v[0];
    for (unsigned i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    return (hi - lo) / median;
}

/* One metric of one point: prints its line, returns 1 if worse. */
static int verdict(const char *name, double a, const double *sa, unsigned na, double b,
                   const double *sb, unsigned nb, int higher_better, double floor)
{
    double change = a > 0 ? (b - a) / a : 0;
    double noise = spread(sa, na, a), nb_spread = spread(sb, nb, b);
    if (nb_spread > noise)
        noise = nb_spread;
    if (noise < floor)
        noise = floor;
    const char *v = "within noise";
    int worse = 0;
    if (change > noise || change < -noise) {
        int up = change > 0;
        worse = up != higher_better;
        v = worse ? "worse" : "better";
    }
    printf("  %-10s %14.2f %14.2f %+9.2f%%   +-%5.1f%%   %s\n", name, a, b, 100 * change,
           100 * noise, v);
    return worse;
}

int bench_compare(const char *a_path, const char *b_path, double floor)
{
    struct cpoint *a, *b;
    int na = load(a_path, &a);
    if (na < 0)
        return 2;
    int nb = load(b_path, &b);
    if (nb < 0) {
        free(a);
        return 2;
    }
    printf("rpc_bench --compare %s (A) -> %s (B); noise: the larger spread of the two runs' "
           "repetitions, at least %.0f%%\n", a_path, b_path, 100 * floor);
    int matched = 0, worse = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            const struct cpoint *x = &a[i], *y = &b[j];
            if (x->req_type != y->req_type || x->size != y->size || x->depth != y->depth ||
                x->sessions != y->sessions)
                continue;
            matched++;
            printf("type %.0f, size %.0f, depth %.0f, %.0f session%s:   %14s %14s %10s %10s\n",
                   x->req_type, x->size, x->depth, x->sessions, x->sessions == 1 ? "" : "s",
                   "A", "B", "change", "noise");
            worse += verdict("RPC/s", x->rps, x->s_rps, x->n_rps, y->rps, y->s_rps, y->n_rps, 1,
                             floor);
            worse += verdict("p50 us", x->p50, x->s_p50, x->n_p50, y->p50, y->s_p50, y->n_p50, 0,
                             floor);
            worse += verdict("p99 us", x->p99, x->s_p99, x->n_p99, y->p99, y->s_p99, y->n_p99, 0,
                             floor);
            break;
        }
    free(a);
    free(b);
    if (!matched) {
        fprintf(stderr, "rpc_bench --compare: no point of %s is in %s (same request type, size, "
                        "sessions and depth)\n", a_path, b_path);
        return 2;
    }
    printf("%d point%s compared: %d metric%s worse\n", matched, matched == 1 ? "" : "s", worse,
           worse == 1 ? "" : "s");
    return worse ? 1 : 0;
}
