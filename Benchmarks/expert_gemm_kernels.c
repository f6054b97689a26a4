// The products `expert_gemm_bench.c` measures beyond the package's own kernels: the package's
// `Sources/CLinearKernel/linear_kernel.c` (a linear's forward and input gradient, unpacked AVX-512,
// used by the model since stop 38) is compiled in whole, and this file adds the weight gradient
// `ti_gemm_tn` and the forward by transposition (`ti_linear_forward`), which the package does not
// use (OpenBLAS computes dW faster; the package's forward is the dot-product kernel). History:
// these kernels were written for token routing's per-expert products (commit f65d796, taken out in
// the next commit; reports/benchmarks.md, "Tried: GEMM kernels of our own for token routing's
// experts"). Not part of the package; built by hand as expert_gemm_bench.c says.
#include "../Sources/CLinearKernel/linear_kernel.c"
#include "expert_gemm_kernels.h"

bool ti_expert_gemm_available(void) { return ti_linear_kernel_available(); }

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

void ti_gemm_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                int accumulate) {
    gemm_bcast(m, n, k, a, 1, lda, b, ldb, NULL, c, ldc, accumulate);
}

// ---- transposition, so that a forward can run as C = A·(Bᵀ) through the broadcast kernel ----

// dst[c, r] = src[r, c] for one 16×16 block: four rounds of shuffles (unpack within 128-bit lanes,
// 4×4 blocks within lanes, then whole lanes across two rounds).
TI_INLINE TI_AVX512 void transpose16(const float *src, long lds, float *dst, long ldd) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + j], lane l: column 4l + j of rows 4g..4g+3.
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        _mm512_storeu_ps(dst + (0 + j) * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
        _mm512_storeu_ps(dst + (4 + j) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
        _mm512_storeu_ps(dst + (8 + j) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
        _mm512_storeu_ps(dst + (12 + j) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
    }
}

static TI_AVX512 void transpose(int rows, int cols, const float *src, long lds, float *dst, long ldd) {
    const int r16 = rows & ~15, c16 = cols & ~15;
    for (int r = 0; r < r16; r += 16)
        for (int c = 0; c < c16; c += 16) transpose16(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    for (int r = 0; r < rows; r++)  // the edges, element by element
        for (int c = r < r16 ? c16 : 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

void ti_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd) {
    transpose(rows, cols, src, lds, dst, ldd);
}

void ti_linear_forward(int m, int n, int k, const float *x, const float *w, const float *bias, float *y,
                       float *scratch) {
    const long ld = n + 16;  // a row stride off a multiple of 4 KiB: the 16 rows of a block land in different sets
    transpose(n, k, w, k, scratch, ld);
    gemm_bcast(m, n, k, x, k, 1, scratch, ld, bias, y, n, 0);
}

#else  // not x86-64: never available.

void ti_gemm_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                int accumulate) { (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c;
    (void)ldc; (void)accumulate; }
void ti_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd) {
    (void)rows; (void)cols; (void)src; (void)lds; (void)dst; (void)ldd; }
void ti_linear_forward(int m, int n, int k, const float *x, const float *w, const float *bias, float *y,
                       float *scratch) { (void)m; (void)n; (void)k; (void)x; (void)w; (void)bias; (void)y; (void)scratch; }

#endif
