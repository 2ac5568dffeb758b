import Foundation
import Geometry
import Testing
import TestSupport

// MARK: - Helpers

/// Whether every entry of `a` is within `tolerance` of `b`'s.
func close(_ a: Matrix3, _ b: Matrix3, tolerance: Double = 1e-12) -> Bool {
    (0..<3).allSatisfy { r in (0..<3).allSatisfy { c in abs(a[r, c] - b[r, c]) <= tolerance } }
}

func close(_ a: SIMD3<Double>, _ b: SIMD3<Double>, tolerance: Double = 1e-12) -> Bool {
    let d = a - b
    return max(abs(d.x), abs(d.y), abs(d.z)) <= tolerance
}

func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }

/// The rotation by `angle` radians about the unit vector `axis` (Rodrigues' formula,
/// R = I + sin θ K + (1 − cos θ) K², K the cross-product matrix of the axis).
func rotation(about axis: SIMD3<Double>, angle: Double) -> Matrix3 {
    let k: Matrix3 = [[0, -axis.z, axis.y], [axis.z, 0, -axis.x], [-axis.y, axis.x, 0]]
    let k2 = k * k
    let s = sin(angle), c = 1 - cos(angle)
    return Matrix3(rows: SIMD3(1, 0, 0) + s * k.row0 + c * k2.row0, SIMD3(0, 1, 0) + s * k.row1 + c * k2.row1,
                   SIMD3(0, 0, 1) + s * k.row2 + c * k2.row2)
}

extension SplitMix64 {
    /// Uniform in [low, high).
    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// A random rotation times random zooms and a small shear, with a random translation:
    /// a plausible (oblique) voxel-to-world affine.
    mutating func affine() -> Affine {
        let r = rotation(about: unitVector(), angle: uniform(-Double.pi, Double.pi))
        let shear: Matrix3 = [[1, uniform(-0.2, 0.2), uniform(-0.2, 0.2)], [0, 1, uniform(-0.2, 0.2)], [0, 0, 1]]
        let zooms = Matrix3(diagonal: SIMD3(uniform(0.5, 3), uniform(0.5, 3), uniform(0.5, 3)) * (uniform() < 0.5 ? SIMD3(-1, 1, 1) : SIMD3(1, 1, 1)))
        return Affine(linear: r * shear * zooms, translation: SIMD3(uniform(-100, 100), uniform(-100, 100), uniform(-100, 100)))
    }
}

// MARK: - Matrix3

@Suite("3 x 3 matrices")
struct Matrix3Tests {
    // det = 1; inverse by hand (adjugate): [[-24, 18, 5], [20, -15, -4], [-5, 4, 1]].
    static let m: Matrix3 = [[1, 2, 3], [0, 1, 4], [5, 6, 0]]

    @Test("products, transpose and identity against hand-computed values")
    func products() {
        let a: Matrix3 = [[1, 2, 0], [0, 1, 3], [4, 0, 1]]
        #expect(a * Self.m == [[1, 4, 11], [15, 19, 4], [9, 14, 12]])
        #expect(Self.m * a == [[13, 4, 9], [16, 1, 7], [5, 16, 18]])
        #expect(Self.m * SIMD3(1, -1, 2) == SIMD3(5, 7, -1))
        #expect(Self.m.transpose == [[1, 0, 5], [2, 1, 6], [3, 4, 0]])
        #expect(Self.m.transpose.row(2) == Self.m.column(2))
        #expect(Matrix3.identity * Self.m == Self.m && Self.m * .identity == Self.m)
        #expect(Matrix3(columns: SIMD3(1, 0, 5), SIMD3(2, 1, 6), SIMD3(3, 4, 0)) == Self.m)
        #expect(Self.m[2, 1] == 6 && Self.m[1, 2] == 4)
        #expect(Matrix3(diagonal: SIMD3(2, 3, 4)) * SIMD3(1, 1, 1) == SIMD3(2, 3, 4))
        #expect(Self.m.columnNorms == SIMD3(26.0.squareRoot(), 41.0.squareRoot(), 5))
    }

