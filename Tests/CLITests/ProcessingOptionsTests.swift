import Foundation
import Testing

/// The long option names (`--name`) a command's `--help` lists in its option sections
/// (lines that start with the option, not mentions in the discussion).
private func optionNames(_ command: String) throws -> Set<String> {
    let help = try runTool([command, "--help"]).stdout
    var names = Set<String>()
    for line in help.split(separator: "\n") {
        let trimmed = line.drop { $0 == " " }
        guard trimmed.hasPrefix("-"), let start = trimmed.range(of: "--") else { continue }
        let name = trimmed[start.lowerBound...].prefix { $0 == "-" || $0.isLetter || $0.isNumber }
        if name.count > 2 { names.insert(String(name)) }
    }
    return names
}

@Suite("Processing options: one definition for dti, fmri and run")
struct ProcessingOptionsTests {
    @Test("run --help lists every per-visit option of dti and fmri")
    func runListsEveryPerVisitOption() throws {
        let run = try optionNames("run")
        // The inputs themselves come from the dataset in a batch; output naming is run's own.
        let datasetInputs: Set<String> = ["--dwi", "--bval", "--bvec", "--grad", "--bold", "--confounds", "--out", "--prefix",
                                          "--help", "--version"]
        // The one mask option of each command is named for its grid in a batch.
        let renamed = ["--mask": ["--dwi-mask", "--func-mask"]]
        var perVisit = try optionNames("dti").union(try optionNames("fmri")).subtracting(datasetInputs)
        #expect(perVisit.count >= 20, "too few options parsed from --help: \(perVisit.sorted())")
        for (option, replacements) in renamed where perVisit.contains(option) {
            perVisit.remove(option)
            for replacement in replacements { #expect(run.contains(replacement), "run --help lacks \(replacement)") }
        }
        let missing = perVisit.subtracting(run)
        #expect(missing.isEmpty, "run --help lacks \(missing.sorted())")
    }

    /// `command --option value`: each value must be refused, the message naming both.
    static let badNumbers = [
        "fmri --fd-threshold nan", "fmri --fd-threshold -1", "fmri --high-pass inf", "fmri --low-pass -0.1", "fmri --tr -2",
        "fmri --min-coverage nan", "fmri --dummy-scans -3", "dti --iterations -2", "dti --max-b nan", "dti --b0-threshold -5",
        "dti --threads -1", "run --fd-threshold -1", "run --jobs 0",
    ]

    @Test("numeric options refuse NaN, infinities and negative values, naming the option and the value", arguments: badNumbers)
    func numericOptionsAreChecked(case text: String) throws {
        let arguments = text.split(separator: " ").map(String.init)
        let (option, value) = (arguments[1], arguments[2])
        let required: [String] = switch arguments[0] {
        case "fmri": ["--bold", "b.nii.gz", "--atlas", "a.nii.gz", "--out", "o"]
        case "dti": ["--dwi", "d.nii.gz", "--bval", "b", "--bvec", "v", "--out", "o"]
        default: ["in", "out", "participant"]
        }
        let folder = makeTemporaryFolder()
        let result = try runTool(arguments + required, in: folder)
        #expect(result.status != 0 && !result.signaled)
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains(option) && firstLine.contains(value), "message: \(result.stderr)")
        #expect(filesBelow(folder).isEmpty, "nothing may be written: \(filesBelow(folder))")
    }

