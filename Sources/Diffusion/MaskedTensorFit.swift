import Foundation
import SlabParallel

extension TensorModel {
    /// Fits the tensor to the mask's voxels and places the fit on the whole grid.
    ///
    /// - Parameters:
    ///   - signal: the mask's voxels of every volume of the table (see ``MaskedSignal``).
    ///   - voxels: the grid index of each mask voxel, increasing.
    ///   - gridVoxelCount: voxels per volume of the full grid.
    ///   - threads: slabs of the fit and of the scatter; the result does not depend on it.
    /// - Throws: ``TensorModelError`` when sizes disagree.
    ///
    /// The signal is consumed chunk by chunk: each chunk is freed as soon as it is fitted,
    /// and the compact fit's memory is taken as voxels are fitted, so the two never take
    /// their full memory at once; the grid maps are made after the last chunk is freed.
    public func fit(_ signal: MaskedSignal, voxels: [Int32], gridVoxelCount: Int, threads: Int) throws -> MaskedTensorFit {
        guard signal.volumeCount == table.count else {
            throw TensorModelError.volumeCountMismatch(entries: table.count, volumes: signal.volumeCount)
        }
        guard signal.voxelCount == voxels.count else {
            throw TensorModelError.dataSizeMismatch(expected: voxels.count * table.count, actual: signal.voxelCount * signal.volumeCount)
        }
        precondition(signal.isComplete, "every volume of the signal is stored before the fit")
        let compact = fitConsuming(signal, threads: threads)
        return MaskedTensorFit(compact, voxels: voxels, voxelCount: gridVoxelCount, threads: threads)
    }
}

/// A fit of the mask's voxels placed on the whole grid (0 and not fitted elsewhere), as
/// maps and regional summaries need it: DIPY's `TensorModel.fit(data, mask)`, for a signal
/// that was gathered voxel-compact while it was read. The multi-volume maps (tensor,
/// V1) are not kept on the grid: ``chunk(of:_:)`` makes any part of them on demand, for the
/// writer, so they are never held whole in memory and need no pass of their own
/// (docs/benchmarks.md).
public struct MaskedTensorFit: Sendable {
    /// Whether each grid voxel was fitted (in the mask, and its fit finite).
    public let fitted: [Bool]
    /// The fitted S0 on the grid, 0 where not fitted.
    public let s0: [Float]
    /// The quality-control summary of the fit.
    public var quality: TensorFitQuality { compact.quality }
    /// The compact index of each grid voxel's fit, -1 where none.
    private let compactIndex: [Int32]
    private let compact: TensorFit
    private let voxels: [Int32]
    private let threads: Int

    /// FA, MD, AD and RD on the whole grid.
    private let metricMaps: [[Float]]

    /// Whether each grid voxel's fitted tensor is physically impossible
    /// (``isImpossibleTensor(eigenvalues:)``: a negative eigenvalue, FA above 1); false where
    /// not fitted.
    public let impossible: [Bool]

    /// The fitted voxels whose tensor is possible: what regional summaries include by default.
    public var plausible: [Bool] { zip(fitted, impossible).map { $0 && !$1 } }

