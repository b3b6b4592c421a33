/*
 * xdp_ctl.c — the AF_XDP transport's control path: the XDP program (eBPF
 * assembled here, so nothing is compiled for the BPF target), its
 * attachment and the recovery of a stale one, privileges, interfaces,
 * next-hop MAC addresses and the zero-copy probe. Nothing here runs per
 * packet.
 *
 * The program, per received frame: Ethernet + IPv4 without options + UDP
 * to our port, arriving on our queue -> bpf_redirect_map(xsks, queue),
 * which falls back to XDP_PASS where no socket is in the map; anything
 * else -> XDP_PASS, so ARP, session management and other programs' UDP
 * still reach the kernel. It is attached through a BPF link: the kernel
 * detaches it when the last descriptor of the link closes, so a killed
 * process leaves nothing behind. A udrpc program attached the old way
 * (netlink, no link) outlives its process: such a one is stale, and is
 * replaced with a notice. A program that is not udrpc's, or one held by a
 * live link (another endpoint on the interface), is never touched: -EBUSY.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp_internal.h"

/* ------------------------------------------------------------ privileges */

/* Effective capabilities from /proc/self/status (no libcap). */
static uint64_t cap_effective(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long caps = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(f);
    return caps;
}

#define CAP_BIT(n) (1ull << (n))
enum { CAP_NET_ADMIN_ = 12, CAP_NET_RAW_ = 13, CAP_SYS_ADMIN_ = 21, CAP_BPF_ = 39 };

int udrpc__xdp_caps_check(char *why, size_t why_len)
{
    const uint64_t c = cap_effective();
    const bool bpf = (c & CAP_BIT(CAP_BPF_)) || (c & CAP_BIT(CAP_SYS_ADMIN_));
    const bool admin = c & CAP_BIT(CAP_NET_ADMIN_);
    const bool raw = c & CAP_BIT(CAP_NET_RAW_);
    if (bpf && admin && raw)
        return 0;
    snprintf(why, why_len, "xdp: needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (or root); "
                           "missing:%s%s%s",
             admin ? "" : " CAP_NET_ADMIN", raw ? "" : " CAP_NET_RAW", bpf ? "" : " CAP_BPF");
    return -EPERM;
}

/* ------------------------------------------------------------ interfaces */

const char *udrpc__xdp_if_names(const udrpc_config_t *cfg)
{
    if (cfg->device && *cfg->device)
        return cfg->device;
    return getenv("UDRPC_XDP_IF");
}

/* The interfaces this process's xdp endpoints hold (one endpoint per
 * interface: its queue 0, its program). */
#define XDP_MAX_HELD 64
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static char held_ifs[XDP_MAX_HELD][IF_NAMESIZE];

static bool is_held(const char *name)
{
    for (unsigned i = 0; i < XDP_MAX_HELD; i++)
        if (held_ifs[i][0] && strcmp(held_ifs[i], name) == 0)
            return true;
    return false;
}

int udrpc__xdp_if_claim(const char *names, char *name, char *why, size_t why_len)
{
    int ret = -EBUSY;
    pthread_mutex_lock(&held_mu);
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < IF_NAMESIZE) {
            memcpy(name, p, len);
            name[len] = '\0';
            if (!is_held(name)) {
                for (unsigned i = 0; i < XDP_MAX_HELD; i++)
                    if (!held_ifs[i][0]) {
                        memcpy(held_ifs[i], name, len + 1);
                        ret = 0;
                        break;
                    }
                break;
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    pthread_mutex_unlock(&held_mu);
    if (ret)
        snprintf(why, why_len, "xdp: every interface of \"%s\" already has an endpoint of "
                               "this process (one endpoint per interface)", names);
    return ret;
}

void udrpc__xdp_if_release(const char *name)
{
    pthread_mutex_lock(&held_mu);
    for (unsigned i = 0; i < XDP_MAX_HELD; i++)
        if (held_ifs[i][0] && strcmp(held_ifs[i], name) == 0) {
            held_ifs[i][0] = '\0';
            break;
        }
    pthread_mutex_unlock(&held_mu);
}

bool udrpc__xdp_ip_is_local(uint32_t ip_be)
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return false;
    bool local = false;
    for (struct ifaddrs *i = ifs; i && !local; i = i->ifa_next)
        local = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr == ip_be;
    freeifaddrs(ifs);
    return local;
}

static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int ret = ioctl(fd, req, ifr) == 0 ? 0 : -errno;
    close(fd);
    return ret;
}

