import Geometry
import Testing
@testable import Diffusion

@Suite("Gradient table parsing")
struct GradientParsingTests {
    let bval = "0 1000 1000 2000\n"
    let bvec = """
    0 1 0 0.6
    0 0 1 0.8
    0 0 0 0
    """

    @Test("FSL row bval + 3 x N bvec")
    func fslRows() throws {
        let t = try GradientTable.fsl(bval: bval, bvec: bvec, source: "dwi.bvec")
        #expect(t.count == 4)
        #expect(t.bValues == [0, 1000, 1000, 2000])
        #expect(t.directions[0] == .zero)
        #expect(t.directions[1] == SIMD3(1, 0, 0))
        #expect(t.directions[2] == SIMD3(0, 1, 0))
        #expect(abs(t.directions[3].x - 0.6) < 1e-15 && abs(t.directions[3].y - 0.8) < 1e-15)
        #expect(t.b0Indices == [0])
        #expect(t.diffusionIndices == [1, 2, 3])
        #expect(t.shells == [1000, 2000])
    }

    @Test("FSL column bval + transposed N x 3 bvec give the same table")
    func fslTransposed() throws {
        let rows = try GradientTable.fsl(bval: bval, bvec: bvec, source: "a")
        let columns = try GradientTable.fsl(bval: "0\n1000\n1000\n2000\n",
                                            bvec: "0 0 0\n1 0 0\n0 1 0\n0.6 0.8 0\n", source: "a")
        #expect(rows == columns)
    }

    @Test("three volumes: the FSL 3 x N layout is assumed")
    func ambiguousThree() throws {
        let t = try GradientTable.fsl(bval: "0 1000 1000", bvec: "0 1 0\n0 0 1\n0 0 0", source: "a")
        #expect(t.directions[1] == SIMD3(1, 0, 0) && t.directions[2] == SIMD3(0, 1, 0))
    }

    @Test("MRtrix table with comments")
    func mrtrix() throws {
        let text = """
        # command_history: dwigradcheck
        0 0 0 0
        1 0 0 1000   # trailing comment
        0 1 0 1000

        0 0 1 3000
        """
        let t = try GradientTable.mrtrix(text, source: "grad.b")
        #expect(t.bValues == [0, 1000, 1000, 3000])
        #expect(t.directions[3] == SIMD3(0, 0, 1))
        #expect(t.shells == [1000, 3000])
    }

    @Test("b=0 threshold, shell rounding and b-value scaling of short vectors")
    func normalisation() throws {
        let t = try GradientTable(bValues: [5, 50, 60, 990, 1010, 3000, 3000],
                                  directions: [SIMD3(0.2, 0, 0), .zero, SIMD3(1, 0, 0), SIMD3(0, 1, 0),
                                               SIMD3(0, 0, 1.004), SIMD3(0.5, 0, 0), SIMD3(0, 0.999, 0)])
        #expect(t.isB0 == [true, true, false, false, false, false, false])
        #expect(t.directions[0] == SIMD3(1, 0, 0)) // normalised; its b is 5 * 0.04
        #expect(abs(t.bValues[0] - 0.2) < 1e-12)
        #expect(t.bValues[4] == 1010)              // within tolerance: b kept, vector normalised
        #expect(t.directions[4] == SIMD3(0, 0, 1))
        #expect(abs(t.bValues[5] - 750) < 1e-9)     // norm 0.5: b scaled by 0.25
        #expect(t.bValues[6] == 3000)
        #expect(t.shellBValues == [0, 0, 100, 1000, 1000, 800, 3000])
        let custom = try GradientTable(bValues: [0, 80, 1000], directions: [.zero, SIMD3(1, 0, 0), SIMD3(0, 1, 0)],
                                       b0Threshold: 100)
        #expect(custom.b0Indices == [0, 1])
    }

    @Test("NaN or zero vectors on b=0 rows are valid zero vectors")
    func b0Vectors() throws {
        let t = try GradientTable.fsl(bval: "0 5 1000", bvec: "nan 0 1\nnan 0 0\nnan 0 0", source: "a")
        #expect(t.directions[0] == .zero && t.directions[1] == .zero)
    }

