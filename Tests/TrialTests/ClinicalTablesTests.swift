import Foundation
import Pipelines
import Tabular
import Testing
@testable import Trial

@Suite("Clinical tables, scheduled visits, visit months and parameter consistency")
struct ClinicalTablesTests {
    @Test("ISO 8601 dates and date-times give the instant Foundation's ISO8601DateFormatter gives; other layouts are refused")
    func isoTimes() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        for (text, reference) in [("2024-03-15T09:30:00Z", "2024-03-15T09:30:00Z"), ("2024-03-15T09:30:00", "2024-03-15T09:30:00Z"),
                                  ("2024-03-15T09:30:00+02:00", "2024-03-15T09:30:00+02:00"), ("2024-03-15T09:30:00-0530", "2024-03-15T09:30:00-05:30"),
                                  ("2024-03-15", "2024-03-15T00:00:00Z"), ("2024-03-15 09:30", "2024-03-15T09:30:00Z"),
                                  ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"), ("1800-01-01", "1800-01-01T00:00:00Z"),
                                  ("2000-12-31T12:00:00Z", "2000-12-31T12:00:00Z")] {
            let expected = try #require(formatter.date(from: reference)).timeIntervalSince1970
            #expect(ClinicalTime.seconds(text) == expected, "\(text)")
        }
        #expect(ClinicalTime.seconds("2024-03-15T09:30:00.250Z") == formatter.date(from: "2024-03-15T09:30:00Z")!.timeIntervalSince1970 + 0.25)
        for bad in ["03/15/2024", "15.03.2024", "2024-13-01", "2023-02-29", "2024-04-31", "2024-03-15T24:00:00", "2024-3-15",
                    "2024-03-15T09:30:00+2", "2024-03-15T09", "20240315", "n/a", "", "2024-03-15Z junk"] {
            #expect(ClinicalTime.seconds(bad) == nil, "\(bad)")
        }
    }

    @Test("visit_month: numbers, m/month prefixes and baseline tokens; nothing else")
    func months() {
        for (text, month) in [("0", 0.0), ("3", 3), ("-1", -1), ("6.5", 6.5), ("BL", 0), ("bl", 0), ("Baseline", 0),
                              ("M06", 6), ("m3", 3), ("month 12", 12)] as [(String, Double)] {
            #expect(ClinicalTime.month(text) == month, "\(text)")
        }
        for bad in ["screening", "six", "m", "nan", "inf", "BL2", ""] { #expect(ClinicalTime.month(bad) == nil, "\(bad)") }
    }

    @Test("an acq_time or visit_month that cannot be read is an error naming the file, the line and the value",
          arguments: [("acq_time", "03/15/2024", "an ISO 8601 date"), ("visit_month", "screening", "a number of months")])
    func unreadableTimes(column: String, value: String, expected: String) throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        makeBIDS(at: top + "/bids", sessionsTSV: { p in "session_id\t\(column)\nses-m00\tn/a\nses-m01\t\(p == "02" ? value : "n/a")\nses-m03\tn/a\n" })
        #expect { try Dataset.discover(top + "/bids") } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix(top + "/bids/sub-02/sub-02_sessions.tsv: line 3: \(column) '\(value)' is not \(expected)")
        }
    }

    @Test("a participant or a session listed twice is an error naming the file and the lines")
    func duplicates() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        makeBIDS(at: top + "/bids", participantsTSV: "participant_id\tage\nsub-01\t51\nsub-02\t47\n01\t52\n")
        #expect(throws: TrialError.badTable(file: top + "/bids/participants.tsv",
                                            reason: "lines 2, 4: participant 'sub-01' listed 2 times; one row per participant")) {
            try Dataset.discover(top + "/bids")
        }
        removeFolder(top + "/bids")
        makeBIDS(at: top + "/bids", sessionsTSV: { _ in "session_id\tedss\nses-m00\t6\nses-m01\t6.5\nm00\t7\n" })
        #expect(throws: TrialError.badTable(file: top + "/bids/sub-01/sub-01_sessions.tsv",
                                            reason: "lines 2, 4: session 'ses-m00' listed 2 times; one row per session")) {
            try Dataset.discover(top + "/bids")
        }
    }

    @Test("a scheduled visit without images is listed as missing with its clinical data, in its place; its month counts")
    func scheduledVisit() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let sessions = "session_id\tacq_time\tvisit_month\tedss\nses-m00\t2024-01-01T09:00\tBL\t6.0\nses-m01\t2024-02-01T09:00\t1\t6.5\n"
            + "ses-m02\tn/a\t2\t7.0\nses-m03\t2024-04-01T09:00\tn/a\t6.5\n"
        let (dataset, group) = try GroupTests.run(top: top, sessionsTSV: { _ in sessions })
        #expect(dataset.visits.map(\.filePrefix).filter { $0.hasPrefix("sub-01") }
                == ["sub-01_ses-m00", "sub-01_ses-m01", "sub-01_ses-m02", "sub-01_ses-m03"])
        #expect(dataset.visits.first { $0.session == "m02" }?.modalities == [])
        let visits = try TSVTable.read(group + "/visits.tsv")
        let rows = visits.rows.filter { $0[0] == "sub-01" }
        let column = { (name: String) in visits.index(of: name)! }
        #expect(rows.map { $0[column("session_id")] } == ["ses-m00", "ses-m01", "ses-m02", "ses-m03"])
        #expect(rows.map { $0[column("session_order")] } == ["0", "1", "2", "3"])
        // m03 has no month: 91 days after the baseline / 30.4375 = 2.9897 -> 2.99.
        #expect(rows.map { $0[column("visit_month")] } == ["0", "1", "2", "2.99"])
        #expect(rows.map { $0[column("status")] } == ["ok", "ok", "missing", "ok"])
        #expect(rows.map { $0[column("edss")] } == ["6.0", "6.5", "7.0", "6.5"])
        #expect(rows[2][column("dwi_status")] == "n/a" && rows[2][column("dwi_parameters")] == "n/a")
        let change = try TSVTable.read(group + "/change_from_baseline.tsv")
        #expect(!change.rows.contains { $0[1] == "ses-m02" })
        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT status, edss, visit_month FROM visits WHERE participant_id = 'sub-02' AND session_id = 'ses-m02'")
                == [[.text("missing"), .real(7.0), .real(2)]])
    }

    @Test("a missed baseline gives n/a changes and a warning, not a moved baseline")
    func missedBaseline() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let sessions = "session_id\tvisit_month\nses-pre\t0\nses-m00\t1\nses-m01\t2\nses-m03\t4\n"
        let (dataset, group) = try GroupTests.run(top: top, sessionsTSV: { _ in sessions })
        let summary = try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        #expect(summary.warnings.contains("sub-01: the baseline ses-pre is missing; changes from baseline of what it lacks are n/a"))
        let change = try TSVTable.read(group + "/change_from_baseline.tsv")
        #expect(change.rows.count == 2 * 3 * 4)
        #expect(change.rows.allSatisfy { $0[2] == "ses-pre" && $0[6] == "n/a" && $0[8] == "n/a" })
    }

    @Test("clinical columns named like nimetrics' own keep their data under clinical_<name>, with a warning")
    func clashingColumns() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let sessions = "session_id\tstatus\tSession_Order\terror\tedss\tEDSS\nses-m00\trelapse\t1\tnone\t6\t6.0\n"
            + "ses-m01\tstable\t2\tnone\t6.5\t6.5\nses-m03\tstable\t3\tlate\t7\t7.0\n"
        let (dataset, group) = try GroupTests.run(top: top, sessionsTSV: { _ in sessions })
        let visits = try TSVTable.read(group + "/visits.tsv")
        #expect(visits.columns == ["participant_id", "session_id", "session_order", "visit_month", "clinical_status", "clinical_Session_Order",
                                   "clinical_error", "edss", "EDSS_2", "age", "sex", "arm", "status", "error", "dwi_status", "func_status",
                                   "dwi_shells", "dwi_parameters", "func_parameters"])
        #expect(try visits.column("clinical_status") == ["relapse", "stable", "stable", "relapse", "stable", "stable"])
        #expect(try visits.column("status") == Array(repeating: "ok", count: 6))
        #expect(try visits.column("session_order") == ["0", "1", "2", "0", "1", "2"])
        #expect(try visits.column("EDSS_2") == ["6.0", "6.5", "7.0", "6.0", "6.5", "7.0"])
        let summary = try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        #expect(summary.warnings.contains("clinical column 'status' is named like a column of nimetrics' own; its values are in column 'clinical_status'"))
        #expect(summary.warnings.contains("clinical column 'EDSS' differs from another only in case (which SQLite ignores); its values are in column 'EDSS_2'"))
        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT clinical_status, status, clinical_Session_Order FROM visits WHERE session_id = 'ses-m00' LIMIT 1")
                == [[.text("relapse"), .text("ok"), .integer(1)]])
        #expect(try db.query("SELECT source_column, source_file, level FROM clinical_columns WHERE column_name = 'clinical_status'")
                == [[.text("status"), .text("sub-01/sub-01_sessions.tsv"), .text("session")]])
    }

    @Test("the sidecars' Description, Units and Levels reach the database's clinical_columns")
    func sidecars() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        put(top + "/bids/participants.json", #"{"sex": {"Description": "sex at birth", "Levels": {"F": "female", "M": "male"}}, "age": {"Units": "year"}}"#)
        put(top + "/bids/sessions.json", #"{"edss": {"Description": "Expanded Disability Status Scale", "Units": "score"}}"#)
        put(top + "/bids/sub-01/sub-01_sessions.json", #"{"edss": {"Description": "EDSS (rater A)"}}"#)
        let (_, group) = try GroupTests.run(top: top)
        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        let rows = try db.query("SELECT column_name, table_name, source_file, level, description, units, levels FROM clinical_columns ORDER BY table_name, column_name")
        #expect(rows.contains([.text("edss"), .text("visits"), .text("sub-01/sub-01_sessions.tsv"), .text("session"),
                               .text("EDSS (rater A)"), .text("score"), .null]))
        #expect(rows.contains([.text("sex"), .text("participants"), .text("participants.tsv"), .text("participant"),
                               .text("sex at birth"), .null, .text(#"{"F":"female","M":"male"}"#)]))
        #expect(rows.contains([.text("age"), .text("visits"), .text("participants.tsv"), .text("participant"), .null, .text("year"), .null]))
        #expect(rows.contains([.text("acq_time"), .text("visits"), .text("sub-01/sub-01_sessions.tsv"), .text("session"), .null, .null, .null]))
        #expect(!rows.contains { $0.first == .text("visit_month") }, "visit_month is nimetrics' column")
    }

    @Test("--clinical: merged by participant and session, adding scheduled visits; a conflicting value is an error")
    func clinicalTable() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        makeBIDS(at: top + "/bids", participantsTSV: GroupTests.participantsText, sessionsTSV: { _ in GroupTests.sessionsText })
        put(top + "/clinical.tsv", "participant_id\tsession_id\tedss\tsdmt\nsub-01\tses-m01\t6.5\t50\n02\tm03\tn/a\t41\nsub-02\tses-m06\t7.5\t40\n")
        var options = DiscoveryOptions()
        options.clinical = top + "/clinical.tsv"
        let dataset = try Dataset.discover(top + "/bids", options: options)
        #expect(dataset.visits.map(\.filePrefix).last == "sub-02_ses-m06")
        let m06 = dataset.visits.last!
        #expect(m06.clinicalValue("edss") == "7.5" && m06.clinicalValue("sdmt") == "40" && m06.clinicalValue("arm") == "placebo")
        #expect(dataset.visits.first { $0.filePrefix == "sub-02_ses-m03" }?.clinicalValue("edss") == "6.5")
        #expect(dataset.visits.first { $0.filePrefix == "sub-01_ses-m01" }?.clinicalValue("sdmt") == "50")
        #expect(dataset.visits.first { $0.filePrefix == "sub-01_ses-m00" }?.clinicalValue("sdmt") == nil)
        _ = try TrialRunner.runParticipants(dataset: dataset, output: top + "/out", processor: FakeProcessor(log: CallLog()))
        try TrialRunner.runGroup(dataset: dataset, output: top + "/out")
        let visits = try TSVTable.read(top + "/out/group/visits.tsv")
        #expect(visits.rows.last.map { [$0[1], $0[visits.index(of: "status")!], $0[visits.index(of: "sdmt")!]] } == ["ses-m06", "missing", "40"])

        put(top + "/clinical.tsv", "participant_id\tsession_id\tedss\nsub-01\tses-m01\t5.0\n")
        #expect(throws: TrialError.badTable(file: top + "/clinical.tsv",
                                            reason: "line 2: edss of sub-01_ses-m01 is '5.0' here but '6.5' in the dataset's own tables")) {
            try Dataset.discover(top + "/bids", options: options)
        }
        put(top + "/clinical.tsv", "participant_id\tsession_id\tedss\nsub-01\tses-m01\t6.5\n01\tm01\t6.5\n")
        #expect(throws: TrialError.badTable(file: top + "/clinical.tsv", reason: "lines 2 and 3: sub-01 ses-m01 listed twice; one row per visit")) {
            try Dataset.discover(top + "/bids", options: options)
        }
    }

    @Test("visits processed with different parameters are refused, naming the visits and the keys, unless allowed")
    func mixedParameters() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let dataset = try GroupTests.trial(at: top)
        let output = top + "/out"
        var first = dataset, second = dataset
        first.visits = dataset.visits.filter { $0.participant == "01" }
        second.visits = dataset.visits.filter { $0.participant == "02" }
        _ = try TrialRunner.runParticipants(dataset: first, output: output, processor: FakeProcessor(log: CallLog()))
        var ols = FakeProcessor(log: CallLog())
        ols.parametersFingerprint = "{\"fit\": \"ols\", \"b0_threshold\": 50}"
        _ = try TrialRunner.runParticipants(dataset: second, output: output, processor: ols)
        let wlsID = ParameterSet(try JSONValue.parse(FakeProcessor(log: CallLog()).parametersFingerprint)).id
        let olsID = ParameterSet(try JSONValue.parse(ols.parametersFingerprint)).id
        #expect(wlsID != olsID)
        #expect(throws: TrialError.mixedParameters(
            output: output, modality: "dwi",
            details: "3 visits have parameters \(wlsID); sub-02_ses-m00, sub-02_ses-m01, sub-02_ses-m03 (parameters \(olsID)) differ in fit")) {
            try TrialRunner.runGroup(dataset: dataset, output: output)
        }
        #expect(!exists(output + "/group/metrics_long.tsv"), "nothing written")

        try TrialRunner.runGroup(dataset: dataset, output: output, options: GroupOptions(allowMixedParameters: true))
        let long = try TSVTable.read(output + "/group/metrics_long.tsv")
        #expect(long.columns.last == "parameters_id")
        #expect(Set(long.rows.filter { $0[0] == "sub-01" }.map { $0.last! }) == [wlsID])
        #expect(Set(long.rows.filter { $0[0] == "sub-02" }.map { $0.last! }) == [olsID])
        let change = try TSVTable.read(output + "/group/change_from_baseline.tsv")
        #expect(change.columns.suffix(2) == ["parameters_id", "baseline_parameters_id"])
        let visits = try TSVTable.read(output + "/group/visits.tsv")
        #expect(try visits.column("dwi_parameters") == [wlsID, wlsID, wlsID, olsID, olsID, olsID])
        let db = try SQLiteDatabase(path: output + "/group/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT DISTINCT parameters_id FROM metrics WHERE participant_id = 'sub-02'") == [[.text(olsID)]])
        #expect(try db.query("SELECT parameters FROM parameters WHERE modality = 'dwi' AND parameters_id = ?", [.text(olsID)])
                == [[.text(#"{"b0_threshold":50,"fit":"ols"}"#)]])
        #expect(try db.query("SELECT count(*) FROM change_from_baseline WHERE parameters_id IS NULL") == [[.integer(0)]])
    }

    @Test("parameter sets: the keys that differ, nested ones by path")
    func differingKeys() throws {
        let a = ParameterSet(try JSONValue.parse(#"{"nimetricsVersion": "1", "parameters": {"fit": "wls", "iterations": 1}, "files": {"dwi_atlas": "a"}}"#))
        let b = ParameterSet(try JSONValue.parse(#"{"nimetricsVersion": "2", "parameters": {"fit": "wls", "iterations": 2}}"#))
        #expect(b.differingKeys(from: a) == ["files.dwi_atlas", "nimetricsVersion", "parameters.iterations"])
        #expect(a.differingKeys(from: a).isEmpty && a.id != b.id)
    }

    @Test("metric kinds: QC numbers by name, every other metric an outcome")
    func kinds() {
        for metric in ["n_voxels", "negative_eigenvalue_fraction", "tsnr_mean", "fd_mean", "volumes_censored", "censored_fraction",
                       "volumes_kept", "coverage"] {
            #expect(MetricKind.of(metric: metric) == .qc, "\(metric)")
        }
        for metric in ["fa_mean", "md_p95", "rd_sd", "conn_within_mean", "global_efficiency", "alff_mean", "falff", "strength"] {
            #expect(MetricKind.of(metric: metric) == .outcome, "\(metric)")
        }
    }
}
