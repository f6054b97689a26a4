// sync_file_range(2) is a GNU extension: declared only with _GNU_SOURCE, before any header.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "chdf5.h"
#include <fcntl.h>
#include <string.h>

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
hid_t chdf5_p_default(void) { return H5P_DEFAULT; }
hid_t chdf5_s_all(void) { return H5S_ALL; }
size_t chdf5_t_variable(void) { return H5T_VARIABLE; }

int chdf5_is_standard_number(hid_t type) {
    /* Every number a file of ours or h5py's holds has one of these types. A damaged type message
       can keep a float's size and bit fields but change its exponent bias or normalisation:
       libhdf5 then converts every value to 0 without an error (found by flipping bytes). */
    const hid_t standard[] = {
        H5T_IEEE_F32LE, H5T_IEEE_F32BE, H5T_IEEE_F64LE, H5T_IEEE_F64BE,
        H5T_STD_I8LE, H5T_STD_I8BE, H5T_STD_I16LE, H5T_STD_I16BE, H5T_STD_I32LE, H5T_STD_I32BE,
        H5T_STD_I64LE, H5T_STD_I64BE, H5T_STD_U8LE, H5T_STD_U8BE, H5T_STD_U16LE, H5T_STD_U16BE,
        H5T_STD_U32LE, H5T_STD_U32BE, H5T_STD_U64LE, H5T_STD_U64BE,
    };
    for (size_t k = 0; k < sizeof standard / sizeof standard[0]; k++) {
        if (H5Tequal(type, standard[k]) > 0) return 1;
    }
    return 0;
}

typedef struct {
    char *buffer;
    size_t size;
    int found;
} chdf5_error_context;

/* Walking upward, entry 0 is the innermost (most specific) error. */
static herr_t chdf5_error_walker(unsigned n, const H5E_error2_t *error, void *data) {
    chdf5_error_context *context = (chdf5_error_context *)data;
    if (n == 0 && error != NULL && error->desc != NULL && context->size > 0) {
        strncpy(context->buffer, error->desc, context->size - 1);
        context->buffer[context->size - 1] = '\0';
        context->found = 1;
    }
    return 0;
}

int chdf5_last_error(char *buffer, size_t size) {
    chdf5_error_context context = {buffer, size, 0};
    if (size > 0) buffer[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, chdf5_error_walker, &context);
    return context.found;
}

int chdf5_start_writeback(hid_t file) {
#ifdef __linux__
    hid_t access = H5Fget_access_plist(file);
    if (access < 0) return -1;
    hid_t driver = H5Pget_driver(access);
    H5Pclose(access);
    // Only the default (sec2) driver's handle is a POSIX file descriptor.
    if (driver != H5FD_SEC2) return -1;
    void *handle = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == NULL) return -1;
    return sync_file_range(*(int *)handle, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)file;
    return -1;
#endif
}
