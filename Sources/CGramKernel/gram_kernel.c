// The probe's Float64 Gram kernels; see include/gram_kernel.h. Why our own: OpenBLAS picks its
// kernels by CPU model, and on a CPU it does not know (Intel Emerald Rapids with OpenBLAS 0.3.21)
// it falls back to SSE3 ones, where `dsyrk` ran at 7–16 GFLOP/s against 31–62 for these kernels
// (reports/benchmarks.md). Same bits on every path: see the header.
#include "gram_kernel.h"

#include <math.h>
#include <stdint.h>
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

bool ti_gram_pack_row(const float *row, int k, double *panels, int index) {
    double *slot = panels + (long)(index / P) * k * P + index % P;
    uint32_t any = 0;
    for (int c = 0; c < k; c++) {
        uint32_t bits;
        memcpy(&bits, row + c, sizeof bits);  // the bits without breaking strict aliasing
        slot[(long)c * P] = (double)row[c];
        any |= bits & 0x7fffffffu;  // ±0 are zero; the tiniest subnormal is not
    }
    return any != 0;
}

void ti_gram_pad(double *panels, int count, int k) {
    if (count % P == 0) return;
    double *panel = panels + (long)(count / P) * k * P;
    for (int c = 0; c < k; c++)
        for (int r = count % P; r < P; r++) panel[(long)c * P + r] = 0;
}

void ti_gram_pack(const float *rows, int count, int k, double *panels) {
    for (int i = 0; i < count; i++) ti_gram_pack_row(rows + (long)i * k, k, panels, i);
    ti_gram_pad(panels, count, k);
}

#ifdef TI_X86
// Whether any of the k values is not ±0 (the rule of ti_gram_pack_row).
__attribute__((target("avx512f"))) static bool any_nonzero_avx512(const float *row, int k) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    __m512i any = _mm512_setzero_si512();
    int c = 0;
    for (; c + 16 <= k; c += 16) any = _mm512_or_si512(any, _mm512_loadu_si512((const void *)(row + c)));
    if (c < k) any = _mm512_or_si512(any, _mm512_maskz_loadu_epi32((__mmask16)((1u << (k - c)) - 1), row + c));
    return _mm512_test_epi32_mask(any, magnitude) != 0;
}

// Rows r[0..7] (missing rows NULL, read as zeros), columns c0..c0+7 (fewer at the end): converted to
// Double, transposed in registers and stored as the panel's columns. Each row's loaded bits are
// OR-ed into any[j], so a panel's packing also tells which of its rows are all ±0.
__attribute__((target("avx512f"), always_inline)) static inline void pack_8x8_avx512(
    const float *const r[8], int c0, int k, double *panel, __m512i any[8]) {
    const int width = k - c0 < 8 ? k - c0 : 8;
    const __mmask16 mask = (__mmask16)((1u << width) - 1);
    __m512d v[8];
    for (int j = 0; j < 8; j++) {
        const __m512 x = r[j] ? _mm512_maskz_loadu_ps(mask, r[j] + c0) : _mm512_setzero_ps();
        any[j] = _mm512_or_si512(any[j], _mm512_castps_si512(x));
        v[j] = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    }
    // Pairs of rows interleaved, then 128-bit lanes gathered: after the two steps, w[c] holds
    // column c of the eight rows.
    const __m512d t0 = _mm512_unpacklo_pd(v[0], v[1]), t1 = _mm512_unpackhi_pd(v[0], v[1]);
    const __m512d t2 = _mm512_unpacklo_pd(v[2], v[3]), t3 = _mm512_unpackhi_pd(v[2], v[3]);
    const __m512d t4 = _mm512_unpacklo_pd(v[4], v[5]), t5 = _mm512_unpackhi_pd(v[4], v[5]);
    const __m512d t6 = _mm512_unpacklo_pd(v[6], v[7]), t7 = _mm512_unpackhi_pd(v[6], v[7]);
    const __m512d u0 = _mm512_shuffle_f64x2(t0, t2, 0x88), u1 = _mm512_shuffle_f64x2(t0, t2, 0xDD);
    const __m512d u2 = _mm512_shuffle_f64x2(t1, t3, 0x88), u3 = _mm512_shuffle_f64x2(t1, t3, 0xDD);
    const __m512d u4 = _mm512_shuffle_f64x2(t4, t6, 0x88), u5 = _mm512_shuffle_f64x2(t4, t6, 0xDD);
    const __m512d u6 = _mm512_shuffle_f64x2(t5, t7, 0x88), u7 = _mm512_shuffle_f64x2(t5, t7, 0xDD);
    const __m512d w[8] = {
        _mm512_shuffle_f64x2(u0, u4, 0x88), _mm512_shuffle_f64x2(u2, u6, 0x88),
        _mm512_shuffle_f64x2(u1, u5, 0x88), _mm512_shuffle_f64x2(u3, u7, 0x88),
        _mm512_shuffle_f64x2(u0, u4, 0xDD), _mm512_shuffle_f64x2(u2, u6, 0xDD),
        _mm512_shuffle_f64x2(u1, u5, 0xDD), _mm512_shuffle_f64x2(u3, u7, 0xDD),
    };
    for (int c = 0; c < width; c++) _mm512_storeu_pd(panel + (long)(c0 + c) * P, w[c]);
}

