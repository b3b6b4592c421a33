#!/usr/bin/env bash
# xdp_ns_run.sh TEST [ARGS...] — runs a test of the transport matrix over
# xdp: in a network namespace of its own holding both ends of a veth pair
# (va 10.79.0.1, vb 10.79.0.2, MTU 1500), the Nexus on 10.79.0.1, and
# UDRPC_XDP_IF=va,vb, so that the process's first xdp endpoint takes va
# and its second vb, and the two talk across the veth (a third gets
# EBUSY: one endpoint per interface). Root and AF_XDP, else exit 77.
set -u
. "$(dirname "$(readlink -f "$0")")/veth_ns.sh"
probe=$(dirname "$(readlink -f "$1")")/test_xdp
"$probe" --probe || exit 77 # says why
veth_ns_both udrpc_xm 10.79.0
UDRPC_TEST_URI=10.79.0.1:0 UDRPC_XDP_IF=va,vb ip netns exec "$ns" "$@"
