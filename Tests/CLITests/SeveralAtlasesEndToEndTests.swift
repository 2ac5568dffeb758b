import Foundation
import NIfTI
import Pipelines
import Tabular
import TestSupport
import Testing

/// `--atlas A B`: each atlas's outputs (seg-<name>) and metrics (the atlas column), on the demo
/// trial, with a second atlas that is the demo atlas renumbered (the same regions under
/// other labels), so that each of its regional values must equal the demo atlas's.
@Suite("Several atlases in one run")
struct SeveralAtlasesEndToEndTests {
    /// The demo atlas with its 19 labels reversed, as `atlas-perm_dseg.nii.gz` in a fresh folder.
    static func renumberedAtlas(_ data: String) throws -> (demo: String, perm: String, work: String) {
        let work = makeTemporaryFolder()
        let demo = data + "/atlas/atlas-demo_dseg.nii.gz", perm = work + "/atlas-perm_dseg.nii.gz"
        let image = try NIfTIFile.read(demo)
        let s = image.header.spatialShape
        let reversal = AtlasRelabelling.reversal(count: 19)
        try NIfTIFile.write(AtlasRelabelling.labels(image.voxels, reversal), shape: [s.x, s.y, s.z], datatype: .int16,
                            geometry: image.header, to: perm)
        let table = try String(contentsOfFile: data + "/atlas/atlas-demo_dseg.tsv", encoding: .utf8)
        try AtlasRelabelling.table(table, reversal).write(toFile: work + "/atlas-perm_dseg.tsv", atomically: true, encoding: .utf8)
        return (demo, perm, work)
    }

    static func rows(_ path: String) throws -> [[String: String]] {
        let table = try TSVTable.read(path)
        return table.rows.map { Dictionary(uniqueKeysWithValues: zip(table.columns, $0)) }
    }

