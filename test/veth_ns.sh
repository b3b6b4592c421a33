# veth_ns.sh — sourced by the scripts that run udrpc between two network
# namespaces (test/nft_gso_test.sh, bench/veth_bench.sh).
#   veth_ns_up NAME NET [QUEUES]  makes namespaces ${NAME}_a and ${NAME}_b
#                         (set as $ns_a, $ns_b) joined by a veth pair va/vb
#                         at MTU 1500 (QUEUES receive and send queues each;
#                         default 1), NET.1 on va and NET.2 on vb, removed
#                         at exit.
#   offload_used OUT      checks e2e_rpc's output OUT: its client's GSO and
#                         GRO were on and used (sets $sends, $bufs), else
#                         says why and returns 1.
# Exits 77 (skipped) without root or where namespaces cannot be made.
veth_ns_up() {
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces)"; exit 77; }
    ns_a=${1}_a$$ ns_b=${1}_b$$
    ip netns add "$ns_a" 2>/dev/null || { echo "skipped: cannot create network namespaces"; exit 77; }
    trap 'ip netns del $ns_a 2>/dev/null; ip netns del $ns_b 2>/dev/null' EXIT
    ip netns add "$ns_b" || exit 77
    local q=${3:+numrxqueues $3 numtxqueues $3}
    ip link add va netns "$ns_a" mtu 1500 $q type veth peer name vb netns "$ns_b" mtu 1500 $q ||
        exit 77
    ip -n "$ns_a" addr add "$2.1/24" dev va
    ip -n "$ns_b" addr add "$2.2/24" dev vb
    for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
    ip -n "$ns_a" link set va up
    ip -n "$ns_b" link set vb up
}
offload_used() {
    local line
    line=$(echo "$1" | grep "^client udp offload")
    echo "$line" | grep -q "offload gso+gro:" || { echo "FAIL: GSO or GRO off"; return 1; }
    sends=$(echo "$line" | sed -E 's/.*: ([0-9]+) GSO sends.*/\1/')
    bufs=$(echo "$line" | sed -E 's/.* ([0-9]+) GRO receives.*/\1/')
    [ "$sends" -gt 0 ] && [ "$bufs" -gt 0 ] || { echo "FAIL: no GSO send or no GRO receive"; return 1; }
}
#   veth_ns_routed NAME NET  makes ${NAME}_a, ${NAME}_m and ${NAME}_b ($ns_a,
#                         $ns_m, $ns_b): a (NET.1.1 on va) -- m (NET.1.254 on
#                         ma, NET.2.254 on mb, forwarding) -- b (NET.2.1 on
#                         vb), MTU 1500, each end's default route via m.
veth_ns_routed() {
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces)"; exit 77; }
    ns_a=${1}_a$$ ns_m=${1}_m$$ ns_b=${1}_b$$
    ip netns add "$ns_a" 2>/dev/null || { echo "skipped: cannot create network namespaces"; exit 77; }
    trap 'ip netns del $ns_a 2>/dev/null; ip netns del $ns_m 2>/dev/null; ip netns del $ns_b 2>/dev/null' EXIT
    ip netns add "$ns_m" || exit 77
    ip netns add "$ns_b" || exit 77
    ip link add va netns "$ns_a" mtu 1500 type veth peer name ma netns "$ns_m" mtu 1500 || exit 77
    ip link add vb netns "$ns_b" mtu 1500 type veth peer name mb netns "$ns_m" mtu 1500 || exit 77
    ip -n "$ns_a" addr add "$2.1.1/24" dev va
    ip -n "$ns_m" addr add "$2.1.254/24" dev ma
    ip -n "$ns_m" addr add "$2.2.254/24" dev mb
    ip -n "$ns_b" addr add "$2.2.1/24" dev vb
    for ns in "$ns_a" "$ns_m" "$ns_b"; do ip -n "$ns" link set lo up; done
    ip -n "$ns_a" link set va up
    ip -n "$ns_m" link set dev ma up
    ip -n "$ns_m" link set dev mb up
    ip -n "$ns_b" link set vb up
    ip -n "$ns_a" route add default via "$2.1.254"
    ip -n "$ns_b" route add default via "$2.2.254"
    ip netns exec "$ns_m" sysctl -qw net.ipv4.ip_forward=1
}
#   veth_ns_both NAME NET  makes one namespace ${NAME}$$ ($ns) holding both
#                         ends of a veth pair, NET.1 on va and NET.2 on vb
#                         (MTU 1500): two endpoints of one process, each on
#                         its own interface, talk across it (xdp's matrix).
veth_ns_both() {
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces)"; exit 77; }
    ns=${1}$$
    ip netns add "$ns" 2>/dev/null || { echo "skipped: cannot create network namespaces"; exit 77; }
    trap 'ip netns del $ns 2>/dev/null' EXIT
    ip link add va netns "$ns" mtu 1500 type veth peer name vb netns "$ns" mtu 1500 || exit 77
    ip -n "$ns" addr add "$2.1/24" dev va
    ip -n "$ns" addr add "$2.2/24" dev vb
    for d in lo va vb; do ip -n "$ns" link set dev $d up; done
}
