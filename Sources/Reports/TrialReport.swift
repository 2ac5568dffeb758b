import AtomicFiles
import Foundation
import Tabular

/// The trial report, `OUTPUT/group/report.html`, built from the group tables (and, for the
/// fit residual and the parameters, the visit records and sidecars): the visits, each
/// outcome's trajectories with EDSS on the same time axis, change from baseline with the
/// statistics tables' intervals and slopes when they exist, change against EDSS change, and
/// QC across the trial.
///
/// Reading the figures back: every plotted value is a `<circle class="point">` inside a
/// `<g class="panel" data-panel="REGION">` of a `<figure id="trajectory-METRIC">` (or
/// `change-METRIC`, `qc`), with `data-series` the participant, `data-x` the visit month and
/// `data-y` the value exactly as in the table (shortest round-trip text).
public enum TrialReport {
    /// The outcomes shown when none are chosen.
    public static let defaultMetrics = ["fa_mean", "md_mean", "conn_within_mean"]

    /// Writes the trial report.
    /// - Parameters:
    ///   - output: the output folder.
    ///   - tables: the folder holding the group tables; nil for `OUTPUT/group` (the group
    ///     stage passes its staging folder, so the report joins the tables' set).
    ///   - path: where to write; nil for `OUTPUT/group/report.html`.
    /// - Returns: the path written.
    @discardableResult
    public static func write(output: String, tables: String? = nil, to path: String? = nil, metrics: [String]? = nil,
                             generator: String) throws -> String {
        let html = try render(output: output, tables: tables, metrics: metrics ?? defaultMetrics, generator: generator)
        let path = path ?? output + "/group/report.html"
        try AtomicFile.write(html, to: path)
        return path
    }

    /// Above this many participants the report is a summary (``largeTrialSummary(output:tables:generator:)``):
    /// its figures draw one line per participant in every panel, and at 250 participants the
    /// page already weighs 32 MB, at 2 500 it would take hours and hundreds of MB to build.
    /// The demo's cap is 99 participants, so every demo trial gets the full report.
    public static let participantLimit = 100

    public static func render(output: String, tables: String? = nil, metrics: [String], generator: String) throws -> String {
        if let summary = try largeTrialSummary(output: output, tables: tables, generator: generator) { return summary }
        let data = try TrialData(output: output, tables: tables)
        var page = HTMLPage(title: "nimetrics trial report")
        page.add("<nav><a href=\"#visits\">Visits</a><a href=\"#trajectories\">Trajectories</a><a href=\"#change\">Change from baseline</a><a href=\"#edss\">Change vs EDSS</a><a href=\"#qc\">QC</a><a href=\"#parameters\">Parameters</a></nav>")
        page.paragraph("\(data.participants.count) participants, \(data.visits.rows.count) visits; x axes in months since baseline (visit_month).", cssClass: "muted")
        page.heading("Visits", id: "visits")
        page.add(visitTable(data, output: output))
        page.heading("Trajectories", id: "trajectories")
        for metric in metrics { addTrajectories(&page, data: data, metric: metric) }
        page.heading("Change from baseline", id: "change")
        if data.stats == nil { page.paragraph("No group/stats.tsv: each participant's change is shown without confidence intervals.", cssClass: "muted") }
        for metric in metrics { addChange(&page, data: data, metric: metric) }
        page.heading("Change against EDSS change", id: "edss")
        for metric in metrics { addScatter(&page, data: data, metric: metric) }
        page.heading("Quality control across the trial", id: "qc")
        addQC(&page, data: data, output: output)
        page.heading("Parameters used", id: "parameters")
        addParameters(&page, output: output, tables: data.tablesFolder)
        return page.rendered(generator: generator)
    }

