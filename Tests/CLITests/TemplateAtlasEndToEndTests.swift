import Foundation
import NIfTI
import Testing

/// `nimetrics run` with an atlas in a template space: warped into each participant's space
/// with the transform in the derivatives, cached in the outputs and recorded.
@Suite("run with a template-space atlas")
struct TemplateAtlasEndToEndTests {
    @Test("the DWI (space-T1w) gets the atlas warped with the participant's from-template_to-T1w transform; the MNI BOLD uses it as is; a missing transform names the file")
    func templateAtlas() throws {
        let (top, data) = try makeDerivativesDemo(participants: 2)
        defer { try? FileManager.default.removeItem(atPath: top) }
        let atlas = data + "/atlas/tpl-MNI152NLin2009cAsym_atlas-demo_dseg.nii.gz"
        try FileManager.default.copyItem(atPath: data + "/atlas/atlas-demo_dseg.nii.gz", toPath: atlas)
        try FileManager.default.copyItem(atPath: data + "/atlas/atlas-demo_dseg.tsv", toPath: data + "/atlas/tpl-MNI152NLin2009cAsym_atlas-demo_dseg.tsv")
        // sub-01 has an identity transform (the demo's images share the atlas grid); sub-02 none.
        let anat = data + "/derivatives/qsiprep/sub-01/anat"
        try FileManager.default.createDirectory(atPath: anat, withIntermediateDirectories: true)
        let transform = anat + "/sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.txt"
        try "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters: 1 0 0 0 1 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n"
            .write(toFile: transform, atomically: true, encoding: .utf8)
        let output = top + "/out"
        let run = try runTool(["run", data, output, "participant", "--participant-label", "01", "--atlas", atlas, "--threads", "1"])
        #expect(run.status == 0, "\(run.stderr)")

        let warped = output + "/sub-01/anat/sub-01_space-T1w_seg-demo_desc-dwi_dseg.nii.gz"
        let original = try NIfTIFile.read(data + "/atlas/atlas-demo_dseg.nii.gz", as: Double.self)
        let made = try NIfTIFile.read(warped, as: Double.self)
        #expect(made.voxels == original.voxels, "an identity transform onto the same grid keeps every label")
        #expect(FileManager.default.fileExists(atPath: output + "/sub-01/anat/sub-01_space-T1w_seg-demo_desc-dwi_dseg.tsv"))
        let sidecar = try String(contentsOfFile: output + "/sub-01/anat/sub-01_space-T1w_seg-demo_desc-dwi_dseg.json", encoding: .utf8)
        #expect(sidecar.contains("transform_sha256") && sidecar.contains(transform))
        #expect(!FileManager.default.fileExists(atPath: output + "/sub-01/anat/sub-01_space-MNI152NLin2009cAsym_seg-demo_desc-bold_dseg.nii.gz"),
                "the BOLD is in the atlas's space: no warp")
        // The visit record lists the transform with its checksum.
        let records = try FileManager.default.subpathsOfDirectory(atPath: output + "/sub-01").filter { $0.hasSuffix("desc-dwi_visit.json") }
        #expect(!records.isEmpty)
        for record in records {
            let text = try String(contentsOfFile: output + "/sub-01/" + record, encoding: .utf8)
            #expect(text.contains("dwi_atlas_transform") && text.contains("sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.txt"), "\(record)")
        }
        // The visits redone: the cached warp is reused (not rewritten).
        let modified = try FileManager.default.attributesOfItem(atPath: warped)[.modificationDate] as? Date
        for session in try FileManager.default.contentsOfDirectory(atPath: output + "/sub-01") where session.hasPrefix("ses-") {
            try FileManager.default.removeItem(atPath: output + "/sub-01/" + session)
        }
        let again = try runTool(["run", data, output, "participant", "--participant-label", "01", "--atlas", atlas, "--threads", "1"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: warped)[.modificationDate] as? Date == modified)

        let missing = try runTool(["run", data, output, "participant", "--participant-label", "02", "--atlas", atlas, "--threads", "1"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("derivatives/qsiprep/sub-02/anat/sub-02_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5"), "\(missing.stderr)")
    }
}
