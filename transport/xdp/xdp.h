/* xdp.h — the AF_XDP transport (xdp.c, xdp_ctl.c): its registry row's
 * probe and constructor, and what its tests reach of the control path. */
#ifndef UDRPC_TRANSPORT_XDP_H
#define UDRPC_TRANSPORT_XDP_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

/* "auto" ranks xdp above udp only where it would run zero-copy: an
 * interface is named (UDRPC_XDP_IF or cfg->device), the process may load
 * XDP programs, and the kernel says the interface's driver does AF_XDP
 * zero-copy. */
bool udrpc__xdp_auto_probe(const udrpc_config_t *cfg);
int udrpc__xdp_create(const udrpc_config_t *cfg, const struct tp_params *p,
                      struct transport **out);

/* Tests: attaches udrpc's XDP program to ifname the old way (netlink, no
 * link: it stays when the process ends), as a crashed older process
 * would have left it; SKB mode. 0 or -errno. */
int udrpc__xdp_plant_stale(const char *ifname);
/* Tests: the id of the XDP program on ifname (any mode), 0 if none, or
 * -errno. */
int udrpc__xdp_attached_id(const char *ifname);

#endif
