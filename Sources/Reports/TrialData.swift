import Foundation
import Tabular

/// A region of a metric in the group tables: its name and atlas (`n/a` when one atlas).
struct RegionKey: Hashable, Sendable {
    var region: String
    var atlas: String
    var title: String { atlas == "n/a" || atlas.isEmpty ? region : "\(region) (\(atlas))" }
}

/// The group tables, indexed for the trial report. Only looks values up; the one
/// arithmetic it does is on clinical scores (EDSS change between two visits).
struct TrialData {
    var visits: TSVTable
    var participants: [String]
    /// Distinct visit months, ascending.
    var months: [Double]
    /// "participant session" -> visit month.
    var monthOf: [String: Double]
    /// metric -> region -> "participant session" -> value (the session's value: run n/a).
    var values: [String: [RegionKey: [String: Double]]] = [:]
    var regionOrder: [String: [RegionKey]] = [:]
    var change: [String: [RegionKey: [String: Double]]]?
    var baselineOf: [String: String] = [:]
    var stats: TSVTable?
    var trend: TSVTable?
    /// The folder the group tables were read from.
    var tablesFolder: String

    /// - Parameters:
    ///   - output: the output folder (visit folders, for links and QC).
    ///   - tables: the folder holding the group tables; nil for `OUTPUT/group`.
    init(output: String, tables: String? = nil) throws {
        let group = tables ?? output + "/group"
        tablesFolder = group
        let visitsPath = group + "/visits.tsv", longPath = group + "/metrics_long.tsv"
        do { visits = try TSVTable.read(visitsPath) } catch { throw ReportError(visitsPath, "cannot read the visit table: \(error)") }
        let participantColumn = try Self.column(visits, "participant_id", visitsPath)
        let sessionColumn = try Self.column(visits, "session_id", visitsPath)
        var seen = Set<String>()
        participants = visits.rows.map { $0[participantColumn] }.filter { seen.insert($0).inserted }.sorted()
        monthOf = [:]
        let monthColumn = visits.index(of: "visit_month"), orderColumn = visits.index(of: "session_order")
        var sessionsOfParticipant: [String: Int] = [:]
        for row in visits.rows {
            let position = sessionsOfParticipant[row[participantColumn], default: 0]
            sessionsOfParticipant[row[participantColumn]] = position + 1
            let month = monthColumn.flatMap { ReportInputs.number(row[$0]) } ?? orderColumn.flatMap { ReportInputs.number(row[$0]) } ?? Double(position)
            monthOf[row[participantColumn] + " " + row[sessionColumn]] = month
        }
        months = Array(Set(monthOf.values)).sorted()
        let long: TSVTable
        do { long = try TSVTable.read(longPath) } catch { throw ReportError(longPath, "cannot read the metrics table: \(error)") }
        (values, regionOrder) = try Self.index(long, path: longPath, valueColumn: "value")
        if let table = ReportInputs.table(group + "/change_from_baseline.tsv") {
            let deltaName = table.index(of: "delta") != nil ? "delta" : "percent_change"
            change = try Self.index(table, path: group + "/change_from_baseline.tsv", valueColumn: deltaName).0
            if let baseline = table.index(of: "baseline_session_id"), let p = table.index(of: "participant_id") {
                for row in table.rows where row[baseline] != "n/a" { baselineOf[row[p]] = row[baseline] }
            }
        }
        stats = ReportInputs.table(group + "/stats.tsv")
        trend = ReportInputs.table(group + "/trend.tsv")
        inferBaselines()
    }

    static func column(_ table: TSVTable, _ name: String, _ path: String) throws -> Int {
        guard let index = table.index(of: name) else { throw ReportError(path, "no \(name) column") }
        return index
    }

