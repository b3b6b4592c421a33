#!/bin/sh
# hello_test.sh HELLO_SERVER HELLO_CLIENT HOST — apps/hello as a user runs
# it, on HOST (127.0.0.1, or [::1]): the server on a free port, then the
# client, which must print "hello, udrpc".
set -eu
server=$1 client=$2 host=$3
if [ "$host" = "[::1]" ] && ! grep -qs "^00000000000000000000000000000001 " /proc/net/if_inet6; then
    echo "skipped: no IPv6 loopback (::1) here"; exit 77
fi
out=$(mktemp)
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
"$server" "$host:0" >"$out" &
pid=$!
i=0
while ! grep -q "^hello server at" "$out"; do
    i=$((i + 1))
    [ $i -le 100 ] && kill -0 $pid 2>/dev/null || { echo "hello_server did not start"; exit 1; }
    sleep 0.1
done
uri=$(awk '/^hello server at/ {sub(",", "", $4); print $4}' "$out")
echo "server at $uri"
got=$(timeout 20 "$client" "$uri" udrpc)
echo "client: $got"
[ "$got" = "hello, udrpc" ]
