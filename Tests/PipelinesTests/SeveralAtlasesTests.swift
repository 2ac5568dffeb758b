import Foundation
import NIfTI
import Pipelines
import TestSupport
import Testing

/// Writes `atlas` (and its table) renumbered by `permutation` at `path`: the same regions
/// under other labels.
func writeRelabelledAtlas(_ atlas: String, table: String, to path: String, permutation: [Int: Int]) throws {
    let image = try NIfTIFile.read(atlas)
    let s = image.header.spatialShape
    try NIfTIFile.write(AtlasRelabelling.labels(image.voxels, permutation), shape: [s.x, s.y, s.z], datatype: .int16,
                        geometry: image.header, to: path)
    let text = try String(contentsOfFile: table, encoding: .utf8)
    try AtlasRelabelling.table(text, permutation).write(toFile: LabelImage.defaultTablePath(for: path), atomically: true, encoding: .utf8)
}

/// The metrics without their atlas, keyed for comparison.
private func byKey(_ metrics: [VisitMetric]) -> [String: VisitMetric] {
    Dictionary(uniqueKeysWithValues: metrics.map { m in
        var plain = m
        plain.atlas = nil
        return ("\(m.modality) \(m.region) \(m.metric) \(m.run ?? "")", plain)
    })
}

@Suite("Several atlases in one scan")
struct SeveralAtlasesTests {
    /// SmallDWI's atlas as `atlas-first_dseg`, and renumbered (1..4 reversed) as `atlas-second_dseg`;
    /// a lesion mask on the first region.
    static func dwiWithTwoAtlases() throws -> (dwi: SmallDWI, atlases: [AtlasFile], lesion: String) {
        let dwi = try SmallDWI(affine: DiffusionPipelineTests.affines[1].1)
        let first = dwi.folder + "/atlas-first_dseg.nii.gz", second = dwi.folder + "/atlas-second_dseg.nii.gz"
        try FileManager.default.copyItem(atPath: dwi.folder + "/atlas.nii.gz", toPath: first)
        try FileManager.default.copyItem(atPath: dwi.folder + "/atlas.tsv", toPath: dwi.folder + "/atlas-first_dseg.tsv")
        try writeRelabelledAtlas(first, table: dwi.folder + "/atlas.tsv", to: second, permutation: AtlasRelabelling.reversal(count: 4))
        let lesion = dwi.folder + "/lesion.nii.gz"
        try writeRelabelledAtlas(first, table: dwi.folder + "/atlas.tsv", to: lesion, permutation: [2: 0, 3: 0])
        return (dwi, [AtlasFile(path: first), AtlasFile(path: second)], lesion)
    }

