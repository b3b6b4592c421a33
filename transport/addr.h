/*
 * addr.h — socket addresses of either family, as the SM socket and the
 * udp transport use them. One canonical form: an IPv4 peer is AF_INET,
 * never a v4-mapped IPv6 address (::ffff:a.b.c.d, which a dual-stack
 * socket reports) — udrpc__addr_canon() turns one back; IPv6 is AF_INET6,
 * with its scope (the zone, an interface index) only where it means
 * something, on link-local addresses (fe80::/10). A socket of the other
 * family sends to an address through udrpc__addr_reach(). Control path only:
 * nothing here runs per packet.
 */
#ifndef UDRPC_TRANSPORT_ADDR_H
#define UDRPC_TRANSPORT_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

union tp_addr {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
};

/* Room for the longest text udrpc__addr_format() writes, NUL included:
 * "[" 45-char address "%" 15-char zone "]:" 5-digit port. (A URI holds 63
 * characters: callers refuse what does not fit.) */
#define TP_ADDR_STRLEN 72

/* sizeof the family's sockaddr (0 for neither family). */
socklen_t udrpc__addr_len(const union tp_addr *a);
uint16_t udrpc__addr_port(const union tp_addr *a);   /* host order */
void udrpc__addr_set_port(union tp_addr *a, uint16_t port);
/* 0.0.0.0 or :: */
bool udrpc__addr_is_any(const union tp_addr *a);
/* fe80::/10 */
bool udrpc__addr_is_link_local(const struct in6_addr *a);
/* A v4-mapped AF_INET6 address becomes AF_INET; the scope of a
 * non-link-local IPv6 address is cleared. */
void udrpc__addr_canon(union tp_addr *a);
/* Family, address, port and (link-local) scope all equal. */
bool udrpc__addr_equal(const union tp_addr *a, const union tp_addr *b);
/* *to as a socket bound at *bound takes it (*out): an IPv4 address on an
 * IPv6 socket becomes v4-mapped. false where that socket cannot reach it:
 * IPv6 from an IPv4 socket, IPv4 from an IPv6 one not bound to :: (not
 * dual-stack, udrpc__addr_socket). */
bool udrpc__addr_reach(const union tp_addr *bound, const union tp_addr *to, union tp_addr *out);
/* "1.2.3.4:5", "[::1]:5", "[fe80::1%eth0]:5" into buf (TP_ADDR_STRLEN). */
void udrpc__addr_format(const union tp_addr *a, char buf[TP_ADDR_STRLEN]);
/* A UDP socket of a's family, close-on-exec (flags OR-ed into the type),
 * and for an IPv6 address dual-stack exactly when it is ::, so that a
 * Nexus or udp bound to [::] serves IPv4 peers too. -errno on failure. */
int udrpc__addr_socket(const union tp_addr *a, int flags);

#endif
