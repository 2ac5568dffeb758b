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
    /// The keys of ``metrics`` (ids into ``catalogue``), in ``TrialRunner/metricOrder(_:_:)``.
    var metricIDs: [UInt32] = []
    /// The values of ``metrics``, one per id.
    var metricValues: [Double] = []
    /// The table of keys ``metricIDs`` point into, shared by the visits of one group stage.
    var catalogue: MetricCatalogue
    /// The non-zero shells the tensor was fitted to, from the visit's DWI sidecar; nil when
    /// the DWI is not ok, absent, or its sidecar does not list them.
    var dwiShells: [Double]? = nil

    /// The processing parameters of each modality that is ok, from its record.
    var parameters: [Modality: ParameterSet] = [:]
    /// The visit's month (see ``Baselines/assignMonths(_:baselines:)``); nil when unknown.
    var visitMonth: Double? = nil

    init(visit: VisitInput, sessionOrder: Int, status: VisitStatus, error: String?,
         scans: [(modality: Modality, status: VisitStatus)], metrics: [MetricRow], catalogue: MetricCatalogue = MetricCatalogue()) {
        self.visit = visit
        self.sessionOrder = sessionOrder
        self.status = status
        self.error = error
        self.scans = scans
        self.catalogue = catalogue
        self.metrics = metrics
    }

    /// In ``TrialRunner/metricOrder(_:_:)``; the metrics of the modalities that are ok, made
    /// from ``metricIDs`` and ``metricValues`` on each read (the group tables read those).
    var metrics: [MetricRow] {
        get { zip(metricIDs, metricValues).map { catalogue.row($0, value: $1) } }
        set {
            metricIDs = newValue.map(catalogue.id)
            metricValues = newValue.map(\.value)
        }
    }

    /// True when the visit has no metrics.
    var hasNoMetrics: Bool { metricIDs.isEmpty }

    /// The protocol cell of visits.tsv: the shells joined by commas ("1000", "1000,2000").
    var dwiShellsText: String? { dwiShells.map { $0.map(formatJSONNumber).joined(separator: ",") } }

    func status(of modality: Modality) -> VisitStatus? { scans.first { $0.modality == modality }?.status }

    /// The `visit_month` the clinical tables give (``ClinicalTime/month(_:)``).
    var givenMonth: Double? { visit.clinicalValue("visit_month").flatMap(ClinicalTime.month) }
    /// The `acq_time` the clinical tables give, in seconds since 1970 (UTC).
    var acquisitionTime: Double? { visit.clinicalValue("acq_time").flatMap(ClinicalTime.seconds) }

    /// The parameters id of a metric's modality (`dwi`, `func`), if ok.
    func parametersID(of modality: String) -> String? { Modality(rawValue: modality).flatMap { parameters[$0]?.id } }
}

/// What the group stage is asked for, beyond the dataset and the output folder.
public struct GroupOptions: Sendable {
    /// `m00` or `ses-m00`; nil: the rule of ``Baselines/choose(_:requested:warnings:)``.
    public var baselineSession: String?
    /// Combine visits processed with different parameters (each metric row then carries
    /// its `parameters_id`); without it the group stage refuses them.
    public var allowMixedParameters = false
    /// The clinical column the statistics of change correlate with (default `edss` when present).
    public var clinicalOutcome: String?

    /// Files made from the group tables and written into the same set (the trial report):
    /// a kill leaves them and the tables of one run.
    public var derivedFiles: [GroupDerivedFile] = []

    public init(baselineSession: String? = nil, allowMixedParameters: Bool = false, clinicalOutcome: String? = nil,
                derivedFiles: [GroupDerivedFile] = []) {
        self.baselineSession = baselineSession
        self.allowMixedParameters = allowMixedParameters
        self.clinicalOutcome = clinicalOutcome
        self.derivedFiles = derivedFiles
    }
}

