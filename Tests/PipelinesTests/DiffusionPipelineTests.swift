import Foundation
import Diffusion
import Geometry
import NIfTI
import Phantoms
import Pipelines
import Testing

/// A noiseless 6x5x4 DWI whose three regions have known tensors in the world frame.
struct SmallDWI {
    static let directions: [[Double]] = [[1, 0, 0], [0, 1, 0], [0.6, 0.0, 0.8]]
    static let eigenvalues: [[Double]] = [[1.7e-3, 0.3e-3, 0.3e-3], [1.2e-3, 0.5e-3, 0.4e-3], [0.8e-3, 0.8e-3, 0.8e-3]]
    let folder: String
    let stem: String
    let phantom: DiffusionPhantom
    let labels: [Int32]

    init(affine: Affine, scheme: GradientScheme = .halfSphere(b0Count: 3, directionCount: 30)) throws {
        folder = makeTemporaryFolder()
        stem = folder + "/sub-01_ses-baseline_dwi"
        let shape = [6, 5, 4]
        let n = shape.reduce(1, *)
        labels = (0..<n).map { Int32($0 % 6 / 2 + 1) }  // x 0-1 -> 1, 2-3 -> 2, 4-5 -> 3
        let truth = labels.map { label in
            TensorTruth(eigenvalues: Self.eigenvalues[Int(label) - 1], principalDirection: Self.directions[Int(label) - 1])
        }
        phantom = DiffusionPhantom(shape: shape, affine: affine, scheme: scheme,
                                   s0: [Double](repeating: 1000, count: n), truth: truth)
        let header = NIfTIHeader.make(shape: phantom.seriesShape, affine: affine)
        try NIfTIFile.write(phantom.noiselessSignal(), shape: phantom.seriesShape, geometry: header, to: stem + ".nii.gz")
        try phantom.scheme.bvalText.write(toFile: stem + ".bval", atomically: true, encoding: .utf8)
        try phantom.scheme.bvecText.write(toFile: stem + ".bvec", atomically: true, encoding: .utf8)
        let geometry = NIfTIHeader.make(shape: shape, affine: affine)
        try NIfTIFile.write([Float](repeating: 1, count: n), shape: shape, datatype: .uint8, geometry: geometry, to: folder + "/mask.nii.gz")
        try NIfTIFile.write(labels.map(Float.init), shape: shape, datatype: .int16, geometry: geometry, to: folder + "/atlas.nii.gz")
        try "index\tname\n1\tstick\n2\tprolate\n3\tsphere\n4\tabsent\n".write(toFile: folder + "/atlas.tsv", atomically: true, encoding: .utf8)
    }

    func options(frame: VectorFrame, threads: Int = 1, out: String = "out") -> DiffusionOptions {
        var options = DiffusionOptions(dwiPath: stem + ".nii.gz", bvalPath: stem + ".bval", bvecPath: stem + ".bvec",
                                       outputFolder: folder + "/" + out)
        options.maskPath = folder + "/mask.nii.gz"
        options.atlases = [AtlasFile(path: folder + "/atlas.nii.gz")]
        options.parameters.vectorFrame = frame
        options.threads = threads
        return options
    }
}

/// A curved bundle (half a torus, tube radius 3, ring radius 6.5, in a plane oblique to every
/// axis, fibres along the ring) in isotropic tissue, on a 20^3 grid with an oblique affine of
/// positive determinant, its bvecs written with one axis negated (or as they are).
struct CurvedBundleDWI {
    let folder: String
    let stem: String