int udrpc__xdp_if_find(const char *name, uint32_t ip_be, struct xdp_if *ifc, char *why,
                       size_t why_len)
{
    memset(ifc, 0, sizeof(*ifc));
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return -errno;
    const bool by_name = name && *name;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask)
            continue;
        const uint32_t a = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr;
        if (by_name ? strcmp(i->ifa_name, name) != 0 || (ifc->ip_be && a != ip_be)
                    : a != ip_be)
            continue; /* by name: its first address, unless it holds ip_be */
        snprintf(ifc->name, sizeof(ifc->name), "%s", i->ifa_name);
        ifc->ip_be = a;
        ifc->mask_be = ((const struct sockaddr_in *)(const void *)i->ifa_netmask)->sin_addr.s_addr;
        if (a == ip_be)
            break;
    }
    freeifaddrs(ifs);
    if (!ifc->ip_be) {
        struct in_addr ia = { ip_be };
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &ia, ip, sizeof(ip));
        if (by_name)
            snprintf(why, why_len, "xdp: interface %s has no IPv4 address", name);
        else
            snprintf(why, why_len, "xdp: no interface holds %s: bind the Nexus to an "
                                   "interface's IPv4 address, or name one (UDRPC_XDP_IF)", ip);
        return -ENODEV;
    }
    ifc->ifindex = (int)if_nametoindex(ifc->name);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifc->name);
    int ret;
    if (ifc->ifindex <= 0 || (ret = if_ioctl(SIOCGIFHWADDR, &ifr)) != 0 ||
        ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
        snprintf(why, why_len, "xdp: %s is not an Ethernet interface", ifc->name);
        return -ENODEV;
    }
    memcpy(ifc->mac, ifr.ifr_hwaddr.sa_data, 6);
    if ((ret = if_ioctl(SIOCGIFMTU, &ifr)) != 0)
        return ret;
    ifc->mtu = (unsigned)ifr.ifr_mtu;
    struct ethtool_drvinfo drv = { .cmd = ETHTOOL_GDRVINFO };
    ifr.ifr_data = (void *)&drv;
    if (if_ioctl(SIOCETHTOOL, &ifr) == 0)
        ifc->is_veth = strcmp(drv.driver, "veth") == 0;
    struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
    ifr.ifr_data = (void *)&ch;
    ifc->rx_queues = if_ioctl(SIOCETHTOOL, &ifr) == 0 ? ch.rx_count + ch.combined_count : 0;
    return 0;
}

/* ----------------------------------------------------------- the program */

/* eBPF instructions (the kernel's own macros live in its tools tree, not
 * in the UAPI headers). */
#define I_MOV64_REG(d, s) ((struct bpf_insn){ BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0 })
#define I_MOV64_IMM(d, imm) ((struct bpf_insn){ BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, imm })
#define I_ADD64_IMM(d, imm) ((struct bpf_insn){ BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, imm })
#define I_LDX(size, d, s, off) ((struct bpf_insn){ BPF_LDX | (size) | BPF_MEM, d, s, off, 0 })
#define I_JGT_REG(d, s, off) ((struct bpf_insn){ BPF_JMP | BPF_JGT | BPF_X, d, s, off, 0 })
#define I_JNE_IMM(d, imm, off) ((struct bpf_insn){ BPF_JMP | BPF_JNE | BPF_K, d, 0, off, imm })
#define I_LD_MAP_FD(d, fd)                                                                  \
    ((struct bpf_insn){ BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd }),          \
        ((struct bpf_insn){ 0, 0, 0, 0, 0 })
#define I_CALL(fn) ((struct bpf_insn){ BPF_JMP | BPF_CALL, 0, 0, 0, fn })
#define I_EXIT() ((struct bpf_insn){ BPF_JMP | BPF_EXIT, 0, 0, 0, 0 })

/* Loads the program for port_be (network order) and queue over a new XSK
 * map; *map_fd and the program's fd, or -errno. */