    @Test("determinant and inverse")
    func determinantAndInverse() throws {
        #expect(Self.m.determinant == 1)
        #expect(Matrix3(diagonal: SIMD3(2, 3, -4)).determinant == -24)
        #expect(try #require(Self.m.inverse) == [[-24, 18, 5], [20, -15, -4], [-5, 4, 1]])
        #expect(Matrix3(diagonal: SIMD3(2, 4, -0.5)).inverse == Matrix3(diagonal: SIMD3(0.5, 0.25, -2)))
        // Rows 0 and 1 equal, and a zero column: singular.
        #expect(([[1, 1, 0], [1, 1, 0], [0, 0, 1]] as Matrix3).inverse == nil)
        #expect(([[1, 0, 0], [0, 0, 0], [0, 0, 1]] as Matrix3).inverse == nil)

        var random = SplitMix64(seed: 11)
        for _ in 0..<200 {
            let a = random.affine().linear, b = random.affine().linear
            let inverse = try #require(a.inverse)
            #expect(close(inverse * a, .identity, tolerance: 1e-12))
            #expect(close(a * inverse, .identity, tolerance: 1e-12))
            // det(AB) = det A det B, det Aᵀ = det A, det A⁻¹ = 1 / det A.
            #expect(abs((a * b).determinant - a.determinant * b.determinant) <= 1e-12 * abs(a.determinant * b.determinant))
            #expect(abs(a.transpose.determinant - a.determinant) <= 1e-12 * abs(a.determinant))
            #expect(abs(inverse.determinant * a.determinant - 1) <= 1e-12)
        }
    }

    @Test("the closest orthogonal matrix of a rotation times zooms is the rotation")
    func closestOrthogonalOfScaledRotation() {
        var random = SplitMix64(seed: 12)
        for _ in 0..<100 {
            let r = rotation(about: random.unitVector(), angle: random.uniform(-Double.pi, Double.pi))
            let reflection = Matrix3(diagonal: SIMD3(random.uniform() < 0.5 ? -1 : 1, 1, 1))
            let zooms = Matrix3(diagonal: SIMD3(random.uniform(0.3, 4), random.uniform(0.3, 4), random.uniform(0.3, 4)))
            // M = (R F) Z is a polar decomposition (R F orthogonal, Z symmetric positive
            // definite), so its orthogonal factor is R F.
            #expect(close((r * reflection * zooms).closestOrthogonal(), r * reflection, tolerance: 1e-12))
        }
        #expect(close(Matrix3(diagonal: SIMD3(2, 3, 4)).closestOrthogonal(), .identity, tolerance: 1e-15))
    }

    @Test("the closest orthogonal matrix is a polar factor: Q orthogonal, Qᵀ M symmetric positive definite")
    func polarDecomposition() {
        var random = SplitMix64(seed: 13)
        for _ in 0..<100 {
            let m = random.affine().linear
            let q = m.closestOrthogonal()
            #expect(close(q.transpose * q, .identity, tolerance: 1e-12))
            let h = q.transpose * m
            #expect(close(h, h.transpose, tolerance: 1e-9))
            // Positive definite: positive leading principal minors (Sylvester's criterion).
            #expect(h[0, 0] > 0 && h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0] > 0 && h.determinant > 0)
            #expect((q.determinant > 0) == (m.determinant > 0))
        }
    }
}

// MARK: - Cross product

