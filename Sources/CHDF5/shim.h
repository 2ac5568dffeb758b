// HDF5 (Debian's libhdf5-dev, serial build), for ITK transform files (.h5).
// The predefined type identifiers (H5T_NATIVE_DOUBLE, ...) are macros that call into the
// library, which Swift cannot import; these inline functions stand in for them.
#include <hdf5.h>

static inline hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline unsigned chdf5_read_only(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_truncate(void) { return H5F_ACC_TRUNC; }
static inline hid_t chdf5_c_string(void) { return H5T_C_S1; }
static inline hid_t chdf5_file_access_default(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_all(void) { return H5S_ALL; }
static inline hid_t chdf5_variable_length(void) { return (hid_t)H5T_VARIABLE; }
static inline size_t chdf5_variable_size(void) { return H5T_VARIABLE; }
/// Silences HDF5's error stack printing (failures are turned into typed errors instead).
static inline void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
