import Foundation
import Testing
@testable import Trial

@Suite("Dataset discovery")
struct DiscoveryTests {
    @Test("BIDS with sessions: visits sorted, files paired, clinical columns from sessions.tsv then participants.tsv")
    func bidsWithSessions() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root, participants: ["10", "2"], participantsTSV: "participant_id\tage\tsex\nsub-2\t41\tF\nsub-10\t55\tM\n",
                 sessionsTSV: { _ in "session_id\tacq_time\tedss\nses-m00\tn/a\t6.0\nses-m01\tn/a\t6.5\nses-m03\tn/a\t6.5\n" })
        let dataset = try Dataset.discover(root)
        #expect(dataset.visits.map(\.filePrefix) == ["sub-2_ses-m00", "sub-2_ses-m01", "sub-2_ses-m03",
                                                      "sub-10_ses-m00", "sub-10_ses-m01", "sub-10_ses-m03"])
        let visit = dataset.visits[1]
        #expect(visit.dwi == root + "/sub-2/ses-m01/dwi/sub-2_ses-m01_dwi.nii.gz")
        #expect(visit.bval == root + "/sub-2/ses-m01/dwi/sub-2_ses-m01_dwi.bval")
        #expect(visit.bvec == root + "/sub-2/ses-m01/dwi/sub-2_ses-m01_dwi.bvec")
        #expect(visit.bold == root + "/sub-2/ses-m01/func/sub-2_ses-m01_task-rest_bold.nii.gz")
        #expect(visit.confounds == root + "/sub-2/ses-m01/func/sub-2_ses-m01_task-rest_desc-confounds_timeseries.tsv")
        #expect(visit.boldSidecar == root + "/sub-2/ses-m01/func/sub-2_ses-m01_task-rest_bold.json")
        #expect(visit.brainMask == nil)
        #expect(visit.clinical.map(\.0) == ["acq_time", "edss", "age", "sex"])
        #expect(visit.clinical.map(\.1) == ["n/a", "6.5", "41", "F"])
        #expect(dataset.participantColumns == ["age", "sex"])
        #expect(visit.relativeFolder == "sub-2/ses-m01")
    }

    @Test("BIDS without sessions: one visit per participant, folder sub-XX")
    func bidsWithoutSessions() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root, participants: ["01", "02", "03"], sessions: [], withFunc: false)
        let dataset = try Dataset.discover(root)
        #expect(dataset.visits.map(\.filePrefix) == ["sub-01", "sub-02", "sub-03"])
        #expect(dataset.visits.allSatisfy { $0.session == nil && $0.bold == nil && $0.dwi != nil })
        #expect(dataset.visits[0].relativeFolder == "sub-01")
    }

    @Test("fMRIPrep derivative names: preprocessed BOLD, confounds without the space entity, brain mask, .nii")
    func fmriprepNames() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        let func_ = root + "/sub-01/ses-m01/func/"
        let stem = "sub-01_ses-m01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold"
        put(func_ + stem + ".nii.gz", "bold")
        put(func_ + stem + ".json", "{}")
        put(func_ + "sub-01_ses-m01_task-rest_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz", "mask")
        put(func_ + "sub-01_ses-m01_task-rest_space-MNI152NLin2009cAsym_boldref.nii.gz", "ref")
        put(func_ + "sub-01_ses-m01_task-rest_desc-confounds_timeseries.tsv", "a\n1\n")
        put(func_ + "sub-01_ses-m01_task-rest_desc-confounds_timeseries.json", "{}")
        // A second participant with uncompressed images and a raw plus a preprocessed series.
        let other = root + "/sub-02/ses-m01/func/"
        put(other + "sub-02_ses-m01_task-rest_bold.nii", "raw")
        put(other + "sub-02_ses-m01_task-rest_space-T1w_desc-preproc_bold.nii", "preproc")
        put(other + "sub-02_ses-m01_task-rest_desc-confounds_timeseries.tsv", "a\n1\n")
        put(root + "/sub-02/ses-m01/dwi/sub-02_ses-m01_acq-b1000_dwi.nii", "dwi")
        put(root + "/sub-02/ses-m01/dwi/sub-02_ses-m01_acq-b1000_dwi.bval", "0")
        let dataset = try Dataset.discover(root)
        #expect(dataset.visits.count == 2)
        let first = dataset.visits[0]
        #expect(first.bold == func_ + stem + ".nii.gz")
        #expect(first.confounds == func_ + "sub-01_ses-m01_task-rest_desc-confounds_timeseries.tsv")
        #expect(first.boldSidecar == func_ + stem + ".json")
        #expect(first.brainMask == func_ + "sub-01_ses-m01_task-rest_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz")
        #expect(first.dwi == nil)
        let second = dataset.visits[1]
        #expect(second.bold == other + "sub-02_ses-m01_task-rest_space-T1w_desc-preproc_bold.nii")
        #expect(second.confounds == other + "sub-02_ses-m01_task-rest_desc-confounds_timeseries.tsv")
        #expect(second.dwi == root + "/sub-02/ses-m01/dwi/sub-02_ses-m01_acq-b1000_dwi.nii")
        #expect(second.bval == root + "/sub-02/ses-m01/dwi/sub-02_ses-m01_acq-b1000_dwi.bval")
        #expect(second.bvec == nil)
        #expect(dataset.warnings.contains { $0.contains("2 BOLD images") })
    }

    @Test("label filters with and without prefixes", arguments: [
        (["01"], ["m01"]), (["sub-01"], ["ses-m01"]), (["sub-01"], ["m01"]), (["01"], ["ses-m01"]),
    ])
    func filters(participants: [String], sessions: [String]) throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root)
        let dataset = try Dataset.discover(root, participantLabels: participants, sessionLabels: sessions)
        #expect(dataset.visits.map(\.filePrefix) == ["sub-01_ses-m01"])
        let two = try Dataset.discover(root, participantLabels: ["sub-02", "01"])
        #expect(two.visits.count == 6)
    }

    @Test("labels that are not BIDS labels are rejected before any path is built",
          arguments: ["../x", "sub-../x", "01/..", "", "sub-", "a_b", "ses-01"])
    func badLabels(label: String) throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root)
        #expect(throws: TrialError.invalidLabel(kind: "participant", label: label)) {
            try Dataset.discover(root, participantLabels: [label])
        }
        let error = #expect(throws: TrialError.self) { try Dataset.discover(root, sessionLabels: ["../" + label]) }
        #expect(error?.description.contains("not a BIDS label") == true)
    }

    @Test("a label that is valid but absent is an error naming the dataset")
    func absentLabel() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root)
        #expect(throws: TrialError.labelNotFound(kind: "participant", label: "07", dataset: root)) {
            try Dataset.discover(root, participantLabels: ["sub-07"])
        }
        #expect(throws: TrialError.labelNotFound(kind: "session", label: "m06", dataset: root)) {
            try Dataset.discover(root, sessionLabels: ["m06"])
        }
    }

    @Test("sessions.tsv without session_id is an error naming the file")
    func sessionsWithoutKey() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root, sessionsTSV: { $0 == "02" ? "session\tedss\nses-m00\t6\n" : nil })
        let file = root + "/sub-02/sub-02_sessions.tsv"
        let error = #expect(throws: TrialError.missingColumn(file: file, column: "session_id")) { try Dataset.discover(root) }
        #expect(error?.description == "\(file): missing required column 'session_id'")
    }

    @Test("participants.tsv without participant_id, and a ragged table, are errors naming the file")
    func badParticipants() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        makeBIDS(at: root, participantsTSV: "subject\tage\n01\t40\n")
        #expect(throws: TrialError.missingColumn(file: root + "/participants.tsv", column: "participant_id")) { try Dataset.discover(root) }
        put(root + "/participants.tsv", "participant_id\tage\nsub-01\n")
        let error = #expect(throws: TrialError.self) { try Dataset.discover(root) }
        #expect(error?.description.hasPrefix(root + "/participants.tsv: line 2") == true)
    }

    @Test("a manifest: relative paths, optional columns empty or n/a, extra columns as clinical data")
    func manifest() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        put(root + "/data/p1_v0_dwi.nii.gz", "a")
        put(root + "/data/p1_v0.bval", "0")
        put(root + "/data/p1_v0.bvec", "1")
        put(root + "/data/p1_v1_bold.nii.gz", "b")
        put(root + "/manifest.tsv", """
            participant_id\tsession_id\tdwi\tbval\tbvec\tbold\tconfounds\tedss\tarm
            P1\tbaseline\tdata/p1_v0_dwi.nii.gz\tdata/p1_v0.bval\t./data/p1_v0.bvec\t\tn/a\t6.0\tA
            sub-P1\tses-m1\tn/a\tn/a\tn/a\tdata/sub/../p1_v1_bold.nii.gz\t\t6.5\tA

            """)
        let dataset = try Dataset.discover(root + "/manifest.tsv")
        #expect(dataset.visits.map(\.filePrefix) == ["sub-P1_ses-baseline", "sub-P1_ses-m1"])
        #expect(dataset.visits[0].dwi == root + "/data/p1_v0_dwi.nii.gz")
        #expect(dataset.visits[0].bvec == root + "/data/p1_v0.bvec")
        #expect(dataset.visits[0].bold == nil && dataset.visits[0].confounds == nil)
        #expect(dataset.visits[1].bold == root + "/data/p1_v1_bold.nii.gz")
        #expect(dataset.visits[1].clinical.map(\.0) == ["edss", "arm"])
        #expect(dataset.visits[1].clinical.map(\.1) == ["6.5", "A"])
        #expect(dataset.source == .manifest(file: root + "/manifest.tsv"))
    }

    @Test("a manifest path that leaves the manifest's folder is an error for the manifest",
          arguments: ["../outside.nii.gz", "/etc/passwd", "data/../../outside.nii.gz", "link/outside.nii.gz"])
    func manifestEscape(path: String) throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let root = top + "/study"
        put(top + "/elsewhere/outside.nii.gz", "x")
        put(top + "/outside.nii.gz", "x")
        put(root + "/data/ok.nii.gz", "x")
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: top + "/elsewhere")
        put(root + "/manifest.tsv", "participant_id\tsession_id\tdwi\tbold\n01\tm00\tdata/ok.nii.gz\tn/a\n02\tm00\t\(path)\tn/a\n")
        #expect(throws: TrialError.pathEscapes(file: root + "/manifest.tsv", line: 3, column: "dwi", path: path)) {
            try Dataset.discover(root + "/manifest.tsv")
        }
    }

    @Test("manifest without session_id column, duplicate visits, and bad labels")
    func manifestVariants() throws {
        let root = makeTemporaryFolder()
        defer { removeFolder(root) }
        put(root + "/a.nii.gz", "x")
        put(root + "/m.tsv", "participant_id\tdwi\n01\ta.nii.gz\n02\ta.nii.gz\n")
        let dataset = try Dataset.discover(root + "/m.tsv")
        #expect(dataset.visits.map(\.filePrefix) == ["sub-01", "sub-02"])
        put(root + "/m.tsv", "participant_id\tdwi\n01\ta.nii.gz\nsub-01\ta.nii.gz\n")
        #expect(throws: TrialError.badTable(file: root + "/m.tsv", reason: "line 3: visit sub-01 listed twice")) {
            try Dataset.discover(root + "/m.tsv")
        }
        put(root + "/m.tsv", "participant_id\tdwi\n../x\ta.nii.gz\n")
        #expect(throws: TrialError.badTable(file: root + "/m.tsv", reason: "line 2: participant_id '../x' is not a BIDS label")) {
            try Dataset.discover(root + "/m.tsv")
        }
    }

    @Test("session order: visit_month when every session has one, else acq_time (as instants), else either where present, else the label")
    func sessionOrder() {
        func visit(_ session: String, _ clinical: [(String, String)]) -> VisitInput {
            VisitInput(participant: "01", session: session, clinical: clinical)
        }
        let byTime = [visit("m01", [("acq_time", "2024-02-01T10:00:00")]), visit("pre", [("acq_time", "2024-01-05T09:00:00")]),
                      visit("m03", [("acq_time", "2024-04-01T10:00:00")])]
        #expect(Dataset.sessionOrder(of: byTime).map(\.session) == ["pre", "m01", "m03"])
        let byMonth = [visit("m1", [("visit_month", "1")]), visit("m12", [("visit_month", "12")]), visit("scr", [("visit_month", "0")]),
                       visit("m3", [("visit_month", "n/a")])]
        #expect(Dataset.sessionOrder(of: byMonth).map(\.session) == ["scr", "m1", "m12", "m3"])
        // A missed visit has a month but no acquisition time: the months order it.
        let missed = [visit("m06", [("visit_month", "6"), ("acq_time", "2024-07-01")]), visit("m03", [("visit_month", "3"), ("acq_time", "n/a")]),
                      visit("bl", [("visit_month", "BL"), ("acq_time", "2024-01-01T09:00:00")])]
        #expect(Dataset.sessionOrder(of: missed).map(\.session) == ["bl", "m03", "m06"])
        // Times compared as instants, not as text: 01:00+02:00 is before 23:30Z of the day before.
        let zones = [visit("a", [("acq_time", "2024-01-31T23:30:00Z")]), visit("b", [("acq_time", "2024-02-01T01:00:00+02:00")])]
        #expect(Dataset.sessionOrder(of: zones).map(\.session) == ["b", "a"])
        let byLabel = [visit("m12", []), visit("m3", []), visit("m1", []), visit("m01", [])]
        #expect(Dataset.sessionOrder(of: byLabel).map(\.session) == ["m01", "m1", "m3", "m12"])
    }

    @Test("output paths cannot leave the output folder")
    func safeJoin() throws {
        #expect(throws: TrialError.self) { try SafePath.join("/tmp/out", "../x") }
        #expect(throws: TrialError.self) { try SafePath.join("/tmp/out", "sub-01/../../x") }
        #expect(try SafePath.join("/tmp/out", "sub-01/ses-m01") == "/tmp/out/sub-01/ses-m01")
    }
}
