/* How wide should the AVX-512 Gram block be? (issue 5, stop 28)
 *
 * The AVX-512 kernel of `Sources/CGramKernel` multiplies 8 rows of one packed panel by the columns
 * of several panels at a time. Until stop 28 it took two panels (8 × 16: 16 accumulators, 10 loads
 * per 16 multiply-adds); it now takes three (8 × 24: 24 accumulators, 11 loads per 24). Every
 * entry is summed in the same order either way, so the bits are the same (checked below); only the
 * speed differs. This program runs the probe's tile (300 rows, one lane's 384 columns) in two
 * threads at once, as the Gram's two lanes run, alternating the old and the new block round by
 * round (20 calls a round, 200 rounds each) so that the host's changes of speed fall on both, and
 * prints the median and the 10th and 90th percentiles of a call's time:
 *
 *   clang -O2 -ffp-contract=off -ISources/CGramKernel/include Benchmarks/gram_block_width.c \
 *       -o /tmp/gram_block_width -lpthread -lm && /tmp/gram_block_width
 *
 * Needs an AVX-512 CPU. Not part of the Swift package or of CI; results in reports/benchmarks.md. */
#include "../Sources/CGramKernel/gram_kernel.c"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bench_timing.h"

// The kernel as it was before stop 28: 8 rows × 16 columns.
__attribute__((target("avx512f"))) static void block16(
    int k, const double *a, const double *b0, const double *b1, double sums[R][C]) {
    if (!b1) b1 = b0;
    __m512d c0 = _mm512_setzero_pd(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512d d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0;
    for (int c = 0; c < k; c++) {
        const __m512d y0 = _mm512_loadu_pd(b0 + (long)c * P), y1 = _mm512_loadu_pd(b1 + (long)c * P);
        const double *ac = a + (long)c * P;
        __m512d s;
#define ROW(i) s = _mm512_set1_pd(ac[i]), c##i = _mm512_fmadd_pd(s, y0, c##i), d##i = _mm512_fmadd_pd(s, y1, d##i);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
#define STORE(i) _mm512_storeu_pd(sums[i], c##i), _mm512_storeu_pd(sums[i] + P, d##i);
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
#undef STORE
}

static void syrk16(int m, int k, const double *a, double *c) {
    const long panel = (long)k * P;
    double sums[R][C];
    for (int i0 = 0; i0 < m; i0 += R) {
        const double *ai = a + (long)(i0 / P) * panel;
        for (int j0 = i0; j0 < m; j0 += 2 * P) {
            const double *b0 = a + (long)(j0 / P) * panel;
            block16(k, ai, b0, j0 + P < m ? b0 + panel : NULL, sums);
            const int cols = m - j0 < 2 * P ? m - j0 : 2 * P;
            for (int i = 0; i < R && i0 + i < m; i++) {
                double *row = c + (long)(i0 + i) * m + j0;
                for (int j = i0 + i > j0 ? i0 + i - j0 : 0; j < cols; j++) row[j] += sums[i][j];
            }
        }
    }
}

enum { M = 300, K = 384, CALLS = 20, ROUNDS = 200 };
typedef struct { double *panels, *gram; } Lane;
static pthread_barrier_t barrier;
static int wide, stop;

static void *lane(void *arg) {
    Lane *l = arg;
    for (;;) {
        pthread_barrier_wait(&barrier);
        if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) return NULL;
        for (int r = 0; r < CALLS; r++) {
            if (__atomic_load_n(&wide, __ATOMIC_ACQUIRE)) ti_gram_syrk(TIGramPathAVX512, M, K, l->panels, l->gram, M);
            else syrk16(M, K, l->panels, l->gram);
        }
        pthread_barrier_wait(&barrier);
    }
}

int main(void) {
    if (!ti_gram_path_supported(TIGramPathAVX512)) {
        fprintf(stderr, "gram_block_width: this CPU has no AVX-512\n");
        return 2;
    }
    Lane lanes[2];
    for (int l = 0; l < 2; l++) {
        float *rows = malloc(sizeof(float) * M * K);
        srand(l + 1);
        for (long i = 0; i < (long)M * K; i++) rows[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        lanes[l].panels = aligned_alloc(64, sizeof(double) * (M + P - 1) / P * P * K);
        ti_gram_pack(rows, M, K, lanes[l].panels);
        free(rows);
        lanes[l].gram = calloc((size_t)M * M, sizeof(double));
    }
    // Same bits: one call of each on the first lane's rows, from zero.
    double *g16 = calloc((size_t)M * M, sizeof(double)), *g24 = calloc((size_t)M * M, sizeof(double));
    syrk16(M, K, lanes[0].panels, g16);
    ti_gram_syrk(TIGramPathAVX512, M, K, lanes[0].panels, g24, M);
    if (memcmp(g16, g24, sizeof(double) * M * M) != 0) {
        fprintf(stderr, "gram_block_width: the two blocks give different bits\n");
        return 1;
    }
    pthread_barrier_init(&barrier, NULL, 3);
    pthread_t threads[2];
    for (int l = 0; l < 2; l++) pthread_create(&threads[l], NULL, lane, &lanes[l]);
    static double times[2][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (int w = 0; w < 2; w++) {
            __atomic_store_n(&wide, w, __ATOMIC_RELEASE);
            const double start = now();
            pthread_barrier_wait(&barrier);  // go
            pthread_barrier_wait(&barrier);  // both lanes done
            times[w][r] = (now() - start) / CALLS;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_barrier_wait(&barrier);
    for (int l = 0; l < 2; l++) pthread_join(threads[l], NULL);
    const double flops = 2.0 * 2 * M * (M + 1) / 2 * K;  // two lanes, the upper triangle, 2 per multiply-add
    printf("300 × 384 upper triangle in each of two lanes at once, same bits; µs per call (median [p10, p90]):\n");
    for (int w = 0; w < 2; w++) {
        qsort(times[w], ROUNDS, sizeof(double), ascending);
        printf("  8 × %d: %.1f [%.1f, %.1f] (%.1f GFLOP/s both lanes at the median)\n", w ? 24 : 16,
               times[w][ROUNDS / 2] * 1e6, times[w][ROUNDS / 10] * 1e6, times[w][ROUNDS * 9 / 10] * 1e6,
               flops / times[w][ROUNDS / 2] / 1e9);
    }
    return 0;
}
