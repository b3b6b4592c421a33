/* clock.c — TSC calibration against CLOCK_MONOTONIC. */
#include "clock.h"

#include <pthread.h>

static struct udrpc_clock g_clock;
static pthread_once_t g_clock_once = PTHREAD_ONCE_INIT;

static void calibrate(void)
{
    /* Two samples 10 ms apart; the TSC is invariant on every x86 CPU this
     * library targets, so one ratio holds for the process lifetime. */
    uint64_t ns0 = udrpc__monotonic_ns(), tsc0 = udrpc__rdtsc();
    uint64_t ns1, tsc1;
    do {
        ns1 = udrpc__monotonic_ns();
        tsc1 = udrpc__rdtsc();
    } while (ns1 - ns0 < 10 * 1000 * 1000);
    g_clock.tsc_per_ns = (double)(tsc1 - tsc0) / (double)(ns1 - ns0);
    if (g_clock.tsc_per_ns <= 0)
        g_clock.tsc_per_ns = 1.0;
    g_clock.ns_per_tsc = 1.0 / g_clock.tsc_per_ns;
    g_clock.tsc_per_us = (uint64_t)(g_clock.tsc_per_ns * 1000.0 + 0.5);
    if (g_clock.tsc_per_us == 0)
        g_clock.tsc_per_us = 1;
}

const struct udrpc_clock *udrpc__clock_init(void)
{
    pthread_once(&g_clock_once, calibrate);
    return &g_clock;
}
