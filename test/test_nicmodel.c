/*
 * test_nicmodel.c — the mlx5 transport's queue logic against the NIC
 * model, below the Rpc: two transports, packets sent with tx_burst and
 * read with rx_burst, every byte and every source checked, and the
 * model's own view (indices, CQEs, segment counts) compared with what the
 * transport must have written.
 *
 *   wrap      SQ, RQ and both CQs around their rings hundreds of times;
 *             inline data cut by the ring's end
 *   shapes    every inline size 0..max_inline (WQE size by 16-byte unit),
 *             one and two data segments, the largest DS count (63)
 *   signal    one CQE per SIGNAL_EVERY inline WQEs, one per gathering WQE
 *   errors    bad lkey, send over the MTU, receive over the buffer:
 *             error CQEs with their syndromes, QP reset, traffic after it;
 *             wrong Q_Key and no posted receive WQE: counted drops
 *   doorbell  the doorbell records' bytes (big-endian), BlueFlame writes
 *   grh       the same over GRH (IB / IPv6) addressing instead of IPv4
 *   barriers  the model checks the transport's ordering with the device
 *             against rdma-core's at every doorbell and CQE read (and
 *             aborts on a violation, in every test on it); here each
 *             barrier is left out in turn, and the model must notice
 */
#include <stddef.h>
#include <string.h>

#include "wire.h"
#include "test.h"
#include "mlx5.h"

#define SIGNAL_EVERY 32 /* as transport/mlx5/mlx5.c */

struct side {
    struct transport *tp;
    struct tp_peer to_other;
    uint8_t *region;          /* registered: gathers come from here */
    uint32_t lkey;
};

static struct side a, b;
static uint64_t seq;

static void open_pair(const struct nicmodel_cfg *ca, const struct nicmodel_cfg *cb)
{
    udrpc_config_t cfg;
    udrpc_config_default(&cfg);
    nicmodel_configure(ca);
    CHECK_EQ(udrpc__mlx5_create(&cfg, &(struct tp_params){ 0 }, &a.tp), 0);
    nicmodel_configure(cb ? cb : ca);
    CHECK_EQ(udrpc__mlx5_create(&cfg, &(struct tp_params){ 0 }, &b.tp), 0);
    CHECK_EQ(a.tp->ops->make_peer(a.tp, &b.tp->local, NULL, &a.to_other), 0);
    CHECK_EQ(b.tp->ops->make_peer(b.tp, &a.tp->local, NULL, &b.to_other), 0);
    struct side *s[2] = { &a, &b };
    for (int i = 0; i < 2; i++) {
        s[i]->region = aligned_alloc(4096, 1 << 20);
        CHECK(s[i]->region);
        CHECK_EQ(s[i]->tp->ops->reg_mem(s[i]->tp, s[i]->region, 1 << 20, &s[i]->lkey), 0);
    }
}

static void close_pair(void)
{
    a.tp->ops->destroy(a.tp);
    b.tp->ops->destroy(b.tp);
    free(a.region);
    free(b.region);
    nicmodel_configure(NULL);
}

static void *nic(struct side *s)
{
    return udrpc__mlx5_nic(s->tp);
}

static struct nicmodel_stats mstats(struct side *s)
{
    struct nicmodel_stats st;
    nicmodel_get_stats(nic(s), &st);
    return st;
}

static struct udrpc_mlx5_stats tstats(struct side *s)
{
    struct udrpc_mlx5_stats st;
    udrpc__mlx5_get_stats(s->tp, &st);
    return st;
}

/* Fills a packet of data_len payload bytes numbered n: the header holds n,
 * the payload a pattern of n. contiguous: header right before the data. */
static void make_pkt(struct side *s, struct tp_tx_pkt *p, uint32_t data_len, uint64_t n,
                     size_t off, bool contiguous)
{
    uint8_t *hdr = s->region + off;
    uint8_t *data = contiguous ? hdr + UDRPC_HDR_SIZE : hdr + 256;
    memset(hdr, 0, UDRPC_HDR_SIZE);
    memcpy(hdr, &n, 8);
    memcpy(hdr + 8, &data_len, 4);
    for (uint32_t i = 0; i < data_len; i++)
        data[i] = (uint8_t)(n * 31 + i);
    p->peer = &s->to_other;
    p->hdr = hdr;
    p->data = data_len ? data : NULL;
    p->data_len = data_len;
    p->lkey = s->lkey;
}

