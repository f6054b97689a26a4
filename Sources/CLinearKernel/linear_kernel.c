// AVX-512 kernels for a linear layer's forward (Y = X·Wᵀ + b) and input gradient (dX += dY·W); see
// include/linear_kernel.h. Nothing is packed: each kernel reads its operands where they lie, with a
// register tile shaped so that the long operand streams through once per tile row or column.
// Written for token routing's per-expert products (commit f65d796, not kept there), and
// used since stop 38 for the forward and input gradient of every linear (Kernels/Linear.swift).
#include "linear_kernel.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>
#include <immintrin.h>

#define TI_AVX512 __attribute__((target("avx512f")))
#define TI_INLINE static inline __attribute__((always_inline))

bool ti_linear_kernel_available(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        int ok = 0;
        // CPUID.1:ECX.OSXSAVE, then XCR0 must enable SSE, AVX, opmask and both ZMM halves (0xE6),
        // then CPUID.7.0:EBX bit 16 (AVX512F).
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            if ((lo & 0xE6) == 0xE6 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) ok = (b >> 16) & 1;
        }
        cached = ok;
    }
    return cached == 1;
}

// ---- C (+)= A·B and C (+)= Aᵀ·B: broadcast one A element per tile row, two B vectors per step ----

// A's element (i, p) is a[i·rsa + p·csa]: (lda, 1) for A [m, k], (1, lda) for Aᵀ with A [k, m].
// Rows past m repeat the last row (the work is thrown away) so every tile has MR rows of registers.
// `next`, when not NULL, is the next column block of B (`next_lines` = 1 or 2 cache lines of each of
// its k rows), fetched into L1 while this tile computes: see `gemm_bcast`.
TI_INLINE TI_AVX512 void tile_bcast(
    const int MR, int mr, int k, const float *a, long rsa, long csa, const float *b, long ldb,
    const float *bias, float *c, long ldc, __mmask16 m0, __mmask16 m1, int accumulate, const float *next,
    int next_lines) {
    __m512 acc[12][2];
    const float *row[12];
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
        row[i] = a + (long)(i < mr ? i : mr - 1) * rsa;
    }
    for (int p = 0; p < k; p++) {
        if (next) {
            _mm_prefetch((const char *)(next + p * ldb), _MM_HINT_T0);
            if (next_lines > 1) _mm_prefetch((const char *)(next + p * ldb + 16), _MM_HINT_T0);
        }
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb);
        const __m512 b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
        for (int i = 0; i < MR; i++) {
            const __m512 s = _mm512_set1_ps(row[i][p * csa]);
            acc[i][0] = _mm512_fmadd_ps(s, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(s, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        float *out = c + i * ldc;
        __m512 o0 = acc[i][0], o1 = acc[i][1];
        if (bias) {
            o0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, bias), o0);
            o1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, bias + 16), o1);
        }
        if (accumulate) {
            o0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, out), o0);
            o1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, out + 16), o1);
        }
        _mm512_mask_storeu_ps(out, m0, o0);
        _mm512_mask_storeu_ps(out + 16, m1, o1);
    }
}

