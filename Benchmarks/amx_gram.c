/* Can AMX's int8 tiles take the Gram past the Float64 peak, as accurately? (issue 5, stop 32)
 *
 * The probe's Gram is Float64 (Float32 breaks the 1e-6 parity with the notebook,
 * `float32_gram_error.py`), and Float64 runs at half Float32's peak, so against AVX-512 `sgemm` the
 * Gram's target (≥ 80 % of `sgemm`) sits past what Float64 multiply-adds can do. This CPU also has
 * AMX, whose int8 tiles multiply-add with exact int32 sums at ~45× the Float64 rate. This program
 * measures an Ozaki-style emulation (Ozaki, Ogita, Oishi 2012; on integer units, Ootomo, Ozaki,
 * Yokota 2024). Each row's chunk of columns is scaled by a power of two (its largest value's
 * exponent) and cut into S int8 digits by rounding: a = 2^e · Σ_s d_s · 2^(−7s), |d_1| ≤ 127,
 * |d_s| ≤ 64 after, and a remainder of at most 2^(e−7S−1). The Gram is
 * Σ_{s+t ≤ S+1} 2^(−7(s+t)) · D_s·D_tᵀ, each product summed exactly in int32 over a chunk, then
 * added up in Float64 and scaled back per row and chunk. A chunk is scaled and sliced just before it
 * is multiplied, so the rows are read from memory once, as by the Float64 kernel.
 *
 * Against the exact Gram (products of Float32 values summed in long double) it prints the largest
 * |G − G_exact| / √(G_aa·G_bb), for the Float64 kernel of `Sources/CGramKernel` and for S = 3…6,
 * on Gaussian rows with log-normal magnitudes (largest |value| ≈ 20–120 × the row's rms; the demo's
 * gradient rows have 8–23), then the seconds of both on the rows of the probe (R rows × K columns,
 * two threads; medians and best of alternating rounds). Real rows, from the committed probe fixture:
 *
 *   python3 -c "import h5py; h5py.File('Tests/InterferenceTests/Fixtures/probe_dense_demo.h5')\
 *       ['parameters/encoder.layers.1.ffn.dense2.weight/gradients'][:].tofile('/tmp/real24.f32')"
 *   /tmp/amx_gram 24 16384 /tmp/real24.f32
 *
 *   gcc -O2 -march=sapphirerapids -ffp-contract=off -ISources/CGramKernel/include \
 *       Benchmarks/amx_gram.c -o /tmp/amx_gram -lpthread -lm && /tmp/amx_gram [R K [rows.f32]]
 *
 * With a third argument the rows are read from that file (R·K little-endian Float32) instead.
 * Needs Linux ≥ 5.16 and a CPU with AMX-INT8. Not part of the Swift package or of CI; results in
 * reports/benchmarks.md. */
#include "../Sources/CGramKernel/gram_kernel.c"

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "bench_timing.h"

#define TILE 16             // rows of a tile
#define KB 64               // int8 columns of a tile row
#define CHUNK 512           // columns sliced and multiplied at a time: a chunk's slices fit in one core's L2,
                            // and int32 sums stay exact (≤ 6 products a level · 127² · 512 < 2³¹)
#define MAX_S 6

typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

static void amx_enable(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) {
        perror("arch_prctl(ARCH_REQ_XCOMP_PERM)");
        exit(1);
    }
}

static void amx_configure(void) {
    TileConfig c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.colsb[i] = 64, c.rows[i] = 16;
    _tile_loadconfig(&c);
}

/* ---- The emulation ---------------------------------------------------------------------- */

typedef struct {
    int S;              // slices
    int rows, padded;   // R, and R rounded up to 32 (2 × 2 tiles)
    long k;             // columns
    const float *a;     // rows, R × k
    double *unscale;    // per row of the current chunk: 2^e (padding rows: 0)
    // One chunk's slices: [s][panel][kblock] tiles of 16 × 64 bytes, as A (row-major) and as B
    // (VNNI: B[kk][n·4 + q] = row n, column 4·kk + q).
    int8_t *sliceA, *sliceB;
    double *gram;       // padded × padded, upper triangle by 32 × 32 blocks
    pthread_barrier_t barrier;
    int threads;
    bool multiply;      // false: only scale and slice (to time that part alone)
} Emulation;