/* Checks one received packet against make_pkt's n and the sender. */
static void check_pkt(const struct tp_rx_pkt *r, uint64_t n, uint32_t data_len,
                      const struct side *at)
{
    CHECK_EQ(r->len, UDRPC_HDR_SIZE + data_len);
    uint64_t got;
    memcpy(&got, r->buf, 8);
    CHECK_EQ(got, n);
    for (uint32_t i = 0; i < data_len; i++)
        if (r->buf[UDRPC_HDR_SIZE + i] != (uint8_t)(n * 31 + i)) {
            fprintf(stderr, "packet %llu byte %u wrong\n", (unsigned long long)n, i);
            exit(1);
        }
    /* the source is the peer the receiver made from the sender's route */
    CHECK(r->src_id[0] == at->to_other.src_id[0] && r->src_id[1] == at->to_other.src_id[1]);
}

/* Sends one packet s -> other and reads it there. */
static void one(struct side *s, struct side *o, uint32_t data_len, bool contiguous)
{
    struct tp_tx_pkt p;
    make_pkt(s, &p, data_len, ++seq, 0, contiguous);
    CHECK_EQ(s->tp->ops->tx_burst(s->tp, &p, 1, 0), 1);
    s->tp->ops->tx_flush(s->tp);
    struct tp_rx_pkt r[4];
    CHECK_EQ(o->tp->ops->rx_burst(o->tp, r, 4, 0), 1);
    check_pkt(&r[0], seq, data_len, o);
}

static uint32_t inline_ds(uint32_t len)
{
    return 4 + (4 + len + 15) / 16;
}

static void test_wrap(void)
{
    struct nicmodel_cfg c;
    nicmodel_default_cfg(&c);
    c.max_inline = 124;  /* WQEs of 2 and 3 BBs: some start on the ring's last BB */
    c.sq_bbs = 512;
    c.rq_wqes = 64;
    c.rcq_cqes = 64;
    c.scq_cqes = 256;
    c.rq_stride = 32;    /* a terminating data segment in each RQ WQE */
    open_pair(&c, NULL);
    uint64_t rng = 12345, sent = 0, got = 0, bytes = 0;
    uint64_t first = seq + 1;
    struct tp_tx_pkt p[16];
    struct tp_rx_pkt r[32];
    for (int round = 0; round < 20000; round++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        unsigned n = 1 + (unsigned)(rng >> 60); /* 1..16 per burst */
        uint32_t lens[16];
        for (unsigned i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            lens[i] = (uint32_t)((rng >> 33) % 200); /* inline and gather */
            make_pkt(&a, &p[i], lens[i], first + sent + i, (size_t)i * 1024, (rng >> 20) & 1);
        }
        CHECK_EQ(a.tp->ops->tx_burst(a.tp, p, n, 0), n);
        a.tp->ops->tx_flush(a.tp);
        unsigned k = b.tp->ops->rx_burst(b.tp, r, 32, 0);
        CHECK_EQ(k, n);
        for (unsigned i = 0; i < k; i++) {
            check_pkt(&r[i], first + got + i, lens[i], &b);
            bytes += lens[i];
        }
        sent += n;
        got += k;
    }
    seq += sent;
    struct nicmodel_stats ma = mstats(&a), mb = mstats(&b);
    struct udrpc_mlx5_stats ta = tstats(&a);
    CHECK_EQ(ma.wqes, sent);
    CHECK_EQ(mb.delivered, sent);
    CHECK_EQ(ma.err_cqes + mb.err_cqes + ma.bf_mismatch, 0);
    CHECK_EQ(ma.fenced + ma.solicited, 0); /* the transport sets neither */
    CHECK_EQ(ta.doorbells, 20000);
    uint32_t sq_laps = nicmodel_sq_ci(nic(&a)) / 512, rq_laps = nicmodel_rq_ci(nic(&b)) / 64;
    printf("wrap: %llu packets (%llu payload bytes): SQ %u laps, RQ and receive CQ %u laps, "
           "send CQ %llu CQEs = %llu laps; %llu WQEs wrapped, %llu inline copies cut\n",
           (unsigned long long)sent, (unsigned long long)bytes, sq_laps, rq_laps,
           (unsigned long long)ma.tx_cqes, (unsigned long long)ma.tx_cqes / 256,
           (unsigned long long)ma.wrapped_wqes, (unsigned long long)ma.split_inline);
    CHECK(sq_laps >= 100 && rq_laps >= 100 && ma.tx_cqes / 256 >= 10);
    CHECK(ma.wrapped_wqes > 0 && ma.split_inline > 0);
    close_pair();
}

