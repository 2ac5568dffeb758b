// libFuzzer's driver, called from Swift's `main`.
//
// SwiftPM on Linux renames an executable's entry point (`<Target>_main`, then
// `--defsym main=...`) so tests can import executables; with `-parse-as-library` there is then
// no `main` at all and the link fails. So each fuzz target keeps a `main.swift` and hands
// control to libFuzzer's documented `LLVMFuzzerRunDriver` (LLVM >= 11), which runs exactly as
// libFuzzer's own `main` would.
#ifndef NIMETRICS_FUZZ_DRIVER_H
#define NIMETRICS_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*nimetrics_fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer with the process's arguments and `callback` as the target.
int nimetrics_run_fuzzer(int argc, char **argv, nimetrics_fuzz_callback callback);
#endif
