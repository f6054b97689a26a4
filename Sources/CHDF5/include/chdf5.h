// Functions for HDF5's macro constants, which Swift cannot import: most of them expand to a call
// to H5open() followed by a global id, so they must be evaluated in C. Also the few helpers around
// an HDF5 file that need C (error-stack walking; sync_file_range, which Swift's Glibc lacks).
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H
#include <hdf5.h>

hid_t chdf5_native_float(void);
hid_t chdf5_native_double(void);
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
#endif
