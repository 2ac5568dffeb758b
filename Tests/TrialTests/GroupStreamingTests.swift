import Foundation
import Pipelines
import Tabular
import Testing
@testable import Trial

/// The group tables are written row by row from compact rows (ids into a catalogue of keys);
/// these tests pin them to the tables built whole from the visits' metric rows, as the group
/// stage built them before, byte for byte.
@Suite("Group level: streamed tables")
struct GroupStreamingTests {
    /// The default metrics plus per-run values and the values of two atlases, so every key
    /// field varies, and a baseline of 0.
    @Sendable static func metrics(_ visit: VisitInput) -> [MetricRow] {
        let s = Double(["m00": 0, "m01": 1, "m03": 3][visit.session ?? "m00"] ?? 5)
        let p = Double(Int(visit.participant) ?? 0)
        return defaultMetrics(visit) + [
            MetricRow(modality: "func", region: "DMN", metric: "conn_within_mean", value: 0.3 + 0.01 * s + p, run: "2", atlas: "b"),
            MetricRow(modality: "func", region: "DMN", metric: "conn_within_mean", value: 0.2 + 0.01 * s, run: "1", atlas: "b"),
            MetricRow(modality: "func", region: "DMN", metric: "conn_within_mean", value: 0.25 + 0.02 * s * p, atlas: "b"),
            MetricRow(modality: "func", region: "DMN", metric: "conn_within_mean", value: 0.1 * s, atlas: "a10"),
            MetricRow(modality: "func", region: "DMN", metric: "conn_within_mean", value: 0.5 - 0.1 * s, atlas: "a2"),
            MetricRow(modality: "func", region: "whole_brain", metric: "fd_mean", value: 0.1 + 0.01 * p),
        ]
    }

    /// metrics_long.tsv as the group stage built it whole.
    static func wholeMetricsLong(_ data: GroupData) -> TSVTable {
        var table = TSVTable(columns: TrialRunner.metricsLongColumns + (data.mixedParameters ? ["parameters_id"] : []))
        for visit in data.visits {
            for m in visit.metrics {
                table.append([visit.visit.participantID, visit.visit.sessionID ?? "n/a", m.modality, m.region, m.metric,
                              tsvCell(m.value), m.run ?? "n/a", m.atlas ?? "n/a", MetricKind.of(metric: m.metric).rawValue]
                             + (data.mixedParameters ? [visit.parametersID(of: m.modality) ?? "n/a"] : []))
            }
        }
        return table
    }

    /// change_from_baseline.tsv as the group stage built it whole (a search for each baseline).
    static func wholeChangeTable(_ data: GroupData) -> TSVTable {
        var table = TSVTable(columns: TrialRunner.changeColumns(mixedParameters: data.mixedParameters))
        for visit in data.visits where !visit.metrics.isEmpty {
            guard let session = visit.visit.session, let baseline = data.baselines[visit.visit.participant],
                  baseline.session != session else { continue }
            let baselineVisit = data.visits.first { $0.visit.participant == visit.visit.participant && $0.visit.session == baseline.session }
            func key(_ row: MetricRow) -> String { "\(row.modality)\t\(row.region)\t\(row.metric)\t\(row.atlas ?? "")" }
            var byKey: [String: Double] = [:]
            for row in baselineVisit?.metrics ?? [] where row.run == nil { byKey[key(row)] = row.value }
            for m in visit.metrics where m.run == nil {
                let value = byKey[key(m)]
                let row = ChangeRow(participantID: visit.visit.participantID, sessionID: "ses-" + session,
                                    baselineSessionID: baseline.sessionID, metric: m, baseline: value ?? .nan,
                                    parametersID: visit.parametersID(of: m.modality),
                                    baselineParametersID: value == nil ? nil : baselineVisit?.parametersID(of: m.modality))
                table.append([row.participantID, row.sessionID, row.baselineSessionID ?? "n/a", m.modality, m.region, m.metric,
                              tsvCell(row.baseline), tsvCell(m.value), tsvCell(row.delta), tsvCell(row.percentChange),
                              m.atlas ?? "n/a", MetricKind.of(metric: m.metric).rawValue]
                             + (data.mixedParameters ? [row.parametersID ?? "n/a", row.baselineParametersID ?? "n/a"] : []))
            }
        }
        return table
    }

    @Test("metrics_long and change_from_baseline streamed equal the tables built whole; the statistics equal at 1 and 4 threads",
          arguments: [false, true])
    func streamedEqualsWhole(mixed: Bool) throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (dataset, group) = try GroupTests.run(top: top, failing: ["sub-01_ses-m01", "sub-02_ses-m00"], metrics: Self.metrics)
        let options = GroupOptions(allowMixedParameters: mixed)
        try TrialRunner.runGroup(dataset: dataset, output: top + "/out", options: options)
        let data = try TrialRunner.groupData(dataset: dataset, output: top + "/out", options: options)
        func text(_ name: String) -> String? {
            FileManager.default.contents(atPath: group + "/" + name).map { String(decoding: $0, as: UTF8.self) }
        }
        let long = Self.wholeMetricsLong(data), change = Self.wholeChangeTable(data)
        #expect(long.rows.count > 30 && change.rows.count > 10, "\(long.rows.count) and \(change.rows.count) rows")
        #expect(change.rows.contains { $0[6] == "n/a" }, "a follow-up without its baseline's values")
        #expect(text("metrics_long.tsv") == long.text)
        #expect(text("change_from_baseline.tsv") == change.text)

        // The statistics from the compact rows equal those from the row lists, whatever the threads.
        var warnings: [String] = []
        let compact = GroupStatistics.input(data, changes: TrialRunner.changeRows(data), clinicalOutcome: nil, warnings: &warnings)
        let changes = change.rows.map { row in
            (GroupStatistics.VisitKey(participant: row[0], session: row[1]),
             GroupStatistics.Key(modality: row[3], atlas: row[10] == "n/a" ? nil : row[10], region: row[4], metric: row[5]),
             (Double(row[7]) ?? .nan) - (Double(row[6]) ?? .nan))
        }
        let lists = GroupStatistics.input(visits: data.visits, changeTuples: changes, baselines: data.baselines.mapValues { $0.session },
                                          visitMonths: nil, clinicalOutcome: nil, fillValues: true, warnings: &warnings)
        #expect(compact.valuesByKey != nil && lists.valuesByKey == nil)
        let stats = GroupStatistics.statsTable(compact, threads: 1).text
        #expect(stats == GroupStatistics.statsTable(compact, threads: 4).text)
        #expect(stats == GroupStatistics.statsTable(lists, threads: 3).text)
        #expect(text("stats.tsv") == stats)
        let trend = GroupStatistics.trendTable(compact, threads: 1).text
        #expect(trend == GroupStatistics.trendTable(compact, threads: 4).text)
        #expect(trend == GroupStatistics.trendTable(lists, threads: 2).text)
        #expect(text("trend.tsv") == trend)
    }
}
