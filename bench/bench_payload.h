/* bench_payload.h — what rpc_bench sends and what it expects back.
 *
 * --payload SPEC, the requests:
 *   pattern        bytes i*7+slot, of each --sizes size (the default)
 *   random         random bytes of each --sizes size (drawn once per
 *                  request slot and point: no generator on the hot path)
 *   fixed:TEXT     the bytes of TEXT;   hex:HEX   the bytes HEX spells
 *   lines:FILE     each line of FILE (without its newline), in turn
 *   lenpfx:FILE    records of a u32 little-endian length, then that many
 *                  bytes, in turn
 * --expect SPEC, the check of every response (a failure is counted, not
 * fatal): any (none), echo (the request's bytes), size:N, fixed:TEXT,
 * hex:HEX. */
#ifndef UDRPC_BENCH_PAYLOAD_H
#define UDRPC_BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

enum payload_kind { PAYLOAD_PATTERN, PAYLOAD_RANDOM, PAYLOAD_BYTES, PAYLOAD_FILE };

struct bench_payload {
    enum payload_kind kind;
    const char *spec;
    uint8_t *bytes;            /* PAYLOAD_BYTES; PAYLOAD_FILE: every record */
    size_t len;
    size_t *off, *lens, n;     /* PAYLOAD_FILE: n records in bytes */
    size_t max_len;            /* the longest record (BYTES, FILE) */
};

/* 0, or -1 after printing why (a bad spec, an unreadable or empty file, a
 * truncated record). */
int bench_payload_parse(struct bench_payload *p, const char *spec);
void bench_payload_free(struct bench_payload *p);
/* Whether the requests' size comes from --sizes (pattern, random). */
int bench_payload_sized(const struct bench_payload *p);
/* Whether request seq of a slot differs from its request 0 (FILE). */
int bench_payload_varies(const struct bench_payload *p);
/* The largest request for nominal size. */
size_t bench_payload_cap(const struct bench_payload *p, size_t size);
/* Writes request seq of a slot (numbered slot) of nominal size into buf
 * (cap bytes); returns its length. */
size_t bench_payload_make(const struct bench_payload *p, size_t size, unsigned slot,
                          uint64_t seq, uint8_t *buf);

enum expect_kind { EXPECT_ANY, EXPECT_ECHO, EXPECT_SIZE, EXPECT_BYTES };

struct bench_expect {
    enum expect_kind kind;
    const char *spec;
    size_t size;
    uint8_t *bytes;
};

int bench_expect_parse(struct bench_expect *e, const char *spec);
void bench_expect_free(struct bench_expect *e);
/* 0 if resp passes. */
int bench_expect_check(const struct bench_expect *e, const uint8_t *req, size_t req_len,
                       const uint8_t *resp, size_t resp_len);

#endif
