// Rows written as whole chunks straight to the file (`H5Dwrite_chunk`), each with the Fletcher-32
// checksum computed here. libhdf5's own filter copies every chunk into a fresh buffer and sums it a
// word at a time: the MoE probe's 75 MB of Grams took 0.12–0.20 s to write through it, 0.09–0.14 s
// this way (reports/benchmarks.md, stop 33).
#include "chdf5.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// 1 when `dataset` is one of ours as `createDataset` makes it, so that its chunks can be written
// directly: chunked by whole rows, Fletcher-32 its only filter, fixed in size (the padding of an
// edge chunk never becomes data), stored in exactly `memory_type` (the bytes in memory are the
// bytes in the file); `chunk_rows` gets the rows per chunk.
static int whole_row_chunks(hid_t dataset, hid_t memory_type, int rank, const hsize_t *dims,
                            hsize_t *chunk_rows) {
    int ok = 0;
    hid_t plist = H5Dget_create_plist(dataset);
    if (plist < 0) return 0;
    hsize_t chunk[H5S_MAX_RANK];
    if (H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_nfilters(plist) == 1 &&
        H5Pget_chunk(plist, rank, chunk) == rank) {
        unsigned flags = 0;
        size_t n_values = 0;
        unsigned config = 0;
        ok = H5Pget_filter2(plist, 0, &flags, &n_values, NULL, 0, NULL, &config) == H5Z_FILTER_FLETCHER32;
        for (int d = 1; d < rank && ok; d++) ok = chunk[d] == dims[d];
        *chunk_rows = chunk[0];
    }
    H5Pclose(plist);
    if (!ok) return 0;
    hid_t stored = H5Dget_type(dataset);
    if (stored < 0) return 0;
    ok = H5Tequal(stored, memory_type) > 0;
    H5Tclose(stored);
    return ok;
}

int chdf5_write_rows_as_chunks(hid_t dataset, hid_t memory_type, hsize_t first_row, hsize_t rows,
                               const void *data) {
    hid_t space = H5Dget_space(dataset);
    if (space < 0) return -1;
    hsize_t dims[H5S_MAX_RANK], max_dims[H5S_MAX_RANK];
    const int rank = H5Sget_simple_extent_dims(space, dims, max_dims);
    H5Sclose(space);
    if (rank < 1) return rank < 0 ? -1 : 0;
    for (int d = 0; d < rank; d++)
        if (max_dims[d] != dims[d]) return 0;
    hsize_t chunk_rows = 0;
    if (!whole_row_chunks(dataset, memory_type, rank, dims, &chunk_rows) || chunk_rows == 0) return 0;
    const hsize_t end = first_row + rows;
    if (rows == 0 || end > dims[0] || first_row % chunk_rows != 0 || (end % chunk_rows != 0 && end != dims[0]))
        return 0;
    // H5Tequal above ties the file's byte order to memory's; the checksum goes little-endian,
    // as libhdf5's filter stores it on every host.
    size_t row_bytes = H5Tget_size(memory_type);
    for (int d = 1; d < rank; d++) row_bytes *= (size_t)dims[d];
    const size_t chunk_bytes = row_bytes * (size_t)chunk_rows;
    uint8_t *buffer = malloc(chunk_bytes + 4);
    if (buffer == NULL) return -1;
    const uint8_t *source = (const uint8_t *)data;
    int status = 1;
    hsize_t offset[H5S_MAX_RANK] = {0};
    for (hsize_t row = first_row; row < end && status == 1; row += chunk_rows) {
        const hsize_t here = end - row < chunk_rows ? end - row : chunk_rows;
        memcpy(buffer, source + (size_t)(row - first_row) * row_bytes, (size_t)here * row_bytes);
        // An edge chunk's rows past the dataset's end: zero, as libhdf5 leaves them (never read).
        memset(buffer + (size_t)here * row_bytes, 0, (size_t)(chunk_rows - here) * row_bytes);
        const uint32_t sum = chdf5_fletcher32(buffer, chunk_bytes);
        for (int b = 0; b < 4; b++) buffer[chunk_bytes + b] = (uint8_t)(sum >> (8 * b));
        offset[0] = row;
        if (H5Dwrite_chunk(dataset, H5P_DEFAULT, 0, offset, chunk_bytes + 4, buffer) < 0) status = -1;
    }
    free(buffer);
    return status;
}
