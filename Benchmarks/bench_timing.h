/* The clock and the median shared by the hand-built C benchmarks of this folder. Each includes it by
 * a path relative to itself ("bench_timing.h"), so their build lines need no -I for it. */
#ifndef TI_BENCH_TIMING_H
#define TI_BENCH_TIMING_H

#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* qsort's comparison for doubles, smallest first. */
static inline int ascending(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median of v[0..n) (sorts v in place; the mean of the middle two when n is even). */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, ascending);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
