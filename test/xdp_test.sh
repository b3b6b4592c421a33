#!/usr/bin/env bash
# xdp_test.sh CASE BIN — the xdp transport between two network namespaces
# joined by a veth pair at MTU 1500 (AF_XDP in SKB mode, copy: veth has no
# zero-copy). xdp holds one endpoint per interface queue, so a server and
# its clients live on the two ends. CASE:
#   e2e     BIN=e2e_rpc: 20000 RPCs of 0..pkt bytes, then 1000 of 0 B to
#           1 MiB (log-uniform), server on va, client on vb; every byte
#           checked, every continuation and handler once (e2e_rpc's checks)
#   faults  BIN=e2e_rpc, through a router namespace whose nftables forward
#           chain drops 5% and duplicates 1% of UDP (nftables never sees
#           AF_XDP frames on the sender's or receiver's own veth: the
#           frames skip the stack there, so the faults go in between)
#   kill    BIN=test_kill: kill -9 of the server and of a client, the
#           restart on the same interface, then no XDP program left on
#           either end
#   queues  BIN=e2e_rpc, over a veth of two queues each way: the endpoint
#           logs how to steer its port to its queue, and 1,000 RPCs pass
#   own     BIN=test_xdp: privileges, stale programs, junk frames (one of
#           them a 6,000-byte frame, over veths at MTU 9000, to a socket
#           that takes multi-buffer packets), foreign UDP beside udrpc
#   native  BIN=e2e_rpc: as e2e, in native mode (the veth driver runs the
#           program) with in-place sends on (payloads of 512 B and more
#           leave from their msgbuf in the UMEM): both must show in the
#           client's stats, and in-place sends be counted
#   stall   BIN=e2e_rpc: 64 KiB RPCs with in-place sends on, and the
#           client's veth down for 2.5 s meanwhile: its waiting sends are
#           voided after a second (logged), in-place sends turn off, and
#           every RPC still completes, its bytes checked
# Needs root, `ip netns`, and a kernel with AF_XDP; else exit 77.
set -u
case_=$1
bin=$(readlink -f "$2")
. "$(dirname "$(readlink -f "$0")")/veth_ns.sh"
export UDRPC_TRANSPORT=xdp

no_prog_left() { # namespace, device
    if ip -n "$1" link show "$2" | grep -q "prog/xdp"; then
        echo "FAIL: an XDP program is left on $2:"; ip -n "$1" link show "$2"; return 1
    fi
}

# A server on va (NS_A) at URI $1 (with $SERVER_ARGS), a client on vb
# (NS_B) at $2 running e2e_rpc with the rest of the arguments.
pair() {
    local srv_uri=$1 cli_uri=$2 server rc
    shift 2
    ip netns exec $ns_a "$bin" --transport xdp --mode server --uri "$srv_uri" --timeout-s 250 \
        ${SERVER_ARGS:-} &
    server=$!
    sleep 0.3
    ip netns exec $ns_b "$bin" --transport xdp --mode client --server "$srv_uri" --uri "$cli_uri" \
        --connect-timeout-ms 5000 --timeout-s 200 "$@"
    rc=$?
    kill $server; wait $server 2>/dev/null
    return $rc
}

# A probe: can this kernel run udrpc's AF_XDP socket and program here?
probe() {
    ip netns exec $ns_a "$E2E" --transport xdp --mode server --uri "$1:31850" --timeout-s 3 \
        >/dev/null 2>&1 &
    local p=$!
    sleep 0.3
    if ! kill -0 $p 2>/dev/null; then
        wait $p
        echo "skipped: no AF_XDP here (the xdp transport could not be created)"; exit 77
    fi
    kill $p; wait $p 2>/dev/null
}

case $case_ in
e2e)
    veth_ns_up udrpc_xdp 10.79.0
    E2E=$bin probe 10.79.0.1
    rc=0
    pair 10.79.0.1:31851 10.79.0.2:0 --count 20000 --min-size 0 --max-size pkt || rc=1
    out=$(pair 10.79.0.1:31852 10.79.0.2:0 --count 1000 --min-size 0 --max-size 1048576 \
        --size-dist log) || rc=1
    echo "$out"
    # Copy mode: in-place sends are off unless asked for (measured slower).
    echo "$out" | grep -q "^client xdp mode skb, copy, in place off: .* 0 in-place sends" ||
        { echo "FAIL: in-place sends not off by default in copy mode"; rc=1; }
    no_prog_left $ns_a va || rc=1
    no_prog_left $ns_b vb || rc=1
    exit $rc ;;
faults)
    command -v nft >/dev/null || { echo "skipped: no nft (apt-get install nftables)"; exit 77; }
    veth_ns_routed udrpc_xdpf 10.80
    E2E=$bin probe 10.80.1.1
    ip netns exec $ns_m nft -f - <<NFT || { echo "skipped: nft refused the rules"; exit 77; }