    init(bvecFlip: Int?) throws {
        folder = makeTemporaryFolder()
        stem = folder + "/sub-01_dwi"
        let shape = [20, 20, 20]
        let affine = DiffusionPipelineTests.affines[2].1
        // The voxel-to-world rotation (unit columns): a direction along the bundle in voxel
        // axes is R v in world axes, the frame of the phantom's tensors.
        let zooms = affine.zooms
        let r = Matrix3(columns: affine.linear.column(0) / zooms.x, affine.linear.column(1) / zooms.y,
                        affine.linear.column(2) / zooms.z)
        let centre = [9.2, 10.1, 9.3]
        var normal = [0.3, 0.4, 1.0]
        let normalLength = normal.reduce(0) { $0 + $1 * $1 }.squareRoot()
        normal = normal.map { $0 / normalLength }
        var truth: [TensorTruth] = []
        for z in 0..<20 {
            for y in 0..<20 {
                for x in 0..<20 {
                    let p = zip([Double(x), Double(y), Double(z)], centre).map { $0 - $1 }
                    let height = zip(p, normal).reduce(0) { $0 + $1.0 * $1.1 }
                    let inPlane = zip(p, normal).map { $0 - height * $1 }
                    let rho = inPlane.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    let inBundle = (rho - 6.5) * (rho - 6.5) + height * height <= 9
                        && inPlane[0] - 0.5 * inPlane[1] + 0.2 * inPlane[2] >= 0
                    if inBundle {
                        let along = [normal[1] * inPlane[2] - normal[2] * inPlane[1], normal[2] * inPlane[0] - normal[0] * inPlane[2],
                                     normal[0] * inPlane[1] - normal[1] * inPlane[0]]
                        let world = r * SIMD3(along[0], along[1], along[2])
                        truth.append(TensorTruth(eigenvalues: [1.7e-3, 0.3e-3, 0.3e-3], principalDirection: [world.x, world.y, world.z]))
                    } else {
                        truth.append(TensorTruth(eigenvalues: [0.8e-3, 0.8e-3, 0.8e-3], principalDirection: [1, 0, 0]))
                    }
                }
            }
        }
        let phantom = DiffusionPhantom(shape: shape, affine: affine, scheme: .halfSphere(b0Count: 3, directionCount: 30),
                                       s0: [Double](repeating: 1000, count: truth.count), truth: truth)
        let header = NIfTIHeader.make(shape: phantom.seriesShape, affine: affine)
        try NIfTIFile.write(phantom.noiselessSignal(), shape: phantom.seriesShape, geometry: header, to: stem + ".nii.gz")
        var written = phantom.scheme
        if let bvecFlip { written.directions = written.directions.map { g in var g = g; g[bvecFlip] = -g[bvecFlip]; return g } }
        try written.bvalText.write(toFile: stem + ".bval", atomically: true, encoding: .utf8)
        try written.bvecText.write(toFile: stem + ".bvec", atomically: true, encoding: .utf8)
        try NIfTIFile.write([Float](repeating: 1, count: truth.count), shape: shape, datatype: .uint8,
                            geometry: NIfTIHeader.make(shape: shape, affine: affine), to: folder + "/mask.nii.gz")
    }

    func options(frame: VectorFrame, threads: Int) -> DiffusionOptions {
        var options = DiffusionOptions(dwiPath: stem + ".nii.gz", bvalPath: stem + ".bval", bvecPath: stem + ".bvec",
                                       outputFolder: folder + "/" + frame.rawValue + String(threads))
        options.maskPath = folder + "/mask.nii.gz"
        options.parameters.vectorFrame = frame
        options.threads = threads
        return options
    }
}

@Suite("DTI pipeline")
struct DiffusionPipelineTests {
    static let affines: [(String, Affine)] = [
        ("RAS", Affine(rows: [[2, 0, 0, -6], [0, 2, 0, -5], [0, 0, 2, -4], [0, 0, 0, 1]])),
        ("LAS", Affine(rows: [[-2, 0, 0, 6], [0, 2, 0, -5], [0, 0, 2, -4], [0, 0, 0, 1]])),
        ("oblique", Affine(rows: [
            [1.8610951965638265, -0.7234737123918072, -0.1420302388856717, -8],
            [0.6773832470101332, 1.8185229760290895, -0.6048322628065895, -10],
            [0.2783461981006059, 0.4117766058584689, 2.4215708424719566, 4],
            [0, 0, 0, 1],
        ])),
    ]

    /// |cos| between two 3-vectors.
    static func alignment(_ a: [Double], _ b: [Double]) -> Double {
        let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return abs(dot) / (na * nb)
    }

