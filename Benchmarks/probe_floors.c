/* How low can the probe's time outside forward and backward go on this machine? (issue 5, stop 31)
 *
 * Issue 5 asks the probe to spend ≤ 10 % of its time outside forward and backward. Whatever the code,
 * three pieces of that work have a floor set by the machine, not by us:
 *
 *   - the Gram: its Float64 multiply-adds (Float32 breaks the 1e-6 parity with the notebook,
 *     `float32_gram_error.py`) at the two cores' Float64 peak (`fma_peak.c`), given on the command
 *     line;
 *   - the rows: every row must be held until the Gram is taken (each pair of rows meets), so the
 *     rows' memory is made once (fresh pages, faulted in the probe's way: small-page advice since
 *     stop 44, huge-page advice before it with PAGES=huge in the environment, then
 *     MADV_POPULATE_WRITE) and written once (timed here as a memset, which reads nothing);
 *   - the file: its bytes written into the page cache (write(2) only; the fsync is shown apart, the
 *     probe pays it too when it closes the file).
 *
 * Each is timed ROUNDS times and the median taken; the program prints the sum beside the gradients'
 * seconds the probe printed, as the share of the wall time that no implementation can go under here.
 * The first round's rows are printed apart: the medians are memory this process has touched and
 * freed before, while a probe's rows are its first touch, which some VMs make much slower (stop 36).
 *
 *   gcc -O2 Benchmarks/probe_floors.c -o /tmp/probe_floors && \
 *       /tmp/probe_floors ROWS_MB FILE_MB GRAM_GFLOP PEAK_GFLOPS GRADIENT_SECONDS [DIR]
 *
 * The figures for the demo checkpoints (N = 100, B = 16) and where they come from are in
 * reports/benchmarks.md, "Stop 31". Not part of the Swift package or of CI. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "bench_timing.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { ROUNDS = 7 };

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: probe_floors ROWS_MB FILE_MB GRAM_GFLOP PEAK_GFLOPS GRADIENT_SECONDS [DIR]\n");
        return 2;
    }
    const size_t rowBytes = (size_t)(atof(argv[1]) * (1 << 20)), fileBytes = (size_t)(atof(argv[2]) * (1 << 20));
    const double gram = atof(argv[3]) / atof(argv[4]), gradients = atof(argv[5]);
    const char *pages = getenv("PAGES");
    const int huge = pages && !strcmp(pages, "huge");
    char path[4096];
    snprintf(path, sizeof path, "%s/.probe_floors.tmp", argc > 6 ? argv[6] : ".");
    char *source = malloc(fileBytes);
    if (!source) return 1;
    memset(source, 1, fileBytes);
    double faultIn[ROUNDS], fill[ROUNDS], write_[ROUNDS], sync[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        const double t0 = now();
        char *rows = mmap(NULL, rowBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (rows == MAP_FAILED) return 1;
        madvise(rows, rowBytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        madvise(rows, rowBytes, MADV_POPULATE_WRITE);
        const double t1 = now();
        memset(rows, 2, rowBytes);
        const double t2 = now();
        munmap(rows, rowBytes);
        const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        const double t3 = now();
        for (size_t done = 0; done < fileBytes;) {
            const ssize_t n = write(fd, source + done, fileBytes - done);
            if (n <= 0) return 1;
            done += (size_t)n;
        }
        const double t4 = now();
        fsync(fd);
        const double t5 = now();
        close(fd);
        unlink(path);
        faultIn[r] = t1 - t0, fill[r] = t2 - t1, write_[r] = t4 - t3, sync[r] = t5 - t4;
    }
    // Round 0 is the process's first touch of that much memory: on a VM whose host takes freed
    // guest memory back (stop 36's Zen 4 guest), it costs what a probe pays in a fresh process.
    const double firstTouch = faultIn[0] + fill[0];
    const double rows = median(faultIn, ROUNDS) + median(fill, ROUNDS), file = median(write_, ROUNDS);
    const double floor = gram + rows + file;
    printf("rows on %s pages\n", huge ? "huge" : "small");
    printf("floors, median of %d rounds (s): Gram %.3f (%s GFLOP at %s GFLOP/s), rows %.3f (%s MB: fault-in %.3f, "
           "one write %.3f), file %.3f (%s MB written; fsync %.3f more)\n",
           ROUNDS, gram, argv[3], argv[4], rows, argv[1], median(faultIn, ROUNDS), median(fill, ROUNDS), file, argv[2], median(sync, ROUNDS));
    printf("outside forward and backward: at least %.3f s beside %.2f s of gradients = %.1f %% of the wall time "
           "(%.1f %% with the fsync)\n",
           floor, gradients, 100 * floor / (floor + gradients),
           100 * (floor + median(sync, ROUNDS)) / (floor + median(sync, ROUNDS) + gradients));
    const double cold = gram + firstTouch + file;
    printf("with the rows' memory as this process first touched it (round 0: %.3f s): at least %.3f s = %.1f %%\n",
           firstTouch, cold, 100 * cold / (cold + gradients));
    return 0;
}