static void test_shapes(void)
{
    struct nicmodel_cfg c;
    nicmodel_default_cfg(&c);
    c.max_inline = 940;  /* 4 + ceil((4 + 940) / 16) = 63 units: the DS field's largest */
    c.sq_bbs = 2048;     /* room for a burst of WQEs of 16 BBs */
    c.scq_cqes = 1024;
    open_pair(&c, NULL);
    /* Every inline size: the WQE is 4 units plus align(4 + len, 16). */
    for (uint32_t len = UDRPC_HDR_SIZE; len <= 940; len++) {
        uint32_t before = nicmodel_sq_ci(nic(&a));
        one(&a, &b, len - UDRPC_HDR_SIZE, true);
        struct nicmodel_stats m = mstats(&a);
        CHECK_EQ(m.last_ds, inline_ds(len));
        CHECK_EQ(nicmodel_sq_ci(nic(&a)) - before, (inline_ds(len) + 3) / 4);
    }
    struct nicmodel_stats m = mstats(&a);
    CHECK_EQ(m.max_ds, 63);
    CHECK_EQ(m.data_segs, 0);
    uint64_t inl = m.inline_segs;
    /* Past the inline limit: one data segment (header before the data)... */
    one(&a, &b, 940 - UDRPC_HDR_SIZE + 1, true);
    m = mstats(&a);
    CHECK_EQ(m.last_ds, 5);
    CHECK_EQ(m.data_segs, 1);
    /* ...or two (header apart), up to the MTU. */
    one(&a, &b, 2000, false);
    one(&a, &b, 4096 - UDRPC_HDR_SIZE, false);
    m = mstats(&a);
    CHECK_EQ(m.last_ds, 6);
    CHECK_EQ(m.data_segs, 5);
    CHECK_EQ(m.inline_segs, inl);
    CHECK_EQ(m.err_cqes, 0);
    printf("shapes: inline 16..940 B (DS 6..63), 1 and 2 data segments up to 4096 B: ok\n");
    close_pair();
}

static void test_signal(void)
{
    open_pair(NULL, NULL);
    struct tp_tx_pkt p[64];
    struct tp_rx_pkt r[32];
    unsigned total = 0;
    for (int round = 0; round < 10; round++) { /* 10 x 50 inline */
        for (unsigned i = 0; i < 50; i++)
            make_pkt(&a, &p[i], 32, ++seq, (size_t)i * 512, true);
        CHECK_EQ(a.tp->ops->tx_burst(a.tp, p, 50, 0), 50);
        a.tp->ops->tx_flush(a.tp);
        total += 50;
        unsigned got = 0;
        while (got < 50)
            got += b.tp->ops->rx_burst(b.tp, r, 32, 0);
    }
    struct nicmodel_stats m = mstats(&a);
    CHECK_EQ(m.tx_cqes, total / SIGNAL_EVERY);
    CHECK_EQ(tstats(&a).signalled, total / SIGNAL_EVERY);
    /* each gathering WQE asks for its CQE (tx_flush waits for the last) */
    for (unsigned i = 0; i < 5; i++)
        make_pkt(&a, &p[i], 1000, ++seq, (size_t)i * 4096, true);
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, p, 5, 0), 5);
    a.tp->ops->tx_flush(a.tp);
    m = mstats(&a);
    CHECK_EQ(m.tx_cqes, total / SIGNAL_EVERY + 5);
    unsigned got = 0;
    while (got < 5)
        got += b.tp->ops->rx_burst(b.tp, r, 32, 0);
    printf("signal: %u inline WQEs -> %llu CQEs (1 in %d), 5 gathering -> 5 more\n", total,
           (unsigned long long)(total / SIGNAL_EVERY), SIGNAL_EVERY);
    close_pair();
}

/* After a reset, traffic flows again both ways. */
static void check_alive(void)
{
    for (int i = 0; i < 100; i++) {
        one(&a, &b, (uint32_t)i * 37 % 3000, i & 1);
        one(&b, &a, (uint32_t)i * 53 % 3000, true);
    }
}

