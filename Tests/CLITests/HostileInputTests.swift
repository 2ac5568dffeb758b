import Foundation
import Testing

/// Inputs that once blocked, exhausted memory or printed a raw Foundation error: FIFOs and
/// other non-regular files given as any input, and a header extension claiming a gibibyte.
/// Every run has a time limit, so a regression fails the test instead of hanging the suite.
@Suite("Hostile inputs: FIFOs, folders, devices and a greedy header extension")
struct HostileInputTests {
    /// A folder holding the bad-input corpus's valid inputs and a FIFO named `fifo` (with
    /// every extension a test needs, as links to the one FIFO would be followed anyway).
    static func folderWithFIFOs(_ names: [String]) throws -> String {
        let folder = makeTemporaryFolder()
        for name in ["dwi.nii.gz", "dwi.bval", "dwi.bvec", "bold.nii.gz", "atlas.nii.gz", "atlas.tsv", "confounds.tsv"] {
            try FileManager.default.copyItem(atPath: badInputFolder + "/" + name, toPath: folder + "/" + name)
        }
        for name in names { #expect(mkfifo(folder + "/" + name, 0o600) == 0) }
        return folder
    }

    static let dti = ["dti", "--dwi", "dwi.nii.gz", "--bval", "dwi.bval", "--bvec", "dwi.bvec", "--out", "out"]
    static let fmri = ["fmri", "--bold", "bold.nii.gz", "--atlas", "atlas.nii.gz", "--out", "out"]

    static func replacing(_ arguments: [String], _ option: String, with value: String) -> [String] {
        guard let index = arguments.firstIndex(of: option) else { return arguments + [option, value] }
        var copy = arguments
        copy[index + 1] = value
        return copy
    }

    /// (the FIFO's name, the arguments naming it)
    static let fifoCases: [(String, [String])] = [
        ("fifo.nii", ["info", "fifo.nii"]),
        ("fifo.nii.gz", replacing(dti, "--dwi", with: "fifo.nii.gz")),
        ("fifo.bval", replacing(dti, "--bval", with: "fifo.bval")),
        ("fifo.bvec", replacing(dti, "--bvec", with: "fifo.bvec")),
        ("fifo.b", ["dti", "--dwi", "dwi.nii.gz", "--grad", "fifo.b", "--out", "out"]),
        ("fifo_mask.nii.gz", replacing(dti, "--mask", with: "fifo_mask.nii.gz")),
        ("fifo_atlas.nii.gz", replacing(fmri, "--atlas", with: "fifo_atlas.nii.gz")),
        ("fifo.tsv", replacing(fmri, "--atlas-table", with: "fifo.tsv")),
        ("fifo_confounds.tsv", replacing(fmri, "--confounds", with: "fifo_confounds.tsv")),
        ("bold.json", fmri),  // the BOLD's sidecar, read for the TR
        ("fifo_manifest.tsv", ["run", "fifo_manifest.tsv", "out", "participant"]),
    ]

    @Test("a FIFO given as any input is refused at once with one line naming it", arguments: fifoCases)
    func fifo(name: String, arguments: [String]) throws {
        let folder = try Self.folderWithFIFOs([name])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Nothing ever writes to the FIFO: a reader that opened it would wait forever.
        let run = try runTool(arguments, in: folder, timeLimit: 60)
        #expect(run.status == 1, "\(run.status): \(run.stderr)")
        #expect(run.stderr == "nimetrics: \(name): not a regular file (a FIFO)\n", "\(arguments)")
    }

    @Test("a folder or a device given as an input file is refused, naming what it is")
    func folderAndDevice() throws {
        let folder = try Self.folderWithFIFOs([])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/adir.bval", withIntermediateDirectories: false)
        for (value, kind) in [("adir.bval", "a folder"), ("/dev/null", "a character device")] {
            let run = try runTool(Self.replacing(Self.dti, "--bval", with: value), in: folder, timeLimit: 60)
            #expect(run.status == 1)
            #expect(run.stderr == "nimetrics: \(value): not a regular file (\(kind))\n")
        }
    }

    @Test("a FIFO among a batch's inputs fails its visit, not the batch, and blocks nothing")
    func fifoInBatch() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = folder + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
        for name in ["dwi.nii.gz", "dwi.bval", "dwi.bvec"] {
            try FileManager.default.copyItem(atPath: badInputFolder + "/" + name, toPath: data + "/" + name)
        }
        #expect(mkfifo(data + "/fifo.bval", 0o600) == 0)
        try """
            participant_id\tsession_id\tdwi\tbval\tbvec
            01\t01\tdwi.nii.gz\tdwi.bval\tdwi.bvec
            02\t01\tdwi.nii.gz\tfifo.bval\tdwi.bvec

            """.write(toFile: data + "/manifest.tsv", atomically: true, encoding: .utf8)
        let run = try runTool(["run", "data/manifest.tsv", "out", "participant", "--jobs", "1"], in: folder, timeLimit: 120)
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("fifo.bval: not a regular file (a FIFO)"), "\(run.stderr)")
        let record = try String(contentsOfFile: folder + "/out/sub-02/ses-01/sub-02_ses-01_desc-dwi_visit.json", encoding: .utf8)
        #expect(record.contains("\"failed\"") && record.contains("fifo.bval: not a regular file (a FIFO)"))
        #expect(FileManager.default.fileExists(atPath: folder + "/out/sub-01/ses-01/sub-01_ses-01_desc-dwi_metrics.tsv"))
    }

    /// Scripts/fuzz: a 745-byte NIfTI-2 file whose one header extension claims 1 GiB made
    /// niftilib allocate it before any check. Under a 256 MiB address-space limit the old
    /// reader's allocation failed and niftilib dropped the extension silently, so `info` printed
    /// a header; now the file is refused from its first 552 bytes.
    @Test("the fuzz finding is refused at once, with one line, in little memory")
    func greedyExtension() throws {
        let path = repositoryRoot + "/Fixtures/fuzz-regressions/nifti/oom-nifti2-extension.nii"
        let start = Date()
        let run = try runTool(["info", path], timeLimit: 60, addressSpaceLimitKiB: 256 * 1024)
        let seconds = Date().timeIntervalSince(start)
        #expect(run.status == 1 && !run.signaled)
        #expect(run.stderr == "nimetrics: \(path): header extension 1 at byte 544 claims 1.1 GB, past the end of the file (745 bytes)\n")
        #expect(seconds < 10, "took \(seconds) s")
    }

    @Test("output path errors are one line of our own, never Foundation's")
    func outputPathErrors() throws {
        let folder = try Self.folderWithFIFOs([])
        defer {
            chmod(folder + "/locked", 0o755)
            try? FileManager.default.removeItem(atPath: folder)
        }
        var cases: [([String], String)] = [
            (Self.replacing(Self.fmri, "--out", with: "atlas.tsv"), "nimetrics: atlas.tsv: a regular file of that name exists, a folder is needed"),
            (["demo", "--out", "dwi.bval"], "nimetrics: dwi.bval: a regular file of that name exists, a folder is needed"),
            (["demo", "--out", "dwi.bval/x"], "nimetrics: dwi.bval/x: dwi.bval is a regular file, not a folder"),
        ]
        // Permissions do not stop root; the check is then left to the corpus's other cases.
        if getuid() != 0 {
            try FileManager.default.createDirectory(atPath: folder + "/locked", withIntermediateDirectories: false)
            chmod(folder + "/locked", 0o555)
            cases.append((Self.replacing(Self.dti, "--out", with: "locked/out"),
                          "nimetrics: locked/out: cannot create the folder in locked: Permission denied"))
        }
        for (arguments, line) in cases {
            let run = try runTool(arguments, in: folder, timeLimit: 120)
            #expect(run.status == 1)
            #expect(run.stderr == line + "\n", "\(arguments)")
            #expect(!run.stderr.contains("NSCocoaErrorDomain") && !run.stderr.contains("operation could"))
        }
    }
}
