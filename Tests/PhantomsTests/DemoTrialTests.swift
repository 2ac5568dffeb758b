import Foundation
import NIfTI
import Tabular
import Testing
@testable import Phantoms

/// A fresh temporary folder, removed by the caller.
func temporaryFolder(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "nimetrics-phantoms-\(name)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Every regular file under `folder`, relative to it, sorted.
func relativeFiles(_ folder: String) -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: folder)!
    var files: [String] = []
    while let next = enumerator.nextObject() as? String {
        var isFolder: ObjCBool = false
        FileManager.default.fileExists(atPath: folder + "/" + next, isDirectory: &isFolder)
        if !isFolder.boolValue { files.append(next) }
    }
    return files.sorted()
}

@Suite("Demo trial", .serialized)
struct DemoTrialTests {
    static let expectedTopLevel = [
        "README", "dataset_description.json", "participants.json", "participants.tsv",
        "atlas/atlas-demo_dseg.nii.gz", "atlas/atlas-demo_dseg.tsv",
        "ground_truth/changes.tsv", "ground_truth/connectivity.tsv", "ground_truth/fa.tsv", "ground_truth/networks.tsv",
    ]

    static func expectedFiles(participants: Int) -> [String] {
        var files = expectedTopLevel
        for p in 0..<participants {
            let sub = DemoTrial.participantID(p)
            files.append("\(sub)/\(sub)_sessions.tsv")
            for session in DemoTrial.sessions {
                let ses = "ses-\(session.label)"
                for ext in ["nii.gz", "bval", "bvec", "json"] { files.append("\(sub)/\(ses)/dwi/\(sub)_\(ses)_dwi.\(ext)") }
                for name in ["bold.nii.gz", "bold.json", "desc-confounds_timeseries.tsv"] {
                    files.append("\(sub)/\(ses)/func/\(sub)_\(ses)_task-rest_\(name)")
                }
            }
        }
        return files.sorted()
    }

    @Test("writes every file; the images read back; the same seed gives the same bytes")
    func generate() throws {
        let first = temporaryFolder("a"), second = temporaryFolder("b")
        defer {
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }
        try DemoTrial.generate(at: first, seed: 2026, participants: 1)
        try DemoTrial.generate(at: second, seed: 2026, participants: 1)
        let files = relativeFiles(first)
        #expect(files == Self.expectedFiles(participants: 1))
        #expect(relativeFiles(second) == files)
        for file in files {
            let a = FileManager.default.contents(atPath: first + "/" + file)
            let b = FileManager.default.contents(atPath: second + "/" + file)
            #expect(a != nil && a == b, "\(file) differs between two runs with the same seed")
        }

        let dwiStem = first + "/sub-01/ses-baseline/dwi/sub-01_ses-baseline_dwi"
        let dwi = try NIfTIFile.read(dwiStem + ".nii.gz")
        #expect(dwi.header.shape == [24, 28, 20, 35])
        #expect(dwi.header.datatype == .int16)
        #expect(dwi.header.axisCodes == "LAS")
        let bval = try String(contentsOfFile: dwiStem + ".bval", encoding: .utf8)
        let bvals = bval.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Double($0)! }
        #expect(bvals.count == 35 && bvals.filter { $0 == 0 }.count == 5 && bvals.filter { $0 == 1000 }.count == 30)
        let bvecRows = try String(contentsOfFile: dwiStem + ".bvec", encoding: .utf8).split(separator: "\n")
        #expect(bvecRows.count == 3 && bvecRows.allSatisfy { $0.split(separator: " ").count == 35 })

        // b = 0 in white matter near S0 = 1000; b = 1000 attenuated.
        let atlas = PhantomAtlas.demo()
        let cst = atlas.voxels(withLabel: 1)
        let n = dwi.header.voxelsPerVolume
        let b0 = cst.reduce(0.0) { $0 + Double(dwi.voxels[$1]) } / Double(cst.count)
        #expect(abs(b0 - 1000) < 30)
        let dw = cst.reduce(0.0) { $0 + Double(dwi.voxels[n + $1]) } / Double(cst.count)
        #expect(dw < 700)

        let bold = try NIfTIFile.read(first + "/sub-01/ses-m03/func/sub-01_ses-m03_task-rest_bold.nii.gz")
        #expect(bold.header.shape == [24, 28, 20, 150])
        #expect(bold.header.repetitionTime == 2)
        #expect(bold.header.hasSameGrid(as: dwi.header))
        let sidecar = try JSONValue.parse(String(contentsOfFile: first + "/sub-01/ses-m03/func/sub-01_ses-m03_task-rest_bold.json", encoding: .utf8))
        #expect(sidecar["RepetitionTime"]?.doubleValue == 2)
        let confounds = try TSVTable.read(first + "/sub-01/ses-m03/func/sub-01_ses-m03_task-rest_desc-confounds_timeseries.tsv")
        #expect(confounds.rows.count == 150)
        #expect(try confounds.column("framewise_displacement").first == "n/a")

