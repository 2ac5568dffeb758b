import Foundation
import NIfTI
import Tabular
import Testing
@testable import Phantoms

/// The derivatives layout of 4 participants (every planned situation: the multi-shell visit of
/// sub-01, the second runs of sub-02 and sub-04, the missed visit of sub-03, a run without
/// non-steady-state volumes in sub-04), written once for the suite and removed after it.
struct DerivativesDataset: SuiteTrait, TestScoping {
    static let participants = 4
    @TaskLocal static var root: String?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let folder = temporaryFolder("derivatives")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try DemoTrial.generate(at: folder, seed: 2026, participants: Self.participants, layout: .derivatives)
        try await Self.$root.withValue(folder) { try await function() }
    }
}

/// A BIDS file name taken apart: `sub-01_ses-m01_task-rest_run-1_bold.nii.gz` gives the
/// entities in order, the suffix `bold` and the extension `.nii.gz`.
struct BIDSName: Equatable {
    var entities: [(key: String, value: String)]
    var suffix: String
    var extension_: String

    static func == (a: BIDSName, b: BIDSName) -> Bool {
        a.entities.map(\.key) == b.entities.map(\.key) && a.entities.map(\.value) == b.entities.map(\.value)
            && a.suffix == b.suffix && a.extension_ == b.extension_
    }

    /// The entity order of the BIDS specification (the keys these datasets use).
    static let entityOrder = ["sub", "ses", "task", "acq", "run", "space", "desc"]

    /// nil when the name is not `key-value_…_suffix.ext` with known keys in BIDS order and
    /// alphanumeric labels.
    init?(_ name: String) {
        guard let dot = name.firstIndex(of: ".") else { return nil }
        extension_ = String(name[dot...])
        var parts = name[..<dot].split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let last = parts.popLast(), !last.isEmpty, last.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        suffix = last
        var entities: [(key: String, value: String)] = []
        for part in parts {
            let pair = part.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2, !pair[1].isEmpty, pair[1].allSatisfy({ $0.isLetter || $0.isNumber }),
                  let rank = Self.entityOrder.firstIndex(of: pair[0]),
                  rank > (entities.last.flatMap { Self.entityOrder.firstIndex(of: $0.key) } ?? -1) else { return nil }
            entities.append((pair[0], pair[1]))
        }
        guard entities.first?.key == "sub" else { return nil }
        self.entities = entities
    }

    func value(_ key: String) -> String? { entities.first { $0.key == key }?.value }
}

@Suite("Demo trial, derivatives layout", .serialized, DerivativesDataset())
struct DemoDerivativesTests {
    var root: String { DerivativesDataset.root! }
    var plan: [DemoTrial.PlannedVisit] { DemoTrial.derivativesPlan(participants: DerivativesDataset.participants) }

    /// Every file the plan calls for, relative to the root.
    func expectedFiles() -> [String] {
        var files = [
            ".bidsignore", "README", "dataset_description.json", "participants.json", "participants.tsv",
            "atlas/atlas-demo_dseg.nii.gz", "atlas/atlas-demo_dseg.tsv",
            "derivatives/fmriprep/dataset_description.json", "derivatives/qsiprep/dataset_description.json",
        ]
        files += ["changes", "connectivity", "fa", "networks", "runs", "visits"].map { "ground_truth/\($0).tsv" }
        for p in 0..<DerivativesDataset.participants {
            let sub = DemoTrial.participantID(p)
            files.append("\(sub)/\(sub)_sessions.tsv")
        }
        for visit in plan where visit.imaged {
            let (sub, ses) = (visit.participantID, visit.sessionID)
            for ext in ["nii.gz", "bval", "bvec", "json"] { files.append("\(sub)/\(ses)/dwi/\(sub)_\(ses)_dwi.\(ext)") }
            let qsiprep = "derivatives/qsiprep/\(sub)/\(ses)/dwi/\(sub)_\(ses)_space-T1w_"
            for ext in ["nii.gz", "bval", "bvec", "b", "json"] { files.append(qsiprep + "desc-preproc_dwi.\(ext)") }
            files += [qsiprep + "desc-brain_mask.nii.gz", qsiprep + "dwiref.nii.gz"]
            for run in visit.runs {
                let stem = "\(sub)_\(ses)_task-rest_run-\(run.run)"
                files += ["\(sub)/\(ses)/func/\(stem)_bold.nii.gz", "\(sub)/\(ses)/func/\(stem)_bold.json"]
                let fmriprep = "derivatives/fmriprep/\(sub)/\(ses)/func/\(stem)_"
                for name in ["desc-preproc_bold.nii.gz", "desc-preproc_bold.json", "desc-brain_mask.nii.gz", "boldref.nii.gz"] {
                    files.append(fmriprep + "space-MNI152NLin2009cAsym_" + name)
                }
                files += [fmriprep + "desc-confounds_timeseries.tsv", fmriprep + "desc-confounds_timeseries.json"]
            }
        }
        return files.sorted()
    }