/// A file of `OUTPUT/group/` made from the group tables by a higher layer (the trial report),
/// written after them into the same set.
public struct GroupDerivedFile: Sendable {
    /// The file's name in `OUTPUT/group/`.
    public var name: String
    /// Writes the file: called with the folder that holds the new tables and the path to write.
    public var write: @Sendable (_ tablesFolder: String, _ path: String) throws -> Void

    public init(name: String, write: @escaping @Sendable (_ tablesFolder: String, _ path: String) throws -> Void) {
        self.name = name
        self.write = write
    }
}

/// Everything the group tables are built from, read once from the visit folders and the
/// clinical tables.
struct GroupData {
    /// Every listed visit (scheduled ones without images included), in participant order
    /// then chronological order, each with its status, metrics, parameters and month.
    var visits: [GroupVisit]
    /// The baseline of each participant with sessions.
    var baselines: [String: Baseline]
    /// The visit-level clinical columns: name as read, name in visits.tsv and the database.
    var clinical: [(source: String, name: String)]
    /// The participants.tsv columns: name as read, name in the database's participants table.
    var participantColumns: [(source: String, name: String)]
    /// What the sidecars say of each clinical column (by name as read).
    var descriptions: [String: ClinicalColumns.Description]
    /// True with `--allow-mixed-parameters`: metric rows carry their `parameters_id`.
    var mixedParameters: Bool
    var warnings: [String]
    /// The metric keys the visits' ids point into.
    var catalogue: MetricCatalogue

    /// The value of a visit's clinical column (by name as read), `n/a` when absent.
    static func clinicalCell(_ visit: GroupVisit, _ source: String) -> String {
        visit.visit.clinical.first { $0.0 == source }?.1 ?? "n/a"
    }

    /// A visit's clinical column (by name as read, `edss`) as a finite number; nil when
    /// absent, `n/a` or not a number.
    static func clinicalNumber(_ visit: GroupVisit, _ source: String) -> Double? {
        visit.visit.clinicalValue(source).flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil }
    }
}

/// One row of change_from_baseline.
struct ChangeRow {
    var participantID: String
    var sessionID: String
    /// `ses-<label>` of the participant's baseline; nil when it has none.
    var baselineSessionID: String?
    var metric: MetricRow
    var baseline: Double
    /// The parameters ids of the value and of the baseline value (for `--allow-mixed-parameters`).
    var parametersID: String?
    var baselineParametersID: String?
    var delta: Double { Self.delta(value: metric.value, baseline: baseline) }
    /// 100 · delta / |baseline|: the sign follows the change even for a negative baseline;
    /// NaN when the baseline is 0 or missing.
    var percentChange: Double { Self.percentChange(delta: delta, baseline: baseline) }

    static func delta(value: Double, baseline: Double) -> Double { value - baseline }
    static func percentChange(delta: Double, baseline: Double) -> Double {
        baseline.isNaN || baseline == 0 ? .nan : 100 * delta / abs(baseline)
    }
}

/// The rows of change_from_baseline of one follow-up visit, compactly: its session values
/// (run `n/a`) and its baseline's on the same key (NaN and not found when the baseline has none).
struct VisitChanges {
    /// Index of the visit in ``GroupData/visits``.
    var visit: Int
    /// Index of its participant's baseline visit; nil when that visit is not listed.
    var baseline: Int?
    /// `ses-<label>` of the visit and of its baseline.
    var sessionID: String
    var baselineSessionID: String?
    var ids: [UInt32] = []
    var values: [Double] = []
    var baselines: [Double] = []
    /// True where the baseline has the key (its value may still be n/a).
    var found: [Bool] = []
}