// One panel: rows r[0..7] (missing rows NULL), all k columns. Returns a bit per row that is not all
// ±0 (the rule of ti_gram_pack_row); a missing row's bit is 0.
__attribute__((target("avx512f"))) static unsigned pack_panel_avx512(const float *const r[8], int k, double *panel) {
    __m512i any[8];
    for (int j = 0; j < 8; j++) any[j] = _mm512_setzero_si512();
    for (int c0 = 0; c0 < k; c0 += 8) pack_8x8_avx512(r, c0, k, panel, any);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    unsigned nonzero = 0;
    for (int j = 0; j < 8; j++) nonzero |= (_mm512_test_epi32_mask(any[j], magnitude) != 0) << j;
    return nonzero;
}

// Whether any of the k values is not ±0, with AVX2.
__attribute__((target("avx2"))) static bool any_nonzero_avx2(const float *row, int k) {
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    __m256i any = _mm256_setzero_si256();
    int c = 0;
    for (; c + 8 <= k; c += 8) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(row + c)));
    uint32_t tail = 0;
    for (; c < k; c++) {
        uint32_t bits;
        memcpy(&bits, row + c, sizeof bits);
        tail |= bits;
    }
    return !_mm256_testz_si256(any, magnitude) || (tail & 0x7fffffffu) != 0;
}

// Rows r[0..7] (missing rows NULL, read as zeros), columns c0..c0+3 (fewer at the end): converted to
// Double, each half of the eight rows transposed 4 × 4 in registers, and each column's eight values
// stored as two halves of the panel's column. Each row's loaded bits are OR-ed into any[j].
__attribute__((target("avx2"), always_inline)) static inline void pack_8x4_avx2(
    const float *const r[8], int c0, int k, double *panel, __m128i any[8]) {
    const int width = k - c0 < 4 ? k - c0 : 4;
    const __m128i mask = _mm_setr_epi32(width > 0 ? -1 : 0, width > 1 ? -1 : 0, width > 2 ? -1 : 0, width > 3 ? -1 : 0);
    __m256d v[8];
    for (int j = 0; j < 8; j++) {
        const __m128 x = r[j] ? (width == 4 ? _mm_loadu_ps(r[j] + c0) : _mm_maskload_ps(r[j] + c0, mask)) : _mm_setzero_ps();
        any[j] = _mm_or_si128(any[j], _mm_castps_si128(x));
        v[j] = _mm256_cvtps_pd(x);
    }
    for (int half = 0; half < 2; half++) {
        const __m256d *h = v + 4 * half;
        const __m256d t0 = _mm256_unpacklo_pd(h[0], h[1]), t1 = _mm256_unpackhi_pd(h[0], h[1]);
        const __m256d t2 = _mm256_unpacklo_pd(h[2], h[3]), t3 = _mm256_unpackhi_pd(h[2], h[3]);
        const __m256d w[4] = {
            _mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
            _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31),
        };
        for (int c = 0; c < width; c++) _mm256_storeu_pd(panel + (long)(c0 + c) * P + 4 * half, w[c]);
    }
}

// One panel with AVX2, as `pack_panel_avx512`.
__attribute__((target("avx2"))) static unsigned pack_panel_avx2(const float *const r[8], int k, double *panel) {
    __m128i any[8];
    for (int j = 0; j < 8; j++) any[j] = _mm_setzero_si128();
    for (int c0 = 0; c0 < k; c0 += 4) pack_8x4_avx2(r, c0, k, panel, any);
    const __m128i magnitude = _mm_set1_epi32(0x7fffffff);
    unsigned nonzero = 0;
    for (int j = 0; j < 8; j++) nonzero |= !_mm_testz_si128(any[j], magnitude) << j;
    return nonzero;
}
#endif