    /// The report of a trial of more than ``participantLimit`` participants: the visit counts
    /// by status and the parameter sets used (their ids and visit counts), with a pointer to the group tables, which hold every
    /// value; nil for a smaller trial (or a visit table without participants, which the full
    /// report then reports).
    static func largeTrialSummary(output: String, tables: String?, generator: String) throws -> String? {
        let visitsPath = (tables ?? output + "/group") + "/visits.tsv"
        let visits: TSVTable
        do { visits = try TSVTable.read(visitsPath) } catch { throw ReportError(visitsPath, "cannot read the visit table: \(error)") }
        guard let p = visits.index(of: "participant_id") else { return nil }
        let participants = Set(visits.rows.map { $0[p] }).count
        guard participants > participantLimit else { return nil }
        var page = HTMLPage(title: "nimetrics trial report")
        page.paragraph("\(participants) participants, \(visits.rows.count) visits.", cssClass: "muted")
        page.paragraph("More than \(participantLimit) participants: the figures, which draw one line per participant, and the "
                       + "per-visit tables are left out of this report. The group tables (metrics_long.tsv, change_from_baseline.tsv, "
                       + "stats.tsv, trend.tsv, nimetrics.sqlite) hold every value.", cssClass: "warning")
        page.heading("Visits", id: "visits")
        var counts: [String: Int] = [:]
        if let status = visits.index(of: "status") { for row in visits.rows { counts[row[status], default: 0] += 1 } }
        page.add(HTMLPage.table(header: ["status", "visits"], rows: counts.keys.sorted().map { [$0, String(counts[$0]!)] }))
        // The parameter sets by their ids in visits.tsv (reading every visit record, as the
        // full report does, took a quarter of the group stage at 10 000 visits); the
        // database's `parameters` table holds each set in full.
        page.heading("Parameters used", id: "parameters")
        var rows: [[String]] = []
        for modality in ["dwi", "func"] {
            guard let column = visits.index(of: modality + "_parameters") else { continue }
            var used: [String: Int] = [:]
            for row in visits.rows where row[column] != "n/a" { used[row[column], default: 0] += 1 }
            rows += used.keys.sorted().map { [modality, $0, String(used[$0]!)] }
        }
        page.add(HTMLPage.table(header: ["modality", "parameters_id", "visits"], rows: rows,
                                caption: "Each set in full: table parameters of nimetrics.sqlite."))
        return page.rendered(generator: generator)
    }

    /// The unit of a metric, for axis labels.
    static func unit(_ metric: String) -> String {
        if metric.hasPrefix("md_") || metric.hasPrefix("ad_") || metric.hasPrefix("rd_") { return "mm²/s" }
        if metric.hasPrefix("conn_") { return "Pearson r" }
        if metric.hasPrefix("fd_") { return "mm" }
        if metric.hasPrefix("alff") || metric.hasPrefix("s0") { return "a.u." }
        return "unitless"
    }

    static func visitTable(_ data: TrialData, output: String) -> String {
        let status = data.visits.index(of: "status")
        let participant = data.visits.index(of: "participant_id"), session = data.visits.index(of: "session_id")
        var rows: [String] = []
        for row in data.visits.rows {
            let state = status.map { row[$0] } ?? "n/a"
            let cls = state == "ok" ? "" : (state == "missing" ? " class=\"missing\"" : " class=\"failed\"")
            var cells = ""
            for (k, cell) in row.enumerated() {
                if k == session, let participant,
                   FileManager.default.fileExists(atPath: "\(output)/\(row[participant])/\(cell)/\(VisitReport.fileName(prefix: row[participant] + "_" + cell))") {
                    let prefix = row[participant] + "_" + cell
                    cells += "<td><a href=\"../\(escapeXML(row[participant]))/\(escapeXML(cell))/\(escapeXML(VisitReport.fileName(prefix: prefix)))\">\(escapeXML(cell))</a></td>"
                } else {
                    cells += "<td>\(escapeXML(cell))</td>"
                }
            }
            rows.append("<tr\(cls)>\(cells)</tr>")
        }
        let bad = data.visits.rows.filter { row in status.map { row[$0] != "ok" } ?? false }.count
        return "<p>\(bad) visit(s) missing or failed (highlighted).</p><table><thead><tr>" + data.visits.columns.map { "<th>\(escapeXML($0))</th>" }.joined()
            + "</tr></thead><tbody>" + rows.joined() + "</tbody></table>"
    }

