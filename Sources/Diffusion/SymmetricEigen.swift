// Eigen-decomposition of a symmetric 3 x 3 matrix by cyclic Jacobi rotations.

import Foundation
import Geometry

/// Eigenvalues (descending) and unit eigenvectors of a symmetric 3 x 3 matrix.
///
/// Eigenvector signs are fixed so outputs are deterministic: the component of largest
/// magnitude is positive (on an exact tie, the first such component in x, y, z order).
public struct SymmetricEigen3: Sendable, Equatable {
    /// λ1 >= λ2 >= λ3.
    public var values: SIMD3<Double>
    /// Eigenvectors for λ1, λ2, λ3.
    public var vectors: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)

    public static func == (a: Self, b: Self) -> Bool {
        a.values == b.values && a.vectors.0 == b.vectors.0 && a.vectors.1 == b.vectors.1 && a.vectors.2 == b.vectors.2
    }

    /// Decomposes the symmetric matrix with the given upper-triangle entries
    /// (order D11 D12 D13 D22 D23 D33, as the tensor is stored).
    ///
    /// Cyclic Jacobi (Golub & Van Loan, Matrix Computations, 4th ed., §8.5): robust for
    /// repeated eigenvalues (isotropic and cylindrically symmetric tensors, where analytic
    /// formulas lose accuracy), converges quadratically; a 3 x 3 needs 3-5 sweeps.
    @inline(__always)
    public init(_ d11: Double, _ d12: Double, _ d13: Double, _ d22: Double, _ d23: Double, _ d33: Double) {
        var a11 = d11, a12 = d12, a13 = d13, a22 = d22, a23 = d23, a33 = d33
        // Eigenvector matrix V, columns are eigenvectors; v_rc.
        var v11 = 1.0, v12 = 0.0, v13 = 0.0
        var v21 = 0.0, v22 = 1.0, v23 = 0.0
        var v31 = 0.0, v32 = 0.0, v33 = 1.0
        let scale = abs(d11) + abs(d22) + abs(d33) + abs(d12) + abs(d13) + abs(d23)
        if scale > 0 && scale.isFinite {
            let tiny = scale * 1e-17
            for _ in 0..<32 {
                if abs(a12) <= tiny && abs(a13) <= tiny && abs(a23) <= tiny { break }
                // Rotation in plane (1,2).
                if abs(a12) > tiny {
                    let (c, s, t) = Self.rotation(a11, a22, a12)
                    a11 -= t * a12; a22 += t * a12; a12 = 0
                    let r13 = a13, r23 = a23
                    a13 = c * r13 - s * r23; a23 = s * r13 + c * r23
                    (v11, v12) = (c * v11 - s * v12, s * v11 + c * v12)
                    (v21, v22) = (c * v21 - s * v22, s * v21 + c * v22)
                    (v31, v32) = (c * v31 - s * v32, s * v31 + c * v32)
                }
                // Rotation in plane (1,3).
                if abs(a13) > tiny {
                    let (c, s, t) = Self.rotation(a11, a33, a13)
                    a11 -= t * a13; a33 += t * a13; a13 = 0
                    let r12 = a12, r32 = a23
                    a12 = c * r12 - s * r32; a23 = s * r12 + c * r32
                    (v11, v13) = (c * v11 - s * v13, s * v11 + c * v13)
                    (v21, v23) = (c * v21 - s * v23, s * v21 + c * v23)
                    (v31, v33) = (c * v31 - s * v33, s * v31 + c * v33)
                }
                // Rotation in plane (2,3).
                if abs(a23) > tiny {
                    let (c, s, t) = Self.rotation(a22, a33, a23)
                    a22 -= t * a23; a33 += t * a23; a23 = 0
                    let r21 = a12, r31 = a13
                    a12 = c * r21 - s * r31; a13 = s * r21 + c * r31
                    (v12, v13) = (c * v12 - s * v13, s * v12 + c * v13)
                    (v22, v23) = (c * v22 - s * v23, s * v22 + c * v23)
                    (v32, v33) = (c * v32 - s * v33, s * v32 + c * v33)
                }
            }
        }
        // Sort descending with a fixed order on ties (three compare-swaps, no allocation).
        var e0 = (a11, SIMD3(v11, v21, v31)), e1 = (a22, SIMD3(v12, v22, v32)), e2 = (a33, SIMD3(v13, v23, v33))
        if e1.0 > e0.0 { swap(&e0, &e1) }
        if e2.0 > e1.0 { swap(&e1, &e2) }
        if e1.0 > e0.0 { swap(&e0, &e1) }
        values = SIMD3(e0.0, e1.0, e2.0)
        vectors = (Self.canonicalSign(e0.1), Self.canonicalSign(e1.1), Self.canonicalSign(e2.1))
    }

    /// The Jacobi rotation that zeroes `apq` of the 2 x 2 block [[app, apq], [apq, aqq]]:
    /// returns c, s and t = s/c with the smaller rotation angle (Numerical Recipes §11.1).
    @inline(__always)
    static func rotation(_ app: Double, _ aqq: Double, _ apq: Double) -> (Double, Double, Double) {
        let theta = (aqq - app) / (2 * apq)
        var t = 1 / (abs(theta) + (theta * theta + 1).squareRoot())
        if theta < 0 { t = -t }
        if !theta.isFinite { t = 0 } // |apq| negligible against the diagonal gap
        let c = 1 / (t * t + 1).squareRoot()
        return (c, t * c, t)
    }

    /// Flips `v` so that its largest-magnitude component is positive.
    @inline(__always)
    static func canonicalSign(_ v: SIMD3<Double>) -> SIMD3<Double> {
        let ax = abs(v.x), ay = abs(v.y), az = abs(v.z)
        let lead = ax >= ay ? (ax >= az ? v.x : v.z) : (ay >= az ? v.y : v.z)
        return lead < 0 ? -v : v
    }
}