extension TrialRunner {
    /// Builds the group tables from the per-visit outputs in `output`.
    ///
    /// Reads only each visit's `_visit.json`, `_metrics.tsv` and DWI sidecar (the
    /// `_model-tensor_dwimap.json` its record lists, for the shells fitted), the clinical
    /// tables the dataset discovery read and their JSON sidecars; never an image. Replaces
    /// `OUTPUT/group/` as one set (``writeGroupSet(output:holding:_:)``: a kill or a failed
    /// write leaves the previous set or the new one, never a mix), holding the group lock
    /// (``OutputLocks``) throughout:
    ///
    /// - `metrics_long.tsv`: participant_id, session_id, modality, region, metric, value,
    ///   run, atlas, kind (``MetricKind``: outcome or qc), and with `--allow-mixed-parameters`
    ///   parameters_id; for visits whose status is ok; sorted by participant (natural order),
    ///   session (chronological order), then ``metricOrder(_:_:)``.
    /// - `visits.tsv`: one row per listed visit (every session folder with images, every
    ///   scheduled visit of sessions.tsv or `--clinical`, images or not): participant_id,
    ///   session_id, session_order (0 for the first in chronological order), visit_month
    ///   (``Baselines/assignMonths(_:baselines:)``), the clinical columns (sessions.tsv,
    ///   participants.tsv, the manifest's or `--clinical`'s; `n/a` where absent; a name that
    ///   clashes with one of these columns gets the prefix `clinical_`), status (ok, failed,
    ///   incomplete, missing), error, dwi_status, func_status, dwi_shells (the non-zero shells
    ///   the tensor was fitted to, "1000" or "1000,2000"), dwi_parameters and func_parameters
    ///   (``ParameterSet/id``), so a change of protocol or of parameters between visits shows
    ///   next to their metrics.
    /// - `change_from_baseline.tsv`: participant_id, session_id, baseline_session_id,
    ///   modality, region, metric, baseline_value, value, delta, percent_change, atlas, kind
    ///   (and with `--allow-mixed-parameters` parameters_id, baseline_parameters_id), for
    ///   every session value (run `n/a`) of every ok visit that is not its participant's
    ///   baseline, matched with the baseline's on modality, region, metric and atlas.
    ///   `delta` = value − baseline; `percent_change` = 100 · delta / |baseline|, `n/a` when
    ///   the baseline is 0 or missing.
    /// - `stats.tsv` and `trend.tsv`: the statistics of change of the outcome metrics (see
    ///   ``GroupStatistics``), with the clinical outcome (`--clinical-outcome`, default `edss`
    ///   when the visits have it) and the visits' months.
    /// - `nimetrics.sqlite`: see ``GroupDatabase``.
    ///
    /// The baseline rule is ``Baselines/choose(_:requested:warnings:)``. Datasets without
    /// sessions get no change rows.
    ///
    /// - Parameters:
    ///   - dataset: the same dataset the participant level ran on.
    ///   - output: the participant level's output folder.
    ///   - options: the baseline session, whether mixed parameters may be combined, the
    ///     clinical outcome of the statistics.
    /// - Returns: the files written, the visit counts by status and the warnings.
    /// - Throws: ``TrialError`` for an output folder that is, lies in or holds an input
    ///   (checked first, see ``OutputGuard``), an invalid baseline label, a clinical
    ///   outcome that is no clinical column, an unreadable
    ///   metrics table, visits processed with different parameters (unless allowed), a
    ///   symbolic link in `OUTPUT/group`, or a failure to write.
    @discardableResult
    public static func runGroup(dataset: Dataset, output: String, options: GroupOptions) throws -> GroupSummary {
        try OutputGuard.checkSeparation(output: output, inputs: dataset.inputRoots)
        // Held to the end, reading included: of two group stages, the later one reads last.
        let groupLock = try lockGroupStage(output: output)
        defer { groupLock.release() }
        var data = try groupData(dataset: dataset, output: output, options: options)
        let changes = changeRows(data)
        let statisticsTables = statisticsTables(&data, changes: changes, options: options)

        // Written as one set: a kill or a full disk leaves the previous tables or the new ones.
        let set = try writeGroupSet(output: output, holding: groupLock) { set in
            try set.write("metrics_long.tsv") { path in try writeMetricsLong(data, to: path) }
            try set.write(visitsTable(data), "visits.tsv")
            try set.write("change_from_baseline.tsv") { path in try writeChangeTable(changes, data: data, to: path) }
            for (name, table) in statisticsTables { try set.write(table, name + ".tsv") }
            try set.write("nimetrics.sqlite") { path in
                try GroupDatabase.write(to: path, data: data, dataset: dataset, tables: statisticsTables)
            }
            // Files made from the tables above (the trial report), in the same set.
            for file in options.derivedFiles {
                try set.write(file.name) { path in try file.write((path as NSString).deletingLastPathComponent, path) }
            }
        }

        var counts: [VisitStatus: Int] = [:]
        for visit in data.visits { counts[visit.status, default: 0] += 1 }
        return GroupSummary(folder: set.folder, files: set.files, statusCounts: counts, warnings: data.warnings)
    }

