// Fitting the tensor model voxel by voxel: the hot path.

import Foundation
import SlabParallel

/// Per-voxel tensor parameters over the whole image grid (DIPY's TensorFit), in the voxel order
/// of the data. Voxels outside the mask or whose fit failed hold zeros and `fitted == false`.
public struct TensorFit: Sendable {
    /// Number of voxels in the grid.
    public let voxelCount: Int
    /// Tensor elements, 6 per voxel: D11 D12 D13 D22 D23 D33 (mm²/s for b in s/mm²), in the
    /// frame of the gradient directions.
    public var tensors: [Float]
    /// Fitted non-weighted signal S0 = exp(β7).
    public var s0: [Float]
    /// Eigenvalues λ1 >= λ2 >= λ3, 3 per voxel.
    public var eigenvalues: [Float]
    /// Principal eigenvector V1, 3 per voxel, sign fixed so its largest-magnitude component is positive.
    public var principalEigenvectors: [Float]
    /// Whether the voxel was in the mask and its fit finite.
    public var fitted: [Bool]
    /// Root-mean-square residual of the log signal, sqrt(Σ (ln S_i − X_i β)² / N), unweighted,
    /// over all volumes (a unit-free goodness of fit; 0.05 is a 5% signal misfit).
    public var residuals: [Float]

    /// The eigenvalues of voxel `i`.
    public func eigenvalues(at i: Int) -> SIMD3<Double> {
        SIMD3(Double(eigenvalues[3 * i]), Double(eigenvalues[3 * i + 1]), Double(eigenvalues[3 * i + 2]))
    }

    /// The principal eigenvector of voxel `i`.
    public func principalEigenvector(at i: Int) -> SIMD3<Double> {
        SIMD3(Double(principalEigenvectors[3 * i]), Double(principalEigenvectors[3 * i + 1]),
              Double(principalEigenvectors[3 * i + 2]))
    }

    /// Number of fitted voxels with at least one negative eigenvalue (a non-physical tensor,
    /// usually noise or partial volume with CSF).
    public var negativeEigenvalueCount: Int {
        var n = 0
        for i in 0..<voxelCount where fitted[i] && eigenvalues[3 * i + 2] < 0 { n += 1 }
        return n
    }

    /// The quality-control summary of the fit.
    public var quality: TensorFitQuality {
        var fittedCount = 0, negative = 0
        var residualSum = 0.0
        // Sequential, in voxel order: the sums do not depend on the thread count.
        for i in 0..<voxelCount where fitted[i] {
            fittedCount += 1
            // A zero tensor's rounding-noise eigenvalues are not "negative" (see zeroTensorNorm).
            if eigenvalues[3 * i + 2] < 0 && abs(Double(eigenvalues[3 * i])) + abs(Double(eigenvalues[3 * i + 2])) > zeroTensorNorm {
                negative += 1
            }
            residualSum += Double(residuals[i])
        }
        return TensorFitQuality(voxelsFitted: fittedCount, negativeEigenvalueVoxels: negative,
                                meanResidual: fittedCount > 0 ? residualSum / Double(fittedCount) : nil)
    }
}

/// Quality-control numbers for a tensor fit.
public struct TensorFitQuality: Sendable, Equatable {
    /// Voxels fitted (in the mask, finite fit).
    public var voxelsFitted: Int
    /// Fitted voxels with at least one negative eigenvalue.
    public var negativeEigenvalueVoxels: Int
    /// Mean over fitted voxels of the RMS log-signal residual; nil when nothing was fitted.
    public var meanResidual: Double?
    /// Fraction of fitted voxels with a negative eigenvalue (0 when nothing was fitted).
    public var negativeEigenvalueFraction: Double {
        voxelsFitted > 0 ? Double(negativeEigenvalueVoxels) / Double(voxelsFitted) : 0
    }
}

