#!/usr/bin/env bash
# xdp-smoke.sh — the xdp transport's first run on a NIC that does AF_XDP
# zero-copy (Intel E810/i40e/ixgbe, ConnectX-5 or newer in Ethernet mode,
# ...). No machine of this project has one: xdp is verified in copy mode
# on veth only. For a user with two such ports cabled to each other (or
# two ports of one NIC looped):
#
#   ./build.sh build && sudo test/hw/xdp-smoke.sh IF_A IF_B [BUILD_DIR]
#
# The script moves IF_A and IF_B into two network namespaces of its own
# (10.79.9.1/24 and 10.79.9.2/24), and back out at exit. Steps, each must
# pass:
#   1. connect and 1,000 RPCs, and the client must report native mode and
#      zero-copy (else the driver or kernel refused them: see the log),
#      and whether in-place sends are on (they need the driver to take
#      multi-buffer packets in zero-copy mode, and Linux 6.6);
#   2. 1,000,000 RPCs of 0 B .. one packet, every byte checked, each
#      continuation and handler exactly once;
#   3. 2,000 multi-packet RPCs up to 1 MiB, with in-place sends where they
#      are on (they must then be counted), then with them off;
#   4. the benchmark (rpc_bench, 32 B, depths 1, 8, 64) over xdp, then over
#      udp on the same ports, JSON into BUILD_DIR/xdp-smoke/;
#   5. 4 KiB, 64 KiB and 1 MiB RPCs over xdp with in-place sends, then
#      without (UDRPC_XDP_IN_PLACE=0): which is faster on this NIC.
# Exit 0: all passed; 77: no such interfaces here (or not root); else the
# failing step's. Please report the output with the NIC, driver and
# kernel (ethtool -i IF_A; uname -r).
set -u
if_a=${1:-} if_b=${2:-}
build=${3:-build}
[ "$(id -u)" = 0 ] || { echo "xdp-smoke: needs root"; exit 77; }
[ -n "$if_a" ] && [ -n "$if_b" ] && ip link show "$if_a" >/dev/null 2>&1 &&
    ip link show "$if_b" >/dev/null 2>&1 ||
    { echo "xdp-smoke: give two cabled interfaces (IF_A IF_B); none here"; exit 77; }
e2e=$(readlink -f "$build/test/e2e_rpc")
bench=$(readlink -f "$build/bench/rpc_bench")
out=$build/xdp-smoke
mkdir -p "$out"
ns_a=udrpc_xs_a$$ ns_b=udrpc_xs_b$$
ip netns add $ns_a && ip netns add $ns_b || exit 1
trap 'ip -n $ns_a link set "$if_a" netns 1; ip -n $ns_b link set "$if_b" netns 1;
      ip netns del $ns_a; ip netns del $ns_b' EXIT
ip link set "$if_a" netns $ns_a && ip link set "$if_b" netns $ns_b || exit 1
ip -n $ns_a addr add 10.79.9.1/24 dev "$if_a" && ip -n $ns_a link set dev "$if_a" up
ip -n $ns_b addr add 10.79.9.2/24 dev "$if_b" && ip -n $ns_b link set dev "$if_b" up
sleep 2 # link up
export UDRPC_TRANSPORT=xdp
pair() { # port, e2e_rpc client arguments...
    local port=$1 server rc
    shift
    ip netns exec $ns_a "$e2e" --transport xdp --mode server --uri 10.79.9.1:$port \
        --timeout-s 600 & server=$!
    sleep 0.5
    ip netns exec $ns_b "$e2e" --transport xdp --mode client --server 10.79.9.1:$port \
        --uri 10.79.9.2:0 --connect-timeout-ms 5000 --timeout-s 500 "$@"
    rc=$?
    kill $server; wait $server 2>/dev/null
    return $rc
}
echo "== 1: connect, 1,000 RPCs, native zero-copy"
o=$(pair 31901 --count 1000) || { echo "$o"; exit 1; }
echo "$o"
echo "$o" | grep -q "client xdp mode native, zerocopy" ||
    { echo "xdp-smoke: not native zero-copy (see above)"; exit 1; }
in_place=off
echo "$o" | grep -q "in place on" && in_place=on
echo "in-place sends: $in_place"
echo "== 2: 1,000,000 RPCs of 0 B .. one packet"
pair 31902 --count 1000000 --min-size 0 --max-size pkt || exit 2
echo "== 3: 2,000 RPCs of 0 B .. 1 MiB, in-place sends $in_place, then off"
o=$(pair 31903 --count 2000 --min-size 0 --max-size 1048576 --size-dist log) ||
    { echo "$o"; exit 3; }
echo "$o"
if [ $in_place = on ]; then
    n=$(echo "$o" | sed -nE 's/^client xdp mode.* ([0-9]+) in-place sends/\1/p')
    [ "${n:-0}" -gt 0 ] || { echo "xdp-smoke: in-place sends on but none counted"; exit 3; }
fi
UDRPC_XDP_IN_PLACE=0 pair 31904 --count 2000 --min-size 0 --max-size 1048576 \
    --size-dist log || exit 3
echo "== 4: rpc_bench over xdp, then udp"
for tp in xdp udp; do
    ip netns exec $ns_b "$bench" --transport $tp --peers --sizes 32 --depths 1,8,64 \
        --sessions 8 --repeat 3 --host 10.79.9.2 --server-netns $ns_a \
        --server-host 10.79.9.1 --json "$out/$tp.json" || exit 4
done
echo "== 5: in-place sends ($in_place), then copying sends"
for ip in 1 0; do
    UDRPC_XDP_IN_PLACE=$ip ip netns exec $ns_b "$bench" --transport xdp --sizes 4096,65536,1048576 \
        --depths 1,8 --sessions 1 --repeat 3 --host 10.79.9.2 --server-netns $ns_a \
        --server-host 10.79.9.1 --json "$out/in_place_$ip.json" || exit 5
done
echo "xdp-smoke: all steps passed"
