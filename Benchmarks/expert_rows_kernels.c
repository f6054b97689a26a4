/* Token routing's per-expert products against the dense FFN's, kernel by kernel (issue 4, stop 43).
 *
 * `make bench-model` reads the token-routed FFN at 2.5-2.9x the dense FFN's time at batch 8, for 2x
 * its FLOPs. A `perf` profile of the sub-layer on one core puts most of the excess in the GEMMs
 * themselves: the experts' forward at 2.6x the dense forward's kernel time, their dX at 2.7x, their
 * dW (OpenBLAS) at 2.5x. This program times the same products outside the model, on the shapes the
 * benchmark's layer-0 FFN routes (D = 128, F = 512; the dense FFN's 136 rows against 8 experts
 * holding 272 rows between them, unevenly, as the seeded router sends them: 107, 13, 39, 36, 9, 14,
 * 13, 41), so the difference between the two readings is what the model's surroundings add:
 *
 *   1. forward (Y = X W^T, `ti_gemm_nt`) and input gradient (dX = dY W, `ti_gemm_nn`) of both
 *      linears: dense, one weight each, against the 8 experts' products;
 *   2. the experts' weight gradients: OpenBLAS after zero-filling them (the model's way) against
 *      the unpacked broadcast kernel with A transposed, overwriting (no zero fill, no read of C).
 *
 * Before every timed phase 8 MB are touched, so the experts' 4 MB of weights come from L3 as in the
 * model, where the FFN's other work runs between. Medians and minima of ROUNDS rounds.
 *
 * Build (from the repository root; it includes the kernels' C file to reach its static functions):
 *   clang -O2 -I Sources/CLinearKernel/include Benchmarks/expert_rows_kernels.c -lopenblas -o /tmp/erk
 *   OPENBLAS_NUM_THREADS=1 /tmp/erk
 * Needs AVX-512F (the unpacked kernels). Stop 43's readings are in reports/benchmarks.md.
 */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "../Sources/CLinearKernel/linear_kernel.c"
#include "bench_timing.h"

enum { E = 8, D = 128, F = 512, DENSE_ROWS = 136, ROUNDS = 1000 };
static const int rows[E] = {107, 13, 39, 36, 9, 14, 13, 41};

static float *random_floats(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    for (long i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

static float *junk;
static void touch_other_memory(void) {
    for (long i = 0; i < (8L << 20) / 4; i += 16) junk[i] += 1;
}

static void report(const char *what, double *a, double *b) {
    double amin = a[0], bmin = b[0];
    for (int r = 1; r < ROUNDS; r++) {
        if (a[r] < amin) amin = a[r];
        if (b[r] < bmin) bmin = b[r];
    }
    const double amed = median(a, ROUNDS), bmed = median(b, ROUNDS);
    printf("%-48s %8.1f %8.1f %8.1f %8.1f   %5.2f %5.2f\n", what, amed * 1e6, amin * 1e6, bmed * 1e6, bmin * 1e6,
           bmed / amed, bmin / amin);
}

int main(void) {
    if (!ti_linear_kernel_available()) {
        fprintf(stderr, "expert_rows_kernels: this CPU has no AVX-512F; the unpacked kernels do not run here\n");
        return 2;
    }
    int first[E + 1] = {0};
    for (int e = 0; e < E; e++) first[e + 1] = first[e] + rows[e];
    const int S = first[E];
    float *w1[E], *w2[E], *g1[E], *g2[E];  // fc1 [F, D], fc2 [D, F] and their gradients
    for (int e = 0; e < E; e++) {
        w1[e] = random_floats((long)F * D);
        w2[e] = random_floats((long)D * F);
        g1[e] = random_floats((long)F * D);
        g2[e] = random_floats((long)D * F);
    }
    float *x = random_floats((long)S * F), *y = random_floats((long)S * F), *dy = random_floats((long)S * F);
    junk = random_floats((8L << 20) / 4);
    static double t[4][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        touch_other_memory();
        double t0 = now();
        ti_gemm_nt(DENSE_ROWS, F, D, x, D, w1[0], D, NULL, y, F, 0);
        ti_gemm_nt(DENSE_ROWS, D, F, x, F, w2[0], F, NULL, y, D, 0);
        double t1 = now();
        ti_gemm_nn(DENSE_ROWS, F, D, dy, D, w2[0], F, y, F, 0);
        ti_gemm_nn(DENSE_ROWS, D, F, dy, F, w1[0], D, y, D, 0);
        double t2 = now();
        touch_other_memory();
        double t3 = now();
        for (int e = 0; e < E; e++) ti_gemm_nt(rows[e], F, D, x + first[e] * D, D, w1[e], D, NULL, y + first[e] * F, F, 0);
        for (int e = 0; e < E; e++) ti_gemm_nt(rows[e], D, F, x + first[e] * F, F, w2[e], F, NULL, y + first[e] * D, D, 0);
        double t4 = now();
        for (int e = 0; e < E; e++) ti_gemm_nn(rows[e], F, D, dy + first[e] * D, D, w2[e], F, y + first[e] * F, F, 0);
        for (int e = 0; e < E; e++) ti_gemm_nn(rows[e], D, F, dy + first[e] * F, F, w1[e], D, y + first[e] * D, D, 0);
        double t5 = now();
        t[0][r] = t1 - t0;
        t[1][r] = t2 - t1;
        t[2][r] = t4 - t3;
        t[3][r] = t5 - t4;
    }
    printf("microseconds; ROUNDS = %d, 8 MB touched before each timed phase\n", ROUNDS);
    printf("%-48s %8s %8s %8s %8s   %5s %5s\n", "", "a med", "a min", "b med", "b min", "b/a med", "min");
    static double a[ROUNDS], b[ROUNDS];
    memcpy(a, t[0], sizeof a);
    memcpy(b, t[2], sizeof b);
    report("forward, a dense 136 rows, b 8 experts", a, b);
    memcpy(a, t[1], sizeof a);
    memcpy(b, t[3], sizeof b);
    report("dX, a dense 136 rows, b 8 experts", a, b);

    // The experts' weight gradients: dW1 [F, D] = dH^T X, dW2 [D, F] = dY^T A, over each expert's rows.
    static double blas[ROUNDS], unpacked[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        touch_other_memory();
        double t0 = now();
        for (int e = 0; e < E; e++) {
            memset(g1[e], 0, sizeof(float) * F * D);
            memset(g2[e], 0, sizeof(float) * D * F);
        }
        for (int e = 0; e < E; e++) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, D, rows[e], 1.f, dy + first[e] * F, F,
                        x + first[e] * D, D, 1.f, g1[e], D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, F, rows[e], 1.f, dy + first[e] * D, D,
                        x + first[e] * F, F, 1.f, g2[e], F);
        }
        double t1 = now();
        touch_other_memory();
        double t2 = now();
        for (int e = 0; e < E; e++) {
            gemm_bcast(F, D, rows[e], dy + first[e] * F, 1, F, x + first[e] * D, D, NULL, g1[e], D, 0);
            gemm_bcast(D, F, rows[e], dy + first[e] * D, 1, D, x + first[e] * F, F, NULL, g2[e], F, 0);
        }
        double t3 = now();
        blas[r] = t1 - t0;
        unpacked[r] = t3 - t2;
    }
    report("experts' dW, a BLAS after zero fill, b unpacked", blas, unpacked);
    return 0;
}
