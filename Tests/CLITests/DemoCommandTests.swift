import Foundation
import Testing

@Suite("nimetrics demo")
struct DemoCommandTests {
    @Test("--layout derivatives writes the raw tree and both derivative trees; --layout bids writes neither; an unknown layout is refused")
    func layouts() throws {
        let root = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let derivatives = try runTool(["demo", "--out", root + "/d", "--participants", "1", "--layout", "derivatives"])
        #expect(derivatives.status == 0, "\(derivatives.stderr)")
        #expect(derivatives.stdout.contains("layout derivatives") && derivatives.stdout.contains("ground_truth/runs.tsv"))
        for path in ["dataset_description.json", "derivatives/fmriprep/dataset_description.json", "derivatives/qsiprep/dataset_description.json",
                     "sub-01/ses-m06/func/sub-01_ses-m06_task-rest_run-1_bold.nii.gz", "ground_truth/runs.tsv"] {
            #expect(FileManager.default.fileExists(atPath: root + "/d/" + path), "\(path)")
        }
        let bids = try runTool(["demo", "--out", root + "/b", "--participants", "1"])
        #expect(bids.status == 0, "\(bids.stderr)")
        #expect(!bids.stdout.contains("layout"))
        #expect(FileManager.default.fileExists(atPath: root + "/b/sub-01/ses-m06/func/sub-01_ses-m06_task-rest_bold.nii.gz"))
        #expect(!FileManager.default.fileExists(atPath: root + "/b/derivatives"))
        let unknown = try runTool(["demo", "--out", root + "/u", "--layout", "fmriprep"])
        #expect(unknown.status != 0 && unknown.stderr.contains("--layout"))
        #expect(!FileManager.default.fileExists(atPath: root + "/u"))
    }
}
