// HDF5's Fletcher-32 checksum, the same 32 bits as libhdf5's own `H5_checksum_fletcher32`
// (the filter `H5Pset_fletcher32` adds), computed a block at a time instead of a word at a time.
//
// libhdf5 reads the data as big-endian 16-bit words w_0, w_1, … and runs
//     sum1 += w_i;  sum2 += sum1                      (uint32, wrapping)
// folding both sums (x → (x & 0xffff) + (x >> 16)) after every 360 words, after an odd final
// byte (added as its own word, high byte first) and once more at the end. Over one block of L
// words, with sum1 and sum2 as they stood before it, that loop adds
//     S = Σ w_i                to sum1, and
//     L·sum1 + T, T = Σ (L − i)·w_i    to sum2,
// so the block's S and T, exact in 64 bits and then reduced modulo 2^32 where libhdf5's uint32
// wraps, give the same sums and the same folds. The AVX2 path sums the block's words in lanes.
#include "chdf5.h"
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { block_words = 360 };  // libhdf5 folds after every 360 words

static void block_portable(const uint8_t *p, size_t L, uint64_t *S, uint64_t *T) {
    uint64_t s = 0, t = 0;
    for (size_t i = 0; i < L; i++) {
        uint64_t w = ((uint64_t)p[2 * i] << 8) | p[2 * i + 1];
        s += w;
        t += (L - i) * w;
    }
    *S = s;
    *T = t;
}

#if defined(__x86_64__)
// Lane k of a and b holds word k of each 16-word vector: a_k = Σ_j w_jk, and since the vector
// j adds a to b before adding its words, b_k = Σ_j (V − 1 − j)·w_jk. Word i = 16j + k weighs
// L − 16j − k. Lane sums stay below 2^32: a ≤ 22 · 65535, b ≤ 231 · 65535.
__attribute__((target("avx2")))
static void block_avx2(const uint8_t *p, size_t L, uint64_t *S, uint64_t *T) {
    const __m256i swap = _mm256_setr_epi8(
        1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14,
        1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    const size_t V = L / 16;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
    for (size_t j = 0; j < V; j++) {
        __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(p + 32 * j)), swap);
        b0 = _mm256_add_epi32(b0, a0);
        b1 = _mm256_add_epi32(b1, a1);
        a0 = _mm256_add_epi32(a0, _mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)));
        a1 = _mm256_add_epi32(a1, _mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)));
    }
    uint32_t a[16], b[16];
    _mm256_storeu_si256((__m256i *)a, a0);
    _mm256_storeu_si256((__m256i *)(a + 8), a1);
    _mm256_storeu_si256((__m256i *)b, b0);
    _mm256_storeu_si256((__m256i *)(b + 8), b1);
    uint64_t s = 0, t = 0;
    for (size_t k = 0; k < 16; k++) {
        const uint64_t jw = (V == 0 ? 0 : (uint64_t)(V - 1) * a[k]) - b[k];  // Σ_j j·w_jk
        s += a[k];
        t += (uint64_t)(L - k) * a[k] - 16 * jw;
    }
    uint64_t s_tail, t_tail;
    block_portable(p + 32 * V, L - 16 * V, &s_tail, &t_tail);
    *S = s + s_tail;
    *T = t + t_tail;
}
#endif

typedef void (*block_sums)(const uint8_t *, size_t, uint64_t *, uint64_t *);

static uint32_t fold(uint32_t x) { return (x & 0xffff) + (x >> 16); }

static uint32_t fletcher32_with(block_sums block, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    size_t words = length / 2;
    uint32_t sum1 = 0, sum2 = 0;
    while (words > 0) {
        const size_t L = words > block_words ? block_words : words;
        uint64_t S, T;
        block(p, L, &S, &T);
        const uint32_t before = sum1;
        sum1 = fold(sum1 + (uint32_t)S);
        sum2 = fold(sum2 + (uint32_t)((uint64_t)L * before + T));
        p += 2 * L;
        words -= L;
    }
    if (length % 2) {
        sum1 += (uint32_t)*p << 8;
        sum2 += sum1;
        sum1 = fold(sum1);
        sum2 = fold(sum2);
    }
    return (fold(sum2) << 16) | fold(sum1);
}

uint32_t chdf5_fletcher32_portable(const void *data, size_t length) {
    return fletcher32_with(block_portable, data, length);
}

int chdf5_fletcher32_has_avx2(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

uint32_t chdf5_fletcher32_avx2(const void *data, size_t length) {
#if defined(__x86_64__)
    if (chdf5_fletcher32_has_avx2()) return fletcher32_with(block_avx2, data, length);
#endif
    return chdf5_fletcher32_portable(data, length);
}

uint32_t chdf5_fletcher32(const void *data, size_t length) {
    return chdf5_fletcher32_avx2(data, length);
}
