import Foundation
import Tabular
import Testing

/// `nimetrics run ... group` options for the clinical tables and the parameters check, on a
/// dataset of placeholder images (discovery never opens an image, and a visit never processed
/// is listed as missing).
@Suite("run group: clinical tables and options")
struct GroupTablesCommandTests {
    static func dataset(at root: String, sessions: String) {
        func put(_ path: String, _ text: String) {
            try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try! Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        put(root + "/dataset_description.json", "{\"Name\": \"t\", \"BIDSVersion\": \"1.9.0\"}\n")
        put(root + "/participants.tsv", "participant_id\tage\nsub-01\t50\n")
        put(root + "/sub-01/sub-01_sessions.tsv", sessions)
        for session in ["m00", "m03"] {
            put(root + "/sub-01/ses-\(session)/dwi/sub-01_ses-\(session)_dwi.nii.gz", "placeholder")
        }
    }

    @Test("an acq_time that is not ISO 8601 stops the run with one line naming the file, the line and the value")
    func unreadableDate() throws {
        let top = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: top) }
        Self.dataset(at: top + "/data", sessions: "session_id\tacq_time\nses-m00\t2024-01-15\nses-m03\t04/15/2024\n")
        let run = try runTool(["run", top + "/data", top + "/out", "group"])
        #expect(run.status == 1)
        #expect(run.stderr == "nimetrics: \(top)/data/sub-01/sub-01_sessions.tsv: line 3: acq_time '04/15/2024' is not an ISO 8601 date or date-time (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss, optionally with Z or ±hh:mm)\n")
        #expect(!FileManager.default.fileExists(atPath: top + "/out/group"))
    }

    @Test("--clinical adds its columns and its scheduled visits; --allow-mixed-parameters adds parameters_id; a conflict is one line")
    func clinicalOption() throws {
        let top = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: top) }
        Self.dataset(at: top + "/data", sessions: "session_id\tvisit_month\tedss\nses-m00\tBL\t6\nses-m03\t3\t6.5\n")
        try Data("participant_id\tsession_id\tsdmt\nsub-01\tses-m00\t50\nsub-01\tses-m06\t44\n".utf8)
            .write(to: URL(fileURLWithPath: top + "/clinical.tsv"))
        let run = try runTool(["run", top + "/data", top + "/out", "group", "--clinical", top + "/clinical.tsv", "--allow-mixed-parameters"])
        #expect(run.status == 0, "\(run.stderr)")
        let visits = try TSVTable.read(top + "/out/group/visits.tsv")
        #expect(try visits.column("session_id") == ["ses-m00", "ses-m03", "ses-m06"])
        #expect(try visits.column("visit_month") == ["0", "3", "n/a"])
        #expect(try visits.column("sdmt") == ["50", "n/a", "44"])
        #expect(try visits.column("status") == ["missing", "missing", "missing"])
        #expect(try TSVTable.read(top + "/out/group/metrics_long.tsv").columns.last == "parameters_id")

        try Data("participant_id\tsession_id\tedss\nsub-01\tses-m03\t7\n".utf8).write(to: URL(fileURLWithPath: top + "/clinical.tsv"))
        let conflict = try runTool(["run", top + "/data", top + "/out", "group", "--clinical", top + "/clinical.tsv"])
        #expect(conflict.status == 1)
        #expect(conflict.stderr == "nimetrics: \(top)/clinical.tsv: line 2: edss of sub-01_ses-m03 is '7' here but '6.5' in the dataset's own tables\n")
        let absent = try runTool(["run", top + "/data", top + "/out", "group", "--clinical", top + "/none.tsv"])
        #expect(absent.status == 1 && absent.stderr.hasPrefix("nimetrics: \(top)/none.tsv: "), "\(absent.stderr)")
    }
}
