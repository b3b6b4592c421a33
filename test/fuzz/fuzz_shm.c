/*
 * fuzz_shm.c — what a shm peer writes, as the receiving side reads it:
 * the input is where the reader's head starts (8 bytes) and a ring's
 * bytes, read as
 * shm's rx_burst reads its rings (udrpc__shm_fuzz_rx). Whatever the
 * bytes, every packet the reader yields lies inside the ring (checked
 * there, and by ASan), and a broken ring is reported, never followed.
 * What the packets then hold is fuzz_rx's concern.
 */
#include <stdint.h>
#include <stdlib.h>

#include "shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (udrpc__shm_fuzz_rx(data, size) < -1)
        abort();
    return 0;
}
