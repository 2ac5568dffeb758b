import Foundation
import Tabular

/// A study's visits and clinical tables, found from a BIDS folder or a manifest TSV.
///
/// Discovery only lists files and reads the small text tables; it never opens an image.
public struct Dataset: Sendable {
    /// Where the visits came from.
    public enum Source: Sendable, Equatable {
        /// A BIDS (or fMRIPrep derivatives) folder.
        case bids(root: String)
        /// A manifest TSV; paths in it are relative to its folder.
        case manifest(file: String)
    }

    public var source: Source
    /// The visits, sorted by participant (natural order) then session (chronological order,
    /// see ``sessionOrder``).
    public var visits: [VisitInput]
    /// Column names of participants.tsv (without `participant_id`), in file order.
    public var participantColumns: [String]
    /// participants.tsv rows by participant label (without `sub-`).
    public var participantClinical: [String: [(String, String)]]
    /// Remarks about things discovery skipped (e.g. a second DWI run in one visit).
    public var warnings: [String]
    /// The derivative datasets searched for preprocessed images.
    public var derivativeRoots: [String] = []
    /// The clinical tables the visits' clinical columns came from, in reading order.
    public var clinicalSources: [ClinicalSource] = []

    /// The input path as the user gave it (folder or manifest), for messages.
    public var path: String {
        switch source {
        case .bids(let root): root
        case .manifest(let file): file
        }
    }

    /// Finds the visits of a dataset.
    ///
    /// - Parameters:
    ///   - path: a BIDS folder (`sub-*/ses-*/{dwi,func}` or `sub-*/{dwi,func}`), or a
    ///     manifest `.tsv` file.
    ///   - participantLabels: keep only these participants (`01` or `sub-01`); empty keeps all.
    ///   - sessionLabels: keep only these sessions (`m01` or `ses-m01`); empty keeps all.
    /// - Throws: ``TrialError`` for invalid labels, labels not in the dataset, tables without
    ///   their key column, manifest paths that leave the manifest's folder, or no visits.
    public static func discover(_ path: String, participantLabels: [String] = [], sessionLabels: [String] = []) throws -> Dataset {
        var options = DiscoveryOptions()
        options.participantLabels = participantLabels
        options.sessionLabels = sessionLabels
        options.derivatives = []
        return try discover(path, options: options)
    }

