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

    @Test("shell selection keeps b=0 and b <= maximum, with the kept indices")
    func selection() throws {
        let t = try GradientTable(bValues: [0, 1000, 2000, 0, 1490, 1540, 3000],
                                  directions: [.zero, SIMD3(1, 0, 0), SIMD3(0, 1, 0), .zero, SIMD3(0, 0, 1),
                                               SIMD3(1, 0, 0), SIMD3(0, 1, 0)])
        let (reduced, kept) = try t.selecting()
        #expect(kept == [0, 1, 3, 4, 5]) // 1490 and 1540 round to the 1500 shell
        #expect(reduced.bValues == [0, 1000, 0, 1490, 1540])
        #expect(try t.selecting(maximumB: 1500).volumeIndices == kept)
        let withEdge = try GradientTable(bValues: [0, 1550, 1000], directions: [.zero, SIMD3(1, 0, 0), SIMD3(0, 1, 0)])
        #expect(try withEdge.selecting().volumeIndices == [0, 2]) // 1550 rounds up to the 1600 shell
        let (low, lowKept) = try t.selecting(maximumB: 1000)
        #expect(lowKept == [0, 1, 3] && low.count == 3)
        #expect(throws: GradientTableError.noDiffusionWeighting(source: "gradient table (b <= 500.0)")) {
            try t.selecting(maximumB: 500)
        }
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
        #expect(throws: GradientTableError.nonFiniteBValue(source: "d", row: 2)) {
            try GradientTable.fsl(bval: "0 nan", bvec: "0 1\n0 0\n0 0", source: "d")
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
        #expect(throws: GradientTableError.noDiffusionWeighting(source: "d")) {
            try GradientTable.fsl(bval: "0 0 10", bvec: "0 0 0\n0 0 0\n0 0 0", source: "d")
        }
    }

    @Test("negative b-value")
    func negativeB() {
        #expect(throws: GradientTableError.negativeBValue(source: "d", row: 2, value: -1000)) {
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