    /// One panel per region (and atlas) of `metric`, one line per participant across visit
    /// months, preceded by an EDSS panel on the same axis.
    static func addTrajectories(_ page: inout HTMLPage, data: TrialData, metric: String) {
        let regions = data.regions(of: metric)
        guard !regions.isEmpty else { page.paragraph("\(metric): not in metrics_long.tsv.", cssClass: "muted"); return }
        var panels: [Panel] = []
        if let edss = data.clinicalPanel("edss") { panels.append(edss) }
        for key in regions {
            let series = participantSeries(data) { data.values(metric: metric, key: key, participant: $0) }
            panels.append(Panel(title: key.title, series: series))
        }
        let svg = Charts.smallMultiples(panels, title: "Trajectories of \(metric)",
                                        summary: "\(metric) (\(unit(metric))) of every participant across visit months, one panel per region, EDSS first.",
                                        xLabel: "visit month", yLabel: "\(metric) (\(unit(metric)))", xTicks: data.months)
        page.add("<figure id=\"trajectory-\(escapeXML(metric))\">\(svg)<figcaption>\(escapeXML(metric)) (\(unit(metric))) per participant and visit month; the first panel is EDSS (score) on the same time axis.</figcaption></figure>")
    }

    /// One line per participant, coloured by its place in the trial, through `points`.
    static func participantSeries(_ data: TrialData, points: (String) -> [(x: Double, y: Double?)]) -> [PlotSeries] {
        data.participants.enumerated().map { k, participant in
            PlotSeries(name: participant, colour: categoricalColours[k % categoricalColours.count], points: points(participant))
        }
    }

    /// Each participant's change from baseline per region, with the mean change and its 95%
    /// CI from stats.tsv and the trend slope from trend.tsv when those tables exist.
    static func addChange(_ page: inout HTMLPage, data: TrialData, metric: String) {
        let regions = data.regions(of: metric)
        guard !regions.isEmpty, data.change != nil else { return }
        var panels: [Panel] = []
        for key in regions {
            let series = participantSeries(data) { data.changes(metric: metric, key: key, participant: $0) }
            let statistics = data.intervals(metric: metric, key: key)
            let intervals = statistics.map { (x: $0.x, low: $0.low, high: $0.high, colour: "#000") }
            let mean = PlotSeries(name: "mean change (stats.tsv)", colour: "#000", points: statistics.map { ($0.x, $0.mean) }, dashed: true)
            panels.append(Panel(title: key.title, series: series + (intervals.isEmpty ? [] : [mean]), intervals: intervals,
                                referenceY: 0, note: data.slope(metric: metric, key: key)))
        }
        let svg = Charts.smallMultiples(panels, title: "Change from baseline of \(metric)",
                                        summary: "Change from baseline of \(metric) (\(unit(metric))) per participant; mean change with 95% CI and trend slope where the statistics tables give them.",
                                        xLabel: "visit month", yLabel: "change (\(unit(metric)))", xTicks: data.months)
        page.add("<figure id=\"change-\(escapeXML(metric))\">\(svg)<figcaption>Change from baseline of \(escapeXML(metric)) (\(unit(metric))): one line per participant; black bars: mean change and 95% CI (stats.tsv); red note: slope per month with 95% CI (trend.tsv).</figcaption></figure>")
    }

    static func addScatter(_ page: inout HTMLPage, data: TrialData, metric: String) {
        let regions = data.regions(of: metric)
        var points: [(label: String, x: Double, y: Double, colour: String)] = []
        for (k, key) in regions.enumerated() {
            for participant in data.participants {
                for (session, delta) in data.changeBySession(metric: metric, key: key, participant: participant) {
                    guard let edss = data.edssChange(participant: participant, session: session) else { continue }
                    points.append(("\(participant) \(session) \(key.title)", edss, delta, categoricalColours[k % categoricalColours.count]))
                }
            }
        }
        guard !points.isEmpty else { return }
        let svg = Charts.scatter(points, title: "Change of \(metric) against EDSS change",
                                 summary: "Each point one participant, follow-up visit and region: EDSS change (x) against the change of \(metric) (y).",
                                 xLabel: "EDSS change (score)", yLabel: "\(metric) change (\(unit(metric)))")
        let legend = regions.enumerated().map { "<span style=\"color:\(categoricalColours[$0.offset % categoricalColours.count])\">■ \(escapeXML($0.element.title))</span>" }.joined(separator: " ")
        page.add("<figure id=\"scatter-\(escapeXML(metric))\">\(svg)<figcaption>\(legend)</figcaption></figure>")
    }

