import Foundation
import Phantoms
import Pipelines
import Tabular
import Testing
import Trial

/// The trend model on a demo trial where every participant carries the same planted change.
@Suite("Group statistics on a planted change, end to end", .serialized)
struct GroupStatisticsEndToEndTests {
    @Test("three responders: FA rises in L_CST and CC_body, significant there and nowhere else")
    func plantedTrend() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        let data = root + "/data", output = root + "/out"
        // Participants 0, 1, 2 are all responders: FA of the lesioned tracts × 1.00, 1.01,
        // 1.025, 1.05 at months 0, 1, 3, 6 (about +0.004 per month); other tracts unchanged.
        try DemoTrial.generate(at: data, seed: 2026, participants: 3)
        #expect((0..<3).allSatisfy { DemoTrial.trajectory(ofParticipant: $0) == .responder })
        var dataset = try Dataset.discover(data)
        // The trend of FA is the question: the DWI alone keeps the test short.
        dataset.visits = dataset.visits.map { visit in var v = visit; v.bold = nil; v.confounds = nil; v.boldSidecar = nil; return v }
        var parameters = VisitParameters()
        parameters.files.dwiAtlases = [try PathPattern(data + "/atlas/atlas-demo_dseg.nii.gz")]
        parameters.files.funcAtlases = parameters.files.dwiAtlases
        let processor = try PipelineVisitProcessor(parameters: parameters)
        let run = try TrialRunner.runParticipants(dataset: dataset, output: output, processor: processor, jobs: 2, threads: 1)
        #expect(run.succeeded, "\(run.report)")
        let summary = try TrialRunner.runGroup(dataset: dataset, output: output)
        #expect(summary.files.contains(output + "/group/stats.tsv") && summary.files.contains(output + "/group/trend.tsv"))

        let trend = try TSVTable.read(output + "/group/trend.tsv")
        let rows = trend.rows.map { Dictionary(uniqueKeysWithValues: zip(trend.columns, $0)) }
        let fa = rows.filter { $0["metric"] == "fa_mean" && $0["modality"] == "dwi" }
        let tracts = ["L_CST", "R_CST", "CC_body", "L_SLF", "R_SLF"]
        for tract in tracts {
            let row = try #require(fa.first { $0["region"] == tract }, "no trend row for \(tract)")
            let slope = try #require(Double(row["slope"]!)), p = try #require(Double(row["p"]!))
            #expect(row["n_participants"] == "3" && row["n_visits"] == "12")
            if DemoTrial.lesionedTracts.contains(tract) {
                #expect(slope > 0.002 && p < 0.001, "\(tract): slope \(slope), p \(p)")
            } else {
                #expect(p > 0.01, "\(tract): slope \(slope), p \(p)")
            }
        }
        // stats.tsv: with three participants the smallest sign-flip p is 2/8, so no change is
        // significant per session, but the planted ones all go up at m06.
        let stats = try TSVTable.read(output + "/group/stats.tsv")
        let statRows = stats.rows.map { Dictionary(uniqueKeysWithValues: zip(stats.columns, $0)) }
        for tract in DemoTrial.lesionedTracts {
            let row = try #require(statRows.first { $0["region"] == tract && $0["metric"] == "fa_mean" && $0["session_id"] == "ses-m06" })
            #expect(Double(row["mean_change"]!)! > 0 && row["p_sign_flip"] == "0.25" && row["n"] == "3")
        }
        #expect(!statRows.contains { $0["metric"] == "n_voxels" || $0["metric"] == "negative_eigenvalue_fraction" })
    }
}
