import Foundation
import Pipelines
import Testing
@testable import Trial

@Suite("Template-space atlases: transforms found in the derivatives")
struct TemplateAtlasTests {
    @Test("anat/*_from-*_to-*_xfm files of the participant and the session are found; the image's own dataset is preferred")
    func discoveryAndChoice() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let root = top + "/bids"
        makeBIDS(at: root, participants: ["01"], sessions: ["m00"])
        let qsi = root + "/derivatives/qsiprep", prep = root + "/derivatives/fmriprep"
        put(qsi + "/dataset_description.json", "{\"Name\": \"QSIPrep\"}")
        put(prep + "/dataset_description.json", "{\"Name\": \"fMRIPrep\"}")
        for name in ["preproc_dwi.nii.gz", "preproc_dwi.bval", "preproc_dwi.bvec"] {
            put(qsi + "/sub-01/ses-m00/dwi/sub-01_ses-m00_space-ACPC_desc-" + name, "x")
        }
        put(qsi + "/sub-01/anat/sub-01_from-MNI152NLin2009cAsym_to-ACPC_mode-image_xfm.h5", "x")
        put(qsi + "/sub-01/anat/sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5", "qsiprep")
        put(prep + "/sub-01/ses-m00/anat/sub-01_ses-m00_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5", "fmriprep")
        put(prep + "/sub-01/ses-m00/anat/sub-01_ses-m00_desc-preproc_T1w.nii.gz", "not a transform")
        put(prep + "/sub-01/ses-m00/func/sub-01_ses-m00_task-rest_space-T1w_desc-preproc_bold.nii.gz", "x")
        let dataset = try Dataset.discover(root, options: DiscoveryOptions())
        let visit = try #require(dataset.visits.first)
        #expect(visit.transforms.map { URL(fileURLWithPath: $0).lastPathComponent }.sorted() == [
            "sub-01_from-MNI152NLin2009cAsym_to-ACPC_mode-image_xfm.h5", "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
            "sub-01_ses-m00_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
        ])
        let atlas = AtlasFile(path: "/atlases/tpl-MNI152NLin2009cAsym_res-01_atlas-JHU_dseg.nii.gz")
        #expect(atlas.templateSpace == "MNI152NLin2009cAsym")
        let dwi = try #require(visit.dwi)
        #expect(try TemplateAtlases.transform(for: atlas, image: dwi, visit: visit)?.hasSuffix("to-ACPC_mode-image_xfm.h5") == true)
        // Both datasets have a from-MNI_to-T1w: the BOLD's own (fMRIPrep's) is taken.
        let bold = try #require(visit.bold)
        #expect(try TemplateAtlases.transform(for: atlas, image: bold, visit: visit)?.hasPrefix(prep) == true)
        // An atlas in the image's space, or in no named space, is used as it is.
        #expect(try TemplateAtlases.transform(for: AtlasFile(path: "/a/atlas-x_dseg.nii.gz"), image: dwi, visit: visit) == nil)
        #expect(try TemplateAtlases.transform(for: AtlasFile(path: "/a/atlas-x_dseg.nii.gz", space: "ACPC"), image: dwi, visit: visit) == nil)
        // No transform to that space: the error names the file looked for.
        let other = AtlasFile(path: "/a/tpl-OASIS30ANTs_atlas-x_dseg.nii.gz")
        let error = #expect(throws: PipelineError.self) { try TemplateAtlases.transform(for: other, image: dwi, visit: visit) }
        #expect(error?.source == qsi + "/sub-01/anat/sub-01_from-OASIS30ANTs_to-ACPC_mode-image_xfm.h5")
        // A raw image names no space.
        var raw = visit
        raw.dwi = root + "/sub-01/ses-m00/dwi/sub-01_ses-m00_dwi.nii.gz"
        #expect(throws: PipelineError.self) { try TemplateAtlases.transform(for: atlas, image: raw.dwi!, visit: raw) }
    }
}
