// The per-expert products of token routing (a few dozen rows against a whole expert weight): OpenBLAS
// `sgemm` against the unpacked AVX-512 kernels of expert_gemm_kernels.c, one shape at a time, one
// core, interleaved. Built by hand (not part of the package):
//   clang -O2 -I/usr/include/x86_64-linux-gnu -ISources/CLinearKernel/include Benchmarks/expert_gemm_bench.c Benchmarks/expert_gemm_kernels.c
//       -lopenblas -lm -o /tmp/expert_gemm_bench
//   OPENBLAS_NUM_THREADS=1 [OPENBLAS_CORETYPE=SkylakeX] [EXPERTS=8] [TRANSPOSE=1] /tmp/expert_gemm_bench [rows]
// (/opt/swift/usr/bin/clang here; gcc 12 at -O2 leaves the register tiles in memory and runs 3× slower.)
// EXPERTS=8 cycles through 8 weights, as a routed layer does (they no longer fit in L2); TRANSPOSE=1
// runs the forward by transposing the weight and broadcasting (as dX does) instead of dot products.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_timing.h"
#include "expert_gemm_kernels.h"

static float scratch[1 << 20];
static void fill(float *x, long n, unsigned *s) { for (long i = 0; i < n; i++) { *s = *s * 1664525u + 1013904223u; x[i] = ((*s >> 8) / 16777216.0f) - 0.5f; } }

enum { NT, NN, TN };
static const char *names[] = {"fwd  Y = X·Wᵀ", "dX = dY·W", "dW += dYᵀ·X"};

// One product C[m, n] over k in the given form, through BLAS (blas = 1) or the kernels.
static void run(int form, int blas, int m, int n, int k, const float *a, const float *b, float *c) {
    if (form == NT) {
        if (blas) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
        else if (getenv("TRANSPOSE")) ti_linear_forward(m, n, k, a, b, NULL, c, scratch);
        else ti_gemm_nt(m, n, k, a, k, b, k, NULL, c, n, 0);
    } else if (form == NN) {
        if (blas) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 1, c, n);
        else ti_gemm_nn(m, n, k, a, k, b, n, c, n, 1);
    } else {
        if (blas) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1, a, m, b, n, 1, c, n);
        else ti_gemm_tn(m, n, k, a, m, b, n, c, n, 1);
    }
}

int main(int argc, char **argv) {
    int R = argc > 1 ? atoi(argv[1]) : 34, D = 128, F = 512, reps = 400;
    if (!ti_expert_gemm_available()) { printf("no AVX-512F on this CPU\n"); return 1; }
    printf("rows %d, D %d, F %d; µs per product, median of %d\n\n", R, D, F, reps);
    printf("| product | m | n | k | OpenBLAS µs | kernel µs | kernel / BLAS | BLAS GFLOP/s | kernel GFLOP/s | max rel. diff |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    double totalBlas = 0, totalKernel = 0;
    for (int layer = 0; layer < 2; layer++) {
        int In = layer == 0 ? D : F, Out = layer == 0 ? F : D;
        for (int form = 0; form < 3; form++) {
            int m, n, k; long sa, sb;
            if (form == NT) { m = R; n = Out; k = In; sa = (long)R * In; sb = (long)Out * In; }
            else if (form == NN) { m = R; n = In; k = Out; sa = (long)R * Out; sb = (long)Out * In; }
            else { m = Out; n = In; k = R; sa = (long)R * Out; sb = (long)R * In; }
            unsigned s = 7;
            // `copies` experts' worth of weights (and weight gradients), cycled through as a routed
            // layer does: with 8, the weights no longer fit in L2 and each call reads them from L3.
            const int copies = getenv("EXPERTS") ? atoi(getenv("EXPERTS")) : 1;
            float *a = malloc(sa * 4), *bs = malloc(sb * 4 * copies), *c1s = calloc((long)m * n * copies, 4),
                  *c2s = calloc((long)m * n * copies, 4);
            fill(a, sa, &s); fill(bs, sb * copies, &s);
            float *b = bs, *c1 = c1s, *c2 = c2s;
            run(form, 1, m, n, k, a, b, c1); run(form, 0, m, n, k, a, b, c2);
            double err = 0, ref = 0;
            for (long i = 0; i < (long)m * n; i++) { err = fmax(err, fabs(c1[i] - c2[i])); ref = fmax(ref, fabs(c1[i])); }
            double *tb = malloc(reps * sizeof(double)), *tk = malloc(reps * sizeof(double));
            for (int r = 0; r < reps; r++) {  // interleaved, so drift hits both
                const int x = r % copies;
                b = bs + sb * x; c1 = c1s + (long)m * n * x; c2 = c2s + (long)m * n * x;
                double t0 = now(); run(form, 1, m, n, k, a, b, c1); double t1 = now();
                run(form, 0, m, n, k, a, b, c2); double t2 = now();
                tb[r] = t1 - t0; tk[r] = t2 - t1;
            }
            qsort(tb, reps, sizeof(double), ascending); qsort(tk, reps, sizeof(double), ascending);
            double mb = tb[reps / 2] * 1e6, mk = tk[reps / 2] * 1e6, fl = 2.0 * m * n * k;
            totalBlas += mb; totalKernel += mk;
            printf("| %s (%s) | %d | %d | %d | %.2f | %.2f | %.2f | %.1f | %.1f | %.1e |\n", names[form],
                   layer == 0 ? "dense" : "dense2", m, n, k, mb, mk, mk / mb, fl / mb / 1e3, fl / mk / 1e3, err / ref);
            free(a); free(bs); free(c1s); free(c2s); free(tb); free(tk);
        }
    }
    printf("| all six | | | | %.2f | %.2f | %.2f | | | |\n", totalBlas, totalKernel, totalKernel / totalBlas);
    return 0;
}
