import TestSupport
import Foundation
import Geometry
import Functional
import NIfTI
import Pipelines
import Testing

/// A small BOLD run: 3 regions of a 6x6x4 grid (plus background), 100 volumes, TR 2 s.
/// Region signals share a latent source with known loadings; every voxel adds noise.
struct SmallRun {
    let folder: String
    let bold: String
    let atlas: String
    let confounds: String
    let volumes = 100
    let shape = [6, 6, 4]
    var voxels: [Float]
    var labels: [Int32]

    init(seed: UInt64 = 7, trInHeader: Bool = true) throws {
        folder = makeTemporaryFolder()
        bold = folder + "/sub-01_ses-baseline_task-rest_bold.nii.gz"
        atlas = folder + "/atlas.nii.gz"
        confounds = folder + "/sub-01_ses-baseline_task-rest_desc-confounds_timeseries.tsv"
        var random = SplitMix64(state: seed)
        let n = shape.reduce(1, *)
        labels = (0..<n).map { i in
            let x = i % 6, z = i / 36
            if z == 0 { return 0 }  // background slab
            return Int32(x / 2 + 1)  // regions 1, 2, 3 by x
        }
        let latent = (0..<volumes).map { _ in random.normal() }
        let loadings: [Double] = [0, 1.0, 0.6, -0.4]
        voxels = [Float](repeating: 0, count: n * volumes)
        for t in 0..<volumes {
            for i in 0..<n where labels[i] != 0 {
                let value = 1000 + 5 * loadings[Int(labels[i])] * latent[t] + random.normal()
                voxels[t * n + i] = Float(value)
            }
        }
        let affine = Affine(rows: [[-3, 0, 0, 9], [0, 3, 0, -9], [0, 0, 3, 0], [0, 0, 0, 1]])
        let header = NIfTIHeader.make(shape: shape + [volumes], affine: affine, repetitionTime: trInHeader ? 2 : nil)
        var noTR = header
        if !trInHeader { noTR.pixdim[3] = 0 }
        try NIfTIFile.write(voxels, shape: shape + [volumes], geometry: noTR, to: bold)
        try NIfTIFile.write(labels.map(Float.init), shape: shape, datatype: .int16,
                            geometry: NIfTIHeader.make(shape: shape, affine: affine), to: atlas)
        try "index\tname\tnetwork\n1\tA\tDMN\n2\tB\tDMN\n3\tC\tVIS\n4\tEmpty\tVIS\n"
            .write(toFile: folder + "/atlas.tsv", atomically: true, encoding: .utf8)
        var text = "trans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\tframewise_displacement\n"
        for t in 0..<volumes {
            let row = (0..<6).map { _ in String(random.normal() * 0.1) } + [t == 0 ? "n/a" : String(t % 10 == 0 ? 0.9 : 0.1)]
            text += row.joined(separator: "\t") + "\n"
        }
        try text.write(toFile: confounds, atomically: true, encoding: .utf8)
    }

    /// Naive region means computed here, independently of the pipeline.
    func regionMeans() -> [[Double]] {
        let n = shape.reduce(1, *)
        return (1...3).map { label in
            (0..<volumes).map { t in
                let members = (0..<n).filter { labels[$0] == label }
                return members.reduce(0.0) { $0 + Double(voxels[t * n + $1]) } / Double(members.count)
            }
        }
    }
}

