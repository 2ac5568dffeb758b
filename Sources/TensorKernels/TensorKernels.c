// Weighted least-squares fits of the diffusion tensor, eight voxels at a time.
//
// The model (Basser, Mattiello & LeBihan 1994, Biophys J 66:259):
//     ln S_i = x_i · β,  x_i = (-b gx², -2b gx gy, -2b gx gz, -b gy², -2b gy gz, -b gz², 1)
// OLS: β = (XᵀX)⁻¹Xᵀ y, y_i = ln max(S_i, minimum signal).
// WLS: each pass solves (Xᵀ W X) β = Xᵀ W y with w_i = exp(2 x_i · β) from the previous pass
// (Salvador et al. 2005, Hum Brain Mapp 24:144; Veraart et al. 2013, NeuroImage 81:335;
// DIPY's wls_fit_tensor; MRtrix3 dwi2tensor -iter). The factor exp(2 β7) common to all
// volumes is left out of the weights, so they stay near 1 whatever S0 is.
//
// Why C: the fit is the largest share of `nimetrics dti`, and it is arithmetic on eight
// independent voxels in lock-step, which wants the vector registers of the machine it runs
// on. Swift compiles for the x86-64 baseline (SSE2, two doubles) and has no per-function
// target attribute; here each entry point is compiled for AVX-512, AVX2+FMA and the baseline
// and the loader picks one for the CPU (target_clones). Logarithms and weights are computed
// in double precision, with the kernel's own log and exp (below), not the C library's
// (docs/benchmarks.md).
//
// Every voxel is computed in a lane of its own with the same instruction sequence, so its
// result does not depend on which block or lane it falls in: fits are bit-identical whatever
// the number of threads, on one machine. The versions for different instruction sets may
// round differently (FMA contraction), so results are not bit-identical across CPUs.

#include "TensorKernels.h"

#include <string.h>

// Vectors of eight doubles passed between the always-inlined helpers below: never across an
// ABI boundary, so the warning about their calling convention without AVX-512 does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

#define LANES 8

typedef double vd __attribute__((vector_size(LANES * sizeof(double))));
typedef int64_t vl __attribute__((vector_size(LANES * sizeof(int64_t))));

// NIMETRICS_KERNEL_LEVEL builds one version alone (1: the baseline, 3: AVX2+FMA, 4: AVX-512),
// so each can be tested on a machine that would pick another:
// `swift test -Xcc -DNIMETRICS_KERNEL_LEVEL=3`.
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(NIMETRICS_KERNEL_LEVEL) && NIMETRICS_KERNEL_LEVEL == 4
#define NM_MULTIVERSION __attribute__((target("arch=x86-64-v4")))
#elif defined(NIMETRICS_KERNEL_LEVEL) && NIMETRICS_KERNEL_LEVEL == 3
#define NM_MULTIVERSION __attribute__((target("arch=x86-64-v3")))
#elif defined(__x86_64__) && defined(__clang__) && !defined(NIMETRICS_KERNEL_LEVEL) && \
    !__has_feature(thread_sanitizer) && !__has_feature(address_sanitizer)
// (Not under the sanitizers: the loader runs the version-picking resolver before their
// runtime is set up, and the instrumented resolver crashes; they test the baseline version.)
#define NM_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NM_MULTIVERSION
#endif

#define NM_INLINE static inline __attribute__((always_inline))

NM_INLINE vd splat(double x) { return (vd){x, x, x, x, x, x, x, x}; }

/// Lane-wise `mask ? a : b` (mask lanes are all ones or all zeros, as comparisons give).
NM_INLINE vd select_lanes(vl mask, vd a, vd b) { return (vd)(((vl)a & mask) | ((vl)b & ~mask)); }

NM_INLINE vd load(const double *p) { vd v; memcpy(&v, p, sizeof v); return v; }

/// Lanes whose value is finite (not NaN, not ±inf).
NM_INLINE vl finite_lanes(vd x) {
    const vl exponent = (vl){0} + 0x7FF0000000000000LL;
    return ((vl)x & exponent) != exponent;
}

/// Converts small integers (|k| < 2^51) to double without a conversion instruction (AVX2 has
/// none for 64-bit integers): adding k to the bits of 1.5 * 2^52 adds k to its mantissa.
NM_INLINE vd integers_to_double(vl k) {
    const vd shift = splat(0x1.8p52);
    return (vd)(k + (vl)shift) - shift;
}

