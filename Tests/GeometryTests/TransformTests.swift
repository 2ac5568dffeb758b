import Geometry
import Testing

/// A labelled grid whose label says where it is: voxel (i, j, k) holds 1 + i + 100 j + 10000 k.
private func coordinateLabels(_ s: (x: Int, y: Int, z: Int)) -> [Int32] {
    var labels = [Int32](repeating: 0, count: s.x * s.y * s.z)
    for k in 0..<s.z { for j in 0..<s.y { for i in 0..<s.x { labels[i + s.x * (j + s.y * k)] = Int32(1 + i + 100 * j + 10000 * k) } } }
    return labels
}

private func label(_ i: Int, _ j: Int, _ k: Int) -> Int32 { Int32(1 + i + 100 * j + 10000 * k) }

private func near(_ a: SIMD3<Double>, _ b: SIMD3<Double>, _ tolerance: Double = 1e-12) -> Bool {
    let d = a - b
    return max(abs(d.x), max(abs(d.y), abs(d.z))) <= tolerance
}

@Suite("ITK/ANTs transforms, LPS, and warping labels")
struct TransformTests {
    let shape = (x: 12, y: 10, z: 8)

    @Test("RAS and LPS differ by diag(-1, -1, 1), applied to points and to voxel-to-world affines")
    func lpsConversion() {
        let p = SIMD3(3.5, -2.0, 7.25)
        #expect(LPS.fromRAS(p) == SIMD3(-3.5, 2.0, 7.25))
        #expect(LPS.toRAS(LPS.fromRAS(p)) == p)
        // A NIfTI affine (RAS, 2 mm, origin at (-90, -126, -72)): ITK's origin is (90, 126, -72)
        // and its direction diag(-1, -1, 1), as ITK reads such a file.
        let ras = Affine(linear: Matrix3(diagonal: SIMD3(2, 2, 2)), translation: SIMD3(-90, -126, -72))
        let lps = LPS.voxelToLPS(ras)
        #expect(lps.translation == SIMD3(90, 126, -72))
        #expect(lps.linear == Matrix3(diagonal: SIMD3(-2, -2, 2)))
        let v = SIMD3(5.0, 6.0, 7.0)
        #expect(near(lps.apply(v), LPS.fromRAS(ras.apply(v))))
        let grid = LPS.gridAffine(origin: SIMD3(90, 126, -72), spacing: SIMD3(2, 2, 2), direction: Matrix3(diagonal: SIMD3(-1, -1, 1)))
        #expect(grid == lps)
    }

    @Test("ITK affine parameters: T(x) = M (x - c) + t + c, and its inverse")
    func affineParameters() throws {
        let m = Matrix3(rows: SIMD3(0, -1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1))
        let c = SIMD3(10.0, 20.0, 30.0), t = SIMD3(1.0, 2.0, 3.0)
        let transform = try #require(AffineTransform(parameters: [0, -1, 0, 1, 0, 0, 0, 0, 1, 1, 2, 3], fixedParameters: [10, 20, 30]))
        for x in [SIMD3(0.0, 0, 0), SIMD3(12.5, -3, 8), c] {
            #expect(near(transform.apply(x), m * (x - c) + t + c))
            #expect(near(try #require(transform.inverse).apply(transform.apply(x)), x, 1e-12))
        }
        #expect(AffineTransform(parameters: [1, 2, 3], fixedParameters: []) == nil)
        #expect(AffineTransform(parameters: Array(repeating: .nan, count: 12), fixedParameters: [0, 0, 0]) == nil)
    }