@Suite("fMRI pipeline")
struct FunctionalPipelineTests {
    @Test("without filtering or confounds, the matrix is the correlation of detrended region means")
    func plainCorrelation() throws {
        let run = try SmallRun()
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        var options = FunctionalOptions(boldPath: run.bold, atlasPath: run.atlas, outputFolder: run.folder + "/out")
        options.parameters.strategy = .none
        options.parameters.highPass = nil
        options.parameters.lowPass = nil
        let result = try FunctionalPipeline.run(options)
        #expect(result.regionNames == ["A", "B", "C", "Empty"])
        #expect(result.repetitionTime == 2)
        let means = run.regionMeans().map(linearDetrend)
        func correlation(_ a: [Double], _ b: [Double]) -> Double {
            let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
            var ab = 0.0, aa = 0.0, bb = 0.0
            for (x, y) in zip(a, b) { ab += (x - ma) * (y - mb); aa += (x - ma) * (x - ma); bb += (y - mb) * (y - mb) }
            return ab / (aa * bb).squareRoot()
        }
        for i in 0..<3 {
            for j in 0..<3 where i != j {
                #expect(abs(result.pearson[i, j] - correlation(means[i], means[j])) < 1e-6)
            }
        }
        // Planted structure: A and B correlate positively, A and C negatively.
        #expect(result.pearson[0, 1] > 0.5)
        #expect(result.pearson[0, 2] < -0.3)
        // The empty region stays, as n/a.
        #expect(result.pearson[3, 0].isNaN)
        let matrix = readCells(run.folder + "/out/sub-01_ses-baseline_task-rest_stat-pearsoncorrelation_relmat.tsv")
        #expect(matrix[0] == ["region", "A", "B", "C", "Empty"])
        #expect(matrix[4][0] == "Empty" && matrix[4][1] == "n/a")
        #expect(matrix[1][1] == "1")
    }

    @Test("6P, band-pass and censoring run end to end and are recorded")
    func denoised() throws {
        let run = try SmallRun()
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        var options = FunctionalOptions(boldPath: run.bold, atlasPath: run.atlas, outputFolder: run.folder + "/out")
        options.confoundsPath = run.confounds
        options.parameters.strategy = .sixP
        options.parameters.fdThreshold = 0.5
        options.parameters.dummyScans = .count(2)
        let result = try FunctionalPipeline.run(options)
        // FD 0.9 at t = 10, 20, ..., 90: 9 volumes censored, 2 dropped.
        #expect(result.qc.censoredVolumes == 9)
        #expect(result.qc.keptVolumes == 100 - 2 - 9)
        let fd = result.metrics.first { $0.metric == "fd_mean" && $0.region == "whole_brain" }!.value
        #expect(abs(fd - (9 * 0.9 + 89 * 0.1) / 98) < 1e-9)
        let names = Set(result.metrics.map(\.metric))
        for metric in ["conn_mean", "conn_within_mean", "conn_between_mean", "global_efficiency", "alff", "falff", "tsnr_mean"] {
            #expect(names.contains(metric), "\(metric)")
        }
        let sidecar = try String(contentsOfFile: run.folder + "/out/sub-01_ses-baseline_task-rest_desc-summary_connectivity.json", encoding: .utf8)
        #expect(sidecar.contains("\"ConfoundStrategy\": \"6P\""))
        #expect(sidecar.contains("\"VolumesCensored\": 9"))
    }

    @Test("outputs are identical for 1, 2 and 7 threads")
    func threads() throws {
        let run = try SmallRun()
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        var outputs: [[Data]] = []
        for threads in [1, 2, 7] {
            var options = FunctionalOptions(boldPath: run.bold, atlasPath: run.atlas, outputFolder: run.folder + "/out\(threads)")
            options.confoundsPath = run.confounds
            options.parameters.partialCorrelation = true
            options.threads = threads
            let result = try FunctionalPipeline.run(options)
            outputs.append(result.files.filter { !$0.hasSuffix(".json") }.map { FileManager.default.contents(atPath: $0)! })
        }
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0] == outputs[2])
    }

    @Test("clear errors: no TR anywhere, confounds of the wrong length, missing FD column")
    func errors() throws {
        let run = try SmallRun(trInHeader: false)
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        var options = FunctionalOptions(boldPath: run.bold, atlasPath: run.atlas, outputFolder: run.folder + "/out")
        #expect(throws: PipelineError.self) { try FunctionalPipeline.run(options) }
        do { _ = try FunctionalPipeline.run(options) } catch { #expect("\(error)".contains("no repetition time")) }
        options.parameters.repetitionTime = 2000  // milliseconds by mistake: no frequency in the band
        do { _ = try FunctionalPipeline.run(options); Issue.record("no error") } catch {
            #expect("\(error)".contains("is the TR in seconds?"), "\(error)")
        }
        options.parameters.repetitionTime = 2
        let short = run.folder + "/short.tsv"
        try "trans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\n0\t0\t0\t0\t0\t0\n".write(toFile: short, atomically: true, encoding: .utf8)
        options.confoundsPath = short
        do { _ = try FunctionalPipeline.run(options); Issue.record("no error") } catch {
            #expect("\(error)".contains("1 rows, the BOLD run has 100 volumes"))
        }
        options.confoundsPath = nil
        options.parameters.strategy = .none
        options.parameters.fdThreshold = 0.5
        #expect(throws: PipelineError.self) { try FunctionalPipeline.run(options) }
        #expect(!FileManager.default.fileExists(atPath: run.folder + "/out"))
    }
}