        let labels = try NIfTIFile.read(first + "/atlas/atlas-demo_dseg.nii.gz")
        #expect(labels.voxels.map { Int($0) } == atlas.labels)
        #expect(labels.header.hasSameGrid(as: dwi.header))
        let atlasTable = try TSVTable.read(first + "/atlas/atlas-demo_dseg.tsv")
        #expect(Array(atlasTable.columns.prefix(3)) == ["index", "name", "network"])
        #expect(atlasTable.rows.count == 19)

        let sessions = try TSVTable.read(first + "/sub-01/sub-01_sessions.tsv")
        #expect(sessions.columns == ["session_id", "acq_time", "visit_month", "edss", "sdmt"])
        #expect(try sessions.column("session_id") == ["ses-baseline", "ses-m01", "ses-m03", "ses-m06"])
        #expect(try sessions.column("acq_time")[0] == "2025-01-06T09:00:00")
        #expect(try sessions.column("acq_time")[3] == "2025-07-07T09:00:00")
        let edss = try sessions.numericColumn("edss")
        #expect(edss[3] == edss[0] - 0.5)  // sub-01 is a responder

        let description = try JSONValue.parse(String(contentsOfFile: first + "/dataset_description.json", encoding: .utf8))
        #expect(description["BIDSVersion"] == .string("1.9.0"))
        #expect(description["DatasetType"] == .string("raw"))
        let participants = try TSVTable.read(first + "/participants.tsv")
        #expect(participants.columns == ["participant_id", "age", "sex", "group"])

        // Ground truth: the planted +5 % FA in the lesioned tracts of a responder.
        let fa = try TSVTable.read(first + "/ground_truth/fa.tsv")
        #expect(Array(fa.columns.prefix(4)) == ["participant_id", "session_id", "region", "true_fa"])
        func trueFA(_ session: String, _ region: String) throws -> Double {
            let row = fa.rows.first { $0[1] == session && $0[2] == region }!
            return Double(row[3])!
        }
        #expect(abs(try trueFA("ses-m06", "L_CST") / trueFA("ses-baseline", "L_CST") - 1.05) < 1e-4)
        #expect(abs(try trueFA("ses-m06", "R_CST") / trueFA("ses-baseline", "R_CST") - 1) < 1e-6)
        let connectivity = try TSVTable.read(first + "/ground_truth/connectivity.tsv")
        let dmn = connectivity.rows.filter { $0[2] == "DMN" }.map { Double($0[4])! }
        #expect(dmn == [0.3, 0.4, 0.5, 0.6])
        let networks = try TSVTable.read(first + "/ground_truth/networks.tsv")
        #expect(networks.rows.count == 14)
    }

    @Test("different seeds give different data")
    func seedsDiffer() {
        // The generator's parts, in memory (the files of a whole run are covered above and
        // are written from exactly these values).
        let atlas = PhantomAtlas.demo()
        let people = [Participant(index: 0, seed: 1), Participant(index: 0, seed: 2)]
        #expect(people[0].tensors(atlas: atlas, visit: 0) != people[1].tensors(atlas: atlas, visit: 0))
        let phantom = DiffusionPhantom(shape: atlas.shape, affine: atlas.affine, scheme: .halfSphere(),
                                       s0: atlas.brainMask.map { $0 ? 1000 : 0 }, truth: people[0].tensors(atlas: atlas, visit: 0))
        var random1 = PhantomRandom(seed: 1, stream: [0, 0, 1]), random2 = PhantomRandom(seed: 2, stream: [0, 0, 1])
        #expect(phantom.simulate(noiseSigma: 30, random: &random1) != phantom.simulate(noiseSigma: 30, random: &random2))
        let functional = FunctionalPhantom(atlas: atlas, configuration: .init(volumeCount: 40))
        var bold1 = PhantomRandom(seed: 1, stream: [0, 0, 2]), bold2 = PhantomRandom(seed: 2, stream: [0, 0, 2])
        let run1 = functional.simulate(withinNetworkCorrelation: ["DMN": 0.3], random: &bold1)
        let run2 = functional.simulate(withinNetworkCorrelation: ["DMN": 0.3], random: &bold2)
        #expect(run1.voxels != run2.voxels)
        #expect(run1.confounds.rows != run2.confounds.rows)
    }

    @Test("a bad participant count is refused with a typed error")
    func badCount() {
        #expect(throws: PhantomError.self) { try DemoTrial.generate(at: "/nonexistent/never", participants: 0) }
    }

    @Test("ISO dates: civil_from_days")
    func dates() {
        #expect(civilDate(daysSinceEpoch: 0) == (1970, 1, 1))
        #expect(civilDate(daysSinceEpoch: 20_094) == (2025, 1, 6))
        #expect(civilDate(daysSinceEpoch: 20_094 + 182) == (2025, 7, 7))
        #expect(civilDate(daysSinceEpoch: 11_016) == (2000, 2, 29))
    }
}