typedef struct {
    Emulation *e;
    int lane;
} Lane;

static inline long tile_offset(const Emulation *e, int s, int panel, int kblock) {
    const int panels = e->padded / TILE, kblocks = CHUNK / KB;
    return (((long)s * panels + panel) * kblocks + kblock) * (TILE * KB);
}

// Cuts rows [r0, r1) of columns [c0, c0 + CHUNK) into the S slices, both layouts.
static void slice_rows(Emulation *e, int r0, int r1, long c0) {
    const long width = e->k - c0 < CHUNK ? e->k - c0 : CHUNK;
    const __m512 f128 = _mm512_set1_ps(128.0f);
    for (int r = r0; r < r1; r++) {
        const int panel = r / TILE, n = r % TILE;
        const float *row = e->a + (long)r * e->k + c0;
        // The chunk's power of two: its largest |value| times 2^−e is under 127.5/128, so that the
        // first digit, rounded, fits in int8.
        float m = 0;
        if (r < e->rows) {
            __m512 m16 = _mm512_setzero_ps();
            long c = 0;
            for (; c + 16 <= width; c += 16) m16 = _mm512_max_ps(m16, _mm512_abs_ps(_mm512_loadu_ps(row + c)));
            m = _mm512_reduce_max_ps(m16);
            for (; c < width; c++) m = fabsf(row[c]) > m ? fabsf(row[c]) : m;
        }
        int ex = 0;
        const float f = frexpf(m, &ex);  // m = f · 2^ex, f ∈ [0.5, 1)
        if (f * 128 >= 127.5f) ex++;
        const __m512 scale = _mm512_set1_ps(m > 0 ? ldexpf(1.0f, -ex) : 0.0f);
        e->unscale[r] = m > 0 ? ldexp(1.0, ex) : 0.0;
        for (int kb = 0; kb < CHUNK / KB; kb++) {
            // The tile row's four vectors go through the digits side by side: each digit depends on
            // the last, so one vector alone would wait on its own chain.
            __m512 v[KB / 16];
            for (int q = 0; q < KB / 16; q++) {
                const long c = (long)kb * KB + q * 16;
                if (r >= e->rows || c >= width) v[q] = _mm512_setzero_ps();
                else if (c + 16 <= width) v[q] = _mm512_mul_ps(_mm512_loadu_ps(row + c), scale);
                else v[q] = _mm512_mul_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << (width - c)) - 1), row + c), scale);
            }
            for (int s = 0; s < e->S; s++) {
                int8_t *ta = e->sliceA + tile_offset(e, s, panel, kb) + n * KB;
                for (int q = 0; q < KB / 16; q++) {
                    // Nearest digit (the default rounding): |d| ≤ 127 for the first (the scale sees
                    // to it), ≤ 64 after; x − d is exact.
                    const __m512 x = _mm512_mul_ps(v[q], f128);
                    const __m512i d = _mm512_cvtps_epi32(x);
                    v[q] = _mm512_sub_ps(x, _mm512_cvtepi32_ps(d));
                    _mm_storeu_si128((__m128i *)(ta + q * 16), _mm512_cvtepi32_epi8(d));
                }
            }
        }
    }
}

// The 16 × 16 transpose of 32-bit values at `in` into `out` (four rounds of in-register shuffles).
static inline void transpose16(const int32_t *in, int32_t *out) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(in + i * 16);
    for (int i = 0; i < 16; i += 2)
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]), r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]), r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88), t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88), t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88), r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    }
    for (int j = 0; j < 16; j++) _mm512_storeu_si512(out + j * 16, r[j]);  // r[j]: column j of the input
}

// B layout (VNNI) of every tile of panels [p0, p1): the 16 × 16 transpose of the A tile read as int32.
static void transpose_tiles(Emulation *e, int p0, int p1) {
    for (int s = 0; s < e->S; s++)
        for (int p = p0; p < p1; p++)
            for (int kb = 0; kb < CHUNK / KB; kb++)
                transpose16((const int32_t *)(e->sliceA + tile_offset(e, s, p, kb)),
                            (int32_t *)(e->sliceB + tile_offset(e, s, p, kb)));
}