    /// Values by (modality, region, metric, run) for one atlas cell value.
    static func values(_ rows: [[String: String]], atlas: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: rows.filter { $0["atlas"] == atlas }.map {
            ([$0["modality"]!, $0["region"]!, $0["metric"]!, $0["run"]!].joined(separator: " "), $0["value"]!)
        })
    }

    /// Equal as numbers within `tolerance` (relative above 1), or both n/a.
    static func close(_ a: String, _ b: String, tolerance: Double) -> Bool {
        guard let x = Double(a), let y = Double(b) else { return a == b }
        return abs(x - y) <= tolerance * max(1, abs(x))
    }

    private func run(_ data: String, _ output: String, _ extra: [String]) throws -> ToolRun {
        try runTool(["run", data, output, "participant", "--participant-label", "01", "--session-label", "baseline", "m01",
                     "--threads", "1"] + extra)
    }

    @Test("two atlases: two sets of outputs, both names in the atlas column, the same values; one atlas's outputs unchanged")
    func twoAtlases() throws {
        let data = try sharedDemoDataset()
        let (demo, perm, work) = try Self.renumberedAtlas(data)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let one = work + "/one", two = work + "/two"
        let single = try run(data, one, ["--atlas", demo])
        try #require(single.status == 0, "\(single.stderr)")
        let both = try run(data, two, ["--atlas", demo, perm, "--fd-threshold", "0.5", "--group"])
        try #require(both.status == 0, "\(both.stderr)")
        _ = try run(data, one, ["--atlas", demo, "--fd-threshold", "0.5", "--group"])

        let visit = "/sub-01/ses-baseline/"
        for name in ["demo", "perm"] {
            #expect(FileManager.default.fileExists(atPath: two + visit + "dwi/sub-01_ses-baseline_seg-\(name)_model-tensor_summary.tsv"))
            for suffix in ["stat-pearsoncorrelation_relmat.tsv", "desc-regions_bold.tsv", "desc-summary_connectivity.json"] {
                #expect(FileManager.default.fileExists(atPath: two + visit + "func/sub-01_ses-baseline_task-rest_seg-\(name)_\(suffix)"))
            }
        }
        // The first atlas's outputs are those of a run with it alone, byte for byte; only
        // the tables of numbers (a column more), the records, the DWI sidecar (a list of
        // atlases) and the HTML reports (which show every atlas) differ.
        let changed = ["_metrics.tsv", "_visit.json", "_model-tensor_dwimap.json", "group/", ".html"]
        for file in filesBelow(one) where !changed.contains(where: file.contains) {
            #expect(contents(one + "/" + file) == contents(two + "/" + file), "\(file)")
        }

        for modality in ["dwi", "func"] {
            let path = visit + "sub-01_ses-baseline_desc-\(modality)_metrics.tsv"
            let alone = try Self.rows(one + path), metrics = try Self.rows(two + path)
            #expect(Set(alone.map { $0["atlas"]! }) == ["n/a"])
            #expect(Set(metrics.map { $0["atlas"]! }) == ["n/a", "demo", "perm"])
            // The renumbered atlas gives the same regional values under its name (DWI: the same
            // voxels in the same order, exactly; fMRI: sums over regions in another order).
            let demoValues = Self.values(metrics, atlas: "demo"), permValues = Self.values(metrics, atlas: "perm")
            #expect(demoValues.keys.sorted() == permValues.keys.sorted())
            #expect(demoValues.keys.contains { $0.hasPrefix(modality + " L_CST ") } || modality == "func")
            for (key, value) in demoValues {
                #expect(Self.close(value, permValues[key]!, tolerance: modality == "dwi" ? 0 : 1e-12), "\(key)")
            }
            // With one atlas, the same numbers, untagged.
            let aloneValues = Self.values(alone, atlas: "n/a")
            var merged = Self.values(metrics, atlas: "n/a")
            merged.merge(demoValues) { a, _ in a }
            #expect(aloneValues == merged, "\(modality)")
        }
        // Values no atlas changes are not repeated per atlas.
        let dwi = try Self.rows(two + visit + "sub-01_ses-baseline_desc-dwi_metrics.tsv")
        #expect(dwi.filter { $0["region"] == "whole_brain" }.allSatisfy { $0["atlas"] == "n/a" })
        let functional = try Self.rows(two + visit + "sub-01_ses-baseline_desc-func_metrics.tsv")
        #expect(functional.filter { $0["metric"] == "fd_mean" }.map { $0["atlas"]! } == ["n/a"])
        #expect(Set(functional.filter { $0["metric"] == "conn_mean" }.map { $0["atlas"]! }) == ["demo", "perm"])

        // The group tables: the atlas column, change from baseline atlas by atlas.
        let long = try Self.rows(two + "/group/metrics_long.tsv")
        #expect(Set(long.map { $0["atlas"]! }) == ["n/a", "demo", "perm"])
        let change = try Self.rows(two + "/group/change_from_baseline.tsv")
        let l_cst = change.filter { $0["region"] == "L_CST" && $0["metric"] == "fa_mean" }
        #expect(l_cst.map { $0["atlas"]! }.sorted() == ["demo", "perm"])
        #expect(l_cst.allSatisfy { $0["baseline_value"] != "n/a" && $0["delta"] == l_cst[0]["delta"] })
        // The whole run's other group tables hold one atlas's numbers as the run with it alone.
        let aloneChange = try Self.rows(one + "/group/change_from_baseline.tsv")
        #expect(change.filter { $0["atlas"] != "perm" }.count == aloneChange.count)
    }

    @Test("a session of two runs with two atlases: each run's values and the session's, atlas by atlas")
    func runsAndAtlases() throws {
        let (top, data) = try makeDerivativesDemo(participants: 2)
        defer { try? FileManager.default.removeItem(atPath: top) }
        let (demo, perm, work) = try Self.renumberedAtlas(data)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let output = top + "/out"
        // sub-02's baseline has two runs.
        let result = try runTool(["run", data, output, "participant", "--participant-label", "02", "--session-label", "baseline",
                                  "--atlas", demo, perm, "--threads", "1"])
        try #require(result.status == 0, "\(result.stderr)")
        let folder = output + "/sub-02/ses-baseline/"
        let functional = try Self.rows(folder + "sub-02_ses-baseline_desc-func_metrics.tsv")
        for atlas in ["demo", "perm"] {
            let runs = functional.filter { $0["atlas"] == atlas && $0["region"] == "whole_brain" && $0["metric"] == "conn_mean" }
            #expect(runs.map { $0["run"]! }.sorted() == ["1", "2", "n/a"], "\(atlas)")
            for run in ["1", "2"] {
                let name = "func/sub-02_ses-baseline_task-rest_run-\(run)_space-MNI152NLin2009cAsym_seg-\(atlas)_stat-pearsoncorrelation_relmat.tsv"
                #expect(FileManager.default.fileExists(atPath: folder + name), "\(name)")
            }
        }
        // The volumes kept (the runs' weights) and the motion are the run's, whatever the atlas: once.
        #expect(functional.filter { $0["metric"] == "volumes_kept" }.map { $0["atlas"]! + " " + $0["run"]! }.sorted()
                == ["n/a 1", "n/a 2", "n/a n/a"])
        let demoValues = Self.values(functional, atlas: "demo"), permValues = Self.values(functional, atlas: "perm")
        #expect(demoValues.keys.sorted() == permValues.keys.sorted())
        for (key, value) in demoValues { #expect(Self.close(value, permValues[key]!, tolerance: 1e-12), "\(key)") }
        // Each run's files are hashed once, each atlas once.
        let record = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: folder + "sub-02_ses-baseline_desc-func_visit.json"))) as! [String: Any]
        let roles = (record["inputs"] as! [[String: Any]]).map { $0["role"] as! String }
        #expect(roles.filter { $0.hasPrefix("bold") && !$0.hasPrefix("bold_sidecar") } == ["bold", "bold_run-2"])
        #expect(roles.filter { $0.hasPrefix("func_atlas") }.sorted()
                == ["func_atlas_seg-demo", "func_atlas_seg-perm", "func_atlas_table_seg-demo", "func_atlas_table_seg-perm"])
    }

    @Test("an atlas added to a modality redoes that modality only; the same atlases again redo nothing")
    func fingerprint() throws {
        let data = try sharedDemoDataset()
        let (demo, perm, work) = try Self.renumberedAtlas(data)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let output = work + "/out"
        func visit(_ extra: [String]) throws -> ToolRun {
            try runTool(["run", data, output, "participant", "--participant-label", "01", "--session-label", "baseline",
                         "--threads", "1"] + extra)
        }
        try #require(try visit(["--atlas", demo]).status == 0)
        let funcAdded = try visit(["--dwi-atlas", demo, "--func-atlas", demo, perm])
        #expect(funcAdded.stderr.contains("1 processed, 1 up to date"), "\(funcAdded.stderr)")
        let again = try visit(["--dwi-atlas", demo, "--func-atlas", demo, perm])
        #expect(again.stderr.contains("0 processed, 2 up to date"), "\(again.stderr)")
        let record = try String(contentsOfFile: output + "/sub-01/ses-baseline/sub-01_ses-baseline_desc-func_visit.json", encoding: .utf8)
        #expect(record.contains("\"func_atlas_seg-perm\"") && record.contains("\"func_atlas_table_seg-demo\""))
        let dwiAdded = try visit(["--atlas", demo, perm])
        #expect(dwiAdded.stderr.contains("1 processed, 1 up to date"), "\(dwiAdded.stderr)")
    }

    @Test("two atlases with one seg name are refused before anything is written, naming both")
    func duplicateName() throws {
        let data = try sharedDemoDataset()
        let work = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let copy = work + "/atlas-demo_dseg.nii.gz"
        try FileManager.default.copyItem(atPath: data + "/atlas/atlas-demo_dseg.nii.gz", toPath: copy)
        for options in [["--atlas"], ["--func-atlas"]] {
            let result = try runTool(["run", data, work + "/out", "participant"] + options + [data + "/atlas/atlas-demo_dseg.nii.gz", copy])
            #expect(result.status != 0 && !result.signaled)
            #expect(result.stderr.contains(copy) && result.stderr.contains(data + "/atlas/atlas-demo_dseg.nii.gz")
                    && result.stderr.contains("seg-demo"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: work + "/out"))
        }
        let tables = try runTool(["run", data, work + "/out", "participant", "--atlas", copy, "--atlas-table", "a.tsv", "b.tsv"])
        #expect(tables.status != 0 && tables.stderr.contains("--atlas-table"), "\(tables.stderr)")
    }

    @Test("dti and fmri take several atlases too: a summary table, or a set of outputs, per atlas")
    func singleCommands() throws {
        let data = try sharedDemoDataset()
        let (demo, perm, work) = try Self.renumberedAtlas(data)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let stem = data + "/sub-01/ses-baseline/"
        let dti = try runTool(["dti", "--dwi", stem + "dwi/sub-01_ses-baseline_dwi.nii.gz", "--bval", stem + "dwi/sub-01_ses-baseline_dwi.bval",
                               "--bvec", stem + "dwi/sub-01_ses-baseline_dwi.bvec", "--atlas", demo, perm, "--out", work + "/dti", "--threads", "1"])
        #expect(dti.status == 0, "\(dti.stderr)")
        let bold = stem + "func/sub-01_ses-baseline_task-rest_"
        let fmri = try runTool(["fmri", "--bold", bold + "bold.nii.gz", "--confounds", bold + "desc-confounds_timeseries.tsv",
                                "--atlas", demo, perm, "--out", work + "/fmri", "--threads", "1"])
        #expect(fmri.status == 0, "\(fmri.stderr)")
        let fmriOne = try runTool(["fmri", "--bold", bold + "bold.nii.gz", "--confounds", bold + "desc-confounds_timeseries.tsv",
                                   "--atlas", demo, "--out", work + "/fmri1", "--threads", "1"])
        #expect(fmriOne.status == 0, "\(fmriOne.stderr)")
        for name in ["demo", "perm"] {
            #expect(FileManager.default.fileExists(atPath: work + "/dti/sub-01_ses-baseline_seg-\(name)_model-tensor_summary.tsv"))
            #expect(FileManager.default.fileExists(atPath: work + "/fmri/sub-01_ses-baseline_task-rest_seg-\(name)_stat-pearsoncorrelation_relmat.tsv"))
        }
        // One atlas keeps the plain names, with the same bytes as the first of two.
        let plain = work + "/fmri1/sub-01_ses-baseline_task-rest_stat-pearsoncorrelation_relmat.tsv"
        #expect(contents(plain) != nil && contents(plain) == contents(work + "/fmri/sub-01_ses-baseline_task-rest_seg-demo_stat-pearsoncorrelation_relmat.tsv"))
    }
}
