// Fitting the tensor model voxel by voxel: the hot path.

import Foundation
import SlabParallel
internal import TensorKernels

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
    /// thread count. Within a slab, voxels are fitted eight at a time in the lanes of the
    /// vector registers (the TensorKernels C target, compiled for AVX-512, AVX2 and the
    /// baseline), a block of parameters at a time, then decomposed here.
    ///
    /// Per voxel: y_i = ln max(S_i, minimumSignal); OLS β = (XᵀX)⁻¹Xᵀy. For WLS, each pass
    /// solves (Xᵀ W X) β = Xᵀ W y by Cholesky with w_i = exp(2 ŷ_i), ŷ = X β from the previous
    /// pass (Salvador et al. 2005, Hum Brain Mapp 24:144; Veraart et al. 2013, NeuroImage
    /// 81:335; as DIPY's `wls_fit_tensor`). Weights are computed as exp(2 (ŷ_i − ln S0)),
    /// the same up to a factor common to all volumes, so they do not overflow; they are capped
    /// at e⁸⁰ for wild non-physical tensors. Logarithms, weights and solves are in Double.
    /// Eigenvalues and V1 come from ``SymmetricEigen3/principal(_:_:_:_:_:_:)`` (closed form, Jacobi where the gap is small) in Double before rounding to Float.
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
        try fit(samples: .float(SharedReadBuffer(data)), volumeCount: volumeCount, voxelCount: voxelCount,
                mask: mask, threads: threads)
    }

    /// Fits the tensor to an integer signal as stored (an int16 DWI without scaling), so a
    /// caller can keep half the memory of its floats; the result is the same as for the
    /// signal converted to Float.
    public func fit(data: UnsafeBufferPointer<Int16>, volumeCount: Int, voxelCount: Int,
                    mask: [Bool]? = nil, threads: Int = 1) throws -> TensorFit {
        try fit(samples: .int16(SharedReadBuffer(data)), volumeCount: volumeCount,
                voxelCount: voxelCount, mask: mask, threads: threads)
    }

    func fit(samples data: SignalSamples, volumeCount: Int, voxelCount: Int,
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

        let isInteger = if case .int16 = data { true } else { false }
        let kernel = TensorKernel(model: self, integers: isInteger)
        return voxels.withUnsafeBufferPointer { voxelList in
            let list = SharedReadBuffer(voxelList)
            // Voxels outside the mask are never visited: the outputs start at zero.
            return TensorFit.make(voxelCount: voxelCount, zeroed: true) { out in
                forEachSlab(count: list.count, threads: threads) { range in
                    kernel.fit(voxels: list, range: range, data: data, voxelCount: voxelCount, out: out)
                }
            }
        }
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

extension TensorModel {
    /// Fits every voxel of a masked signal, chunk by chunk, freeing each chunk once fitted.
    ///
    /// The chunks are split into `threads` contiguous slabs; each voxel's fit is written once,
    /// by the slab holding its chunk, and does not depend on the block or lane it fell in, so
    /// the result is the same for any thread count (and the same as the grid fit of the same
    /// signal). The outputs are allocated without being filled: every voxel's entries are
    /// written by its fit (zeros when it fails), so their memory is taken as chunks are
    /// fitted and freed.
    func fitConsuming(_ signal: MaskedSignal, threads: Int) -> TensorFit {
        let kernel = TensorKernel(model: self, integers: signal.storage == .int16)
        let local = Array(0..<MaskedSignal.chunkVoxels)
        return local.withUnsafeBufferPointer { localBuffer in
            let list = SharedReadBuffer(localBuffer)
            return TensorFit.make(voxelCount: signal.voxelCount, zeroed: false) { out in
                forEachSlab(count: signal.chunkCount, threads: threads) { chunks in
                    for c in chunks {
                        let voxels = signal.voxelRange(ofChunk: c)
                        kernel.fit(voxels: list, range: 0..<voxels.count, data: signal.chunkSamples(c), voxelCount: voxels.count,
                                   out: out, outputOffset: voxels.lowerBound)
                        signal.release(chunk: c)
                    }
                }
            }
        }
    }
}

extension TensorFit {
    /// A fit of `voxelCount` voxels whose outputs `body` writes through the shared views.
    /// - Parameter zeroed: start every output at zero (and not fitted); otherwise they are
    ///   allocated unfilled, and `body` must write every voxel.
    static func make(voxelCount n: Int, zeroed: Bool, _ body: (TensorOutputs) -> Void) -> TensorFit {
        func allocate<T>(_ count: Int, _ zero: T) -> [T] {
            zeroed ? [T](repeating: zero, count: count) : [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        var tensors = allocate(6 * n, Float(0)), s0 = allocate(n, Float(0))
        var eigenvalues = allocate(3 * n, Float(0)), v1 = allocate(3 * n, Float(0))
        var fitted = allocate(n, false), residuals = allocate(n, Float(0))
        tensors.withUnsafeMutableBufferPointer { t in
        s0.withUnsafeMutableBufferPointer { s in
        eigenvalues.withUnsafeMutableBufferPointer { e in
        v1.withUnsafeMutableBufferPointer { v in
        fitted.withUnsafeMutableBufferPointer { f in
        residuals.withUnsafeMutableBufferPointer { r in
            body(TensorOutputs(tensors: SharedBuffer(t), s0: SharedBuffer(s), eigenvalues: SharedBuffer(e),
                               v1: SharedBuffer(v), fitted: SharedBuffer(f), residuals: SharedBuffer(r)))
        }}}}}}
        return TensorFit(voxelCount: n, tensors: tensors, s0: s0, eigenvalues: eigenvalues,
                         principalEigenvectors: v1, fitted: fitted, residuals: residuals)
    }
}

/// The signal the kernel reads, as it is stored.
enum SignalSamples: Sendable {
    case float(SharedReadBuffer<Float>)
    case int16(SharedReadBuffer<Int16>)

    var count: Int {
        switch self {
        case .float(let values): values.count
        case .int16(let values): values.count
        }
    }
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

/// The model's precomputed quantities in the flat layouts of the C kernel, and the per-voxel
/// work that follows the least-squares fit (scaling, eigen-decomposition, outputs).
struct TensorKernel: Sendable {
    let n: Int
    let rows: [Double]
    let pinvColumns: [Double]
    let outer: [Double]
    let passes: Int
    let minimumSignal: Double
    let bScale: Double
    /// The logarithm of every 16-bit value, for an int16 signal (empty otherwise): looking
    /// them up gives the bits the kernel would compute, at a fraction of the time.
    let logTable: [Double]

    /// Voxels whose parameters are held at once per slab: 7 x 256 doubles (14 KB) stay in L1/L2.
    static let blockSize = 256

    /// - Parameter integers: the signal is stored as 16-bit integers (a log table is made).
    init(model: TensorModel, integers: Bool) {
        n = model.table.count
        rows = model.rows
        pinvColumns = model.pinvColumns
        outer = model.outer
        passes = model.method == .wls ? model.iterations : 0
        minimumSignal = Double(model.minimumSignal)
        bScale = model.bScale
        let minimumSignal = minimumSignal
        logTable = integers ? [Double](unsafeUninitializedCapacity: Int(NM_TENSOR_LOG_TABLE_COUNT)) { table, count in
            nm_tensor_log_table(minimumSignal, table.baseAddress)
            count = Int(NM_TENSOR_LOG_TABLE_COUNT)
        } : []
    }

    /// Fits the voxels `voxels[range]` of `data` (rows `voxelCount` apart) and writes voxel
    /// `voxels[k] + outputOffset` of the outputs for each: its fit, or zeros and not fitted.
    func fit(voxels: SharedReadBuffer<Int>, range: Range<Int>, data: SignalSamples, voxelCount: Int, out: TensorOutputs,
             outputOffset: Int = 0) {
        let block = Self.blockSize
        // Per-slab scratch, allocated once: the kernel's log signal and weights (64-byte
        // aligned vectors), and a block's parameters, residuals and flags.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: nm_tensor_scratch_bytes(Int32(n)), alignment: 64)
        let beta = UnsafeMutablePointer<Double>.allocate(capacity: 7 * block)
        let sumSquares = UnsafeMutablePointer<Double>.allocate(capacity: block)
        let ok = UnsafeMutablePointer<UInt8>.allocate(capacity: block)
        defer { scratch.deallocate(); beta.deallocate(); sumSquares.deallocate(); ok.deallocate() }
        rows.withUnsafeBufferPointer { rows in
        pinvColumns.withUnsafeBufferPointer { pinv in
        outer.withUnsafeBufferPointer { outer in
        logTable.withUnsafeBufferPointer { logTable in
            var design = nm_tensor_design(volume_count: Int32(n), passes: Int32(passes), minimum_signal: minimumSignal,
                                          rows: rows.baseAddress, pinv: pinv.baseAddress, outer: outer.baseAddress,
                                          log_table: logTable.baseAddress)
            var start = range.lowerBound
            while start < range.upperBound {
                let count = min(block, range.upperBound - start)
                switch data {
                case .float(let values):
                    nm_tensor_fit_float(&design, values.base, voxelCount, voxels.base + start, count, scratch, beta, sumSquares, ok)
                case .int16(let values):
                    nm_tensor_fit_int16(&design, values.base, voxelCount, voxels.base + start, count, scratch, beta, sumSquares, ok)
                }
                for k in 0..<count {
                    let voxel = voxels[start + k] + outputOffset
                    if ok[k] == 0 || !store(beta: beta + 7 * k, sumSquares: sumSquares[k], voxel: voxel, out: out) {
                        clear(voxel: voxel, out: out)
                    }
                }
                start += count
            }
        }}}}
    }

    /// Scales the parameters of one voxel to mm²/s, decomposes the tensor and writes the
    /// voxel's outputs; false (nothing written) when anything is not finite.
    @inline(__always)
    func store(beta b: UnsafePointer<Double>, sumSquares: Double, voxel: Int, out: TensorOutputs) -> Bool {
        let scale = 1 / bScale
        let d11 = b[0] * scale, d12 = b[1] * scale, d13 = b[2] * scale
        let d22 = b[3] * scale, d23 = b[4] * scale, d33 = b[5] * scale
        let eigen = SymmetricEigen3.principal(d11, d12, d13, d22, d23, d33)
        let s0 = Foundation.exp(b[6])
        guard s0.isFinite, (eigen.values * eigen.values).sum().isFinite else { return false }
        let t = voxel * 6
        out.tensors[t] = Float(d11); out.tensors[t + 1] = Float(d12); out.tensors[t + 2] = Float(d13)
        out.tensors[t + 3] = Float(d22); out.tensors[t + 4] = Float(d23); out.tensors[t + 5] = Float(d33)
        out.s0[voxel] = Float(s0)
        let e = voxel * 3
        out.eigenvalues[e] = Float(eigen.values.x)
        out.eigenvalues[e + 1] = Float(eigen.values.y)
        out.eigenvalues[e + 2] = Float(eigen.values.z)
        let v = eigen.vector
        out.v1[e] = Float(v.x); out.v1[e + 1] = Float(v.y); out.v1[e + 2] = Float(v.z)
        out.residuals[voxel] = Float((sumSquares / Double(n)).squareRoot())
        out.fitted[voxel] = true
        return true
    }

    /// Writes a voxel that was not fitted: zeros, and not fitted.
    @inline(__always)
    func clear(voxel: Int, out: TensorOutputs) {
        for c in 0..<6 { out.tensors[voxel * 6 + c] = 0 }
        for c in 0..<3 { out.eigenvalues[voxel * 3 + c] = 0; out.v1[voxel * 3 + c] = 0 }
        out.s0[voxel] = 0
        out.residuals[voxel] = 0
        out.fitted[voxel] = false
    }
}
