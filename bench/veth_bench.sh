#!/usr/bin/env bash
# veth_bench.sh E2E_RPC [COUNT] [ROUNDS] — goodput of 1 MiB RPCs (1 MiB
# request, 1 MiB response) between two network namespaces joined by a veth
# pair at MTU 1500, udp with GSO and GRO (the default) against the same
# without (UDRPC_UDP_GSO=0 at both ends), alternating ROUNDS times in one
# run, server and client pinned to cores 1 and 0. Prints each run and the
# ratio of the medians. Needs root and `ip netns`; else exit 77.
set -u
bin=$(readlink -f "$1")
count=${2:-200}
rounds=${3:-3}
. "$(dirname "$(readlink -f "$0")")/../test/veth_ns.sh"
veth_ns_up udrpc_vb 10.79.0
cpus=$(nproc)
pin_s="" pin_c=""
if [ "$cpus" -ge 2 ]; then pin_s="taskset -c 1" pin_c="taskset -c 0"; fi

one() { # UDRPC_UDP_GSO value: prints MB/s of request and response bytes
    UDRPC_UDP_GSO=$1 ip netns exec $ns_a $pin_s "$bin" --mode server --uri 10.79.0.1:31852 \
        --timeout-s 120 >/dev/null &
    local server=$!
    sleep 0.3
    local out
    out=$(UDRPC_UDP_GSO=$1 ip netns exec $ns_b $pin_c "$bin" --mode client \
        --server 10.79.0.1:31852 --uri 10.79.0.2:0 --count "$count" --min-size 1048576 \
        --max-size 1048576 --connect-timeout-ms 5000 --timeout-s 60)
    local rc=$?
    kill $server 2>/dev/null
    wait $server 2>/dev/null
    [ $rc = 0 ] || { echo "run failed (UDRPC_UDP_GSO=$1): $out" >&2; exit 1; }
    local rps
    rps=$(echo "$out" | sed -nE 's/.*\(([0-9.]+) RPC\/s\).*/\1/p')
    echo "$out" | grep -E "^client udp offload" >&2
    awk -v r="$rps" 'BEGIN { printf "%.1f\n", r * 2 * 1048576 / 1e6 }'
}

on=() off=()
for i in $(seq "$rounds"); do
    g=$(one 1) || exit 1
    p=$(one 0) || exit 1
    echo "round $i: GSO+GRO $g MB/s, without $p MB/s"
    on+=("$g") off+=("$p")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mg=$(median "${on[@]}") mp=$(median "${off[@]}")
awk -v g="$mg" -v p="$mp" 'BEGIN { printf "1 MiB RPCs over veth (MTU 1500): GSO+GRO %.1f MB/s, without %.1f MB/s: %.2fx (medians)\n", g, p, g / p }'