    @Test("--max-b's help states the automatic default, in dti and run")
    func maxBHelp() throws {
        for command in ["dti", "run"] {
            let help = try runTool([command, "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(help.contains("--max-b <B> Fit only the volumes with b <= B (s/mm^2) as written, and the b=0 volumes."), "\(command)")
            #expect(help.contains("Default: automatic. A single-shell series is fitted whole, at any b; a multi-shell series is fitted to b <= 1500, or to its lowest shell when that is above 1500."), "\(command)")
        }
    }

    @Test("a path pattern with an unknown placeholder is refused before anything runs")
    func badPattern() throws {
        let folder = makeTemporaryFolder()
        let result = try runTool(["run", "in", "out", "participant", "--lesion-mask", "masks/sub-{participant}.nii.gz"], in: folder)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--lesion-mask") && result.stderr.contains("{participant}"), "message: \(result.stderr)")
    }
}

@Suite("run: per-visit files and the re-run fingerprint")
struct RunFingerprintEndToEndTests {
    /// One visit of the shared demo dataset with a copy of its atlas (which the test edits).
    private func setUp() throws -> (data: String, atlas: String, output: String) {
        let data = try sharedDemoDataset()
        let work = makeTemporaryFolder()
        let atlas = work + "/atlas_dseg.nii.gz"
        try FileManager.default.copyItem(atPath: data + "/atlas/atlas-demo_dseg.nii.gz", toPath: atlas)
        try FileManager.default.copyItem(atPath: data + "/atlas/atlas-demo_dseg.tsv", toPath: work + "/atlas_dseg.tsv")
        return (data, atlas, work + "/out")
    }

    private func run(_ data: String, _ output: String, _ extra: [String]) throws -> ToolRun {
        try runTool(["run", data, output, "participant", "--participant-label", "01", "--session-label", "baseline",
                     "--threads", "1"] + extra)
    }

    @Test("editing the atlas's label table redoes the visit with the new names")
    func editedLabelTableRedoes() throws {
        let (data, atlas, output) = try setUp()
        let first = try run(data, output, ["--atlas", atlas])
        try #require(first.status == 0, "\(first.stderr)")
        let unchanged = try run(data, output, ["--atlas", atlas])
        #expect(unchanged.stderr.contains("0 processed, 2 up to date"), "\(unchanged.stderr)")

        let table = atlas.replacingOccurrences(of: ".nii.gz", with: ".tsv")
        let text = try String(contentsOfFile: table, encoding: .utf8)
        try text.replacingOccurrences(of: "L_CST", with: "Left_CST").write(toFile: table, atomically: true, encoding: .utf8)
        let edited = try run(data, output, ["--atlas", atlas])
        // Both modalities read the table: both are redone.
        #expect(edited.stderr.contains("2 processed, 0 up to date"), "\(edited.stderr)")
        let metrics = try String(contentsOfFile: output + "/sub-01/ses-baseline/sub-01_ses-baseline_desc-dwi_metrics.tsv", encoding: .utf8)
        #expect(metrics.contains("Left_CST") && !metrics.contains("\tL_CST\t"))
        let dwiRecord = try String(contentsOfFile: output + "/sub-01/ses-baseline/sub-01_ses-baseline_desc-dwi_visit.json", encoding: .utf8)
        let funcRecord = try String(contentsOfFile: output + "/sub-01/ses-baseline/sub-01_ses-baseline_desc-func_visit.json", encoding: .utf8)
        #expect(dwiRecord.contains("\"dwi_atlas_table\"") && funcRecord.contains("\"func_atlas_table\""))

        // A functional parameter redoes the BOLD only.
        let band = try run(data, output, ["--atlas", atlas, "--low-pass", "0.09"])
        #expect(band.stderr.contains("1 processed, 1 up to date"), "\(band.stderr)")
    }

    @Test("a lesion mask given as a pattern adds the lesion rows, and its content is in the fingerprint")
    func lesionMaskPattern() throws {
        let (data, atlas, output) = try setUp()
        let masks = URL(fileURLWithPath: atlas).deletingLastPathComponent().path + "/masks"
        try FileManager.default.createDirectory(atPath: masks, withIntermediateDirectories: true)
        // Any label image on the DWI grid serves as a lesion mask: its labelled voxels.
        try FileManager.default.copyItem(atPath: atlas, toPath: masks + "/sub-01_ses-baseline_label-lesion_mask.nii.gz")
        let pattern = masks + "/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz"
        let result = try run(data, output, ["--atlas", atlas, "--lesion-mask", pattern, "--iterations", "2", "--min-coverage", "0.4"])
        try #require(result.status == 0, "\(result.stderr)")
        let metrics = try String(contentsOfFile: output + "/sub-01/ses-baseline/sub-01_ses-baseline_desc-dwi_metrics.tsv", encoding: .utf8)
        #expect(metrics.contains("dwi\tlesion\tfa_mean") && metrics.contains("dwi\tnormal_appearing_tissue\tfa_mean"))
        let sidecar = try String(contentsOfFile: output + "/sub-01/ses-baseline/dwi/sub-01_ses-baseline_model-tensor_dwimap.json",
                                 encoding: .utf8)
        #expect(sidecar.contains("\"Iterations\": 2"))
        let missing = try run(data, output + "2", ["--atlas", atlas, "--lesion-mask", masks + "/none-{subject}.nii.gz"])
        #expect(missing.status == 1 && missing.stderr.contains("none-01.nii.gz"), "\(missing.stderr)")
    }
}