@Suite("Cross product")
struct CrossTests {
    @Test("basis vectors, antisymmetry, orthogonality and the classical identities")
    func identities() {
        let x = SIMD3<Double>(1, 0, 0), y = SIMD3<Double>(0, 1, 0), z = SIMD3<Double>(0, 0, 1)
        #expect(cross(x, y) == z && cross(y, z) == x && cross(z, x) == y)
        #expect(cross(y, x) == -z)
        #expect(cross(SIMD3(1, 2, 3), SIMD3(4, 5, 6)) == SIMD3(-3, 6, -3))
        var random = SplitMix64(seed: 21)
        for _ in 0..<200 {
            let a = SIMD3(random.normal(), random.normal(), random.normal())
            let b = SIMD3(random.normal(), random.normal(), random.normal())
            let c = SIMD3(random.normal(), random.normal(), random.normal())
            let axb = cross(a, b)
            #expect(axb == -cross(b, a))
            #expect(abs(dot(axb, a)) <= 1e-12 && abs(dot(axb, b)) <= 1e-12)
            #expect(cross(a, a) == .zero)
            // Lagrange: |a × b|² = |a|² |b|² − (a · b)².
            #expect(abs(dot(axb, axb) - (dot(a, a) * dot(b, b) - dot(a, b) * dot(a, b))) <= 1e-12 * dot(a, a) * dot(b, b))
            // a × (b × c) = b (a · c) − c (a · b).
            #expect(close(cross(a, cross(b, c)), b * dot(a, c) - c * dot(a, b), tolerance: 1e-12))
            // The scalar triple product is the determinant of the rows.
            #expect(abs(dot(axb, c) - Matrix3(rows: a, b, c).determinant) <= 1e-12)
        }
    }
}

// MARK: - Affine