    /// stats.tsv and trend.tsv; their inputs (a value per row of the tables) are let go on return.
    static func statisticsTables(_ data: inout GroupData, changes: [VisitChanges], options: GroupOptions) -> [(String, TSVTable)] {
        let statistics = GroupStatistics.input(data, changes: changes, clinicalOutcome: options.clinicalOutcome, warnings: &data.warnings)
        return [("stats", GroupStatistics.statsTable(statistics)), ("trend", GroupStatistics.trendTable(statistics))]
    }

    /// ``runGroup(dataset:output:options:)`` with only a baseline session.
    @discardableResult
    public static func runGroup(dataset: Dataset, output: String, baselineSession: String? = nil) throws -> GroupSummary {
        try runGroup(dataset: dataset, output: output, options: GroupOptions(baselineSession: baselineSession))
    }

    /// Reads the visit folders and the clinical tables' sidecars, checks the parameters,
    /// chooses the baselines and the visit months, and names the clinical columns.
    static func groupData(dataset: Dataset, output: String, options: GroupOptions) throws -> GroupData {
        let baselineLabel = try options.baselineSession.map { try BIDSLabel.normalized($0, kind: "session") }
        var visits = try collectVisits(dataset: dataset, output: output)
        if !options.allowMixedParameters { try GroupConsistency.check(visits, output: output) }
        var warnings: [String] = []
        let baselines = Baselines.choose(visits, requested: baselineLabel, warnings: &warnings)
        Baselines.assignMonths(&visits, baselines: baselines)
        if let outcome = options.clinicalOutcome, !clinicalColumns(visits).contains(outcome) {
            throw TrialError.badTable(file: dataset.path, reason: "no clinical column '\(outcome)' for --clinical-outcome "
                                      + "(columns: \(clinicalColumns(visits).joined(separator: ", ")))")
        }
        let clinical = ClinicalColumns.tableNames(clinicalColumns(visits), warnings: &warnings)
        let participantColumns = ClinicalColumns.tableNames(dataset.participantColumns, skipping: [], warnings: &warnings)
        let descriptions = ClinicalColumns.describe(dataset.clinicalSources, warnings: &warnings)
        var seen = Set<String>()
        return GroupData(visits: visits, baselines: baselines, clinical: clinical, participantColumns: participantColumns,
                         descriptions: descriptions, mixedParameters: options.allowMixedParameters,
                         warnings: warnings.filter { seen.insert($0).inserted },
                         catalogue: visits.first?.catalogue ?? MetricCatalogue())
    }

    // MARK: - Reading the visit folders