// One column block of 32 (masked at the edge) for every row tile; the rows are split into tiles of
// at most 12, as equal as possible (34 rows: 12, 11, 11), so little register work is thrown away.
// The first tile of each block also fetches the next block of B: a token-routed expert's weight
// comes from L3 or memory (8 experts' weights do not stay in L2), and with only a few tiles per
// block the hardware prefetcher's start on each strided block was a stall; one block ahead took
// the experts' dX from 2.87–3.21 to 2.22–2.63 times the dense FFN's (medians of six alternated
// runs, stop 43, Benchmarks/expert_rows_kernels.c).
static TI_AVX512 void gemm_bcast(
    int m, int n, int k, const float *a, long rsa, long csa, const float *b, long ldb, const float *bias,
    float *c, long ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    const int tiles = (m + 11) / 12;
    for (int j = 0; j < n; j += 32) {
        const int w = n - j < 32 ? n - j : 32;
        const __mmask16 m0 = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
        const __mmask16 m1 = (__mmask16)(w <= 16 ? 0 : w >= 32 ? 0xFFFF : (1u << (w - 16)) - 1);
        int i = 0;
        for (int t = 0; t < tiles; t++) {
            const int mr = (m - i + (tiles - t) - 1) / (tiles - t);
            const float *at = a + i * rsa;
            float *ct = c + (long)i * ldc + j;
            const float *bt = b + j;
            const float *bj = bias ? bias + j : NULL;
            const float *next = t == 0 && j + 32 < n ? bt + 32 : NULL;
            const int next_lines = j + 48 < n ? 2 : 1;
            switch (mr) {
#define TI_CASE(R) case R: tile_bcast(R, R, k, at, rsa, csa, bt, ldb, bj, ct, ldc, m0, m1, accumulate, next, next_lines); break;
                TI_CASE(1) TI_CASE(2) TI_CASE(3) TI_CASE(4) TI_CASE(5) TI_CASE(6)
                TI_CASE(7) TI_CASE(8) TI_CASE(9) TI_CASE(10) TI_CASE(11) TI_CASE(12)
#undef TI_CASE
            }
            i += mr;
        }
    }
}

void ti_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                int accumulate) {
    gemm_bcast(m, n, k, a, lda, 1, b, ldb, NULL, c, ldc, accumulate);
}

// ---- C (+)= A·Bᵀ: both operands run along k, so a 4×4 tile of dot products in vectors along k,
// summed across lanes at the end by a transpose-and-add tree (45 shuffles and adds per 16 dots) ----

