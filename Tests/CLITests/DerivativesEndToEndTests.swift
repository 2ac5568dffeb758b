import Foundation
import Tabular
import TestSupport
import Testing

/// `nimetrics run` on a raw dataset with fMRIPrep- and QSIPrep-style derivatives
/// (`nimetrics demo --layout derivatives`): second runs, flagged non-steady-state volumes,
/// a multi-shell visit and a missed one.
@Suite("run on fMRIPrep and QSIPrep derivatives")
struct DerivativesEndToEndTests {
    static func table(_ path: String) throws -> [[String: String]] {
        let table = try TSVTable.read(path)
        return table.rows.map { Dictionary(uniqueKeysWithValues: zip(table.columns, $0)) }
    }

    /// DMN within-network connectivity of every visit (session values) against the planted
    /// population correlation.
    static func deviations(_ output: String, truth: String) throws -> [Double] {
        let planted = try table(truth).filter { $0["network"] == "DMN" }
        let measured = try table(output + "/group/metrics_long.tsv").filter {
            $0["region"] == "network-DMN" && $0["metric"] == "conn_within_mean" && $0["run"] == "n/a"
        }
        return measured.compactMap { row in
            guard let value = Double(row["value"]!),
                  let expected = planted.first(where: { $0["participant_id"] == row["participant_id"] && $0["session_id"] == row["session_id"] })
                    .flatMap({ Double($0["value"]!) }) else { return nil }
            return abs(value - expected)
        }
    }

    @Test("both modalities of every visit, every run, the flagged volumes dropped by default, the input untouched")
    func derivativesTrial() throws {
        let (top, data) = try makeDerivativesDemo(participants: 3)
        defer { try? FileManager.default.removeItem(atPath: top) }
        let before = TreeSnapshot(data)
        let output = data + "/derivatives/nimetrics"
        let common = ["--atlas", data + "/atlas/atlas-demo_dseg.nii.gz", "--fd-threshold", "0.5", "--threads", "1"]
        let run = try runTool(["run", data, output, "participant", "--group"] + common)
        #expect(run.status == 0, "\(run.stderr)")

        // Every imaged visit has its DWI and its BOLD in the group tables.
        let long = try Self.table(output + "/group/metrics_long.tsv")
        let visits = try Self.table(output + "/group/visits.tsv")
        let imaged = visits.filter { $0["status"] == "ok" }
        #expect(imaged.count == 11, "3 participants x 4 sessions, one missed")
        // The missed visit is listed, in its place, with its clinical data.
        #expect(visits.count == 12)
        let missed = try #require(visits.first { $0["participant_id"] == "sub-03" && $0["session_id"] == "ses-m03" })
        #expect(missed["status"] == "missing" && missed["dwi_status"] == "n/a" && missed["func_status"] == "n/a")
        #expect(missed["visit_month"] == "3" && missed["session_order"] == "2" && Double(missed["edss"] ?? "") != nil)
        #expect(!long.contains { $0["participant_id"] == "sub-03" && $0["session_id"] == "ses-m03" })
        for visit in imaged {
            let rows = long.filter { $0["participant_id"] == visit["participant_id"] && $0["session_id"] == visit["session_id"] }
            #expect(rows.contains { $0["modality"] == "dwi" } && rows.contains { $0["modality"] == "func" },
                    "\(visit["participant_id"]!) \(visit["session_id"]!)")
        }
        // The second runs are processed, and the session's value is combined from them.
        let secondRuns = long.filter { $0["run"] == "2" }
        #expect(Set(secondRuns.map { $0["participant_id"]! + " " + $0["session_id"]! }) == ["sub-02 ses-baseline", "sub-02 ses-m03"])
        // The multi-shell visit's protocol is visible.
        #expect(visits.first { $0["participant_id"] == "sub-01" && $0["session_id"] == "ses-m06" }?["dwi_shells"] == "1000")
        let dwiSidecar = try String(contentsOfFile: output + "/sub-01/ses-m06/dwi/sub-01_ses-m06_space-T1w_model-tensor_dwimap.json",
                                    encoding: .utf8)
        #expect(dwiSidecar.contains("2000"), "the b=2000 shell is listed as left out")

        // Connectivity matches the planted correlations only because the flagged volumes
        // are dropped by default.
        let truth = data + "/ground_truth/connectivity.tsv"
        let dropped = try Self.deviations(output, truth: truth)
        #expect(dropped.count == 11)
        #expect(dropped.reduce(0, +) / Double(dropped.count) < 0.12, "mean |r - truth| = \(dropped)")
        let kept = top + "/kept"
        let keptRun = try runTool(["run", data, kept, "participant", "--group", "--dummy-scans", "0"] + common)
        #expect(keptRun.status == 0, "\(keptRun.stderr)")
        let inflated = try Self.deviations(kept, truth: truth)
        #expect(inflated.reduce(0, +) / Double(inflated.count) > 0.3, "mean |r - truth| with the transient kept = \(inflated)")

        // Nothing of the input changed (the output is under its derivatives/).
        #expect(TreeSnapshot(data).changes(since: before).allSatisfy { $0.contains("derivatives/nimetrics") })
    }
}