int ti_gram_pack_rows(
    TIGramPath path, const float *base, long stride, const long *places, int count, int k, double *panels,
    int *kept) {
    if (!ti_gram_path_supported(path)) path = ti_gram_best_path();
    int n = 0;
#ifdef TI_X86
    if (path == TIGramPathAVX512 || path == TIGramPathAVX2) {
        const bool wide = path == TIGramPathAVX512;
        // One pass: every candidate packed in order, its zero test made on the values the packing
        // loads. A dense model's rows are never zero, so this is the whole work; when some row is
        // (an MoE expert's, in a block where it had no gradient), the rows are packed again below
        // without it.
        bool all = true;
        for (int g = 0; g < count && all; g += P) {
            const float *r[8];
            for (int j = 0; j < P; j++) r[j] = g + j < count ? base + places[g + j] * stride : NULL;
            const int rows = count - g < P ? count - g : P;
            double *panel = panels + (long)(g / P) * k * P;
            all = (wide ? pack_panel_avx512(r, k, panel) : pack_panel_avx2(r, k, panel)) == (1u << rows) - 1;
        }
        if (all) {
            for (int i = 0; i < count; i++) kept[i] = i;
            return count;
        }
        for (int i = 0; i < count; i++) {
            const float *row = base + places[i] * stride;
            if (wide ? any_nonzero_avx512(row, k) : any_nonzero_avx2(row, k)) kept[n++] = i;
        }
        for (int g = 0; g < n; g += P) {
            const float *r[8];
            for (int j = 0; j < P; j++) r[j] = g + j < n ? base + places[kept[g + j]] * stride : NULL;
            double *panel = panels + (long)(g / P) * k * P;
            if (wide)
                pack_panel_avx512(r, k, panel);
            else
                pack_panel_avx2(r, k, panel);
        }
        return n;  // the missing rows of the last panel were written as zeros
    }
#endif
    // A zero row is overwritten by the next one.
    for (int i = 0; i < count; i++)
        if (ti_gram_pack_row(base + places[i] * stride, k, panels, n)) kept[n++] = i;
    ti_gram_pad(panels, n, k);
    return n;
}

// ---- Micro-kernels: sums[i][j] = Σ_c a[c·8 + i]·b(c, j), 8 rows of one A panel against the
// columns of two B panels (scalar, AVX2: b(c, j) = b0[c·8 + j] for j < 8, b1[c·8 + j − 8] after) or
// three (AVX-512, whose 32 registers hold 24 accumulators: b2 after b1) ----
// Each sum starts at 0 and takes one fused multiply-add per column, in column order, so how many
// columns a block spans changes nothing in any sum.

enum { R = P, C = 3 * P };  // a row of sums: up to three B panels

static void block_scalar(int k, const double *a, const double *b0, const double *b1, double sums[R][C]) {
    const int cols = b1 ? 2 * P : P;
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < cols; j++) {
            const double *b = j < P ? b0 + j : b1 + (j - P);
            double s = 0;
            for (int c = 0; c < k; c++) s = fma(a[(long)c * P + i], b[(long)c * P], s);
            sums[i][j] = s;
        }
    }
}

#ifdef TI_X86
// Adds the accumulator's columns lo..<hi (of its 4; clamped) into row[0..<4]: masked, so nothing
// outside them is read or written.
__attribute__((target("avx2,fma"), always_inline)) static inline void add_columns_avx2(
    double *row, __m256d sums, int lo, int hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 4 ? 4 : hi;
    if (lo >= hi) return;
    if (lo == 0 && hi == 4) {
        _mm256_storeu_pd(row, _mm256_add_pd(_mm256_loadu_pd(row), sums));
        return;
    }
    const __m256i column = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i mask = _mm256_and_si256(
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), column), _mm256_cmpgt_epi64(column, _mm256_set1_epi64x(lo - 1)));
    _mm256_maskstore_pd(row, mask, _mm256_add_pd(_mm256_maskload_pd(row, mask), sums));
}

