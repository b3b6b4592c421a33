/* bench_payload.c — see bench_payload.h. */
#include "bench_payload.h"
#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HEX into a new buffer: its length, or -1. */
static long parse_hex(const char *hex, uint8_t **out)
{
    size_t n = strlen(hex);
    if (n % 2)
        return -1;
    *out = malloc(n / 2 + 1);
    if (!*out)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1])) {
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

/* TEXT or HEX after "fixed:" or "hex:": 0, or -1 if spec is neither. */
static int parse_bytes(const char *spec, uint8_t **out, size_t *len)
{
    if (!strncmp(spec, "fixed:", 6)) {
        *len = strlen(spec + 6);
        *out = malloc(*len + 1);
        if (!*out)
            return -1;
        memcpy(*out, spec + 6, *len);
        return 0;
    }
    if (!strncmp(spec, "hex:", 4)) {
        long n = parse_hex(spec + 4, out);
        if (n < 0)
            return -1;
        *len = (size_t)n;
        return 0;
    }
    return -1;
}

/* Splits p->bytes into records: lines (lenpfx 0) or length-prefixed. */
static int split_records(struct bench_payload *p, int lenpfx, const char *path)
{
    size_t cap = 0;
    for (size_t pos = 0; pos < p->len;) {
        size_t off, len;
        if (lenpfx) {
            uint32_t l;
            if (p->len - pos < 4) {
                fprintf(stderr, "rpc_bench: --payload lenpfx:%s: a truncated length at byte %zu\n",
                        path, pos);
                return -1;
            }
            memcpy(&l, p->bytes + pos, 4);
            if (p->len - pos - 4 < l) {
                fprintf(stderr, "rpc_bench: --payload lenpfx:%s: the record at byte %zu says %u "
                                "bytes, %zu are left\n", path, pos, l, p->len - pos - 4);
                return -1;
            }
            off = pos + 4;
            len = l;
            pos = off + len;
        } else {
            const uint8_t *nl = memchr(p->bytes + pos, '\n', p->len - pos);
            off = pos;
            len = nl ? (size_t)(nl - (p->bytes + pos)) : p->len - pos;
            pos += len + 1;
        }
        if (p->n == cap) {
            cap = cap ? cap * 2 : 64;
            size_t *o = realloc(p->off, cap * sizeof(*o)), *l = o ? realloc(p->lens, cap * sizeof(*l)) : NULL;
            if (o)
                p->off = o;
            if (!o || !l)
                return -1;
            p->lens = l;
        }
        p->off[p->n] = off;
        p->lens[p->n++] = len;
        if (len > p->max_len)
            p->max_len = len;
    }
    if (p->n == 0) {
        fprintf(stderr, "rpc_bench: --payload %s: the file holds no payload\n", p->spec);
        return -1;
    }
    return 0;
}

int bench_payload_parse(struct bench_payload *p, const char *spec)
{
    memset(p, 0, sizeof(*p));
    p->spec = spec;
    if (!strcmp(spec, "pattern"))
        p->kind = PAYLOAD_PATTERN;
    else if (!strcmp(spec, "random"))
        p->kind = PAYLOAD_RANDOM;
    else if (!strncmp(spec, "fixed:", 6) || !strncmp(spec, "hex:", 4)) {
        p->kind = PAYLOAD_BYTES;
        if (parse_bytes(spec, &p->bytes, &p->len) != 0) {
            fprintf(stderr, "rpc_bench: --payload %s: not an even count of hex digits\n", spec);
            return -1;
        }
        p->max_len = p->len;
    } else if (!strncmp(spec, "lines:", 6) || !strncmp(spec, "lenpfx:", 7)) {
        int lenpfx = spec[1] == 'e';
        const char *path = spec + (lenpfx ? 7 : 6);
        p->kind = PAYLOAD_FILE;
        int err = bench_read_file(path, &p->bytes, &p->len);
        if (err) {
            fprintf(stderr, "rpc_bench: --payload %s: cannot read %s: %s\n", spec, path,
                    strerror(-err));
            return -1;
        }
        if (split_records(p, lenpfx, path) != 0) {
            bench_payload_free(p);
            return -1;
        }
    } else {
        fprintf(stderr, "rpc_bench: --payload %s: expected pattern, random, fixed:TEXT, "
                        "hex:HEX, lines:FILE or lenpfx:FILE\n", spec);
        return -1;
    }
    return 0;
}

void bench_payload_free(struct bench_payload *p)
{
    free(p->bytes);
    free(p->off);
    free(p->lens);
    memset(p, 0, sizeof(*p));
}

int bench_payload_sized(const struct bench_payload *p)
{
    return p->kind == PAYLOAD_PATTERN || p->kind == PAYLOAD_RANDOM;
}

int bench_payload_varies(const struct bench_payload *p)
{
    return p->kind == PAYLOAD_FILE && p->n > 1;
}

size_t bench_payload_cap(const struct bench_payload *p, size_t size)
{
    return bench_payload_sized(p) ? size : p->max_len;
}

size_t bench_payload_make(const struct bench_payload *p, size_t size, unsigned slot,
                          uint64_t seq, uint8_t *buf)
{
    switch (p->kind) {
    case PAYLOAD_PATTERN:
        for (size_t j = 0; j < size; j++)
            buf[j] = (uint8_t)(j * 7 + slot);
        return size;
    case PAYLOAD_RANDOM: {
        uint64_t x = 0x9e3779b97f4a7c15ull * (slot + 1) + seq;
        for (size_t j = 0; j < size; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[j] = (uint8_t)x;
        }
        return size;
    }
    case PAYLOAD_BYTES:
        memcpy(buf, p->bytes, p->len);
        return p->len;
    case PAYLOAD_FILE: {
        /* Slots start apart, so that depth d sends d different records. */
        size_t i = (size_t)((seq + slot) % p->n);
        memcpy(buf, p->bytes + p->off[i], p->lens[i]);
        return p->lens[i];
    }
    }
    return 0;
}

int bench_expect_parse(struct bench_expect *e, const char *spec)
{
    memset(e, 0, sizeof(*e));
    e->spec = spec;
    char *end;
    if (!strcmp(spec, "any"))
        e->kind = EXPECT_ANY;
    else if (!strcmp(spec, "echo"))
        e->kind = EXPECT_ECHO;
    else if (!strncmp(spec, "size:", 5)) {
        e->kind = EXPECT_SIZE;
        errno = 0;
        e->size = strtoul(spec + 5, &end, 0);
        if (end == spec + 5 || *end || errno) {
            fprintf(stderr, "rpc_bench: --expect %s: size:N takes a number of bytes\n", spec);
            return -1;
        }
    } else if (!strncmp(spec, "fixed:", 6) || !strncmp(spec, "hex:", 4)) {
        e->kind = EXPECT_BYTES;
        if (parse_bytes(spec, &e->bytes, &e->size) != 0) {
            fprintf(stderr, "rpc_bench: --expect %s: not an even count of hex digits\n", spec);
            return -1;
        }
    } else {
        fprintf(stderr, "rpc_bench: --expect %s: expected any, echo, size:N, fixed:TEXT or "
                        "hex:HEX\n", spec);
        return -1;
    }
    return 0;
}

void bench_expect_free(struct bench_expect *e)
{
    free(e->bytes);
    memset(e, 0, sizeof(*e));
}

int bench_expect_check(const struct bench_expect *e, const uint8_t *req, size_t req_len,
                       const uint8_t *resp, size_t resp_len)
{
    switch (e->kind) {
    case EXPECT_ANY:
        return 0;
    case EXPECT_ECHO:
        return resp_len == req_len && memcmp(resp, req, req_len) == 0 ? 0 : -1;
    case EXPECT_SIZE:
        return resp_len == e->size ? 0 : -1;
    case EXPECT_BYTES:
        return resp_len == e->size && memcmp(resp, e->bytes, e->size) == 0 ? 0 : -1;
    }
    return -1;
}
