// 3 x 3 matrices and the cross product.

/// A 3 x 3 matrix of doubles, stored by rows: the linear part of an ``Affine`` (rotation,
/// zooms and shears) or a change of frame for directions.
///
/// Every product sums in index order, `(a b)ᵢⱼ = (aᵢ₀ b₀ⱼ + aᵢ₁ b₁ⱼ) + aᵢ₂ b₂ⱼ`, and the
/// inverse is the adjugate over the determinant, so results are the same bit for bit wherever
/// they are computed (outputs written from them do not change with the caller).
public struct Matrix3: Equatable, Sendable {
    /// The first row.
    public var row0: SIMD3<Double>
    /// The second row.
    public var row1: SIMD3<Double>
    /// The third row.
    public var row2: SIMD3<Double>

    /// The matrix with these rows.
    @inlinable
    public init(rows row0: SIMD3<Double>, _ row1: SIMD3<Double>, _ row2: SIMD3<Double>) {
        self.row0 = row0
        self.row1 = row1
        self.row2 = row2
    }

    /// The matrix with these columns.
    @inlinable
    public init(columns c0: SIMD3<Double>, _ c1: SIMD3<Double>, _ c2: SIMD3<Double>) {
        self.init(rows: SIMD3(c0.x, c1.x, c2.x), SIMD3(c0.y, c1.y, c2.y), SIMD3(c0.z, c1.z, c2.z))
    }

    /// The diagonal matrix diag(d.x, d.y, d.z).
    @inlinable
    public init(diagonal d: SIMD3<Double>) {
        self.init(rows: SIMD3(d.x, 0, 0), SIMD3(0, d.y, 0), SIMD3(0, 0, d.z))
    }

    /// The identity matrix.
    public static let identity = Matrix3(diagonal: SIMD3(1, 1, 1))

    /// Row `r` (0, 1 or 2).
    @inlinable
    public func row(_ r: Int) -> SIMD3<Double> {
        switch r {
        case 0: return row0
        case 1: return row1
        case 2: return row2
        default: preconditionFailure("a Matrix3 has rows 0, 1 and 2, not \(r)")
        }
    }

    /// Column `c` (0, 1 or 2).
    @inlinable
    public func column(_ c: Int) -> SIMD3<Double> { SIMD3(row0[c], row1[c], row2[c]) }

    /// The entry in row `r` and column `c`.
    @inlinable
    public subscript(r: Int, c: Int) -> Double { row(r)[c] }

    /// The transpose, `(mᵀ)ᵢⱼ = mⱼᵢ`.
    @inlinable
    public var transpose: Matrix3 { Matrix3(columns: row0, row1, row2) }

    /// The Euclidean norm of each column: the voxel sizes when the matrix is the linear part
    /// of a voxel-to-world affine.
    @inlinable
    public var columnNorms: SIMD3<Double> {
        let squares = row0 * row0 + row1 * row1 + row2 * row2
        return SIMD3(squares.x.squareRoot(), squares.y.squareRoot(), squares.z.squareRoot())
    }

    /// The determinant, by cofactor expansion along the first row:
    /// `m₀₀ (m₁₁ m₂₂ − m₁₂ m₂₁) − m₀₁ (m₁₀ m₂₂ − m₁₂ m₂₀) + m₀₂ (m₁₀ m₂₁ − m₁₁ m₂₀)`.
    /// Negative for a reflection (radiological, LAS-like storage).
    @inlinable
    public var determinant: Double {
        row0.x * (row1.y * row2.z - row1.z * row2.y) - row0.y * (row1.x * row2.z - row1.z * row2.x)
            + row0.z * (row1.x * row2.y - row1.y * row2.x)
    }

    /// The inverse by the adjugate, `m⁻¹ = adj(m) / det(m)`: column j of the inverse is the
    /// cross product of rows j + 1 and j + 2 (indices mod 3), divided by the determinant.
    /// - Returns: the inverse, or nil when the determinant is zero or not finite.
    @inlinable
    public var inverse: Matrix3? {
        let det = determinant
        guard det != 0, det.isFinite else { return nil }
        return Matrix3(columns: cross(row1, row2) / det, cross(row2, row0) / det, cross(row0, row1) / det)
    }

    /// The product `a b`, each entry summed in index order.
    ///
    /// When a or b is a signed identity (such as FSL's x flip diag(−1, 1, 1)) the entries of the
    /// other are only negated or kept, so transforming a vector by the product gives the same
    /// values, bit for bit, as transforming it by b and then by a.
    @inlinable
    public static func * (a: Matrix3, b: Matrix3) -> Matrix3 {
        Matrix3(columns: a * b.column(0), a * b.column(1), a * b.column(2))
    }

    /// The matrix-vector product `m v`, `(m v)ᵢ = (mᵢ₀ v₀ + mᵢ₁ v₁) + mᵢ₂ v₂`.
    @inlinable
    public static func * (m: Matrix3, v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(m.row0.x * v.x + m.row0.y * v.y + m.row0.z * v.z,
              m.row1.x * v.x + m.row1.y * v.y + m.row1.z * v.z,
              m.row2.x * v.x + m.row2.y * v.y + m.row2.z * v.z)
    }

    /// The orthogonal matrix closest to this one in the Frobenius norm (the U Vᵀ of its SVD
    /// m = U Σ Vᵀ, the orthogonal factor of the polar decomposition).
    ///
    /// Found with Higham's Newton iteration `X ← (X + X⁻ᵀ) / 2` from X = m (Higham 1986,
    /// "Computing the polar decomposition — with applications", SIAM J Sci Stat Comput
    /// 7:1160-1174), which converges quadratically for a non-singular matrix; it stops when no
    /// entry changes by 1e-15 or after 50 steps. The determinant's sign is kept (a reflection
    /// stays a reflection).
    /// - Returns: the orthogonal factor; a (nearly) singular matrix, whose determinant falls
    ///   below 1e-300 in magnitude, is returned as the iteration left it.
    public func closestOrthogonal() -> Matrix3 {
        var x = self
        for _ in 0..<50 {
            let det = x.determinant
            guard abs(det) > 1e-300 else { return x }
            // X⁻ᵀ: the cofactor matrix over the determinant; its row i is the cross product
            // of rows i + 1 and i + 2.
            let inverseTranspose = Matrix3(rows: cross(x.row1, x.row2) / det, cross(x.row2, x.row0) / det,
                                           cross(x.row0, x.row1) / det)
            let next = Matrix3(rows: 0.5 * (x.row0 + inverseTranspose.row0), 0.5 * (x.row1 + inverseTranspose.row1),
                               0.5 * (x.row2 + inverseTranspose.row2))
            var change = 0.0
            for r in 0..<3 {
                let step = next.row(r) - x.row(r)
                change = max(change, abs(step.x))
                change = max(change, abs(step.y))
                change = max(change, abs(step.z))
            }
            x = next
            if change < 1e-15 { break }
        }
        return x
    }
}

extension Matrix3: ExpressibleByArrayLiteral {
    /// A matrix written as three rows: `[[2, 0, 0], [0, 2, 0], [0, 0, 2.5]]`.
    public init(arrayLiteral rows: SIMD3<Double>...) {
        precondition(rows.count == 3, "a Matrix3 literal has three rows, not \(rows.count)")
        self.init(rows: rows[0], rows[1], rows[2])
    }
}

/// The cross product `a × b = (a₁ b₂ − a₂ b₁, a₂ b₀ − a₀ b₂, a₀ b₁ − a₁ b₀)`: orthogonal to
/// both, of length |a| |b| sin θ, right-handed.
@inlinable
public func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