static const double ln2_hi = 0x1.62e42fefa3800p-1;  // ln 2, high bits (exact in products with |k| < 2^11)
static const double ln2_lo = 0x1.ef35793c76730p-45; // ln 2 - ln2_hi

/// Natural logarithm of positive finite x; non-finite x is returned as it is (NaN stays NaN,
/// +inf stays +inf). x = 2^e m with m in [√½, √2); ln m = 2 atanh t, t = (m − 1)/(m + 1),
/// |t| <= 0.1716, from its series to t²¹ (truncation below 1e-17 relative): accurate to a few
/// units in the last place of a double.
NM_INLINE vd log_lanes(vd x) {
    const vl bits = (vl)x;
    vl e = (bits >> 52) - 1023;
    vd m = (vd)((bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
    const vl big = m > 0x1.6a09e667f3bcdp0; // √2
    m = select_lanes(big, m * 0.5, m);
    e -= big; // big lanes are -1
    const vd t = (m - 1) / (m + 1);
    const vd t2 = t * t;
    // Horner in t²: 1/21, 1/19, ..., 1/3, 1.
    vd p = splat(1.0 / 21);
    for (int k = 19; k >= 1; k -= 2) p = p * t2 + 1.0 / k;
    const vd ed = integers_to_double(e);
    const vd result = ed * ln2_hi + (ed * ln2_lo + 2 * t * p);
    return select_lanes(finite_lanes(x), result, x);
}

/// e^z for z <= 80 (the caller caps it); 0 below -708, NaN stays NaN. z = k ln 2 + r with
/// |r| <= ln2/2, e^r from its Taylor series to r¹¹ (truncation below 1e-14 relative), scaled
/// by 2^k through the exponent bits.
NM_INLINE vd exp_lanes(vd z) {
    const vl underflow = z < -708.0;
    z = select_lanes(underflow, splat(-708.0), z);
    const double shift = 0x1.8p52;
    vd kd = z * 0x1.71547652b82fep0 + shift; // z / ln 2, rounded to an integer by the shift
    const vl k = (vl)kd - (vl)splat(shift);
    kd -= shift;
    const vd r = (z - kd * ln2_hi) - kd * ln2_lo;
    // Horner in r: 1/11!, 1/10!, ..., 1/1!, 1/0!.
    static const double inverse_factorials[12] = {
        1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720,
        1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0,
    };
    vd p = splat(inverse_factorials[0]);
    for (int k = 1; k < 12; k++) p = p * r + inverse_factorials[k];
    const vd scale = (vd)((k + 1023) << 52);
    return select_lanes(underflow, splat(0.0), p * scale);
}

/// Reads volume v of eight voxels as doubles, raised to the minimum signal (NaN kept).
/// `contiguous`: the eight voxels are consecutive (as in a masked, compacted series), so they
/// are read with one vector load instead of eight.
NM_INLINE vd load_signal(const void *signal, int is_int16, ptrdiff_t offset, const ptrdiff_t *lane_voxels,
                         int contiguous, vd floor) {
    double s[LANES];
    if (is_int16) {
        const int16_t *values = (const int16_t *)signal + offset;
        if (contiguous) {
            values += lane_voxels[0];
            for (int l = 0; l < LANES; l++) s[l] = values[l];
        } else {
            for (int l = 0; l < LANES; l++) s[l] = values[lane_voxels[l]];
        }
    } else {
        const float *values = (const float *)signal + offset;
        if (contiguous) {
            values += lane_voxels[0];
            for (int l = 0; l < LANES; l++) s[l] = values[l];
        } else {
            for (int l = 0; l < LANES; l++) s[l] = values[lane_voxels[l]];
        }
    }
    const vd x = load(s);
    // `x > floor` is false for NaN, which must pass through: NaN != NaN.
    return select_lanes((x > floor) | (x != x), x, floor);
}

/// Factorises the packed symmetric 7 x 7 matrices `a` (one per lane) as L Lᵀ in place of `l`
/// (lower triangle, l[r][c] for c <= r) and solves L Lᵀ β = rhs. Lanes whose matrix is not
/// numerically positive definite (a pivot below 1e-13 of the largest diagonal entry, or not
/// finite) are cleared in `ok`; they continue on a unit pivot so they cannot disturb anything.
NM_INLINE void cholesky_solve(const vd a[28], vd rhs[7], vl *ok) {
    vd l[7][7];
    int k = 0;
    for (int r = 0; r < 7; r++)
        for (int c = r; c < 7; c++) l[c][r] = a[k++];
    vd max_diagonal = l[0][0];
    for (int i = 1; i < 7; i++) max_diagonal = select_lanes(l[i][i] > max_diagonal, l[i][i], max_diagonal);
    const vd floor = max_diagonal * 1e-13;
    vd inverse_pivot[7];
    for (int j = 0; j < 7; j++) {
        vd d = l[j][j];
        for (int q = 0; q < j; q++) d -= l[j][q] * l[j][q];
        const vl good = (d > floor) & finite_lanes(d);
        *ok &= good;
        d = select_lanes(good, d, splat(1.0));
        const vd pivot = __builtin_elementwise_sqrt(d);
        l[j][j] = pivot;
        inverse_pivot[j] = 1 / pivot;
        for (int i = j + 1; i < 7; i++) {
            vd s = l[i][j];
            for (int q = 0; q < j; q++) s -= l[i][q] * l[j][q];
            l[i][j] = s * inverse_pivot[j];
        }
    }
    // Forward substitution L y = rhs, then back substitution Lᵀ β = y.
    for (int i = 0; i < 7; i++) {
        vd s = rhs[i];
        for (int q = 0; q < i; q++) s -= l[i][q] * rhs[q];
        rhs[i] = s / l[i][i];
    }
    for (int i = 6; i >= 0; i--) {
        vd s = rhs[i];
        for (int q = i + 1; q < 7; q++) s -= l[q][i] * rhs[q];
        rhs[i] = s / l[i][i];
    }
}

/// Fits eight voxels; `y` and `w` are scratch of N lanes each.
NM_INLINE void fit_lanes(const nm_tensor_design *design, const void *signal, int is_int16, ptrdiff_t stride,
                         const ptrdiff_t *lane_voxels, vd *y, vd *w, vd beta[7], vd *sum_squares, vl *ok) {
    const int n = design->volume_count;
    const vd floor = splat(design->minimum_signal);
    int contiguous = 1;
    for (int l = 1; l < LANES; l++) contiguous &= lane_voxels[l] == lane_voxels[0] + l;
    if (is_int16 && design->log_table) {
        // Logarithms of stored integers are looked up (nm_tensor_log_table): the same bits.
        const double *table = design->log_table + 32768;
        for (int v = 0; v < n; v++) {
            const int16_t *values = (const int16_t *)signal + (ptrdiff_t)v * stride;
            double s[LANES];
            if (contiguous) {
                values += lane_voxels[0];
                for (int l = 0; l < LANES; l++) s[l] = table[values[l]];
            } else {
                for (int l = 0; l < LANES; l++) s[l] = table[values[lane_voxels[l]]];
            }
            y[v] = load(s);
        }
    } else {
        for (int v = 0; v < n; v++)
            y[v] = log_lanes(load_signal(signal, is_int16, (ptrdiff_t)v * stride, lane_voxels, contiguous, floor));
    }

    // OLS.
    vd b[7] = {0};
    for (int v = 0; v < n; v++) {
        const double *p = design->pinv + 8 * v;
        const vd yv = y[v];
        for (int c = 0; c < 7; c++) b[c] += p[c] * yv;
    }
    vl good = finite_lanes(b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6]);

    for (int pass = 0; pass < design->passes; pass++) {
        // Weights in their own loop, so the accumulation below keeps its registers.
        for (int v = 0; v < n; v++) {
            const double *x = design->rows + 8 * v;
            const vd e = x[0] * b[0] + x[1] * b[1] + x[2] * b[2] + x[3] * b[3] + x[4] * b[4] + x[5] * b[5];
            vd z = 2 * e;
            z = select_lanes(z > 80.0, splat(80.0), z); // wild non-physical tensors must not overflow
            w[v] = exp_lanes(z);
        }
        // Xᵀ W X (28 packed entries) in four passes of seven accumulators, then Xᵀ W y: seven
        // vectors stay in registers (with AVX2 they are 14 of the 16), where 35 at once would
        // spill to memory on every volume (docs/benchmarks.md).
        vd a[28];
        for (int g = 0; g < 28; g += 7) {
            vd acc[7] = {0};
            for (int v = 0; v < n; v++) {
                const double *o = design->outer + 28 * v + g;
                const vd wv = w[v];
#pragma clang loop unroll(full)
                for (int k = 0; k < 7; k++) acc[k] += o[k] * wv;
            }
            for (int k = 0; k < 7; k++) a[g + k] = acc[k];
        }
        vd rhs[7] = {0};
        for (int v = 0; v < n; v++) {
            const double *x = design->rows + 8 * v;
            const vd wy = w[v] * y[v];
#pragma clang loop unroll(full)
            for (int c = 0; c < 7; c++) rhs[c] += x[c] * wy;
        }
        cholesky_solve(a, rhs, &good);
        for (int c = 0; c < 7; c++) b[c] = rhs[c];
        good &= finite_lanes(b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6]);
    }

    vd ss = splat(0.0);
    for (int v = 0; v < n; v++) {
        const double *x = design->rows + 8 * v;
        const vd r = y[v] - (x[0] * b[0] + x[1] * b[1] + x[2] * b[2] + x[3] * b[3] + x[4] * b[4] + x[5] * b[5] + x[6] * b[6]);
        ss += r * r;
    }
    good &= finite_lanes(ss);
    for (int c = 0; c < 7; c++) beta[c] = b[c];
    *sum_squares = ss;
    *ok = good;
}

