/*
 * make_corpus.c — writes the fuzz targets' seed corpora: valid packets of
 * every kind, so the fuzzers start past the magic checks.
 *   make_corpus DIR     (creates DIR/rx, DIR/sm, DIR/uri, DIR/shm)
 * The fuzz set-up is deterministic: the client's session and the server's
 * are both number 0, and the loop MTU is 1024 (1008 data bytes a packet).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "shm_ring.h"
#include "sm.h"
#include "wire.h"

static const char *dir;

static void put(const char *sub, int n, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/seed%02d", dir, sub, n);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len) {
        perror(path);
        return;
    }
    fclose(f);
}

/* One rx record: [flags][len le16][header][payload of data_len bytes]. */
static size_t rx_record(uint8_t *out, uint8_t flags, enum pkt_type t, uint32_t msg_size,
                        uint16_t pkt, uint64_t req, size_t data_len)
{
    struct pkthdr h;
    pkthdr_pack(&h, 1, msg_size, 0, t, 0, pkt, req);
    size_t len = 16 + data_len;
    out[0] = flags;
    out[1] = (uint8_t)len;
    out[2] = (uint8_t)(len >> 8);
    memcpy(out + 3, &h, 16);
    memset(out + 19, 0x5A, data_len);
    return 3 + len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    char path[512];
    const char *subs[] = { "", "/rx", "/sm", "/uri", "/shm" };
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s%s", dir, subs[i]);
        mkdir(path, 0755);
    }
    uint8_t buf[8192];
    size_t n;
    int k = 0;
    /* rx: to the server (flag 1) requests and RFRs, to the client (0)
     * responses and credit returns after starting a request (flag 4). */
    n = rx_record(buf, 1, PKT_REQ, 10, 0, 0, 10);
    put("rx", k++, buf, n);
    n = rx_record(buf, 1, PKT_REQ, 3000, 0, 1, 1008);
    n += rx_record(buf + n, 1, PKT_REQ, 3000, 1, 1, 1008);
    n += rx_record(buf + n, 1, PKT_REQ, 3000, 2, 1, 984);
    n += rx_record(buf + n, 1, PKT_RFR, 3000, 1, 1, 0);
    put("rx", k++, buf, n);
    n = rx_record(buf, 1, PKT_REQ, 3000, 2, 1, 984); /* ahead of a gap */
    put("rx", k++, buf, n);
    n = rx_record(buf, 4, PKT_RESP, 16, 0, 0, 16);
    put("rx", k++, buf, n);
    n = rx_record(buf, 4, PKT_CR, 2000, 0, 0, 0);
    n += rx_record(buf + n, 0, PKT_RESP, 2000, 1, 0, 992);
    put("rx", k++, buf, n);
    n = rx_record(buf, 3, PKT_REQ, 10, 0, 0, 10); /* from a stranger */
    put("rx", k++, buf, n);

    /* sm: each type, to the server (first byte 0) or the client (1). */
    k = 0;
    for (int type = SM_CONNECT_REQ; type <= SM_TYPE_MAX; type++) {
        struct sm_pkt p;
        memset(&p, 0, sizeof(p));
        p.type = (uint8_t)type;
        p.client_rpc_id = 1;
        p.server_rpc_id = 0;
        p.client_session = (uint16_t)(type % 3);
        p.server_session = 0;
        p.token = 0x1122334455667788ull;
        p.mtu = 1024;
        strcpy(p.client_uri, "127.0.0.1:9");
        p.client_route.kind = TP_LOOP;
        p.client_route.len = 8;
        p.server_route.kind = TP_LOOP;
        p.server_route.len = 8;
        buf[0] = (uint8_t)(type % 2 == 0); /* responses to the client */
        udrpc__sm_encode(&p, buf + 1);
        put("sm", k++, buf, 1 + SM_PKT_SIZE);
    }

    const char *uris[] = { "127.0.0.1:31850", "localhost:0", "a:1", "example.com:65535",
                           "10.0.0.1:99999", "[::1]:80", ":1", "host:", "[fe80::1%lo]:5",
                           "[::ffff:1.2.3.4]:9", "[::1:80", "[2001:db8::1%lo]:1" };
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
        put("uri", (int)i, uris[i], strlen(uris[i]));

    /* shm: where the reader's head starts, then a ring's bytes
     * (fuzz_shm.c): records of 16, 100 and 1000 bytes from offset 0; one
     * of 100 after a wrap marker at the ring's end (4096). Positions count
     * from SHM_POS0. A third: two references, into the fuzz heap. */
    memset(buf, 0, sizeof(buf));
    uint64_t off = 0;
    const uint32_t lens[] = { 16, 100, 1000 };
    for (int i = 0; i < 3; i++) {
        struct shm_rec_hdr h = { .len = lens[i], .kind = SHM_REC_PKT };
        atomic_init(&h.pos, SHM_POS0(4096) + off);
        memcpy(buf + 8 + off, &h, sizeof(h));
        memset(buf + 8 + off + SHM_REC_HDR, 0x40 + i, lens[i]);
        off += shm_rec_bytes(lens[i]);
    }
    put("shm", 0, buf, 8 + off);
    memset(buf, 0, sizeof(buf));
    uint64_t head = 4032;
    memcpy(buf, &head, 8);
    struct shm_rec_hdr w = { .len = 0, .kind = SHM_REC_WRAP };
    struct shm_rec_hdr r = { .len = 100, .kind = SHM_REC_PKT };
    atomic_init(&w.pos, SHM_POS0(4096) + 4032);
    atomic_init(&r.pos, SHM_POS0(4096) + 4096);
    memcpy(buf + 8 + 4032, &w, sizeof(w));
    memcpy(buf + 8, &r, sizeof(r));
    put("shm", 1, buf, 8 + 4096);
    /* Two references into the fuzz heap (8 KiB), then a packet. */
    memset(buf, 0, sizeof(buf));
    off = 0;
    const struct shm_ref refs[2] = { { .off = 0, .len = 1000 }, { .off = 4096, .len = 4096 } };
    for (int i = 0; i < 3; i++) {
        uint32_t len = i < 2 ? SHM_REF_REC_LEN : 100;
        struct shm_rec_hdr h = { .len = len, .kind = i < 2 ? SHM_REC_REF : SHM_REC_PKT };
        atomic_init(&h.pos, SHM_POS0(4096) + off);
        memcpy(buf + 8 + off, &h, sizeof(h));
        memset(buf + 8 + off + SHM_REC_HDR, 0x50 + i, SHM_PKT_HDR);
        if (i < 2)
            memcpy(buf + 8 + off + SHM_REC_HDR + SHM_PKT_HDR, &refs[i], sizeof(refs[i]));
        off += shm_rec_bytes(len);
    }
    put("shm", 2, buf, 8 + off);
    return 0;
}
