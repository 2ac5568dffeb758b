import Foundation
import Pipelines
import Tabular
import Testing
@testable import Trial

/// stats.tsv and trend.tsv from small hand-made group rows, every number counted by hand.
@Suite("Group statistics tables")
struct GroupStatisticsTests {
    typealias Key = GroupStatistics.Key
    typealias VisitKey = GroupStatistics.VisitKey

    static func rows(_ table: TSVTable) -> [[String: String]] {
        table.rows.map { Dictionary(uniqueKeysWithValues: zip(table.columns, $0)) }
    }

    static let participants = ["sub-01", "sub-02", "sub-03"]

    /// Region A rises in everyone, region B does not; n_voxels is quality control.
    static func input() -> GroupStatistics.Input {
        var input = GroupStatistics.Input()
        let a = Key(modality: "dwi", atlas: nil, region: "A", metric: "fa_mean")
        let b = Key(modality: "dwi", atlas: nil, region: "B", metric: "fa_mean")
        let qc = Key(modality: "dwi", atlas: nil, region: "A", metric: "n_voxels")
        let deltas: [(Key, [Double])] = [(b, [-0.1, 0.2, 0.05]), (a, [0.1, 0.2, 0.3]), (qc, [1, 2, 3])]
        for (key, values) in deltas {
            for (p, delta) in zip(participants, values) {
                input.changes.append((VisitKey(participant: p, session: "ses-m06"), key, delta))
            }
        }
        for (k, p) in participants.enumerated() {
            input.outcomeChanges[VisitKey(participant: p, session: "ses-m06")] = Double(k + 1)
        }
        input.clinicalOutcome = "edss"
        input.sessionOrder = ["ses-baseline", "ses-m06"]
        return input
    }

    @Test("stats.tsv: n, mean, sign-flip and Spearman p, BH q per metric and session; QC left out")
    func statsTable() throws {
        let table = GroupStatistics.statsTable(Self.input())
        #expect(table.columns == GroupStatistics.statsColumns)
        let rows = Self.rows(table)
        #expect(rows.map { $0["region"]! } == ["A", "B"])  // key order; n_voxels is QC
        let a = rows[0], b = rows[1]
        #expect(a["n"] == "3" && Double(a["mean_change"]!)! == (0.1 + 0.2 + 0.3) / 3)
        // A: all three positive, the largest of 8 sign patterns: p = 2/8.
        #expect(a["p_sign_flip"] == "0.25")
        // B: ±0.1 ±0.2 ±0.05 are eight distinct sums; the observed 0.15 is third from the top: p = 2 · 3/8.
        #expect(b["p_sign_flip"] == "0.75")
        // BH over {0.25, 0.75}: 0.25 · 2/1 = 0.5, 0.75 · 2/2 = 0.75.
        #expect(a["q_sign_flip"] == "0.5" && b["q_sign_flip"] == "0.75")
        // Spearman with EDSS change 1, 2, 3: A is monotone (rho 1, p = 2/3!); B ranks 1 3 2
        // give rho 0.5, reached by 3 of 6 orderings (p = 1); q: 1/3 · 2 and 1.
        #expect(abs(Double(a["spearman_rho"]!)! - 1) < 1e-15 && Double(a["p_spearman"]!)! == 2.0 / 6)
        #expect(abs(Double(b["spearman_rho"]!)! - 0.5) < 1e-15 && b["p_spearman"] == "1")
        #expect(Double(a["q_spearman"]!)! == 2.0 / 6 * 2 && b["q_spearman"] == "1")
        #expect(a["clinical_outcome"] == "edss" && a["n_outcome"] == "3")
        let interval = (Double(a["ci_low"]!)!, Double(a["ci_high"]!)!)
        // t_{0.975, 2} · s/√3 with s = 0.1.
        let half = 4.302652729749462 * 0.1 / 3.0.squareRoot()
        #expect(abs(interval.0 - (0.2 - half)) < 1e-12 && abs(interval.1 - (0.2 + half)) < 1e-12)
    }

