import Diffusion
import Foundation
import NIfTI
import Tabular
import Testing

/// One row of Fixtures/bad/expected.tsv (written by Scripts/make_bad_fixtures).
struct BadInputCase: Sendable, CustomTestStringConvertible {
    let name: String
    let status: Int32
    /// The file the error line must name; nil when the input must be accepted.
    let file: String?
    /// A fragment the error line must contain; nil when not checked here.
    let message: String?
    let arguments: [String]

    var testDescription: String { name }
}

let badInputFolder = repositoryRoot + "/Fixtures/bad"

let badInputCases: [BadInputCase] = {
    guard let text = try? String(contentsOfFile: badInputFolder + "/expected.tsv", encoding: .utf8) else { return [] }
    return text.split(separator: "\n").dropFirst().map { line in
        let cells = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        return BadInputCase(name: cells[0], status: Int32(cells[1])!,
                            file: cells[2] == "-" ? nil : cells[2], message: cells[3] == "-" ? nil : cells[3],
                            arguments: cells[4].split(separator: " ").map(String.init))
    }
}()

@Suite("Bad input corpus (Fixtures/bad)")
struct BadInputCorpusTests {
    @Test("the corpus is present and covers every command")
    func corpusPresent() {
        #expect(badInputCases.count >= 50)
        let commands = Set(badInputCases.compactMap(\.arguments.first))
        #expect(commands == ["info", "dti", "fmri", "run"])
    }

    @Test("each input gets its exit status and one-line error naming the file, and leaves no output",
          arguments: badInputCases)
    func badInput(_ item: BadInputCase) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = folder + "/out"
        let arguments = item.arguments.map { $0.replacingOccurrences(of: "{out}", with: out) }
        let run = try runTool(arguments, in: badInputFolder)

