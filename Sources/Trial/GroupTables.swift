import AtomicFiles
import Foundation
import Pipelines
import Tabular

/// What a group-level run wrote.
public struct GroupSummary: Sendable {
    /// `OUTPUT/group`.
    public var folder: String
    /// The files written, in the order written.
    public var files: [String]
    /// How many visits have each status.
    public var statusCounts: [VisitStatus: Int]
    /// Remarks (e.g. a participant without the requested baseline session).
    public var warnings: [String]
}

/// One visit as the group level sees it: the status of each of its modalities and the
/// metrics of those that are ok.
struct GroupVisit {
    var visit: VisitInput
    /// Position of the session in its participant's chronological order (0 first).
    var sessionOrder: Int
    /// The worst status over the visit's modalities (failed, incomplete, missing, ok).
    var status: VisitStatus
    /// The modalities' errors, `dwi: ...; func: ...`.
    var error: String?
    /// Each modality discovered or recorded, with its status.
    var scans: [(modality: Modality, status: VisitStatus)]
    /// In ``TrialRunner/metricOrder(_:_:)``; the metrics of the modalities that are ok.
    var metrics: [MetricRow]
    /// The non-zero shells the tensor was fitted to, from the visit's DWI sidecar; nil when
    /// the DWI is not ok, absent, or its sidecar does not list them.
    var dwiShells: [Double]? = nil

    /// The protocol cell of visits.tsv: the shells joined by commas ("1000", "1000,2000").
    var dwiShellsText: String? { dwiShells.map { $0.map(formatJSONNumber).joined(separator: ",") } }

    func status(of modality: Modality) -> VisitStatus? { scans.first { $0.modality == modality }?.status }
}

/// One row of change_from_baseline.
struct ChangeRow {
    var participantID: String
    var sessionID: String
    var metric: MetricRow
    var baseline: Double
    var delta: Double { metric.value - baseline }
    /// 100 · delta / |baseline|: the sign follows the change even for a negative baseline;
    /// NaN when the baseline is 0 or missing.
    var percentChange: Double { baseline.isNaN || baseline == 0 ? .nan : 100 * delta / abs(baseline) }
}

