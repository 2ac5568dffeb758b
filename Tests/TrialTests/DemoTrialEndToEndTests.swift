import Foundation
import Phantoms
import Pipelines
import Tabular
import Testing
import Trial

/// The whole flow on the demo trial (5 participants x 4 visits, planted changes): the
/// correctness bars of the cohort layer, with the real pipelines.
@Suite("Demo trial, end to end", .serialized)
struct DemoTrialEndToEndTests {
    static func rows(_ path: String) throws -> [[String: String]] {
        let table = try TSVTable.read(path)
        return table.rows.map { Dictionary(uniqueKeysWithValues: zip(table.columns, $0)) }
    }

    @Test("every visit, its EDSS, its metrics, the planted changes, the database, failures and re-runs")
    func demo() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        let data = root + "/data", output = root + "/out"
        try DemoTrial.generate(at: data, seed: 2026, participants: 5)
        let dataset = try Dataset.discover(data)
        var parameters = VisitParameters()
        parameters.files.dwiAtlases = [try PathPattern(data + "/atlas/atlas-demo_dseg.nii.gz")]
        parameters.files.funcAtlases = parameters.files.dwiAtlases
        parameters.functional.fdThreshold = 0.5
        let processor = try PipelineVisitProcessor(parameters: parameters)
        let first = try TrialRunner.runParticipants(dataset: dataset, output: output, processor: processor, jobs: 2, threads: 1)
        #expect(first.succeeded, "\(first.report)")
        #expect(first.processedCount == 40)  // 20 visits, each a DWI and a BOLD
        _ = try TrialRunner.runGroup(dataset: dataset, output: output)

        // Every visit, with its EDSS.
        let visits = try Self.rows(output + "/group/visits.tsv")
        #expect(visits.count == 20)
        #expect(visits.allSatisfy { $0["status"] == "ok" && Double($0["edss"] ?? "") != nil })
        // The protocol, from each visit's DWI sidecar: one shell at b=1000, fitted whole.
        #expect(visits.allSatisfy { $0["dwi_shells"] == "1000" }, "\(visits.map { $0["dwi_shells"] ?? "none" })")
        // The design's months, in chronological order; one parameter set per modality.
        #expect(visits.map { $0["visit_month"]! } == Array(repeating: ["0", "1", "3", "6"], count: 5).flatMap { $0 })
        #expect(visits.map { $0["session_order"]! } == Array(repeating: ["0", "1", "2", "3"], count: 5).flatMap { $0 })
        #expect(Set(visits.map { $0["dwi_parameters"]! }).count == 1 && Set(visits.map { $0["func_parameters"]! }).count == 1)
        #expect(visits[0]["dwi_parameters"] != visits[0]["func_parameters"])

        // Each region's FA and each connectivity summary for every visit.
        let metrics = try Self.rows(output + "/group/metrics_long.tsv")
        for visit in visits {
            let mine = metrics.filter { $0["participant_id"] == visit["participant_id"] && $0["session_id"] == visit["session_id"] }
            for region in ["L_CST", "R_CST", "CC_body", "L_SLF", "R_SLF", "whole_brain"] {
                #expect(mine.contains { $0["region"] == region && $0["metric"] == "fa_mean" && Double($0["value"]!) != nil })
            }
            for metric in ["conn_mean", "conn_within_mean", "conn_between_mean", "global_efficiency", "falff_mean", "fd_mean"] {
                #expect(mine.contains { $0["region"] == "whole_brain" && $0["metric"] == metric && Double($0["value"]!) != nil }, "\(metric)")
            }
        }

        // What the pipelines write splits into outcomes and QC numbers by one rule.
        let kinds = Dictionary(grouping: metrics) { $0["kind"]! }.mapValues { Set($0.map { $0["metric"]! }) }
        #expect(kinds["qc"] == ["n_voxels", "negative_eigenvalue_fraction", "tsnr_mean", "fd_mean", "volumes_censored",
                                "censored_fraction", "volumes_kept", "coverage"])
        #expect(kinds["outcome"].map { $0.isSuperset(of: ["fa_mean", "md_p95", "conn_within_mean", "global_efficiency", "alff", "falff", "strength"]) } == true)
        #expect(Set(kinds.keys) == ["qc", "outcome"])

        // Planted FA changes recovered: direction always, size within 2.5 percentage points of
        // the true regional change (FA noise at SNR 30 over a 32-voxel region is ~1%).
        let truth = try Self.rows(data + "/ground_truth/fa.tsv")
        func trueFA(_ p: String, _ s: String, _ r: String) -> Double {
            Double(truth.first { $0["participant_id"] == p && $0["session_id"] == s && $0["region"] == r }!["true_fa"]!)!
        }
        let changes = try Self.rows(output + "/group/change_from_baseline.tsv")
        for participant in ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"] {
            for region in ["L_CST", "CC_body"] {
                let row = changes.first { $0["participant_id"] == participant && $0["session_id"] == "ses-m06"
                    && $0["region"] == region && $0["metric"] == "fa_mean" }!
                let measured = Double(row["percent_change"]!)!
                let expected = 100 * (trueFA(participant, "ses-m06", region) / trueFA(participant, "ses-baseline", region) - 1)
                #expect(measured.sign == expected.sign, "\(participant) \(region): \(measured) vs \(expected)")
                #expect(abs(measured - expected) < 2.5, "\(participant) \(region): \(measured) vs \(expected)")
            }
        }
        // Within-DMN connectivity rises in responders and falls in decliners.
        for (participant, rising) in [("sub-01", true), ("sub-02", true), ("sub-05", false)] {
            let row = changes.first { $0["participant_id"] == participant && $0["session_id"] == "ses-m06"
                && $0["region"] == "network-DMN" && $0["metric"] == "conn_within_mean" }!
            #expect((Double(row["delta"]!)! > 0) == rising, "\(participant)")
        }

        // The database holds the same numbers.
        let database = try SQLiteDatabase(path: output + "/group/nimetrics.sqlite", readOnly: true)
        let count = try database.query("select count(*) from metrics")
        #expect(count.first?.first?.double == Double(metrics.count))
        let sample = metrics[metrics.count / 2]
        let stored = try database.query(
            "select value from metrics where participant_id = ? and session_id = ? and modality = ? and region = ? and metric = ?",
            ["participant_id", "session_id", "modality", "region", "metric"].map { .text(sample[$0]!) })
        #expect(stored.first?.first?.double == Double(sample["value"]!))

        // A second run does no work.
        let second = try TrialRunner.runParticipants(dataset: dataset, output: output, processor: processor, jobs: 2, threads: 1)
        #expect(second.processedCount == 0 && second.skippedCount == 40)

        // A corrupted visit fails with its reason; the others are untouched.
        let dwi = data + "/sub-03/ses-m01/dwi/sub-03_ses-m01_dwi.nii.gz"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dwi))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dwi))
        let third = try TrialRunner.runParticipants(dataset: try Dataset.discover(data), output: output, processor: processor, jobs: 2, threads: 1)
        #expect(!third.succeeded)
        #expect(third.failed.map(\.visit.filePrefix) == ["sub-03_ses-m01"])
        #expect(third.failed.first?.error?.contains("sub-03_ses-m01_dwi.nii.gz") == true)
        #expect(third.skippedCount == 39)  // the BOLD of the corrupted visit is untouched
    }
}
