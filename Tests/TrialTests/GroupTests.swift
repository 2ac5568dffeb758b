import Foundation
import Pipelines
import Tabular
import Testing
@testable import Trial

@Suite("Group level")
struct GroupTests {
    static let sessionsText = """
        session_id\tacq_time\tvisit_month\tedss
        ses-m00\tn/a\t0\t6.0
        ses-m01\tn/a\t1\t6.5
        ses-m03\tn/a\t3\t6.5

        """
    static let participantsText = "participant_id\tage\tsex\tarm\nsub-01\t51\tF\tmsc\nsub-02\t47\tM\tplacebo\n"

    /// The test trial (participants.tsv and sessions.tsv with clinical data) in `top/bids`.
    static func trial(at top: String) throws -> Dataset {
        makeBIDS(at: top + "/bids", participantsTSV: participantsText, sessionsTSV: { _ in sessionsText })
        return try Dataset.discover(top + "/bids")
    }

    /// Runs the participant level with the fake processor, then the group level.
    static func run(top: String, jobs: Int = 2, failing: Set<String> = [], baseline: String? = nil,
                    metrics: @escaping @Sendable (VisitInput) -> [MetricRow] = defaultMetrics,
                    sessionsTSV: @escaping (String) -> String? = { _ in sessionsText }) throws -> (Dataset, String) {
        makeBIDS(at: top + "/bids", participantsTSV: participantsText, sessionsTSV: sessionsTSV)
        let dataset = try Dataset.discover(top + "/bids")
        let output = top + "/out"
        _ = try TrialRunner.runParticipants(dataset: dataset, output: output,
                                            processor: FakeProcessor(log: CallLog(), failing: failing, metrics: metrics), jobs: jobs)
        try TrialRunner.runGroup(dataset: dataset, output: output, baselineSession: baseline)
        return (dataset, output + "/group")
    }