// Adds the chunk's products into the 32 × 32 block (I, J) of the Gram (I ≤ J, in units of 32): each
// level's sums into `levels`, then all levels into the Gram at once, scaled back per row and column.
static void block(Emulation *e, int I, int J, int32_t levels[][4 * TILE * TILE]) {
    const int i0 = 2 * I, j0 = 2 * J;
    for (int L = 2; L <= e->S + 1; L++) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int s = 1; s < L; s++) {
            const int t = L - s;
            if (t > e->S || s > e->S) continue;
            for (int kb = 0; kb < CHUNK / KB; kb++) {
                _tile_loadd(4, e->sliceA + tile_offset(e, s - 1, i0, kb), KB);
                _tile_loadd(5, e->sliceA + tile_offset(e, s - 1, i0 + 1, kb), KB);
                _tile_loadd(6, e->sliceB + tile_offset(e, t - 1, j0, kb), KB);
                _tile_loadd(7, e->sliceB + tile_offset(e, t - 1, j0 + 1, kb), KB);
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 4, 7);
                _tile_dpbssd(2, 5, 6);
                _tile_dpbssd(3, 5, 7);
            }
        }
        int32_t *store = levels[L - 2];
        _tile_stored(0, store, 2 * TILE * 4);
        _tile_stored(1, store + TILE, 2 * TILE * 4);
        _tile_stored(2, store + TILE * 2 * TILE, 2 * TILE * 4);
        _tile_stored(3, store + TILE * 2 * TILE + TILE, 2 * TILE * 4);
    }
    const double *columnScale = e->unscale + j0 * TILE;
    for (int i = 0; i < 2 * TILE; i++) {
        double *row = e->gram + (long)(i0 * TILE + i) * e->padded + j0 * TILE;
        const __m512d rowScale = _mm512_set1_pd(e->unscale[i0 * TILE + i]);
        for (int j = 0; j < 2 * TILE; j += 8) {
            __m512d sum = _mm512_setzero_pd();
            for (int L = e->S + 1; L >= 2; L--)  // smallest first
                sum = _mm512_fmadd_pd(
                    _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)(levels[L - 2] + i * 2 * TILE + j))),
                    _mm512_set1_pd(ldexp(1.0, -7 * L)), sum);
            const __m512d scaled = _mm512_mul_pd(_mm512_mul_pd(sum, rowScale), _mm512_loadu_pd(columnScale + j));
            _mm512_storeu_pd(row + j, _mm512_add_pd(scaled, _mm512_loadu_pd(row + j)));
        }
    }
}

static void *lane_main(void *arg) {
    Lane *lane = arg;
    Emulation *e = lane->e;
    amx_configure();
    static _Thread_local int32_t levels[MAX_S][4 * TILE * TILE];
    const int blocks = e->padded / 32;
    const int per = (e->padded / e->threads + TILE - 1) / TILE * TILE;  // whole panels per lane
    for (long c0 = 0; c0 < e->k; c0 += CHUNK) {
        const int r0 = lane->lane * per, r1 = r0 + per < e->padded ? r0 + per : e->padded;
        const int end = lane->lane == e->threads - 1 ? e->padded : r1;
        slice_rows(e, r0, end, c0);
        transpose_tiles(e, r0 / TILE, end / TILE);
        pthread_barrier_wait(&e->barrier);
        int n = 0;
        for (int I = 0; I < blocks; I++)
            for (int J = I; J < blocks; J++, n++)
                if (n % e->threads == lane->lane && e->multiply) block(e, I, J, levels);
        pthread_barrier_wait(&e->barrier);
    }
    _tile_release();
    return NULL;
}

// The emulated Gram of `rows` × `k` at `a` into `out` (rows × rows, full; zeroed here).
static void emulated_gram(int S, int rows, long k, const float *a, double *out, int threads, bool multiply) {
    Emulation e = {
        .S = S, .rows = rows, .padded = (rows + 31) / 32 * 32, .k = k, .a = a, .threads = threads, .multiply = multiply};
    e.unscale = malloc(sizeof(double) * e.padded);
    const long sliceBytes = (long)S * (e.padded / TILE) * (CHUNK / KB) * TILE * KB;
    e.sliceA = aligned_alloc(64, sliceBytes);
    e.sliceB = aligned_alloc(64, sliceBytes);
    e.gram = calloc((long)e.padded * e.padded, sizeof(double));
    pthread_barrier_init(&e.barrier, NULL, threads);
    pthread_t t[8];
    Lane lanes[8];
    for (int i = 0; i < threads; i++) lanes[i] = (Lane){&e, i};
    for (int i = 1; i < threads; i++) pthread_create(&t[i], NULL, lane_main, &lanes[i]);
    lane_main(&lanes[0]);
    for (int i = 1; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < rows; j++) {
            const int a0 = i < j ? i : j, b0 = i < j ? j : i;
            out[(long)i * rows + j] = e.gram[(long)a0 * e.padded + b0];
        }
    pthread_barrier_destroy(&e.barrier);
    free(e.unscale), free(e.sliceA), free(e.sliceB), free(e.gram);
}

