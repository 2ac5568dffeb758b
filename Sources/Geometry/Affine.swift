/// An affine map `p ↦ A p + t` of 3D points: for an image, the voxel-to-world transform taking
/// voxel indices (i, j, k) to scanner or template millimetres (x, y, z) in the NIfTI RAS+
/// convention, the 4 x 4 matrix `[[A, t], [0, 0, 0, 1]]` of nibabel's `img.affine`.
public struct Affine: Equatable, Sendable {
    /// A: rotation, zooms and shears.
    public var linear: Matrix3
    /// t: where voxel (0, 0, 0) lies.
    public var translation: SIMD3<Double>

    /// The map `p ↦ linear p + translation`.
    public init(linear: Matrix3, translation: SIMD3<Double>) {
        self.linear = linear
        self.translation = translation
    }

    /// The affine of a 4 x 4 matrix given by rows, `rows[r][c]`; the last row is taken to be
    /// (0, 0, 0, 1), as it is for every NIfTI sform and qform.
    public init(rows: [[Double]]) {
        precondition(rows.count == 4 && rows.allSatisfy { $0.count == 4 }, "an affine is 4x4")
        linear = Matrix3(rows: SIMD3(rows[0][0], rows[0][1], rows[0][2]), SIMD3(rows[1][0], rows[1][1], rows[1][2]),
                         SIMD3(rows[2][0], rows[2][1], rows[2][2]))
        translation = SIMD3(rows[0][3], rows[1][3], rows[2][3])
    }

    /// The 4 x 4 matrix by rows, `rows[r][c]`, last row (0, 0, 0, 1).
    public var rows: [[Double]] {
        (0..<3).map { r in
            let row = linear.row(r)
            return [row.x, row.y, row.z, translation[r]]
        } + [[0, 0, 0, 1]]
    }

    /// Scaling only: diag(x, y, z), no translation.
    public static func diagonal(_ x: Double, _ y: Double, _ z: Double) -> Affine {
        Affine(linear: Matrix3(diagonal: SIMD3(x, y, z)), translation: .zero)
    }

    /// The image of the point `p`, `A p + t`, each coordinate summed in index order:
    /// `x = ((a₀₀ i + a₀₁ j) + a₀₂ k) + t₀`.
    @inlinable
    public func apply(_ p: SIMD3<Double>) -> SIMD3<Double> { linear * p + translation }

    /// The inverse map `p ↦ A⁻¹ p − A⁻¹ t`, with A⁻¹ as ``Matrix3/inverse``.
    /// - Returns: the inverse, or nil when A is singular.
    public var inverse: Affine? {
        guard let inverseLinear = linear.inverse else { return nil }
        return Affine(linear: inverseLinear, translation: -(inverseLinear * translation))
    }

    /// The composition "first `b`, then `a`": `(a * b)(p) = a(b(p))`, with linear part
    /// `A_a A_b` and translation `A_a t_b + t_a`. Equal to applying the two in turn up to
    /// rounding, not bit for bit.
    public static func * (a: Affine, b: Affine) -> Affine {
        Affine(linear: a.linear * b.linear, translation: a.linear * b.translation + a.translation)
    }

    /// The determinant of the linear part: negative for radiological (LAS-like) storage.
    public var determinant: Double { linear.determinant }

    /// The voxel sizes: the norms of the linear part's columns, as nibabel's `voxel_sizes`.
    public var zooms: SIMD3<Double> { linear.columnNorms }

    /// The largest absolute difference between the two affines' entries.
    public func maximumDifference(to other: Affine) -> Double {
        var worst = 0.0
        for r in 0..<3 {
            let difference = linear.row(r) - other.linear.row(r)
            worst = max(worst, abs(difference.x))
            worst = max(worst, abs(difference.y))
            worst = max(worst, abs(difference.z))
            worst = max(worst, abs(translation[r] - other.translation[r]))
        }
        return worst
    }

    /// The axis codes of the voxel axes ("LAS", "RAS", ...): the world direction each voxel
    /// axis points to, with L/R for x, P/A for y and I/S for z.
    ///
    /// Computed as nibabel's `aff2axcodes(io_orientation(affine))`: the linear part with unit
    /// columns is replaced by its closest orthogonal matrix (``Matrix3/closestOrthogonal()``,
    /// polar decomposition; Higham 1986), then each voxel axis in turn takes the world axis it
    /// is most aligned with, and that world axis is removed. "?" marks an axis with no world
    /// axis left; "???" a zero column.
    public var axisCodes: String {
        let norms = zooms
        guard norms.x > 0, norms.y > 0, norms.z > 0 else { return "???" }
        let unit = Matrix3(columns: linear.column(0) / norms.x, linear.column(1) / norms.y, linear.column(2) / norms.z)
        let rotation = unit.closestOrthogonal()
        var rows = [rotation.row0, rotation.row1, rotation.row2]
        let labels: [(Character, Character)] = [("L", "R"), ("P", "A"), ("I", "S")]
        var codes = ""
        for column in 0..<3 {
            var best = -1
            var bestMagnitude = 0.0
            for row in 0..<3 where abs(rows[row][column]) > bestMagnitude {
                best = row
                bestMagnitude = abs(rows[row][column])
            }
            guard best >= 0, bestMagnitude > 1e-12 else { codes.append("?"); continue }
            codes.append(rows[best][column] < 0 ? labels[best].0 : labels[best].1)
            rows[best] = .zero
        }
        return codes
    }
}
