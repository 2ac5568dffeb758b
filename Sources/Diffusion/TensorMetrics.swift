import SlabParallel
// Scalar tensor metrics as pure functions of the eigenvalues (Basser & Pierpaoli 1996).

/// Fractional anisotropy:
///
///     FA = sqrt(1/2) * sqrt((λ1−λ2)² + (λ2−λ3)² + (λ3−λ1)²) / sqrt(λ1² + λ2² + λ3²)
///
/// Basser & Pierpaoli 1996, J Magn Reson B 111:209. 0 for the zero tensor, and for tensors
/// whose eigenvalue norm is below ``zeroTensorNorm`` (a voxel whose signal does not change
/// with diffusion weighting, such as background pulled into a mask, fits a tensor of rounding
/// noise, about 1e-19 mm²/s, whose "anisotropy" would be meaningless).
///
/// Negative eigenvalues (non-physical tensors fitted to noisy data) are used as they are, as
/// in DIPY and MRtrix3: the formula then gives values that can exceed 1 (e.g. λ = (1, 0, −1)
/// gives sqrt(3/2) ≈ 1.22). Such voxels are counted in ``TensorFitQuality``; clamping would
/// hide them.
@inlinable
public func fractionalAnisotropy(eigenvalues l: SIMD3<Double>) -> Double {
    let denominator = (l * l).sum()
    guard denominator > zeroTensorNorm * zeroTensorNorm else { return 0 }
    let a = l.x - l.y, b = l.y - l.z, c = l.z - l.x
    return (0.5 * (a * a + b * b + c * c) / denominator).squareRoot()
}

/// Eigenvalue norm (mm²/s, for b in s/mm²) below which a tensor counts as zero: six orders
/// of magnitude below tissue diffusivities (about 1e-3 mm²/s).
public let zeroTensorNorm = 1e-9

/// Mean diffusivity MD = (λ1 + λ2 + λ3) / 3 = trace(D) / 3 (Basser & Pierpaoli 1996).
@inlinable
public func meanDiffusivity(eigenvalues l: SIMD3<Double>) -> Double { l.sum() / 3 }

/// Axial diffusivity AD = λ1, the largest eigenvalue (Song et al. 2002, NeuroImage 17:1429).
@inlinable
public func axialDiffusivity(eigenvalues l: SIMD3<Double>) -> Double { l.x }

/// Radial diffusivity RD = (λ2 + λ3) / 2 (Song et al. 2002, NeuroImage 17:1429).
@inlinable
public func radialDiffusivity(eigenvalues l: SIMD3<Double>) -> Double { (l.y + l.z) / 2 }

/// The scalar maps a tensor fit gives, by their usual short names.
public enum TensorMetric: String, CaseIterable, Sendable, CustomStringConvertible {
    case fractionalAnisotropy = "fa"
    case meanDiffusivity = "md"
    case axialDiffusivity = "ad"
    case radialDiffusivity = "rd"

    public var description: String { rawValue }

    /// The metric of one voxel's eigenvalues (λ1 >= λ2 >= λ3).
    @inlinable
    public func value(eigenvalues l: SIMD3<Double>) -> Double {
        switch self {
        case .fractionalAnisotropy: return Diffusion.fractionalAnisotropy(eigenvalues: l)
        case .meanDiffusivity: return Diffusion.meanDiffusivity(eigenvalues: l)
        case .axialDiffusivity: return Diffusion.axialDiffusivity(eigenvalues: l)
        case .radialDiffusivity: return Diffusion.radialDiffusivity(eigenvalues: l)
        }
    }
}

extension TensorFit {
    /// A whole-grid map of `metric`: the metric in fitted voxels, 0 elsewhere.
    /// Voxel-wise, so identical for any thread count.
    public func map(_ metric: TensorMetric, threads: Int = 1) -> [Float] {
        var result = [Float](repeating: 0, count: voxelCount)
        eigenvalues.withUnsafeBufferPointer { e in
        fitted.withUnsafeBufferPointer { f in
        result.withUnsafeMutableBufferPointer { r in
            let eig = SharedReadBuffer(e), ok = SharedReadBuffer(f), out = SharedBuffer(r)
            forEachSlab(count: voxelCount, threads: threads) { range in
                for i in range where ok[i] {
                    let l = SIMD3(Double(eig[3 * i]), Double(eig[3 * i + 1]), Double(eig[3 * i + 2]))
                    out[i] = Float(metric.value(eigenvalues: l))
                }
            }
        }}}
        return result
    }
}
