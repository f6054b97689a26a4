/* Should the probe's row buffers ask for transparent huge pages? (issue 5, stop 29)
 *
 * The probe keeps each selected tensor's gradient rows in memory, in fresh pages that it faults in
 * with `madvise(MADV_POPULATE_WRITE)` before writing (`Sources/GradientProbe/RowMemory.swift`).
 * With 4 KB pages that is one fault, one page zeroing and one page-table entry per 4 KB: on the
 * Emerald Rapids host the MoE probe spent ≈ 0.15 s of its 0.2–0.3 s of row time there. This
 * program replays the demo models' row buffers (N = 100, B = 16: 300 rows) and times them three
 * ways, alternating round by round so that the host's changes of speed fall on each:
 *
 *   small      4 KB pages (the probe before stop 29);
 *   per step   `MADV_HUGEPAGE` on each 4 MB step just before it is faulted in (moe only);
 *   whole      `MADV_HUGEPAGE` once on the whole buffer (what the probe does since stop 29).
 *
 * dense: the dense demo model's 28 tensors (2 layers), each a zeroed buffer of 300 rows (fault in,
 *        then zero: `zeroedRows`), then one row copied into each of the 300 places.
 * moe:   the MoE demo model's 128 expert tensors, each with room for 300 rows of which 106 are
 *        appended (the demo MoE's 336 MB of expert rows), faulted in 4 MB ahead (`prefaultAhead`).
 *
 *   gcc -O2 Benchmarks/row_memory_hugepages.c -o /tmp/row_memory_hugepages && /tmp/row_memory_hugepages
 *
 * Prints per case and way the median, minimum and maximum time of a round, and the process's
 * anonymous memory and the part of it in huge pages at the end of the last round (the memory a
 * way costs: a huge page is faulted in whole, up to 2 MB past the room asked for).
 *
 * Those rounds reuse memory the process freed a moment before. A probe runs once, in a fresh
 * process, so the second table (stop 44) times each way's round in a forked child started after a
 * pause of 3 s (longer than the 2 s after which Linux's free page reporting hands freed blocks back
 * to a hypervisor), FRESH times per way, alternating. On the Zen 4 VM of stops 35–44 the two
 * tables disagree: huge pages win the reused rounds and lose the fresh ones by several times,
 * because each fresh huge page is a block the host had taken back and must fault in again.
 * Not part of the Swift package or of CI; results in reports/benchmarks.md. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench_timing.h"

enum { ROWS = 300, MOE_ROWS = 106, ROUNDS = 15, WAYS = 3, FRESH = 5 };
static const char *wayName[WAYS] = {"small", "per step", "whole"};

// A field of /proc/self/smaps_rollup, in kB.
static long rollupKB(const char *field) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) kb = atol(line + strlen(field));
    if (f) fclose(f);
    return kb;
}

// madvise over the whole pages inside [p, p + bytes).
static void advise(void *p, size_t bytes, int advice) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = ((size_t)p + page - 1) / page * page, end = ((size_t)p + bytes) / page * page;
    if (end > start) madvise((void *)start, end - start, advice);
}

// One layer's tensors of the demo models (dense: these; MoE: the four linears' weights and biases
// are each 8 experts).
static const size_t layer[] = {64, 64, 12288, 192, 4096, 64, 64, 64, 16384, 256, 16384, 64, 64, 64};
static const size_t expert[] = {12288, 192, 4096, 64, 16384, 256, 16384, 64};

static double denseRound(int way, long *huge, long *anonymous) {
    float row[16384];
    for (size_t i = 0; i < 16384; i++) row[i] = (float)i;
    float *buffers[28];
    double t0 = now();
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 14; k++) {
            size_t bytes = layer[k] * ROWS * sizeof(float);
            float *b = malloc(bytes);
            if (way == 2) advise(b, bytes, MADV_HUGEPAGE);
            advise(b, bytes, 23);  // MADV_POPULATE_WRITE
            memset(b, 0, bytes);
            for (int r = 0; r < ROWS; r++) memcpy(b + r * layer[k], row, layer[k] * sizeof(float));
            buffers[l * 14 + k] = b;
        }
    double t = now() - t0;
    *huge = rollupKB("AnonHugePages:");
    *anonymous = rollupKB("Anonymous:");
    for (int i = 0; i < 28; i++) free(buffers[i]);
    return t;
}

static double moeRound(int way, long *huge, long *anonymous) {
    float row[16384];
    for (size_t i = 0; i < 16384; i++) row[i] = (float)i;
    float *buffers[128];
    double t0 = now();
    for (int e = 0; e < 128; e++) {
        size_t width = expert[e % 8], capacity = width * ROWS;
        float *b = malloc(capacity * sizeof(float));
        if (way == 2) advise(b, capacity * sizeof(float), MADV_HUGEPAGE);
        size_t populated = 0, count = 0, step = (4 << 20) / sizeof(float);
        for (int r = 0; r < MOE_ROWS; r++) {
            if (count + width > populated) {
                size_t upTo = populated + (step > width ? step : width);
                if (upTo > capacity) upTo = capacity;
                if (way == 1) advise(b + populated, (upTo - populated) * sizeof(float), MADV_HUGEPAGE);
                advise(b + populated, (upTo - populated) * sizeof(float), 23);
                populated = upTo;
            }
            memcpy(b + count, row, width * sizeof(float));
            count += width;
        }
        buffers[e] = b;
    }
    double t = now() - t0;
    *huge = rollupKB("AnonHugePages:");
    *anonymous = rollupKB("Anonymous:");
    for (int i = 0; i < 128; i++) free(buffers[i]);
    return t;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    const char *cases[2] = {"dense (120 MB)", "moe (336 MB)"};
    printf("%-15s %-9s %9s %9s %9s %10s %8s\n", "rows", "pages", "median s", "min s", "max s", "anon MB", "huge MB");
    for (int c = 0; c < 2; c++) {
        double times[WAYS][ROUNDS];
        long huge[WAYS] = {0}, anonymous[WAYS] = {0};
        for (int r = 0; r < ROUNDS; r++)
            for (int w = 0; w < WAYS; w++) {
                if (c == 0 && w == 1) continue;  // one buffer, advised whole: no steps
                times[w][r] = c == 0 ? denseRound(w, &huge[w], &anonymous[w]) : moeRound(w, &huge[w], &anonymous[w]);
            }
        for (int w = 0; w < WAYS; w++) {
            if (c == 0 && w == 1) continue;
            qsort(times[w], ROUNDS, sizeof(double), compare);
            printf("%-15s %-9s %9.4f %9.4f %9.4f %10ld %8ld\n", cases[c], wayName[w], times[w][ROUNDS / 2],
                times[w][0], times[w][ROUNDS - 1], anonymous[w] / 1024, huge[w] / 1024);
        }
    }
    printf("\nfirst round in a fresh process, after a 3 s pause (%d per way, alternating)\n", FRESH);
    printf("%-15s %-9s %9s %9s %9s\n", "rows", "pages", "median s", "min s", "max s");
    for (int c = 0; c < 2; c++) {
        double times[WAYS][FRESH];
        for (int r = 0; r < FRESH; r++)
            for (int w = 0; w < WAYS; w++) {
                if (c == 0 && w == 1) continue;
                sleep(3);
                int pipeEnds[2];
                if (pipe(pipeEnds) != 0) return 1;
                pid_t child = fork();
                if (child == 0) {
                    long h, a;
                    double t = c == 0 ? denseRound(w, &h, &a) : moeRound(w, &h, &a);
                    _exit(write(pipeEnds[1], &t, sizeof t) == sizeof t ? 0 : 1);
                }
                close(pipeEnds[1]);
                if (child < 0 || read(pipeEnds[0], &times[w][r], sizeof(double)) != sizeof(double)) return 1;
                close(pipeEnds[0]);
                waitpid(child, NULL, 0);
            }
        for (int w = 0; w < WAYS; w++) {
            if (c == 0 && w == 1) continue;
            qsort(times[w], FRESH, sizeof(double), compare);
            printf("%-15s %-9s %9.4f %9.4f %9.4f\n", cases[c], wayName[w], times[w][FRESH / 2], times[w][0],
                times[w][FRESH - 1]);
        }
    }
    return 0;
}
