/*
 * clock.h — the TSC clock. Calibrated once (udrpc__clock_init, at Nexus
 * creation) against CLOCK_MONOTONIC; the event loop reads it once per
 * iteration with udrpc__rdtsc() and converts with precomputed factors, so
 * the datapath never calls clock_gettime.
 */
#ifndef UDRPC_TIMING_CLOCK_H
#define UDRPC_TIMING_CLOCK_H

#include <stdint.h>
#include <time.h>

struct udrpc_clock {
    double tsc_per_ns;   /* measured at calibration */
    double ns_per_tsc;
    uint64_t tsc_per_us; /* rounded, for integer deadline math */
};

/* Calibrates (about 10 ms, once per process; later calls return at once). */
const struct udrpc_clock *udrpc__clock_init(void);

static inline uint64_t udrpc__monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t udrpc__rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return udrpc__monotonic_ns(); /* 1 tick = 1 ns; calibration says so */
#endif
}

static inline uint64_t udrpc__us_to_tsc(const struct udrpc_clock *c, uint64_t us)
{
    return us * c->tsc_per_us;
}

static inline double udrpc__tsc_to_ns(const struct udrpc_clock *c, uint64_t tsc)
{
    return (double)tsc * c->ns_per_tsc;
}

#endif
