/*
 * compiler.h — the compiler helpers every module uses: branch hints (on
 * validation and error branches only), container_of, the cache line, and
 * UDRPC_ASSERT for invariants.
 */
#ifndef UDRPC_UTIL_COMPILER_H
#define UDRPC_UTIL_COMPILER_H

#include <assert.h>
#include <stddef.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define UDRPC_CACHE_LINE 64

/* An invariant of the runtime (credits, window, slot states, timers, ring
 * occupancy). Checked in Debug, sanitizer and fuzz builds (UDRPC_CHECKED,
 * set by CMake: they are where the fuzzers and the fault matrix run), and
 * compiled out of release builds, whatever NDEBUG says. A failure is a bug
 * of udrpc's, never bad input: input is counted and dropped. */
#ifdef UDRPC_CHECKED
#define UDRPC_ASSERT(cond) assert(cond)
#else
#define UDRPC_ASSERT(cond) ((void)0)
#endif

#endif