    /// The FSL-frame direction of a world vector, computed by hand: v_fsl = F Rᵀ v_world,
    /// R the affine's rotation (unit columns) and F = diag(-1, 1, 1) when det R > 0.
    static func fslFrame(_ world: [Double], affine: Affine) -> [Double] {
        let zooms = affine.zooms
        let r = Matrix3(columns: affine.linear.column(0) / zooms.x, affine.linear.column(1) / zooms.y,
                        affine.linear.column(2) / zooms.z)
        var v = r.transpose * SIMD3(world[0], world[1], world[2])
        if affine.determinant > 0 { v.x = -v.x }
        return [v.x, v.y, v.z]
    }

    @Test("noiseless tensors: FA and V1 in both frames for RAS, LAS and oblique images", arguments: [0, 1, 2])
    func frames(index: Int) throws {
        let (name, affine) = Self.affines[index]
        let dwi = try SmallDWI(affine: affine)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        for frame in VectorFrame.allCases {
            let result = try DiffusionPipeline.run(dwi.options(frame: frame, out: frame.rawValue))
            let prefix = dwi.folder + "/\(frame.rawValue)/sub-01_ses-baseline_model-tensor_param-"
            let fa = try NIfTIFile.read(prefix + "fa_dwimap.nii.gz").voxels
            let v1 = try NIfTIFile.read(prefix + "v1_dwimap.nii.gz")
            #expect(v1.header.shape == [6, 5, 4, 3])
            #expect(v1.header.affine.maximumDifference(to: affine) < 1e-5)
            let n = dwi.labels.count
            for i in 0..<n {
                let truth = dwi.phantom.truth[i]
                #expect(abs(Double(fa[i]) - truth.fractionalAnisotropy) < 1e-4, "\(name) \(frame) voxel \(i)")
                guard truth.fractionalAnisotropy > 0.1 else { continue }
                let measured = (0..<3).map { Double(v1.voxels[$0 * n + i]) }
                let expected = frame == .world ? truth.principalDirection : Self.fslFrame(truth.principalDirection, affine: affine)
                #expect(Self.alignment(measured, expected) > 1 - 1e-4, "\(name) \(frame) voxel \(i): \(measured) vs \(expected)")
            }
            // The tensor map: the true mean diffusivity, and the V1 map's vector an eigenvector of
            // it for λ1 (so the two multi-volume maps hold the same voxels in the same frame).
            let tensor = try NIfTIFile.read(prefix + "tensor_dwimap.nii.gz")
            #expect(tensor.header.shape == [6, 5, 4, 6])
            for i in 0..<n {
                let truth = dwi.phantom.truth[i]
                let d = (0..<6).map { Double(tensor.voxels[$0 * n + i]) }
                #expect(abs((d[0] + d[3] + d[5]) / 3 - truth.meanDiffusivity) < 1e-8, "\(name) \(frame) voxel \(i)")
                guard truth.fractionalAnisotropy > 0.1 else { continue }
                let v = (0..<3).map { Double(v1.voxels[$0 * n + i]) }
                let dv = [d[0] * v[0] + d[1] * v[1] + d[2] * v[2], d[1] * v[0] + d[3] * v[1] + d[4] * v[2],
                          d[2] * v[0] + d[4] * v[1] + d[5] * v[2]]
                let lambda1 = truth.eigenvalues.max()!
                #expect((0..<3).allSatisfy { abs(dv[$0] - lambda1 * v[$0]) < 1e-7 }, "\(name) \(frame) voxel \(i): \(dv)")
            }
            // Regional summaries: the true FA, and the absent label kept with n/a.
            let fas = result.summaries["fa"]!
            #expect(fas.map(\.name) == ["stick", "prolate", "sphere", "absent", "whole_brain"])
            for region in 0..<3 {
                let truth = TensorTruth(eigenvalues: SmallDWI.eigenvalues[region], principalDirection: SmallDWI.directions[region])
                #expect(abs(fas[region].mean! - truth.fractionalAnisotropy) < 1e-4)
                #expect(fas[region].count == 40)
            }
            #expect(fas[3].count == 0 && fas[3].mean == nil)
            let rows = readCells(dwi.folder + "/\(frame.rawValue)/sub-01_ses-baseline_seg-atlas_model-tensor_summary.tsv")
            #expect(rows[0] == ["region", "label", "n_voxels", "metric", "mean", "sd", "median", "p05", "p95"])
            #expect(rows.contains { $0[0] == "absent" && $0[3] == "fa" && $0[4] == "n/a" })
        }
    }