    /// A table with the given b-values, b=0 rows without a direction and the weighted rows
    /// along axes in turn.
    static func table(_ bValues: [Double]) throws -> GradientTable {
        let axes: [SIMD3<Double>] = [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)]
        return try GradientTable(bValues: bValues, directions: bValues.indices.map { bValues[$0] <= 50 ? .zero : axes[$0 % 3] })
    }

    @Test("a given maximum keeps b=0 and the volumes with b <= it as written, not rounded to their shell")
    func selectionGivenMaximum() throws {
        let t = try Self.table([0, 1000, 2000, 0, 1490, 1540, 3000])
        let s = try t.selecting(maximumB: 1500)
        #expect(s.rule == .maximum(1500))
        #expect(s.volumeIndices == [0, 1, 3, 4]) // 1540 rounds to the 1500 shell but is above 1500
        #expect(s.leftOutIndices == [2, 5, 6])
        #expect(s.table.bValues == [0, 1000, 0, 1490])
        #expect(s.bValuesUsed == [0, 1000, 1490] && s.bValuesLeftOut == [1540, 2000, 3000])
        #expect(s.shellsUsed == [1000, 1500] && s.shellsLeftOut == [1500, 2000, 3000])
        #expect(s.splitShells.map(\.shell) == [1500] && s.splitShells[0].kept == 1 && s.splitShells[0].leftOut == 1)
        let low = try t.selecting(maximumB: 1000)
        #expect(low.volumeIndices == [0, 1, 3] && low.table.count == 3 && low.splitShells.isEmpty)

        // 1995 and 2005 are one shell; a limit of 2000 keeps the first and not the second.
        let close = try Self.table([0, 1995, 2005, 1995, 2005, 1995, 2005, 0])
        let cut = try close.selecting(maximumB: 2000)
        #expect(cut.volumeIndices == [0, 1, 3, 5, 7])
        #expect(cut.bValuesUsed == [0, 1995] && cut.bValuesLeftOut == [2005])
        #expect(cut.splitShells.count == 1 && cut.splitShells[0].kept == 3 && cut.splitShells[0].leftOut == 3)
        #expect(try close.selecting(maximumB: 2005).leftOutIndices.isEmpty)
    }

    @Test("a given maximum below every weighted volume is an error listing the b-values, never 'all volumes are b=0'")
    func selectionBelowEveryShell() throws {
        let t = try Self.table([0, 1000, 2000, 0, 1490, 1540, 3000])
        let expected = GradientTableError.noWeightedVolumeAtOrBelow(source: "gradient table", maximumB: 500,
                                                                    bValues: [0, 1000, 1490, 1540, 2000, 3000])
        #expect(throws: expected) { try t.selecting(maximumB: 500) }
        #expect(expected.description == "gradient table: no diffusion-weighted volume has b <= 500 (b-values in the table: 0, 1000, 1490-1540, 2000, 3000)")
        #expect(!expected.description.contains("b=0"))
    }

    @Test("automatic: a single shell is kept whole at any b-value", arguments: [[0, 2000, 2000, 2000], [0, 3000, 3000, 3000],
                                                                                 [0, 1495, 1505, 1500, 1505, 0], [0, 700, 700, 700]])
    func selectionSingleShell(bValues: [Double]) throws {
        let t = try Self.table(bValues)
        let s = try t.selecting(maximumB: nil)
        #expect(s.rule == .singleShell)
        #expect(s.volumeIndices == Array(bValues.indices) && s.leftOutIndices.isEmpty && s.bValuesLeftOut.isEmpty)
        #expect(s.table == t)
        #expect(s.rule.description == "automatic: single shell, every volume")
    }

    @Test("automatic, several shells: b <= 1500 as written, else the lowest shell")
    func selectionMultiShell() throws {
        let t = try Self.table([0, 1000, 2000, 3000, 1000, 2000, 3000, 0, 1005, 1990])
        let s = try t.selecting(maximumB: nil)
        #expect(s.rule == .automaticLimit(1500))
        #expect(s.volumeIndices == [0, 1, 4, 7, 8])
        #expect(s.bValuesUsed == [0, 1000, 1005] && s.bValuesLeftOut == [1990, 2000, 3000])
        #expect(s.shellsUsed == [1000] && s.shellsLeftOut == [2000, 3000])
        #expect(s.rule.description == "automatic: multi-shell, b <= 1500")
        #expect(try t.selecting(maximumB: 1500).volumeIndices == s.volumeIndices)

        // No shell at or below 1500: the lowest shell, its per-direction b-values included.
        let high = try Self.table([0, 2000, 3000, 1990, 3000, 2010, 0])
        let h = try high.selecting(maximumB: nil)
        #expect(h.rule == .lowestShell(2000))
        #expect(h.volumeIndices == [0, 1, 3, 5, 6] && h.bValuesLeftOut == [3000] && h.splitShells.isEmpty)
        #expect(h.rule.description == "automatic: multi-shell with no shell at b <= 1500, the lowest shell (b ~ 2000)")
    }

    @Test("b-values in messages: one item per shell, a range where a shell has several values")
    func describeBValues() {
        #expect(GradientTable.describe(bValues: [2000, 0, 1000, 0]) == "0, 1000, 2000")
        #expect(GradientTable.describe(bValues: [0, 986.9, 1002.99, 995]) == "0, 987-1003")
        #expect(GradientTable.describe(bValues: []) == "none")
    }

    @Test("validate(volumeCount:)")
    func volumeCount() throws {
        let t = try GradientTable.fsl(bval: bval, bvec: bvec, source: "sub-01_dwi.bvec")
        try t.validate(volumeCount: 4)
        #expect(throws: GradientTableError.volumeCountMismatch(source: "sub-01_dwi.bvec", entries: 4, volumes: 5)) {
            try t.validate(volumeCount: 5)
        }
        let message = GradientTableError.volumeCountMismatch(source: "sub-01_dwi.bvec", entries: 4, volumes: 5).description
        #expect(message == "sub-01_dwi.bvec: gradient table has 4 entries but the image has 5 volumes")
    }
}