    /// Every discovered visit with the records of each modality found in `output`: a
    /// modality processed in an earlier run counts even when this discovery did not find its
    /// files (the DWI and the BOLD may come from separate runs).
    static func collectVisits(dataset: Dataset, output: String) throws -> [GroupVisit] {
        var result: [GroupVisit] = []
        var rankInParticipant: [String: Int] = [:]
        let catalogue = MetricCatalogue()
        for visit in Dataset.sortVisits(dataset.visits) {
            let rank = rankInParticipant[visit.participant, default: 0]
            rankInParticipant[visit.participant] = rank + 1
            let folder = try SafePath.join(output, visit.relativeFolder)
            var entry = GroupVisit(visit: visit, sessionOrder: rank, status: .ok, error: nil, scans: [], metrics: [],
                                   catalogue: catalogue)
            var errors: [String] = []
            var metrics: [MetricRow] = []
            for modality in Modality.allCases {
                var unit = visit
                unit.modality = modality
                guard let scan = try readScan(unit, folder: folder, expected: visit.modalities.contains(modality)) else { continue }
                entry.scans.append((modality, scan.status))
                metrics += scan.metrics
                if scan.status == .ok, let record = scan.record {
                    entry.parameters[modality] = ParameterSet(record.parameters)
                    if modality == .dwi { entry.dwiShells = dwiShells(record, folder: folder) }
                }
                if let error = scan.error { errors.append("\(modality.rawValue): \(error)") }
            }
            entry.metrics = metrics.sorted(by: metricOrder)
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

    /// The change rows of every follow-up visit, in visit order: per modality, as the
    /// metrics of a visit are those of its modalities that are ok, so a failed DWI leaves the
    /// functional changes in place, and the other way round. Each baseline is found once
    /// (a dictionary, not a search of the visits per visit).
    static func changeRows(_ data: GroupData) -> [VisitChanges] {
        var baselineIndex: [String: Int] = [:]
        for (i, visit) in data.visits.enumerated() {
            guard let session = visit.visit.session, let baseline = data.baselines[visit.visit.participant],
                  baseline.session == session, baselineIndex[visit.visit.participant] == nil else { continue }
            baselineIndex[visit.visit.participant] = i
        }
        var result: [VisitChanges] = []
        for (i, visit) in data.visits.enumerated() where !visit.hasNoMetrics {
            guard let session = visit.visit.session, let baseline = data.baselines[visit.visit.participant] else { continue }
            if baseline.session == session { continue }
            let b = baselineIndex[visit.visit.participant]
            // Change is measured on the session's values, not on single runs, atlas by atlas:
            // an id with no run stands for (modality, region, metric, atlas).
            var byKey: [UInt32: Double] = [:]
            if let b {
                let other = data.visits[b]
                for (id, value) in zip(other.metricIDs, other.metricValues) where other.catalogue.keys[Int(id)].run == nil {
                    byKey[other.catalogue === visit.catalogue ? id : visit.catalogue.id(other.catalogue.row(id, value: value))] = value
                }
            }
            var changes = VisitChanges(visit: i, baseline: b, sessionID: "ses-" + session, baselineSessionID: baseline.sessionID)
            for (id, value) in zip(visit.metricIDs, visit.metricValues) where visit.catalogue.keys[Int(id)].run == nil {
                let start = byKey[id]
                changes.ids.append(id)
                changes.values.append(value)
                changes.baselines.append(start ?? .nan)
                changes.found.append(start != nil)
            }
            result.append(changes)
        }
        return result
    }

    // MARK: - Tables

    static let metricsLongColumns = ["participant_id", "session_id", "modality", "region", "metric", "value", "run", "atlas", "kind"]

    /// Writes metrics_long.tsv row by row (see ``runGroup(dataset:output:options:)``).
    static func writeMetricsLong(_ data: GroupData, to path: String) throws {
        let pieces = data.catalogue.textPieces()
        try TSVStream.write(to: path, columns: metricsLongColumns + (data.mixedParameters ? ["parameters_id"] : [])) { out in
            for visit in data.visits {
                precondition(visit.catalogue === data.catalogue, "the visits of a group stage share one catalogue")
                let prefix = visit.visit.participantID + "\t" + (visit.visit.sessionID ?? "n/a") + "\t"
                for (id, value) in zip(visit.metricIDs, visit.metricValues) {
                    let k = Int(id)
                    var line = prefix + pieces.before[k] + tsvCell(value) + pieces.after[k]
                    if data.mixedParameters { line += "\t" + (visit.parametersID(of: data.catalogue.keys[k].modality) ?? "n/a") }
                    out.line(line)
                }
                try out.flushIfFull()
            }
        }
    }

    /// Clinical column names over all visits, in order of first appearance.
    static func clinicalColumns(_ visits: [GroupVisit]) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        for visit in visits { for (name, _) in visit.visit.clinical where seen.insert(name).inserted { names.append(name) } }
        return names
    }

    static func visitsTable(_ data: GroupData) -> TSVTable {
        var table = TSVTable(columns: ["participant_id", "session_id", "session_order", "visit_month"] + data.clinical.map(\.name)
                             + ["status", "error"] + Modality.allCases.map { $0.rawValue + "_status" } + ["dwi_shells"]
                             + Modality.allCases.map { $0.rawValue + "_parameters" })
        for visit in data.visits {
            let cells = data.clinical.map { cellText(GroupData.clinicalCell(visit, $0.source)) }
            table.append([visit.visit.participantID, visit.visit.sessionID ?? "n/a", String(visit.sessionOrder), tsvCell(visit.visitMonth)]
                         + cells + [visit.status.rawValue, visit.error.map(cellText) ?? "n/a"]
                         + Modality.allCases.map { visit.status(of: $0)?.rawValue ?? "n/a" } + [visit.dwiShellsText ?? "n/a"]
                         + Modality.allCases.map { visit.parameters[$0]?.id ?? "n/a" })
        }
        return table
    }

    static func changeColumns(mixedParameters: Bool) -> [String] {
        ["participant_id", "session_id", "baseline_session_id", "modality", "region", "metric", "baseline_value", "value",
         "delta", "percent_change", "atlas", "kind"] + (mixedParameters ? ["parameters_id", "baseline_parameters_id"] : [])
    }

    /// Writes change_from_baseline.tsv row by row (see ``runGroup(dataset:output:options:)``).
    static func writeChangeTable(_ changes: [VisitChanges], data: GroupData, to path: String) throws {
        let pieces = data.catalogue.textPieces()
        let mixed = data.mixedParameters
        try TSVStream.write(to: path, columns: changeColumns(mixedParameters: mixed)) { out in
            for visitChanges in changes {
                let visit = data.visits[visitChanges.visit]
                let baselineVisit = visitChanges.baseline.map { data.visits[$0] }
                let prefix = visit.visit.participantID + "\t" + visitChanges.sessionID + "\t"
                    + (visitChanges.baselineSessionID ?? "n/a") + "\t"
                for j in visitChanges.ids.indices {
                    let k = Int(visitChanges.ids[j])
                    let value = visitChanges.values[j], baseline = visitChanges.baselines[j]
                    let delta = ChangeRow.delta(value: value, baseline: baseline)
                    var line = prefix + pieces.before[k] + tsvCell(baseline) + "\t" + tsvCell(value) + "\t" + tsvCell(delta) + "\t"
                        + tsvCell(ChangeRow.percentChange(delta: delta, baseline: baseline)) + pieces.changeAfter[k]
                    if mixed {
                        let modality = data.catalogue.keys[k].modality
                        let own = visit.parametersID(of: modality)
                        let theirs = visitChanges.found[j] ? baselineVisit?.parametersID(of: modality) : nil
                        line += "\t" + (own ?? "n/a") + "\t" + (theirs ?? "n/a")
                    }
                    out.line(line)
                }
                try out.flushIfFull()
            }
        }
    }

    /// Text made safe for a TSV cell: tabs and line breaks become spaces, empty becomes `n/a`.
    static func cellText(_ text: String) -> String {
        let cleaned = String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
        return cleaned.isEmpty ? "n/a" : cleaned
    }
}
