import Foundation
@testable import Reports
import Testing

/// A group folder as the newer group stage writes it: a missing visit, `kind`,
/// `baseline_session_id`, `percent_change`, and the statistics tables.
func writeGroupTables() throws -> String {
    let output = NSTemporaryDirectory() + "nimetrics-trial-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: output + "/group", withIntermediateDirectories: true)
    func write(_ name: String, _ rows: [[String]]) throws {
        try (rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n")
            .write(toFile: output + "/group/" + name, atomically: true, encoding: .utf8)
    }
    try write("visits.tsv", [
        ["participant_id", "session_id", "session_order", "visit_month", "edss", "status", "error"],
        ["sub-01", "ses-a", "1", "0", "4", "ok", "n/a"], ["sub-01", "ses-b", "2", "6", "3.5", "ok", "n/a"],
        ["sub-02", "ses-a", "1", "0", "5", "ok", "n/a"], ["sub-02", "ses-b", "2", "6", "5.5", "missing", "n/a"],
    ])
    try write("metrics_long.tsv", [
        ["participant_id", "session_id", "modality", "region", "metric", "value", "run", "atlas", "kind"],
        ["sub-01", "ses-a", "dwi", "L_CST", "fa_mean", "0.5", "n/a", "n/a", "outcome"],
        ["sub-01", "ses-b", "dwi", "L_CST", "fa_mean", "0.525", "n/a", "n/a", "outcome"],
        ["sub-02", "ses-a", "dwi", "L_CST", "fa_mean", "0.48", "n/a", "n/a", "outcome"],
        ["sub-01", "ses-a", "func", "whole_brain", "fd_mean", "0.1", "n/a", "n/a", "qc"],
    ])
    try write("change_from_baseline.tsv", [
        ["participant_id", "session_id", "baseline_session_id", "modality", "region", "metric", "baseline_value", "value", "delta", "percent_change", "atlas"],
        ["sub-01", "ses-b", "ses-a", "dwi", "L_CST", "fa_mean", "0.5", "0.525", "0.025", "5", "n/a"],
    ])
    try write("stats.tsv", [
        ["modality", "atlas", "region", "metric", "session_id", "n", "mean_change", "ci_low", "ci_high", "p"],
        ["dwi", "n/a", "L_CST", "fa_mean", "ses-b", "1", "0.025", "0.01", "0.04", "0.5"],
    ])
    try write("trend.tsv", [
        ["modality", "atlas", "region", "metric", "n_participants", "n_visits", "slope", "se", "ci_low", "ci_high", "df", "p"],
        ["dwi", "n/a", "L_CST", "fa_mean", "2", "3", "0.004", "0.001", "0.002", "0.006", "1", "0.1"],
    ])
    return output
}

@Suite("Trial report")
struct TrialReportTests {
    @Test("Missing visits stand out; statistics tables give CIs and slopes; EDSS change against metric change")
    func newerTables() throws {
        let output = try writeGroupTables()
        let html = try TrialReport.render(output: output, metrics: ["fa_mean"], generator: "test")
        #expect(html.contains("<tr class=\"missing\"><td>sub-02</td><td>ses-b</td>"))
        let change = try #require(html.components(separatedBy: "<figure id=\"change-fa_mean\">").dropFirst().first)
        #expect(change.contains("slope 0.004 [0.002, 0.006]/month"))
        #expect(change.contains("data-series=\"mean change (stats.tsv)\" data-x=\"6\" data-y=\"0.025\""))
        let trajectory = try #require(html.components(separatedBy: "<figure id=\"trajectory-fa_mean\">").dropFirst().first)
        #expect(trajectory.contains("data-panel=\"L_CST\" data-series=\"sub-01\" data-x=\"6\" data-y=\"0.525\""))
        #expect(trajectory.contains("data-panel=\"EDSS\" data-series=\"sub-01\" data-x=\"6\" data-y=\"3.5\""))
        // EDSS change 3.5 - 4 = -0.5 against the delta 0.025.
        #expect(html.contains("data-series=\"sub-01 ses-b L_CST\" data-x=\"-0.5\" data-y=\"0.025\""))
    }

    @Test("Without statistics tables and with the older pct_change column the report still builds")
    func olderTables() throws {
        let output = try writeGroupTables()
        try FileManager.default.removeItem(atPath: output + "/group/stats.tsv")
        try FileManager.default.removeItem(atPath: output + "/group/trend.tsv")
        let path = output + "/group/change_from_baseline.tsv"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "percent_change", with: "pct_change")
            .replacingOccurrences(of: "baseline_session_id\t", with: "").replacingOccurrences(of: "ses-b\tses-a\t", with: "ses-b\t")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let html = try TrialReport.render(output: output, metrics: nil ?? TrialReport.defaultMetrics, generator: "test")
        #expect(html.contains("No group/stats.tsv"))
        #expect(html.contains("data-series=\"sub-01 ses-b L_CST\" data-x=\"-0.5\" data-y=\"0.025\""))
        #expect(html.contains("md_mean: not in metrics_long.tsv."))
    }
}