    @Test("maps are byte-identical for 1, 2 and 7 threads")
    func threads() throws {
        let dwi = try SmallDWI(affine: Self.affines[1].1)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        var outputs: [[Data]] = []
        for threads in [1, 2, 7] {
            let options = dwi.options(frame: .fsl, threads: threads, out: "t\(threads)")
            let result = try DiffusionPipeline.run(options)
            outputs.append(result.files.filter { !$0.hasSuffix(".json") }.map { FileManager.default.contents(atPath: $0)! })
        }
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0] == outputs[2])
    }

    @Test("orientation check: a bvec axis negated is found and warned about, in either vector frame",
          arguments: [nil, 0, 1, 2])
    func orientationCheck(bvecFlip: Int?) throws {
        let dwi = try CurvedBundleDWI(bvecFlip: bvecFlip)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        // An FSL axis is a voxel axis (F only negates x), so the negated axis is the one to undo.
        let expected = bvecFlip.map { ["x", "y", "z"][$0] } ?? "none"
        let reports = try VectorFrame.allCases.map { frame in
            let result = try DiffusionPipeline.run(dwi.options(frame: frame, threads: 2))
            let report = try #require(result.orientation)
            #expect(report.best.rawValue == expected, "\(frame): \(report.scores)")
            #expect(report.scores.allSatisfy { $0.pairs > 500 })
            let warned = result.warnings.contains { $0.contains("flipping voxel axis \(expected)") }
            #expect(warned == (bvecFlip != nil), "\(frame): \(result.warnings)")
            // The same bits for any thread count.
            #expect(try DiffusionPipeline.run(dwi.options(frame: frame, threads: 3)).orientation == report)
            return report
        }
        // V1 fitted in FSL's frame or in world axes is the same field in voxel axes.
        for (fsl, world) in zip(reports[0].scores, reports[1].scores) {
            #expect(fsl.pairs == world.pairs)
            #expect(abs(fsl.coherence - world.coherence) < 1e-5, "\(fsl.flip): \(fsl.coherence) vs \(world.coherence)")
        }
    }

    @Test("gradient problems name the file and nothing is written")
    func gradientErrors() throws {
        let dwi = try SmallDWI(affine: Self.affines[0].1)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let short = dwi.folder + "/short.bval"
        try "0 1000 1000\n".write(toFile: short, atomically: true, encoding: .utf8)
        var options = dwi.options(frame: .fsl)
        options.bvalPath = short
        do { _ = try DiffusionPipeline.run(options); Issue.record("no error") } catch {
            #expect("\(error)".contains("short.bval") || "\(error)".contains(".bvec"), "\(error)")
        }
        let zeros = dwi.folder + "/zeros.bval"
        try (String(repeating: "0 ", count: 33) + "\n").write(toFile: zeros, atomically: true, encoding: .utf8)
        options.bvalPath = zeros
        #expect { try DiffusionPipeline.run(options) } throws: { error in
            "\(error)".contains("every b-value is at or below the b=0 threshold (50)")
        }
        #expect(!FileManager.default.fileExists(atPath: dwi.folder + "/out"))
    }
}

