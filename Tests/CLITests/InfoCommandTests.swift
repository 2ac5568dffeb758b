import Foundation
import Testing

@Suite("nimetrics info")
struct InfoCommandTests {
    @Test("--json agrees with nibabel on every fixture")
    func json() throws {
        let folder = repositoryRoot + "/Fixtures/nifti/"
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "expected.json"))) as! [String: [String: Any]]
        let names = expected.keys.sorted()
        let run = try runTool(["info", "--json"] + names.map { folder + $0 })
        #expect(run.status == 0, "\(run.stderr)")
        let objects = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [[String: Any]]
        #expect(objects.count == names.count)
        for (name, object) in zip(names, objects) {
            let truth = expected[name]!
            #expect(Array(object.keys).sorted() == ["affine", "axcodes", "datatype", "nifti_version", "path", "scl_inter", "scl_slope", "shape", "tr", "voxel_size"])
            #expect(object["shape"] as? [Int] == truth["shape"] as? [Int])
            #expect(object["axcodes"] as? String == truth["axcodes"] as? String)
            #expect(object["datatype"] as? String == truth["datatype"] as? String)
            #expect(object["nifti_version"] as? Int == truth["nifti_version"] as? Int)
            let affine = (object["affine"] as! [[Double]]).flatMap { $0 }
            let trueAffine = (truth["affine"] as! [[Double]]).flatMap { $0 }
            #expect(zip(affine, trueAffine).allSatisfy { abs($0 - $1) < 1e-5 }, "\(name)")
            let zooms = (object["voxel_size"] as! [Double]).prefix(3)
            let trueZooms = (truth["zooms"] as! [Double]).prefix(3)
            #expect(zip(zooms, trueZooms).allSatisfy { abs($0 - $1) < 1e-6 })
            if let tr = truth["tr"] as? Double {
                #expect(abs((object["tr"] as? Double ?? -1) - tr) < 1e-9)
            } else {
                #expect(object["tr"] is NSNull)
            }
        }
    }

    @Test("a bad file gives one line naming it and a non-zero exit; the good ones still print")
    func badFile() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        FileManager.default.createFile(atPath: folder + "/junk.nii", contents: Data("hello".utf8))
        let run = try runTool(["info", repositoryRoot + "/Fixtures/nifti/dtype_int16.nii", folder + "/junk.nii"])
        #expect(run.status == 1)
        #expect(run.stderr.split(separator: "\n").count == 1)
        #expect(run.stderr.contains(folder + "/junk.nii: "))
        #expect(run.stdout.contains("dtype_int16.nii"))
    }
}
