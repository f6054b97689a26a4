/* Writing the probe's Grams: libhdf5's Fletcher-32 filter against whole chunks written directly
 * with our own checksum (stop 33; `Sources/CHDF5/direct_chunks.c`, `fletcher32.c`).
 *
 * The MoE probe writes 160 Grams of 300 × 300 Float64 (60 in one 300-row chunk, 100 in 8-row
 * chunks so that all-zero chunks can stay unwritten, `ProbeFile.writeGram`). This writes COUNT such
 * Grams into a fresh file both ways, alternated, ROUNDS times, and prints each time:
 *   - "filter": `H5Dwrite` through libhdf5's Fletcher-32 filter (a word at a time, every chunk
 *     copied into a fresh buffer), as Storage did before stop 33;
 *   - "direct": `chdf5_write_rows_as_chunks`, the package's path;
 * then the two checksum functions alone over the same bytes.
 *
 *   gcc -O2 -ISources/CHDF5/include Benchmarks/hdf5_gram_writes.c Sources/CHDF5/direct_chunks.c \
 *       Sources/CHDF5/fletcher32.c $(pkg-config --cflags --libs hdf5) -o /tmp/hdf5_gram_writes && \
 *       /tmp/hdf5_gram_writes [CHUNK_ROWS [COUNT [ROUNDS [DIR]]]]
 */
#include "chdf5.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bench_timing.h"

uint32_t H5_checksum_fletcher32(const void *data, size_t length);  // exported by libhdf5, not public

enum { n = 300 };

/* Seconds to write `count` Grams (and close the file) one way or the other. */
static double write_grams(const char *path, const double *gram, int chunk_rows, int count, int direct) {
    const double start = now();
    hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(access, H5F_LIBVER_V110, H5F_LIBVER_V110);  // the 1.10 format, as Storage writes
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, access);
    H5Pclose(access);
    if (file < 0) { fprintf(stderr, "cannot create %s\n", path); exit(2); }
    for (int k = 0; k < count; k++) {
        char name[32];
        snprintf(name, sizeof name, "/g%d", k);
        hsize_t dims[2] = {n, n}, chunk[2] = {(hsize_t)chunk_rows, n};
        hid_t space = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 2, chunk);
        H5Pset_fletcher32(dcpl);
        hid_t dataset = H5Dcreate2(file, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        const int ok = direct ? chdf5_write_rows_as_chunks(dataset, H5T_NATIVE_DOUBLE, 0, n, gram) == 1
                              : H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, gram) >= 0;
        if (!ok) { fprintf(stderr, "write failed (%s)\n", direct ? "direct" : "filter"); exit(1); }
        H5Dclose(dataset);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Fclose(file);
    return now() - start;
}

int main(int argc, char **argv) {
    const int chunk_rows = argc > 1 ? atoi(argv[1]) : n;
    const int count = argc > 2 ? atoi(argv[2]) : 160;
    const int rounds = argc > 3 ? atoi(argv[3]) : 5;
    const char *dir = argc > 4 ? argv[4] : "/tmp";
    if (chunk_rows < 1 || chunk_rows > n || count < 1 || rounds < 1) {
        fprintf(stderr, "usage: %s [CHUNK_ROWS 1-%d [COUNT [ROUNDS [DIR]]]]\n", argv[0], n);
        return 2;
    }
    double *gram = malloc(sizeof(double) * n * n);
    srand48(33);
    for (int i = 0; i < n * n; i++) gram[i] = drand48() - 0.5;
    char path[4096];
    snprintf(path, sizeof path, "%s/hdf5_gram_writes.h5", dir);
    printf("%d Grams of %d x %d Float64 (%.1f MB), %d-row chunks\n", count, n, n, count * n * n * 8e-6, chunk_rows);
    for (int r = 0; r < rounds; r++) {
        const double filter = write_grams(path, gram, chunk_rows, count, 0);
        const double direct = write_grams(path, gram, chunk_rows, count, 1);
        printf("round %d: filter %.3f s, direct %.3f s\n", r + 1, filter, direct);
    }
    const size_t bytes = (size_t)n * n * 8;
    uint32_t sink = 0;
    double t0 = now();
    for (int k = 0; k < count; k++) sink += H5_checksum_fletcher32(gram, bytes);
    double t1 = now();
    for (int k = 0; k < count; k++) sink += chdf5_fletcher32(gram, bytes);
    double t2 = now();
    printf("checksums alone: libhdf5's %.3f s, ours %.3f s (AVX2: %s) [%u]\n", t1 - t0, t2 - t1,
           chdf5_fletcher32_has_avx2() ? "yes" : "no", sink);
    remove(path);
    free(gram);
    return 0;
}