@Suite("Affine maps")
struct AffineTests {
    static let las = Affine(rows: [[-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])

    @Test("4 x 4 rows, apply, zooms and maximum difference")
    func basics() {
        let a = Affine(rows: [[1, 2, 3, 10], [0, 1, 4, 20], [5, 6, 0, 30], [0, 0, 0, 1]])
        #expect(a.rows == [[1, 2, 3, 10], [0, 1, 4, 20], [5, 6, 0, 30], [0, 0, 0, 1]])
        #expect(a.linear == Matrix3Tests.m && a.translation == SIMD3(10, 20, 30))
        #expect(a.apply(SIMD3(1, -1, 2)) == SIMD3(15, 27, 29))
        #expect(Self.las.apply(SIMD3(45, 63, 36)) == .zero)
        #expect(Self.las.zooms == SIMD3(2, 2, 2) && Self.las.determinant == -8)
        #expect(Affine.diagonal(2, 3, 4).rows == [[2, 0, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]])
        var moved = a
        moved.translation.y += 0.25
        moved.linear.row2.x -= 0.5
        #expect(a.maximumDifference(to: moved) == 0.5 && moved.maximumDifference(to: a) == 0.5)
        #expect(a.maximumDifference(to: a) == 0)
    }

    @Test("apply sums in index order, and the inverse is the adjugate over the determinant, bit for bit")
    func operationOrder() throws {
        var random = SplitMix64(seed: 31)
        for _ in 0..<100 {
            let a = random.affine()
            let m = a.rows
            let p = SIMD3(random.uniform(-50, 50), random.uniform(-50, 50), random.uniform(-50, 50))
            let expected = SIMD3(m[0][0] * p.x + m[0][1] * p.y + m[0][2] * p.z + m[0][3],
                                 m[1][0] * p.x + m[1][1] * p.y + m[1][2] * p.z + m[1][3],
                                 m[2][0] * p.x + m[2][1] * p.y + m[2][2] * p.z + m[2][3])
            #expect(a.apply(p) == expected)
            // Entry (r, c) of the inverse: the cofactor of (c, r) over the determinant.
            let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
            #expect(a.determinant == det)
            let inverse = try #require(a.inverse)
            for r in 0..<3 {
                for c in 0..<3 {
                    let r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3
                    #expect(inverse.linear[r, c] == (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det)
                }
                let row = inverse.linear.row(r)
                #expect(inverse.translation[r] == -(row.x * m[0][3] + row.y * m[1][3] + row.z * m[2][3]))
            }
        }
    }

    @Test("the inverse of random affines, composed with them, is the identity")
    func inverse() throws {
        var random = SplitMix64(seed: 32)
        for _ in 0..<200 {
            let a = random.affine()
            let inverse = try #require(a.inverse)
            for product in [inverse * a, a * inverse] {
                #expect(close(product.linear, .identity, tolerance: 1e-12))
                #expect(close(product.translation, .zero, tolerance: 1e-11))
            }
            let p = SIMD3(random.uniform(-50, 50), random.uniform(-50, 50), random.uniform(-50, 50))
            #expect(close(inverse.apply(a.apply(p)), p, tolerance: 1e-11))
        }
        #expect(Affine(linear: [[1, 1, 0], [1, 1, 0], [0, 0, 1]], translation: SIMD3(1, 2, 3)).inverse == nil)
        #expect(try #require(Self.las.inverse).rows == [[-0.5, 0, 0, 45], [0, 0.5, 0, 63], [0, 0, 0.5, 36], [0, 0, 0, 1]])
    }

    @Test("composition applies the right-hand map first")
    func composition() {
        let scale = Affine.diagonal(2, 3, 4)
        let shift = Affine(linear: .identity, translation: SIMD3(1, 1, 1))
        #expect((shift * scale).apply(SIMD3(1, 1, 1)) == SIMD3(3, 4, 5))
        #expect((scale * shift).apply(SIMD3(1, 1, 1)) == SIMD3(4, 6, 8))
        var random = SplitMix64(seed: 33)
        for _ in 0..<100 {
            let a = random.affine(), b = random.affine()
            let p = SIMD3(random.uniform(-50, 50), random.uniform(-50, 50), random.uniform(-50, 50))
            #expect(close((a * b).apply(p), a.apply(b.apply(p)), tolerance: 1e-10))
        }
    }

    @Test("zooms of a rotation times zooms are the zooms")
    func zooms() {
        var random = SplitMix64(seed: 34)
        for _ in 0..<100 {
            let r = rotation(about: random.unitVector(), angle: random.uniform(-Double.pi, Double.pi))
            let z = SIMD3(random.uniform(0.3, 4), random.uniform(0.3, 4), random.uniform(0.3, 4))
            #expect(close(Affine(linear: r * Matrix3(diagonal: z), translation: .zero).zooms, z, tolerance: 1e-12))
        }
    }

    @Test("axis codes of RAS, LAS, LPS, permuted and oblique grids",
          arguments: [
              ([[2, 0, 0], [0, 2, 0], [0, 0, 2.5]], "RAS"),
              ([[-2, 0, 0], [0, 2, 0], [0, 0, 2]], "LAS"),
              ([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], "LPS"),
              ([[0, 2, 0], [-2, 0, 0], [0, 0, 2]], "PRS"),
              ([[0, 0, 1], [1, 0, 0], [0, 1, 0]], "ASR"),
              ([[1, 0, 0], [0, 0, 1], [0, -1, 0]], "RIA"),
              ([[0, 0, 0], [0, 1, 0], [0, 0, 1]], "???"),
          ] as [(Matrix3, String)])
    func axisCodes(linear: Matrix3, codes: String) {
        #expect(Affine(linear: linear, translation: SIMD3(7, -3, 2)).axisCodes == codes)
    }

    @Test("oblique axis codes follow the nearest world axis")
    func obliqueAxisCodes() {
        let z = SIMD3<Double>(0, 0, 1)
        let zooms = Matrix3(diagonal: SIMD3(2, 2, 3))
        // 20° about z: still RAS; 80°: voxel i points mostly anterior, j mostly left.
        #expect(Affine(linear: rotation(about: z, angle: 20 * Double.pi / 180) * zooms, translation: .zero).axisCodes == "RAS")
        #expect(Affine(linear: rotation(about: z, angle: 80 * Double.pi / 180) * zooms, translation: .zero).axisCodes == "ALS")
        // LAS tilted by 30° about x (the nibabel fixture's kind of oblique scan).
        let tilted = rotation(about: SIMD3(1, 0, 0), angle: 30 * Double.pi / 180) * Matrix3(diagonal: SIMD3(-2, 2, 2))
        #expect(Affine(linear: tilted, translation: .zero).axisCodes == "LAS")
        // 53° about x: j points more superior than anterior and takes S; k is left with the
        // y axis, which it points down (posterior).
        let tipped: Matrix3 = [[1, 0, 0], [0, 0.6, -0.8], [0, 0.8, 0.6]]
        #expect(Affine(linear: tipped, translation: .zero).axisCodes == "RSP")
    }
}

// MARK: - Resampling

@Suite("Nearest-neighbour resampling")
struct ResamplingTests {
    /// A 4 x 3 x 2 source grid of 2 mm voxels at the origin, labelled 1 + voxel index.
    static let shape = (x: 4, y: 3, z: 2)
    static let labels = (0..<24).map { Int32($0 + 1) }
    static let affine = Affine.diagonal(2, 2, 2)