    @Test("the plan: sub-01 ses-m06 multi-shell, sub-03 ses-m03 missed, second runs of sub-02 and sub-04, 0 to 4 non-steady-state volumes")
    func thePlan() {
        let plan = DemoTrial.derivativesPlan(participants: 5)
        #expect(plan.count == 20)
        #expect(plan.filter { !$0.imaged }.map { "\($0.participantID) \($0.sessionID)" } == ["sub-03 ses-m03"])
        #expect(plan.filter { $0.shells == [0, 1000, 2000] }.map { "\($0.participantID) \($0.sessionID)" } == ["sub-01 ses-m06"])
        #expect(plan.filter { $0.runs.count == 2 }.map { "\($0.participantID) \($0.sessionID)" }
                == ["sub-02 ses-baseline", "sub-02 ses-m03", "sub-04 ses-m01", "sub-04 ses-m06"])
        let counts = plan.flatMap { $0.runs.map(\.nonSteadyStateVolumes) }
        #expect(counts.count == 23 && Set(counts) == [0, 2, 3, 4])
        #expect(plan.filter(\.imaged).allSatisfy { $0.runs.first?.run == 1 && $0.shells.first == 0 })
    }

    @Test("every planned file and nothing else; every name under sub-* parses as BIDS and agrees with its folders")
    func files() throws {
        let files = relativeFiles(root)
        #expect(files == expectedFiles())
        for file in files where file.hasPrefix("sub-") || file.contains("/sub-") {
            let parts = file.split(separator: "/").map(String.init)
            let name = try #require(BIDSName(parts.last!), "\(file) is not a BIDS name")
            let sub = parts.first { $0.hasPrefix("sub-") }!
            #expect("sub-" + (name.value("sub") ?? "") == sub, "\(file)")
            if let ses = parts.first(where: { $0.hasPrefix("ses-") }) {
                #expect("ses-" + (name.value("ses") ?? "") == ses, "\(file)")
                let datatype = parts[parts.count - 2]
                let suffixes: Set<String> = datatype == "dwi" ? ["dwi", "mask", "dwiref"] : ["bold", "mask", "boldref", "timeseries"]
                #expect(suffixes.contains(name.suffix), "\(file)")
                // Derivatives carry their space; raw files never do.
                #expect((name.value("space") != nil) == (file.hasPrefix("derivatives/") && name.suffix != "timeseries"), "\(file)")
            }
        }
        func description(_ path: String) throws -> JSONValue {
            try JSONValue.parse(String(contentsOfFile: root + "/" + path, encoding: .utf8))
        }
        #expect(try description("dataset_description.json")["DatasetType"] == .string("raw"))
        for (tree, pipeline) in [("fmriprep", "fMRIPrep"), ("qsiprep", "qsiprep")] {
            let d = try description("derivatives/\(tree)/dataset_description.json")
            #expect(d["DatasetType"] == .string("derivative"))
            guard case .array(let generators)? = d["GeneratedBy"] else { Issue.record("\(tree): no GeneratedBy"); continue }
            #expect(generators.first?["Name"] == .string(pipeline) && generators.first?["Version"] != nil)
        }
        let sidecar = try description("derivatives/fmriprep/sub-01/ses-baseline/func/"
                                      + "sub-01_ses-baseline_task-rest_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.json")
        #expect(sidecar["RepetitionTime"]?.doubleValue == 2 && sidecar["SkullStripped"] == .bool(false) && sidecar["TaskName"] == .string("rest"))
    }

    @Test("the non-steady-state volumes are flagged, one column each, and they are exactly the bright ones; images share the atlas grid")
    func nonSteadyState() throws {
        let atlas = PhantomAtlas.demo()
        let atlasHeader = try NIfTIFile.readHeader(root + "/atlas/atlas-demo_dseg.nii.gz")
        let head = atlas.brainMask.indices.filter { atlas.brainMask[$0] }
        let runs = try TSVTable.read(root + "/ground_truth/runs.tsv")
        #expect(runs.rows.count == plan.reduce(0) { $0 + $1.runs.count })
        for visit in plan {
            for run in visit.runs {
                let row = try #require(runs.rows.first { $0[0] == visit.participantID && $0[1] == visit.sessionID && $0[2] == String(run.run) })
                #expect(row[6] == String(run.nonSteadyStateVolumes))
                let confounds = try TSVTable.read(root + "/" + row[4])
                #expect(confounds.rows.count == DemoTrial.boldVolumes)
                let flags = confounds.columns.filter { $0.hasPrefix("non_steady_state_outlier") }
                #expect(flags == (0..<run.nonSteadyStateVolumes).map { String(format: "non_steady_state_outlier%02d", $0) })
                for (k, name) in flags.enumerated() {
                    let column = try confounds.numericColumn(name)
                    #expect(column.indices.allSatisfy { column[$0] == ($0 == k ? 1 : 0) }, "\(row[4]) \(name)")
                }
                // Mean over the head per volume against the median of the 10 volumes after the
                // flagged ones (drift and head motion move it by about 1 % over 10 volumes): the
                // flagged volumes well above it, decaying; the first unflagged one at it.
                let bold = try NIfTIFile.read(root + "/" + row[3])
                #expect(bold.header.shape == atlas.shape + [DemoTrial.boldVolumes])
                #expect(bold.header.hasSameGrid(as: atlasHeader))
                let n = bold.header.voxelsPerVolume
                let means = (0..<DemoTrial.boldVolumes).map { t in head.reduce(0.0) { $0 + Double(bold.voxels[t * n + $1]) } / Double(head.count) }
                let first = run.nonSteadyStateVolumes
                let steady = means[first..<(first + 10)].sorted()[5]
                for t in 0..<first {
                    #expect(means[t] > 1.03 * steady, "\(row[3]) volume \(t): \(means[t] / steady)")
                    if t > 0 { #expect(means[t] < means[t - 1]) }
                }
                #expect(abs(means[first] / steady - 1) < 0.015, "\(row[3]) first steady volume: \(means[first] / steady)")
            }
        }
    }

    @Test("second runs exist exactly where planned, with their own noise")
    func secondRuns() throws {
        let files = relativeFiles(root)
        let secondRuns = Set(files.filter { $0.hasSuffix("_run-2_bold.nii.gz") }.map { $0.split(separator: "/").prefix(2).joined(separator: "/") })
        #expect(secondRuns == Set(plan.filter { $0.runs.count == 2 }.map { "\($0.participantID)/\($0.sessionID)" }))
        #expect(secondRuns == ["sub-02/ses-baseline", "sub-02/ses-m03", "sub-04/ses-m01", "sub-04/ses-m06"])
        #expect(!files.contains { $0.contains("_run-3_") })
        let folder = root + "/derivatives/fmriprep/sub-02/ses-m03/func/sub-02_ses-m03_task-rest_"
        let first = try NIfTIFile.read(folder + "run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
        let second = try NIfTIFile.read(folder + "run-2_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
        let n = first.header.voxelsPerVolume
        #expect(first.header.shape == second.header.shape)
        #expect(Array(first.voxels[(10 * n)...]) != Array(second.voxels[(10 * n)...]))
    }

    @Test("the multi-shell visit has three shells in the raw and QSIPrep trees, and only it")
    func multiShell() throws {
        for visit in plan where visit.imaged {
            let (sub, ses) = (visit.participantID, visit.sessionID)
            for stem in ["\(sub)/\(ses)/dwi/\(sub)_\(ses)_dwi", "derivatives/qsiprep/\(sub)/\(ses)/dwi/\(sub)_\(ses)_space-T1w_desc-preproc_dwi"] {
                let bvals = try String(contentsOfFile: root + "/" + stem + ".bval", encoding: .utf8)
                    .split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Double($0)! }
                #expect(Set(bvals) == Set(visit.shells), "\(stem)")
                #expect(visit.shells.allSatisfy { b in bvals.filter { $0 == b }.count == (b == 0 ? 5 : 30) }, "\(stem)")
                if stem.hasPrefix("derivatives/") {
                    let table = try String(contentsOfFile: root + "/" + stem + ".b", encoding: .utf8).split(separator: "\n")
                    #expect(table.map { Double($0.split(separator: " ")[3])! } == bvals)
                    #expect(try NIfTIFile.readHeader(root + "/" + stem + ".nii.gz").shape.last == bvals.count)
                }
            }
        }
        let multi = plan.filter { $0.shells.count == 3 }
        #expect(multi.map(\.participantID) == ["sub-01"] && multi.map(\.sessionID) == ["ses-m06"])
    }

    @Test("the missed visit: clinical data in sessions.tsv, no image or folder in any tree, no FA truth")
    func missedVisit() throws {
        let sessions = try TSVTable.read(root + "/sub-03/sub-03_sessions.tsv")
        let row = try #require(sessions.rows.first { $0[0] == "ses-m03" })
        #expect(Double(row[3]) != nil && Int(row[4]) != nil && row[2] == "3")
        #expect(sessions.rows.count == 4)
        let files = relativeFiles(root)
        #expect(!files.contains { $0.contains("sub-03/ses-m03") || $0.contains("sub-03_ses-m03") })
        for tree in ["", "/derivatives/fmriprep", "/derivatives/qsiprep"] {
            #expect(!FileManager.default.fileExists(atPath: root + tree + "/sub-03/ses-m03"))
            #expect(FileManager.default.fileExists(atPath: root + tree + "/sub-03/ses-m01"))
        }
        let fa = try TSVTable.read(root + "/ground_truth/fa.tsv")
        #expect(!fa.rows.contains { $0[0] == "sub-03" && $0[1] == "ses-m03" })
        #expect(fa.rows.count == 15 * PhantomAtlas.demo().regions.count)
        let visits = try TSVTable.read(root + "/ground_truth/visits.tsv")
        #expect(visits.rows.filter { $0[2] == "missed" }.map { $0[0] + " " + $0[1] } == ["sub-03 ses-m03"])
    }

    @Test("the same seed gives the same bytes; run 1 after its non-steady-state volumes is the BIDS layout's run")
    func sameBytes() throws {
        let first = temporaryFolder("d1"), second = temporaryFolder("d2"), bids = temporaryFolder("b")
        defer { for folder in [first, second, bids] { try? FileManager.default.removeItem(atPath: folder) } }
        try DemoTrial.generate(at: first, seed: 2026, participants: 1, layout: .derivatives)
        try DemoTrial.generate(at: second, seed: 2026, participants: 1, layout: .derivatives)
        let files = relativeFiles(first)
        #expect(files.count > 60 && relativeFiles(second) == files)
        for file in files {
            let a = FileManager.default.contents(atPath: first + "/" + file)
            #expect(a != nil && a == FileManager.default.contents(atPath: second + "/" + file), "\(file) differs")
        }
        try DemoTrial.generate(at: bids, seed: 2026, participants: 1, layout: .bids)
        for file in ["README", "participants.tsv", "sub-01/sub-01_sessions.tsv", "ground_truth/changes.tsv", "ground_truth/fa.tsv"] {
            let same = FileManager.default.contents(atPath: first + "/" + file) == FileManager.default.contents(atPath: bids + "/" + file)
            #expect(same == (file != "README"), "\(file)")
        }
        for visit in DemoTrial.derivativesPlan(participants: 1) {
            let (sub, ses) = (visit.participantID, visit.sessionID)
            let skip = visit.runs[0].nonSteadyStateVolumes
            let derived = try NIfTIFile.read(first + "/derivatives/fmriprep/\(sub)/\(ses)/func/\(sub)_\(ses)_task-rest_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
            let original = try NIfTIFile.read(bids + "/\(sub)/\(ses)/func/\(sub)_\(ses)_task-rest_bold.nii.gz")
            let n = original.header.voxelsPerVolume
            #expect(Array(derived.voxels[(skip * n)...]) == Array(original.voxels[(skip * n)...]), "\(sub) \(ses)")
            if skip > 0 { #expect(Array(derived.voxels[..<n]) != Array(original.voxels[..<n])) }
        }
    }
}