        #expect(!run.signaled, "killed by signal \(run.status): \(run.stderr)")
        #expect(run.status == item.status, "\(run.stderr)")
        #expect(run.status < 128)
        if item.status == 0 {
            try checkAccepted(item, out: out, run: run)
            return
        }
        let lines = run.stderr.split(separator: "\n").map(String.init)
        if item.arguments.first == "run" && item.name == "run_one_bad_visit" {
            try checkOneFailedVisit(out: out, lines: lines)
            return
        }
        #expect(lines.count == 1, "expected one line on stderr, got:\n\(run.stderr)")
        let line = lines.first ?? ""
        #expect(line.hasPrefix("nimetrics: "))
        if let file = item.file { #expect(line.contains(file), "the message does not name \(file): \(line)") }
        if let message = item.message { #expect(line.contains(message), "expected '\(message)' in: \(line)") }
        #expect(filesBelow(out).isEmpty, "files left behind: \(filesBelow(out))")
    }

    /// `run` over a manifest with one good and one truncated visit: the good one is
    /// processed, the bad one recorded as failed with the file and reason.
    func checkOneFailedVisit(out: String, lines: [String]) throws {
        #expect(lines.contains { $0.contains("FAILED") && $0.contains("truncated_dwi.nii.gz: data truncated") })
        let good = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sub-01/ses-01/sub-01_ses-01_desc-dwi_visit.json"))) as! [String: Any]
        let bad = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sub-02/ses-01/sub-02_ses-01_desc-dwi_visit.json"))) as! [String: Any]
        #expect(good["status"] as? String == "ok")
        #expect(bad["status"] as? String == "failed")
        #expect((bad["error"] as? String)?.contains("truncated_dwi.nii.gz: data truncated") == true)
        #expect(FileManager.default.fileExists(atPath: out + "/sub-01/ses-01/sub-01_ses-01_desc-dwi_metrics.tsv"))
        #expect(filesBelow(out + "/sub-02") == ["ses-01/sub-02_ses-01_desc-dwi_visit.json"])
        #expect(!filesBelow(out).contains { $0.contains(".nimetrics-tmp-") })
    }

    /// Inputs that are odd but valid: processed, with the documented treatment of
    /// non-finite voxels.
    func checkAccepted(_ item: BadInputCase, out: String, run: ToolRun) throws {
        #expect(!filesBelow(out).isEmpty)
        switch item.name {
        case "dwi_nonfinite_voxels":
            // NaN, +Inf and -Inf each in one volume of three brain voxels: those voxels are left
            // unfitted (0 in every map), and every other fitted voxel has the planted tensor.
            let fa = try NIfTIFile.read(out + "/dwi_nonfinite_model-tensor_param-fa_dwimap.nii.gz", as: Double.self)
            let md = try NIfTIFile.read(out + "/dwi_nonfinite_model-tensor_param-md_dwimap.nii.gz", as: Double.self)
            func index(_ x: Int, _ y: Int, _ z: Int) -> Int { x + 6 * (y + 6 * z) }
            for voxel in [index(2, 2, 1), index(3, 2, 1), index(2, 3, 2)] {
                #expect(fa.voxels[voxel] == 0 && md.voxels[voxel] == 0, "voxel \(voxel) was fitted")
            }
            #expect(fa.voxels.allSatisfy(\.isFinite) && md.voxels.allSatisfy(\.isFinite))
            // The automatic mask of so small an image also takes background voxels (constant
            // signal 5, a zero tensor); only brain voxels (S0 = 1000) carry the planted tensor.
            let s0 = try NIfTIFile.read(out + "/dwi_nonfinite_model-tensor_param-s0_dwimap.nii.gz", as: Double.self)
            let fitted = fa.voxels.indices.filter { abs(s0.voxels[$0] - 1000) < 1 }.map { fa.voxels[$0] }
            #expect(fitted.count >= 4)
            // FA of eigenvalues (1.7, 0.3, 0.3): sqrt(1/2) * sqrt(2 * 1.4^2) / sqrt(1.7^2 + 2 * 0.3^2).
            let truth = (0.5 * 2 * 1.4 * 1.4).squareRoot() / (1.7 * 1.7 + 2 * 0.09).squareRoot()
            #expect(fitted.allSatisfy { abs($0 - truth) < 1e-4 }, "\(fitted)")
            let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/dwi_nonfinite_model-tensor_dwimap.json"))) as! [String: Any]
            let qc = sidecar["QC"] as! [String: Any]
            #expect((qc["VoxelsInMask"] as! Int) - (qc["VoxelsFitted"] as! Int) == 3)
        case "bold_nonfinite_voxels":
            // A voxel NaN in every volume drops out of the brain mask; a voxel +Inf in one
            // volume is skipped in that volume's region mean. Every region stays finite.
            let regions = try String(contentsOfFile: out + "/bold_nonfinite_desc-regions_bold.tsv", encoding: .utf8)
            let rows = regions.split(separator: "\n").dropFirst().map { $0.split(separator: "\t").map(String.init) }
            #expect(rows.count == 4)
            #expect(rows.allSatisfy { !$0.contains("n/a") || $0[2] == "n/a" && $0.dropFirst(3).allSatisfy { $0 != "n/a" } })
            #expect(rows[0][4] == "7", "the all-NaN voxel should leave region 1's brain mask: \(rows[0])")
            let series = try String(contentsOfFile: out + "/bold_nonfinite_stat-mean_timeseries.tsv", encoding: .utf8)
            let values = series.split(separator: "\n").dropFirst().flatMap { $0.split(separator: "\t") }
            #expect(values.count == 40 * 4)
            #expect(values.allSatisfy { Double($0)?.isFinite == true })
        case "dwi_nan_volume":
            // The all-NaN volume is left out with a warning naming it; every brain voxel is
            // fitted from the seven others and has the planted tensor.
            #expect(run.stderr.contains("volume 3 (b = 1000) of dwi_nan_volume.nii.gz is not finite"), "\(run.stderr)")
            let sidecar = try jsonObject(out + "/dwi_nan_volume_model-tensor_dwimap.json")
            let qc = sidecar["QC"] as! [String: Any]
            #expect(qc["VolumesNotFinite"] as? [Int] == [3])
            #expect(sidecar["VolumesUsed"] as? Int == 7)
            let s0 = try NIfTIFile.read(out + "/dwi_nan_volume_model-tensor_param-s0_dwimap.nii.gz", as: Double.self)
            let fa = try NIfTIFile.read(out + "/dwi_nan_volume_model-tensor_param-fa_dwimap.nii.gz", as: Double.self)
            let brain = fa.voxels.indices.filter { abs(s0.voxels[$0] - 1000) < 1 }
            // The automatic mask of so small an image holds part of the brain box (see above).
            #expect(brain.count >= 4)
            let truth = (0.5 * 2 * 1.4 * 1.4).squareRoot() / (1.7 * 1.7 + 2 * 0.09).squareRoot()
            #expect(brain.allSatisfy { abs(fa.voxels[$0] - truth) < 1e-4 })
        case "bold_nan_volume":
            // The all-NaN volume is censored (named in a warning and the QC), not spread to
            // every region: 39 volumes kept, every region finite.
            #expect(run.stderr.contains("censored because a region's mean is not finite there"), "\(run.stderr)")
            let qc = try jsonObject(out + "/bold_nan_volume_desc-summary_connectivity.json")["QC"] as! [String: Any]
            #expect(qc["VolumesCensoredNonFinite"] as? [Int] == [5])
            #expect(qc["VolumesKept"] as? Int == 39)
            #expect((qc["RegionsMissing"] as? [String])?.isEmpty == true)
            let matrix = try String(contentsOfFile: out + "/bold_nan_volume_stat-pearsoncorrelation_relmat.tsv", encoding: .utf8)
            #expect(!matrix.contains("n/a"))
        case "bold_constant_region":
            // The constant region is n/a and listed among the missing regions with its reason.
            #expect(run.stderr.contains("(constant signal): left_front"), "\(run.stderr)")
            let qc = try jsonObject(out + "/bold_constant_region_desc-summary_connectivity.json")["QC"] as! [String: Any]
            #expect(qc["RegionsMissing"] as? [String] == ["left_front"])
            #expect((qc["RegionsMissingReasons"] as? [String: String])?["left_front"] == "constant signal")
        default:
            break
        }
    }

    func jsonObject(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }
}

/// Inputs that once crashed a fuzz target (Scripts/fuzz), replayed in-process exactly as the
/// target runs them. Reaching the end of each without a trap is the test; each must also be
/// refused with a NIfTIError or read consistently.
@Suite("Fuzz regressions (Fixtures/fuzz-regressions)")
struct FuzzRegressionTests {
    static let niftiInputs: [String] = {
        let folder = repositoryRoot + "/Fixtures/fuzz-regressions/nifti"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().map { folder + "/" + $0 }
    }()

