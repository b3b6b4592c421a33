/* shm.h — the shared-memory transport (shm.c): its registry row's
 * constructor, and a hook for the ring fuzzer. */
#ifndef UDRPC_TRANSPORT_SHM_H
#define UDRPC_TRANSPORT_SHM_H

#include "transport.h"

int udrpc__shm_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out);
/* Reads a ring holding data (where the reader's head starts, then the
 * ring's bytes) as rx_burst does, checking that every packet it yields lies inside the
 * ring: how many it read, or -1 where it found the ring broken. */
int udrpc__shm_fuzz_rx(const uint8_t *data, size_t size);

#endif
