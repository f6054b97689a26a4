// The probe's Float64 Gram kernels; see include/gram_kernel.h. Why our own: OpenBLAS picks its
// kernels by CPU model, and on a CPU it does not know (Intel Emerald Rapids with OpenBLAS 0.3.21)
// it falls back to SSE3 ones, where `dsyrk` ran at 9 GFLOP/s against 30–55 for these kernels
// (reports/benchmarks.md). Same bits on every path: see the header.
#include "gram_kernel.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define TI_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum { P = TI_GRAM_PANEL };

// ---- Which paths this machine supports ----

#ifdef TI_X86
static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    // CPUID.1:ECX: OSXSAVE (27), AVX (28), FMA (12); then XCR0 must enable the SSE and AVX state.
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28)) || !(c & (1u << 12))) return 0;
    unsigned long long x = xcr0();
    if ((x & 0x6) != 0x6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5))) return 0;  // AVX2
    // AVX512F (CPUID.7.0:EBX bit 16) with opmask and both ZMM halves enabled (XCR0 bits 5–7).
    if ((b & (1u << 16)) && (x & 0xE0) == 0xE0) return 2;
    return 1;
}
#else
static int detect(void) { return 0; }
#endif

static int best_path(void) {
    static int cached = -1;
    int path = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (path < 0) {
        path = detect();
        __atomic_store_n(&cached, path, __ATOMIC_RELAXED);
    }
    return path;
}

TIGramPath ti_gram_best_path(void) { return (TIGramPath)best_path(); }
bool ti_gram_path_supported(TIGramPath path) { return (int)path >= 0 && (int)path <= best_path(); }

// ---- Packing ----

bool ti_gram_any_nonzero(const float *values, long count) {
    unsigned any = 0;
    const unsigned *bits = (const unsigned *)(const void *)values;
    for (long i = 0; i < count; i++) any |= bits[i] & 0x7fffffffu;
    return any != 0;
}

void ti_gram_pack(const float *const *rows, int count, int k, double *panels) {
    for (int p = 0; p * P < count; p++) {
        double *panel = panels + (long)p * k * P;
        for (int r = 0; r < P; r++) {
            int row = p * P + r;
            if (row < count) {
                const float *src = rows[row];
                for (int c = 0; c < k; c++) panel[(long)c * P + r] = (double)src[c];
            } else {
                for (int c = 0; c < k; c++) panel[(long)c * P + r] = 0;
            }
        }
    }
}

// ---- Micro-kernels: sums[j][i] = Σ_c a[c·8 + i]·b[c·8 + j] for two row panels (a0, a1) ----
// Each sum starts at 0 and takes one fused multiply-add per column, in column order.

static void block_scalar(int k, const double *a0, const double *a1, const double *b, double sums[P][2 * P]) {
    const int rows = a1 ? 2 * P : P;
    for (int j = 0; j < P; j++) {
        for (int i = 0; i < rows; i++) {
            const double *a = i < P ? a0 + i : a1 + (i - P);
            double s = 0;
            for (int c = 0; c < k; c++) s = fma(a[(long)c * P], b[(long)c * P + j], s);
            sums[j][i] = s;
        }
    }
}

#ifdef TI_X86
__attribute__((target("avx2,fma"))) static void half_avx2(
    int k, const double *a, const double *b, double sums[P][2 * P], int rowOffset) {
    for (int h = 0; h < P; h += 4) {
        __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        const double *bb = b + h;
        for (int c = 0; c < k; c++) {
            const __m256d x0 = _mm256_loadu_pd(a + (long)c * P), x1 = _mm256_loadu_pd(a + (long)c * P + 4);
            const double *bc = bb + (long)c * P;
            __m256d s = _mm256_broadcast_sd(bc);
            c00 = _mm256_fmadd_pd(x0, s, c00), c01 = _mm256_fmadd_pd(x1, s, c01);
            s = _mm256_broadcast_sd(bc + 1);
            c10 = _mm256_fmadd_pd(x0, s, c10), c11 = _mm256_fmadd_pd(x1, s, c11);
            s = _mm256_broadcast_sd(bc + 2);
            c20 = _mm256_fmadd_pd(x0, s, c20), c21 = _mm256_fmadd_pd(x1, s, c21);
            s = _mm256_broadcast_sd(bc + 3);
            c30 = _mm256_fmadd_pd(x0, s, c30), c31 = _mm256_fmadd_pd(x1, s, c31);
        }
        _mm256_storeu_pd(sums[h] + rowOffset, c00), _mm256_storeu_pd(sums[h] + rowOffset + 4, c01);
        _mm256_storeu_pd(sums[h + 1] + rowOffset, c10), _mm256_storeu_pd(sums[h + 1] + rowOffset + 4, c11);
        _mm256_storeu_pd(sums[h + 2] + rowOffset, c20), _mm256_storeu_pd(sums[h + 2] + rowOffset + 4, c21);
        _mm256_storeu_pd(sums[h + 3] + rowOffset, c30), _mm256_storeu_pd(sums[h + 3] + rowOffset + 4, c31);
    }
}

