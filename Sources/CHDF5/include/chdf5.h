// Functions for HDF5's macro constants, which Swift cannot import: most of them expand to a call
// to H5open() followed by a global id, so they must be evaluated in C.
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
/// Turns off HDF5's automatic error-stack printing; our wrapper reports errors itself.
void chdf5_silence_errors(void);
#endif