    /// The dataset's own visits (raw BIDS folders or manifest rows), before derivatives and
    /// label filters.
    static func discoverOwnVisits(_ path: String, options: DiscoveryOptions) throws -> Dataset {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw TrialError.notADataset(path: path, reason: "no such file or folder")
        }
        if isFolder.boolValue { return try discoverBIDS(root: path, options: options) }
        if path.hasSuffix(".tsv") { return try discoverManifest(file: path) }
        throw TrialError.notADataset(path: path, reason: "neither a BIDS folder nor a manifest .tsv file")
    }

    /// Keeps the visits of the wanted participants and sessions, in order.
    /// - Throws: for invalid labels, labels not in the dataset, or no visit left.
    mutating func applyLabelFilters(_ options: DiscoveryOptions) throws {
        let wantedParticipants = try options.participantLabels.map { try BIDSLabel.normalized($0, kind: "participant") }
        let wantedSessions = try options.sessionLabels.map { try BIDSLabel.normalized($0, kind: "session") }
        for label in wantedParticipants where !visits.contains(where: { $0.participant == label }) {
            throw TrialError.labelNotFound(kind: "participant", label: label, dataset: path)
        }
        for label in wantedSessions where !visits.contains(where: { $0.session == label }) {
            throw TrialError.labelNotFound(kind: "session", label: label, dataset: path)
        }
        visits.removeAll { visit in
            (!wantedParticipants.isEmpty && !wantedParticipants.contains(visit.participant))
                || (!wantedSessions.isEmpty && !wantedSessions.contains(visit.session ?? ""))
        }
        // Scheduled visits without images are kept for the group tables, but a dataset of
        // nothing else has nothing to process.
        guard visits.contains(where: { !$0.modalities.isEmpty }) else { throw TrialError.noVisits(dataset: path) }
        visits = Dataset.sortVisits(visits)
    }

    // MARK: - Ordering

    /// Visits sorted by participant (natural order), then by ``sessionOrder(of:)``.
    static func sortVisits(_ visits: [VisitInput]) -> [VisitInput] {
        let byParticipant = Dictionary(grouping: visits, by: \.participant)
        return byParticipant.keys.sorted(by: BIDSLabel.naturalLess).flatMap { sessionOrder(of: byParticipant[$0]!) }
    }

    /// One participant's visits in chronological order: by `visit_month` when every
    /// session has one (``ClinicalTime/month(_:)``: a number or a baseline token), else by
    /// `acq_time` (``ClinicalTime/seconds(_:)``) when every session has one, else by
    /// `visit_month` where any has one (sessions without it last), else by `acq_time` where
    /// any has one, else by session label in natural order (`m1` < `m3` < `m12`). The month
    /// comes first because a scheduled visit that was missed has a month but no acquisition
    /// time. Ties fall back to `acq_time`, then to the label order, so the result never
    /// depends on the input order.
    public static func sessionOrder(of visits: [VisitInput]) -> [VisitInput] {
        let labelSorted = visits.sorted { BIDSLabel.naturalLess($0.session ?? "", $1.session ?? "") }
        let months = labelSorted.map { $0.clinicalValue("visit_month").flatMap(ClinicalTime.month) }
        let times = labelSorted.map { $0.clinicalValue("acq_time").flatMap(ClinicalTime.seconds) }
        func sorted(_ primary: [Double?], _ secondary: [Double?]) -> [VisitInput] {
            func less(_ x: Double?, _ y: Double?) -> Bool? {
                switch (x, y) {
                case let (a?, b?) where a != b: return a < b
                case (.some, .none): return true
                case (.none, .some): return false
                default: return nil
                }
            }
            return labelSorted.indices.sorted { i, j in
                less(primary[i], primary[j]) ?? less(secondary[i], secondary[j]) ?? (i < j)
            }.map { labelSorted[$0] }
        }
        let allMonths = !months.contains { $0 == nil }, allTimes = !times.contains { $0 == nil }
        if allMonths { return sorted(months, times) }
        if allTimes { return sorted(times, months) }
        if months.contains(where: { $0 != nil }) { return sorted(months, times) }
        return sorted(times, months)
    }

    // MARK: - BIDS

    static func discoverBIDS(root: String, options: DiscoveryOptions) throws -> Dataset {
        var warnings: [String] = []
        let (participantColumns, participantRows) = try readParticipantsTable(folder: root)
        var sources = participantsSource(folder: root, columns: participantColumns)
        var visits: [VisitInput] = []
        var overlapping = Set<String>()
        for subject in try sortedEntries(root) where subject.hasPrefix("sub-") {
            let subjectFolder = root + "/" + subject
            guard isFolder(subjectFolder) else { continue }
            let participant = String(subject.dropFirst(4))
            guard BIDSLabel.isValid(participant) else {
                warnings.append("\(subjectFolder): skipped: '\(participant)' is not a BIDS label")
                continue
            }
            let sessionRows = try readSessionsTable(folder: subjectFolder, participant: participant)
            if let file = sessionRows.file {
                sources.append(ClinicalSource(file: file, level: .session, columns: sessionRows.columns,
                                              sidecars: [sidecar(of: file), root + "/sessions.json"]))
                overlapping.formUnion(sessionRows.columns.filter(participantColumns.contains))
            }
            let participantPart = participantRows[participant] ?? participantColumns.map { ($0, "n/a") }
            let sessionFolders = try sortedEntries(subjectFolder).filter { $0.hasPrefix("ses-") && isFolder(subjectFolder + "/" + $0) }
            if sessionFolders.isEmpty, var visit = try visitFiles(folder: subjectFolder, participant: participant, session: nil,
                                                                  options: options, warnings: &warnings) {
                visit.clinical = mergeClinical(session: [], participant: participantPart)
                visits.append(visit)
                continue
            }
            var found = Set<String>()
            for sessionFolder in sessionFolders {
                let session = String(sessionFolder.dropFirst(4))
                guard BIDSLabel.isValid(session) else {
                    warnings.append("\(subjectFolder)/\(sessionFolder): skipped: '\(session)' is not a BIDS label")
                    continue
                }
                let folder = subjectFolder + "/" + sessionFolder
                if var visit = try visitFiles(folder: folder, participant: participant, session: session, options: options, warnings: &warnings) {
                    let sessionPart = sessionRows.rows[session] ?? sessionRows.columns.map { ($0, "n/a") }
                    visit.clinical = mergeClinical(session: sessionPart, participant: participantPart)
                    visits.append(visit)
                    found.insert(session)
                }
            }
            // Every scheduled visit of sessions.tsv is a visit, images or not: one without any
            // is listed as missing by the group stage, its clinical data kept.
            for session in sessionRows.order where !found.contains(session) {
                visits.append(VisitInput(participant: participant, session: session,
                                         clinical: mergeClinical(session: sessionRows.rows[session]!, participant: participantPart)))
            }
        }
        for name in overlapping.sorted() {
            warnings.append("column '\(name)' is in participants.tsv and in sessions.tsv: visits.tsv has the sessions.tsv value, the database's participants table the participants.tsv value")
        }
        var dataset = Dataset(source: .bids(root: root), visits: visits, participantColumns: participantColumns,
                              participantClinical: participantRows, warnings: warnings)
        dataset.clinicalSources = sources
        return dataset
    }

    /// Sessions columns first, then participants columns not already present (the
    /// session's value wins; discovery warns once per such column). Names are kept as
    /// written: the group stage renames those that clash with its own
    /// (``ClinicalColumns/tableNames(_:skipping:warnings:)``).
    static func mergeClinical(session: [(String, String)], participant: [(String, String)]) -> [(String, String)] {
        var out: [(String, String)] = []
        var seen = Set<String>()
        for (name, value) in session + participant where seen.insert(name).inserted {
            out.append((name, value))
        }
        return out
    }

    /// The files of one visit folder, or nil when it has neither DWI nor BOLD.
    static func visitFiles(folder: String, participant: String, session: String?, options: DiscoveryOptions,
                           warnings: inout [String]) throws -> VisitInput? {
        let scan = try scanVisitFolder(folder, options: options, warnings: &warnings)
        guard !scan.isEmpty else { return nil }
        var visit = VisitInput(participant: participant, session: session)
        visit.merge(scan, keeping: [])
        return visit
    }

    /// The folder's participants.tsv as a clinical source (none when absent).
    static func participantsSource(folder: String, columns: [String]) -> [ClinicalSource] {
        guard FileManager.default.fileExists(atPath: folder + "/participants.tsv") else { return [] }
        return [ClinicalSource(file: folder + "/participants.tsv", level: .participant, columns: columns,
                               sidecars: [folder + "/participants.json"])]
    }

    /// participants.tsv of a folder: its columns (without `participant_id`) and its rows by
    /// label; none when absent.
    /// - Throws: for a table without `participant_id`, an invalid label, or a participant on
    ///   several lines (naming them).
    static func readParticipantsTable(folder: String) throws -> ([String], [String: [(String, String)]]) {
        let path = folder + "/participants.tsv"
        guard FileManager.default.fileExists(atPath: path) else { return ([], [:]) }
        let table = try readTable(path)
        guard let key = table.index(of: "participant_id") else { throw TrialError.missingColumn(file: path, column: "participant_id") }
        let columns = table.columns.enumerated().filter { $0.offset != key }
        var rows: [String: [(String, String)]] = [:]
        var labels: [String] = []
        for (line, row) in table.rows.enumerated() {
            let label = row[key].hasPrefix("sub-") ? String(row[key].dropFirst(4)) : row[key]
            guard BIDSLabel.isValid(label) else {
                throw TrialError.badTable(file: path, reason: "line \(line + 2): participant_id '\(row[key])' is not a BIDS label")
            }
            labels.append("sub-" + label)
            rows[label] = columns.map { ($0.element, row[$0.offset]) }
        }
        try checkUnique(labels, file: path, what: "participant")
        return (columns.map(\.element), rows)
    }

    /// A participant's sessions.tsv: its columns (without `session_id`), its rows by label,
    /// the labels in file order, and its path (nil when absent).
    /// - Throws: for a table without `session_id`, an invalid label, a session on several
    ///   lines (naming them), or an unreadable `acq_time` or `visit_month`.
    static func readSessionsTable(folder: String, participant: String) throws
        -> (columns: [String], rows: [String: [(String, String)]], order: [String], file: String?) {
        let path = folder + "/sub-\(participant)_sessions.tsv"
        guard FileManager.default.fileExists(atPath: path) else { return ([], [:], [], nil) }
        let table = try readTable(path)
        guard let key = table.index(of: "session_id") else { throw TrialError.missingColumn(file: path, column: "session_id") }
        let columns = table.columns.enumerated().filter { $0.offset != key }
        var rows: [String: [(String, String)]] = [:]
        var order: [String] = []
        for (line, row) in table.rows.enumerated() {
            let label = row[key].hasPrefix("ses-") ? String(row[key].dropFirst(4)) : row[key]
            guard BIDSLabel.isValid(label) else {
                throw TrialError.badTable(file: path, reason: "line \(line + 2): session_id '\(row[key])' is not a BIDS label")
            }
            order.append(label)
            rows[label] = columns.map { ($0.element, row[$0.offset]) }
        }
        try checkUnique(order.map { "ses-" + $0 }, file: path, what: "session")
        try ClinicalTime.check(table, file: path)
        return (columns.map(\.element), rows, order, path)
    }

    static func readTable(_ path: String) throws -> TSVTable {
        do { return try TSVTable.read(path) } catch let error as TableError {
            throw TrialError.badTable(file: error.source, reason: error.reason)
        }
    }

    // MARK: - Manifest

    /// Manifest columns that hold paths (relative to the manifest's folder).
    static let manifestPathColumns = ["dwi", "bval", "bvec", "bold", "confounds", "bold_sidecar", "brain_mask",
                                      "dwi_mask", "lesion_mask", "dwi_atlas", "func_atlas"]

    /// Reads a manifest: `participant_id` (required), `session_id` (optional column; when
    /// absent every participant has one visit), the path columns (empty or `n/a` when
    /// absent), and any other column as clinical data.
    ///
    /// A path that resolves (symbolic links followed) outside the manifest's folder makes
    /// the whole manifest an error: a manifest that points elsewhere is a mistake to fix,
    /// not a visit to skip.
    static func discoverManifest(file: String) throws -> Dataset {
        let table = try readTable(file)
        guard let participantKey = table.index(of: "participant_id") else { throw TrialError.missingColumn(file: file, column: "participant_id") }
        let sessionKey = table.index(of: "session_id")
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
        let realFolder = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        let clinicalColumns = table.columns.enumerated().filter { !manifestPathColumns.contains($0.element) }
        try ClinicalTime.check(table, file: file)
        let (participantColumns, participantRows) = try readParticipantsTable(folder: folder)
        var visits: [VisitInput] = []
        var seen = Set<String>()
        for (index, row) in table.rows.enumerated() {
            let line = index + 2
            let participant: String
            do { participant = try BIDSLabel.normalized(row[participantKey], kind: "participant") } catch {
                throw TrialError.badTable(file: file, reason: "line \(line): participant_id '\(row[participantKey])' is not a BIDS label")
            }
            var session: String?
            if let sessionKey, row[sessionKey] != "n/a", !row[sessionKey].isEmpty {
                do { session = try BIDSLabel.normalized(row[sessionKey], kind: "session") } catch {
                    throw TrialError.badTable(file: file, reason: "line \(line): session_id '\(row[sessionKey])' is not a BIDS label")
                }
            }
            guard seen.insert(participant + "/" + (session ?? "")).inserted else {
                throw TrialError.badTable(file: file, reason: "line \(line): visit sub-\(participant)\(session.map { " ses-\($0)" } ?? "") listed twice")
            }
            var paths: [String: String] = [:]
            for column in manifestPathColumns {
                guard let key = table.index(of: column) else { continue }
                let cell = row[key]
                if cell.isEmpty || cell == "n/a" { continue }
                let resolved = URL(fileURLWithPath: cell, relativeTo: URL(fileURLWithPath: folder, isDirectory: true))
                    .standardizedFileURL
                guard SafePath.isInside(resolved.path, root: folder),
                      SafePath.isInside(resolved.resolvingSymlinksInPath().path, root: realFolder) else {
                    throw TrialError.pathEscapes(file: file, line: line, column: column, path: cell)
                }
                paths[column] = resolved.path
            }
            guard paths["dwi"] != nil || paths["bold"] != nil else {
                throw TrialError.badTable(file: file, reason: "line \(line): neither 'dwi' nor 'bold' is given")
            }
            let extra = clinicalColumns.filter { $0.offset != participantKey && $0.offset != sessionKey }.map { ($0.element, row[$0.offset]) }
            let participantPart = participantRows[participant] ?? participantColumns.map { ($0, "n/a") }
            var visit = VisitInput(participant: participant, session: session, dwi: paths["dwi"], bval: paths["bval"],
                                   bvec: paths["bvec"], bold: paths["bold"], confounds: paths["confounds"],
                                   boldSidecar: paths["bold_sidecar"], brainMask: paths["brain_mask"],
                                   clinical: mergeClinical(session: extra, participant: participantPart))
            visit.dwiMask = paths["dwi_mask"]
            visit.lesionMask = paths["lesion_mask"]
            visit.dwiAtlas = paths["dwi_atlas"]
            if !visit.boldRuns.isEmpty { visit.boldRuns[0].atlas = paths["func_atlas"] }
            visits.append(visit)
        }
        var dataset = Dataset(source: .manifest(file: file), visits: visits, participantColumns: participantColumns,
                              participantClinical: participantRows, warnings: [])
        dataset.clinicalSources = participantsSource(folder: folder, columns: participantColumns)
        dataset.clinicalSources.append(ClinicalSource(
            file: file, level: .session,
            columns: clinicalColumns.filter { $0.offset != participantKey && $0.offset != sessionKey }.map(\.element),
            sidecars: [sidecar(of: file)]))
        return dataset
    }

    // MARK: - File system

    static func sortedEntries(_ folder: String) throws -> [String] {
        do { return try FileManager.default.contentsOfDirectory(atPath: folder).sorted() } catch {
            throw TrialError.io(path: folder, reason: "cannot list the folder")
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }
}