/* ---- The Float64 kernel, two lanes as the probe runs it ------------------------------------- */

typedef struct {
    int rows, k;
    const float *a;  // this lane's columns, rows × k
    double *panels, *c;
} F64Lane;

// One lane: packs its columns 384 at a time (as GramAccumulator's tiles) and adds their upper
// triangle into its own partial Gram.
static void *f64_lane(void *arg) {
    F64Lane *l = arg;
    long places[4096];
    int kept[4096];
    for (int r = 0; r < l->rows; r++) places[r] = r;
    for (int c0 = 0; c0 < l->k; c0 += 384) {
        const int width = l->k - c0 < 384 ? l->k - c0 : 384;
        ti_gram_pack_rows(TIGramPathAVX512, l->a + c0, l->k, places, l->rows, width, l->panels, kept);
        ti_gram_syrk(TIGramPathAVX512, l->rows, width, l->panels, l->c, l->rows);
    }
    return NULL;
}

/* ---- Driver ---------------------------------------------------------------------------- */

static double gaussian(unsigned *state) {
    double u = (rand_r(state) + 1.0) / (RAND_MAX + 2.0), v = (rand_r(state) + 1.0) / (RAND_MAX + 2.0);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static double worst_error(int rows, const double *g, const long double *exact) {
    double worst = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < rows; j++) {
            const long double scale = sqrtl(exact[(long)i * rows + i] * exact[(long)j * rows + j]);
            if (scale == 0) continue;
            const double err = (double)(fabsl((long double)g[(long)i * rows + j] - exact[(long)i * rows + j]) / scale);
            if (err > worst) worst = err;
        }
    return worst;
}

