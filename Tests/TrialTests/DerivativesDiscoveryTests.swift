import Foundation
import Testing
@testable import Trial

@Suite("Discovery of fMRIPrep and QSIPrep derivatives")
struct DerivativesDiscoveryTests {
    /// A raw dataset (2 participants x 1 session) with fMRIPrep and QSIPrep trees beside it:
    /// sub-01 has two runs in two spaces each; sub-03 exists only in the derivatives.
    static func make() -> String {
        let top = makeTemporaryFolder()
        let root = top + "/bids"
        makeBIDS(at: root, participants: ["01", "02"], sessions: ["m00"],
                 participantsTSV: "participant_id\tage\nsub-01\t50\nsub-02\t60\nsub-03\t70\n")
        let prep = root + "/derivatives/fmriprep"
        put(prep + "/dataset_description.json", "{\"Name\": \"fMRIPrep\", \"DatasetType\": \"derivative\"}")
        for subject in ["01", "03"] {
            let func_ = prep + "/sub-\(subject)/ses-m00/func/sub-\(subject)_ses-m00_task-rest"
            for run in ["1", "2"] {
                for space in ["MNI152NLin2009cAsym", "T1w"] {
                    let files = ["desc-preproc_bold.nii.gz": "bold \(run) \(space)", "desc-brain_mask.nii.gz": "mask",
                                 "desc-preproc_bold.json": "{\"SkullStripped\": false}"]
                    for (name, text) in files { put(func_ + "_run-\(run)_space-\(space)_" + name, text) }
                }
                put(func_ + "_run-\(run)_desc-confounds_timeseries.tsv", "trans_x\n0\n")
            }
            put(prep + "/sub-\(subject)/ses-m00/func/sub-\(subject)_ses-m00_task-motor_run-1_space-T1w_desc-preproc_bold.nii.gz", "motor")
        }
        let qsi = root + "/derivatives/qsiprep"
        put(qsi + "/dataset_description.json", "{\"Name\": \"QSIPrep\", \"DatasetType\": \"derivative\"}")
        let qsiprepFiles = ["preproc_dwi.nii.gz": "dwi", "preproc_dwi.bval": "0 1000\n", "preproc_dwi.bvec": "0 1\n0 0\n0 0\n",
                            "brain_mask.nii.gz": "mask"]
        for (name, text) in qsiprepFiles { put(qsi + "/sub-02/ses-m00/dwi/sub-02_ses-m00_space-T1w_desc-" + name, text) }
        put(root + "/derivatives/nimetrics/dataset_description.json", "{\"GeneratedBy\": [{\"Name\": \"nimetrics\"}]}")
        put(root + "/derivatives/nimetrics/sub-01/ses-m00/func/sub-01_ses-m00_task-rest_desc-preproc_bold.nii.gz", "ours")
        return root
    }

    @Test("derivatives replace the raw images modality by modality; every run of the task; the spaces settled by the atlas grid")
    func derivatives() throws {
        let root = Self.make()
        var dataset = try Dataset.discover(root, options: DiscoveryOptions())
        #expect(dataset.derivativeRoots.map { URL(fileURLWithPath: $0).lastPathComponent } == ["fmriprep", "qsiprep"])
        #expect(dataset.visits.map(\.filePrefix) == ["sub-01_ses-m00", "sub-02_ses-m00", "sub-03_ses-m00"])
        let first = dataset.visits[0]
        #expect(first.boldRuns.count == 4, "2 runs x 2 spaces before the choice")
        #expect(first.dwi == root + "/sub-01/ses-m00/dwi/sub-01_ses-m00_dwi.nii.gz", "no derivative DWI: the raw one")
        let second = dataset.visits[1]
        #expect(second.dwi?.hasSuffix("space-T1w_desc-preproc_dwi.nii.gz") == true)
        #expect(second.dwiMask?.hasSuffix("space-T1w_desc-brain_mask.nii.gz") == true)
        #expect(second.bold == root + "/sub-02/ses-m00/func/sub-02_ses-m00_task-rest_bold.nii.gz", "no derivative BOLD: the raw one")
        // Found only in the derivatives, with the raw dataset's clinical data.
        #expect(dataset.visits[2].clinical.first { $0.0 == "age" }?.1 == "70")

        try dataset.chooseSpaces { $0.contains("space-T1w") }
        let runs = dataset.visits[0].boldRuns
        #expect(runs.map(\.label) == ["1", "2"] && runs.allSatisfy { $0.space == "T1w" })
        #expect(runs[1].confounds?.hasSuffix("run-2_desc-confounds_timeseries.tsv") == true)
        #expect(runs[1].brainMask?.hasSuffix("run-2_space-T1w_desc-brain_mask.nii.gz") == true)
        #expect(dataset.inputRoots.count == 3)

        var ambiguous = try Dataset.discover(root, options: DiscoveryOptions())
        #expect { try ambiguous.chooseSpaces { _ in true } } throws: { "\($0)".contains("MNI152NLin2009cAsym, T1w") && "\($0)".contains("--space") }
        #expect { try ambiguous.chooseSpaces { _ in false } } throws: { "\($0)".contains("none matches the atlas grid") }
    }

