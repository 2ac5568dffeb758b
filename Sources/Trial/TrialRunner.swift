import Pipelines
import AtomicFiles
import FileSystem
import Foundation
import SlabParallel
import Synchronization
import Tabular

/// How one visit ended in a participant-level run.
public struct VisitOutcome: Sendable {
    public var visit: VisitInput
    /// `ok` or `failed`.
    public var status: VisitStatus
    /// True when the visit was already complete and up to date, so nothing was run.
    public var skipped: Bool
    public var error: String?
    /// Wall time spent on the visit in this run (hashing included).
    public var seconds: Double
}

/// What a participant-level run did.
public struct ParticipantRunSummary: Sendable {
    /// One outcome per visit, in the dataset's visit order (not the order they finished).
    public var outcomes: [VisitOutcome]
    public var failed: [VisitOutcome] { outcomes.filter { $0.status != .ok } }
    public var processedCount: Int { outcomes.filter { $0.status == .ok && !$0.skipped }.count }
    public var skippedCount: Int { outcomes.filter(\.skipped).count }
    /// False when any visit failed: the command line then exits non-zero.
    public var succeeded: Bool { failed.isEmpty }

    /// Lines for the end of a run: the counts (of scans: each modality of a visit is processed
    /// on its own), then each failed scan and its message.
    public var report: String {
        let visits = Set(outcomes.map(\.visit.filePrefix)).count
        var text = "nimetrics: \(outcomes.count) scans of \(visits) visits: \(processedCount) processed, \(skippedCount) up to date, \(failed.count) failed\n"
        for outcome in failed { text += "nimetrics: failed: \(outcome.visit.unitName): \(outcome.error ?? "unknown error")\n" }
        return text
    }
}

/// The cohort layer: runs the per-visit work over a dataset, then builds the group tables.
public enum TrialRunner {
    /// Version written into records when the caller does not give one.
    public static let defaultVersion = NimetricsVersion.string

    /// Processes every visit of `dataset` into `output`.
    ///
    /// For each visit, in `OUTPUT/sub-XX[/ses-YY]/`: the scan's lock is taken (waiting for
    /// another run processing it, see ``OutputLocks``), stale temporaries are removed, the
    /// inputs are hashed (SHA-256), and the visit is skipped if its `_visit.json` says
    /// `ok`, its input hashes and parameters are unchanged and all its listed outputs
    /// exist. Otherwise the old record is deleted, the processor runs, the metrics table is
    /// written, and the record is written last, atomically. A failure (thrown by the
    /// processor or met while hashing) is recorded as status `failed` and the other visits
    /// go on. A run killed at any point leaves either a complete record or none, so a
    /// restart finishes with the results an uninterrupted run gives.
    ///
    /// - Parameters:
    ///   - dataset: from ``Dataset/discover(_:participantLabels:sessionLabels:)``.
    ///   - output: the output folder (created if needed); gets `dataset_description.json`.
    ///     It may not be, lie inside or hold an input folder (``OutputGuard``); a visit
    ///     folder holding a symbolic link fails that visit, and nothing is written through it.
    ///   - processor: the per-visit work.
    ///   - jobs: visits run at once (default: the number of cores).
    ///   - threads: threads per visit (default: cores / jobs, at least 1).
    ///   - version: the tool version written into the records.
    ///   - progress: progress reporting (default: none).
    ///   - visitFinished: called once per visit when its last scan is done (processed,
    ///     skipped or failed), on the worker thread that finished it (the visit report).
    /// - Returns: the outcome of every visit; `succeeded` is false if any failed.
    /// - Throws: ``TrialError`` only for problems with the output folder itself (among them
    ///   an output folder that overlaps an input), before any visit runs.
    public static func runParticipants(dataset: Dataset, output: String, processor: any VisitProcessor,
                                       jobs: Int? = nil, threads: Int? = nil, version: String = defaultVersion,
                                       progress: any ProgressReporter = SilentProgress(),
                                       visitFinished: (@Sendable (VisitInput) -> Void)? = nil) throws -> ParticipantRunSummary {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let jobCount = max(1, min(jobs ?? cores, dataset.visits.count))
        let threadCount = max(1, threads ?? cores / jobCount)
        // Before anything is created: an output folder that is, lies in or holds an input is refused.
        try OutputGuard.checkSeparation(output: output, inputs: dataset.inputRoots)
        try createFolder(output)
        do {
            // Other runs may be writing into the same folder: under the lock, a temporary at
            // the top level belongs to a run that is gone (see ``OutputLocks``).
            let lock = try OutputLocks.outputFolder(output)
            defer { lock.release() }
            AtomicFile.removeStaleTemporaries(in: output)
            try writeDatasetDescription(output: output, version: version, inputs: dataset.inputRoots)
        }

        let visits = dataset.visits.flatMap(\.units)
        let state = RunState(units: visits, progress: progress)
        progress.runStarted(total: visits.count)
        let context = VisitContext(output: output, datasetRoot: datasetFolder(dataset), processor: processor,
                                   threads: threadCount, version: version)
        // A bounded pool: `jobCount` workers, each on a thread of its own, pulling the next
        // visit until none is left, so `jobs` really is the concurrency.
        let workers = (0..<jobCount).map { _ in
            BackgroundWork {
                while let index = state.next() {
                    state.started(visits[index])
                    let outcome = runVisit(visits[index], context: context)
                    if state.finished(outcome, at: index) { visitFinished?(visits[index]) }
                }
            }
        }
        for worker in workers { worker.waitIgnoringErrors() }
        let summary = ParticipantRunSummary(outcomes: state.outcomes())
        progress.runFinished(summary)
        return summary
    }