    @Test("A pure translation of +2 mm in LPS x moves the labels 2 voxels towards RAS +x in the output")
    func translation() throws {
        let labels = coordinateLabels(shape)
        let identity = Affine.diagonal(1, 1, 1)
        let chain = TransformChain([.affine(AffineTransform(matrix: .identity, translation: SIMD3(2, 0, 0)))])
        let out = try #require(warpNearest(labels, sourceShape: shape, sourceAffine: identity, targetShape: shape,
                                           targetAffine: identity, through: chain, threads: 1))
        // Output point at RAS x = i is LPS -i, mapped to LPS -i + 2 = RAS i - 2: atlas voxel i - 2.
        for k in 0..<shape.z { for j in 0..<shape.y { for i in 0..<shape.x {
            let expected = i >= 2 ? label(i - 2, j, k) : 0
            #expect(out[i + shape.x * (j + shape.y * k)] == expected)
        } } }
    }

    @Test("A 90-degree rotation about z (LPS) about a centre maps each voxel where the formula says")
    func rotation() throws {
        let s = (x: 9, y: 9, z: 3)
        let labels = coordinateLabels(s)
        let identity = Affine.diagonal(1, 1, 1)
        // About LPS centre (-4, -4, 0) = RAS (4, 4, 0), the grid's middle voxel.
        let m = Matrix3(rows: SIMD3(0, -1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1))
        let chain = TransformChain([.affine(AffineTransform(matrix: m, translation: .zero, center: SIMD3(-4, -4, 0)))])
        let out = try #require(warpNearest(labels, sourceShape: s, sourceAffine: identity, targetShape: s,
                                           targetAffine: identity, through: chain, threads: 2))
        for k in 0..<s.z { for j in 0..<s.y { for i in 0..<s.x {
            // LPS x = (-i, -j, k); centred (4 - i, 4 - j); rotated (j - 4, 4 - i); back (j - 8, -i, k) LPS
            // = RAS (8 - j, i, k).
            #expect(out[i + s.x * (j + s.y * k)] == label(8 - j, i, k))
        } } }
    }

    @Test("A constant displacement field adds its vector inside the field and nothing outside")
    func constantField() throws {
        let labels = coordinateLabels(shape)
        let identity = Affine.diagonal(1, 1, 1)
        // Field on voxels 0...5 along x (LPS grid of the same RAS image), d = (0, 0, 3) LPS.
        let fieldShape = (x: 6, y: shape.y, z: shape.z)
        var vectors = [Float](repeating: 0, count: 3 * fieldShape.x * fieldShape.y * fieldShape.z)
        for n in 0..<(fieldShape.x * fieldShape.y * fieldShape.z) { vectors[3 * n + 2] = 3 }
        let field = try #require(DisplacementField(shape: fieldShape, gridToLPS: LPS.voxelToLPS(identity), vectors: vectors))
        #expect(field.displacement(at: LPS.fromRAS(SIMD3(2.3, 4.7, 1.1))) == SIMD3(0, 0, 3))
        // Inside the half-voxel margin the edge value holds; beyond it, zero.
        #expect(field.displacement(at: LPS.fromRAS(SIMD3(5.49, 0, 0))) == SIMD3(0, 0, 3))
        #expect(field.displacement(at: LPS.fromRAS(SIMD3(5.5, 0, 0))) == .zero)
        #expect(field.displacement(at: LPS.fromRAS(SIMD3(-0.5, 0, 0))) == SIMD3(0, 0, 3))
        #expect(field.displacement(at: LPS.fromRAS(SIMD3(-0.51, 0, 0))) == .zero)
        let out = try #require(warpNearest(labels, sourceShape: shape, sourceAffine: identity, targetShape: shape,
                                           targetAffine: identity, through: TransformChain([.displacementField(field)]), threads: 3))
        for k in 0..<shape.z { for j in 0..<shape.y { for i in 0..<shape.x {
            let expected: Int32 = i <= 5 ? (k + 3 < shape.z ? label(i, j, k + 3) : 0) : label(i, j, k)
            #expect(out[i + shape.x * (j + shape.y * k)] == expected)
        } } }
    }

    @Test("Trilinear interpolation reproduces a displacement linear in the index exactly")
    func linearField() throws {
        let s = (x: 5, y: 4, z: 3)
        let grid = LPS.gridAffine(origin: SIMD3(1, 2, 3), spacing: SIMD3(2, 1.5, 1), direction: .identity)
        var vectors: [Float] = []
        for k in 0..<s.z { for j in 0..<s.y { for i in 0..<s.x {
            vectors += [Float(i), Float(2 * j), Float(i + j - k)]
        } } }
        let field = try #require(DisplacementField(shape: s, gridToLPS: grid, vectors: vectors))
        for u in [SIMD3(0.25, 1.5, 0.75), SIMD3(3.9, 2.1, 1.99), SIMD3(1, 1, 1)] {
            let x = grid.apply(u)
            #expect(near(field.displacement(at: x), SIMD3(u.x, 2 * u.y, u.x + u.y - u.z), 1e-12))
        }
    }

    @Test("An affine composed with its inverse in a chain leaves every label in place")
    func invertedAffine() throws {
        let labels = coordinateLabels(shape)
        let affine = Affine(linear: Matrix3(diagonal: SIMD3(1, 1, 1)), translation: SIMD3(-6, -5, -4))
        let m = Matrix3(rows: SIMD3(0.9, 0.1, 0.05), SIMD3(-0.1, 1.1, 0.02), SIMD3(0.03, -0.04, 0.95))
        let a = AffineTransform(matrix: m, translation: SIMD3(1.7, -2.2, 0.4), center: SIMD3(3, 1, -2))
        let chain = TransformChain([.affine(a), .affine(try #require(a.inverse))])
        let out = try #require(warpNearest(labels, sourceShape: shape, sourceAffine: affine, targetShape: shape,
                                           targetAffine: affine, through: chain, threads: 2))
        #expect(out == labels)
    }

    @Test("A chain applies the last transform first, as antsApplyTransforms' -t list")
    func compositeOrder() {
        let scale = AffineTransform(matrix: Matrix3(diagonal: SIMD3(2, 2, 2)), translation: .zero)
        let shift = AffineTransform(matrix: .identity, translation: SIMD3(1, 0, 0))
        let x = SIMD3(1.0, 1.0, 1.0)
        // -t shift -t scale: scale first, then shift.
        #expect(TransformChain([.affine(shift), .affine(scale)]).apply(x) == SIMD3(3, 2, 2))
        #expect(TransformChain([.affine(scale), .affine(shift)]).apply(x) == SIMD3(4, 2, 2))
    }

    @Test("The warped labels are the same for 1, 2 and 5 threads")
    func threadIndependence() throws {
        let labels = coordinateLabels(shape)
        let source = Affine(linear: Matrix3(rows: SIMD3(0.98, 0.17, 0), SIMD3(-0.17, 0.98, 0), SIMD3(0, 0, 1.2)), translation: SIMD3(-5, -4, -3))
        let target = Affine.diagonal(0.8, 0.8, 0.8)
        var vectors: [Float] = []
        for n in 0..<(4 * 4 * 4) {
            let dx = Float(n % 3) * 0.3, dy = Float(n % 5) * -0.2
            vectors += [dx, dy, 0.4]
        }
        let field = try #require(DisplacementField(shape: (4, 4, 4), gridToLPS: LPS.gridAffine(origin: SIMD3(-2, -2, 0), spacing: SIMD3(2, 2, 2), direction: .identity), vectors: vectors))
        let chain = TransformChain([.affine(AffineTransform(matrix: .identity, translation: SIMD3(0.3, -0.2, 0.1))), .displacementField(field)])
        let runs = try [1, 2, 5].map { threads in
            try #require(warpNearest(labels, sourceShape: shape, sourceAffine: source, targetShape: (15, 13, 9),
                                     targetAffine: target, through: chain, threads: threads))
        }
        #expect(runs[0] == runs[1] && runs[1] == runs[2])
        #expect(runs[0].contains { $0 != 0 })
    }
}
