#!/usr/bin/env bash
# xdp_cost.sh [BUILD_DIR] [RPCS] — instructions per packet of the xdp
# datapath itself (user space: the kernel's work behind each sendto kick
# is not counted), as bench/mlx5_cost.sh counts mlx5's: callgrind counts
# only inside the transport's post (tx_burst, tx_flush) and poll
# (rx_burst) functions of an e2e_rpc client on vb, 32 B RPCs at depth 64,
# against a server on va running natively; divided by the packets the
# client sent and received. A poll that finds nothing is counted too, so
# the poll figure includes the client's empty polls (printed per call).
# Needs root, `ip netns` and valgrind; else exit 77.
set -u
build=${1:-build}
rpcs=${2:-20000}
bin=$(readlink -f "$build/test/e2e_rpc")
command -v valgrind >/dev/null || { echo "xdp_cost: valgrind missing"; exit 77; }
. "$(dirname "$(readlink -f "$0")")/../test/veth_ns.sh"
veth_ns_up udrpc_xc 10.79.0
out=$(mktemp -d)
trap 'rm -rf "$out"; ip netns del $ns_a 2>/dev/null; ip netns del $ns_b 2>/dev/null' EXIT
count() { # port, function names...
    local port=$1 args=() server
    shift
    for f in "$@"; do args+=(--toggle-collect="$f"); done
    ip netns exec $ns_a "$bin" --transport xdp --mode server --uri 10.79.0.1:$port \
        --timeout-s 120 >/dev/null &
    server=$!
    sleep 0.3
    ip netns exec $ns_b valgrind --tool=callgrind --collect-atstart=no --compress-strings=no \
        "${args[@]}" --callgrind-out-file="$out/cg" "$bin" --transport xdp --mode client \
        --server 10.79.0.1:$port --uri 10.79.0.2:0 --count "$rpcs" --min-size 32 \
        --max-size 32 --depth 64 --connect-timeout-ms 10000 --timeout-s 100 >"$out/log" 2>&1
    local rc=$?
    kill $server; wait $server 2>/dev/null
    [ $rc = 0 ] || { cat "$out/log"; exit 1; }
    local total calls
    total=$(awk '/^totals:/ {print $2}' "$out/cg")
    # calls to the first function named: "calls=N" lines after its "cfn=".
    calls=$(awk -v f="$1" '$0 ~ "^cfn=.*" f "$" {want = 1; next}
                           want && /^calls=/ {split($1, a, "="); n += a[2]; want = 0}
                           END {print n + 0}' "$out/cg")
    echo "$total $calls"
}
read -r post post_calls < <(count 31861 xdp_tx_burst xdp_tx_flush)
read -r poll poll_calls < <(count 31862 xdp_rx_burst)
awk -v post="$post" -v poll="$poll" -v pc="$poll_calls" -v n="$rpcs" 'BEGIN {
    printf "xdp (SKB mode, copy) on veth, %d RPCs of 32 B at depth 64: %d packets each way\n", n, n
    printf "  post (tx_burst + tx_flush): %.1f instructions per packet\n", post / n
    printf "  poll (rx_burst):            %.1f instructions per packet received (%d calls, %.1f per call)\n", poll / n, pc, pc ? poll / pc : 0
    printf "  together:                   %.1f (mlx5 on the NIC model: 93)\n", (post + poll) / n
}'