// Four rows × one B panel's eight columns: eight accumulators, two loads and four broadcasts a
// column. Adds each sum into its entry of `c` as `block_avx512` does (rows `row..<row + 4` of the
// block, columns `col..<col + 8`; `rows`, `cols`, `diagonal` as there).
__attribute__((target("avx2,fma"))) static void quarter_avx2(
    int k, const double *a, const double *b, double *c, long ldc, int rows, int cols, int diagonal, int row, int col) {
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int c = 0; c < k; c++) {
        const __m256d y0 = _mm256_loadu_pd(b + (long)c * P), y1 = _mm256_loadu_pd(b + (long)c * P + 4);
        const double *ac = a + (long)c * P + row;
        __m256d s = _mm256_broadcast_sd(ac);
        c00 = _mm256_fmadd_pd(s, y0, c00), c01 = _mm256_fmadd_pd(s, y1, c01);
        s = _mm256_broadcast_sd(ac + 1);
        c10 = _mm256_fmadd_pd(s, y0, c10), c11 = _mm256_fmadd_pd(s, y1, c11);
        s = _mm256_broadcast_sd(ac + 2);
        c20 = _mm256_fmadd_pd(s, y0, c20), c21 = _mm256_fmadd_pd(s, y1, c21);
        s = _mm256_broadcast_sd(ac + 3);
        c30 = _mm256_fmadd_pd(s, y0, c30), c31 = _mm256_fmadd_pd(s, y1, c31);
    }
    const __m256d sums[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int t = 0; t < 4 && row + t < rows; t++) {
        double *entry = c + (long)(row + t) * ldc + col;
        const int first = diagonal + row + t - col;
        add_columns_avx2(entry, sums[t][0], first, cols - col);
        add_columns_avx2(entry + 4, sums[t][1], first - 4, cols - col - 4);
    }
}

__attribute__((target("avx2,fma"))) static void block_avx2(
    int k, const double *a, const double *b0, const double *b1, double *c, long ldc, int rows, int cols,
    int diagonal) {
    quarter_avx2(k, a, b0, c, ldc, rows, cols, diagonal, 0, 0);
    quarter_avx2(k, a, b0, c, ldc, rows, cols, diagonal, 4, 0);
    if (b1) {
        quarter_avx2(k, a, b1, c, ldc, rows, cols, diagonal, 0, P);
        quarter_avx2(k, a, b1, c, ldc, rows, cols, diagonal, 4, P);
    }
}

// 8 rows × 24 columns: three column vectors per step, eight broadcasts, twenty-four accumulators,
// three per row, so the sums leave as rows. Against 8 × 16 it loads 11 vectors per 24 multiply-adds
// instead of 10 per 16: 7–12 % faster with both lanes running when the host is slow, 2–4 % when it
// is fast (Benchmarks/gram_block_width.c; reports/benchmarks.md, stop 28). A block at the end of a
// row of blocks has one or two panels: `panels` (a constant at each call below, so each count
// compiles to its own loop) leaves out the work on panels that are not there.
// Adds the accumulator's columns lo..<hi (of its 8; clamped) into row[0..<8]: masked, so nothing
// outside them is read or written.
__attribute__((target("avx512f"), always_inline)) static inline void add_columns_avx512(
    double *row, __m512d sums, int lo, int hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > P ? P : hi;
    if (lo >= hi) return;
    const __mmask8 mask = (__mmask8)((0xFFu >> (P - hi)) & (0xFFu << lo));
    _mm512_mask_storeu_pd(row, mask, _mm512_add_pd(_mm512_maskz_loadu_pd(mask, row), sums));
}