    // MARK: - One visit

    struct VisitContext: Sendable {
        let output: String
        let datasetRoot: String
        let processor: any VisitProcessor
        let threads: Int
        let version: String
    }

    static func runVisit(_ visit: VisitInput, context: VisitContext) -> VisitOutcome {
        let clock = Date()
        let started = timestamp(clock)
        let fingerprint = context.processor.parametersFingerprint(for: visit.modality)
        var record = VisitRecord(participantID: visit.participantID, sessionID: visit.sessionID, modality: visit.modality,
                                 status: .failed, error: nil,
                                 started: started, finished: started, durationSeconds: 0, version: context.version,
                                 parameters: VisitRecord.parameters(fromFingerprint: fingerprint),
                                 inputs: [], outputs: [], warnings: [])
        func outcome(_ status: VisitStatus, skipped: Bool = false, error: String? = nil) -> VisitOutcome {
            VisitOutcome(visit: visit, status: status, skipped: skipped, error: error, seconds: Date().timeIntervalSince(clock))
        }
        let folder: String
        let lock: FileLock
        do {
            folder = try SafePath.join(context.output, visit.relativeFolder)
            // Another run may be processing this scan: wait for it (it is then found up to
            // date below). Held until the record is written.
            lock = try OutputLocks.scan(visit, output: context.output)
            // A link anywhere in the visit's folders fails the visit before anything there
            // is removed or written (the pipelines would write through a linked dwi/ or func/).
            try OutputGuard.makeFolder(visit.relativeFolder, in: context.output)
            try OutputGuard.refuseLinks(inside: folder, root: context.output)
        } catch {
            return outcome(.failed, error: oneLine(error))
        }
        defer { lock.release() }
        // Under the scan's lock its temporaries belong to a run that is gone; the other
        // modality of the visit may be running in the same folder, so only this unit's are.
        AtomicFile.removeStaleTemporaries(in: folder, for: [VisitFiles.record(visit), VisitFiles.metrics(visit)])
        if let modality = visit.modality { removeStaleTemporaries(below: folder + "/" + modality.rawValue) }
        let recordPath = folder + "/" + VisitFiles.record(visit)
        let metricsPath = folder + "/" + VisitFiles.metrics(visit)
        do {
            let inputs = try context.processor.inputFiles(for: visit)
            let inBackground = !hasOkRecord(recordPath)
            // A missing or unreadable input fails the visit before anything is done, either way.
            if inBackground { for input in inputs { try SHA256.checkHashable(input.path) } }
            let hashes = inputHashes(inputs, root: context.datasetRoot, whileProcessing: inBackground)
            do {
                // With an ok record the inputs are hashed first: they decide whether the visit
                // is redone at all.
                if !hashes.isInBackground {
                    record.inputs = try hashes.work.wait()
                    if isUpToDate(recordPath: recordPath, folder: folder, expected: record) { return outcome(.ok, skipped: true) }
                }
                // From here the folder is being rewritten: no old `ok` record may survive a kill.
                try removeIfPresent(recordPath)
                try removeIfPresent(metricsPath)
                let result = try context.processor.process(visit: visit, outputFolder: folder, threads: context.threads)
                try MetricsTable.validate(result.metrics, modality: visit.modality)
                try MetricsTable.table(result.metrics).write(to: metricsPath)
                record.outputs = result.files.map { relativeOutput($0, folder: folder) } + [VisitFiles.metrics(visit)]
                record.warnings = result.warnings
                record.status = .ok
            } catch {
                // An input that cannot be hashed is the visit's error, as when it was hashed first.
                _ = try hashes.work.wait()
                throw error
            }
            record.inputs = try hashes.work.wait()
        } catch {
            record.status = .failed
            record.error = oneLine(error)
        }
        let end = Date()
        record.finished = timestamp(end)
        record.durationSeconds = (end.timeIntervalSince(clock) * 1000).rounded() / 1000
        do {
            try record.write(to: recordPath)
        } catch {
            return outcome(.failed, error: (record.error.map { $0 + "; " } ?? "") + "cannot write the visit record: \(oneLine(error))")
        }
        return outcome(record.status, error: record.error)
    }

