#!/usr/bin/env bash
# rpc_bench_server_test.sh RPC_BENCH KV_SERVER — rpc_bench against a
# running server that is not its own: apps/kv's kv_server over udp.
# Payload files of real requests (length-prefixed: PUT, then GET of the
# same keys), every response checked with --expect; a planted wrong
# expectation must be counted (exit 1); a type the server has no handler
# for stops before the sweep (exit 2, with the message); bad input gets
# exit 2 and a message: a bad URI, an unreadable payload file, a
# truncated record.
set -u
bench=$1 server=$2
out=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$server" --uri 127.0.0.1:0 --threads 1 > "$out/server.txt" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "^kv_server at" "$out/server.txt" && break; sleep 0.1; done
uri=$(awk '/^kv_server at/ {print $3}' "$out/server.txt")
[ -n "$uri" ] || { cat "$out/server.txt"; fail "kv_server did not start"; }

# kv.h: a record is u32 length (little-endian), then u16 key_len, key,
# [value]. Keys k0..k7, every value "value123".
u16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))"; }
record() { # key [value]
    local body_len=$((2 + ${#1} + ${#2}))
    u16 $body_len; u16 0; u16 ${#1}; printf '%s%s' "$1" "$2"
}
for k in 0 1 2 3 4 5 6 7; do record "k$k" value123; done > "$out/put.bin"
for k in 0 1 2 3 4 5 6 7; do record "k$k" ""; done > "$out/get.bin"
value_hex=$(printf value123 | od -An -v -tx1 | tr -d ' \n')

sweep() { # name args...
    local name=$1
    shift
    "$bench" --server "$uri" --depths 1,8 --sessions 1,2 --duration 0.2 \
        --json "$out/$name.json" "$@" > "$out/$name.txt" 2>&1
}
sweep put --req-types 11 --payload "lenpfx:$out/put.bin" --expect hex:00 ||
    { cat "$out/put.txt"; fail "the PUT sweep"; }
cat "$out/put.txt"
sweep get --req-types 10 --payload "lenpfx:$out/get.bin" --expect "hex:00$value_hex" ||
    { cat "$out/get.txt"; fail "the GET sweep"; }
cat "$out/get.txt"
for name in put get; do
    [ "$(grep -c '"transport"' "$out/$name.json")" = 4 ] || fail "$name: not 4 points"
    awk '/"transport"/ {
            if (!match($0, /"rpc_per_s": [0-9.]+/) || substr($0, RSTART + 13, RLENGTH - 13) + 0 <= 0) bad = 1
            if ($0 !~ /"err_timeout": 0, "err_session": 0, "err_no_handler": 0, "err_too_big": 0, "err_other": 0, "bad_responses": 0/) bad = 1
         } END { exit bad }' "$out/$name.json" || fail "$name: a point with no requests, or errors"
done
grep -q '"server": "127.0.0.1' "$out/get.json" || fail "the JSON does not name the server"

# A wrong expectation (NOT_FOUND for keys that are there) is counted.
"$bench" --server "$uri" --req-types 10 --payload "lenpfx:$out/get.bin" --expect hex:01 \
    --depths 2 --duration 0.2 --json "$out/wrong.json" > "$out/wrong.txt" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$out/wrong.txt"; fail "wrong answers: exit $rc, not 1"; }
grep -q '"bad_responses": [1-9]' "$out/wrong.json" || fail "wrong answers not counted"
grep -q "wrong responses" "$out/wrong.txt" || fail "wrong answers not shown"

refuse() { # expected-message args...
    local want=$1 rc
    shift
    "$bench" --depths 1 --duration 0.1 "$@" > "$out/r.txt" 2>&1
    rc=$?
    [ $rc = 2 ] || { cat "$out/r.txt"; fail "$* exited $rc, not 2"; }
    grep -q "$want" "$out/r.txt" || { cat "$out/r.txt"; fail "$*: no message '$want'"; }
    echo "refused as it should: $* -> $(head -1 "$out/r.txt")"
}
refuse "has no handler for request type 99" --server "$uri" --req-types 99
refuse "rpc_bench: --server" --server "[::1" --req-types 10
refuse "needs --req-types" --server "$uri"
refuse "cannot read" --server "$uri" --req-types 10 --payload "lines:$out/missing.txt"
head -c 5 "$out/put.bin" > "$out/short.bin"
refuse "says 12 bytes, 1 are left" --server "$uri" --req-types 11 --payload "lenpfx:$out/short.bin"
refuse "expected any, echo" --server "$uri" --req-types 10 --expect maybe
kill -INT $pid
wait $pid
pid=
cat "$out/server.txt"
echo "rpc_bench against kv_server: ok"
