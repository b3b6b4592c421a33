/*
 * test.h — a tiny assert header: each failed check prints file, line,
 * expression and both values, then exits 1. SKIP() exits 77 (ctest skip).
 */
#ifndef UDRPC_TEST_H
#define UDRPC_TEST_H

#include <stdio.h>
#include <stdlib.h>

/* A transport name from the command line: "mlx5-model" runs "mlx5" on the
 * NIC model of test/nicmodel/ (where the mlx5 transport is built). */
#ifdef UDRPC_HAVE_MLX5
#include "nicmodel/nicmodel.h"
#define TEST_TRANSPORT(name) nicmodel_select(name)
#else
#define TEST_TRANSPORT(name) (name)
#endif

#define CHECK(expr)                                                           \
    do {                                                                      \
        if (!(expr)) {                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,  \
                    #expr);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long _a = (long long)(a), _b = (long long)(b);                   \
        if (_a != _b) {                                                       \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
                    __FILE__, __LINE__, #a, #b, _a, _b);                      \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define SKIP(why)                                                             \
    do {                                                                      \
        fprintf(stderr, "skipped: %s\n", why);                                \
        exit(77);                                                             \
    } while (0)

#endif