    /// The SHA-256 of each input file, in order. Without an ok record the visit is processed
    /// whatever the hashes are, so they are computed on a second thread during the processing
    /// (the read of a compressed series leaves a core mostly idle); with one, first.
    static func inputHashes(_ inputs: [(role: String, path: String)], root: String, whileProcessing: Bool)
        -> (work: BackgroundWork<[VisitRecord.Input]>, isInBackground: Bool) {
        let work = BackgroundWork(inBackground: whileProcessing) {
            try inputs.map { VisitRecord.Input(role: $0.role, path: displayPath($0.path, root: root), sha256: try SHA256.hex(ofFile: $0.path)) }
        }
        return (work, whileProcessing)
    }

    /// Whether a record of this unit says ok (only then can the visit be up to date).
    static func hasOkRecord(_ recordPath: String) -> Bool {
        FileManager.default.fileExists(atPath: recordPath) && (try? VisitRecord.read(recordPath))?.status == .ok
    }

    /// True when the stored record says ok for the same inputs and parameters, and every
    /// output it lists is still there.
    static func isUpToDate(recordPath: String, folder: String, expected: VisitRecord) -> Bool {
        guard FileManager.default.fileExists(atPath: recordPath), let stored = try? VisitRecord.read(recordPath),
              stored.status == .ok else { return false }
        let storedInputs = stored.inputs.map { "\($0.role)=\($0.sha256)" }
        let currentInputs = expected.inputs.map { "\($0.role)=\($0.sha256)" }
        guard storedInputs == currentInputs,
              stored.parameters.rendered(pretty: false) == expected.parameters.rendered(pretty: false) else { return false }
        return stored.outputs.allSatisfy { name in
            guard let path = try? SafePath.join(folder, name) else { return false }
            return FileManager.default.fileExists(atPath: path)
        }
    }

    // MARK: - Helpers

    /// The output's BIDS derivative description (BIDS 1.9, "Derived dataset and pipeline
    /// description"): `GeneratedBy` a list of one object for nimetrics (no `CodeURL`: the
    /// project publishes none), `SourceDatasets` one object per input folder, its `URL` a
    /// `file://` URI of the resolved folder and its `DOI` the input's own `DatasetDOI`
    /// when it has one.
    static func writeDatasetDescription(output: String, version: String, inputs: [String]) throws {
        var sources: [JSONValue] = []
        var seen = Set<String>()
        for input in inputs {
            let folder = OutputGuard.resolvedPath(input)
            guard seen.insert(folder).inserted else { continue }
            var source: [(String, JSONValue)] = [("URL", .string(URL(fileURLWithPath: folder, isDirectory: true).absoluteString))]
            // Read only when a regular file (a FIFO would block); an unreadable one gives no DOI.
            if let text = try? FileSystem.readText(folder + "/dataset_description.json"),
               let doi = (try? JSONValue.parse(text))?["DatasetDOI"], case .string(let value) = doi, !value.isEmpty {
                source.append(("DOI", .string(value)))
            }
            sources.append(.object(source))
        }
        let description = JSONValue.object([
            ("Name", .string("nimetrics: DTI and resting-state fMRI metrics")),
            ("BIDSVersion", .string("1.9.0")),
            ("DatasetType", .string("derivative")),
            ("GeneratedBy", .array([.object([
                ("Name", .string("nimetrics")), ("Version", .string(version)),
                ("Description", .string("Diffusion tensor and resting-state fMRI metrics per visit, and the trial's group tables")),
            ])])),
            ("SourceDatasets", .array(sources)),
        ])
        let path = output + "/dataset_description.json"
        try OutputGuard.refuseLink(at: path, root: output)
        do { try AtomicFile.write(description.rendered() + "\n", to: path) } catch {
            throw TrialError.io(path: path, reason: "cannot write: \(oneLine(error))")
        }
    }