    @Test("stats.tsv: a missing outcome or a single participant gives n/a, never NaN")
    func statsDegenerate() {
        var input = Self.input()
        input.outcomeChanges = [:]
        input.clinicalOutcome = nil
        input.changes = input.changes.filter { $0.visit.participant == "sub-01" }
        let rows = Self.rows(GroupStatistics.statsTable(input))
        for row in rows {
            #expect(row["n"] == "1" && row["ci_low"] == "n/a" && row["p_sign_flip"] == "n/a" && row["q_sign_flip"] == "n/a")
            #expect(row["clinical_outcome"] == "n/a" && row["spearman_rho"] == "n/a" && row["n_outcome"] == "0")
            #expect(!row.values.contains { $0.lowercased().contains("nan") })
        }
    }

    @Test("trend.tsv: one row per outcome key, the within-participant slope, n/a when not estimable")
    func trendTable() throws {
        var input = GroupStatistics.Input()
        let rising = Key(modality: "func", atlas: "demo", region: "network-DMN", metric: "conn_within_mean")
        let lonely = Key(modality: "func", atlas: "demo", region: "network-VIS", metric: "conn_within_mean")
        let months: [Double] = [0, 1, 3, 6]
        let offsets: [Double] = [0.1, -0.05, 0.2]
        let noise: [[Double]] = [[0.01, -0.02, 0.01, 0], [-0.01, 0.01, 0.02, -0.02], [0, 0.02, -0.01, -0.01]]
        for (p, participant) in Self.participants.enumerated() {
            for (k, month) in months.enumerated() {
                let visit = VisitKey(participant: participant, session: "ses-\(k)")
                input.visitMonths[visit] = month
                input.values.append((visit, rising, 0.3 + offsets[p] + 0.02 * month + noise[p][k]))
                if p == 0 { input.values.append((visit, lonely, 0.5 + noise[p][k])) }
            }
        }
        let rows = Self.rows(GroupStatistics.trendTable(input))
        #expect(rows.map { $0["region"]! } == ["network-DMN", "network-VIS"])
        let dmn = rows[0]
        #expect(dmn["n_participants"] == "3" && dmn["n_visits"] == "12" && dmn["atlas"] == "demo")
        // Same months for everyone: the slope is the pooled within-participant slope.
        let mean = months.reduce(0, +) / 4
        var sxy = 0.0, sxx = 0.0
        for p in 0..<3 {
            let ys = months.indices.map { 0.3 + offsets[p] + 0.02 * months[$0] + noise[p][$0] }
            let my = ys.reduce(0, +) / 4
            for k in 0..<4 { sxy += (months[k] - mean) * (ys[k] - my); sxx += (months[k] - mean) * (months[k] - mean) }
        }
        #expect(abs(Double(dmn["slope"]!)! - sxy / sxx) < 1e-12)
        #expect(Double(dmn["p"]!)! < 0.001)
        let vis = rows[1]
        #expect(vis["n_participants"] == "1" && vis["slope"] == "n/a" && vis["p"] == "n/a" && vis["df"] == "n/a")
    }

    @Test("quality-control metrics are told apart from outcomes")
    func qualityControl() {
        for name in ["n_voxels", "fd_mean", "censored_fraction", "tsnr_mean", "volumes_kept", "volumes_censored", "coverage",
                     "negative_eigenvalue_fraction"] {
            #expect(GroupStatistics.isQualityControl(metric: name), "\(name)")
        }
        for name in ["fa_mean", "md_p95", "conn_within_mean", "alff", "falff_mean", "strength", "global_efficiency"] {
            #expect(!GroupStatistics.isQualityControl(metric: name), "\(name)")
        }
    }

    @Test("visit months from each visit's month when every visit has one, else the session order with a warning")
    func visitMonths() {
        func visit(_ p: String, _ s: String, order: Int, month: Double?) -> GroupVisit {
            var visit = GroupVisit(visit: VisitInput(participant: p, session: s), sessionOrder: order, status: .ok, error: nil, scans: [],
                                   metrics: [MetricRow(modality: "dwi", region: "A", metric: "fa_mean", value: 0.5)])
            visit.visitMonth = month
            return visit
        }
        var warnings: [String] = []
        let complete = GroupStatistics.defaultVisitMonths([visit("01", "a", order: 0, month: 0), visit("01", "b", order: 1, month: 3)],
                                                          warnings: &warnings)
        #expect(complete[VisitKey(participant: "sub-01", session: "ses-b")] == 3 && warnings.isEmpty)
        let partial = GroupStatistics.defaultVisitMonths([visit("01", "a", order: 0, month: 0), visit("01", "b", order: 1, month: nil)],
                                                         warnings: &warnings)
        #expect(partial[VisitKey(participant: "sub-01", session: "ses-b")] == 1 && warnings.count == 1)
    }