    @Test("--space, --task and a BIDS filter file choose among the files")
    func selection() throws {
        let root = Self.make()
        var options = DiscoveryOptions()
        options.space = "MNI152NLin2009cAsym"
        let filter = root + "/../filter.json"
        put(filter, "{\"bold\": {\"run\": [2], \"acquisition\": null}, \"t1w\": {\"datatype\": \"anat\"}}")
        options.filter = try BIDSFilter.read(filter)
        let dataset = try Dataset.discover(root, options: options)
        #expect(dataset.visits[0].boldRuns.map(\.label) == ["2"])
        #expect(dataset.visits[0].boldRuns[0].space == "MNI152NLin2009cAsym")
        options.task = "motor"
        options.filter = BIDSFilter()
        options.space = nil
        let motor = try Dataset.discover(root, options: options)
        #expect(motor.visits[0].boldRuns.map { URL(fileURLWithPath: $0.bold).lastPathComponent } == ["sub-01_ses-m00_task-motor_run-1_space-T1w_desc-preproc_bold.nii.gz"])

        put(filter, "{\"bold\": {\"sessionn\": \"m00\"}}")
        #expect { try BIDSFilter.read(filter) } throws: { "\($0)".contains("filter.json") && "\($0)".contains("unknown entity 'sessionn'") }
        put(filter, "{\"bold\": ")
        #expect { try BIDSFilter.read(filter) } throws: { "\($0)".contains("not valid JSON") }
    }
}

@Suite("Per-visit atlases, masks and lesion masks")
struct PerVisitFilesTests {
    @Test("a manifest's optional columns and an atlas beside the derivative images reach the pipelines' inputs")
    func perVisitFiles() throws {
        let top = makeTemporaryFolder()
        for name in ["a.nii.gz", "a.bval", "a.bvec", "b.nii.gz", "c.tsv", "m.nii.gz", "l.nii.gz", "atl.nii.gz", "fatl.nii.gz"] {
            put(top + "/study/" + name, name)
        }
        put(top + "/study/manifest.tsv", "participant_id\tdwi\tbval\tbvec\tbold\tconfounds\tdwi_mask\tlesion_mask\tdwi_atlas\tfunc_atlas\n"
            + "01\ta.nii.gz\ta.bval\ta.bvec\tb.nii.gz\tc.tsv\tm.nii.gz\tl.nii.gz\tatl.nii.gz\tfatl.nii.gz\n")
        let dataset = try Dataset.discover(top + "/study/manifest.tsv")
        let visit = try #require(dataset.visits.first)
        #expect(visit.dwiMask == top + "/study/m.nii.gz" && visit.lesionMask == top + "/study/l.nii.gz")
        let processor = try PipelineVisitProcessor(parameters: VisitParameters())
        let roles = try processor.inputFiles(for: visit).map(\.role)
        #expect(["dwi_mask", "lesion_mask", "dwi_atlas", "func_atlas"].allSatisfy(roles.contains), "\(roles)")
        let files = try processor.inputFiles(for: visit)
        #expect(files.first { $0.role == "func_atlas" }?.path == top + "/study/fatl.nii.gz")
        #expect(files.first { $0.role == "dwi_atlas" }?.path == top + "/study/atl.nii.gz")

        // An XCP-D-style atlas beside a preprocessed BOLD run, in its space.
        let root = DerivativesDiscoveryTests.make()
        let func_ = root + "/derivatives/fmriprep/sub-01/ses-m00/func/"
        put(func_ + "sub-01_ses-m00_space-T1w_seg-Schaefer100_dseg.nii.gz", "atlas")
        var options = DiscoveryOptions()
        options.space = "T1w"
        let derived = try Dataset.discover(root, options: options)
        #expect(derived.visits[0].boldRuns.allSatisfy { $0.atlas == func_ + "sub-01_ses-m00_space-T1w_seg-Schaefer100_dseg.nii.gz" })
    }
}
