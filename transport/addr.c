/* addr.c — socket addresses of either family (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

socklen_t udrpc__addr_len(const union tp_addr *a)
{
    return a->sa.sa_family == AF_INET    ? sizeof(struct sockaddr_in)
           : a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : 0;
}

uint16_t udrpc__addr_port(const union tp_addr *a)
{
    return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port);
}

void udrpc__addr_set_port(union tp_addr *a, uint16_t port)
{
    if (a->sa.sa_family == AF_INET6)
        a->v6.sin6_port = htons(port);
    else
        a->v4.sin_port = htons(port);
}

bool udrpc__addr_is_any(const union tp_addr *a)
{
    return a->sa.sa_family == AF_INET6 ? IN6_IS_ADDR_UNSPECIFIED(&a->v6.sin6_addr)
                                       : a->v4.sin_addr.s_addr == htonl(INADDR_ANY);
}

bool udrpc__addr_is_link_local(const struct in6_addr *a)
{
    return IN6_IS_ADDR_LINKLOCAL(a);
}

void udrpc__addr_canon(union tp_addr *a)
{
    if (a->sa.sa_family != AF_INET6)
        return;
    if (IN6_IS_ADDR_V4MAPPED(&a->v6.sin6_addr)) {
        struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = a->v6.sin6_port };
        memcpy(&v4.sin_addr, &a->v6.sin6_addr.s6_addr[12], 4);
        memset(a, 0, sizeof(*a));
        a->v4 = v4;
        return;
    }
    a->v6.sin6_flowinfo = 0;
    if (!udrpc__addr_is_link_local(&a->v6.sin6_addr))
        a->v6.sin6_scope_id = 0;
}

bool udrpc__addr_equal(const union tp_addr *a, const union tp_addr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr && a->v4.sin_port == b->v4.sin_port;
    return a->sa.sa_family == AF_INET6 && a->v6.sin6_port == b->v6.sin6_port &&
           !memcmp(&a->v6.sin6_addr, &b->v6.sin6_addr, sizeof(a->v6.sin6_addr)) &&
           a->v6.sin6_scope_id == b->v6.sin6_scope_id;
}

bool udrpc__addr_reach(const union tp_addr *bound, const union tp_addr *to, union tp_addr *out)
{
    if (to->sa.sa_family == bound->sa.sa_family) {
        *out = *to;
        return true;
    }
    if (to->sa.sa_family != AF_INET || bound->sa.sa_family != AF_INET6 ||
        !udrpc__addr_is_any(bound))
        return false;
    memset(out, 0, sizeof(*out));
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = to->v4.sin_port;
    out->v6.sin6_addr.s6_addr[10] = out->v6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&out->v6.sin6_addr.s6_addr[12], &to->v4.sin_addr, 4);
    return true;
}

void udrpc__addr_format(const union tp_addr *a, char buf[TP_ADDR_STRLEN])
{
    char host[INET6_ADDRSTRLEN] = "?", zone[IF_NAMESIZE + 1] = "";
    if (a->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->v4.sin_addr, host, sizeof(host));
        snprintf(buf, TP_ADDR_STRLEN, "%s:%u", host, udrpc__addr_port(a));
        return;
    }
    inet_ntop(AF_INET6, &a->v6.sin6_addr, host, sizeof(host));
    if (a->v6.sin6_scope_id) {
        char name[IF_NAMESIZE];
        if (if_indextoname(a->v6.sin6_scope_id, name))
            snprintf(zone, sizeof(zone), "%%%s", name);
        else
            snprintf(zone, sizeof(zone), "%%%u", a->v6.sin6_scope_id);
    }
    snprintf(buf, TP_ADDR_STRLEN, "[%s%s]:%u", host, zone, udrpc__addr_port(a));
}

int udrpc__addr_socket(const union tp_addr *a, int flags)
{
    int fd = socket(a->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0)
        return -errno;
    if (a->sa.sa_family == AF_INET6) {
        int v6only = !udrpc__addr_is_any(a);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) {
            int err = -errno;
            close(fd);
            return err;
        }
    }
    return fd;
}