    static let tableInputs: [String] = {
        let folder = repositoryRoot + "/Fixtures/fuzz-regressions/tables"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().map { folder + "/" + $0 }
    }()


    /// The FuzzTables target's dispatch (first byte: 0 TSV, 1 FSL bval NUL bvec, 2 MRtrix) and
    /// its invariants on an accepted gradient table.
    @Test("text parsers", arguments: tableInputs)
    func tables(_ input: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: input)))
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        var accepted: GradientTable?
        switch selector % 3 {
        case 0:
            if let table = try? TSVTable(text: String(decoding: body, as: UTF8.self), source: "fuzz.tsv") {
                #expect(table.rows.allSatisfy { $0.count == table.columns.count })
                for name in table.columns { _ = try? table.numericColumn(name) }
            }
        case 1:
            let split = body.firstIndex(of: 0) ?? body.count
            let bval = String(decoding: body[..<split], as: UTF8.self)
            let bvec = String(decoding: body[min(split + 1, body.count)...], as: UTF8.self)
            accepted = try? GradientTable.fsl(bval: bval, bvec: bvec, source: "fuzz.bvec")
        default:
            accepted = try? GradientTable.mrtrix(String(decoding: body, as: UTF8.self), source: "fuzz.b")
        }
        guard let table = accepted else { return }
        let check = {
            for (b, g) in zip(table.bValues, table.directions) {
                let norm = (g * g).sum().squareRoot()
                #expect(b.isFinite && b >= 0, "accepted b-value \(b)")
                #expect(b <= table.b0Threshold ? (norm == 0 || abs(norm - 1) < 1e-9) : abs(norm - 1) < 1e-9,
                        "accepted direction of norm \(norm) with b = \(b)")
            }
        }
        check()
    }

    @Test("NIfTI reader", arguments: niftiInputs)
    func nifti(_ input: String) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        let compressed = data.starts(with: [0x1F, 0x8B])
        let path = folder + (compressed ? "/input.nii.gz" : "/input.nii")
        try data.write(to: URL(fileURLWithPath: path))
        do {
            let image = try NIfTIFile.read(path, as: Float.self, threads: 2)
            #expect(image.voxels.count == image.header.voxelCount)
        } catch let error as NIfTIError {
            #expect(error.description.hasPrefix(path))
        }
        if let reader = try? NIfTIFile.volumes(path) {
            var volume = [Float]()
            while (try? reader.next(into: &volume)) == true {
                #expect(volume.count == reader.header.voxelsPerVolume)
            }
        }
    }
}