    static func createFolder(_ path: String) throws {
        do { try FileSystem.createFolder(path) } catch { throw TrialError.io(path: error.path, reason: error.reason) }
    }

    static func removeIfPresent(_ path: String) throws {
        guard unlink(path) != 0 else { return }
        let code = errno
        guard code == ENOENT else {
            throw TrialError.io(path: path, reason: "cannot remove the previous file: \(FileSystem.errorText(code))")
        }
    }

    /// Removes temporaries left by a killed run in a visit folder and the folders below it.
    static func removeStaleTemporaries(below folder: String) {
        AtomicFile.removeStaleTemporaries(in: folder)
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return }
        while let name = enumerator.nextObject() as? String {
            let path = folder + "/" + name
            if Dataset.isFolder(path) { AtomicFile.removeStaleTemporaries(in: path) }
        }
    }

    /// The folder that input paths in records are written relative to.
    static func datasetFolder(_ dataset: Dataset) -> String {
        switch dataset.source {
        case .bids(let root): URL(fileURLWithPath: root).standardizedFileURL.path
        case .manifest(let file): URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
        }
    }

    static func displayPath(_ path: String, root: String) -> String {
        let standard = URL(fileURLWithPath: path).standardizedFileURL.path
        return standard.hasPrefix(root + "/") ? String(standard.dropFirst(root.count + 1)) : standard
    }

    static func relativeOutput(_ path: String, folder: String) -> String {
        guard path.hasPrefix("/") else { return path }
        let standard = URL(fileURLWithPath: path).standardizedFileURL.path
        let base = URL(fileURLWithPath: folder).standardizedFileURL.path
        return standard.hasPrefix(base + "/") ? String(standard.dropFirst(base.count + 1)) : standard
    }

    /// An error's description cut to its first line.
    static func oneLine(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// The shared state of a run's workers: the next visit to take, the outcomes, and the
/// progress reporter, all behind one lock (so the reporter is called one event at a time).
final class RunState: Sendable {
    private struct Counters {
        var nextIndex = 0
        var done = 0
        var results: [VisitOutcome?]
        /// Scans not yet done, per visit folder.
        var remaining: [String: Int]
    }
    private let counters: Mutex<Counters>
    private let progress: any ProgressReporter
    private let folders: [String]

    init(units: [VisitInput], progress: any ProgressReporter) {
        folders = units.map(\.relativeFolder)
        var remaining: [String: Int] = [:]
        for folder in folders { remaining[folder, default: 0] += 1 }
        counters = Mutex(Counters(results: Array(repeating: nil, count: units.count), remaining: remaining))
        self.progress = progress
    }

    func next() -> Int? {
        counters.withLock { state in
            guard state.nextIndex < state.results.count else { return nil }
            defer { state.nextIndex += 1 }
            return state.nextIndex
        }
    }

    func started(_ visit: VisitInput) {
        counters.withLock { _ in progress.visitStarted(visit) }
    }

    /// Records a scan's outcome; true when it was the last scan of its visit.
    func finished(_ outcome: VisitOutcome, at index: Int) -> Bool {
        counters.withLock { state in
            state.results[index] = outcome
            state.done += 1
            progress.visitFinished(outcome, done: state.done, total: state.results.count)
            state.remaining[folders[index], default: 1] -= 1
            return state.remaining[folders[index]] == 0
        }
    }

    func outcomes() -> [VisitOutcome] { counters.withLock { $0.results.compactMap { $0 } } }
}
