/* msgbuf.c — size-class allocator over hugepage or plain regions. */
#include "msgbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MB_MAGIC_LIVE 0x6D62756Cu /* "mbul" */
#define MB_MAGIC_FREE 0x6D626672u

void udrpc__msgbuf_alloc_init(struct msgbuf_alloc *a, size_t dpp,
                              mb_reg_fn reg, void *reg_ctx)
{
    for (unsigned i = 0; i < MSGBUF_NUM_CLASSES; i++)
        a->free_list[i] = NULL;
    a->regions = NULL;
    a->dpp = dpp;
    a->bytes_mapped = 0;
    a->reg = reg;
    a->reg_ctx = reg_ctx;
    a->borrow = NULL;
    a->borrow_ctx = NULL;
    a->try_huge = 1;
    a->huge_regions = 0;
}

void udrpc__msgbuf_alloc_borrow(struct msgbuf_alloc *a, mb_borrow_fn borrow, void *ctx)
{
    a->borrow = borrow;
    a->borrow_ctx = ctx;
}

void udrpc__msgbuf_alloc_fini(struct msgbuf_alloc *a)
{
    struct mb_region *r = a->regions;
    while (r) {
        struct mb_region *next = r->next;
        if (!r->borrowed)
            munmap(r->base, r->len);
        free(r);
        r = next;
    }
    a->regions = NULL;
}

static void *map_region(struct msgbuf_alloc *a, size_t len, int *huge)
{
    void *p;
    *huge = 0;
    if (a->try_huge && len % MSGBUF_REGION_SIZE == 0) {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (p != MAP_FAILED) {
            *huge = 1;
            return p;
        }
        a->try_huge = 0; /* none reserved: stop asking */
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Adds a region and threads its chunks of class c onto the free list. */
static int refill(struct msgbuf_alloc *a, unsigned c)
{
    size_t chunk = (size_t)1 << c;
    size_t len = chunk > MSGBUF_REGION_SIZE ? chunk : MSGBUF_REGION_SIZE;
    struct mb_region *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    int huge = 0;
    r->base = a->borrow ? a->borrow(a->borrow_ctx, len) : NULL;
    r->borrowed = r->base != NULL;
    if (!r->base)
        r->base = map_region(a, len, &huge);
    if (!r->base) {
        free(r);
        return -ENOMEM;
    }
    r->len = len;
    r->lkey = 0;
    if (a->reg) {
        int ret = a->reg(a->reg_ctx, r->base, len, &r->lkey);
        if (ret) {
            if (!r->borrowed)
                munmap(r->base, len);
            free(r);
            return ret;
        }
    }
    r->next = a->regions;
    a->regions = r;
    a->bytes_mapped += len;
    a->huge_regions += (unsigned)huge;
    for (size_t off = len; off >= chunk; off -= chunk) {
        struct mb_desc *d = (struct mb_desc *)((uint8_t *)r->base + off - chunk);
        d->magic = MB_MAGIC_FREE;
        d->size_class = (uint8_t)c;
        d->lkey = r->lkey;
        d->next_free = a->free_list[c - MSGBUF_MIN_CLASS];
        a->free_list[c - MSGBUF_MIN_CLASS] = d;
    }
    return 0;
}

int udrpc__msgbuf_get(struct msgbuf_alloc *a, size_t max_size, udrpc_msgbuf_t *out)
{
    size_t need = sizeof(struct mb_desc) + UDRPC_HDR_SIZE + max_size +
                  UDRPC_HDR_SIZE * (msgbuf_pkts(max_size, a->dpp) - 1);
    unsigned c = MSGBUF_MIN_CLASS;
    while (((size_t)1 << c) < need)
        c++;
    if (c >= MSGBUF_MIN_CLASS + MSGBUF_NUM_CLASSES)
        return -EINVAL;
    struct mb_desc **fl = &a->free_list[c - MSGBUF_MIN_CLASS];
    if (!*fl) {
        int ret = refill(a, c);
        if (ret)
            return ret;
    }
    struct mb_desc *d = *fl;
    *fl = d->next_free;
    d->next_free = NULL;
    d->magic = MB_MAGIC_LIVE;
    out->buf = (uint8_t *)d + sizeof(*d) + UDRPC_HDR_SIZE;
    out->size = max_size;
    out->max_size = max_size;
    out->priv = d;
    return 0;
}

void udrpc__msgbuf_put(struct msgbuf_alloc *a, udrpc_msgbuf_t *mb)
{
    struct mb_desc *d = mb->priv;
    if (!d || d->magic != MB_MAGIC_LIVE)
        return; /* NULL, foreign or already freed: ignore, never corrupt */
    d->magic = MB_MAGIC_FREE;
    d->next_free = a->free_list[d->size_class - MSGBUF_MIN_CLASS];
    a->free_list[d->size_class - MSGBUF_MIN_CLASS] = d;
    mb->buf = NULL;
    mb->priv = NULL;
    mb->size = mb->max_size = 0;
}