__attribute__((target("avx512f"), always_inline)) static inline void block_avx512_panels(
    int panels, int k, const double *a, const double *b0, const double *b1, const double *b2, double *c, long ldc,
    int rows, int cols, int diagonal) {
    __m512d c0 = _mm512_setzero_pd(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512d d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0;
    __m512d e0 = c0, e1 = c0, e2 = c0, e3 = c0, e4 = c0, e5 = c0, e6 = c0, e7 = c0;
    for (int c = 0; c < k; c++) {
        const __m512d y0 = _mm512_loadu_pd(b0 + (long)c * P);
        const __m512d y1 = panels > 1 ? _mm512_loadu_pd(b1 + (long)c * P) : y0;
        const __m512d y2 = panels > 2 ? _mm512_loadu_pd(b2 + (long)c * P) : y0;
        const double *ac = a + (long)c * P;
        __m512d s;
#define TI_ROW(i)                                                       \
    s = _mm512_set1_pd(ac[i]), c##i = _mm512_fmadd_pd(s, y0, c##i);     \
    if (panels > 1) d##i = _mm512_fmadd_pd(s, y1, d##i);                 \
    if (panels > 2) e##i = _mm512_fmadd_pd(s, y2, e##i);
        TI_ROW(0) TI_ROW(1) TI_ROW(2) TI_ROW(3) TI_ROW(4) TI_ROW(5) TI_ROW(6) TI_ROW(7)
#undef TI_ROW
    }
    // Each sum is added to its entry straight from its register (the entries of row i from column
    // `diagonal + i` on, of the first `cols`; the first `rows` rows): the same one addition per
    // entry as the other paths' add from `sums`, without the round trip through memory.
#define TI_ADD(i)                                                                           \
    if (i < rows) {                                                                         \
        double *row = c + (long)(i) * ldc;                                                  \
        const int first = diagonal + (i);                                                   \
        add_columns_avx512(row, c##i, first, cols);                                         \
        if (panels > 1) add_columns_avx512(row + P, d##i, first - P, cols - P);             \
        if (panels > 2) add_columns_avx512(row + 2 * P, e##i, first - 2 * P, cols - 2 * P); \
    }
    TI_ADD(0) TI_ADD(1) TI_ADD(2) TI_ADD(3) TI_ADD(4) TI_ADD(5) TI_ADD(6) TI_ADD(7)
#undef TI_ADD
}

// Adds the block's sums into `c` (row stride `ldc`): its first `rows` rows, first `cols` columns,
// row i from column `diagonal + i` on. `b1`, `b2`: the second and third panels, NULL past the last
// one (the columns after are not read).
__attribute__((target("avx512f"))) static void block_avx512(
    int k, const double *a, const double *b0, const double *b1, const double *b2, double *c, long ldc, int rows,
    int cols, int diagonal) {
    if (b2) block_avx512_panels(3, k, a, b0, b1, b2, c, ldc, rows, cols, diagonal);
    else if (b1) block_avx512_panels(2, k, a, b0, b1, NULL, c, ldc, rows, cols, diagonal);
    else block_avx512_panels(1, k, a, b0, NULL, NULL, c, ldc, rows, cols, diagonal);
}
#endif

// ---- Driver: 8 rows (one panel of A) against the columns of two or three panels of B at a time ----

static void multiply(
    TIGramPath path, bool upper, int m, int n, int k, const double *a, const double *b, double *c, long ldc) {
    if (!ti_gram_path_supported(path)) path = ti_gram_best_path();  // never an illegal instruction
    const long panel = (long)k * P;
    const int width = (path == TIGramPathAVX512 ? 3 : 2) * P;  // a block's columns
    double sums[R][C];
    for (int i0 = 0; i0 < m; i0 += R) {
        const double *ai = a + (long)(i0 / P) * panel;
        // In the upper triangle the first column panel is the row panel's own.
        for (int j0 = upper ? i0 : 0; j0 < n; j0 += width) {
            const double *b0 = b + (long)(j0 / P) * panel;
            const double *b1 = j0 + P < n ? b0 + panel : NULL;
            const int cols = n - j0 < width ? n - j0 : width;
#ifdef TI_X86
            if (path != TIGramPathScalar) {
                // The vector paths add each sum straight into its entry: the block's first `rows`
                // rows and `cols` columns, row i from column `diagonal + i` on (upper: row i0 + i
                // starts at column i0 + i; else at 0).
                const int rows = m - i0 < R ? m - i0 : R;
                const int diagonal = upper ? i0 - j0 : -C;
                double *block = c + (long)i0 * ldc + j0;
                if (path == TIGramPathAVX512)
                    block_avx512(k, ai, b0, b1, j0 + 2 * P < n ? b0 + 2 * panel : NULL, block, ldc, rows, cols, diagonal);
                else
                    block_avx2(k, ai, b0, b1, block, ldc, rows, cols, diagonal);
                continue;
            }
#endif
            block_scalar(k, ai, b0, b1, sums);
            for (int i = 0; i < R && i0 + i < m; i++) {
                double *row = c + (long)(i0 + i) * ldc + j0;
                const int first = upper && i0 + i > j0 ? i0 + i - j0 : 0;  // upper: column ≥ row
                for (int j = first; j < cols; j++) row[j] += sums[i][j];
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
