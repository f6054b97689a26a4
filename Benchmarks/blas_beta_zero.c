/* Does OpenBLAS's beta = 0 save the zero fill of a weight gradient? (issue 4, token routing)
 *
 * Token routing's backward adds each expert's weight gradient with one GEMM,
 * dW_e += dY_eᵀ·X_e (`ExpertLinear.backward`), into a gradient buffer zeroed before the step: E
 * experts' worth of zeroing (`ModelBenchmark`'s "gradient zeroing" column). A first write with
 * beta = 0 would drop that pass if OpenBLAS's own handling of beta = 0 were cheaper than memset.
 * This times, for E = 8 experts of one linear at batch 8's shapes (34 rows each):
 *   beta1:        the GEMMs alone, accumulating (no zeroing; the lower bound),
 *   memset+beta1: what the model does (memset all 8 gradients, then accumulate),
 *   beta0:        the first write overwriting through beta = 0.
 *
 *   gcc -O2 Benchmarks/blas_beta_zero.c -o /tmp/blas_beta_zero -lopenblas
 *   OPENBLAS_NUM_THREADS=1 /tmp/blas_beta_zero 512 128 34   # fc1: O = 512, I = 128
 *   OPENBLAS_NUM_THREADS=1 /tmp/blas_beta_zero 128 512 34   # fc2
 *
 * Not part of the Swift package or of CI; results in reports/benchmarks.md. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

enum { experts = 8, repeats = 1000, rounds = 7 };

/* Best of `rounds` of the mean over `repeats` steps, in seconds. */
static double time_steps(int zero_first, float beta, int outs, int ins, int rows,
                         const float *dy, const float *x, float *dw) {
    double best = 1e9;
    for (int round = 0; round < rounds; round++) {
        double start = seconds();
        for (int step = 0; step < repeats; step++) {
            if (zero_first) memset(dw, 0, sizeof(float) * experts * outs * ins);
            for (int e = 0; e < experts; e++)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, outs, ins, rows, 1,
                            dy + e * rows * outs, outs, x + e * rows * ins, ins, beta,
                            dw + e * outs * ins, ins);
        }
        double t = (seconds() - start) / repeats;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s OUT IN ROWS\n", argv[0]);
        return 2;
    }
    int outs = atoi(argv[1]), ins = atoi(argv[2]), rows = atoi(argv[3]);
    if (outs <= 0 || ins <= 0 || rows <= 0) {
        fprintf(stderr, "%s: OUT, IN and ROWS must be positive integers\n", argv[0]);
        return 2;
    }
    float *dy = malloc(sizeof(float) * experts * rows * outs);
    float *x = malloc(sizeof(float) * experts * rows * ins);
    float *dw = calloc((size_t)experts * outs * ins, sizeof(float));
    if (!dy || !x || !dw) return 1;
    srand(1);
    for (int i = 0; i < experts * rows * outs; i++) dy[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < experts * rows * ins; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    double accumulate = time_steps(0, 1, outs, ins, rows, dy, x, dw);
    double zeroed = time_steps(1, 1, outs, ins, rows, dy, x, dw);
    double overwrite = time_steps(0, 0, outs, ins, rows, dy, x, dw);
    printf("O=%d I=%d rows=%d, %d experts, µs per step (best of %d): beta1 %.1f | memset+beta1 %.1f | beta0 %.1f\n",
           outs, ins, rows, experts, rounds, accumulate * 1e6, zeroed * 1e6, overwrite * 1e6);
    free(dy);
    free(x);
    free(dw);
    return 0;
}
