import Foundation
import NIfTI
import Testing
import TestSupport

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
            #expect(Array(object.keys).sorted() == ["affine", "axcodes", "complete", "datatype", "nifti_version", "path", "problem", "scl_inter", "scl_slope", "shape", "tr", "voxel_size"])
            #expect(object["complete"] as? Bool == (name.hasSuffix(".gz") ? nil : true), "\(name)")
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

    /// A valid image of random values (so gzip cannot shrink it to a few bytes), as .nii and
    /// .nii.gz, and damaged copies: the .nii cut short, and the .nii.gz cut short, with a
    /// flipped byte inside its deflate stream, and with a flipped bit in its last CRC-32.
    static func damagedFiles(in folder: String) throws -> [(name: String, problem: String)] {
        var random = SplitMix64(seed: 16)
        let voxels = (0..<(16 * 16 * 8 * 4)).map { _ in Float(random.uniform()) }
        let header = try NIfTIFile.readHeader(repositoryRoot + "/Fixtures/nifti/dtype_float32.nii")
        for name in ["good.nii", "good.nii.gz"] {
            try NIfTIFile.write(voxels, shape: [16, 16, 8, 4], geometry: header, to: folder + "/" + name)
        }
        let plain = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/good.nii")))
        let gzip = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/good.nii.gz")))
        var flipped = gzip
        flipped[gzip.count / 2] ^= 0xFF
        var badCRC = gzip
        badCRC[gzip.count - 8] ^= 0x01  // the trailer: CRC-32, then the length
        let files: [(String, [UInt8], String)] = [
            ("cut.nii", Array(plain.dropLast(1000)), "data truncated: 31.8 kB of 32.8 kB"),
            ("cut.nii.gz", Array(gzip.dropLast(200)), "data truncated"),
            ("flipped.nii.gz", flipped, "corrupt gzip stream"),
            ("crc.nii.gz", badCRC, "corrupt gzip stream: checksum mismatch"),
        ]
        for (name, bytes, _) in files {
            #expect(FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes)))
        }
        return files.map { ($0.0, $0.2) }
    }

    @Test("info says whether the data is all there; --check inflates .nii.gz and exits 1 on any bad file")
    func completeness() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let damaged = try Self.damagedFiles(in: folder)
        let good = ["good.nii", "good.nii.gz"]

        // Without --check: a short .nii is flagged from its size (a warning, exit 0); a .nii.gz
        // is not inflated, so its state is unknown.
        let quick = try runTool(["info", "--json"] + good + damaged.map(\.name), in: folder)
        #expect(quick.status == 0, "\(quick.stderr)")
        #expect(quick.stderr == "nimetrics: warning: cut.nii: data truncated: 31.8 kB of 32.8 kB\n")
        let objects = try JSONSerialization.jsonObject(with: Data(quick.stdout.utf8)) as! [[String: Any]]
        let complete = Dictionary(uniqueKeysWithValues: objects.map { ($0["path"] as! String, $0["complete"] as? Bool) })
        #expect(complete == ["good.nii": true, "good.nii.gz": nil, "cut.nii": false, "cut.nii.gz": nil, "flipped.nii.gz": nil, "crc.nii.gz": nil])

        // With --check: every damaged file gets one line naming it and the problem, exit 1.
        let checked = try runTool(["info", "--check", "--json"] + good + damaged.map(\.name), in: folder)
        #expect(checked.status == 1)
        let lines = checked.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == damaged.count, "\(checked.stderr)")
        for (line, (name, problem)) in zip(lines, damaged) {
            #expect(line.hasPrefix("nimetrics: \(name): ") && line.contains(problem), "\(line)")
        }
        let results = try JSONSerialization.jsonObject(with: Data(checked.stdout.utf8)) as! [[String: Any]]
        #expect(results.map { $0["complete"] as? Bool } == [true, true, false, false, false, false])
        #expect(results[0]["problem"] is NSNull && results[1]["problem"] is NSNull)
        #expect(results.dropFirst(2).allSatisfy { ($0["problem"] as? String)?.isEmpty == false })

        // The good file alone passes the check, in text too.
        let pass = try runTool(["info", "--check"] + good, in: folder)
        #expect(pass.status == 0 && pass.stderr.isEmpty)
        #expect(pass.stdout.components(separatedBy: "  data           complete\n").count == 3)
    }
}
