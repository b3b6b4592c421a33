#!/usr/bin/env bash
# rpc_bench_plugin_test.sh RPC_BENCH KV_PLUGIN NOSYM_PLUGIN V99_PLUGIN TRANSPORT —
# rpc_bench --handler-lib: apps/kv's plugin swept in the same run as the
# built-in echo, every response checked (the plugin's check_response: GET
# finds its key with a value of the given size, PUT and SCAN answer OK);
# then a sweep of GET alone; then the refusals, each with its message and
# exit status 2: a file that does not load, a plugin without the entry
# symbol, one of another interface version, arguments the plugin refuses.
set -u
bench=$1 plugin=$2 nosym=$3 v99=$4 tp=$5
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bench" --transport "$tp" --handler-lib "$plugin" --plugin-arg keys=100,value=32 \
    --sizes 32 --depths 1,8 --duration 0.2 --verify --json "$out/all.json" > "$out/all.txt" 2>&1 ||
    { cat "$out/all.txt"; fail "the plugin sweep exited $?"; }
cat "$out/all.txt"
grep -q "verify: 0 responses differed" "$out/all.txt" || fail "responses differed"
for h in echo GET PUT SCAN; do
    [ "$(grep -c "\"handler\": \"$h\"" "$out/all.json")" = 2 ] || fail "not 2 points of $h"
done
# every point: requests done, none failed, none wrong
awk '/"transport"/ {
        if (!match($0, /"rpc_per_s": [0-9.]+/) || substr($0, RSTART + 13, RLENGTH - 13) + 0 <= 0) bad = 1
        if ($0 !~ /"err_timeout": 0, "err_session": 0, "err_no_handler": 0, "err_too_big": 0, "err_other": 0, "bad_responses": 0/) bad = 1
     } END { exit bad }' "$out/all.json" || fail "a point with no requests, or errors"
# GET's requests are the plugin's: 2 + 11 bytes
grep '"handler": "GET"' "$out/all.json" | grep -q '"size": 13,' || fail "GET's request size"

"$bench" --transport "$tp" --handler-lib "$plugin" --req-types 10 --depths 4 --duration 0.2 \
    --json "$out/get.json" > "$out/get.txt" 2>&1 || { cat "$out/get.txt"; fail "GET alone"; }
[ "$(grep -c '"transport"' "$out/get.json")" = 1 ] && grep -q '"handler": "GET"' "$out/get.json" ||
    fail "--req-types 10: not one GET point"

refuse() { # expected-message args...
    local want=$1 rc
    shift
    "$bench" --transport "$tp" --depths 1 --duration 0.1 "$@" > "$out/r.txt" 2>&1
    rc=$?
    [ $rc = 2 ] || { cat "$out/r.txt"; fail "$* exited $rc, not 2"; }
    grep -q "$want" "$out/r.txt" || { cat "$out/r.txt"; fail "$*: no message '$want'"; }
    echo "refused as it should: $* -> $(head -1 "$out/r.txt")"
}
refuse "cannot load" --handler-lib "$out/none.so"
refuse "no symbol udrpc_plugin_entry" --handler-lib "$nosym"
refuse "interface version 99, this host takes 1" --handler-lib "$v99"
refuse "kv_plugin: arguments are" --handler-lib "$plugin" --plugin-arg bogus=1
refuse "request types 1..255" --req-types 300
echo "rpc_bench plugin ($tp): ok"