extension SymmetricEigen3 {
    /// The eigenvalues (descending) and the principal eigenvector of a symmetric 3 x 3
    /// matrix, in closed form where that is accurate and by ``init(_:_:_:_:_:_:)`` where not.
    ///
    /// Eigenvalues from the trigonometric solution of the characteristic cubic (Smith 1961,
    /// "Eigenvalues of a symmetric 3 × 3 matrix", Commun ACM 4:168): with q = tr A / 3,
    /// p = sqrt(tr((A − qI)²) / 6) and r = det((A − qI) / p) / 2,
    ///
    ///     λ1 = q + 2p cos(φ),  λ3 = q + 2p cos(φ + 2π/3),  λ2 = 3q − λ1 − λ3,  φ = acos(r) / 3.
    ///
    /// The eigenvector of λ1 is the largest of the cross products of two rows of A − λ1 I
    /// (Kopp 2008, "Efficient numerical diagonalization of hermitian 3x3 matrices", Int J Mod
    /// Phys C 19:523). Both lose accuracy as λ1 − λ2 shrinks (acos near ±1, nearly parallel
    /// rows), so when the gap is below 1e-3 of p (isotropic, oblate and near-diagonal-degenerate
    /// tensors) the Jacobi decomposition is used instead. Above it λ1 agrees with Jacobi's to
    /// about 1e-13 of the matrix norm and the vector to about 1e-10. When λ2 ≈ λ3 (a prolate,
    /// cylindrically symmetric tensor) their split is known only to about 1e-8 of the norm
    /// (√ε, from acos near 1), but their sum, and FA, MD, AD and RD, are as accurate as
    /// Jacobi's: FA changes only to second order in that split (all checked in the tests).
    /// About a fifth of Jacobi's cost: the tensor fit decomposes every voxel.
    ///
    /// The vector's sign follows ``canonicalSign(_:)``, as for the full decomposition.
    /// - Returns: λ1 >= λ2 >= λ3 and the unit eigenvector of λ1.
    @inline(__always)
    public static func principal(_ a11: Double, _ a12: Double, _ a13: Double, _ a22: Double, _ a23: Double,
                                 _ a33: Double) -> (values: SIMD3<Double>, vector: SIMD3<Double>) {
        let offDiagonal = a12 * a12 + a13 * a13 + a23 * a23
        let q = (a11 + a22 + a33) / 3
        let b11 = a11 - q, b22 = a22 - q, b33 = a33 - q
        let p = ((b11 * b11 + b22 * b22 + b33 * b33 + 2 * offDiagonal) / 6).squareRoot()
        if offDiagonal > 0, p > 0, p.isFinite {
            let inverse = 1 / p
            let c11 = b11 * inverse, c22 = b22 * inverse, c33 = b33 * inverse
            let c12 = a12 * inverse, c13 = a13 * inverse, c23 = a23 * inverse
            let determinant = c11 * (c22 * c33 - c23 * c23) - c12 * (c12 * c33 - c23 * c13) + c13 * (c12 * c23 - c22 * c13)
            let r = min(1, max(-1, determinant / 2))
            let phi = Foundation.acos(r) / 3
            let l1 = q + 2 * p * Foundation.cos(phi)
            var l3 = q + 2 * p * Foundation.cos(phi + 2 * Double.pi / 3)
            var l2 = 3 * q - l1 - l3
            if l2 < l3 { swap(&l2, &l3) } // rounding, when λ2 ≈ λ3
            if l1 - l2 > 1e-3 * p {
                let r0 = SIMD3(a11 - l1, a12, a13), r1 = SIMD3(a12, a22 - l1, a23), r2 = SIMD3(a13, a23, a33 - l1)
                let c01 = cross(r0, r1), c02 = cross(r0, r2), c12 = cross(r1, r2)
                let n01 = (c01 * c01).sum(), n02 = (c02 * c02).sum(), n12 = (c12 * c12).sum()
                let best = n01 >= n02 ? (n01 >= n12 ? c01 : c12) : (n02 >= n12 ? c02 : c12)
                let norm = max(n01, n02, n12)
                if norm > 0, norm.isFinite {
                    return (SIMD3(l1, l2, l3), canonicalSign(best / norm.squareRoot()))
                }
            }
        }
        let full = SymmetricEigen3(a11, a12, a13, a22, a23, a33)
        return (full.values, full.vectors.0)
    }
}
