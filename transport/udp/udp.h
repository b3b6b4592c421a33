/* udp.h — the kernel UDP transport (udp.c): its registry row's constructor. */
#ifndef UDRPC_TRANSPORT_UDP_H
#define UDRPC_TRANSPORT_UDP_H

#include "transport.h"

int udrpc__udp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out);
/* The socket of a udp transport, -1 for another kind (tests: they send
 * hand-made GSO buffers from an endpoint's own address). */
int udrpc__udp_fd(const struct transport *tp);

#endif