size_t nm_tensor_scratch_bytes(int32_t volume_count) {
    return 2 * (size_t)(volume_count > 0 ? volume_count : 1) * sizeof(vd);
}

NM_INLINE void fit_voxels(const nm_tensor_design *design, const void *signal, int is_int16, ptrdiff_t stride,
                          const ptrdiff_t *voxels, ptrdiff_t count, void *scratch,
                          double *beta, double *sum_squares, uint8_t *ok) {
    vd *y = (vd *)scratch;
    vd *w = y + (design->volume_count > 0 ? design->volume_count : 1);
    for (ptrdiff_t start = 0; start < count; start += LANES) {
        const ptrdiff_t valid = count - start < LANES ? count - start : LANES;
        // A short last block repeats its last voxel in the spare lanes (their results are dropped).
        ptrdiff_t lane_voxels[LANES];
        for (int l = 0; l < LANES; l++) lane_voxels[l] = voxels[start + (l < valid ? l : valid - 1)];
        vd b[7], ss;
        vl good;
        fit_lanes(design, signal, is_int16, stride, lane_voxels, y, w, b, &ss, &good);
        for (ptrdiff_t l = 0; l < valid; l++) {
            for (int c = 0; c < 7; c++) beta[7 * (start + l) + c] = b[c][l];
            sum_squares[start + l] = ss[l];
            ok[start + l] = good[l] != 0;
        }
    }
}

