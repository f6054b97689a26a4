// Functions for HDF5's macro constants, which Swift cannot import: most of them expand to a call
// to H5open() followed by a global id, so they must be evaluated in C. Also the few helpers around
// an HDF5 file that need C (error-stack walking; sync_file_range, which Swift's Glibc lacks; rows
// written as checksummed chunks).
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H
#include <hdf5.h>
#include <stdint.h>

hid_t chdf5_native_float(void);
hid_t chdf5_native_double(void);
/* 1 when `type` is an IEEE float (32 or 64 bits) or a standard integer (8–64 bits, signed or not),
   either byte order; 0 otherwise. */
int chdf5_is_standard_number(hid_t type);
hid_t chdf5_native_int64(void);
hid_t chdf5_native_int32(void);
hid_t chdf5_native_uint8(void);
hid_t chdf5_c_s1(void);
hid_t chdf5_p_dataset_create(void);
hid_t chdf5_p_file_access(void);
hid_t chdf5_p_link_create(void);
unsigned chdf5_f_acc_rdonly(void);
unsigned chdf5_f_acc_rdwr(void);
unsigned chdf5_f_acc_trunc(void);
unsigned chdf5_f_acc_excl(void);
hsize_t chdf5_s_unlimited(void);
hid_t chdf5_p_default(void);
hid_t chdf5_s_all(void);
/// H5T_VARIABLE: the size that makes a string type variable-length.
size_t chdf5_t_variable(void);
/// Turns off HDF5's automatic error-stack printing; our wrapper reports errors itself.
void chdf5_silence_errors(void);
/// Copies the most specific message of the current thread's HDF5 error stack into `buffer`
/// (NUL-terminated, truncated to `size`); returns 1 if there was one, 0 otherwise.
int chdf5_last_error(char *buffer, size_t size);
/// Asks Linux to start writing the file's dirty pages to disk without waiting for them
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on the whole file): 0 when asked, −1 when it cannot
/// be (another OS, a driver other than the default sec2, a failing call).
int chdf5_start_writeback(hid_t file);

/// HDF5's Fletcher-32 checksum of `length` bytes: the same 32 bits as libhdf5's filter computes
/// (fletcher32.c). `_portable` and `_avx2` are its two paths, for tests; `_avx2` runs the portable
/// path on a CPU without AVX2 (`chdf5_fletcher32_has_avx2` says which).
uint32_t chdf5_fletcher32(const void *data, size_t length);
uint32_t chdf5_fletcher32_portable(const void *data, size_t length);
uint32_t chdf5_fletcher32_avx2(const void *data, size_t length);
int chdf5_fletcher32_has_avx2(void);
/// Writes `rows` whole rows from `first_row` of `dataset` as whole chunks, checksummed here, with
/// `H5Dwrite_chunk` (direct_chunks.c). 1: written; 0: not written, because the dataset or the rows
/// do not fit that path (write them through `H5Dwrite`); −1: HDF5 failed.
int chdf5_write_rows_as_chunks(hid_t dataset, hid_t memory_type, hsize_t first_row, hsize_t rows,
                               const void *data);
#endif
