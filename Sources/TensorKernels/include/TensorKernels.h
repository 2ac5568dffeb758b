// Vectorised least-squares fits of the diffusion tensor, for blocks of voxels.
//
// An implementation detail of the Diffusion module (which documents the model and owns the
// design); nothing here is public API of nimetrics.
#ifndef NIMETRICS_TENSOR_KERNELS_H
#define NIMETRICS_TENSOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// What the kernel reads of a tensor model, in flat row layouts (see TensorModel.swift).
typedef struct nm_tensor_design {
    /// Number of volumes N.
    int32_t volume_count;
    /// WLS passes; 0 fits OLS only.
    int32_t passes;
    /// Signals below this are raised to it before the log (NaN stays NaN).
    double minimum_signal;
    /// Row i of the design matrix X at rows[8 i] (7 used).
    const double *rows;
    /// Column i of the OLS pseudo-inverse (XᵀX)⁻¹Xᵀ at pinv[8 i] (7 used).
    const double *pinv;
    /// Packed upper triangle of x_i x_iᵀ at outer[28 i], row-major.
    const double *outer;
    /// For int16 signals, nil or the log signal of every stored value s at log_table[s + 32768]
    /// (nm_tensor_log_table of this minimum signal): the fit then looks logarithms up.
    const double *log_table;
} nm_tensor_design;

/// Entries of a log table: one per 16-bit integer.
#define NM_TENSOR_LOG_TABLE_COUNT 65536

/// Fills `table` (NM_TENSOR_LOG_TABLE_COUNT doubles) with ln max(s, minimum_signal) for
/// s = -32768 ... 32767, computed as nm_tensor_fit_int16 computes each sample's logarithm, so
/// a fit that looks them up gives the same bits as one that computes them.
void nm_tensor_log_table(double minimum_signal, double *table);

/// Bytes of scratch `nm_tensor_fit_*` needs (64-byte aligned) for a design of N volumes.
size_t nm_tensor_scratch_bytes(int32_t volume_count);

/// Fits voxels `voxels[0..<count]` of a volume-major signal (`signal[v * volume_stride + voxel]`)
/// and writes, per voxel j: the seven parameters β (b scaled as in the design) at beta[7 j],
/// the unweighted sum of squared log-signal residuals at sum_squares[j], and ok[j] = 1 when
/// every step gave finite numbers and positive-definite normal equations (0 otherwise, in
/// which case the other outputs of j are unspecified).
void nm_tensor_fit_float(const nm_tensor_design *design, const float *signal, ptrdiff_t volume_stride,
                         const ptrdiff_t *voxels, ptrdiff_t count, void *scratch,
                         double *beta, double *sum_squares, uint8_t *ok);

/// As nm_tensor_fit_float, for a signal stored as 16-bit integers.
void nm_tensor_fit_int16(const nm_tensor_design *design, const int16_t *signal, ptrdiff_t volume_stride,
                         const ptrdiff_t *voxels, ptrdiff_t count, void *scratch,
                         double *beta, double *sum_squares, uint8_t *ok);

#endif