NM_INLINE void fill_log_table(double minimum_signal, double *table) {
    const vd floor = splat(minimum_signal);
    for (int start = 0; start < NM_TENSOR_LOG_TABLE_COUNT; start += LANES) {
        int16_t values[LANES];
        for (int l = 0; l < LANES; l++) values[l] = (int16_t)(start + l - 32768);
        const ptrdiff_t lanes[LANES] = {0, 1, 2, 3, 4, 5, 6, 7};
        const vd y = log_lanes(load_signal(values, 1, 0, lanes, 1, floor));
        memcpy(table + start, &y, sizeof y);
    }
}

NM_MULTIVERSION
void nm_tensor_log_table(double minimum_signal, double *table) {
    fill_log_table(minimum_signal, table);
}

NM_MULTIVERSION
void nm_tensor_fit_float(const nm_tensor_design *design, const float *signal, ptrdiff_t volume_stride,
                         const ptrdiff_t *voxels, ptrdiff_t count, void *scratch,
                         double *beta, double *sum_squares, uint8_t *ok) {
    fit_voxels(design, signal, 0, volume_stride, voxels, count, scratch, beta, sum_squares, ok);
}

NM_MULTIVERSION
void nm_tensor_fit_int16(const nm_tensor_design *design, const int16_t *signal, ptrdiff_t volume_stride,
                         const ptrdiff_t *voxels, ptrdiff_t count, void *scratch,
                         double *beta, double *sum_squares, uint8_t *ok) {
    fit_voxels(design, signal, 1, volume_stride, voxels, count, scratch, beta, sum_squares, ok);
}