@Suite("fMRI voxelwise amplitude maps")
struct AmplitudeMapTests {
    @Test("fALFF is 1 for an in-band sinusoid and 0 out of band; ALFF scales with amplitude")
    func sinusoids() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [4, 1, 1], volumes = 200, tr = 2.0
        // Frequencies on FFT bins: k / (T * TR).
        let inBand = 10.0 / (Double(volumes) * tr)   // 0.025 Hz
        let outOfBand = 80.0 / (Double(volumes) * tr) // 0.2 Hz
        let series: [(Double, Double)] = [(5, inBand), (10, inBand), (5, outOfBand), (0, inBand)]
        var voxels = [Float](repeating: 0, count: 4 * volumes)
        for t in 0..<volumes {
            for (i, (amplitude, frequency)) in series.enumerated() {
                voxels[t * 4 + i] = Float(1000 + amplitude * sin(2 * .pi * frequency * Double(t) * tr))
            }
        }
        let affine = Affine.diagonal(3, 3, 3)
        try NIfTIFile.write(voxels, shape: shape + [volumes], geometry: NIfTIHeader.make(shape: shape + [volumes], affine: affine, repetitionTime: tr),
                            to: folder + "/bold.nii.gz")
        try NIfTIFile.write([Float](repeating: 1, count: 4), shape: shape, datatype: .int16,
                            geometry: NIfTIHeader.make(shape: shape, affine: affine), to: folder + "/atlas.nii.gz")
        var options = FunctionalOptions(boldPath: folder + "/bold.nii.gz", atlasPath: folder + "/atlas.nii.gz", outputFolder: folder + "/out", prefix: "run")
        options.parameters.strategy = .none
        options.parameters.amplitudeMaps = true
        let result = try FunctionalPipeline.run(options)
        #expect(result.files.contains(folder + "/out/run_stat-falff_boldmap.nii.gz"))
        let alff = try NIfTIFile.read(folder + "/out/run_stat-alff_boldmap.nii.gz", as: Double.self).voxels
        let falff = try NIfTIFile.read(folder + "/out/run_stat-falff_boldmap.nii.gz", as: Double.self).voxels
        // Linear detrending takes a little of a finite sinusoid's power out of its own bin
        // (its projection on the trend), so fALFF is 0.995 rather than 1 here.
        #expect(falff[0] > 0.99 && falff[1] > 0.99)
        #expect(abs(falff[0] - falff[1]) < 1e-6)
        #expect(falff[2] < 1e-4)
        #expect(abs(alff[1] / alff[0] - 2) < 1e-4)
        #expect(alff[3] == 0)  // a constant voxel: no amplitude
    }
}