static void test_errors(void)
{
    open_pair(NULL, NULL);
    struct tp_tx_pkt p;
    struct tp_rx_pkt r[32];

    /* A gather with an lkey the device does not know. */
    make_pkt(&a, &p, 1000, ++seq, 0, true);
    p.lkey ^= 0x7700;
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, &p, 1, 0), 1);
    a.tp->ops->tx_flush(a.tp); /* returns: the error CQE retires everything */
    struct udrpc_mlx5_stats t = tstats(&a);
    CHECK_EQ(t.tx_errors, 1);
    CHECK_EQ(t.last_syndrome, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR);
    CHECK(nicmodel_in_error(nic(&a)));
    make_pkt(&a, &p, 10, ++seq, 0, true); /* while it waits for the reset: dropped, counted */
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, &p, 1, 0), 1);
    CHECK_EQ(tstats(&a).down_drops, 1);
    CHECK_EQ(a.tp->ops->rx_burst(a.tp, r, 32, 0), 0); /* resets */
    CHECK_EQ(tstats(&a).qp_resets, 1);
    CHECK(!nicmodel_in_error(nic(&a)));
    CHECK_EQ(b.tp->ops->rx_burst(b.tp, r, 32, 0), 0); /* nothing went out */
    check_alive();

    /* A send over the port's MTU. */
    make_pkt(&a, &p, 5000, ++seq, 0, true);
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, &p, 1, 0), 1);
    a.tp->ops->tx_flush(a.tp);
    t = tstats(&a);
    CHECK_EQ(t.tx_errors, 2);
    CHECK_EQ(t.last_syndrome, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR);
    /* WQEs behind a failed one are flushed (WR_FLUSH_ERR), not run */
    struct tp_tx_pkt two[2];
    make_pkt(&a, &two[0], 5000, ++seq, 0, true);
    make_pkt(&a, &two[1], 100, ++seq, 8192, true);
    CHECK_EQ(a.tp->ops->rx_burst(a.tp, r, 32, 0), 0);
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, two, 2, 0), 2);
    a.tp->ops->tx_flush(a.tp);
    CHECK(mstats(&a).flush_cqes >= 1);
    CHECK_EQ(b.tp->ops->rx_burst(b.tp, r, 32, 0), 0);
    CHECK_EQ(a.tp->ops->rx_burst(a.tp, r, 32, 0), 0);
    CHECK_EQ(tstats(&a).qp_resets, 3);
    check_alive();
    close_pair();

    /* A receive longer than the receiver's buffers (its port MTU 512). */
    struct nicmodel_cfg big, small;
    nicmodel_default_cfg(&big);
    nicmodel_default_cfg(&small);
    small.mtu = 512;
    open_pair(&big, &small);
    make_pkt(&a, &p, 1500, ++seq, 0, true);
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, &p, 1, 0), 1);
    a.tp->ops->tx_flush(a.tp);
    CHECK_EQ(b.tp->ops->rx_burst(b.tp, r, 32, 0), 0);
    t = tstats(&b);
    CHECK_EQ(t.rx_errors, 1);
    CHECK_EQ(t.last_syndrome, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR);
    CHECK_EQ(b.tp->ops->rx_burst(b.tp, r, 32, 0), 0); /* resets, reposts */
    CHECK_EQ(tstats(&b).qp_resets, 1);
    for (int i = 0; i < 50; i++)
        one(&a, &b, (uint32_t)i * 9, true);

    /* Another Q_Key: the device drops it, no CQE. */
    struct tp_route bad = b.tp->local;
    uint32_t qkey = 0x1234;
    memcpy(bad.bytes + 22, &qkey, 4);
    struct tp_peer wrong;
    CHECK_EQ(a.tp->ops->make_peer(a.tp, &bad, NULL, &wrong), 0);
    make_pkt(&a, &p, 20, ++seq, 0, true);
    p.peer = &wrong;
    CHECK_EQ(a.tp->ops->tx_burst(a.tp, &p, 1, 0), 1);
    CHECK_EQ(b.tp->ops->rx_burst(b.tp, r, 32, 0), 0);
    CHECK_EQ(mstats(&b).drop_qkey, 1);

    /* More arrivals than posted receive WQEs (512): the rest are dropped. */
    struct tp_tx_pkt burst[64];
    for (int round = 0; round < 10; round++) {
        for (unsigned i = 0; i < 64; i++)
            make_pkt(&a, &burst[i], 8, ++seq, (size_t)i * 64, true);
        CHECK_EQ(a.tp->ops->tx_burst(a.tp, burst, 64, 0), 64);
    }
    unsigned got = 0, k;
    while ((k = b.tp->ops->rx_burst(b.tp, r, 32, 0)) > 0)
        got += k;
    CHECK_EQ(got, 512);
    CHECK_EQ(mstats(&b).drop_no_rqe, 640 - 512);
    close_pair();
    printf("errors: LOCAL_PROT_ERR, LOCAL_LENGTH_ERR (send and receive), WR_FLUSH_ERR, resets, "
           "Q_Key and no-WQE drops: ok\n");
}