    static func label(_ i: Int, _ j: Int, _ k: Int) -> Int32 { labels[i + 4 * (j + 3 * k)] }

    @Test("the same grid gives the labels back")
    func identity() {
        #expect(resampleNearest(Self.labels, sourceShape: Self.shape, sourceAffine: Self.affine,
                                targetShape: Self.shape, targetAffine: Self.affine) == Self.labels)
    }

    @Test("a grid flipped along x reads the source backwards")
    func flipped() throws {
        // Target voxel i sits at x = 6 − 2i, which is source voxel 3 − i.
        let target = Affine(rows: [[-2, 0, 0, 6], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
        let out = try #require(resampleNearest(Self.labels, sourceShape: Self.shape, sourceAffine: Self.affine,
                                               targetShape: Self.shape, targetAffine: target))
        var expected: [Int32] = []
        for k in 0..<2 { for j in 0..<3 { for i in 0..<4 { expected.append(Self.label(3 - i, j, k)) } } }
        #expect(out == expected)
        #expect(out[0] == 4 && out[3] == 1)
    }

    @Test("a shifted grid reads 0 outside the source")
    func shifted() throws {
        // Target voxel (i, j, k) sits at (2i + 2, 2j, 2k − 2): source voxel (i + 1, j, k − 1).
        let target = Affine(rows: [[2, 0, 0, 2], [0, 2, 0, 0], [0, 0, 2, -2], [0, 0, 0, 1]])
        let out = try #require(resampleNearest(Self.labels, sourceShape: Self.shape, sourceAffine: Self.affine,
                                               targetShape: Self.shape, targetAffine: target))
        let expected: [Int32] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0]
        #expect(out == expected)
    }

    @Test("a finer grid rounds halves away from zero")
    func finer() throws {
        // Source voxels at x = 0, 2, 4; target voxels at x = 0, 1, ..., 5, that is source
        // positions 0, 0.5, 1, 1.5, 2, 2.5.
        let out = try #require(resampleNearest([10, 20, 30], sourceShape: (3, 1, 1), sourceAffine: .diagonal(2, 1, 1),
                                               targetShape: (6, 1, 1), targetAffine: .diagonal(1, 1, 1)))
        #expect(out == [10, 20, 20, 30, 30, 0])
        // Offset by −1.5 mm in world x: positions −0.75, −0.25, 0.25, 0.75, 1.25, 1.75.
        let shifted = Affine(linear: .identity, translation: SIMD3(-1.5, 0, 0))
        #expect(resampleNearest([10, 20, 30], sourceShape: (3, 1, 1), sourceAffine: .diagonal(2, 1, 1),
                                targetShape: (6, 1, 1), targetAffine: shifted) == [0, 10, 10, 20, 20, 30])
    }

    @Test("a singular source affine gives nil, far-away grids give zeros")
    func degenerate() {
        let singular = Affine(linear: [[1, 0, 0], [0, 0, 0], [0, 0, 1]], translation: .zero)
        #expect(resampleNearest(Self.labels, sourceShape: Self.shape, sourceAffine: singular,
                                targetShape: Self.shape, targetAffine: Self.affine) == nil)
        let far = Affine(linear: Matrix3(diagonal: SIMD3(2, 2, 2)), translation: SIMD3(1e300, 0, 0))
        #expect(resampleNearest(Self.labels, sourceShape: Self.shape, sourceAffine: Self.affine,
                                targetShape: Self.shape, targetAffine: far) == [Int32](repeating: 0, count: 24))
    }
}
