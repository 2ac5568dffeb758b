import AtomicFiles
import FileSystem
import Foundation
import Tabular

/// Where a visit stands.
public enum VisitStatus: String, Sendable, Equatable {
    /// Processed; its metrics table and every listed output exist.
    case ok
    /// The processor (or hashing an input) threw; the record holds the message.
    case failed
    /// Found by the group level: the visit folder exists but its record is absent (a run
    /// was killed mid-visit) or says ok while its metrics table is gone.
    case incomplete
    /// Found by the group level: the visit was never run.
    case missing
}

/// The record `<prefix>_visit.json` that closes a visit folder.
///
/// It is written last and atomically, so its presence with status `ok` means the visit is
/// complete. Keys, in order: `participant_id`, `session_id`, `modality`, `status`, `error`, `started`,
/// `finished`, `duration_s`, `nimetrics_version`, `parameters`, `inputs` (role, path,
/// sha256), `outputs` (relative to the visit folder), `warnings`.
public struct VisitRecord: Sendable {
    public struct Input: Sendable, Equatable {
        public var role: String
        public var path: String
        public var sha256: String
    }

    public var participantID: String
    public var sessionID: String?
    /// The modality the record covers (`dwi` or `func`).
    public var modality: Modality?
    public var status: VisitStatus
    public var error: String?
    /// ISO 8601 UTC timestamps.
    public var started: String
    public var finished: String
    public var durationSeconds: Double
    public var version: String
    /// The processor's parameters (its fingerprint parsed as JSON; a string if it is not JSON).
    public var parameters: JSONValue
    public var inputs: [Input]
    /// Output files relative to the visit folder (the metrics table included).
    public var outputs: [String]
    public var warnings: [String]

    /// The record as JSON.
    public var json: JSONValue {
        .object([
            ("participant_id", .string(participantID)),
            ("session_id", sessionID.map(JSONValue.string) ?? .null),
            ("modality", modality.map { .string($0.rawValue) } ?? .null),
            ("status", .string(status.rawValue)),
            ("error", error.map(JSONValue.string) ?? .null),
            ("started", .string(started)),
            ("finished", .string(finished)),
            ("duration_s", .number(durationSeconds)),
            ("nimetrics_version", .string(version)),
            ("parameters", parameters),
            ("inputs", .array(inputs.map { .object([("role", .string($0.role)), ("path", .string($0.path)), ("sha256", .string($0.sha256))]) })),
            ("outputs", .array(outputs.map(JSONValue.string))),
            ("warnings", .array(warnings.map(JSONValue.string))),
        ])
    }

    /// Writes the record atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(json.rendered() + "\n", to: path, durable: true)
    }

    /// Reads a record.
    /// - Throws: ``TrialError/badRecord(file:reason:)`` when it is not a record.
    public static func read(_ path: String) throws -> VisitRecord {
        let text: String
        do { text = try FileSystem.readText(path) } catch {
            throw TrialError.io(path: path, reason: "cannot read the visit record: \(error.reason)")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { throw TrialError.badRecord(file: path, reason: "not valid JSON") }
        func string(_ key: String) -> String? { if case .string(let s)? = json[key] { return s }; return nil }
        guard let participant = string("participant_id"), let statusText = string("status"),
              let status = VisitStatus(rawValue: statusText) else {
            throw TrialError.badRecord(file: path, reason: "missing or invalid 'participant_id' or 'status'")
        }
        var inputs: [Input] = []
        if case .array(let items)? = json["inputs"] {
            for item in items {
                guard case .string(let role)? = item["role"], case .string(let p)? = item["path"], case .string(let hash)? = item["sha256"] else {
                    throw TrialError.badRecord(file: path, reason: "an entry of 'inputs' lacks role, path or sha256")
                }
                inputs.append(Input(role: role, path: p, sha256: hash))
            }
        }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = json[key] else { return [] }
            return items.compactMap { if case .string(let s) = $0 { return s }; return nil }
        }
        return VisitRecord(participantID: participant, sessionID: string("session_id"),
                           modality: string("modality").flatMap(Modality.init(rawValue:)), status: status, error: string("error"),
                           started: string("started") ?? "", finished: string("finished") ?? "",
                           durationSeconds: json["duration_s"]?.doubleValue ?? .nan, version: string("nimetrics_version") ?? "",
                           parameters: json["parameters"] ?? .null, inputs: inputs, outputs: strings("outputs"), warnings: strings("warnings"))
    }

    /// The parameters fingerprint as stored: parsed JSON when it is JSON, else the text.
    static func parameters(fromFingerprint text: String) -> JSONValue {
        (try? JSONValue.parse(text)) ?? .string(text)
    }
}