extension TensorModel {
    /// Fits the tensor in every masked voxel.
    ///
    /// Only voxels in the mask are fitted (DIPY style). The masked voxels are split into
    /// `threads` contiguous slabs run with `DispatchQueue.concurrentPerform`; each slab writes
    /// its own voxels of the preallocated outputs, so the result is bit-identical for any
    /// thread count. Within a slab, blocks of voxels are first gathered from the volume-major
    /// data into a voxel-major scratch buffer (one pass over each volume's contiguous run),
    /// then fitted with no heap allocation.
    ///
    /// Per voxel: y_i = ln max(S_i, minimumSignal); OLS β = (XᵀX)⁻¹Xᵀy. For WLS, each pass
    /// solves (Xᵀ W X) β = Xᵀ W y by Cholesky with w_i = exp(2 ŷ_i), ŷ = X β from the previous
    /// pass (Salvador et al. 2005, Hum Brain Mapp 24:144; Veraart et al. 2013, NeuroImage
    /// 81:335; as DIPY's `wls_fit_tensor`). Weights are computed as exp(2 (ŷ_i − ln S0)),
    /// the same up to a factor common to all volumes, so they do not overflow. Eigenvalues and V1 come from
    /// ``SymmetricEigen3`` in Double before rounding to Float.
    ///
    /// - Parameters:
    ///   - data: the signal, volume-major as in NIfTI: `data[v * voxelCount + i]`.
    ///   - volumeCount: number of volumes; must equal the table's count.
    ///   - voxelCount: voxels per volume.
    ///   - mask: one entry per voxel, or nil to fit every voxel.
    ///   - threads: number of slabs (>= 1).
    /// - Returns: the fit over the whole grid.
    /// - Throws: ``TensorModelError`` when sizes disagree.
    public func fit(data: UnsafeBufferPointer<Float>, volumeCount: Int, voxelCount: Int,
                    mask: [Bool]? = nil, threads: Int = 1) throws -> TensorFit {
        try fit(samples: SharedReadBuffer(data), volumeCount: volumeCount, voxelCount: voxelCount, mask: mask, threads: threads)
    }

    /// Fits the tensor to an integer signal as stored (an int16 DWI without scaling), so a
    /// caller can keep half the memory of its floats; the result is the same as for the
    /// signal converted to Float.
    public func fit(data: UnsafeBufferPointer<Int16>, volumeCount: Int, voxelCount: Int,
                    mask: [Bool]? = nil, threads: Int = 1) throws -> TensorFit {
        try fit(samples: Int16Samples(values: SharedReadBuffer(data)), volumeCount: volumeCount,
                voxelCount: voxelCount, mask: mask, threads: threads)
    }

    func fit<Samples: SignalSamples>(samples data: Samples, volumeCount: Int, voxelCount: Int,
                                     mask: [Bool]?, threads: Int) throws -> TensorFit {
        guard volumeCount == table.count else {
            throw TensorModelError.volumeCountMismatch(entries: table.count, volumes: volumeCount)
        }
        let expected = checkedProduct(volumeCount, voxelCount) ?? -1
        guard data.count == expected else {
            throw TensorModelError.dataSizeMismatch(expected: expected, actual: data.count)
        }
        if let mask, mask.count != voxelCount {
            throw TensorModelError.maskSizeMismatch(expected: voxelCount, actual: mask.count)
        }
        var voxels = [Int]()
        if let mask {
            voxels.reserveCapacity(voxelCount)
            for i in 0..<voxelCount where mask[i] { voxels.append(i) }
        } else {
            voxels = Array(0..<voxelCount)
        }

        var tensors = [Float](repeating: 0, count: 6 * voxelCount)
        var s0 = [Float](repeating: 0, count: voxelCount)
        var eigenvalues = [Float](repeating: 0, count: 3 * voxelCount)
        var v1 = [Float](repeating: 0, count: 3 * voxelCount)
        var fitted = [Bool](repeating: false, count: voxelCount)
        var residuals = [Float](repeating: 0, count: voxelCount)

        let kernel = TensorKernel(model: self)
        let input = data
        voxels.withUnsafeBufferPointer { voxelList in
            let list = SharedReadBuffer(voxelList)
            tensors.withUnsafeMutableBufferPointer { t in
            s0.withUnsafeMutableBufferPointer { s in
            eigenvalues.withUnsafeMutableBufferPointer { e in
            v1.withUnsafeMutableBufferPointer { v in
            fitted.withUnsafeMutableBufferPointer { f in
            residuals.withUnsafeMutableBufferPointer { r in
                let out = TensorOutputs(tensors: SharedBuffer(t), s0: SharedBuffer(s), eigenvalues: SharedBuffer(e),
                                        v1: SharedBuffer(v), fitted: SharedBuffer(f), residuals: SharedBuffer(r))
                forEachSlab(count: list.count, threads: threads) { range in
                    kernel.fit(voxels: list, range: range, data: input, voxelCount: voxelCount, out: out)
                }
            }}}}}}
        }
        return TensorFit(voxelCount: voxelCount, tensors: tensors, s0: s0, eigenvalues: eigenvalues,
                         principalEigenvectors: v1, fitted: fitted, residuals: residuals)
    }