    /// QC numbers per visit with outliers flagged: a value more than 3 robust standard
    /// deviations (1.4826 x the median absolute deviation) from the trial's median.
    static func addQC(_ page: inout HTMLPage, data: TrialData, output: String) {
        var columns: [(name: String, values: [String: Double])] = []
        for metric in ["fd_mean", "censored_fraction", "tsnr_mean", "negative_eigenvalue_fraction"] {
            let values = data.wholeBrain(metric: metric)
            if !values.isEmpty { columns.append((metric, values)) }
        }
        let residuals = data.fitResiduals(output: output)
        if !residuals.isEmpty { columns.append(("dwi_mean_residual", residuals)) }
        let visits = data.visitKeys
        var flagged: [String: Set<String>] = [:]
        for column in columns {
            let values = column.values.values.sorted()
            guard values.count >= 3 else { continue }
            let median = values[values.count / 2]
            let mad = 1.4826 * (values.map { abs($0 - median) }.sorted()[values.count / 2])
            for (visit, value) in column.values where mad > 0 && abs(value - median) / mad > 3 { flagged[visit, default: []].insert(column.name) }
        }
        let rows = visits.map { visit in [visit] + columns.map { $0.values[visit].map(tickLabel) ?? "n/a" } + [flagged[visit]?.sorted().joined(separator: ", ") ?? ""] }
        page.paragraph("\(flagged.count) visit(s) flagged: a QC value more than 3 robust SD (1.4826 x MAD) from the trial's median.",
                       cssClass: flagged.isEmpty ? "ok" : "warning")
        page.add(HTMLPage.table(header: ["visit"] + columns.map(\.name) + ["outlier in"], rows: rows,
                                classes: visits.map { flagged[$0] == nil ? nil : "outlier" }))
        let panels = columns.map { column in
            Panel(title: column.name, series: data.participants.enumerated().map { k, participant in
                PlotSeries(name: participant, colour: categoricalColours[k % categoricalColours.count],
                           points: data.visitMonths(participant: participant).map { session, month in (month, column.values["\(participant) \(session)"]) })
            }, yLabel: "\(column.name) (\(unit(column.name)))")
        }
        if !panels.isEmpty {
            let svg = Charts.smallMultiples(panels, title: "QC across the trial", summary: "Mean framewise displacement (mm), censored fraction, whole-brain tSNR, negative-eigenvalue fraction and fit residual per visit.",
                                            xLabel: "visit month", yLabel: "value", xTicks: data.months)
            page.add("<figure id=\"qc\">\(svg)<figcaption>QC per participant and visit month: fd_mean in mm, the others unitless.</figcaption></figure>")
        }
    }

    /// The distinct processing parameters of the visit records, per modality, with the
    /// visits that used them.
    static func addParameters(_ page: inout HTMLPage, output: String, tables: String) {
        var seen: [String: [String]] = [:], order: [String] = []
        for visit in ReportWriter.visitFolders(output: output) {
            for modality in ["dwi", "func"] {
                guard let record = try? ReportInputs.json(visit.path + "/\(visit.prefix)_desc-\(modality)_visit.json"),
                      let parameters = record["parameters"] else { continue }
                let key = modality + "\n" + parameters.rendered()
                if seen[key] == nil { order.append(key) }
                seen[key, default: []].append(visit.prefix)
            }
        }
        if order.count > 2 { page.paragraph("The visits were processed with \(order.count) different parameter sets.", cssClass: "warning") }
        for key in order {
            let parts = key.split(separator: "\n", maxSplits: 1).map(String.init)
            page.add(HTMLPage.folded("\(parts[0]): \(seen[key]!.count) visit(s)",
                                     HTMLPage.preformatted(parts[1]) + "<p class=\"muted\">\(escapeXML(seen[key]!.joined(separator: ", ")))</p>"))
        }
        if let stats = try? String(contentsOfFile: tables + "/stats.tsv", encoding: .utf8), !stats.isEmpty {
            page.paragraph("Statistics from group/stats.tsv\(FileManager.default.fileExists(atPath: tables + "/trend.tsv") ? " and group/trend.tsv" : ""); with a handful of participants they are exploratory.", cssClass: "muted")
        }
    }
}