@Suite("Gradient table errors")
struct GradientErrorTests {
    @Test("count mismatch between bval and bvec")
    func countMismatch() {
        #expect(throws: GradientTableError.countMismatch(source: "d", bValues: 4, vectors: 3)) {
            try GradientTable.fsl(bval: "0 1000 1000 1000", bvec: "0 1 0\n0 0 1\n0 0 0", source: "d")
        }
        #expect(throws: GradientTableError.countMismatch(source: "d", bValues: 2, vectors: 3)) {
            try GradientTable.fsl(bval: "0 1000", bvec: "0 0 0\n1 0 0\n0 1 0", source: "d")
        }
        #expect(throws: GradientTableError.countMismatch(source: "d", bValues: 3, vectors: 4)) {
            try GradientTable.fsl(bval: "0 1000 1000", bvec: "0 1 0 0\n0 0 1 0\n0 0 0 1", source: "d")
        }
        #expect(throws: GradientTableError.countMismatch(source: "d", bValues: 5, vectors: 4)) {
            try GradientTable.fsl(bval: "0 1000 1000 1000 1000", bvec: "0 0 0\n1 0 0\n0 1 0\n0 0 1", source: "d")
        }
    }

    @Test("non-numeric entry names the line and token")
    func nonNumeric() {
        let error = GradientTableError.nonNumeric(source: "d (bvec)", line: 2, token: "x0.5")
        #expect(throws: error) {
            try GradientTable.fsl(bval: "0 1000", bvec: "0 1\n0 x0.5\n0 0", source: "d")
        }
        #expect(error.description == "d (bvec): line 2: 'x0.5' is not a number")
    }

    @Test("NaN or infinite b-value")
    func nanB() {
        // Blamed on the .bval, not the .bvec (`source`).
        #expect(throws: GradientTableError.nonFiniteBValue(source: "d (bval)", row: 2)) {
            try GradientTable.fsl(bval: "0 nan", bvec: "0 1\n0 0\n0 0", source: "d")
        }
        #expect(throws: GradientTableError.nonFiniteBValue(source: "d.bval", row: 2)) {
            try GradientTable.fsl(bval: "0 nan", bvec: "0 1\n0 0\n0 0", source: "d.bvec", bvalSource: "d.bval")
        }
        #expect(throws: GradientTableError.nonFiniteBValue(source: "m", row: 1)) {
            try GradientTable.mrtrix("1 0 0 inf\n", source: "m")
        }
    }

    @Test("zero or NaN vector on a weighted row")
    func badVector() {
        #expect(throws: GradientTableError.invalidDirection(source: "d", row: 2, bValue: 1000)) {
            try GradientTable.fsl(bval: "0 1000 1000", bvec: "0 0 1\n0 0 0\n0 0 0", source: "d")
        }
        #expect(throws: GradientTableError.invalidDirection(source: "d", row: 3, bValue: 1000)) {
            try GradientTable.fsl(bval: "0 1000 1000", bvec: "0 1 nan\n0 0 0\n0 0 1", source: "d")
        }
    }

    @Test("only b=0 volumes")
    func onlyB0() {
        let error = GradientTableError.noDiffusionWeighting(source: "d (bval)", b0Threshold: 50)
        #expect(throws: error) {
            try GradientTable.fsl(bval: "0 0 10", bvec: "0 0 0\n0 0 0\n0 0 0", source: "d")
        }
        #expect(error.description == "d (bval): no diffusion-weighted volume: every b-value is at or below the b=0 threshold (50)")
    }

    @Test("negative b-value")
    func negativeB() {
        #expect(throws: GradientTableError.negativeBValue(source: "d (bval)", row: 2, value: -1000)) {
            try GradientTable.fsl(bval: "0 -1000", bvec: "0 1\n0 0\n0 0", source: "d")
        }
    }

    @Test("malformed layouts and empty text")
    func malformed() {
        #expect(throws: GradientTableError.malformed(source: "m", reason: "row 2 has 3 values, expected 4 (x y z b)")) {
            try GradientTable.mrtrix("0 0 0 0\n1 0 0\n", source: "m")
        }
        #expect(throws: GradientTableError.malformed(source: "d (bvec)", reason: "expected 3 rows of N values or N rows of 3 values")) {
            try GradientTable.fsl(bval: "0 1000 1000 1000", bvec: "0 1 0 0\n0 0 1 0", source: "d")
        }
        #expect(throws: GradientTableError.empty(source: "d (bval)")) {
            try GradientTable.fsl(bval: "  \n", bvec: "0", source: "d")
        }
        #expect(throws: GradientTableError.empty(source: "m")) {
            try GradientTable.mrtrix("# nothing\n", source: "m")
        }
    }
}