static int prog_load(uint16_t port_be, uint32_t queue, int *map_fd)
{
    LIBBPF_OPTS(bpf_map_create_opts, mo);
    int mfd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "udrpc_xsks", 4, 4, queue + 1, &mo);
    if (mfd < 0)
        return mfd;
    /* Loads of packet bytes are little-endian here: the ethertype 0x0800
     * reads 0x0008, the port as its bytes swapped. */
    const int32_t port_le = (int32_t)port_be;
    const struct bpf_insn code[] = {
        I_MOV64_REG(BPF_REG_6, BPF_REG_1),            /*  0: r6 = ctx */
        I_LDX(BPF_W, BPF_REG_2, BPF_REG_6, 0),        /*  1: data */
        I_LDX(BPF_W, BPF_REG_3, BPF_REG_6, 4),        /*  2: data_end */
        I_MOV64_REG(BPF_REG_4, BPF_REG_2),            /*  3 */
        I_ADD64_IMM(BPF_REG_4, 42),                   /*  4: Eth + IPv4 + UDP */
        I_JGT_REG(BPF_REG_4, BPF_REG_3, 15),          /*  5: shorter: pass */
        I_LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12),       /*  6: ethertype */
        I_JNE_IMM(BPF_REG_5, 0x0008, 13),             /*  7 */
        I_LDX(BPF_B, BPF_REG_5, BPF_REG_2, 14),       /*  8: version, IHL */
        I_JNE_IMM(BPF_REG_5, 0x45, 11),               /*  9 */
        I_LDX(BPF_B, BPF_REG_5, BPF_REG_2, 23),       /* 10: protocol */
        I_JNE_IMM(BPF_REG_5, IPPROTO_UDP, 9),         /* 11 */
        I_LDX(BPF_H, BPF_REG_5, BPF_REG_2, 36),       /* 12: UDP destination port */
        I_JNE_IMM(BPF_REG_5, port_le, 7),             /* 13 */
        I_LDX(BPF_W, BPF_REG_2, BPF_REG_6, 16),       /* 14: rx_queue_index */
        I_JNE_IMM(BPF_REG_2, (int32_t)queue, 5),      /* 15 */
        I_LD_MAP_FD(BPF_REG_1, mfd),                  /* 16-17: key r2, the queue */
        I_MOV64_IMM(BPF_REG_3, XDP_PASS),             /* 18: no socket there: pass */
        I_CALL(BPF_FUNC_redirect_map),                /* 19 */
        I_EXIT(),                                     /* 20 */
        I_MOV64_IMM(BPF_REG_0, XDP_PASS),             /* 21: pass */
        I_EXIT(),                                     /* 22 */
    };
    LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_XDP);
    int pfd = bpf_prog_load(BPF_PROG_TYPE_XDP, XDP_PROG_NAME, "GPL", code,
                            sizeof(code) / sizeof(code[0]), &po);
    if (pfd < 0) {
        close(mfd);
        return pfd;
    }
    *map_fd = mfd;
    return pfd;
}

/* The XDP program ids on ifindex, in any mode; 0 for none. */
static int attached_ids(int ifindex, uint32_t ids[3])
{
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    int ret = bpf_xdp_query(ifindex, 0, &q);
    if (ret)
        return ret;
    ids[0] = q.skb_prog_id;
    ids[1] = q.drv_prog_id;
    ids[2] = q.hw_prog_id;
    return 0;
}

/* Whether program id is udrpc's (by its name). */
static bool is_udrpc_prog(uint32_t id)
{
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return false;
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                strncmp(info.name, XDP_PROG_NAME, sizeof(info.name)) == 0;
    close(fd);
    return ours;
}

/* Whether a BPF link holds program id on ifindex: a live process's. */
static bool held_by_link(int ifindex, uint32_t id)
{
    uint32_t link_id = 0;
    while (bpf_link_get_next_id(link_id, &link_id) == 0) {
        int fd = bpf_link_get_fd_by_id(link_id);
        if (fd < 0)
            continue;
        struct bpf_link_info info;
        uint32_t len = sizeof(info);
        memset(&info, 0, sizeof(info));
        bool held = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                    info.type == BPF_LINK_TYPE_XDP && info.xdp.ifindex == (uint32_t)ifindex &&
                    info.prog_id == id;
        close(fd);
        if (held)
            return true;
    }
    return false;
}

/* Detaches a stale udrpc program (attached the old way, so that the
 * kernel kept it after its process) from ifc: 1 if one was, 0 if none
 * was there, -EBUSY (why) where a program stays: a live endpoint's, held
 * by its link, or not udrpc's. */