    @Test("the same tables, byte for byte, with 1 and 4 threads; Monte Carlo rows included")
    func threadIndependence() {
        var input = GroupStatistics.Input()
        var state: UInt64 = 12345
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        let participants = (1...18).map { String(format: "sub-%02d", $0) }
        for region in ["A", "B", "C", "D"] {
            let key = Key(modality: "dwi", atlas: nil, region: region, metric: "fa_mean")
            for (k, session) in ["ses-0", "ses-1", "ses-2"].enumerated() {
                for (p, participant) in participants.enumerated() where region != "D" || p < 9 {
                    let visit = VisitKey(participant: participant, session: session)
                    input.visitMonths[visit] = Double(3 * k)
                    input.values.append((visit, key, 0.4 + 0.01 * Double(k) + 0.02 * uniform()))
                    if k > 0 {
                        input.changes.append((visit, key, 0.01 * Double(k) + 0.02 * (uniform() - 0.5)))
                        input.outcomeChanges[visit] = Double(Int(uniform() * 4)) * 0.5
                    }
                }
            }
        }
        input.clinicalOutcome = "edss"
        input.sessionOrder = ["ses-0", "ses-1", "ses-2"]
        input.draws = 3000
        let one = GroupStatistics.statsTable(input, threads: 1), four = GroupStatistics.statsTable(input, threads: 4)
        #expect(one.text == four.text)
        #expect(GroupStatistics.trendTable(input, threads: 1).text == GroupStatistics.trendTable(input, threads: 4).text)
        // 18 participants: sign flips drawn (n > 16); region D has 9: Spearman drawn (n > 8).
        #expect(one.rows.count == 8 && !one.text.contains("nan"))
    }

    @Test("the outcome's change from each participant's baseline; edss by default, another column when named")
    func outcomeChanges() throws {
        func visit(_ p: String, _ s: String, order: Int, edss: String, sdmt: String) -> GroupVisit {
            let input = VisitInput(participant: p, session: s, clinical: [("edss", edss), ("sdmt", sdmt)])
            var visit = GroupVisit(visit: input, sessionOrder: order, status: .ok, error: nil, scans: [],
                                   metrics: [MetricRow(modality: "dwi", region: "A", metric: "fa_mean", value: 0.5 + 0.01 * Double(order))])
            visit.visitMonth = Double(3 * order)
            return visit
        }
        let visits = [visit("01", "bl", order: 0, edss: "3", sdmt: "40"), visit("01", "m03", order: 1, edss: "3.5", sdmt: "n/a"),
                      visit("02", "bl", order: 0, edss: "n/a", sdmt: "50"), visit("02", "m03", order: 1, edss: "2", sdmt: "55")]
        let baselines: [String: String?] = ["01": "bl", "02": "bl"]
        var warnings: [String] = []
        let byDefault = GroupStatistics.input(visits: visits, changes: [], baselines: baselines, warnings: &warnings)
        #expect(byDefault.clinicalOutcome == "edss")
        #expect(byDefault.outcomeChanges == [VisitKey(participant: "sub-01", session: "ses-bl"): 0,
                                             VisitKey(participant: "sub-01", session: "ses-m03"): 0.5])
        let named = GroupStatistics.input(visits: visits, changes: [], baselines: baselines, clinicalOutcome: "sdmt", warnings: &warnings)
        #expect(named.outcomeChanges == [VisitKey(participant: "sub-01", session: "ses-bl"): 0,
                                         VisitKey(participant: "sub-02", session: "ses-bl"): 0,
                                         VisitKey(participant: "sub-02", session: "ses-m03"): 5])
        #expect(named.sessionOrder == ["ses-bl", "ses-m03"] && warnings.isEmpty)
        #expect(named.visitMonths[VisitKey(participant: "sub-02", session: "ses-m03")] == 3)
        #expect(named.values.count == 4)
    }
}