@Suite("dti: automatic brain mask made in the one read of the series")
struct AutomaticMaskTests {
    /// A 12x12x10 DWI with a bright ellipsoid in a dim background, b=0 volumes at 0, 9 and
    /// 17 of 20 (so the last comes late and volumes before it are kept until it is read).
    static func write(integers: Bool, includeB0: Bool = true) throws -> (folder: String, stem: String, shape: [Int]) {
        let folder = makeTemporaryFolder(), stem = folder + "/sub-01_dwi"
        let shape = [12, 12, 10], n = shape.reduce(1, *)
        let sphere = GradientScheme.halfSphere(b0Count: 1, directionCount: 17)
        var bValues = Array(sphere.bValues.dropFirst()), directions = Array(sphere.directions.dropFirst())
        for at in [0, 9, 17] where includeB0 { bValues.insert(0, at: at); directions.insert([0, 0, 0], at: at) }
        if !includeB0 { bValues.insert(contentsOf: [1000, 1000, 1000], at: 0); directions.insert(contentsOf: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], at: 0) }
        let scheme = GradientScheme(bValues: bValues, directions: directions)
        let s0: [Double] = (0..<n).map { i in
            let x = Double(i % 12) - 5.5, y = Double(i / 12 % 12) - 5.5, z = Double(i / 144) - 4.5
            return x * x / 25 + y * y / 25 + z * z / 16 < 1 ? 900 + Double(i % 7) * 20 : 40 + Double(i % 5) * 3
        }
        let truth = [TensorTruth](repeating: TensorTruth(eigenvalues: [1.5e-3, 0.4e-3, 0.3e-3], principalDirection: [1, 0, 0]), count: n)
        let phantom = DiffusionPhantom(shape: shape, affine: .diagonal(2, 2, 2), scheme: scheme, s0: s0, truth: truth)
        let header = NIfTIHeader.make(shape: phantom.seriesShape, affine: .diagonal(2, 2, 2))
        let signal = phantom.noiselessSignal().map { integers ? $0.rounded() : $0 * 1.25 }
        try NIfTIFile.write(signal, shape: phantom.seriesShape, datatype: integers ? .int16 : .float32, geometry: header,
                            to: stem + ".nii.gz")
        try scheme.bvalText.write(toFile: stem + ".bval", atomically: true, encoding: .utf8)
        try scheme.bvecText.write(toFile: stem + ".bvec", atomically: true, encoding: .utf8)
        return (folder, stem, shape)
    }

    @Test("the mask equals Otsu's on the mean b=0 computed directly, and the fit inside it is the given-mask fit",
          arguments: [true, false])
    func sameAsTwoPasses(integers: Bool) throws {
        let (folder, stem, shape) = try Self.write(integers: integers)
        var options = DiffusionOptions(dwiPath: stem + ".nii.gz", bvalPath: stem + ".bval", bvecPath: stem + ".bvec",
                                       outputFolder: folder + "/auto")
        options.parameters.orientationCheck = false
        let automatic = try DiffusionPipeline.run(options)
        let series = try NIfTIFile.read(stem + ".nii.gz")
        let n = shape.reduce(1, *)
        var meanB0 = [Float](repeating: 0, count: n)
        for v in [0, 9, 17] { for i in 0..<n { meanB0[i] += series.voxels[v * n + i] } }
        for i in 0..<n { meanB0[i] *= 1 / Float(3) }
        let expected = try brainMask(meanB0: meanB0, shape: (shape[0], shape[1], shape[2]))
        let written = try NIfTIFile.read(folder + "/auto/sub-01_desc-brain_mask.nii.gz").voxels.map { $0 > 0 }
        #expect(written == expected)
        #expect(expected.filter { $0 }.count > 100 && expected.filter { !$0 }.count > 100, "the mask must split the grid")

        options.maskPath = folder + "/auto/sub-01_desc-brain_mask.nii.gz"
        options.outputFolder = folder + "/given"
        let given = try DiffusionPipeline.run(options)
        #expect(given.quality == automatic.quality)
        for map in ["fa", "md", "tensor"] {
            let name = "/sub-01_model-tensor_param-\(map)_dwimap.nii.gz"
            #expect(try NIfTIFile.read(folder + "/auto" + name).voxels == NIfTIFile.read(folder + "/given" + name).voxels)
        }
    }

    @Test("a series without b=0 volumes and no mask is refused, naming the file and the way out")
    func noB0() throws {
        let (folder, stem, _) = try Self.write(integers: true, includeB0: false)
        let options = DiffusionOptions(dwiPath: stem + ".nii.gz", bvalPath: stem + ".bval", bvecPath: stem + ".bvec",
                                       outputFolder: folder + "/out")
        #expect { try DiffusionPipeline.run(options) } throws: { error in
            let text = "\(error)"
            return text.contains("sub-01_dwi.nii.gz") && text.contains("no b=0 volume") && text.contains("--mask")
        }
    }
}
