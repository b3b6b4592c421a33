#!/usr/bin/env bash
# rpc_bench_compare_test.sh RPC_BENCH — rpc_bench --compare on JSON files
# with known differences. A: 3 repetitions per point, spread 2%. B: point 1
# 20% fewer RPC/s (worse), point 2 p50 30% lower (better), point 3 within
# 1% (within noise). Exit 1 (a metric worse) and each verdict on its line;
# then identical files (exit 0), a file with no common point and a broken
# file (exit 2, with a message).
set -u
bench=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
pt() { # depth rps p50 p99 rps_samples p50_samples p99_samples
    printf '  {"transport": "udp", "req_type": 254, "handler": "echo", "size": 32, "depth": %s, "sessions": 1, "reps": 3, "cc": false, "rpc_per_s": %s, "p50_us": %s, "p99_us": %s, "rpc_per_s_samples": [%s], "p50_us_samples": [%s], "p99_us_samples": [%s], "host": "x"}' "$@"
}
{ echo "["; pt 1 100000 10 20 "99000, 100000, 101000" "9.9, 10, 10.1" "19.8, 20, 20.2"; echo ","
  pt 8 500000 20 40 "495000, 500000, 505000" "19.8, 20, 20.2" "39.6, 40, 40.4"; echo ","
  pt 64 900000 60 90 "891000, 900000, 909000" "59.4, 60, 60.6" "89.1, 90, 90.9"; echo; echo "]"; } > "$out/a.json"
{ echo "["; pt 1 80000 10 20 "79000, 80000, 81000" "9.9, 10, 10.1" "19.8, 20, 20.2"; echo ","
  pt 8 500000 14 40 "495000, 500000, 505000" "13.9, 14, 14.1" "39.6, 40, 40.4"; echo ","
  pt 64 905000 60.3 90 "896000, 905000, 914000" "59.7, 60.3, 60.9" "89.1, 90, 90.9"; echo; echo "]"; } > "$out/b.json"

"$bench" --compare "$out/a.json" "$out/b.json" --noise 0.01 > "$out/c.txt" 2>&1
rc=$?
cat "$out/c.txt"
[ $rc = 1 ] || fail "exit $rc, not 1 (a metric is worse)"
verdict() { # depth metric verdict
    awk -v d="$1" -v m="$2" -v v="$3" '
        /^type/ { cur = ($6 == d ",") }
        cur && index($0, "  " m " ") == 1 && index($0, v) { found = 1 }
        END { exit !found }' "$out/c.txt" || fail "depth $1 $2: not '$3'"
}
verdict 1 "RPC/s" "worse"
grep -q -- "-20.00%" "$out/c.txt" || fail "no -20.00% change"
verdict 1 "p50 us" "within noise"
verdict 8 "p50 us" "better"
verdict 8 "RPC/s" "within noise"
verdict 64 "RPC/s" "within noise"
verdict 64 "p50 us" "within noise"
grep -q "3 points compared: 1 metric worse" "$out/c.txt" || fail "summary line"

"$bench" --compare "$out/a.json" "$out/a.json" > "$out/same.txt" 2>&1 || fail "identical files: exit $?"
grep -q "0 metrics worse" "$out/same.txt" || fail "identical files: a metric moved"

sed 's/"depth": /"depth": 1/' "$out/b.json" > "$out/other.json"
"$bench" --compare "$out/a.json" "$out/other.json" > "$out/o.txt" 2>&1
[ $? = 2 ] && grep -q "no point of" "$out/o.txt" || { cat "$out/o.txt"; fail "no common point"; }
head -c 150 "$out/a.json" > "$out/broken.json"
"$bench" --compare "$out/a.json" "$out/broken.json" > "$out/k.txt" 2>&1
[ $? = 2 ] && grep -q "broken.json: .* at byte" "$out/k.txt" || { cat "$out/k.txt"; fail "broken file"; }
"$bench" --compare "$out/a.json" "$out/missing.json" > "$out/m.txt" 2>&1
[ $? = 2 ] && grep -q "missing.json" "$out/m.txt" || { cat "$out/m.txt"; fail "missing file"; }
echo "rpc_bench --compare: ok"