    /// Fits the tensor in every masked voxel of an array; see
    /// ``fit(data:volumeCount:voxelCount:mask:threads:)-(UnsafeBufferPointer<Float>,_,_,_,_)``.
    public func fit(data: [Float], volumeCount: Int, voxelCount: Int,
                    mask: [Bool]? = nil, threads: Int = 1) throws -> TensorFit {
        try data.withUnsafeBufferPointer {
            try fit(data: $0, volumeCount: volumeCount, voxelCount: voxelCount, mask: mask, threads: threads)
        }
    }

    /// Fits the tensor to an integer signal array as stored; see the buffer version.
    public func fit(data: [Int16], volumeCount: Int, voxelCount: Int,
                    mask: [Bool]? = nil, threads: Int = 1) throws -> TensorFit {
        try data.withUnsafeBufferPointer {
            try fit(data: $0, volumeCount: volumeCount, voxelCount: voxelCount, mask: mask, threads: threads)
        }
    }
}

/// Signal samples the kernel reads, as Float, whatever they are stored as.
protocol SignalSamples: Sendable {
    var count: Int { get }
    subscript(index: Int) -> Float { get }
}

extension SharedReadBuffer: SignalSamples where Element == Float {}

/// Integer samples, converted as they are read.
struct Int16Samples: SignalSamples {
    let values: SharedReadBuffer<Int16>
    var count: Int { values.count }
    @inline(__always) subscript(index: Int) -> Float { Float(values[index]) }
}

/// Output views shared by the slabs (each writes only its own voxels).
struct TensorOutputs: Sendable {
    let tensors: SharedBuffer<Float>
    let s0: SharedBuffer<Float>
    let eigenvalues: SharedBuffer<Float>
    let v1: SharedBuffer<Float>
    let fitted: SharedBuffer<Bool>
    let residuals: SharedBuffer<Float>
}

/// The per-voxel fitting code with the model's precomputed quantities in flat buffers.
struct TensorKernel: Sendable {
    let n: Int
    let rows: [Double]
    let pinvColumns: [Double]
    let outer: [Double]
    let passes: Int
    let minimumSignal: Float
    let bScale: Double

    /// Voxels gathered per block: 64 x N floats of scratch (16 KB for 65 volumes) stays in L1/L2.
    static let blockSize = 64

    init(model: TensorModel) {
        n = model.table.count
        rows = model.rows
        pinvColumns = model.pinvColumns
        outer = model.outer
        passes = model.method == .wls ? model.iterations : 0
        minimumSignal = model.minimumSignal
        bScale = model.bScale
    }