extension TrialRunner {
    /// Builds the group tables from the per-visit outputs in `output`.
    ///
    /// Reads only each visit's `_visit.json`, `_metrics.tsv` and DWI sidecar (the
    /// `_model-tensor_dwimap.json` its record lists, for the shells fitted) and the clinical
    /// tables the dataset discovery read; never an image. Writes, atomically, into `OUTPUT/group/`:
    ///
    /// - `metrics_long.tsv`: participant_id, session_id, modality, region, metric, value,
    ///   run, atlas, for visits whose status is ok; sorted by participant (natural order),
    ///   session (chronological order), then ``metricOrder(_:_:)``.
    /// - `visits.tsv`: one row per discovered visit: participant_id, session_id, the columns
    ///   of sessions.tsv then participants.tsv (or the manifest's extra columns; `n/a` where
    ///   absent), status (ok, failed, incomplete, missing), error, dwi_shells (the non-zero
    ///   shells the tensor was fitted to, as the DWI sidecar lists them, "1000" or
    ///   "1000,2000"; `n/a` for a visit that is not ok or has no DWI series), so a change of
    ///   protocol between visits shows next to their metrics.
    /// - `change_from_baseline.tsv`: participant_id, session_id, modality, region, metric,
    ///   baseline_value, value, delta, pct_change, atlas, for every session value (run
    ///   `n/a`) of every ok visit that is not its participant's baseline (the baseline's own
    ///   rows, all zeros, are left out), matched with the baseline's on modality, region,
    ///   metric and atlas. `delta` = value − baseline; `pct_change` = 100 · delta / |baseline|, `n/a`
    ///   when the baseline is 0 or missing.
    /// - `stats.tsv` and `trend.tsv`: the statistics of change of the outcome metrics (see
    ///   ``GroupStatistics``), with the clinical outcome `edss` when the visits have it and
    ///   the months of the `visit_month` column.
    /// - `nimetrics.sqlite`: tables `participants`, `visits`, `metrics`, `baselines`, `stats`,
    ///   `trend` and the view `change_from_baseline`, holding the same numbers.
    ///
    /// The baseline of each participant is `baselineSession` when given (a participant
    /// without it has no baseline: its rows get `n/a`), else the first of its discovered
    /// sessions in chronological order: earliest `acq_time`, else smallest `visit_month`,
    /// else the first label in natural order (see ``Dataset/sessionOrder(of:)``). The
    /// baseline is chosen among discovered visits, not among successful ones, so a failed
    /// baseline visit gives `n/a` baselines rather than silently moving the baseline.
    /// Datasets without sessions get no change rows.
    ///
    /// - Parameters:
    ///   - dataset: the same dataset the participant level ran on.
    ///   - output: the participant level's output folder.
    ///   - baselineSession: `m00` or `ses-m00`; nil for the rule above.
    ///   - clinicalOutcome: the clinical column stats.tsv correlates the changes with; nil for
    ///     `edss` when the visits have it.
    /// - Returns: the files written and the visit counts by status.
    /// - Throws: ``TrialError`` for an output folder that is, lies in or holds an input
    ///   (checked first, see ``OutputGuard``), an invalid baseline label, a clinical outcome
    ///   that is no clinical column, an unreadable
    ///   metrics table, a symbolic link in `OUTPUT/group`, or a failure to write.
    @discardableResult
    public static func runGroup(dataset: Dataset, output: String, baselineSession: String? = nil,
                                clinicalOutcome: String? = nil) throws -> GroupSummary {
        try OutputGuard.checkSeparation(output: output, inputs: dataset.inputRoots)
        let baselineLabel = try baselineSession.map { try BIDSLabel.normalized($0, kind: "session") }
        let visits = try collectVisits(dataset: dataset, output: output)
        if let clinicalOutcome, !clinicalColumns(visits).contains(clinicalOutcome) {
            throw TrialError.badTable(file: dataset.path, reason: "no clinical column '\(clinicalOutcome)' for --clinical-outcome "
                                      + "(columns: \(clinicalColumns(visits).joined(separator: ", ")))")
        }
        var warnings: [String] = []
        let baselines = chooseBaselines(visits, requested: baselineLabel, warnings: &warnings)

        try createFolder(output)
        let folder = try OutputGuard.makeFolder("group", in: output)
        try OutputGuard.refuseLinks(inside: folder, root: output)
        AtomicFile.removeStaleTemporaries(in: folder)
        var files: [String] = []
        func write(_ table: TSVTable, _ name: String) throws {
            let path = folder + "/" + name
            do { try table.write(to: path) } catch { throw TrialError.io(path: path, reason: "cannot write: \(oneLine(error))") }
            files.append(path)
        }
        try write(metricsLongTable(visits), "metrics_long.tsv")
        try write(visitsTable(visits), "visits.tsv")
        let changes = changeRows(visits, baselines: baselines)
        try write(changeTable(changes), "change_from_baseline.tsv")
        let statistics = GroupStatistics.input(visits: visits, changes: changes, baselines: baselines,
                                               clinicalOutcome: clinicalOutcome, warnings: &warnings)
        let statisticsTables = [("stats", GroupStatistics.statsTable(statistics)), ("trend", GroupStatistics.trendTable(statistics))]
        for (name, table) in statisticsTables { try write(table, name + ".tsv") }
        let databasePath = folder + "/nimetrics.sqlite"
        try GroupDatabase.write(to: databasePath, visits: visits, dataset: dataset, baselines: baselines, tables: statisticsTables)
        files.append(databasePath)

        var counts: [VisitStatus: Int] = [:]
        for visit in visits { counts[visit.status, default: 0] += 1 }
        return GroupSummary(folder: folder, files: files, statusCounts: counts, warnings: warnings)
    }

    // MARK: - Reading the visit folders

