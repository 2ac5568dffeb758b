import Foundation

/// A 4x4 voxel-to-world transform (row-major), mapping voxel indices (i, j, k, 1) to
/// scanner/template millimetres (x, y, z, 1) in the NIfTI RAS+ convention.
public struct Affine: Equatable, Sendable, CustomStringConvertible {
    /// Rows of the matrix; `rows[r][c]`.
    public var rows: [[Double]]

    public init(rows: [[Double]]) {
        precondition(rows.count == 4 && rows.allSatisfy { $0.count == 4 }, "an affine is 4x4")
        self.rows = rows
    }

    /// Scaling-only affine.
    public static func diagonal(_ x: Double, _ y: Double, _ z: Double) -> Affine {
        Affine(rows: [[x, 0, 0, 0], [0, y, 0, 0], [0, 0, z, 0], [0, 0, 0, 1]])
    }

    /// The upper-left 3x3 block (rotation, zooms and shears).
    public var linear: [[Double]] { (0..<3).map { r in Array(rows[r][0..<3]) } }

    /// The translation column.
    public var translation: [Double] { (0..<3).map { rows[$0][3] } }

    /// Determinant of the linear block: negative for radiological (LAS-like) storage.
    public var determinant: Double { determinant3(linear) }

    /// Maps a voxel index to world coordinates.
    public func apply(_ i: Double, _ j: Double, _ k: Double) -> (Double, Double, Double) {
        let x = rows[0][0] * i + rows[0][1] * j + rows[0][2] * k + rows[0][3]
        let y = rows[1][0] * i + rows[1][1] * j + rows[1][2] * k + rows[1][3]
        let z = rows[2][0] * i + rows[2][1] * j + rows[2][2] * k + rows[2][3]
        return (x, y, z)
    }

    /// The largest absolute difference between two affines' entries.
    public func maximumDifference(to other: Affine) -> Double {
        var worst = 0.0
        for r in 0..<4 { for c in 0..<4 { worst = max(worst, abs(rows[r][c] - other.rows[r][c])) } }
        return worst
    }

    /// Axis codes of the voxel axes ("LAS", "RAS", ...), computed as nibabel's
    /// `aff2axcodes(io_orientation(affine))` does: the linear block with unit columns is
    /// replaced by its closest orthogonal matrix (polar decomposition), then each voxel axis in
    /// turn takes the world axis it is most aligned with, and that world axis is removed.
    public var axisCodes: String {
        var linearBlock = linear
        // Normalise columns (remove zooms).
        for c in 0..<3 {
            let norm = (0..<3).reduce(0.0) { $0 + linearBlock[$1][c] * linearBlock[$1][c] }.squareRoot()
            guard norm > 0 else { return "???" }
            for r in 0..<3 { linearBlock[r][c] /= norm }
        }
        var rotation = closestOrthogonal(linearBlock)
        let labels: [(Character, Character)] = [("L", "R"), ("P", "A"), ("I", "S")]
        var codes = ""
        for column in 0..<3 {
            var best = -1
            var bestMagnitude = 0.0
            for row in 0..<3 where abs(rotation[row][column]) > bestMagnitude {
                best = row
                bestMagnitude = abs(rotation[row][column])
            }
            guard best >= 0, bestMagnitude > 1e-12 else { codes.append("?"); continue }
            codes.append(rotation[best][column] < 0 ? labels[best].0 : labels[best].1)
            for c in 0..<3 { rotation[best][c] = 0 }
        }
        return codes
    }

    public var description: String {
        rows.map { row in row.map { String(format: "%10.4f", $0) }.joined(separator: " ") }.joined(separator: "\n")
    }
}

func determinant3(_ m: [[Double]]) -> Double {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The orthogonal matrix closest to `m` in the Frobenius norm (the U V^T of its SVD), found
/// with Higham's Newton iteration X <- (X + X^-T) / 2 (Higham 1986, "Computing the polar
/// decomposition"), which converges quadratically for a non-singular matrix.
func closestOrthogonal(_ m: [[Double]]) -> [[Double]] {
    var x = m
    for _ in 0..<50 {
        let det = determinant3(x)
        guard abs(det) > 1e-300 else { return x }
        // Inverse transpose = cofactor matrix / det.
        var inverseTranspose = [[Double]](repeating: [0, 0, 0], count: 3)
        for r in 0..<3 {
            for c in 0..<3 {
                let r1 = (r + 1) % 3, r2 = (r + 2) % 3, c1 = (c + 1) % 3, c2 = (c + 2) % 3
                inverseTranspose[r][c] = (x[r1][c1] * x[r2][c2] - x[r1][c2] * x[r2][c1]) / det
            }
        }
        var change = 0.0
        for r in 0..<3 {
            for c in 0..<3 {
                let next = 0.5 * (x[r][c] + inverseTranspose[r][c])
                change = max(change, abs(next - x[r][c]))
                x[r][c] = next
            }
        }
        if change < 1e-15 { break }
    }
    return x
}