static int compare_doubles(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 300;
    const long k = argc > 2 ? atol(argv[2]) : 65536;
    amx_enable();
    float *a = malloc(sizeof(float) * rows * k);
    if (argc > 3) {
        FILE *f = fopen(argv[3], "rb");
        if (!f || fread(a, sizeof(float), (size_t)rows * k, f) != (size_t)rows * k) {
            fprintf(stderr, "%s: cannot read %d × %ld Float32 values\n", argv[3], rows, k);
            return 2;
        }
        fclose(f);
    } else {
        unsigned state = 1;
        for (long i = 0; i < rows * k; i++) a[i] = (float)(gaussian(&state) * exp(1.5 * gaussian(&state)));
    }

    // Accuracy, on at most 64 rows (the exact Gram in long double is slow).
    const int few = rows < 64 ? rows : 64;
    long double *exact = calloc((long)few * few, sizeof(long double));
    for (int i = 0; i < few; i++)
        for (int j = i; j < few; j++) {
            long double sum = 0;
            for (long c = 0; c < k; c++) sum += (long double)((double)a[(long)i * k + c] * a[(long)j * k + c]);
            exact[(long)i * few + j] = exact[(long)j * few + i] = sum;
        }
    double *g = malloc(sizeof(double) * rows * rows);
    {
        double *panels = aligned_alloc(64, sizeof(double) * ((few + 7) / 8) * 8 * k);
        ti_gram_pack(a, few, (int)k, panels);
        double *c = calloc((long)few * few, sizeof(double));
        ti_gram_syrk(TIGramPathAVX512, few, (int)k, panels, c, few);
        for (int i = 0; i < few; i++)
            for (int j = 0; j < i; j++) c[(long)i * few + j] = c[(long)j * few + i];
        printf("%d rows × %ld columns%s\n\n| Gram | max |G − G_exact| / √(G_aa·G_bb) |\n| --- | ---: |\n", rows, k,
               argc > 3 ? " (from file)" : " (Gaussian × log-normal)");
        printf("| Float64 kernel | %.3e |\n", worst_error(few, c, exact));
        free(panels), free(c);
    }
    for (int S = 3; S <= MAX_S; S++) {
        emulated_gram(S, few, k, a, g, 1, true);
        printf("| AMX int8, S = %d (%d products) | %.3e |\n", S, S * (S + 1) / 2, worst_error(few, g, exact));
    }

    // Speed: the Float64 kernel in two lanes (columns split, as GramAccumulator does) against the
    // emulation in two threads, alternating.
    const int rounds = 7;
    double *panels = aligned_alloc(64, sizeof(double) * ((rows + 7) / 8) * 8 * k);
    double f64[rounds], amx5[rounds], amx6[rounds], slicing5[rounds];
    for (int round = 0; round < rounds; round++) {
        // Each lane packs and multiplies its half of the columns into its own partial, as the
        // probe's two lanes do (the copies that split the columns are this harness's, not timed).
        const long half = k / 2;
        float *a0 = malloc(sizeof(float) * rows * half), *a1 = malloc(sizeof(float) * rows * (k - half));
        for (int r = 0; r < rows; r++) {
            memcpy(a0 + (long)r * half, a + (long)r * k, sizeof(float) * half);
            memcpy(a1 + (long)r * (k - half), a + (long)r * k + half, sizeof(float) * (k - half));
        }
        double *c0 = calloc((long)rows * rows, sizeof(double)), *c1 = calloc((long)rows * rows, sizeof(double));
        F64Lane l0 = {rows, (int)half, a0, panels, c0};
        F64Lane l1 = {rows, (int)(k - half), a1, panels + ((rows + 7) / 8) * 8 * 384, c1};
        double t0 = now();
        pthread_t t;
        pthread_create(&t, NULL, f64_lane, &l1);
        f64_lane(&l0);
        pthread_join(t, NULL);
        for (long i = 0; i < (long)rows * rows; i++) c0[i] += c1[i];
        f64[round] = now() - t0;
        free(c0), free(c1), free(a0), free(a1);
        t0 = now();
        emulated_gram(5, rows, k, a, g, 2, true);
        amx5[round] = now() - t0;
        t0 = now();
        emulated_gram(6, rows, k, a, g, 2, true);
        amx6[round] = now() - t0;
        t0 = now();
        emulated_gram(5, rows, k, a, g, 2, false);
        slicing5[round] = now() - t0;
    }
    qsort(f64, rounds, sizeof(double), compare_doubles);
    qsort(amx5, rounds, sizeof(double), compare_doubles);
    qsort(amx6, rounds, sizeof(double), compare_doubles);
    qsort(slicing5, rounds, sizeof(double), compare_doubles);
    const double flop = (double)rows * (rows + 1) * k;  // upper triangle, 2 FLOP per multiply-add
    printf("\n| Gram, two threads | median s | best s | Float64-equivalent GFLOP/s (best) |\n| --- | ---: | ---: | ---: |\n");
    printf("| Float64 kernel (pack + syrk) | %.4f | %.4f | %.1f |\n", f64[rounds / 2], f64[0], flop / f64[0] / 1e9);
    printf("| AMX int8, S = 5 | %.4f | %.4f | %.1f |\n", amx5[rounds / 2], amx5[0], flop / amx5[0] / 1e9);
    printf("| AMX int8, S = 6 | %.4f | %.4f | %.1f |\n", amx6[rounds / 2], amx6[0], flop / amx6[0] / 1e9);
    printf("| of which scaling and slicing alone, S = 5 | %.4f | %.4f | – |\n", slicing5[rounds / 2], slicing5[0]);
    // Each 2 × 2 block of tiles takes 4 tile products per slice pair and 64 columns, each at most
    // one per 16 cycles on a core (measured on this host: 3.8 TOPS per core in registers).
    const double blocks = (double)((rows + 31) / 32) * ((rows + 31) / 32 + 1) / 2;
    for (int S = 5; S <= 6; S++)
        printf("| AMX's own floor, S = %d: tile products at 16 cycles, two cores at 2.1 GHz | – | %.4f | – |\n", S,
               blocks * 4 * (S * (S + 1) / 2) * ((k + 63) / 64) * 16 / 2 / 2.1e9);
    return 0;
}
