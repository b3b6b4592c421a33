/* udp.h — the kernel UDP transport (udp.c): its registry row's constructor. */
#ifndef UDRPC_TRANSPORT_UDP_H
#define UDRPC_TRANSPORT_UDP_H

#include "transport.h"

int udrpc__udp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out);

#endif