static int replace_stale(const struct xdp_if *ifc, char *why, size_t why_len)
{
    static const uint32_t mode_flags[3] = { XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE,
                                            XDP_FLAGS_HW_MODE };
    uint32_t ids[3];
    if (attached_ids(ifc->ifindex, ids) != 0)
        return 0;
    int replaced = 0;
    for (unsigned m = 0; m < 3; m++) {
        if (!ids[m])
            continue;
        if (!is_udrpc_prog(ids[m])) {
            snprintf(why, why_len, "xdp: %s already carries another XDP program (id %u); "
                                   "udrpc leaves it in place", ifc->name, ids[m]);
            return -EBUSY;
        }
        if (held_by_link(ifc->ifindex, ids[m]) ||
            bpf_xdp_detach(ifc->ifindex, mode_flags[m], NULL) != 0) {
            snprintf(why, why_len, "xdp: %s already carries a live udrpc endpoint's program "
                                   "(id %u): one endpoint per interface and queue", ifc->name,
                     ids[m]);
            return -EBUSY;
        }
        replaced = 1;
    }
    return replaced;
}

int udrpc__xdp_prog_attach(const struct xdp_if *ifc, uint16_t port_be, uint32_t queue,
                           bool skb_mode, struct xdp_prog *xp, const char **notice, char *why,
                           size_t why_len)
{
    xp->prog_fd = xp->map_fd = xp->link_fd = -1;
    xp->skb_mode = skb_mode;
    int replaced = replace_stale(ifc, why, why_len);
    if (replaced < 0)
        return replaced;
    if (replaced)
        *notice = "xdp: replaced a stale udrpc XDP program (left by a process that ended "
                  "without detaching it)";
    int fd = prog_load(port_be, queue, &xp->map_fd);
    if (fd < 0) {
        snprintf(why, why_len, "xdp: the kernel refused udrpc's XDP program (%s)",
                 strerror(-fd));
        return fd;
    }
    xp->prog_fd = fd;
    LIBBPF_OPTS(bpf_link_create_opts, lo,
                .flags = skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
    xp->link_fd = bpf_link_create(fd, ifc->ifindex, BPF_XDP, &lo);
    if (xp->link_fd < 0) {
        int ret = xp->link_fd;
        snprintf(why, why_len, "xdp: cannot attach the XDP program to %s in %s mode (%s)",
                 ifc->name, skb_mode ? "SKB" : "native", strerror(-ret));
        udrpc__xdp_prog_detach(xp);
        return ret;
    }
    return 0;
}

void udrpc__xdp_prog_detach(struct xdp_prog *xp)
{
    if (xp->link_fd >= 0)
        close(xp->link_fd); /* the last reference: the kernel detaches it */
    if (xp->prog_fd >= 0)
        close(xp->prog_fd);
    if (xp->map_fd >= 0)
        close(xp->map_fd);
    xp->prog_fd = xp->map_fd = xp->link_fd = -1;
}

int udrpc__xdp_plant_stale(const char *ifname)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (ifindex <= 0)
        return -ENODEV;
    int map_fd;
    int fd = prog_load(htons(9), 0, &map_fd);
    if (fd < 0)
        return fd;
    int ret = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE, NULL);
    close(fd);
    close(map_fd);
    return ret;
}

int udrpc__xdp_attached_id(const char *ifname)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (ifindex <= 0)
        return -ENODEV;
    uint32_t ids[3];
    int ret = attached_ids(ifindex, ids);
    if (ret)
        return ret;
    return (int)(ids[0] ? ids[0] : ids[1] ? ids[1] : ids[2]);
}

/* ------------------------------------------------------------ neighbours */

/* The next hop towards ip_be from /proc/net/route (this namespace's main
 * table): the gateway of the longest matching route through ifc, or the
 * address itself where that route has none. */
static uint32_t next_hop(const struct xdp_if *ifc, uint32_t ip_be)
{
    FILE *f = fopen("/proc/net/route", "re");
    if (!f)
        return ip_be;
    char line[256], dev[IF_NAMESIZE + 1];
    unsigned dst, gw, flags, mask;
    int best_bits = -1;
    uint32_t hop = ip_be;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%16s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5 ||
            strcmp(dev, ifc->name) != 0 || (ip_be & mask) != dst)
            continue;
        int bits = __builtin_popcount(mask);
        if (bits > best_bits) {
            best_bits = bits;
            hop = (flags & 0x2 /* RTF_GATEWAY */) ? gw : ip_be;
        }
    }
    fclose(f);
    return hop;
}

static bool arp_lookup(const struct xdp_if *ifc, uint32_t ip_be, uint8_t mac[6])
{
    struct arpreq r;
    memset(&r, 0, sizeof(r));
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&r.arp_pa;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = ip_be;
    snprintf(r.arp_dev, sizeof(r.arp_dev), "%s", ifc->name);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = ioctl(fd, SIOCGARP, &r) == 0 && (r.arp_flags & ATF_COM);
    close(fd);
    if (ok)
        memcpy(mac, r.arp_ha.sa_data, 6);
    return ok;
}