/// Names of a visit's own files.
///
/// Each modality has its own: `sub-01_ses-m01_desc-dwi_visit.json` and
/// `sub-01_ses-m01_desc-dwi_metrics.tsv` (and `desc-func`).
enum VisitFiles {
    static func metrics(_ visit: VisitInput) -> String { visit.filePrefix + descEntity(visit.modality) + "_metrics.tsv" }
    static func record(_ visit: VisitInput) -> String { visit.filePrefix + descEntity(visit.modality) + "_visit.json" }

    static func descEntity(_ modality: Modality?) -> String { modality.map { "_desc-" + $0.rawValue } ?? "" }
}

/// The metrics table of a visit: columns modality, region, metric, value (`n/a` for NaN),
/// run (the run label of a per-run value, `n/a` for the session's value), atlas (the atlas's
/// `seg-` name when the visit used several and the value depends on it, else `n/a`).
///
/// Tables written before a column existed (no `run`, no `atlas`) read as `n/a` in it.
enum MetricsTable {
    static let columns = ["modality", "region", "metric", "value", "run", "atlas"]
    /// The columns a table may lack.
    static let optionalColumns: Set<String> = ["run", "atlas"]

    static func table(_ rows: [MetricRow]) -> TSVTable {
        TSVTable(columns: columns, rows: rows.map {
            [$0.modality, $0.region, $0.metric, tsvCell($0.value), $0.run ?? "n/a", $0.atlas ?? "n/a"]
        })
    }

    static func read(_ path: String) throws -> [MetricRow] {
        let table = try Dataset.readTable(path)
        for column in columns where !optionalColumns.contains(column) && table.index(of: column) == nil {
            throw TrialError.missingColumn(file: path, column: column)
        }
        func optional(_ name: String) throws -> [String?] {
            guard table.index(of: name) != nil else { return [String?](repeating: nil, count: table.rows.count) }
            return try table.column(name).map { $0 == "n/a" || $0.isEmpty ? nil : $0 }
        }
        let runs = try optional("run"), atlases = try optional("atlas")
        let modality = try table.column("modality"), region = try table.column("region"), metric = try table.column("metric")
        let values: [Double]
        do { values = try table.numericColumn("value") } catch let error as TableError {
            throw TrialError.badTable(file: error.source, reason: error.reason)
        }
        return (0..<table.rows.count).map { i in
            MetricRow(modality: modality[i], region: region[i], metric: metric[i], value: values[i], run: runs[i], atlas: atlases[i])
        }
    }

    /// Checks what a processor returned: known modality, snake_case metric, a region name
    /// and an atlas name that fit in a TSV cell, and no (modality, region,
    /// metric, run, atlas) twice.
    static func validate(_ rows: [MetricRow], modality: Modality? = nil) throws {
        var seen = Set<String>()
        for row in rows {
            guard row.modality == "dwi" || row.modality == "func" else {
                throw ValidationFailure(message: "metric '\(row.metric)': modality '\(row.modality)' is neither dwi nor func")
            }
            if let modality, row.modality != modality.rawValue {
                throw ValidationFailure(message: "metric '\(row.metric)' of modality '\(row.modality)' from the \(modality.rawValue) processing")
            }
            guard !row.metric.isEmpty, row.metric.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }) else {
                throw ValidationFailure(message: "metric name '\(row.metric)' is not lowercase snake_case")
            }
            guard !row.region.isEmpty, !row.region.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" }), row.region != "n/a" else {
                throw ValidationFailure(message: "metric '\(row.metric)': region name '\(row.region)' cannot be a TSV cell")
            }
            if let atlas = row.atlas, atlas.isEmpty || atlas == "n/a" || atlas.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
                throw ValidationFailure(message: "metric '\(row.metric)': atlas name '\(atlas)' cannot be a TSV cell")
            }
            guard seen.insert("\(row.modality)\t\(row.region)\t\(row.metric)\t\(row.run ?? "")\t\(row.atlas ?? "")").inserted else {
                throw ValidationFailure(message: "metric \(row.modality)/\(row.region)/\(row.metric)\(row.run.map { " of run " + $0 } ?? "")"
                                        + "\(row.atlas.map { " of atlas " + $0 } ?? "") returned twice")
            }
        }
    }

    struct ValidationFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { "the processor returned bad metrics: \(message)" }
    }
}

extension VisitInput {
    /// The unit's record relative to the output folder
    /// (`sub-01/ses-m01/sub-01_ses-m01_desc-dwi_visit.json`): what a workflow engine waits for.
    public var recordPath: String { relativeFolder + "/" + VisitFiles.record(self) }
}
