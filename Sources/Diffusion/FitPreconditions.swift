// What a tensor fit needs before its numbers can be trusted: a well-conditioned design, b=0
// signal brighter than the diffusion-weighted signal, and volumes that hold data. Each check
// is a pure function of the table or the signal; the pipeline decides what to do when one fails.

import Foundation

/// Condition number above which a gradient design is refused: ten times the worst of the
/// usual schemes.
///
/// The design's condition number κ(X) bounds how much the least-squares tensor amplifies
/// noise in the log signal (Golub & Van Loan 2013, Matrix Computations, §5.3.8: the relative
/// error of the solution grows like κ times the relative residual). Measured on the scaled
/// design of ``designConditionNumber(_:)``: Jones' 6 directions with one b=0 give 6.8, 12 to
/// 64 evenly spread directions 8 to 19, 30 directions in a 30° cone 26, two shells 6.5; six
/// directions within ~10° of one axis give 500 to 300 000, which is where whole-brain FA
/// above 1 and a majority of negative eigenvalues were seen. 100 leaves a fivefold margin above
/// any usable scheme and is still far below the failures.
public let maximumDesignConditionNumber = 100.0

/// The 2-norm condition number of the tensor design matrix of a gradient table.
///
/// The design is the one ``TensorModel`` fits: rows
/// `(-b gx², -2b gx gy, -2b gx gz, -b gy², -2b gy gz, -b gz², 1)` with b divided by the
/// largest b-value, so every column is of order 1 and the number measures the geometry of
/// the directions, not the units of b. κ = sqrt(λmax / λmin) of XᵀX, its eigenvalues found
/// by cyclic Jacobi rotations (Golub & Van Loan 2013, §8.5). A rank-deficient design
/// (fewer than six distinct non-collinear directions, no b=0 or second b-value) gives
/// infinity.
///
/// - Parameter table: the volumes to be fitted.
/// - Returns: κ(X) >= 1, or `.infinity` when XᵀX is singular.
public func designConditionNumber(_ table: GradientTable) -> Double {
    let scale = (table.bValues.max() ?? 1) > 0 ? table.bValues.max()! : 1
    var a = [Double](repeating: 0, count: 49)
    for (b, g) in zip(table.bValues, table.directions) {
        let s = b / scale
        let row = [-s * g.x * g.x, -2 * s * g.x * g.y, -2 * s * g.x * g.z, -s * g.y * g.y,
                   -2 * s * g.y * g.z, -s * g.z * g.z, 1]
        for i in 0..<7 { for j in 0..<7 { a[i * 7 + j] += row[i] * row[j] } }
    }
    let eigenvalues = symmetricEigenvalues(a, size: 7)
    guard let largest = eigenvalues.max(), let smallest = eigenvalues.min(), largest > 0 else { return .infinity }
    // Below this XᵀX is singular to rounding: κ² would exceed 1/ε.
    guard smallest > largest * 1e-15 else { return .infinity }
    return (largest / smallest).squareRoot()
}

/// Eigenvalues of a small symmetric matrix (row-major), by cyclic Jacobi rotations until the
/// off-diagonal norm is below 1e-15 of the whole (at most 50 sweeps).
func symmetricEigenvalues(_ matrix: [Double], size n: Int) -> [Double] {
    var a = matrix
    var total = 0.0
    for v in a { total += v * v }
    for _ in 0..<50 {
        var off = 0.0
        for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
        if off <= 1e-30 * total { break }
        for p in 0..<(n - 1) {
            for q in (p + 1)..<n where a[p * n + q] != 0 {
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let kp = a[k * n + p], kq = a[k * n + q]
                    a[k * n + p] = c * kp - s * kq
                    a[k * n + q] = s * kp + c * kq
                }
                for k in 0..<n {
                    let pk = a[p * n + k], qk = a[q * n + k]
                    a[p * n + k] = c * pk - s * qk
                    a[q * n + k] = s * pk + c * qk
                }
            }
        }
    }
    return (0..<n).map { a[$0 * n + $0] }
}

/// Fraction of a volume's voxels above which the volume is left out of the fit: more than
/// half its brain voxels non-finite is a broken volume (a failed reconstruction or transfer),
/// not a few bad voxels, and fitting it would leave most voxels unfitted.
public let maximumNonFiniteVolumeFraction = 0.5

extension GradientTable {
    /// The table without the given volumes (0-based), in the same order.
    public func removing(volumes: Set<Int>) -> GradientTable {
        let kept = bValues.indices.filter { !volumes.contains($0) }
        return GradientTable(validatedBValues: kept.map { bValues[$0] }, directions: kept.map { directions[$0] },
                             b0Threshold: b0Threshold, source: source)
    }
}

/// Whether a fitted tensor is physically impossible: a negative eigenvalue (diffusivity
/// cannot be negative), which is also the only way FA exceeds 1. Eigenvalues of a zero
/// tensor that are negative by rounding alone (norm below ``zeroTensorNorm``) do not count,
/// as in ``TensorFit/quality``.
/// - Parameter eigenvalues: λ1 >= λ2 >= λ3.
public func isImpossibleTensor(eigenvalues l: SIMD3<Double>) -> Bool {
    isImpossibleTensor(eigenvalues: l, fractionalAnisotropy: fractionalAnisotropy(eigenvalues: l))
}

/// ``isImpossibleTensor(eigenvalues:)`` for a voxel whose FA is already computed.
func isImpossibleTensor(eigenvalues l: SIMD3<Double>, fractionalAnisotropy fa: Double) -> Bool {
    (l.z < 0 && abs(l.x) + abs(l.z) > zeroTensorNorm) || fa > 1
}
