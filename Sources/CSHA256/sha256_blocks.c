#include "sha256_blocks.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

bool ti_sha256_hardware_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool sha = b & (1u << 29);
    return ssse3 && sse41 && sha;
}

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// `sha256rnds2` keeps the working variables as two registers, {A, B, E, F} and {C, D, G, H}, the
// first named in the highest lane; `sha256msg1` and `sha256msg2` extend the message schedule four
// words at a time.
__attribute__((target("sha,sse4.1,ssse3")))
void ti_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks) {
    // The message is big-endian: reverse the bytes of each 32-bit word.
    const __m128i swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    const __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);  // lanes A B C D
    const __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);  // lanes E F G H
    const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);                // lanes B A D C
    const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);                // lanes H G F E
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);                     // lanes F E B A
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);                  // lanes H G D C
    for (size_t block = 0; block < blocks; block++, data += 64) {
        const __m128i abef0 = abef, cdgh0 = cdgh;
        __m128i w[4];  // w[n % 4]: schedule words 4n … 4n + 3
        for (int n = 0; n < 16; n++) {
            if (n < 4) {
                w[n] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * n)), swap);
            } else {
                // W_t = σ1(W_{t−2}) + W_{t−7} + σ0(W_{t−15}) + W_{t−16}: msg1 adds σ0 to the words
                // 16 back, alignr brings the words 7 back, msg2 adds σ1 of the words 2 back.
                __m128i x = _mm_sha256msg1_epu32(w[n & 3], w[(n + 1) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(w[(n + 3) & 3], w[(n + 2) & 3], 4));
                w[n & 3] = _mm_sha256msg2_epu32(x, w[(n + 3) & 3]);
            }
            __m128i wk = _mm_add_epi32(w[n & 3], _mm_loadu_si128((const __m128i *)&round_constants[4 * n]));
            // Two rounds give the new {A, B, E, F}; the old one is the new {C, D, G, H}. So the
            // registers trade roles for two rounds and are back in place after the next two.
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            wk = _mm_shuffle_epi32(wk, 0x0E);  // the upper two words' sums, for rounds 4n+2, 4n+3
            abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);                  // lanes A B E F
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);                  // lanes G H C D
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));  // lanes A B C D
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));     // lanes E F G H
}

#else

bool ti_sha256_hardware_available(void) { return false; }
void ti_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks) {
    (void)state, (void)data, (void)blocks;
}

#endif
