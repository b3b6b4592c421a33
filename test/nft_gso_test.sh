#!/usr/bin/env bash
# nft_gso_test.sh E2E_RPC [COUNT] — udrpc over real UDP with GSO and GRO on,
# between two network namespaces joined by a veth pair at MTU 1500 (so a
# 1 MiB message is about 720 datagrams), under faults that nftables makes
# on both ends' output (this host's kernel has no netem):
#   loss 5%         meta l4proto udp numgen random mod 100 < 5 drop
#   duplication 1%  meta l4proto udp numgen random mod 100 < 1 dup to PEER
# A GSO send crosses the veth whole, so a rule drops or duplicates all of
# its datagrams at once: loss comes in bursts. COUNT RPCs of 0 B to 1 MiB
# (log-uniform), every response byte checked, each continuation and
# handler run exactly once (e2e_rpc's checks); then the client must have
# sent GSO sends and received GRO buffers (batching was on, not refused).
#
# Needs root, `ip netns` and nft (Debian: nftables); else exit 77.
set -u
bin=$(readlink -f "$1")
count=${2:-300}
command -v nft >/dev/null || { echo "skipped: no nft (apt-get install nftables)"; exit 77; }
. "$(dirname "$(readlink -f "$0")")/veth_ns.sh"
veth_ns_up udrpc_nft 10.78.0
faults() { # namespace, device, peer address
    ip netns exec "$1" nft -f - <<EOF
table ip udrpc_faults {
  chain out {
    type filter hook output priority 0; policy accept;
    meta l4proto udp numgen random mod 100 < 5 drop
    meta l4proto udp numgen random mod 100 < 1 dup to $3 device "$2"
  }
}
EOF
}
faults $ns_a va 10.78.0.2 || { echo "skipped: nft refused the rules"; exit 77; }
faults $ns_b vb 10.78.0.1 || exit 1
echo "nft: udp loss 5%, duplication 1% on both ends of va/vb (MTU 1500)"

ip netns exec $ns_a "$bin" --mode server --uri 10.78.0.1:31851 --timeout-s 280 &
server=$!
sleep 0.3
out=$(ip netns exec $ns_b "$bin" --mode client --server 10.78.0.1:31851 --uri 10.78.0.2:0 \
    --count "$count" --min-size 0 --max-size 1048576 --size-dist log \
    --connect-timeout-ms 5000 --timeout-s 120)
rc=$?
kill $server 2>/dev/null
wait $server 2>/dev/null
echo "$out"
[ $rc = 0 ] || exit $rc
offload_used "$out" || exit 1 # batching was on and used, both ways
echo "nft_gso: ok ($sends GSO sends, $bufs GRO receives at the client)"