static void test_doorbell(void)
{
    open_pair(NULL, NULL);
    const struct mlx5_qp_mem *m = nicmodel_mem(nic(&a));
    const struct mlx5_qp_mem *mb = nicmodel_mem(nic(&b));
    /* 129 WQEs of 2 BBs: the send counter is 258 = 0x0102 */
    struct tp_tx_pkt p[64];
    struct tp_rx_pkt r[32];
    unsigned sent = 0;
    while (sent < 129) {
        unsigned n = 129 - sent < 43 ? 129 - sent : 43;
        for (unsigned i = 0; i < n; i++)
            make_pkt(&a, &p[i], 32, ++seq, (size_t)i * 256, true);
        CHECK_EQ(a.tp->ops->tx_burst(a.tp, p, n, 0), n);
        sent += n;
        unsigned got = 0;
        while (got < n)
            got += b.tp->ops->rx_burst(b.tp, r, 32, 0);
    }
    b.tp->ops->rx_burst(b.tp, r, 32, 0); /* re-posts the last burst's buffers */
    const uint8_t *snd = (const uint8_t *)&m->qp_dbrec[MLX5_SND_DBR];
    CHECK(snd[0] == 0 && snd[1] == 0 && snd[2] == 0x01 && snd[3] == 0x02);
    /* B posted 512 + 129 receive WQEs: 641 = 0x0281 */
    const uint8_t *rcv = (const uint8_t *)&mb->qp_dbrec[MLX5_RCV_DBR];
    CHECK(rcv[0] == 0 && rcv[1] == 0 && rcv[2] == 0x02 && rcv[3] == 0x81);
    /* B's receive CQ consumer index: 129 = 0x81, 24 bits big-endian */
    const uint8_t *cci = (const uint8_t *)&mb->rcq_dbrec[UDRPC_MLX5_CQ_SET_CI];
    CHECK(cci[0] == 0 && cci[1] == 0 && cci[2] == 0 && cci[3] == 0x81);
    CHECK_EQ(mstats(&a).bf_mismatch, 0);
    CHECK_EQ(mstats(&a).doorbells, 3);
    /* the BlueFlame halves alternate: the third write went to offset 0 */
    uint32_t oio;
    memcpy(&oio, m->bf_reg, 4);
    CHECK_EQ((be32toh(oio) >> 8) & 0xffff, 256); /* the last WQE: BBs 256..257 */
    CHECK_EQ(be32toh(oio) & 0xff, MLX5_OPCODE_SEND);
    printf("doorbell: send record 00 00 01 02, receive record 00 00 02 81, CQ index 00 00 00 81\n");
    close_pair();
}

static void test_grh(void)
{
    struct nicmodel_cfg c;
    nicmodel_default_cfg(&c);
    c.roce_ipv4 = false;
    open_pair(&c, NULL);
    for (int i = 0; i < 300; i++) {
        one(&a, &b, (uint32_t)i * 13 % 4000, true);
        one(&b, &a, (uint32_t)i * 7 % 4000, false);
    }
    CHECK(a.to_other.src_id[0] != b.to_other.src_id[0] || a.to_other.src_id[1] != b.to_other.src_id[1]);
    printf("grh: 600 packets with a GRH source check: ok\n");
    close_pair();
}

/* Each barrier left out in turn (both sides), with traffic both ways
 * (inline and gathering sends, so the send CQ is read too, and receive
 * re-posts); the model must count violations of the right kind, and none
 * with every barrier in place. */
