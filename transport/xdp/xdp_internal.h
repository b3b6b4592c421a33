/* xdp_internal.h — what xdp.c (the datapath, set-up) and xdp_ctl.c (the
 * XDP program, privileges, interfaces, neighbours) share. Control path
 * only: nothing here runs per packet. */
#ifndef UDRPC_TRANSPORT_XDP_INTERNAL_H
#define UDRPC_TRANSPORT_XDP_INTERNAL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xdp.h"

#define XDP_PROG_NAME "udrpc_xdp"

/* An interface as the transport uses it. */
struct xdp_if {
    char name[IF_NAMESIZE];
    int ifindex;
    uint8_t mac[6];
    uint32_t ip_be;             /* its IPv4 address that we advertise */
    uint32_t mask_be;           /* and that address's netmask */
    unsigned mtu;               /* the interface's (IP packet) MTU */
    bool is_veth;               /* driver "veth": SKB mode measured faster */
    unsigned rx_queues;         /* receive queues in use (0: unknown) */
};

/* The program, its XSK map and the link that holds it on the interface
 * (-1 where absent). */
struct xdp_prog {
    int prog_fd, map_fd, link_fd;
    bool skb_mode;
};

/* The interfaces an endpoint may take: cfg->device, else UDRPC_XDP_IF,
 * either a name or a comma-separated list of them ("eth1,eth2"); NULL or
 * "" where none is named (the Nexus's address decides). */
const char *udrpc__xdp_if_names(const udrpc_config_t *cfg);
/* Takes the first interface of names (a list as above) that no endpoint
 * of this process holds, into name (IF_NAMESIZE): 0, or -EBUSY (why) where
 * every one is held. udrpc__xdp_if_release gives it back. */
int udrpc__xdp_if_claim(const char *names, char *name, char *why, size_t why_len);
void udrpc__xdp_if_release(const char *name);
/* Whether ip_be is an address of this namespace's interfaces. */
bool udrpc__xdp_ip_is_local(uint32_t ip_be);

/* 0, or -EPERM with why saying which capabilities are missing. */
int udrpc__xdp_caps_check(char *why, size_t why_len);
/* Fills *ifc from its name (its address ip_be if it holds it, else its
 * first IPv4 address), or (name NULL or empty) from the interface that
 * holds IPv4 address ip_be. 0 or -errno (why says what). */
int udrpc__xdp_if_find(const char *name, uint32_t ip_be, struct xdp_if *ifc, char *why,
                       size_t why_len);
/* Loads the program that redirects UDP to port_be on queue to the XSK map
 * and passes everything else, and attaches it to the interface through a
 * BPF link (so that it goes when the process does, even by kill -9): in
 * SKB mode, or native mode (skb_mode false). A udrpc program the old way
 * (netlink) is stale: it is replaced, and *notice says so. Any other
 * program there: -EBUSY. 0 or -errno (why says what). */
int udrpc__xdp_prog_attach(const struct xdp_if *ifc, uint16_t port_be, uint32_t queue,
                           bool skb_mode, struct xdp_prog *xp, const char **notice, char *why,
                           size_t why_len);
void udrpc__xdp_prog_detach(struct xdp_prog *xp);
/* The Ethernet address to send to peer_ip_be through ifc: the kernel's
 * neighbour entry for the next hop (the route's gateway, or the peer),
 * resolved with a datagram if missing; else adv_mac, the peer's own, where
 * the peer is on ifc's subnet. 0 or -EHOSTUNREACH. */
int udrpc__xdp_next_hop_mac(const struct xdp_if *ifc, uint32_t peer_ip_be,
                            const uint8_t adv_mac[6], uint8_t mac[6]);
/* Whether the kernel says ifc's driver does AF_XDP zero-copy (netdev
 * generic netlink, Linux 6.3 and later); false where it cannot tell. */
bool udrpc__xdp_if_zerocopy(int ifindex);

#endif
