#!/usr/bin/env bash
# veth6_test.sh E2E_RPC — udrpc over IPv6 between two network namespaces
# joined by a veth pair at MTU 1500 (test/veth_ns.sh), addresses added
# with nodad so they are usable at once:
#   1. global addresses, fd00:78::1 and fd00:78::2: one packet's payload
#      must be 1436 bytes (1500 less IPv6 40, UDP 8, udrpc's header 16: the
#      MTU comes from the interface); then 300 RPCs of 0 B to 1 MiB, GSO
#      and GRO used both ways;
#   2. link-local addresses with zones, [fe80::1%va] and [fe80::2%vb]: 300
#      RPCs of 0 B to 64 KiB.
# Every response byte checked, each continuation and handler once (e2e_rpc).
# Needs root and `ip netns`; else exit 77.
set -u
bin=$(readlink -f "$1")
. "$(dirname "$(readlink -f "$0")")/veth_ns.sh"
veth_ns_up udrpc_v6 10.79.0
ip -n "$ns_a" -6 addr add fd00:78::1/64 dev va nodad &&
ip -n "$ns_b" -6 addr add fd00:78::2/64 dev vb nodad &&
ip -n "$ns_a" -6 addr add fe80::1/64 dev va nodad &&
ip -n "$ns_b" -6 addr add fe80::2/64 dev vb nodad || { echo "skipped: no IPv6 here"; exit 77; }

# run SERVER_URI CLIENT_SERVER_URI CLIENT_URI ARGS...: one server, one client.
run() {
    local srv=$1 to=$2 me=$3
    shift 3
    ip netns exec "$ns_a" "$bin" --mode server --uri "$srv" --timeout-s 120 &
    local server=$!
    sleep 0.3
    out=$(ip netns exec "$ns_b" "$bin" --mode client --server "$to" --uri "$me" \
          --connect-timeout-ms 5000 --timeout-s 100 "$@")
    local rc=$?
    kill $server 2>/dev/null
    wait $server 2>/dev/null
    echo "$out"
    return $rc
}

echo "== global addresses: [fd00:78::1] <- [fd00:78::2]"
run "[fd00:78::1]:31852" "[fd00:78::1]:31852" "[fd00:78::2]:0" \
    --count 2000 --min-size 0 --max-size pkt || exit 1
echo "$out" | grep -q "RPCs of 0..1436 B" || { echo "FAIL: payload per packet is not 1436 B"; exit 1; }
run "[fd00:78::1]:31853" "[fd00:78::1]:31853" "[fd00:78::2]:0" \
    --count 300 --min-size 0 --max-size 1048576 --size-dist log || exit 1
offload_used "$out" || exit 1

echo "== link-local addresses with zones: [fe80::1%va] <- [fe80::2%vb]"
run "[fe80::1%va]:31854" "[fe80::1%vb]:31854" "[fe80::2%vb]:0" \
    --count 300 --min-size 0 --max-size 65536 --size-dist log || exit 1
echo "veth6: ok ($sends GSO sends, $bufs GRO receives at the client over fd00:78::/64)"
