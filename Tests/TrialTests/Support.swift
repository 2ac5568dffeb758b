import Foundation
@testable import Trial

/// A fresh temporary folder; tests remove it with `removeFolder`.
func makeTemporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "nimetrics-trial-tests-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return URL(fileURLWithPath: path).standardizedFileURL.path
}

func removeFolder(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// Writes a small text file, creating the folders above it.
func put(_ path: String, _ text: String = "") {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try! Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func contents(_ path: String) -> String {
    String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
}

func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

/// Builds a BIDS dataset whose "images" are short placeholder texts (the fake processor
/// never opens them; hashing works on any file).
///
/// - Parameters:
///   - sessions: session labels; empty for a dataset without sessions.
///   - sessionsTSV: the text of `sub-XX_sessions.tsv` for a participant, or nil for none.
func makeBIDS(at root: String, participants: [String] = ["01", "02"], sessions: [String] = ["m00", "m01", "m03"],
              withFunc: Bool = true, participantsTSV: String? = nil,
              sessionsTSV: (String) -> String? = { _ in nil }) {
    put(root + "/dataset_description.json", "{\"Name\": \"test\", \"BIDSVersion\": \"1.9.0\"}\n")
    if let participantsTSV { put(root + "/participants.tsv", participantsTSV) }
    for participant in participants {
        if let text = sessionsTSV(participant) { put(root + "/sub-\(participant)/sub-\(participant)_sessions.tsv", text) }
        let visits: [String?] = sessions.isEmpty ? [nil] : sessions.map { $0 }
        for session in visits {
            let folder = root + "/sub-\(participant)" + (session.map { "/ses-\($0)" } ?? "")
            let prefix = "sub-\(participant)" + (session.map { "_ses-\($0)" } ?? "")
            put(folder + "/dwi/\(prefix)_dwi.nii.gz", "dwi \(prefix)")
            put(folder + "/dwi/\(prefix)_dwi.bval", "0 1000 1000\n")
            put(folder + "/dwi/\(prefix)_dwi.bvec", "1 0 0\n0 1 0\n0 0 1\n")
            if withFunc {
                put(folder + "/func/\(prefix)_task-rest_bold.nii.gz", "bold \(prefix)")
                put(folder + "/func/\(prefix)_task-rest_bold.json", "{\"RepetitionTime\": 2}\n")
                put(folder + "/func/\(prefix)_task-rest_desc-confounds_timeseries.tsv", "framewise_displacement\nn/a\n0.1\n")
            }
        }
    }
}

/// Counts processor calls and how many ran at once.
final class CallLog: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String] = []
    private var running = 0
    private(set) var maxRunning = 0

    func begin(_ name: String) { lock.withLock { names.append(name); running += 1; maxRunning = max(maxRunning, running) } }
    func end() { lock.withLock { running -= 1 } }
    var calls: [String] { lock.withLock { names.sorted() } }
    var count: Int { lock.withLock { names.count } }
    func reset() { lock.withLock { names = [] ; maxRunning = 0 } }
}

struct FakeFailure: Error, CustomStringConvertible {
    let visit: String
    var description: String { "\(visit)_dwi.nii.gz: data truncated: fake failure" }
}

/// A processor that writes one small output file and returns planted metrics.
struct FakeProcessor: VisitProcessor {
    var parametersFingerprint = "{\"fit\": \"wls\", \"b0_threshold\": 50}"
    let log: CallLog
    var failing: Set<String> = []
    var delay: Double = 0
    /// Metrics of a visit; the default plants values that depend on participant and session.
    var metrics: @Sendable (VisitInput) -> [MetricRow] = defaultMetrics

    func process(visit: VisitInput, outputFolder: String, threads: Int) throws -> VisitResult {
        log.begin(visit.unitName)
        defer { log.end() }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if failing.contains(visit.filePrefix) || failing.contains(visit.unitName) { throw FakeFailure(visit: visit.filePrefix) }
        // Like the real pipelines: each modality's outputs in its own folder.
        let modality = visit.modality?.rawValue ?? "dwi"
        try FileManager.default.createDirectory(atPath: outputFolder + "/" + modality, withIntermediateDirectories: true)
        let name = modality + "/" + visit.filePrefix + "_desc-fake_\(modality)map.txt"
        try Data("fake map \(visit.unitName)\n".utf8).write(to: URL(fileURLWithPath: outputFolder + "/" + name))
        // A unit of work gets only its modality's metrics (rows of an unknown modality pass,
        // for the runner's checks to refuse).
        let rows = metrics(visit).filter { row in
            !["dwi", "func"].contains(row.modality) || (visit.modality.map { row.modality == $0.rawValue } ?? true)
        }
        return VisitResult(metrics: rows, files: [outputFolder + "/" + name], warnings: ["fake warning"])
    }
}

/// fa_mean rises with the session; md_mean is NaN for participant 02; conn_mean is 0 at
/// the first session (so percent_change is n/a there).
@Sendable func defaultMetrics(_ visit: VisitInput) -> [MetricRow] {
    let p = Double(Int(visit.participant) ?? 0)
    let s = Double(["m00": 0, "m01": 1, "m03": 3, "pre": -1][visit.session ?? "m00"] ?? 5)
    return [
        MetricRow(modality: "dwi", region: "whole_brain", metric: "fa_mean", value: 0.4 + 0.01 * s + 0.001 * p),
        MetricRow(modality: "dwi", region: "whole_brain", metric: "md_mean", value: visit.participant == "02" ? .nan : 0.0008 + 0.00001 * s),
        MetricRow(modality: "dwi", region: "corpus_callosum", metric: "fa_median", value: 0.6 - 0.02 * s),
        MetricRow(modality: "func", region: "whole_brain", metric: "conn_mean", value: s <= 0 ? 0 : 0.1 * s),
    ]
}
