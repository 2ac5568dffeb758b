#include "FuzzDriver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int nimetrics_run_fuzzer(int argc, char **argv, nimetrics_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