table ip udrpc_faults {
  chain forward_faults {
    type filter hook forward priority 0; policy accept;
    meta l4proto udp numgen random mod 100 < 5 drop
    meta l4proto udp ip daddr 10.80.2.1 numgen random mod 100 < 1 dup to 10.80.2.1 device mb
    meta l4proto udp ip daddr 10.80.1.1 numgen random mod 100 < 1 dup to 10.80.1.1 device ma
  }
}
NFT
    echo "nft (router namespace, forward): udp loss 5%, duplication 1%, both ways"
    out=$(pair 10.80.1.1:31852 10.80.2.1:0 --count 3000 --min-size 0 --max-size 200000 \
        --size-dist log)
    rc=$?
    echo "$out"
    [ $rc = 0 ] || exit $rc
    retx=$(echo "$out" | sed -nE 's/.*retransmits ([0-9]+).*/\1/p')
    dups=$(echo "$out" | sed -nE 's/.*dup_rx ([0-9]+).*/\1/p')
    [ "${retx:-0}" -gt 0 ] || { echo "FAIL: no retransmit: the faults did not apply"; exit 1; }
    echo "faults: ok ($retx retransmits, $dups duplicates received by the client)" ;;
kill)
    veth_ns_up udrpc_xdpk 10.79.1
    E2E=$(dirname "$bin")/e2e_rpc probe 10.79.1.1
    UDRPC_TEST_PEER_NETNS=$ns_a UDRPC_TEST_PEER_URI=10.79.1.1:0 UDRPC_TEST_URI=10.79.1.2:0 \
        ip netns exec $ns_b "$bin" xdp
    rc=$?
    [ $rc = 0 ] || exit $rc
    no_prog_left $ns_a va && no_prog_left $ns_b vb || exit 1
    echo "kill: no XDP program left on va or vb" ;;
queues)
    # A veth of two queues each way: the endpoint (on queue 0) says that
    # frames landing on queue 1 would be lost, and how to steer them.
    veth_ns_up udrpc_xdpq 10.79.2 2
    E2E=$bin probe 10.79.2.1
    out=$(pair 10.79.2.1:31853 10.79.2.2:0 --count 1000 --min-size 0 --max-size pkt 2>&1)
    rc=$?
    echo "$out"
    echo "$out" | grep -q "va has 2 receive queues: .* ethtool -N va flow-type udp4 dst-port" ||
        { echo "FAIL: no steering notice for a 2-queue interface"; exit 1; }
    exit $rc ;;
own)
    veth_ns_up udrpc_xdpo 10.79.0
    # MTU 9000, for the junk case's frame that takes two descriptors to a
    # socket that takes multi-buffer packets (in-place sends on).
    ip -n $ns_a link set va mtu 9000 && ip -n $ns_b link set vb mtu 9000 || exit 1
    export UDRPC_XDP_IN_PLACE=1
    E2E=$(dirname "$bin")/e2e_rpc probe 10.79.0.1
    "$bin" $ns_a $ns_b ;;
native)
    veth_ns_up udrpc_xdn 10.79.4
    export UDRPC_XDP_MODE=native UDRPC_XDP_IN_PLACE=1
    E2E=$bin probe 10.79.4.1
    rc=0
    for sizes in "--count 20000 --min-size 0 --max-size pkt" \
                 "--count 1000 --min-size 0 --max-size 1048576 --size-dist log"; do
        out=$(pair 10.79.4.1:31855 10.79.4.2:0 $sizes) || rc=1
        echo "$out"
        line=$(echo "$out" | grep "^client xdp mode")
        echo "$line" | grep -q "mode native, copy, in place on:" ||
            { echo "FAIL: not native mode with in-place sends"; rc=1; }
        n=$(echo "$line" | sed -nE 's/.* ([0-9]+) in-place sends/\1/p')
        [ "${n:-0}" -gt 0 ] || { echo "FAIL: no in-place send"; rc=1; }
    done
    no_prog_left $ns_a va || rc=1
    no_prog_left $ns_b vb || rc=1
    exit $rc ;;
stall)
    veth_ns_up udrpc_xds 10.79.3
    E2E=$bin probe 10.79.3.1
    (sleep 1; ip -n $ns_b link set vb down; sleep 2.5; ip -n $ns_b link set vb up) &
    downer=$!
    out=$(UDRPC_XDP_IN_PLACE=1 SERVER_ARGS="--peer-timeout-ms 15000" pair 10.79.3.1:31854 10.79.3.2:0 --count 15000 \
        --min-size 65536 --max-size 65536 --peer-timeout-ms 15000 2>&1)
    rc=$?
    wait $downer
    echo "$out"
    [ $rc = 0 ] || exit $rc
    echo "$out" | grep -q "xdp: sends stalled for a second" ||
        { echo "FAIL: no stall noticed while vb was down"; exit 1; }
    echo "$out" | grep -q "^client xdp mode skb, copy, in place off:" ||
        { echo "FAIL: in-place sends still on after the stall"; exit 1; }
    echo "stall: noticed, voided, every RPC completed" ;;
*)
    echo "usage: xdp_test.sh e2e|faults|kill|queues|own|native|stall BIN"; exit 2 ;;
esac