    /// metric -> region -> "participant session" -> value, session values only (run n/a).
    static func index(_ table: TSVTable, path: String, valueColumn: String) throws
        -> ([String: [RegionKey: [String: Double]]], [String: [RegionKey]]) {
        let p = try column(table, "participant_id", path), s = try column(table, "session_id", path)
        let r = try column(table, "region", path), m = try column(table, "metric", path), v = try column(table, valueColumn, path)
        let run = table.index(of: "run"), atlas = table.index(of: "atlas")
        var out: [String: [RegionKey: [String: Double]]] = [:], order: [String: [RegionKey]] = [:]
        for row in table.rows {
            if let run, row[run] != "n/a" { continue }
            let key = RegionKey(region: row[r], atlas: atlas.map { row[$0] } ?? "n/a")
            if out[row[m]]?[key] == nil { order[row[m], default: []].append(key) }
            out[row[m], default: [:]][key, default: [:]][row[p] + " " + row[s]] = ReportInputs.number(row[v]) ?? .nan
        }
        return (out, order)
    }

    /// Without a `baseline_session_id` column: the participant's session that has values
    /// but no change row (the change table lists follow-ups only).
    mutating func inferBaselines() {
        guard let change, let metric = change.keys.sorted().first, let key = regionOrder[metric]?.first,
              let all = values[metric]?[key], let followUps = change[metric]?[key] else { return }
        for visit in all.keys where followUps[visit] == nil {
            let parts = visit.split(separator: " ").map(String.init)
            if baselineOf[parts[0]] == nil { baselineOf[parts[0]] = parts[1] }
        }
    }

    func regions(of metric: String) -> [RegionKey] { regionOrder[metric] ?? [] }

    /// The participant's visits with a month, in month order.
    func visitMonths(participant: String) -> [(session: String, month: Double)] {
        let session = visits.index(of: "session_id")!, p = visits.index(of: "participant_id")!
        return visits.rows.filter { $0[p] == participant }.compactMap { row in
            monthOf[participant + " " + row[session]].map { (row[session], $0) }
        }.sorted { $0.month < $1.month }
    }

    func values(metric: String, key: RegionKey, participant: String) -> [(x: Double, y: Double?)] {
        let table = values[metric]?[key] ?? [:]
        return visitMonths(participant: participant).map { ($0.month, table[participant + " " + $0.session].flatMap { $0.isFinite ? $0 : nil }) }
    }

    func changeBySession(metric: String, key: RegionKey, participant: String) -> [(String, Double)] {
        let table = change?[metric]?[key] ?? [:]
        return visitMonths(participant: participant).compactMap { visit in
            table[participant + " " + visit.session].flatMap { $0.isFinite ? (visit.session, $0) : nil }
        }
    }

    func changes(metric: String, key: RegionKey, participant: String) -> [(x: Double, y: Double?)] {
        let table = change?[metric]?[key] ?? [:]
        return visitMonths(participant: participant).compactMap { visit in
            if baselineOf[participant] == visit.session { return (visit.month, 0) }
            return table[participant + " " + visit.session].map { (visit.month, $0.isFinite ? $0 : nil) }
        }
    }

    /// A clinical column of visits.tsv as a panel, one line per participant.
    func clinicalPanel(_ name: String) -> Panel? {
        guard let column = visits.index(of: name), let p = visits.index(of: "participant_id"), let s = visits.index(of: "session_id") else { return nil }
        var byVisit: [String: Double] = [:]
        for row in visits.rows { byVisit[row[p] + " " + row[s]] = ReportInputs.number(row[column]) }
        let series = participants.enumerated().map { k, participant in
            PlotSeries(name: participant, colour: categoricalColours[k % categoricalColours.count],
                       points: visitMonths(participant: participant).map { ($0.month, byVisit[participant + " " + $0.session]) })
        }
        return Panel(title: name.uppercased(), series: series, yLabel: name.uppercased() + " (score)")
    }

    func clinical(_ name: String, participant: String, session: String) -> Double? {
        guard let column = visits.index(of: name), let p = visits.index(of: "participant_id"), let s = visits.index(of: "session_id") else { return nil }
        return visits.rows.first { $0[p] == participant && $0[s] == session }.flatMap { ReportInputs.number($0[column]) }
    }

    func edssChange(participant: String, session: String) -> Double? {
        guard let baseline = baselineOf[participant], let now = clinical("edss", participant: participant, session: session),
              let then = clinical("edss", participant: participant, session: baseline) else { return nil }
        return now - then
    }

