// The one place where FFTW's C API is used. Plans are created and destroyed under a
// process-wide lock (the FFTW planner is not thread-safe) and executed with the
// new-array functions, which are thread-safe, on per-call buffers from fftw_malloc.

import CFFTW
import Foundation
import Synchronization

/// Serialises every call into the FFTW planner (plan creation and destruction).
private let fftwPlanner = Mutex(())

/// Owns a forward (r2c) and backward (c2r) FFTW plan for real series of one length.
///
/// Plans are made with `FFTW_ESTIMATE` (no timing measurements, so the same plan, hence the
/// same arithmetic, on every run) and `FFTW_UNALIGNED` (so any buffer may be used with the
/// new-array execute functions). `fftw_destroy_plan` runs in `deinit`, under the planner lock.
///
/// `@unchecked Sendable`: it owns two C plans, which are never changed after creation and
/// are executed only through FFTW's new-array functions, which are thread-safe on one plan.
final class RealFFTPlan: @unchecked Sendable {
    /// Series length n.
    let length: Int
    /// Number of complex bins of the half spectrum, n/2 + 1.
    let bins: Int
    private let forward: fftw_plan
    private let backward: fftw_plan

    /// The plans made so far, by length.
    private static let cache = Mutex<[Int: RealFFTPlan]>([:])

    /// The shared plan pair for series of `length` samples (created on first use).
    static func shared(length: Int) -> RealFFTPlan {
        cache.withLock { plans in
            if let plan = plans[length] { return plan }
            let plan = RealFFTPlan(length: length)
            plans[length] = plan
            return plan
        }
    }

    private init(length n: Int) {
        precondition(n >= 1, "FFT length must be positive")  // programmer error: callers check T
        length = n
        bins = n / 2 + 1
        let real = fftw_malloc(MemoryLayout<Double>.stride * n)!.bindMemory(to: Double.self, capacity: n)
        let complex = fftw_malloc(MemoryLayout<fftw_complex>.stride * bins)!
            .bindMemory(to: fftw_complex.self, capacity: bins)
        defer { fftw_free(real); fftw_free(complex) }
        let flags = UInt32(FFTW_ESTIMATE) | UInt32(FFTW_UNALIGNED)
        // Set from inside the lock rather than returned from it: `withLock` may return only a
        // value it can send, and plans made from this thread's buffers are not one.
        var plans: (forward: fftw_plan?, backward: fftw_plan?) = (nil, nil)
        fftwPlanner.withLock { _ in
            plans = (fftw_plan_dft_r2c_1d(Int32(n), real, complex, flags), fftw_plan_dft_c2r_1d(Int32(n), complex, real, flags))
        }
        forward = plans.forward!
        backward = plans.backward!
    }

    deinit {
        fftwPlanner.withLock { _ in
            fftw_destroy_plan(forward)
            fftw_destroy_plan(backward)
        }
    }

    /// Per-thread work space: one real and one complex buffer, from `fftw_malloc`.
    final class Workspace {
        let real: UnsafeMutablePointer<Double>
        let complex: UnsafeMutablePointer<fftw_complex>
        let length: Int
        let bins: Int
        init(length: Int, bins: Int) {
            self.length = length
            self.bins = bins
            real = fftw_malloc(MemoryLayout<Double>.stride * max(length, 1))!
                .bindMemory(to: Double.self, capacity: max(length, 1))
            complex = fftw_malloc(MemoryLayout<fftw_complex>.stride * bins)!
                .bindMemory(to: fftw_complex.self, capacity: bins)
        }
        deinit { fftw_free(real); fftw_free(complex) }
    }

    func makeWorkspace() -> Workspace { Workspace(length: length, bins: bins) }

    /// Unnormalised forward transform of `work.real` into `work.complex`
    /// (`X_k = sum_t x_t exp(-2 pi i k t / n)`, k = 0...n/2). Wraps `fftw_execute_dft_r2c`.
    func forward(_ work: Workspace) {
        fftw_execute_dft_r2c(forward, work.real, work.complex)
    }

    /// Unnormalised backward transform of `work.complex` into `work.real` (the result is n
    /// times the inverse; `work.complex` is destroyed). Wraps `fftw_execute_dft_c2r`.
    func backward(_ work: Workspace) {
        fftw_execute_dft_c2r(backward, work.complex, work.real)
    }
}
