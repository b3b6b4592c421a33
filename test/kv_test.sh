#!/bin/sh
# kv_test.sh KV_SERVER KV_LOAD [HOST] — the key-value service end to end
# over UDP on HOST (127.0.0.1, or [::1] for IPv6: kv_load's Nexus binds to
# the family udrpc_local_uri_for finds for the server's URI):
# kv_server with 2 threads; kv_load --check runs 200,000 mixed operations
# (90% GET, 9% PUT, 1% DELETE, Zipf 0.99 over 20,000 keys, 16 in flight,
# SCANs of every partition every 50,000) and checks every answer against
# its model. Fails on any mismatch, error or lost operation.
set -eu
server=$1 load=$2 host=${3:-127.0.0.1}
if [ "$host" = "[::1]" ] && ! grep -qs "^00000000000000000000000000000001 " /proc/net/if_inet6; then
    echo "skipped: no IPv6 loopback (::1) here"; exit 77
fi
out=$(mktemp) err=$(mktemp)
trap 'kill $pid 2>/dev/null || true; rm -f "$out" "$err"' EXIT
"$server" --uri "$host:0" --threads 2 >"$out" 2>"$err" &
pid=$!
i=0
while ! grep -q "^kv_server at" "$out"; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
        echo "kv_server did not start"; cat "$err"; exit 1
    fi
    sleep 0.1
done
uri=$(awk '/^kv_server at/ {print $3}' "$out")
"$load" --server "$uri" --check --ops 200000 --keys 20000 --depth 16 --duration 120 --quiet
kill -INT $pid
wait $pid
cat "$err"
echo "kv_test: ok"
