/* test_msgbuf.c — the allocator: sizes and classes, header room for every
 * packet inside the buffer's chunk, no overlap between live buffers, reuse
 * after free without new regions (no allocation in steady state). */
#include <string.h>

#include "msgbuf.h"
#include "test.h"

int main(void)
{
    struct msgbuf_alloc a;
    const size_t dpp = 1000;
    udrpc__msgbuf_alloc_init(&a, dpp, NULL, NULL);
    static const size_t sizes[] = { 1, 7, 64, 999, 1000, 1001, 4096, 65536, 1 << 20, 8 << 20 };
    udrpc_msgbuf_t mb[10];
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(udrpc__msgbuf_get(&a, sizes[i], &mb[i]), 0);
        CHECK_EQ(mb[i].size, sizes[i]);
        CHECK_EQ(mb[i].max_size, sizes[i]);
        CHECK_EQ((uintptr_t)mb[i].buf % 64, 0);
        size_t pkts = msgbuf_pkts(sizes[i], dpp);
        /* Header room: hdr 0 just before the data, the rest after it. */
        CHECK(msgbuf_hdr(&mb[i], 0) + UDRPC_HDR_SIZE == mb[i].buf);
        if (pkts > 1)
            CHECK(msgbuf_hdr(&mb[i], 1) == mb[i].buf + sizes[i]);
        /* Writing every byte of data and header room must stay inside the
         * chunk (ASan/valgrind would see an overflow into a neighbour). */
        for (size_t j = 0; j < mb[i].size; j++)
            mb[i].buf[j] = (uint8_t)(0xA0 + i);
        for (size_t p = 0; p < pkts; p++)
            memset(msgbuf_hdr(&mb[i], p), 0xEE, UDRPC_HDR_SIZE);
    }
    for (int i = 0; i < 10; i++)
        for (size_t j = 0; j < sizes[i]; j += 97)
            CHECK_EQ(mb[i].buf[j], 0xA0 + i);

    /* Steady state: free and allocate again, no new memory is mapped. */
    size_t mapped = a.bytes_mapped;
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 10; i++)
            udrpc__msgbuf_put(&a, &mb[i]);
        for (int i = 0; i < 10; i++)
            CHECK_EQ(udrpc__msgbuf_get(&a, sizes[i], &mb[i]), 0);
    }
    CHECK_EQ(a.bytes_mapped, mapped);

    /* Double free and foreign buffers are ignored, not corrupting. */
    udrpc_msgbuf_t copy = mb[0];
    udrpc__msgbuf_put(&a, &mb[0]);
    CHECK(mb[0].buf == NULL);
    udrpc__msgbuf_put(&a, &copy);
    udrpc_msgbuf_t x, y;
    CHECK_EQ(udrpc__msgbuf_get(&a, sizes[0], &x), 0);
    CHECK_EQ(udrpc__msgbuf_get(&a, sizes[0], &y), 0);
    CHECK(x.buf != y.buf);
    udrpc_msgbuf_t foreign = { 0 };
    udrpc__msgbuf_put(&a, &foreign);

    CHECK(udrpc__msgbuf_get(&a, (size_t)1 << 30, &x) != 0);
    printf("test_msgbuf: ok (%zu bytes mapped, %u hugepage regions)\n", a.bytes_mapped,
           a.huge_regions);
    udrpc__msgbuf_alloc_fini(&a);
    return 0;
}