// Sums each of v[0..15] across its lanes; element 4q + e of the result is the sum of v[4e + q].
TI_INLINE TI_AVX512 __m512 sum16(const __m512 v[16]) {
    __m512 w[8], x[4], y[2];
    for (int t = 0; t < 8; t++)
        w[t] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * t], v[2 * t + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * t], v[2 * t + 1], 0xEE));
    for (int t = 0; t < 4; t++)
        x[t] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * t], w[2 * t + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * t], w[2 * t + 1], 0xDD));
    for (int t = 0; t < 2; t++)
        y[t] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * t], x[2 * t + 1], 0x88),
                             _mm512_shuffle_ps(x[2 * t], x[2 * t + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
}

// One 4×4 tile of dot products: rows i.. of A against rows j.. of B (mr, nr ≤ 4 of them real; the
// others repeat the last real row and are not stored).
TI_INLINE TI_AVX512 void tile_dots(
    int mr, int nr, int k, const float *a, long lda, const float *b, long ldb, const float *bias, float *c,
    long ldc, int accumulate) {
    const int full = k & ~15;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    const float *ai[4], *bj[4];
    for (int e = 0; e < 4; e++) ai[e] = a + (long)(e < mr ? e : mr - 1) * lda;
    for (int q = 0; q < 4; q++) bj[q] = b + (long)(q < nr ? q : nr - 1) * ldb;
    // acc[4q + e] = row e of A against row q of B, so that sum16 puts C[e][q] at 4e + q.
    __m512 acc[16];
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    int p = 0;
    for (; p < full; p += 16) {
        __m512 av[4], bv[4];
        for (int e = 0; e < 4; e++) av[e] = _mm512_loadu_ps(ai[e] + p);
        for (int q = 0; q < 4; q++) bv[q] = _mm512_loadu_ps(bj[q] + p);
        for (int q = 0; q < 4; q++)
            for (int e = 0; e < 4; e++) acc[4 * q + e] = _mm512_fmadd_ps(av[e], bv[q], acc[4 * q + e]);
    }
    if (tail) {
        __m512 av[4], bv[4];
        for (int e = 0; e < 4; e++) av[e] = _mm512_maskz_loadu_ps(tail, ai[e] + p);
        for (int q = 0; q < 4; q++) bv[q] = _mm512_maskz_loadu_ps(tail, bj[q] + p);
        for (int q = 0; q < 4; q++)
            for (int e = 0; e < 4; e++) acc[4 * q + e] = _mm512_fmadd_ps(av[e], bv[q], acc[4 * q + e]);
    }
    const __m512 dots = sum16(acc);
    if (mr == 4 && nr == 4) {
        // Row e of the tile is the 128-bit lane e of `dots`.
        const __m128 b4 = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
        const __m128 rows[4] = {
            _mm512_extractf32x4_ps(dots, 0), _mm512_extractf32x4_ps(dots, 1),
            _mm512_extractf32x4_ps(dots, 2), _mm512_extractf32x4_ps(dots, 3)};
        for (int e = 0; e < 4; e++) {
            float *out = c + e * ldc;
            __m128 v = _mm_add_ps(rows[e], b4);
            if (accumulate) v = _mm_add_ps(_mm_loadu_ps(out), v);
            _mm_storeu_ps(out, v);
        }
    } else {
        float d[16];
        _mm512_storeu_ps(d, dots);
        for (int e = 0; e < mr; e++)
            for (int q = 0; q < nr; q++) {
                const float v = d[4 * e + q] + (bias ? bias[q] : 0.0f);
                c[e * ldc + q] = accumulate ? c[e * ldc + q] + v : v;
            }
    }
}

// Fetches the next quad of B's rows (those from j + 4 on, k floats each) into L1.
TI_INLINE void fetch_quad(int j, int n, int k, const float *b, long ldb) {
    for (int q = j + 4; q < j + 8 && q < n; q++)
        for (int p = 0; p < k; p += 16) _mm_prefetch((const char *)(b + q * ldb + p), _MM_HINT_T0);
}

// The tile order keeps one operand in L1: when A's rows fit (a short k), every tile of a column
// quad reads them from L1 and B streams past once; otherwise a row quad of A stays while B streams
// (measured both ways in Benchmarks/expert_gemm_bench.c). The next quad of B is fetched while the
// current one computes, on B's first pass (later passes find it in L2): for a token-routed expert
// it comes from L3 or memory, and one quad ahead took the experts' forward from 2.76–2.89 to
// 2.38–2.59 times the dense FFN's (medians of six alternated runs, stop 43,
// Benchmarks/expert_rows_kernels.c).
static TI_AVX512 void gemm_dots(
    int m, int n, int k, const float *a, long lda, const float *b, long ldb, const float *bias, float *c, long ldc,
    int accumulate) {
    if (m <= 0 || n <= 0) return;
    if ((long)m * k <= 8192) {
        for (int j = 0; j < n; j += 4) {
            fetch_quad(j, n, k, b, ldb);
            for (int i = 0; i < m; i += 4)
                tile_dots(m - i < 4 ? m - i : 4, n - j < 4 ? n - j : 4, k, a + i * lda, lda, b + j * ldb, ldb,
                          bias ? bias + j : NULL, c + i * ldc + j, ldc, accumulate);
        }
    } else {
        for (int i = 0; i < m; i += 4)
            for (int j = 0; j < n; j += 4) {
                if (i == 0) fetch_quad(j, n, k, b, ldb);
                tile_dots(m - i < 4 ? m - i : 4, n - j < 4 ? n - j : 4, k, a + i * lda, lda, b + j * ldb, ldb,
                          bias ? bias + j : NULL, c + i * ldc + j, ldc, accumulate);
            }
    }
}

void ti_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, const float *bias,
                float *c, int ldc, int accumulate) {
    gemm_dots(m, n, k, a, lda, b, ldb, bias, c, ldc, accumulate);
}

#else  // not x86-64: never available, callers use BLAS.

bool ti_linear_kernel_available(void) { return false; }
void ti_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, const float *bias,
                float *c, int ldc, int accumulate) { (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b;
    (void)ldb; (void)bias; (void)c; (void)ldc; (void)accumulate; }
void ti_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                int accumulate) { (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c;
    (void)ldc; (void)accumulate; }

#endif
