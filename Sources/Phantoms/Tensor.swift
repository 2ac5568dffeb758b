/// A symmetric 3x3 diffusion tensor in mm²/s, in the world (RAS+ millimetre) frame.
///
/// The phantoms build tensors from chosen eigenvalues and a principal direction, so the true
/// eigen-decomposition is known exactly and nothing here ever has to diagonalise a matrix.
public struct DiffusionTensor: Equatable, Sendable {
    public var xx: Double, xy: Double, xz: Double, yy: Double, yz: Double, zz: Double

    public init(xx: Double, xy: Double, xz: Double, yy: Double, yz: Double, zz: Double) {
        self.xx = xx; self.xy = xy; self.xz = xz
        self.yy = yy; self.yz = yz; self.zz = zz
    }

    /// The zero tensor (no diffusion: background outside the head).
    public static let zero = DiffusionTensor(xx: 0, xy: 0, xz: 0, yy: 0, yz: 0, zz: 0)

    /// D = λ₁ e₁e₁ᵀ + λ₂ e₂e₂ᵀ + λ₃ e₃e₃ᵀ, with e₁ = `principalDirection` (normalised) and
    /// e₂, e₃ completing a right-handed orthonormal basis (e₂ ⟂ e₁ chosen from the world axis
    /// least aligned with e₁, by Gram–Schmidt; e₃ = e₁ × e₂).
    ///
    /// - Parameters:
    ///   - eigenvalues: λ₁ ≥ λ₂ ≥ λ₃ ≥ 0, in mm²/s.
    ///   - principalDirection: any non-zero vector along e₁.
    public init(eigenvalues: [Double], principalDirection: [Double]) {
        precondition(eigenvalues.count == 3 && principalDirection.count == 3, "three eigenvalues and a 3-vector")
        let (e1, e2, e3) = orthonormalBasis(around: principalDirection)
        let basis = [e1, e2, e3]
        func entry(_ r: Int, _ c: Int) -> Double {
            (0..<3).reduce(0.0) { $0 + eigenvalues[$1] * basis[$1][r] * basis[$1][c] }
        }
        self.init(xx: entry(0, 0), xy: entry(0, 1), xz: entry(0, 2), yy: entry(1, 1), yz: entry(1, 2), zz: entry(2, 2))
    }

    /// gᵀ D g: the apparent diffusion coefficient along the unit vector `g`.
    public func apparentDiffusion(along g: [Double]) -> Double {
        xx * g[0] * g[0] + yy * g[1] * g[1] + zz * g[2] * g[2]
            + 2 * (xy * g[0] * g[1] + xz * g[0] * g[2] + yz * g[1] * g[2])
    }

    /// The six unique elements in FSL/DIPY order (Dxx, Dxy, Dxz, Dyy, Dyz, Dzz).
    public var elements: [Double] { [xx, xy, xz, yy, yz, zz] }
}

/// The true parameters of one phantom voxel's tensor.
public struct TensorTruth: Equatable, Sendable {
    /// λ₁ ≥ λ₂ ≥ λ₃ in mm²/s.
    public var eigenvalues: [Double]
    /// Unit principal eigenvector in the world (RAS+) frame (sign arbitrary, as for any fit).
    public var principalDirection: [Double]
    public var tensor: DiffusionTensor

    public init(eigenvalues: [Double], principalDirection: [Double]) {
        self.eigenvalues = eigenvalues
        let norm = principalDirection.reduce(0) { $0 + $1 * $1 }.squareRoot()
        self.principalDirection = norm > 0 ? principalDirection.map { $0 / norm } : [0, 0, 0]
        self.tensor = norm > 0 ? DiffusionTensor(eigenvalues: eigenvalues, principalDirection: principalDirection) : .zero
    }

    /// No diffusion (background).
    public static let empty = TensorTruth(eigenvalues: [0, 0, 0], principalDirection: [0, 0, 0])

    public var fractionalAnisotropy: Double { Phantoms.fractionalAnisotropy(eigenvalues: eigenvalues) }
    public var meanDiffusivity: Double { Phantoms.meanDiffusivity(eigenvalues: eigenvalues) }
}

/// Fractional anisotropy, FA = √(3/2) · ‖λ − λ̄‖ / ‖λ‖ (Basser & Pierpaoli 1996, "Microstructural
/// and physiological features of tissues elucidated by quantitative-diffusion-tensor MRI",
/// J Magn Reson B 111:209-219). 0 when all eigenvalues are 0.
///
/// Internal on purpose: the `Diffusion` module has the public one, and code that imports both
/// modules must not meet two functions of the same name; the phantoms keep their own,
/// independent implementation as the truth the tests compare against.
func fractionalAnisotropy(eigenvalues l: [Double]) -> Double {
    let mean = (l[0] + l[1] + l[2]) / 3
    let deviation = (l[0] - mean) * (l[0] - mean) + (l[1] - mean) * (l[1] - mean) + (l[2] - mean) * (l[2] - mean)
    let magnitude = l[0] * l[0] + l[1] * l[1] + l[2] * l[2]
    guard magnitude > 0 else { return 0 }
    return (1.5 * deviation / magnitude).squareRoot()
}

/// Mean diffusivity, MD = (λ₁ + λ₂ + λ₃)/3 = Tr(D)/3 (Basser & Pierpaoli 1996).
func meanDiffusivity(eigenvalues l: [Double]) -> Double { (l[0] + l[1] + l[2]) / 3 }

/// Eigenvalues of a cylindrically symmetric tensor (λ₂ = λ₃) with the given FA and MD.
///
/// With λ₁ = MD + 2d and λ₂ = λ₃ = MD − d, FA = 3d / √(3MD² + 6d²), hence
/// d = MD · FA · √(3 / (9 − 6FA²)).
/// - Parameters:
///   - fractionalAnisotropy: in [0, 1).
///   - meanDiffusivity: in mm²/s.
/// - Returns: [λ₁, λ₂, λ₃], sorted in decreasing order.
public func cylindricalEigenvalues(fractionalAnisotropy fa: Double, meanDiffusivity md: Double) -> [Double] {
    precondition(fa >= 0 && fa < 1 && md >= 0, "FA in [0, 1), MD non-negative")
    let d = md * fa * (3 / (9 - 6 * fa * fa)).squareRoot()
    return [md + 2 * d, md - d, md - d]
}

/// e₁ = v/‖v‖ and two unit vectors completing a right-handed orthonormal basis.
func orthonormalBasis(around v: [Double]) -> ([Double], [Double], [Double]) {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).squareRoot()
    precondition(norm > 0, "a direction must be non-zero")
    let e1 = v.map { $0 / norm }
    // The world axis least aligned with e1 is never nearly parallel to it.
    let axis = (0..<3).min { abs(e1[$0]) < abs(e1[$1]) }!
    var helper = [0.0, 0.0, 0.0]
    helper[axis] = 1
    let dot = helper[0] * e1[0] + helper[1] * e1[1] + helper[2] * e1[2]
    var e2 = (0..<3).map { helper[$0] - dot * e1[$0] }
    let n2 = (e2[0] * e2[0] + e2[1] * e2[1] + e2[2] * e2[2]).squareRoot()
    e2 = e2.map { $0 / n2 }
    let e3 = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]]
    return (e1, e2, e3)
}