@Suite("fMRI pipeline: fMRIPrep's flags and masks")
struct PreprocessedRunTests {
    /// SmallRun with its first three volumes far brighter (a common transient that pulls
    /// every correlation toward 1), flagged in the confounds as fMRIPrep flags them.
    static func runWithTransient() throws -> SmallRun {
        var run = try SmallRun()
        let n = run.shape.reduce(1, *)
        for t in 0..<3 { for i in 0..<n where run.labels[i] != 0 { run.voxels[t * n + i] += Float(400 * (3 - t)) } }
        let header = NIfTIHeader.make(shape: run.shape + [run.volumes],
                                      affine: Affine(rows: [[-3, 0, 0, 9], [0, 3, 0, -9], [0, 0, 3, 0], [0, 0, 0, 1]]), repetitionTime: 2)
        try NIfTIFile.write(run.voxels, shape: run.shape + [run.volumes], geometry: header, to: run.bold)
        let lines = try String(contentsOfFile: run.confounds, encoding: .utf8).split(separator: "\n").map(String.init)
        var text = lines[0] + "\tnon_steady_state_outlier00\tnon_steady_state_outlier01\tnon_steady_state_outlier02\n"
        for (t, line) in lines.dropFirst().enumerated() {
            text += line + (0..<3).map { $0 == t ? "\t1" : "\t0" }.joined() + "\n"
        }
        try text.write(toFile: run.confounds, atomically: true, encoding: .utf8)
        return run
    }

    func options(_ run: SmallRun, _ out: String, dummy: DummyScans) -> FunctionalOptions {
        var options = FunctionalOptions(boldPath: run.bold, atlasPath: run.atlas, outputFolder: run.folder + "/" + out)
        options.confoundsPath = run.confounds
        options.parameters.highPass = nil
        options.parameters.lowPass = nil
        options.parameters.dummyScans = dummy
        return options
    }

    @Test("flagged non-steady-state volumes are dropped by default, and only that keeps the negative correlation")
    func flaggedVolumesDropped() throws {
        let run = try Self.runWithTransient()
        let automatic = try FunctionalPipeline.run(options(run, "auto", dummy: .automatic))
        let explicit = try FunctionalPipeline.run(options(run, "three", dummy: .count(3)))
        let kept = try FunctionalPipeline.run(options(run, "kept", dummy: .count(0)))
        #expect(automatic.qc.keptVolumes == run.volumes - 3)
        for i in 0..<3 { for j in 0..<3 { #expect(automatic.pearson[i, j] == explicit.pearson[i, j]) } }
        // Regions A (loading 1.0) and C (-0.4) are anti-correlated; the transient hides it.
        #expect(automatic.pearson[0, 2] < -0.3, "r(A, C) = \(automatic.pearson[0, 2])")
        #expect(kept.pearson[0, 2] > 0.3, "r(A, C) with the transient = \(kept.pearson[0, 2])")
        let sidecar = try String(contentsOfFile: run.folder + "/auto/sub-01_ses-baseline_task-rest_desc-summary_connectivity.json", encoding: .utf8)
        #expect(sidecar.contains("\"NonSteadyStateVolumes\": 3") && sidecar.contains("non_steady_state_outlier"))
    }

    @Test("a BOLD series that is not skull-stripped and has no mask is refused, naming the mask expected")
    func notSkullStripped() throws {
        let run = try SmallRun()
        let preproc = run.folder + "/sub-01_ses-baseline_task-rest_space-MNI_desc-preproc_bold.nii.gz"
        try FileManager.default.copyItem(atPath: run.bold, toPath: preproc)
        try "{\"RepetitionTime\": 2, \"SkullStripped\": false}".write(
            toFile: preproc.replacingOccurrences(of: ".nii.gz", with: ".json"), atomically: true, encoding: .utf8)
        var options = FunctionalOptions(boldPath: preproc, atlasPath: run.atlas, outputFolder: run.folder + "/out")
        options.parameters.strategy = ConfoundStrategy.none
        #expect { try FunctionalPipeline.run(options) } throws: { error in
            "\(error)".contains("SkullStripped: false") && "\(error)".contains("sub-01_ses-baseline_task-rest_space-MNI_desc-brain_mask.nii.gz")
        }
        options.maskPath = run.atlas  // any mask on the grid
        #expect(throws: Never.self) { try FunctionalPipeline.run(options) }
    }
}