int udrpc__xdp_next_hop_mac(const struct xdp_if *ifc, uint32_t peer_ip_be,
                            const uint8_t adv_mac[6], uint8_t mac[6])
{
    /* A peer on this host's other interface (tests: both ends of a veth
     * in one namespace) has no neighbour entry: what it advertised. */
    if ((peer_ip_be & ifc->mask_be) == (ifc->ip_be & ifc->mask_be) &&
        udrpc__xdp_ip_is_local(peer_ip_be)) {
        memcpy(mac, adv_mac, 6);
        return 0;
    }
    const uint32_t hop = next_hop(ifc, peer_ip_be);
    for (unsigned attempt = 0; attempt < 50; attempt++) { /* up to 100 ms */
        if (arp_lookup(ifc, hop, mac))
            return 0;
        if (attempt == 0) { /* make the kernel resolve it: a datagram to discard */
            int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9),
                                          .sin_addr.s_addr = peer_ip_be };
                (void)sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
                close(fd);
            }
        }
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    if (hop == peer_ip_be && (peer_ip_be & ifc->mask_be) == (ifc->ip_be & ifc->mask_be)) {
        memcpy(mac, adv_mac, 6); /* on our subnet: what it advertised */
        return 0;
    }
    return -EHOSTUNREACH;
}

/* -------------------------------------------------------- zero-copy probe */

/* The netdev generic netlink family (Linux 6.3; not in older UAPI
 * headers): its "dev-get" command and the attributes used here. */
#define NETDEV_CMD_DEV_GET_ 1
#define NETDEV_A_DEV_IFINDEX_ 1
#define NETDEV_A_DEV_XDP_FEATURES_ 3
#define NETDEV_XDP_ACT_XSK_ZEROCOPY_ 8

struct nl_req {
    struct nlmsghdr n;
    struct genlmsghdr g;
    char attrs[64];
};

static void nl_put_attr(struct nl_req *r, uint16_t type, const void *data, uint16_t len)
{
    struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->n.nlmsg_len));
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy((char *)a + NLA_HDRLEN, data, len);
    r->n.nlmsg_len = NLMSG_ALIGN(r->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Sends r and finds attribute want in the genl answer: its first 4 bytes
 * in *val. */
static bool nl_ask(int fd, struct nl_req *r, uint16_t want, uint32_t *val)
{
    if (send(fd, r, r->n.nlmsg_len, 0) < 0)
        return false;
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return false;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
         h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE)
            return false;
        char *p = (char *)NLMSG_DATA(h) + GENL_HDRLEN;
        char *end = (char *)h + h->nlmsg_len;
        while (p + NLA_HDRLEN <= end) {
            struct nlattr *a = (struct nlattr *)p;
            if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
                break;
            if ((a->nla_type & NLA_TYPE_MASK) == want && a->nla_len >= NLA_HDRLEN + 2) {
                *val = 0;
                memcpy(val, p + NLA_HDRLEN, a->nla_len - NLA_HDRLEN >= 4 ? 4 : 2);
                return true;
            }
            p += NLA_ALIGN(a->nla_len);
        }
    }
    return false;
}

bool udrpc__xdp_if_zerocopy(int ifindex)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
    if (fd < 0)
        return false;
    struct timeval tv = { 0, 200000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct nl_req r;
    memset(&r, 0, sizeof(r));
    r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
    r.n.nlmsg_type = GENL_ID_CTRL;
    r.n.nlmsg_flags = NLM_F_REQUEST;
    r.g.cmd = CTRL_CMD_GETFAMILY;
    r.g.version = 1;
    nl_put_attr(&r, CTRL_ATTR_FAMILY_NAME, "netdev", 7);
    uint32_t family = 0, features = 0;
    bool ok = nl_ask(fd, &r, CTRL_ATTR_FAMILY_ID, &family);
    if (ok) {
        memset(&r, 0, sizeof(r));
        r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
        r.n.nlmsg_type = (uint16_t)family;
        r.n.nlmsg_flags = NLM_F_REQUEST;
        r.g.cmd = NETDEV_CMD_DEV_GET_;
        r.g.version = 1;
        uint32_t idx = (uint32_t)ifindex;
        nl_put_attr(&r, NETDEV_A_DEV_IFINDEX_, &idx, 4);
        ok = nl_ask(fd, &r, NETDEV_A_DEV_XDP_FEATURES_, &features);
    }
    close(fd);
    return ok && (features & NETDEV_XDP_ACT_XSK_ZEROCOPY_);
}