    @Test("metrics_long: every metric of every ok visit, sorted by participant, session, modality, region, metric")
    func metricsLong() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (_, group) = try Self.run(top: top, failing: ["sub-02_ses-m01"])
        let table = try TSVTable.read(group + "/metrics_long.tsv")
        #expect(table.columns == ["participant_id", "session_id", "modality", "region", "metric", "value", "run", "atlas", "kind"])
        #expect(table.rows.count == 5 * 4)
        #expect(Array(table.rows[0..<4]) == [
            ["sub-01", "ses-m00", "dwi", "corpus_callosum", "fa_median", tsvCell(0.6), "n/a", "n/a", "outcome"],
            ["sub-01", "ses-m00", "dwi", "whole_brain", "fa_mean", tsvCell(0.4 + 0.001), "n/a", "n/a", "outcome"],
            ["sub-01", "ses-m00", "dwi", "whole_brain", "md_mean", tsvCell(0.0008), "n/a", "n/a", "outcome"],
            ["sub-01", "ses-m00", "func", "whole_brain", "conn_mean", "0", "n/a", "n/a", "outcome"],
        ])
        #expect(try table.column("session_id").filter { $0 != "ses-m00" }.count == 12)
        #expect(!table.rows.contains { $0[0] == "sub-02" && $0[1] == "ses-m01" })
        #expect(table.rows.contains { $0 == ["sub-02", "ses-m03", "dwi", "whole_brain", "md_mean", "n/a", "n/a", "n/a", "outcome"] })
    }

    @Test("visits.tsv: one row per visit, sessions then participants columns, status and error")
    func visitsTable() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (_, group) = try Self.run(top: top, failing: ["sub-02_ses-m01"])
        // A visit found later, never run, is `missing`.
        put(top + "/bids/sub-02/ses-m06/dwi/sub-02_ses-m06_dwi.nii.gz", "late")
        let dataset = try Dataset.discover(top + "/bids")
        try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        let table = try TSVTable.read(group + "/visits.tsv")
        #expect(table.columns == ["participant_id", "session_id", "session_order", "visit_month", "acq_time", "edss", "age", "sex", "arm",
                                  "status", "error", "dwi_status", "func_status", "dwi_shells", "dwi_parameters", "func_parameters"])
        // The fake processor writes no DWI sidecar, so no visit has shells; its one
        // fingerprint gives both modalities the same parameters id.
        let id = ParameterSet(try JSONValue.parse(FakeProcessor(log: CallLog()).parametersFingerprint)).id
        #expect(id.count == 8 && id.allSatisfy(\.isHexDigit))
        #expect(table.rows == [
            ["sub-01", "ses-m00", "0", "0", "n/a", "6.0", "51", "F", "msc", "ok", "n/a", "ok", "ok", "n/a", id, id],
            ["sub-01", "ses-m01", "1", "1", "n/a", "6.5", "51", "F", "msc", "ok", "n/a", "ok", "ok", "n/a", id, id],
            ["sub-01", "ses-m03", "2", "3", "n/a", "6.5", "51", "F", "msc", "ok", "n/a", "ok", "ok", "n/a", id, id],
            ["sub-02", "ses-m00", "0", "0", "n/a", "6.0", "47", "M", "placebo", "ok", "n/a", "ok", "ok", "n/a", id, id],
            ["sub-02", "ses-m01", "1", "1", "n/a", "6.5", "47", "M", "placebo", "failed", "dwi: sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure; func: sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure", "failed", "failed", "n/a", "n/a", "n/a"],
            ["sub-02", "ses-m03", "2", "3", "n/a", "6.5", "47", "M", "placebo", "ok", "n/a", "ok", "ok", "n/a", id, id],
            ["sub-02", "ses-m06", "3", "n/a", "n/a", "n/a", "47", "M", "placebo", "missing", "n/a", "missing", "n/a", "n/a", "n/a", "n/a"],
        ])
    }

    /// Writes the DWI sidecar of each visit with the shells `shells` gives it (none when nil),
    /// as the DTI pipeline does, and fails `sub-02_ses-m01`.
    struct ProtocolProcessor: VisitProcessor {
        let parametersFingerprint = "{}"
        let shells: @Sendable (VisitInput) -> [Double]?

        func process(visit: VisitInput, outputFolder: String, threads: Int) throws -> VisitResult {
            if visit.filePrefix == "sub-02_ses-m01" { throw FakeFailure(visit: visit.filePrefix) }
            let metrics = defaultMetrics(visit).filter { $0.modality == visit.modality?.rawValue }
            guard visit.modality == .dwi, let shells = shells(visit) else { return VisitResult(metrics: metrics) }
            let sidecar = outputFolder + "/dwi/" + visit.filePrefix + DiffusionPipeline.sidecarSuffix
            let list = shells.map { String(Int($0)) }.joined(separator: ", ")
            put(sidecar, "{\n  \"BValuesUsed\": [0, \(list)],\n  \"Shells\": [\(list)],\n  \"VolumesUsed\": 35\n}\n")
            return VisitResult(metrics: metrics, files: [sidecar])
        }
    }

    @Test("visits.tsv and the database carry each visit's DWI shells, so a protocol change between visits shows")
    func protocolColumn() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let dataset = try Self.trial(at: top)
        // sub-01 changes protocol at m03 (a b=2000 shell added and fitted); sub-01 m01 has no sidecar.
        let processor = ProtocolProcessor { visit in
            switch (visit.participant, visit.session) {
            case ("01", "m01"): nil
            case ("01", "m03"): [1000, 2000]
            default: [1000]
            }
        }
        _ = try TrialRunner.runParticipants(dataset: dataset, output: top + "/out", processor: processor)
        try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        let table = try TSVTable.read(top + "/out/group/visits.tsv")
        #expect(table.columns.suffix(3) == ["dwi_shells", "dwi_parameters", "func_parameters"])
        let shells = try table.column("dwi_shells")
        #expect(shells == ["1000", "n/a", "1000,2000", "1000", "n/a", "1000"])
        #expect(shells[0] != shells[2], "the protocol change of sub-01 is visible")
        #expect(try table.column("status") == ["ok", "ok", "ok", "ok", "failed", "ok"])

        let db = try SQLiteDatabase(path: top + "/out/group/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT dwi_shells FROM visits ORDER BY participant_id, session_order")
                == shells.map { $0 == "n/a" ? [.null] : [.text($0)] })
        let columns = try db.query("SELECT name FROM pragma_table_info('visits')").compactMap { $0.first?.string }
        #expect(columns.suffix(3) == ["dwi_shells", "dwi_parameters", "func_parameters"])
    }

    @Test("change_from_baseline: deltas and percentages for a planted change; n/a for a zero or missing baseline")
    func plantedChange() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        // Participant 01: FA falls from 0.50 to 0.45 at month 3; participant 02's baseline failed.
        let (_, group) = try Self.run(top: top, failing: ["sub-02_ses-m00"], metrics: { visit in
            let fa: Double = visit.session == "m03" && visit.participant == "01" ? 0.45 : 0.5
            return [MetricRow(modality: "dwi", region: "whole_brain", metric: "fa_mean", value: fa),
                    MetricRow(modality: "func", region: "whole_brain", metric: "conn_mean", value: visit.session == "m00" ? 0 : -0.2)]
        })
        let table = try TSVTable.read(group + "/change_from_baseline.tsv")
        #expect(table.columns == ["participant_id", "session_id", "baseline_session_id", "modality", "region", "metric",
                                  "baseline_value", "value", "delta", "percent_change", "atlas", "kind"])
        #expect(try table.column("baseline_session_id").allSatisfy { $0 == "ses-m00" })
        #expect(table.rows.count == 8)  // 2 participants x 2 follow-ups x 2 metrics; baselines left out
        let row = table.rows.first { $0[0] == "sub-01" && $0[1] == "ses-m03" && $0[5] == "fa_mean" }!
        #expect(row[6] == "0.5" && row[7] == "0.45")
        let delta = Double(row[8])!, pct = Double(row[9])!
        #expect(abs(delta - (-0.05)) < 1e-12)
        #expect(abs(pct - (-10)) < 1e-9)
        #expect(row[8] == tsvCell(0.45 - 0.5))
        let unchanged = table.rows.first { $0[0] == "sub-01" && $0[1] == "ses-m01" && $0[5] == "fa_mean" }!
        #expect(unchanged[6...] == ["0.5", "0.5", "0", "0", "n/a", "outcome"])
        let zeroBaseline = table.rows.first { $0[0] == "sub-01" && $0[1] == "ses-m01" && $0[5] == "conn_mean" }!
        #expect(zeroBaseline[6...] == ["0", "-0.2", "-0.2", "n/a", "n/a", "outcome"])
        let missingBaseline = table.rows.filter { $0[0] == "sub-02" }
        #expect(missingBaseline.count == 4)
        #expect(missingBaseline.allSatisfy { $0[6] == "n/a" && $0[8] == "n/a" && $0[9] == "n/a" && $0[7] != "n/a" })
    }

    @Test("baseline: --baseline-session, else visit_month 0 (or BL), else the earliest ISO 8601 acq_time, else the first in order",
          arguments: [
            // The earliest acq_time, compared as instants (an offset moves m00 before m01, which text order would not).
            ("session_id\tacq_time\nses-m01\t2024-02-01T09:00:00\nses-m00\t2024-03-01T09:00:00\nses-m03\t2024-05-01T09:00:00\n", nil, "m01", "earliest_acq_time"),
            ("session_id\tacq_time\nses-m00\t2024-02-01T01:00:00+02:00\nses-m01\t2024-01-31T23:30:00Z\nses-m03\t2024-05-01\n", nil, "m00", "earliest_acq_time"),
            ("session_id\tacq_time\nses-m00\t2024-03-01\nses-m01\t2024-02-01\nses-m03\t2024-05-01\n", nil, "m01", "earliest_acq_time"),
            // visit_month 0 wins over an earlier screening visit; "BL" is month 0.
            ("session_id\tacq_time\tvisit_month\nses-m00\t2024-01-01\t-1\nses-m01\t2024-02-01\t0\nses-m03\t2024-04-01\t3\n", nil, "m01", "visit_month_0"),
            ("session_id\tvisit_month\nses-m00\t1\nses-m01\tBL\nses-m03\t3\n", nil, "m01", "visit_month_0"),
            ("session_id\tvisit_month\nses-m00\t3\nses-m01\tbaseline\nses-m03\tn/a\n", nil, "m01", "visit_month_0"),
            // No month 0 and no acq_time: the first in chronological order (the smallest month), else the first label.
            ("session_id\tvisit_month\nses-m00\t2\nses-m01\t3\nses-m03\t-1\n", nil, "m03", "first_in_order"),
            ("session_id\tedss\nses-m00\t6\nses-m01\t6\nses-m03\t6\n", nil, "m00", "first_in_order"),
            ("session_id\tvisit_month\nses-m00\t0\nses-m01\t1\nses-m03\t3\n", "ses-m01", "m01", "requested"),
            ("session_id\tvisit_month\nses-m00\t0\nses-m01\t1\nses-m03\t3\n", "m03", "m03", "requested"),
          ] as [(String, String?, String, String)])
    func baselineRules(sessions: String, requested: String?, expected: String, rule: String) throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (_, group) = try Self.run(top: top, baseline: requested, sessionsTSV: { _ in sessions })
        let table = try TSVTable.read(group + "/change_from_baseline.tsv")
        let sessionsInTable = Set(try table.column("session_id"))
        #expect(sessionsInTable == Set(["ses-m00", "ses-m01", "ses-m03"]).subtracting(["ses-" + expected]))
        #expect(try table.column("baseline_session_id").allSatisfy { $0 == "ses-" + expected })
        let fa = table.rows.first { $0[0] == "sub-01" && $0[5] == "fa_mean" }!
        let planted = ["m00": 0.0, "m01": 1, "m03": 3][expected]!
        #expect(fa[6] == tsvCell(0.4 + 0.01 * planted + 0.001))
        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT DISTINCT session_id, rule FROM baselines") == [[.text("ses-" + expected), .text(rule)]])
        #expect(try db.query("SELECT DISTINCT baseline_session_id FROM change_from_baseline") == [[.text("ses-" + expected)]])
    }

    @Test("a requested baseline session that a participant lacks gives n/a baselines and a warning")
    func absentBaseline() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (dataset, group) = try Self.run(top: top)
        let summary = try TrialRunner.runGroup(dataset: dataset, output: top + "/out", baselineSession: "m06")
        #expect(summary.warnings == ["sub-01: no session 'm06'; its changes from baseline are n/a",
                                     "sub-02: no session 'm06'; its changes from baseline are n/a"])
        let table = try TSVTable.read(group + "/change_from_baseline.tsv")
        #expect(table.rows.count == 24 && table.rows.allSatisfy { $0[2] == "n/a" && $0[6] == "n/a" })
        #expect(throws: TrialError.invalidLabel(kind: "session", label: "../m00")) {
            try TrialRunner.runGroup(dataset: dataset, output: top + "/out", baselineSession: "../m00")
        }
    }

    @Test("the SQLite database holds the numbers of metrics_long.tsv, and its view those of change_from_baseline.tsv")
    func database() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (_, group) = try Self.run(top: top, failing: ["sub-02_ses-m01"])
        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        func cell(_ value: SQLiteValue) -> String {
            switch value {
            case .null: "n/a"
            case .real(let d): tsvCell(d)
            case .integer(let i): String(i)
            case .text(let s): s
            }
        }
        let metrics = try TSVTable.read(group + "/metrics_long.tsv")
        let stored = try db.query("""
            SELECT m.participant_id, coalesce(m.session_id, 'n/a'), modality, region, metric, value, coalesce(run, 'n/a'),
                   coalesce(atlas, 'n/a'), kind
            FROM metrics AS m
            JOIN visits AS v ON v.participant_id = m.participant_id AND v.session_id IS m.session_id
            ORDER BY m.participant_id, v.session_order, modality, region, metric
            """)
        #expect(stored.map { $0.map(cell) } == metrics.rows)
        #expect(try db.query("SELECT typeof(value) FROM metrics WHERE value IS NOT NULL GROUP BY 1") == [[.text("real")]])

        let change = try TSVTable.read(group + "/change_from_baseline.tsv")
        let view = try db.query("""
            SELECT c.* FROM change_from_baseline AS c
            JOIN visits AS v ON v.participant_id = c.participant_id AND v.session_id IS c.session_id
            ORDER BY c.participant_id, v.session_order, modality, region, metric
            """)
        #expect(change.rows.count == 12)
        #expect(view.map { $0.map(cell) } == change.rows)
        // The same doubles, not just the same text.
        for (row, stored) in zip(change.rows, view) {
            for column in 6...9 { #expect(Double(row[column]).map { $0 == stored[column].double } ?? (stored[column] == .null)) }
        }

        #expect(try db.query("SELECT participant_id, age, sex, arm FROM participants ORDER BY participant_id")
                == [[.text("sub-01"), .integer(51), .text("F"), .text("msc")], [.text("sub-02"), .integer(47), .text("M"), .text("placebo")]])
        #expect(try db.query("SELECT status, error FROM visits WHERE participant_id = 'sub-02' AND session_id = 'ses-m01'")
                == [[.text("failed"), .text("dwi: sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure; func: sub-02_ses-m01_dwi.nii.gz: data truncated: fake failure")]])
        #expect(try db.query("SELECT edss, visit_month, acq_time FROM visits WHERE session_id = 'ses-m01' LIMIT 1")
                == [[.real(6.5), .real(1), .null]])
        let indexes = try db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' ORDER BY name")
        #expect(indexes == [[.text("metrics_by_metric")], [.text("metrics_by_participant")]])
        let plan = try db.query("EXPLAIN QUERY PLAN SELECT value FROM metrics WHERE participant_id = 'sub-01' AND metric = 'fa_mean'")
        #expect(plan.contains { $0.contains { $0.string?.contains("metrics_by_participant") == true } })
        #expect(!listing(group).contains { $0.hasPrefix(".") })
    }

    @Test("jobs 1 and 3 give byte-identical group tables and the same database content")
    func deterministic() throws {
        let one = makeTemporaryFolder(), three = makeTemporaryFolder()
        defer { removeFolder(one); removeFolder(three) }
        let (_, groupOne) = try Self.run(top: one, jobs: 1, failing: ["sub-01_ses-m01"])
        let (_, groupThree) = try Self.run(top: three, jobs: 3, failing: ["sub-01_ses-m01"])
        for name in ["metrics_long.tsv", "visits.tsv", "change_from_baseline.tsv"] {
            let a = FileManager.default.contents(atPath: groupOne + "/" + name)
            #expect(a != nil && a == FileManager.default.contents(atPath: groupThree + "/" + name), "\(name) differs")
        }
        func dump(_ path: String) throws -> [[SQLiteValue]] {
            let db = try SQLiteDatabase(path: path, readOnly: true)
            var rows = try db.query("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            for table in ["participants", "visits", "metrics", "baselines", "parameters", "clinical_columns", "change_from_baseline"] {
                rows += try db.query("SELECT * FROM \(table)")
            }
            return rows
        }
        #expect(try dump(groupOne + "/nimetrics.sqlite") == dump(groupThree + "/nimetrics.sqlite"))
        // The same statements in the same order also give the same file, byte for byte.
        #expect(FileManager.default.contents(atPath: groupOne + "/nimetrics.sqlite")
                == FileManager.default.contents(atPath: groupThree + "/nimetrics.sqlite"))
    }

    @Test("the DWI and the BOLD processed in separate runs into one output both reach the group tables")
    func modalitiesInSeparateRuns() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let full = try Self.trial(at: top)
        var dwiOnly = full, funcOnly = full
        dwiOnly.visits = full.visits.map { visit in var v = visit; v.bold = nil; v.confounds = nil; v.boldSidecar = nil; return v }
        funcOnly.visits = full.visits.map { visit in var v = visit; v.dwi = nil; v.bval = nil; v.bvec = nil; return v }
        let output = top + "/out"
        let log = CallLog()
        _ = try TrialRunner.runParticipants(dataset: dwiOnly, output: output, processor: FakeProcessor(log: log))
        _ = try TrialRunner.runParticipants(dataset: funcOnly, output: output, processor: FakeProcessor(log: log))
        #expect(log.count == 12)
        // The group stage sees only the BOLD runs now, and still finds the DWI records.
        try TrialRunner.runGroup(dataset: funcOnly, output: output)
        let long = try TSVTable.read(output + "/group/metrics_long.tsv")
        #expect(long.rows.filter { $0[2] == "dwi" }.count == 6 * 3)
        #expect(long.rows.filter { $0[2] == "func" }.count == 6)
        let visits = try TSVTable.read(output + "/group/visits.tsv")
        #expect(try visits.column("dwi_status") == Array(repeating: "ok", count: 6))
        #expect(try visits.column("func_status") == Array(repeating: "ok", count: 6))
    }

    @Test("a manifest study without sessions: group tables with n/a sessions and no change rows")
    func manifestWithoutSessions() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        put(top + "/study/a.nii.gz", "a")
        put(top + "/study/b.nii.gz", "b")
        put(top + "/study/manifest.tsv", "participant_id\tdwi\tedss\n01\ta.nii.gz\t6\n02\tb.nii.gz\tn/a\n")
        put(top + "/study/manifest.json", #"{"edss": {"Description": "Expanded Disability Status Scale", "Units": "score"}}"#)
        let dataset = try Dataset.discover(top + "/study/manifest.tsv")
        _ = try TrialRunner.runParticipants(dataset: dataset, output: top + "/out", processor: FakeProcessor(log: CallLog()))
        let summary = try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        #expect(summary.statusCounts == [.ok: 2])
        let visits = try TSVTable.read(top + "/out/group/visits.tsv")
        let id = ParameterSet(try JSONValue.parse(FakeProcessor(log: CallLog()).parametersFingerprint)).id
        #expect(visits.rows == [["sub-01", "n/a", "0", "n/a", "6", "ok", "n/a", "ok", "n/a", "n/a", id, "n/a"],
                                ["sub-02", "n/a", "0", "n/a", "n/a", "ok", "n/a", "ok", "n/a", "n/a", id, "n/a"]])
        let long = try TSVTable.read(top + "/out/group/metrics_long.tsv")
        // Only the DWI is given: the three DWI metrics of each visit.
        #expect(long.rows.count == 6 && long.rows.allSatisfy { $0[1] == "n/a" && $0[2] == "dwi" })
        #expect(try TSVTable.read(top + "/out/group/change_from_baseline.tsv").rows.isEmpty)
        let db = try SQLiteDatabase(path: top + "/out/group/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT count(*) FROM metrics WHERE session_id IS NULL") == [[.integer(6)]])
        #expect(try db.query("SELECT count(*) FROM change_from_baseline") == [[.integer(0)]])
        // The manifest's sidecar describes its clinical columns; its path columns are no clinical data.
        #expect(try db.query("SELECT column_name, source_file, level, description, units FROM clinical_columns")
                == [[.text("edss"), .text("manifest.tsv"), .text("session"), .text("Expanded Disability Status Scale"), .text("score")]])
    }
}
