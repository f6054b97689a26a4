#include "chdf5.h"

hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t chdf5_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t chdf5_native_int32(void) { return H5T_NATIVE_INT32; }
hid_t chdf5_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t chdf5_c_s1(void) { return H5T_C_S1; }
hid_t chdf5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t chdf5_p_file_access(void) { return H5P_FILE_ACCESS; }
hid_t chdf5_p_link_create(void) { return H5P_LINK_CREATE; }
unsigned chdf5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned chdf5_f_acc_rdwr(void) { return H5F_ACC_RDWR; }
unsigned chdf5_f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned chdf5_f_acc_excl(void) { return H5F_ACC_EXCL; }
hsize_t chdf5_s_unlimited(void) { return H5S_UNLIMITED; }
void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