    /// Every discovered visit with the records of each modality found in `output`: a
    /// modality processed in an earlier run counts even when this discovery did not find its
    /// files (the DWI and the BOLD may come from separate runs).
    static func collectVisits(dataset: Dataset, output: String) throws -> [GroupVisit] {
        var result: [GroupVisit] = []
        var rankInParticipant: [String: Int] = [:]
        for visit in Dataset.sortVisits(dataset.visits) {
            let rank = rankInParticipant[visit.participant, default: 0]
            rankInParticipant[visit.participant] = rank + 1
            let folder = try SafePath.join(output, visit.relativeFolder)
            var entry = GroupVisit(visit: visit, sessionOrder: rank, status: .ok, error: nil, scans: [], metrics: [])
            var errors: [String] = []
            for modality in Modality.allCases {
                var unit = visit
                unit.modality = modality
                guard let scan = try readScan(unit, folder: folder, expected: visit.modalities.contains(modality)) else { continue }
                entry.scans.append((modality, scan.status))
                entry.metrics += scan.metrics
                if modality == .dwi, scan.status == .ok, let record = scan.record { entry.dwiShells = dwiShells(record, folder: folder) }
                if let error = scan.error { errors.append("\(modality.rawValue): \(error)") }
            }
            entry.metrics.sort(by: metricOrder)
            let severity: [VisitStatus] = [.failed, .incomplete, .missing]
            entry.status = severity.first { worst in entry.scans.contains { $0.status == worst } } ?? (entry.scans.isEmpty ? .missing : .ok)
            entry.error = errors.isEmpty ? nil : errors.joined(separator: "; ")
            result.append(entry)
        }
        return result
    }

    /// One modality of a visit: its record's status and, when ok, its metrics; nil when the
    /// modality was neither found by discovery nor recorded.
    static func readScan(_ unit: VisitInput, folder: String, expected: Bool) throws
        -> (status: VisitStatus, error: String?, metrics: [MetricRow], record: VisitRecord?)? {
        let recordPath = folder + "/" + VisitFiles.record(unit)
        let metricsPath = folder + "/" + VisitFiles.metrics(unit)
        guard FileManager.default.fileExists(atPath: recordPath) else {
            let outputs = folder + "/" + (unit.modality?.rawValue ?? "")
            if Dataset.isFolder(outputs), !((try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []).isEmpty {
                return (.incomplete, "no record: the run stopped before this scan finished", [], nil)
            }
            return expected ? (.missing, nil, [], nil) : nil
        }
        let record: VisitRecord
        do { record = try VisitRecord.read(recordPath) } catch { return (.incomplete, oneLine(error), [], nil) }
        guard record.status == .ok else { return (record.status, record.error, [], record) }
        guard FileManager.default.fileExists(atPath: metricsPath) else {
            return (.incomplete, "\(metricsPath): missing although the record says ok", [], record)
        }
        let metrics = try MetricsTable.read(metricsPath).sorted(by: metricOrder)
        for (a, b) in zip(metrics, metrics.dropFirst()) where metricOrder(a, b) == false {
            let which = (a.run.map { " of run " + $0 } ?? "") + (a.atlas.map { " of atlas " + $0 } ?? "")
            throw TrialError.badTable(file: metricsPath, reason: "metric \(a.modality)/\(a.region)/\(a.metric)\(which) appears twice")
        }
        return (.ok, nil, metrics, record)
    }

    /// The shells of the DWI sidecar a visit record lists among its outputs; nil when it
    /// lists none or the file cannot be read as one (the protocol is then `n/a`, not an error:
    /// the metrics, which the group tables exist for, are there).
    static func dwiShells(_ record: VisitRecord, folder: String) -> [Double]? {
        guard let name = record.outputs.first(where: { $0.hasSuffix(DiffusionPipeline.sidecarSuffix) }),
              let path = try? SafePath.join(folder, name),
              let data = FileManager.default.contents(atPath: path) else { return nil }
        return DiffusionPipeline.shellsUsed(sidecar: String(decoding: data, as: UTF8.self))
    }

    /// Modality, then the values no atlas changes before each atlas's in natural order of
    /// their names (so one atlas's rows stay together), then region, metric, and the
    /// session's value before the runs' in run order. A strict order: two rows compare
    /// equal only when all five keys are equal.
    static func metricOrder(_ a: MetricRow, _ b: MetricRow) -> Bool {
        if a.modality != b.modality { return a.modality < b.modality }
        if a.atlas != b.atlas { return labelLess(a.atlas, b.atlas) }
        if a.region != b.region { return a.region < b.region }
        if a.metric != b.metric { return a.metric < b.metric }
        return labelLess(a.run, b.run)
    }

    /// nil first, then labels in natural order (plain order breaking ties).
    private static func labelLess(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case let (x?, y?): return BIDSLabel.naturalLess(x, y)
        }
    }