    @Test("DTI: one fit, a summary table per atlas named seg-<name>; a renumbered atlas gives the same values under its name")
    func diffusion() throws {
        let (dwi, atlases, lesion) = try Self.dwiWithTwoAtlases()
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        var both = dwi.options(frame: .fsl, out: "both")
        both.atlases = atlases
        both.lesionMaskPath = lesion
        let result = try DiffusionPipeline.run(both)
        let out = dwi.folder + "/both/sub-01_ses-baseline"
        for name in ["first", "second"] {
            #expect(result.files.contains(out + "_seg-\(name)_model-tensor_summary.tsv"))
            #expect(FileManager.default.fileExists(atPath: out + "_seg-\(name)_model-tensor_summary.tsv"))
        }
        #expect(!FileManager.default.fileExists(atPath: out + "_model-tensor_summary.tsv"))
        #expect(result.summariesByAtlas.keys.sorted() == ["first", "second"])

        // Each atlas's regions under its name, with the same values; the rest once, untagged.
        let first = result.metrics.filter { $0.atlas == "first" }, second = result.metrics.filter { $0.atlas == "second" }
        #expect(Set(first.map(\.region)) == ["stick", "prolate", "sphere", "absent"])
        #expect(first.count == 4 * 21)  // 4 maps x 5 statistics + n_voxels
        #expect(byKey(first) == byKey(second))
        let untagged = result.metrics.filter { $0.atlas == nil }
        #expect(Set(untagged.map(\.region)) == ["whole_brain", "lesion", "normal_appearing_tissue"])
        #expect(untagged.count == 3 * 21 + 1)  // + negative_eigenvalue_fraction
        #expect(result.metrics.count == first.count + second.count + untagged.count)
        // Each table is complete: its atlas's regions, whole_brain and the lesion masks.
        for name in ["first", "second"] {
            let regions = Set(readCells(out + "_seg-\(name)_model-tensor_summary.tsv").dropFirst().map { $0[0] })
            #expect(regions == ["stick", "prolate", "sphere", "absent", "whole_brain", "lesion", "normal_appearing_tissue"])
        }
        // The second atlas is truly renumbered: stick is label 1 in the first, 4 in the second.
        #expect(result.summariesByAtlas["first"]?["fa"]?.first { $0.name == "stick" }?.index == 1)
        #expect(result.summariesByAtlas["second"]?["fa"]?.first { $0.name == "stick" }?.index == 4)
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "_model-tensor_dwimap.json"))) as! [String: Any]
        #expect(sidecar["Atlas"] as? [String] == atlases.map(\.path))

        // One atlas: untagged metrics, the same numbers, and the same summary table, byte for byte.
        var one = dwi.options(frame: .fsl, out: "one")
        one.atlases = [atlases[0]]
        one.lesionMaskPath = lesion
        let single = try DiffusionPipeline.run(one)
        #expect(single.metrics.allSatisfy { $0.atlas == nil })
        #expect(byKey(single.metrics) == byKey(first + untagged))
        #expect(FileManager.default.contents(atPath: dwi.folder + "/one/sub-01_ses-baseline_seg-first_model-tensor_summary.tsv")
                == FileManager.default.contents(atPath: out + "_seg-first_model-tensor_summary.tsv"))
        let oneSidecar = try String(contentsOfFile: dwi.folder + "/one/sub-01_ses-baseline_model-tensor_dwimap.json", encoding: .utf8)
        #expect(oneSidecar.contains("\"Atlas\": \"\(atlases[0].path)\""))

        // No atlas: the summary keeps its plain name.
        var none = dwi.options(frame: .fsl, out: "none")
        none.atlases = []
        _ = try DiffusionPipeline.run(none)
        #expect(FileManager.default.fileExists(atPath: dwi.folder + "/none/sub-01_ses-baseline_model-tensor_summary.tsv"))
    }

    @Test("DTI: two atlases with one seg name are refused before anything is written, naming both files")
    func duplicateName() throws {
        let dwi = try SmallDWI(affine: DiffusionPipelineTests.affines[0].1)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        var paths: [String] = []
        for folder in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: dwi.folder + "/" + folder, withIntermediateDirectories: true)
            let path = dwi.folder + "/\(folder)/atlas-JHU_dseg.nii.gz"
            try FileManager.default.copyItem(atPath: dwi.folder + "/atlas.nii.gz", toPath: path)
            paths.append(path)
        }
        var options = dwi.options(frame: .fsl, out: "dup")
        options.atlases = paths.map { AtlasFile(path: $0) }
        #expect { try DiffusionPipeline.run(options) } throws: { error in
            let text = "\(error)"
            return error is PipelineError && text.contains(paths[0]) && text.contains(paths[1]) && text.contains("seg-JHU")
        }
        #expect(!FileManager.default.fileExists(atPath: dwi.folder + "/dup"))
        #expect(throws: PipelineError.self) { try OutputNaming.atlasNames(["x/atlas-A_dseg.nii.gz", "y/tpl-X_atlas-A_res-2_dseg.nii.gz"]) }
        #expect(try OutputNaming.atlasNames(["atlas-A_dseg.nii.gz", "seg-B_dseg.nii.gz", "my atlas.nii.gz"]) == ["A", "B", "myatlas"])
    }

    @Test("fMRI: a renumbered atlas gives the same values; the metrics called atlas-independent are the same under both")
    func functional() throws {
        let run = try SmallRun()
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        let renumbered = run.folder + "/atlas-second_dseg.nii.gz"
        try writeRelabelledAtlas(run.atlas, table: run.folder + "/atlas.tsv", to: renumbered,
                                 permutation: AtlasRelabelling.reversal(count: 4))
        var perAtlas: [(name: String, metrics: [VisitMetric])] = []
        var regionOrders: [[String]] = []
        for (name, atlas) in [("first", run.atlas), ("second", renumbered)] {
            var options = FunctionalOptions(boldPath: run.bold, atlasPath: atlas, outputFolder: run.folder + "/" + name)
            options.confoundsPath = run.confounds
            options.parameters.fdThreshold = 0.5
            let result = try FunctionalPipeline.run(options)
            perAtlas.append((name, result.metrics))
            regionOrders.append(result.regionNames)
        }
        #expect(regionOrders == [["A", "B", "C", "Empty"], ["Empty", "C", "B", "A"]])
        // Regions come in label order, so sums run in another order: equal to rounding.
        let first = byKey(perAtlas[0].metrics), second = byKey(perAtlas[1].metrics)
        #expect(first.keys.sorted() == second.keys.sorted())
        for (key, metric) in first {
            let other = second[key]!.value
            #expect(metric.value.isNaN ? other.isNaN : abs(metric.value - other) <= 1e-12 * max(1, abs(metric.value)), "\(key)")
        }
        // What is kept once must not depend on the atlas at all.
        for metric in perAtlas[0].metrics where !AtlasCombination.functionalDependsOnAtlas(metric) {
            #expect(second[byKey([metric]).keys.first!]!.value == metric.value, "\(metric.metric)")
        }

        let combined = AtlasCombination.combine(perAtlas, dependsOnAtlas: AtlasCombination.functionalDependsOnAtlas)
        let once = combined.filter { $0.atlas == nil }
        #expect(Set(once.map(\.metric)) == AtlasCombination.functionalAtlasIndependentMetrics)
        #expect(once.count == AtlasCombination.functionalAtlasIndependentMetrics.count)
        #expect(combined.filter { $0.atlas == "second" }.count == perAtlas[1].metrics.count - once.count)
        #expect(combined.contains { $0.atlas == "first" && $0.region == "A" && $0.metric == "alff" })
        #expect(combined.contains { $0.atlas == "second" && $0.region == wholeBrainRegion && $0.metric == "conn_mean" })
        // One atlas: its metrics as they are.
        #expect(AtlasCombination.combine([perAtlas[0]], dependsOnAtlas: AtlasCombination.functionalDependsOnAtlas) == perAtlas[0].metrics)
    }
}
