#!/usr/bin/env bash
# xdp_bench.sh RPC_BENCH [OUT_DIR] — udrpc over xdp (AF_XDP, SKB mode,
# copy: veth has no zero-copy) between two network namespaces joined by a
# veth pair at MTU 1500, against its in-run peers on the same veth: the
# raw kernel UDP echo (one datagram per syscall batch entry: the plain
# kernel path) and the same with GSO and GRO; then udrpc over udp on the
# same veth. 32 B, 8 sessions, depths 1, 8 and 64, server on core 1 and
# client on core 0, 3 repetitions (medians). rpc_bench prints each point's
# ratios to the peers; the JSON files keep every figure. Needs root and
# `ip netns`; else exit 77.
set -u
bench=$(readlink -f "$1")
out=${2:-.}
mkdir -p "$out"
. "$(dirname "$(readlink -f "$0")")/../test/veth_ns.sh"
veth_ns_up udrpc_xb 10.79.0
cores=()
[ "$(nproc)" -ge 2 ] && cores=(--server-core 1 --client-core 0)
common=(--sizes 32 --depths 1,8,64 --sessions 8 --repeat "${REPEAT:-3}"
        --duration "${DURATION:-1}" --host 10.79.0.2 --server-netns "$ns_a"
        --server-host 10.79.0.1 "${cores[@]}")
for tp in xdp udp; do
    echo "== $tp over veth (MTU 1500), peers on the same veth =="
    ip netns exec "$ns_b" "$bench" --transport $tp --peers "${common[@]}" \
        --json "$out/xdp_bench_$tp.json" || exit 1
done