    /// Scatters the fit and computes the scalar maps in one pass over the fitted voxels,
    /// split into slabs (each grid voxel is written once, by the slab holding it, so the maps
    /// do not depend on `threads`).
    public init(_ fit: TensorFit, voxels: [Int32], voxelCount n: Int, threads: Int) {
        compact = fit
        self.voxels = voxels
        self.threads = threads
        var fitted = [Bool](repeating: false, count: n)
        var s0 = [Float](repeating: 0, count: n)
        var compactIndex = [Int32](repeating: -1, count: n)
        var fa = [Float](repeating: 0, count: n), md = fa, ad = fa, rd = fa
        var impossible = [Bool](repeating: false, count: n)
        voxels.withUnsafeBufferPointer { list in
        fit.fitted.withUnsafeBufferPointer { ok in
        fit.s0.withUnsafeBufferPointer { compactS0 in
        fit.eigenvalues.withUnsafeBufferPointer { compactEigenvalues in
        fitted.withUnsafeMutableBufferPointer { fittedOut in
        s0.withUnsafeMutableBufferPointer { s0Out in
        compactIndex.withUnsafeMutableBufferPointer { indexOut in
        fa.withUnsafeMutableBufferPointer { faOut in
        md.withUnsafeMutableBufferPointer { mdOut in
        ad.withUnsafeMutableBufferPointer { adOut in
        rd.withUnsafeMutableBufferPointer { rdOut in
        impossible.withUnsafeMutableBufferPointer { impossibleOut in
            let impossibleOut = SharedBuffer(impossibleOut)
            let list = SharedReadBuffer(list), ok = SharedReadBuffer(ok), cs0 = SharedReadBuffer(compactS0)
            let ce = SharedReadBuffer(compactEigenvalues)
            let fittedOut = SharedBuffer(fittedOut), s0Out = SharedBuffer(s0Out), indexOut = SharedBuffer(indexOut)
            let faOut = SharedBuffer(faOut), mdOut = SharedBuffer(mdOut), adOut = SharedBuffer(adOut), rdOut = SharedBuffer(rdOut)
            forEachSlab(count: list.count, threads: threads) { range in
                for k in range where ok[k] {
                    let i = Int(list[k])
                    fittedOut[i] = true
                    s0Out[i] = cs0[k]
                    indexOut[i] = Int32(k)
                    let l = SIMD3(Double(ce[3 * k]), Double(ce[3 * k + 1]), Double(ce[3 * k + 2]))
                    let fa = fractionalAnisotropy(eigenvalues: l)
                    faOut[i] = Float(fa)
                    mdOut[i] = Float(meanDiffusivity(eigenvalues: l))
                    adOut[i] = Float(axialDiffusivity(eigenvalues: l))
                    rdOut[i] = Float(radialDiffusivity(eigenvalues: l))
                    impossibleOut[i] = isImpossibleTensor(eigenvalues: l, fractionalAnisotropy: fa)
                }
            }
        }}}}}}}}}}}}
        self.fitted = fitted
        self.s0 = s0
        self.compactIndex = compactIndex
        metricMaps = [fa, md, ad, rd]
        self.impossible = impossible
    }

    /// A multi-volume map made from the compact fit.
    public enum VolumeMap: Sendable {
        /// Six volumes, D11 D12 D13 D22 D23 D33.
        case tensor
        /// Three volumes, the x, y, z components of V1.
        case principalEigenvector
    }

    /// The voxels `range` (file order: volume after volume) of `map`, 0 where not fitted.
    public func chunk(of map: VolumeMap, _ range: Range<Int>) -> [Float] {
        let (values, components) = switch map {
        case .tensor: (compact.tensors, 6)
        case .principalEigenvector: (compact.principalEigenvectors, 3)
        }
        let n = compactIndex.count
        var out = [Float](repeating: 0, count: range.count)
        var i = range.lowerBound
        while i < range.upperBound {
            // The part of the range in volume c.
            let c = i / n
            let end = min(range.upperBound, (c + 1) * n)
            for g in (i - c * n)..<(end - c * n) {
                let k = Int(compactIndex[g])
                if k >= 0 { out[c * n + g - range.lowerBound] = values[components * k + c] }
            }
            i = end
        }
        return out
    }

    /// V1 on the whole grid, 3 per voxel (x, y, z), taken through `transform` (zero where
    /// not fitted), as ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``
    /// takes it.
    public func principalEigenvectorField(_ transform: DirectionTransform) -> [Float] {
        var field = [Float](repeating: 0, count: 3 * fitted.count)
        compact.principalEigenvectors.withUnsafeBufferPointer { source in
        compact.fitted.withUnsafeBufferPointer { ok in
        voxels.withUnsafeBufferPointer { list in
        field.withUnsafeMutableBufferPointer { target in
            let v1 = SharedReadBuffer(source), fitted = SharedReadBuffer(ok), voxels = SharedReadBuffer(list)
            let out = SharedBuffer(target)
            // Each voxel is written once, by the slab that holds it.
            forEachSlab(count: voxels.count, threads: threads) { range in
                for k in range where fitted[k] {
                    let v = transform.apply(SIMD3(Double(v1[3 * k]), Double(v1[3 * k + 1]), Double(v1[3 * k + 2])))
                    let i = 3 * Int(voxels[k])
                    out[i] = Float(v.x); out[i + 1] = Float(v.y); out[i + 2] = Float(v.z)
                }
            }
        }}}}
        return field
    }

    /// A scalar map on the whole grid.
    public func map(_ metric: TensorMetric) -> [Float] {
        switch metric {
        case .fractionalAnisotropy: metricMaps[0]
        case .meanDiffusivity: metricMaps[1]
        case .axialDiffusivity: metricMaps[2]
        case .radialDiffusivity: metricMaps[3]
        }
    }
}