__attribute__((target("avx2,fma"))) static void block_avx2(
    int k, const double *a0, const double *a1, const double *b, double sums[P][2 * P]) {
    half_avx2(k, a0, b, sums, 0);
    if (a1) half_avx2(k, a1, b, sums, P);
}

// 16 rows × 8 columns: two row vectors per column, eight broadcasts, sixteen accumulators.
__attribute__((target("avx512f"))) static void block_avx512(
    int k, const double *a0, const double *a1, const double *b, double sums[P][2 * P]) {
    if (!a1) a1 = a0;  // the work on the repeat is thrown away
    __m512d c0 = _mm512_setzero_pd(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512d d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0;
    for (int c = 0; c < k; c++) {
        const __m512d x0 = _mm512_loadu_pd(a0 + (long)c * P), x1 = _mm512_loadu_pd(a1 + (long)c * P);
        const double *bc = b + (long)c * P;
        __m512d s;
        s = _mm512_set1_pd(bc[0]), c0 = _mm512_fmadd_pd(x0, s, c0), d0 = _mm512_fmadd_pd(x1, s, d0);
        s = _mm512_set1_pd(bc[1]), c1 = _mm512_fmadd_pd(x0, s, c1), d1 = _mm512_fmadd_pd(x1, s, d1);
        s = _mm512_set1_pd(bc[2]), c2 = _mm512_fmadd_pd(x0, s, c2), d2 = _mm512_fmadd_pd(x1, s, d2);
        s = _mm512_set1_pd(bc[3]), c3 = _mm512_fmadd_pd(x0, s, c3), d3 = _mm512_fmadd_pd(x1, s, d3);
        s = _mm512_set1_pd(bc[4]), c4 = _mm512_fmadd_pd(x0, s, c4), d4 = _mm512_fmadd_pd(x1, s, d4);
        s = _mm512_set1_pd(bc[5]), c5 = _mm512_fmadd_pd(x0, s, c5), d5 = _mm512_fmadd_pd(x1, s, d5);
        s = _mm512_set1_pd(bc[6]), c6 = _mm512_fmadd_pd(x0, s, c6), d6 = _mm512_fmadd_pd(x1, s, d6);
        s = _mm512_set1_pd(bc[7]), c7 = _mm512_fmadd_pd(x0, s, c7), d7 = _mm512_fmadd_pd(x1, s, d7);
    }
    _mm512_storeu_pd(sums[0], c0), _mm512_storeu_pd(sums[0] + P, d0);
    _mm512_storeu_pd(sums[1], c1), _mm512_storeu_pd(sums[1] + P, d1);
    _mm512_storeu_pd(sums[2], c2), _mm512_storeu_pd(sums[2] + P, d2);
    _mm512_storeu_pd(sums[3], c3), _mm512_storeu_pd(sums[3] + P, d3);
    _mm512_storeu_pd(sums[4], c4), _mm512_storeu_pd(sums[4] + P, d4);
    _mm512_storeu_pd(sums[5], c5), _mm512_storeu_pd(sums[5] + P, d5);
    _mm512_storeu_pd(sums[6], c6), _mm512_storeu_pd(sums[6] + P, d6);
    _mm512_storeu_pd(sums[7], c7), _mm512_storeu_pd(sums[7] + P, d7);
}
#endif

// ---- Driver: 16 rows (two panels of A) against 8 columns (one panel of B) at a time ----

static void multiply(
    TIGramPath path, bool upper, int m, int n, int k, const double *a, const double *b, double *c, long ldc) {
    if (!ti_gram_path_supported(path)) path = ti_gram_best_path();  // never an illegal instruction
    const long panel = (long)k * P;
    double sums[P][2 * P];
    for (int i0 = 0; i0 < m; i0 += 2 * P) {
        const double *a0 = a + (long)(i0 / P) * panel;
        const double *a1 = i0 + P < m ? a0 + panel : NULL;
        for (int j0 = upper ? i0 : 0; j0 < n; j0 += P) {
            const double *bj = b + (long)(j0 / P) * panel;
            // Under the diagonal, the second row panel has nothing to add in this column panel.
            const double *second = upper && j0 < i0 + P ? NULL : a1;
#ifdef TI_X86
            if (path == TIGramPathAVX512) block_avx512(k, a0, second, bj, sums);
            else if (path == TIGramPathAVX2) block_avx2(k, a0, second, bj, sums);
            else
#endif
                block_scalar(k, a0, second, bj, sums);
            const int rows = second ? 2 * P : P;
            for (int j = 0; j < P && j0 + j < n; j++) {
                for (int i = 0; i < rows && i0 + i < m; i++) {
                    if (upper && i0 + i > j0 + j) break;
                    c[(long)(i0 + i) * ldc + j0 + j] += sums[j][i];
                }
            }
        }
    }
}

void ti_gram_syrk(TIGramPath path, int m, int k, const double *a, double *c, long ldc) {
    multiply(path, true, m, m, k, a, a, c, ldc);
}

void ti_gram_gemm(TIGramPath path, int m, int n, int k, const double *a, const double *b, double *c, long ldc) {
    multiply(path, false, m, n, k, a, b, c, ldc);
}