    /// The baseline session label of each participant with sessions (nil: none).
    static func chooseBaselines(_ visits: [GroupVisit], requested: String?, warnings: inout [String]) -> [String: String?] {
        var baselines: [String: String?] = [:]
        for visit in visits where visit.visit.session != nil && baselines[visit.visit.participant] == nil {
            let participant = visit.visit.participant
            let sessions = visits.filter { $0.visit.participant == participant }.compactMap(\.visit.session)
            if let requested {
                if sessions.contains(requested) {
                    baselines[participant] = .some(requested)
                } else {
                    baselines[participant] = .some(nil)
                    warnings.append("sub-\(participant): no session '\(requested)'; its changes from baseline are n/a")
                }
            } else {
                // `visits` is in chronological order, so the first session is the baseline.
                baselines[participant] = .some(sessions.first)
            }
        }
        return baselines
    }

    static func changeRows(_ visits: [GroupVisit], baselines: [String: String?]) -> [ChangeRow] {
        var rows: [ChangeRow] = []
        // Per modality: the metrics of a visit are those of its modalities that are ok, so a
        // failed DWI leaves the functional changes in place, and the other way round.
        for visit in visits where !visit.metrics.isEmpty {
            guard let session = visit.visit.session, let baseline = baselines[visit.visit.participant] else { continue }
            if baseline == session { continue }
            let baselineMetrics = visits.first { $0.visit.participant == visit.visit.participant && $0.visit.session == baseline }?.metrics ?? []
            var byKey: [String: Double] = [:]
            func key(_ row: MetricRow) -> String { "\(row.modality)\t\(row.region)\t\(row.metric)\t\(row.atlas ?? "")" }
            // Change is measured on the session's values, not on single runs, atlas by atlas.
            for row in baselineMetrics where row.run == nil { byKey[key(row)] = row.value }
            for metric in visit.metrics where metric.run == nil {
                rows.append(ChangeRow(participantID: visit.visit.participantID, sessionID: "ses-" + session, metric: metric,
                                      baseline: byKey[key(metric)] ?? .nan))
            }
        }
        return rows
    }

    // MARK: - Tables

    static func metricsLongTable(_ visits: [GroupVisit]) -> TSVTable {
        var table = TSVTable(columns: ["participant_id", "session_id", "modality", "region", "metric", "value", "run", "atlas"])
        for visit in visits {
            for m in visit.metrics {
                table.append([visit.visit.participantID, visit.visit.sessionID ?? "n/a", m.modality, m.region, m.metric,
                              tsvCell(m.value), m.run ?? "n/a", m.atlas ?? "n/a"])
            }
        }
        return table
    }

    /// Clinical column names over all visits, in order of first appearance.
    static func clinicalColumns(_ visits: [GroupVisit]) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        for visit in visits { for (name, _) in visit.visit.clinical where seen.insert(name).inserted { names.append(name) } }
        return names
    }

    static func visitsTable(_ visits: [GroupVisit]) -> TSVTable {
        let clinical = clinicalColumns(visits)
        var table = TSVTable(columns: ["participant_id", "session_id"] + clinical + ["status", "error"]
                             + Modality.allCases.map { $0.rawValue + "_status" } + ["dwi_shells"])
        for visit in visits {
            let cells = clinical.map { name in visit.visit.clinical.first { $0.0 == name }.map { cellText($0.1) } ?? "n/a" }
            table.append([visit.visit.participantID, visit.visit.sessionID ?? "n/a"] + cells
                         + [visit.status.rawValue, visit.error.map(cellText) ?? "n/a"]
                         + Modality.allCases.map { visit.status(of: $0)?.rawValue ?? "n/a" } + [visit.dwiShellsText ?? "n/a"])
        }
        return table
    }

    static func changeTable(_ rows: [ChangeRow]) -> TSVTable {
        var table = TSVTable(columns: ["participant_id", "session_id", "modality", "region", "metric",
                                       "baseline_value", "value", "delta", "pct_change", "atlas"])
        for row in rows {
            table.append([row.participantID, row.sessionID, row.metric.modality, row.metric.region, row.metric.metric,
                          tsvCell(row.baseline), tsvCell(row.metric.value), tsvCell(row.delta), tsvCell(row.percentChange),
                          row.metric.atlas ?? "n/a"])
        }
        return table
    }

    /// Text made safe for a TSV cell: tabs and line breaks become spaces, empty becomes `n/a`.
    static func cellText(_ text: String) -> String {
        let cleaned = String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
        return cleaned.isEmpty ? "n/a" : cleaned
    }
}