/// A BIDS file name split into entities (`key-value` pairs), suffix and extension.
struct BIDSName: Equatable {
    let fileName: String
    /// The name without its extension.
    let stem: String
    let entities: [(String, String)]
    let suffix: String
    let fileExtension: String

    static func == (a: BIDSName, b: BIDSName) -> Bool { a.fileName == b.fileName }

    init?(_ fileName: String) {
        guard !fileName.hasPrefix(".") else { return nil }
        let extensions = [".nii.gz", ".nii", ".tsv", ".json", ".bval", ".bvec"]
        guard let ext = extensions.first(where: { fileName.hasSuffix($0) }) else { return nil }
        let stem = String(fileName.dropLast(ext.count))
        var parts = stem.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let suffix = parts.popLast(), !suffix.contains("-") else { return nil }
        var entities: [(String, String)] = []
        for part in parts {
            guard let dash = part.firstIndex(of: "-") else { return nil }
            entities.append((String(part[..<dash]), String(part[part.index(after: dash)...])))
        }
        self.fileName = fileName
        self.stem = stem
        self.entities = entities
        self.suffix = suffix
        self.fileExtension = ext
    }

    var isImage: Bool { fileExtension == ".nii.gz" || fileExtension == ".nii" }

    /// fMRIPrep's `*_desc-confounds_timeseries.tsv` (or the older `_desc-confounds_regressors.tsv`).
    var isConfounds: Bool {
        fileExtension == ".tsv" && entity("desc") == "confounds" && (suffix == "timeseries" || suffix == "regressors")
    }

    func entity(_ key: String) -> String? { entities.first { $0.0 == key }?.1 }

    func entitiesExcept(_ keys: Set<String>) -> [String] {
        entities.filter { !keys.contains($0.0) }.map { "\($0.0)-\($0.1)" }
    }

    /// The entities that name the acquisition (sub, ses, task, acq, run, echo, ...), without
    /// those fMRIPrep adds for outputs (space, res, den, desc): what a BOLD series and its
    /// confounds file share.
    var coreEntities: [String] { entitiesExcept(["space", "res", "den", "desc"]) }
}
