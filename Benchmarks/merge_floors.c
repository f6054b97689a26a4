/* How low can attribute routing's excess over the dense model go on this machine? (issue 4, stop 39)
 *
 * Issue 4 asks attribute routing's forward + backward to stay within 1.15x of the dense model, with
 * the chosen experts merged once per segment. Merging as the model does it implies memory passes the
 * dense model does not make, and on this benchmark's model they stream from memory, not from cache
 * (8 experts x 6 layers x 786 KB = 38 MB of expert weights, and as much again of their gradients,
 * against a 32 MB L3):
 *
 *   - forward: each unit (the images' segment, the class names' segment) reads its two chosen
 *     experts and writes their weighted sum. Timed here into a per-thread scratch that stays in L2,
 *     as if each merge ran just before its GEMM (the model merges every layer up front);
 *   - backward: each unit reads its dW_u (here from that L2 scratch), reads the two chosen experts
 *     again for the gate weights' gradients <dW_u, W_e>, and writes g_j * dW_u into the experts'
 *     gradients (the first write of an expert overwrites, a second unit's adds).
 *
 * Nothing else is timed: no GEMM, no gate, no bias (O floats per unit), no gathers. (A backward that
 * read one expert and took the other gate weight's gradient from the layer's output would save about
 * a fifth of these passes, at a cost in the gate gradient's precision: docs/speed-work.md.) The passes run
 * in two threads with jobs (layer, linear) dealt largest first, as the model's lanes deal them. Each
 * variant is timed ROUNDS times, interleaved, and the median taken:
 *   cold:   64 MB walked before each phase, so both phases read the experts from memory;
 *   warm:   phases back to back, as repeated steps of the same batch run (the benchmark's case);
 *   stream: warm, with the experts' first gradient writes as non-temporal stores (no read for
 *           ownership); tried at stop 39 and not built: no faster here;
 *   fused:  warm, both units of a linear in one walk of 4 KB chunks (stop 46), so an expert both
 *           units chose, and its gradient, come from memory once instead of twice: the floor of
 *           "fusing the merge-backwards of passes that choose the same expert", a lead costed on
 *           paper at about 0.3 ms. Each unit gets a scratch of its own.
 *
 * EXPERTS_READ is the line `make bench-model` prints ("distinct experts read per MoE linear, by
 * layer (attention, FFN)": 2 when both units chose the same pair, 4 when they share none), DENSE_MS
 * the dense step it prints beside it; the program prints the floor against the 15 % allowance.
 *
 *   gcc -O2 -pthread Benchmarks/merge_floors.c -o /tmp/merge_floors && \
 *       /tmp/merge_floors 128 512 4,3,2,2,3,3,3,4,4,3,3,3 8.42
 *
 * Needs AVX-512F. The figures are in reports/benchmarks.md, "Stop 39". Not part of the Swift
 * package or of CI. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_timing.h"

enum { ROUNDS = 31, EXPERTS = 8, MAX_JOBS = 256, FLUSH_BYTES = 64 << 20 };

typedef struct {
    long size;         // the linear's weight: O x I floats
    float *weights;    // its EXPERTS experts' weights, one after another
    float *gradients;  // and their gradients
    int pairs[2][2];   // the two units' chosen experts
} Job;

static Job jobs[MAX_JOBS];
static int jobCount, lane[MAX_JOBS];
static float *scratch[2][2];  // per thread and unit: the merged weight (forward) or dW_u (backward)
static int phase;  // 0 forward, 1 backward, 2 backward with streaming first writes; 3, 4 fused forward, backward
static pthread_barrier_t start, done;
static volatile double sink;

__attribute__((target("avx512f"))) static void merge(float *m, const float *a, const float *b, long n) {
    const __m512 ga = _mm512_set1_ps(0.6f), gb = _mm512_set1_ps(0.4f);
    for (long i = 0; i < n; i += 16)
        _mm512_store_ps(m + i, _mm512_fmadd_ps(ga, _mm512_load_ps(a + i), _mm512_mul_ps(gb, _mm512_load_ps(b + i))));
}

// The high eight floats of v (AVX-512F only: `_mm512_extractf32x8_ps` needs AVX-512DQ).
__attribute__((target("avx512f"))) static inline __m256 high8(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// dA (+)= 0.6 dW, dB (+)= 0.4 dW; returns <dW, A> + <dW, B> in Double, as ExpertMerge.swift does.
__attribute__((target("avx512f"))) static double mergeBackward(
    float *dA, float *dB, const float *dW, const float *a, const float *b, long n, int addA, int addB, int stream) {
    const __m512 ga = _mm512_set1_ps(0.6f), gb = _mm512_set1_ps(0.4f);
    __m512d sa = _mm512_setzero_pd(), sb = _mm512_setzero_pd();
    for (long i = 0; i < n; i += 16) {
        const __m512 d = _mm512_load_ps(dW + i);
        __m512 ya = _mm512_mul_ps(ga, d), yb = _mm512_mul_ps(gb, d);
        if (addA) ya = _mm512_add_ps(ya, _mm512_load_ps(dA + i));
        if (addB) yb = _mm512_add_ps(yb, _mm512_load_ps(dB + i));
        if (stream && !addA) _mm512_stream_ps(dA + i, ya); else _mm512_store_ps(dA + i, ya);
        if (stream && !addB) _mm512_stream_ps(dB + i, yb); else _mm512_store_ps(dB + i, yb);
        const __m512d dl = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
        const __m512d dh = _mm512_cvtps_pd(high8(d));
        sa = _mm512_fmadd_pd(dl, _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_load_ps(a + i))), sa);
        sa = _mm512_fmadd_pd(dh, _mm512_cvtps_pd(high8(_mm512_load_ps(a + i))), sa);
        sb = _mm512_fmadd_pd(dl, _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_load_ps(b + i))), sb);
        sb = _mm512_fmadd_pd(dh, _mm512_cvtps_pd(high8(_mm512_load_ps(b + i))), sb);
    }
    if (stream) _mm_sfence();
    return _mm512_reduce_add_pd(sa) + _mm512_reduce_add_pd(sb);
}

// Unit u's passes over floats [from, from + n) of the job's weights.
static double runUnit(const Job *j, int t, int u, long from, long n, int p) {
    const int a = j->pairs[u][0], b = j->pairs[u][1];
    const float *wa = j->weights + a * j->size + from, *wb = j->weights + b * j->size + from;
    if (p == 0) {
        merge(scratch[t][u] + from, wa, wb, n);
        return 0;
    }
    // The second unit adds to an expert the first one already wrote.
    const int addA = u == 1 && (a == j->pairs[0][0] || a == j->pairs[0][1]);
    const int addB = u == 1 && (b == j->pairs[0][0] || b == j->pairs[0][1]);
    return mergeBackward(j->gradients + a * j->size + from, j->gradients + b * j->size + from, scratch[t][u] + from,
                         wa, wb, n, addA, addB, p == 2);
}

static void runJob(const Job *j, int t) {
    double s = 0;
    if (phase >= 3) {
        enum { CHUNK = 1024 };  // 4 KB: both units' slices of a shared expert stay in L1
        for (long from = 0; from < j->size; from += CHUNK) {
            const long n = j->size - from < CHUNK ? j->size - from : CHUNK;
            for (int u = 0; u < 2; u++) s += runUnit(j, t, u, from, n, phase - 3);
        }
    } else {
        for (int u = 0; u < 2; u++) s += runUnit(j, t, u, 0, j->size, phase);
    }
    sink += s;
}

static void *worker(void *arg) {
    const int t = (int)(long)arg;
    for (;;) {
        pthread_barrier_wait(&start);
        for (int i = 0; i < jobCount; i++)
            if (lane[i] == t) runJob(&jobs[i], t);
        pthread_barrier_wait(&done);
    }
    return NULL;
}

static double timedPhase(int p) {
    phase = p;
    const double t0 = now();
    pthread_barrier_wait(&start);
    for (int i = 0; i < jobCount; i++)
        if (lane[i] == 0) runJob(&jobs[i], 0);
    pthread_barrier_wait(&done);
    return now() - t0;
}

static float *floats(long n, float value) {
    float *p = aligned_alloc(64, (size_t)n * sizeof(float));
    if (!p) exit(1);
    for (long i = 0; i < n; i++) p[i] = value * (float)(i % 7);
    return p;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: merge_floors D F EXPERTS_READ DENSE_MS  (EXPERTS_READ: 2..4 per layer and decision, e.g. 4,3,2,2)\n");
        return 2;
    }
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "merge_floors: this CPU has no AVX-512F\n");
        return 2;
    }
    const long D = atol(argv[1]), F = atol(argv[2]);
    const double denseMs = atof(argv[4]);
    const long sizes[4] = {3 * D * D, D * D, F * D, D * F};  // qkv and out (attention), fc1 and fc2 (FFN)
    if (D <= 0 || F <= 0 || D % 16 || F % 16 || denseMs <= 0) {
        fprintf(stderr, "merge_floors: D and F must be positive multiples of 16, DENSE_MS positive\n");
        return 2;
    }
    double load[2] = {0, 0};
    int decisions = 0;
    for (char *s = strtok(argv[3], ","); s; s = strtok(NULL, ","), decisions++) {
        const int read = atoi(s);
        if (read < 2 || read > 4 || jobCount + 2 > MAX_JOBS) {
            fprintf(stderr, "merge_floors: '%s' in EXPERTS_READ is not 2, 3 or 4 (or too many)\n", s);
            return 2;
        }
        for (int k = 0; k < 2; k++) {
            Job *j = &jobs[jobCount++];
            j->size = sizes[2 * (decisions % 2) + k];
            j->weights = floats(EXPERTS * j->size, 0.1f);
            j->gradients = floats(EXPERTS * j->size, 0.0f);
            // Unit 0 takes experts 0 and 1; unit 1 the same pair (2 read), one of them (3) or 2 and 3 (4).
            j->pairs[0][0] = 0, j->pairs[0][1] = 1;
            j->pairs[1][0] = read == 4 ? 2 : read == 3 ? 1 : 0, j->pairs[1][1] = read == 2 ? 1 : read == 3 ? 2 : 3;
        }
    }
    // Largest first, each to the less loaded thread (the model's `dealLargestFirst`).
    for (int dealt = 0; dealt < jobCount; dealt++) {
        int best = -1;
        for (int i = 0; i < jobCount; i++)
            if (jobs[i].size >= 0 && (best < 0 || jobs[i].size > jobs[best].size)) best = i;
        const int t = load[1] < load[0];
        lane[best] = t;
        load[t] += (double)jobs[best].size;
        jobs[best].size = -jobs[best].size;  // marks it dealt
    }
    for (int i = 0; i < jobCount; i++) jobs[i].size = -jobs[i].size;
    const long largest = D * F > 3 * D * D ? D * F : 3 * D * D;
    for (int t = 0; t < 2; t++)
        for (int u = 0; u < 2; u++) scratch[t][u] = floats(largest, 0.01f);
    char *flush = malloc(FLUSH_BYTES);
    if (!flush) return 1;
    memset(flush, 1, FLUSH_BYTES);
    pthread_barrier_init(&start, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_t helper;
    pthread_create(&helper, NULL, worker, (void *)1L);

    double coldF[ROUNDS], coldB[ROUNDS], warmF[ROUNDS], warmB[ROUNDS], streamF[ROUNDS], streamB[ROUNDS];
    double fusedF[ROUNDS], fusedB[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (long i = 0; i < FLUSH_BYTES; i += 64) flush[i]++;
        coldF[r] = timedPhase(0);
        for (long i = 0; i < FLUSH_BYTES; i += 64) flush[i]++;
        coldB[r] = timedPhase(1);
        warmF[r] = timedPhase(0);
        warmB[r] = timedPhase(1);
        streamF[r] = timedPhase(0);
        streamB[r] = timedPhase(2);
        fusedF[r] = timedPhase(3);
        fusedB[r] = timedPhase(4);
    }
    const double allowance = 0.15 * denseMs;
    printf("merge passes of %d MoE linears over %d decisions (D = %ld, F = %ld, 2 units, top-2, 2 threads), "
           "median of %d rounds (ms):\n", jobCount, decisions, D, F, ROUNDS);
    const char *names[4] = {"cold (experts from memory)", "warm (steps back to back)", "warm, streaming first writes",
                            "warm, both units fused"};
    double *fw[4] = {coldF, warmF, streamF, fusedF}, *bw[4] = {coldB, warmB, streamB, fusedB};
    for (int v = 0; v < 4; v++) {
        const double f = 1e3 * median(fw[v], ROUNDS), b = 1e3 * median(bw[v], ROUNDS);
        printf("  %-30s forward merges %.3f + merge-backward %.3f = %.3f ms = %.1f %% of the dense step %.2f ms "
               "(the 1.15 target allows %.2f ms for everything MoE adds)\n",
               names[v], f, b, f + b, 100 * (f + b) / denseMs, denseMs, allowance);
    }
    return sink == 12345.0;  // keeps the dot products from being optimised away
}