    /// Mean change and 95% CI per follow-up month from stats.tsv (column names of either
    /// spelling), for one metric and region.
    func intervals(metric: String, key: RegionKey) -> [(x: Double, mean: Double?, low: Double, high: Double)] {
        guard let stats, let m = stats.index(of: "metric"), let r = stats.index(of: "region"), let s = stats.index(of: "session_id"),
              let mean = Self.firstColumn(stats, ["mean_change", "mean_delta", "mean"]),
              let low = Self.firstColumn(stats, ["ci_low", "ci_lower", "ci95_low", "ci_95_low", "mean_change_ci_low"]),
              let high = Self.firstColumn(stats, ["ci_high", "ci_upper", "ci95_high", "ci_95_high", "mean_change_ci_high"]) else { return [] }
        let atlas = stats.index(of: "atlas")
        // A session's month on the x axis: the median of its visits' months (lower median),
        // so the figure does not depend on the order a dictionary is walked in.
        var monthsOfSession: [String: [Double]] = [:]
        for (visit, month) in monthOf { monthsOfSession[visit.split(separator: " ").last.map(String.init) ?? "", default: []].append(month) }
        let sessionMonths = monthsOfSession.mapValues { months in months.sorted()[(months.count - 1) / 2] }
        return stats.rows.compactMap { row in
            guard row[m] == metric, row[r] == key.region, atlas.map({ row[$0] == key.atlas }) ?? true,
                  let month = sessionMonths[row[s]], let lo = ReportInputs.number(row[low]), let hi = ReportInputs.number(row[high]) else { return nil }
            return (month, ReportInputs.number(row[mean]), lo, hi)
        }.sorted { $0.x < $1.x }
    }

    /// "slope s [lo, hi]/month" from trend.tsv.
    func slope(metric: String, key: RegionKey) -> String? {
        guard let trend, let m = trend.index(of: "metric"), let r = trend.index(of: "region"), let slope = trend.index(of: "slope") else { return nil }
        let atlas = trend.index(of: "atlas")
        guard let row = trend.rows.first(where: { row in row[m] == metric && row[r] == key.region && (atlas.map { row[$0] == key.atlas } ?? true) }),
              let value = ReportInputs.number(row[slope]) else { return nil }
        var text = "slope \(tickLabel(value))"
        if let low = Self.firstColumn(trend, ["ci_low", "ci_lower", "slope_ci_low"]), let high = Self.firstColumn(trend, ["ci_high", "ci_upper", "slope_ci_high"]),
           let lo = ReportInputs.number(row[low]), let hi = ReportInputs.number(row[high]) {
            text += " [\(tickLabel(lo)), \(tickLabel(hi))]"
        }
        return text + "/month"
    }

    static func firstColumn(_ table: TSVTable, _ names: [String]) -> Int? {
        names.lazy.compactMap { table.index(of: $0) }.first
    }

    /// The whole-brain values of a metric per visit ("participant session").
    func wholeBrain(metric: String) -> [String: Double] {
        guard let regions = values[metric], let key = regions.keys.first(where: { $0.region == "whole_brain" }) else { return [:] }
        return regions[key]!.filter { $0.value.isFinite }
    }

    var visitKeys: [String] {
        participants.flatMap { p in visitMonths(participant: p).map { "\(p) \($0.session)" } }
    }

    /// The mean log-signal residual of each visit's tensor fit, from its DWI sidecar.
    func fitResiduals(output: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for visit in ReportWriter.visitFolders(output: output) {
            let folder = visit.path + "/dwi"
            guard let name = ReportInputs.files(in: folder).first(where: { $0.hasSuffix("_model-tensor_dwimap.json") }),
                  let sidecar = try? ReportInputs.json(folder + "/" + name),
                  let residual = sidecar["QC"]?["MeanResidual"]?.doubleValue else { continue }
            out["\(visit.participant) \(visit.session ?? "n/a")"] = residual
        }
        return out
    }
}
