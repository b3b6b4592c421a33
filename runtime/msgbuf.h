/*
 * msgbuf.h — the per-Rpc message buffer allocator.
 *
 * Power-of-two size classes carved from large regions (2 MiB hugepages when
 * the system has them, plain pages otherwise); freed buffers go back to
 * their class's free list, so steady-state RPCs never call malloc or mmap.
 * Regions are returned only when the allocator is destroyed.
 *
 * A buffer of max_size bytes split into n packets of dpp bytes is laid out
 *   [desc 48 B][hdr 0][data: max_size B][hdr 1]...[hdr n-1]
 * so packet 0 is contiguous with its header and every packet has header
 * room of its own: sends are zero-copy (eRPC's layout).
 */
#ifndef UDRPC_RUNTIME_MSGBUF_H
#define UDRPC_RUNTIME_MSGBUF_H

#include <stddef.h>
#include <stdint.h>

#include "udrpc.h"
#include "wire.h"

#define MSGBUF_MIN_CLASS 7   /* 128 B */
#define MSGBUF_NUM_CLASSES 19 /* up to 2^25 = 32 MiB */
#define MSGBUF_REGION_SIZE (2u << 20)
#define MSGBUF_DESC_SIZE 48u

struct mb_desc {
    struct mb_desc *next_free;
    uint32_t magic;
    uint8_t size_class;
    uint8_t pad[3];
    uint32_t lkey;       /* the transport's memory key for this region */
    uint32_t pad2;
    uint8_t pad3[24];
};
_Static_assert(sizeof(struct mb_desc) + UDRPC_HDR_SIZE == 64,
               "data starts 64 bytes into a chunk");

struct mb_region {
    struct mb_region *next;
    void *base;
    size_t len;
    uint32_t lkey;
    int borrowed;             /* 1: the transport's memory, not unmapped here */
};

/* Called for each new region (memory registration with the NIC). Returns
 * 0 and an lkey, or -errno. */
typedef int (*mb_reg_fn)(void *ctx, void *base, size_t len, uint32_t *lkey);

/* Where a new region comes from before the allocator maps one of its own:
 * memory the transport sends from without a copy (xdp: its UMEM). Returns
 * len bytes that the transport keeps owning, or NULL where it has no more.
 * May be called from two allocators' threads at once. */
typedef void *(*mb_borrow_fn)(void *ctx, size_t len);

struct msgbuf_alloc {
    struct mb_desc *free_list[MSGBUF_NUM_CLASSES];
    struct mb_region *regions;
    size_t dpp;               /* data bytes per packet */
    size_t bytes_mapped;
    mb_reg_fn reg;
    void *reg_ctx;
    mb_borrow_fn borrow;      /* NULL: every region is mapped here */
    void *borrow_ctx;
    int try_huge;             /* 1: try MAP_HUGETLB first */
    unsigned huge_regions;
};

void udrpc__msgbuf_alloc_init(struct msgbuf_alloc *a, size_t dpp,
                              mb_reg_fn reg, void *reg_ctx);
/* Regions from borrow(ctx, len) first, from now on. */
void udrpc__msgbuf_alloc_borrow(struct msgbuf_alloc *a, mb_borrow_fn borrow, void *ctx);
void udrpc__msgbuf_alloc_fini(struct msgbuf_alloc *a);
int udrpc__msgbuf_get(struct msgbuf_alloc *a, size_t max_size, udrpc_msgbuf_t *out);
void udrpc__msgbuf_put(struct msgbuf_alloc *a, udrpc_msgbuf_t *mb);

static inline size_t msgbuf_pkts(size_t size, size_t dpp)
{
    return size <= dpp ? 1 : (size + dpp - 1) / dpp;
}

/* Header room of packet pkt of a buffer (may be unaligned). */
static inline uint8_t *msgbuf_hdr(const udrpc_msgbuf_t *m, size_t pkt)
{
    return pkt == 0 ? m->buf - UDRPC_HDR_SIZE
                    : m->buf + m->max_size + UDRPC_HDR_SIZE * (pkt - 1);
}

static inline uint32_t msgbuf_lkey(const udrpc_msgbuf_t *m)
{
    return ((const struct mb_desc *)m->priv)->lkey;
}

#endif
