import Foundation
import Pipelines
import Testing
import TestSupport
@testable import NIfTI

/// Output bytes (sidecars aside: they name the input) of a pipeline's files, by file name.
private func contents(_ files: [String]) -> [String: Data] {
    var out: [String: Data] = [:]
    for file in files where !file.hasSuffix(".json") {
        out[(file as NSString).lastPathComponent] = FileManager.default.contents(atPath: file)
    }
    return out
}

@Suite("Uncompressed inputs give the outputs of compressed ones")
struct UncompressedInputTests {
    @Test("dti: a DWI as .nii and as .nii.gz gives byte-identical maps and tables, 1 and 2 threads")
    func diffusion() throws {
        let dwi = try SmallDWI(affine: DiffusionPipelineTests.affines[1].1)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let plain = try gunzipped(dwi.stem + ".nii.gz")
        for threads in [1, 2] {
            let compressed = try DiffusionPipeline.run(dwi.options(frame: .fsl, threads: threads, out: "gz\(threads)"))
            var options = dwi.options(frame: .fsl, threads: threads, out: "nii\(threads)")
            options.dwiPath = plain
            let uncompressed = try DiffusionPipeline.run(options)
            let a = contents(compressed.files), b = contents(uncompressed.files)
            #expect(!a.isEmpty)
            #expect(a == b)
        }
    }

    @Test("fmri: a BOLD run as .nii and as .nii.gz gives byte-identical outputs, 1 and 2 threads")
    func functional() throws {
        let run = try SmallRun()
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        let plain = try gunzipped(run.bold)
        for threads in [1, 2] {
            var results: [[String: Data]] = []
            for (name, bold) in [("gz", run.bold), ("nii", plain)] {
                var options = FunctionalOptions(boldPath: bold, atlasPath: run.atlas, outputFolder: run.folder + "/\(name)\(threads)")
                options.confoundsPath = run.confounds
                options.threads = threads
                results.append(contents(try FunctionalPipeline.run(options).files))
            }
            #expect(!results[0].isEmpty)
            #expect(results[0] == results[1])
        }
    }
}
