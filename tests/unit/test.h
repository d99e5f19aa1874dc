/*
 * A minimal unit-test harness: CHECK macros that report expected and actual
 * values, a runner that counts failures, and a summary line per binary.
 */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;
static int t_checks;
static const char *t_current;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        t_checks++;                                                                     \
        if (!(cond)) {                                                                  \
            t_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__,        \
                    t_current, #cond);                                                  \
        }                                                                               \
    } while (0)

#define CHECK_EQ_INT(expected, actual)                                                  \
    do {                                                                                \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                 \
        t_checks++;                                                                     \
        if (e_ != a_) {                                                                 \
            t_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: expected %s == %lld, got %lld\n", __FILE__,     \
                    __LINE__, t_current, #actual, e_, a_);                              \
        }                                                                               \
    } while (0)

#define CHECK_EQ_MEM(expected, actual, len)                                             \
    do {                                                                                \
        t_checks++;                                                                     \
        if (memcmp((expected), (actual), (len)) != 0) {                                 \
            t_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: %s differs from %s over %zu bytes\n", __FILE__, \
                    __LINE__, t_current, #actual, #expected, (size_t)(len));            \
        }                                                                               \
    } while (0)

/* Stops the current test function when a precondition fails. */
#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        t_checks++;                                                                     \
        if (!(cond)) {                                                                  \
            t_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: REQUIRE(%s) failed\n", __FILE__, __LINE__,      \
                    t_current, #cond);                                                  \
            return;                                                                     \
        }                                                                               \
    } while (0)

#define RUN(fn)                                                                         \
    do {                                                                                \
        int before_ = t_failures;                                                       \
        t_current = #fn;                                                                \
        fn();                                                                           \
        fprintf(stderr, "%s %s\n", t_failures == before_ ? "ok  " : "FAIL", #fn);       \
    } while (0)

static inline int t_summary(const char *suite) {
    fprintf(stderr, "%s: %d checks, %d failed\n", suite, t_checks, t_failures);
    return t_failures ? 1 : 0;
}

#endif
