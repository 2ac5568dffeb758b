import AtomicFiles
import Foundation
import Tabular
import Synchronization
import Testing
@testable import Trial

@Suite("Participant level")
struct RunnerTests {
    /// A BIDS dataset in a fresh folder, its output folder, and the discovered dataset.
    struct Fixture {
        let top: String
        var input: String { top + "/bids" }
        var output: String { top + "/out" }
        let dataset: Dataset

        init(participants: [String] = ["01", "02"], sessions: [String] = ["m00", "m01", "m03"]) throws {
            top = makeTemporaryFolder()
            makeBIDS(at: top + "/bids", participants: participants, sessions: sessions)
            dataset = try Dataset.discover(top + "/bids")
        }

        func folder(_ prefix: String) -> String {
            output + "/" + prefix.replacingOccurrences(of: "_", with: "/")
        }

        func record(_ prefix: String, _ modality: String = "dwi") throws -> VisitRecord {
            try VisitRecord.read(folder(prefix) + "/\(prefix)_desc-\(modality)_visit.json")
        }
    }

    @Test("visitFinished is called once per visit, after the records of all its scans, with one and two jobs")
    func visitFinishedHook() throws {
        for jobs in [1, 2] {
            let fixture = try Fixture()
            let seen = Mutex<[(String, Bool)]>([])
            let output = fixture.output
            _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: output, processor: FakeProcessor(log: CallLog()),
                                                jobs: jobs, threads: 1) { visit in
                let folder = output + "/" + visit.relativeFolder + "/" + visit.filePrefix
                let both = ["dwi", "func"].allSatisfy { FileManager.default.fileExists(atPath: folder + "_desc-\($0)_visit.json") }
                seen.withLock { $0.append((visit.filePrefix, both)) }
            }
            let calls = seen.withLock { $0 }
            #expect(calls.map(\.0).sorted() == fixture.dataset.visits.map(\.filePrefix).sorted(), "jobs \(jobs)")
            #expect(calls.allSatisfy { $0.1 }, "jobs \(jobs): a visit was reported finished before both its records")
        }
    }

    @Test("one visit fails: it is recorded as failed with its message, the others are ok, the run reports failure")
    func failureIsolated() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let log = CallLog()
        let processor = FakeProcessor(log: log, failing: ["sub-02_ses-m01 dwi"])
        let summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 2)
        #expect(!summary.succeeded)
        #expect(summary.failed.map(\.visit.unitName) == ["sub-02_ses-m01 dwi"])
        #expect(summary.failed.first?.error == "sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure")
        #expect(summary.processedCount == 11)
        #expect(summary.report.hasPrefix("nimetrics: 12 scans of 6 visits: 11 processed, 0 up to date, 1 failed\n"))
        #expect(summary.report.contains("failed: sub-02_ses-m01 dwi: sub-02_ses-m01_dwi.nii.gz: data truncated"))
        #expect(log.count == 12)
        // The other modality of the failed visit is recorded as ok.
        #expect(try fixture.record("sub-02_ses-m01", "func").status == .ok)

        let failed = try fixture.record("sub-02_ses-m01")
        #expect(failed.status == .failed)
        #expect(failed.error == "sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure")
        #expect(!exists(fixture.folder("sub-02_ses-m01") + "/sub-02_ses-m01_desc-dwi_metrics.tsv"))

        let ok = try fixture.record("sub-01_ses-m03")
        #expect(ok.status == .ok && ok.error == nil)
        #expect(ok.modality == .dwi)
        #expect(ok.outputs == ["dwi/sub-01_ses-m03_desc-fake_dwimap.txt", "sub-01_ses-m03_desc-dwi_metrics.tsv"])
        #expect(ok.warnings == ["fake warning"])
        #expect(ok.version == TrialRunner.defaultVersion)
        #expect(ok.parameters == .object([("b0_threshold", .int(50)), ("fit", .string("wls"))]))
        let visit = fixture.dataset.visits.first { $0.filePrefix == "sub-01_ses-m03" }!
        #expect(ok.inputs.map(\.role) == ["dwi", "bval", "bvec"])
        #expect(ok.inputs.map(\.sha256) == (try visit.units[0].inputFiles.map { try SHA256.hex(ofFile: $0.path) }))
        #expect(try fixture.record("sub-01_ses-m03", "func").inputs.map(\.role) == ["bold", "confounds", "bold_sidecar"])
        #expect(ok.inputs[0].path == "sub-01/ses-m03/dwi/sub-01_ses-m03_dwi.nii.gz")

        let metrics = try TSVTable.read(fixture.folder("sub-01_ses-m03") + "/sub-01_ses-m03_desc-dwi_metrics.tsv")
        #expect(metrics.columns == ["modality", "region", "metric", "value", "run", "atlas"])
        #expect(metrics.rows.count == 3)
        #expect(metrics.rows[0] == ["dwi", "whole_brain", "fa_mean", tsvCell(0.4 + 0.01 * 3 + 0.001), "n/a", "n/a"])
        let nan = try TSVTable.read(fixture.folder("sub-02_ses-m00") + "/sub-02_ses-m00_desc-dwi_metrics.tsv")
        #expect(nan.rows[1] == ["dwi", "whole_brain", "md_mean", "n/a", "n/a", "n/a"])

        let description = try JSONValue.parse(contents(fixture.output + "/dataset_description.json"))
        #expect(description["DatasetType"] == .string("derivative"))
        guard case .array(let generators) = description["GeneratedBy"], generators.count == 1 else {
            Issue.record("GeneratedBy is not a list of one: \(String(describing: description["GeneratedBy"]))")
            return
        }
        #expect(generators[0]["Name"] == .string("nimetrics") && generators[0]["Version"] == .string("0.1.0"))
        #expect(generators[0]["CodeURL"] == nil)
        let input = URL(fileURLWithPath: OutputGuard.resolvedPath(fixture.input), isDirectory: true).absoluteString
        #expect(description["SourceDatasets"] == .array([.object([("URL", .string(input))])]))
        #expect(description["BIDSVersion"] != nil && description["Name"] != nil)
    }

    @Test("a re-run does no work; a failed visit is redone; a changed input redoes only its visit; changed parameters redo all")
    func rerunRules() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let log = CallLog()
        var processor = FakeProcessor(log: log, failing: ["sub-01_ses-m01"])
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.count == 12)

        // Failed scans are redone; the others are skipped.
        processor.failing = []
        log.reset()
        var summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.calls == ["sub-01_ses-m01 dwi", "sub-01_ses-m01 func"])
        #expect(summary.succeeded && summary.skippedCount == 10 && summary.processedCount == 2)

        // Nothing changed: no work at all.
        log.reset()
        summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.count == 0)
        #expect(summary.skippedCount == 12)

        // A changed input (same size, different bytes) redoes only the scan that reads it.
        log.reset()
        put(fixture.input + "/sub-02/ses-m03/func/sub-02_ses-m03_task-rest_desc-confounds_timeseries.tsv", "framewise_displacement\nn/a\n0.2\n")
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.calls == ["sub-02_ses-m03 func"])

        // A deleted output redoes only its scan.
        log.reset()
        try FileManager.default.removeItem(atPath: fixture.folder("sub-01_ses-m00") + "/dwi/sub-01_ses-m00_desc-fake_dwimap.txt")
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.calls == ["sub-01_ses-m00 dwi"])

        // Changed parameters redo every visit; the same parameters written differently do not.
        log.reset()
        processor.parametersFingerprint = "{\"b0_threshold\": 50, \"fit\": \"wls\"}"
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.count == 0)
        processor.parametersFingerprint = "{\"fit\": \"ols\", \"b0_threshold\": 50}"
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 3)
        #expect(log.count == 12)
        #expect(try fixture.record("sub-02_ses-m01").parameters["fit"] == .string("ols"))
    }

    @Test("a missing input file fails its visit with a message naming the file")
    func missingInput() throws {
        let fixture = try Fixture(participants: ["01"], sessions: ["m00"])
        defer { removeFolder(fixture.top) }
        let bval = fixture.input + "/sub-01/ses-m00/dwi/sub-01_ses-m00_dwi.bval"
        try FileManager.default.removeItem(atPath: bval)
        let log = CallLog()
        let summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: FakeProcessor(log: log))
        #expect(summary.failed.first?.error == "\(bval): no such file")
        #expect(log.calls == ["sub-01_ses-m00 func"])
        #expect(try fixture.record("sub-01_ses-m00").status == .failed)
    }

    @Test("bad metrics from a processor fail the visit", arguments: [
        MetricRow(modality: "anat", region: "whole_brain", metric: "fa_mean", value: 1),
        MetricRow(modality: "dwi", region: "whole_brain", metric: "FA mean", value: 1),
        MetricRow(modality: "dwi", region: "a\tb", metric: "fa_mean", value: 1),
    ])
    func badMetrics(row: MetricRow) throws {
        let fixture = try Fixture(participants: ["01"], sessions: ["m00"])
        defer { removeFolder(fixture.top) }
        let processor = FakeProcessor(log: CallLog(), metrics: { _ in [row] })
        let summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor)
        #expect(summary.failed.first?.error?.hasPrefix("the processor returned bad metrics") == true)
        let duplicate = FakeProcessor(log: CallLog(), metrics: { _ in Array(repeating: MetricRow(modality: "dwi", region: "x", metric: "fa_mean", value: 1), count: 2) })
        let second = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: duplicate)
        #expect(second.failed.first?.error?.contains("returned twice") == true)
    }

    @Test("a run killed mid-way (record missing, stale temporaries) is finished by a restart")
    func killedRun() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let log = CallLog()
        let processor = FakeProcessor(log: log)
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 2)
        try TrialRunner.runGroup(dataset: fixture.dataset, output: fixture.output)
        let reference = ["metrics_long.tsv", "visits.tsv", "change_from_baseline.tsv"].map { contents(fixture.output + "/group/" + $0) }

        // What kill -9 can leave: one visit with outputs but no record and a half-written
        // temporary; another with a temporary from its metrics table and no record.
        let a = fixture.folder("sub-01_ses-m01"), b = fixture.folder("sub-02_ses-m03")
        try FileManager.default.removeItem(atPath: a + "/sub-01_ses-m01_desc-dwi_visit.json")
        put(a + "/" + AtomicFile.temporaryPrefix + "123-abc-sub-01_ses-m01_desc-dwi_visit.json", "{\"stat")
        try FileManager.default.removeItem(atPath: b + "/sub-02_ses-m03_desc-func_visit.json")
        try FileManager.default.removeItem(atPath: b + "/sub-02_ses-m03_desc-func_metrics.tsv")
        put(b + "/" + AtomicFile.temporaryPrefix + "99-f00-sub-02_ses-m03_desc-func_metrics.tsv", "modality\tre")
        try TrialRunner.runGroup(dataset: fixture.dataset, output: fixture.output)
        let interrupted = try TSVTable.read(fixture.output + "/group/visits.tsv")
        #expect(try interrupted.column("status") == ["ok", "incomplete", "ok", "ok", "ok", "incomplete"])
        #expect(try interrupted.column("dwi_status") == ["ok", "incomplete", "ok", "ok", "ok", "ok"])
        #expect(try interrupted.column("func_status") == ["ok", "ok", "ok", "ok", "ok", "incomplete"])

        log.reset()
        let summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 2)
        #expect(summary.succeeded)
        #expect(log.calls == ["sub-01_ses-m01 dwi", "sub-02_ses-m03 func"])
        #expect(!listing(a).contains { $0.hasPrefix(AtomicFile.temporaryPrefix) })
        #expect(!listing(b).contains { $0.hasPrefix(AtomicFile.temporaryPrefix) })
        try TrialRunner.runGroup(dataset: fixture.dataset, output: fixture.output)
        #expect(try ["metrics_long.tsv", "visits.tsv", "change_from_baseline.tsv"].map { contents(fixture.output + "/group/" + $0) } == reference)
    }

    @Test("jobs bounds how many visits run at once", arguments: [1, 3])
    func parallelism(jobs: Int) throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let log = CallLog()
        let start = Date()
        let summary = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output,
                                                      processor: FakeProcessor(log: log, delay: 0.15), jobs: jobs)
        let elapsed = Date().timeIntervalSince(start)
        #expect(summary.succeeded)
        #expect(log.maxRunning == jobs)
        if jobs == 3 { #expect(elapsed < 12 * 0.15) } else { #expect(elapsed >= 12 * 0.15) }
        // Outcomes come back in the dataset's order, whatever order they finished in.
        #expect(summary.outcomes.map(\.visit.unitName) == fixture.dataset.visits.flatMap(\.units).map(\.unitName))
    }

    @Test("progress: plain lines when not a terminal, a live line with ETA when it is")
    func progress() throws {
        let fixture = try Fixture(participants: ["01"], sessions: ["m00", "m01"])
        defer { removeFolder(fixture.top) }
        let text = TextSink()
        let processor = FakeProcessor(log: CallLog(), failing: ["sub-01_ses-m01 dwi"])
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 1,
                                            progress: ConsoleProgressReporter(live: false, write: text.append))
        let lines = text.value.split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        #expect(lines[0].hasPrefix("nimetrics: [1/4] sub-01_ses-m00 dwi ok ("))
        #expect(lines[1].hasPrefix("nimetrics: [2/4] sub-01_ses-m00 func ok ("))
        #expect(lines[2] == "nimetrics: [3/4] sub-01_ses-m01 dwi FAILED: sub-01_ses-m01_dwi.nii.gz: data truncated: fake failure")
        #expect(lines[4] == "nimetrics: 4 scans of 2 visits: 3 processed, 0 up to date, 1 failed")

        let live = TextSink()
        _ = try TrialRunner.runParticipants(dataset: fixture.dataset, output: fixture.output, processor: processor, jobs: 1,
                                            progress: ConsoleProgressReporter(live: true, write: live.append))
        #expect(live.value.contains("\r\u{1B}[2K[1/4] "))
        #expect(live.value.contains("elapsed 0:00  ETA"))
        #expect(live.value.contains("up to date"))
    }
}

func listing(_ folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
}

final class TextSink: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    var value: String { lock.withLock { text } }
    var append: @Sendable (String) -> Void { { [self] s in lock.withLock { text += s } } }
}
