/* bench_compare.h — rpc_bench --compare A.json B.json: for every point in
 * both runs (same request type, size, sessions and depth), the change of
 * RPC/s, p50 and p99 from A to B, and a verdict per metric:
 *
 *   noise   = the larger relative spread, (max - min) / median, of the
 *             two runs' repetitions (--repeat), and at least `floor`
 *             (--noise, default 0.05: what one run of a point cannot tell)
 *   verdict = "within noise" if |change| <= noise, else "better" or
 *             "worse" (RPC/s up is better, latency down is better)
 *
 * Returns the exit status: 0, 1 if any verdict is "worse", 2 if a file
 * cannot be read or holds no point of the other. */
#ifndef UDRPC_BENCH_COMPARE_H
#define UDRPC_BENCH_COMPARE_H

int bench_compare(const char *a_path, const char *b_path, double floor);

#endif