static void test_barriers(void)
{
    static const struct {
        unsigned ev;
        const char *what;
        size_t counter;
    } muts[] = {
        { MLX5_EV_SQ_TO_DEVICE, "udma_to_device_barrier before the send record",
          offsetof(struct nicmodel_stats, order_sq) },
        { MLX5_EV_SQ_WC_START, "mmio_wc_start before the BlueFlame store",
          offsetof(struct nicmodel_stats, order_sq) },
        { MLX5_EV_SQ_WC_FLUSH, "mmio_flush_writes after the BlueFlame store",
          offsetof(struct nicmodel_stats, order_sq) },
        { MLX5_EV_RQ_TO_DEVICE, "udma_to_device_barrier before the receive record",
          offsetof(struct nicmodel_stats, order_rq) },
        { MLX5_EV_RCQ_FROM_DEVICE, "udma_from_device_barrier in the receive CQ",
          offsetof(struct nicmodel_stats, order_rcq) },
        { MLX5_EV_SCQ_FROM_DEVICE, "udma_from_device_barrier in the send CQ",
          offsetof(struct nicmodel_stats, order_scq) },
    };
    nicmodel_count_order_violations(true);
    for (int k = -1; k < (int)(sizeof(muts) / sizeof(muts[0])); k++) {
        open_pair(NULL, NULL);
        if (k >= 0) {
            udrpc__mlx5_skip_barriers(a.tp, 1u << muts[k].ev);
            udrpc__mlx5_skip_barriers(b.tp, 1u << muts[k].ev);
        }
        struct side *s[2] = { &a, &b };
        for (int round = 0; round < 400; round++) {
            struct side *from = s[round & 1], *to = s[!(round & 1)];
            struct tp_tx_pkt p[8];
            uint64_t first = seq + 1;
            uint32_t lens[8];
            for (unsigned i = 0; i < 8; i++) {
                lens[i] = (round % 5 == 0 && i == 0) ? 600 : 40; /* 600: a gather */
                make_pkt(from, &p[i], lens[i], first + i, (size_t)i * 1024, true);
            }
            CHECK_EQ(from->tp->ops->tx_burst(from->tp, p, 8, 0), 8);
            from->tp->ops->tx_flush(from->tp);
            struct tp_rx_pkt r[16];
            CHECK_EQ(to->tp->ops->rx_burst(to->tp, r, 16, 0), 8);
            for (unsigned i = 0; i < 8; i++)
                check_pkt(&r[i], first + i, lens[i], to);
            seq += 8;
        }
        struct nicmodel_stats ma = mstats(&a), mb = mstats(&b);
        uint64_t sq = ma.order_sq + mb.order_sq, rq = ma.order_rq + mb.order_rq,
                 rcq = ma.order_rcq + mb.order_rcq, scq = ma.order_scq + mb.order_scq;
        if (k < 0) {
            CHECK_EQ(sq + rq + rcq + scq, 0);
            CHECK(ma.tx_cqes > 0 && mb.tx_cqes > 0); /* the send CQs were read */
        } else {
            uint64_t hit = *(const uint64_t *)((const uint8_t *)&ma + muts[k].counter) +
                           *(const uint64_t *)((const uint8_t *)&mb + muts[k].counter);
            printf("barriers: without %s: the model counted %llu violations (send doorbell "
                   "%llu, receive record %llu, receive CQ %llu, send CQ %llu)\n",
                   muts[k].what, (unsigned long long)hit, (unsigned long long)sq,
                   (unsigned long long)rq, (unsigned long long)rcq, (unsigned long long)scq);
            CHECK(hit > 0);
            CHECK_EQ(sq + rq + rcq + scq, hit); /* and nothing else */
        }
        close_pair();
    }
    nicmodel_count_order_violations(false);
    printf("barriers: every barrier in place: no violation; each left out: caught\n");
}

int main(int argc, char **argv)
{
    udrpc__mlx5_use_nic(&nicmodel_ops);
    const char *only = argc > 1 ? argv[1] : "all";
    bool all = strcmp(only, "all") == 0;
    if (all || !strcmp(only, "wrap"))
        test_wrap();
    if (all || !strcmp(only, "shapes"))
        test_shapes();
    if (all || !strcmp(only, "signal"))
        test_signal();
    if (all || !strcmp(only, "errors"))
        test_errors();
    if (all || !strcmp(only, "doorbell"))
        test_doorbell();
    if (all || !strcmp(only, "grh"))
        test_grh();
    if (all || !strcmp(only, "barriers"))
        test_barriers();
    printf("test_nicmodel: ok\n");
    return 0;
}
