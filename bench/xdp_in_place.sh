#!/usr/bin/env bash
# xdp_in_place.sh RPC_BENCH — xdp's in-place sends against its copying
# sends (UDRPC_XDP_IN_PLACE=1 and 0), alternating, ROUNDS rounds (2):
# 4 KiB, 64 KiB and 1 MiB RPCs at depths 1 and 8, one session, between two
# network namespaces joined by a veth at MTU 1500 (AF_XDP in SKB mode,
# copy: veth has no zero-copy), server on core 1, client on core 0. Each
# point is one second; compare the rows of one round. Needs root and
# `ip netns`; else exit 77.
set -u
bench=$(readlink -f "$1")
. "$(dirname "$(readlink -f "$0")")/../test/veth_ns.sh"
veth_ns_up udrpc_xi 10.79.0
cores=()
[ "$(nproc)" -ge 2 ] && cores=(--server-core 1 --client-core 0)
for r in $(seq "${ROUNDS:-2}"); do
    for in_place in 0 1; do
        echo "== round $r: UDRPC_XDP_IN_PLACE=$in_place"
        UDRPC_XDP_IN_PLACE=$in_place ip netns exec "$ns_b" "$bench" --transport xdp \
            --sizes 4096,65536,1048576 --depths 1,8 --sessions 1 --repeat 1 --duration 1 \
            --host 10.79.0.2 --server-netns "$ns_a" --server-host 10.79.0.1 "${cores[@]}" ||
            exit 1
    done
done