@Suite("Gradient frames")
struct GradientFrameTests {
    let table = try! GradientTable(bValues: [0, 1000, 1000, 1000, 1000],
                                   directions: [.zero, SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1),
                                                SIMD3(1, 1, 1) / 3.0.squareRoot()])

    func close(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Bool {
        let d = a - b
        return (d * d).sum().squareRoot() < 1e-12
    }

    @Test("LAS image (det < 0): no FSL flip, the voxel x axis points left")
    func las() throws {
        let world = try table.fslToWorld(linear: [[-2, 0, 0], [0, 2, 0], [0, 0, 2.5]])
        #expect(world.directions[0] == .zero)
        #expect(close(world.directions[1], SIMD3(-1, 0, 0)))
        #expect(close(world.directions[2], SIMD3(0, 1, 0)))
        #expect(close(world.directions[3], SIMD3(0, 0, 1)))
        #expect(world.bValues == table.bValues)
    }

    @Test("RAS image (det > 0): FSL's x flip applies")
    func ras() throws {
        let world = try table.fslToWorld(linear: [[2, 0, 0], [0, 2, 0], [0, 0, 2]])
        #expect(close(world.directions[1], SIMD3(-1, 0, 0)))
        #expect(close(world.directions[2], SIMD3(0, 1, 0)))
        #expect(close(world.directions[4], SIMD3(-1, 1, 1) / 3.0.squareRoot()))
        let voxel = try table.fslToVoxel(linear: [[2, 0, 0], [0, 2, 0], [0, 0, 2]])
        #expect(close(voxel.directions[1], SIMD3(-1, 0, 0)))
        let lasVoxel = try table.fslToVoxel(linear: [[-2, 0, 0], [0, 2, 0], [0, 0, 2]])
        #expect(lasVoxel == table)
    }

    @Test("oblique affine: rotation by 30 degrees about z, anisotropic voxels")
    func oblique() throws {
        let c = 3.0.squareRoot() / 2, s = 0.5
        // Columns 2 (c, s, 0), 2 (-s, c, 0), 3 (0, 0, 1): det = 12 > 0, so x is flipped first.
        let linear: Matrix3 = [[2 * c, -2 * s, 0], [2 * s, 2 * c, 0], [0, 0, 3]]
        let world = try table.fslToWorld(linear: linear)
        #expect(close(world.directions[1], SIMD3(-c, -s, 0)))
        #expect(close(world.directions[2], SIMD3(-s, c, 0)))
        #expect(close(world.directions[3], SIMD3(0, 0, 1)))
        let back = try world.worldToFSL(linear: linear)
        for (a, b) in zip(back.directions, table.directions) { #expect(close(a, b)) }
        // A left-handed oblique matrix (det < 0) round-trips too.
        let lefty: Matrix3 = [[-2 * c, -2 * s, 0], [-2 * s, 2 * c, 0], [0, 0, 3]]
        let again = try table.fslToWorld(linear: lefty).worldToFSL(linear: lefty)
        for (a, b) in zip(again.directions, table.directions) { #expect(close(a, b)) }
        #expect(close(try table.fslToWorld(linear: lefty).directions[1], SIMD3(-c, -s, 0)))
    }

    @Test("transposed bvec layout converts the same")
    func transposedFrame() throws {
        let a = try GradientTable.fsl(bval: "0 1000 1000 1000", bvec: "0 1 0 0\n0 0 1 0\n0 0 0 1", source: "a")
        let b = try GradientTable.fsl(bval: "0 1000 1000 1000", bvec: "0 0 0\n1 0 0\n0 1 0\n0 0 1", source: "a")
        let linear: Matrix3 = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
        #expect(try a.fslToWorld(linear: linear) == b.fslToWorld(linear: linear))
    }

    @Test("invalid matrices are typed errors")
    func invalid() {
        #expect(throws: GradientTableError.invalidTransform(source: "gradient table", reason: "non-finite entry")) {
            try table.fslToWorld(linear: [[1, 0, 0], [0, .nan, 0], [0, 0, 1]])
        }
        #expect(throws: GradientTableError.invalidTransform(source: "gradient table", reason: "column 2 is zero")) {
            try table.fslToWorld(linear: [[1, 0, 0], [0, 0, 0], [0, 0, 1]])
        }
        #expect(throws: GradientTableError.invalidTransform(source: "gradient table", reason: "singular matrix")) {
            try table.fslToWorld(linear: [[1, 1, 0], [1, 1, 0], [0, 0, 1]])
        }
    }

    @Test("direction transforms agree with the table conversions, and world to voxel is R^-1",
          arguments: [[[2.0, 0, 0], [0, 2, 0], [0, 0, 2]], [[-2.0, 0, 0], [0, 2, 0], [0, 0, 2]],
                      [[1.8610951965638265, -0.7234737123918072, -0.1420302388856717],
                       [0.6773832470101332, 1.8185229760290895, -0.6048322628065895],
                       [0.2783461981006059, 0.4117766058584689, 2.4215708424719566]],
                      [[-1.7, 0.3, 0.1], [0.2, 2.1, -0.4], [0.1, 0.5, 2.6]]] as [Matrix3])
    func directionTransforms(linear: Matrix3) throws {
        let world = try table.fslToWorld(linear: linear), voxel = try table.fslToVoxel(linear: linear)
        let fslToWorld = try DirectionTransform(from: .fsl, to: .world, linear: linear)
        let worldToVoxel = try DirectionTransform(from: .world, to: .voxel, linear: linear)
        let fslToVoxel = try DirectionTransform(from: .fsl, to: .voxel, linear: linear)
        let voxelToWorld = try DirectionTransform(from: .voxel, to: .world, linear: linear)
        for k in table.directions.indices {
            #expect(fslToWorld.apply(table.directions[k]) == world.directions[k])
            #expect(close(worldToVoxel.apply(world.directions[k]), voxel.directions[k]))
            #expect(close(fslToVoxel.apply(table.directions[k]), voxel.directions[k]))
            #expect(close(voxelToWorld.apply(voxel.directions[k]), world.directions[k]))
            #expect(close(try DirectionTransform(from: .world, to: .world, linear: linear).apply(world.directions[k]),
                          world.directions[k]))
        }
        // World to voxel by hand: the voxel direction whose image under the unit-column
        // matrix R is the world direction (no FSL flip in between).
        let norms = linear.columnNorms
        let r = Matrix3(columns: linear.column(0) / norms.x, linear.column(1) / norms.y, linear.column(2) / norms.z)
        let v = SIMD3<Double>(0.48, -0.6, 0.64)
        let w = r * v
        let norm: Double = (w * w).sum().squareRoot()
        #expect(close(worldToVoxel.apply(w / norm), v))
        #expect(worldToVoxel.apply(.zero) == .zero)
        #expect(throws: GradientTableError.invalidTransform(source: "dwi.nii", reason: "singular matrix")) {
            try DirectionTransform(from: .world, to: .voxel, linear: [[1, 1, 0], [1, 1, 0], [0, 0, 1]], source: "dwi.nii")
        }
    }

    @Test("flipping an axis")
    func flips() {
        #expect(table.flipped(.y).directions[2] == SIMD3(0, -1, 0))
        #expect(table.flipped(.none) == table)
        #expect(table.flipped(.z).flipped(.z) == table)
    }
}