    func fit<Samples: SignalSamples>(voxels: SharedReadBuffer<Int>, range: Range<Int>, data: Samples,
                                     voxelCount: Int, out: TensorOutputs) {
        let n = self.n
        let block = Self.blockSize
        // Per-slab scratch: the log signal of a block of voxels (voxel-major), one voxel's WLS
        // weights, the normal equations and their factor. Allocated once per slab, never per voxel.
        let logSignal = UnsafeMutablePointer<Double>.allocate(capacity: block * n)
        let weights = UnsafeMutablePointer<Double>.allocate(capacity: n)
        let factor = UnsafeMutablePointer<Double>.allocate(capacity: 64)
        factor.initialize(repeating: 0, count: 64)
        let normal = UnsafeMutablePointer<Double>.allocate(capacity: 28)
        defer { logSignal.deallocate(); weights.deallocate(); factor.deallocate(); normal.deallocate() }
        rows.withUnsafeBufferPointer { rows in
        pinvColumns.withUnsafeBufferPointer { pinv in
        outer.withUnsafeBufferPointer { outer in
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + block, range.upperBound)
                // Gather: for each volume, read the block's voxels (increasing addresses).
                let floorSignal = minimumSignal
                for vol in 0..<n {
                    let offset = vol * voxelCount
                    for j in start..<end {
                        let s = data[offset + voxels[j]]
                        // `max` would pass NaN through; a NaN signal makes the voxel unfitted below.
                        let clamped = s > floorSignal ? s : (s.isNaN ? s : floorSignal)
                        logSignal[(j - start) * n + vol] = Double(Foundation.log(clamped))
                    }
                }
                for j in start..<end {
                    let y = logSignal + (j - start) * n
                    fitVoxel(y: y, weights: weights, factor: factor, normal: normal,
                             rows: rows.baseAddress!, pinv: pinv.baseAddress!, outer: outer.baseAddress!,
                             voxel: voxels[j], out: out)
                }
                start = end
            }
        }}}
    }

    @inline(__always)
    func fitVoxel(y: UnsafeMutablePointer<Double>, weights: UnsafeMutablePointer<Double>,
                  factor: UnsafeMutablePointer<Double>, normal: UnsafeMutablePointer<Double>,
                  rows: UnsafePointer<Double>, pinv: UnsafePointer<Double>,
                  outer: UnsafePointer<Double>, voxel: Int, out: TensorOutputs) {
        let n = self.n
        // OLS: β = pinv · y, seven scalars kept in registers.
        var b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0, b4 = 0.0, b5 = 0.0, b6 = 0.0
        for i in 0..<n {
            let p = pinv + 8 * i
            let yi = y[i]
            b0 += p[0] * yi; b1 += p[1] * yi; b2 += p[2] * yi; b3 += p[3] * yi
            b4 += p[4] * yi; b5 += p[5] * yi; b6 += p[6] * yi
        }
        var ok = (b0 + b1 + b2 + b3 + b4 + b5 + b6).isFinite
        // WLS passes.
        var pass = 0
        while ok && pass < passes {
            // Weights first, in their own loop: every XMM register is caller-saved, so an exp
            // call inside the accumulation loop would spill the accumulators on each volume.
            // w ∝ exp(2 ŷ_i) with ŷ_i = x_i · β; the factor exp(2 β7) common to all volumes
            // is dropped (x_i7 = 1), so exponents stay near 0 whatever S0 is; capped at 80 so
            // the single-precision exp cannot overflow on wild non-physical tensors. Single
            // precision because weights need only a few digits. Measured (WLS, 200k voxels x 65
            // volumes, 1 thread, CPU time): libm exp 0.44 s, expf 0.42 s, an inlined degree-8
            // polynomial in Double 0.47 s, expf inside the accumulation loop 0.46 s, this 0.35 s.
            for i in 0..<n {
                let x = rows + 8 * i
                let e = x[0] * b0 + x[1] * b1 + x[2] * b2 + x[3] * b3 + x[4] * b4 + x[5] * b5
                weights[i] = Double(Foundation.exp(Float(min(2 * e, 80))))
            }
            // The 28 packed entries of Xᵀ W X accumulate in seven 4-lane values (kept in
            // registers or stack slots the compiler knows do not alias the inputs).
            var n0 = SIMD4<Double>(), n1 = SIMD4<Double>(), n2 = SIMD4<Double>(), n3 = SIMD4<Double>()
            var n4 = SIMD4<Double>(), n5 = SIMD4<Double>(), n6 = SIMD4<Double>()
            var r0 = 0.0, r1 = 0.0, r2 = 0.0, r3 = 0.0, r4 = 0.0, r5 = 0.0, r6 = 0.0
            for i in 0..<n {
                let w = weights[i]
                let x = rows + 8 * i
                let o = UnsafeRawPointer(outer + 28 * i)
                let stride = MemoryLayout<SIMD4<Double>>.size
                n0 += w * o.loadUnaligned(as: SIMD4<Double>.self)
                n1 += w * o.loadUnaligned(fromByteOffset: stride, as: SIMD4<Double>.self)
                n2 += w * o.loadUnaligned(fromByteOffset: 2 * stride, as: SIMD4<Double>.self)
                n3 += w * o.loadUnaligned(fromByteOffset: 3 * stride, as: SIMD4<Double>.self)
                n4 += w * o.loadUnaligned(fromByteOffset: 4 * stride, as: SIMD4<Double>.self)
                n5 += w * o.loadUnaligned(fromByteOffset: 5 * stride, as: SIMD4<Double>.self)
                n6 += w * o.loadUnaligned(fromByteOffset: 6 * stride, as: SIMD4<Double>.self)
                let wy = w * y[i]
                r0 += wy * x[0]; r1 += wy * x[1]; r2 += wy * x[2]; r3 += wy * x[3]
                r4 += wy * x[4]; r5 += wy * x[5]; r6 += wy * x[6]
            }
            let packed = UnsafeMutableRawPointer(normal)
            let stride = MemoryLayout<SIMD4<Double>>.size
            packed.storeBytes(of: n0, as: SIMD4<Double>.self)
            packed.storeBytes(of: n1, toByteOffset: stride, as: SIMD4<Double>.self)
            packed.storeBytes(of: n2, toByteOffset: 2 * stride, as: SIMD4<Double>.self)
            packed.storeBytes(of: n3, toByteOffset: 3 * stride, as: SIMD4<Double>.self)
            packed.storeBytes(of: n4, toByteOffset: 4 * stride, as: SIMD4<Double>.self)
            packed.storeBytes(of: n5, toByteOffset: 5 * stride, as: SIMD4<Double>.self)
            packed.storeBytes(of: n6, toByteOffset: 6 * stride, as: SIMD4<Double>.self)
            guard Cholesky7.factor(packed: normal, into: factor) else { ok = false; break }
            (b0, b1, b2, b3, b4, b5, b6) = Cholesky7.solve(factor, r0, r1, r2, r3, r4, r5, r6)
            ok = (b0 + b1 + b2 + b3 + b4 + b5 + b6).isFinite
            pass += 1
        }
        guard ok else { return } // outputs stay zero, fitted stays false
        var sumSquares = 0.0
        for i in 0..<n {
            let x = rows + 8 * i
            let r = y[i] - (x[0] * b0 + x[1] * b1 + x[2] * b2 + x[3] * b3 + x[4] * b4 + x[5] * b5 + x[6] * b6)
            sumSquares += r * r
        }
        let scale = 1 / bScale
        let d11 = b0 * scale, d12 = b1 * scale, d13 = b2 * scale
        let d22 = b3 * scale, d23 = b4 * scale, d33 = b5 * scale
        let eigen = SymmetricEigen3(d11, d12, d13, d22, d23, d33)
        let s0 = Foundation.exp(b6)
        guard s0.isFinite, sumSquares.isFinite, (eigen.values * eigen.values).sum().isFinite else { return }
        let t = voxel * 6
        out.tensors[t] = Float(d11); out.tensors[t + 1] = Float(d12); out.tensors[t + 2] = Float(d13)
        out.tensors[t + 3] = Float(d22); out.tensors[t + 4] = Float(d23); out.tensors[t + 5] = Float(d33)
        out.s0[voxel] = Float(s0)
        let e = voxel * 3
        out.eigenvalues[e] = Float(eigen.values.x)
        out.eigenvalues[e + 1] = Float(eigen.values.y)
        out.eigenvalues[e + 2] = Float(eigen.values.z)
        let v = eigen.vectors.0
        out.v1[e] = Float(v.x); out.v1[e + 1] = Float(v.y); out.v1[e + 2] = Float(v.z)
        out.residuals[voxel] = Float((sumSquares / Double(n)).squareRoot())
        out.fitted[voxel] = true
    }
}

