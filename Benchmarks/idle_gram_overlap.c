/* Can the probe's Gram hide in the CPU time its forward and backward leave idle? (issue 5)
 *
 * The dense probe keeps about 1.6–1.75 of 2 CPUs busy while it takes gradients, and its Float64
 * Gram needs about as many core-seconds as are idle. A Gram thread that only ran in those gaps
 * would take the Gram out of the probe's time outside forward and backward. This program is that
 * thread's work without the bookkeeping: one single-threaded `dsyrk` of the probe's tile shape
 * (300 rows, 384 columns: one lane's call per column block), repeated until SIGTERM, printing the
 * Float64 GFLOP it executed. Run it at idle priority beside a probe and compare the probe's
 * "gradients" seconds with and without it:
 *
 *   gcc -O2 Benchmarks/idle_gram_overlap.c -o /tmp/idle_gram_overlap -lopenblas
 *   P="./.build/release/interference probe --checkpoint CKPT --data notebooks-data/digits.h5 \
 *      --tasks image-classification,mlm,captioning --out /tmp/p.h5"
 *   $P | tail -1                                             # alone
 *   OPENBLAS_NUM_THREADS=1 chrt --idle 0 /tmp/idle_gram_overlap & S=$!
 *   $P | tail -1; kill -TERM $S; wait $S                     # beside the idle-priority loop
 *
 * The probe's Gram needs 9.1 GFLOP (dense demo checkpoint, N = 100, B = 16). If the loop executes
 * that much while the probe's gradients take no longer, an overlapped Gram would pay off.
 * Not part of the Swift package or of CI; results in reports/benchmarks.md. */
#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;
static void onTerm(int signal) { (void)signal; stop = 1; }

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    enum { rows = 300, columns = 384 };
    double *a = malloc(sizeof(double) * rows * columns), *gram = calloc(rows * rows, sizeof(double));
    if (!a || !gram) return 1;
    srand(1);
    for (int i = 0; i < rows * columns; i++) a[i] = (double)rand() / RAND_MAX - 0.5;
    signal(SIGTERM, onTerm);
    long calls = 0;
    double start = seconds();
    while (!stop) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, rows, columns, 1, a, columns, 1, gram, rows);
        calls++;
    }
    double elapsed = seconds() - start;
    double flop = 2.0 * calls * (rows * (rows + 1) / 2.0) * columns;
    printf("%ld dsyrk calls in %.2f s: %.1f GFLOP executed (%.1f GFLOP/s)\n", calls, elapsed, flop / 1e9,
           flop / 1e9 / elapsed);
    free(a);
    free(gram);
    return 0;
}
