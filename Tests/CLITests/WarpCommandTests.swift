import Foundation
import Geometry
import NIfTI
import Testing

@Suite("nimetrics warp")
struct WarpCommandTests {
    /// An atlas of 4 labelled slabs along z on a 1 mm grid, its table, a 2 mm reference and a
    /// text transform shifting 3 mm along LPS z.
    private func inputs(_ folder: String) throws {
        let affine = Affine(linear: .identity, translation: SIMD3(-8, -8, -8))
        var labels = [Double](repeating: 0, count: 16 * 16 * 16)
        for k in 0..<16 { for n in 0..<256 { labels[n + 256 * k] = Double(k / 4 + 1) } }
        try NIfTIFile.write(labels, shape: [16, 16, 16], datatype: .uint8, geometry: .make(shape: [16, 16, 16], affine: affine, datatype: .uint8),
                            to: folder + "/atlas.nii.gz")
        try "index\tname\n1\tone\n2\ttwo\n3\tthree\n4\tfour\n".write(toFile: folder + "/atlas.tsv", atomically: true, encoding: .utf8)
        let reference = Affine(linear: Matrix3(diagonal: SIMD3(2, 2, 2)), translation: SIMD3(-7.5, -7.5, -7.5))
        try NIfTIFile.write([Float](repeating: 0, count: 512), shape: [8, 8, 8], geometry: .make(shape: [8, 8, 8], affine: reference),
                            to: folder + "/reference.nii.gz")
        try "#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\nParameters: 1 0 0 0 1 0 0 0 1 0 0 3\nFixedParameters: 0 0 0\n"
            .write(toFile: folder + "/shift.txt", atomically: true, encoding: .utf8)
    }

    @Test("writes the labels on the reference grid through the transform, and the table beside them")
    func warp() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try inputs(folder)
        let out = folder + "/out/sub-01_seg-slabs_dseg.nii.gz"
        let run = try runTool(["warp", "--atlas", folder + "/atlas.nii.gz", "--reference", folder + "/reference.nii.gz",
                               "--transform", folder + "/shift.txt", "--out", out, "--threads", "2"])
        #expect(run.status == 0, "\(run.stderr)")
        let image = try NIfTIFile.read(out, as: Double.self)
        #expect(image.header.spatialShape == (8, 8, 8) ? true : false)
        #expect(image.header.datatype == .uint8)
        // Reference slice k lies at z = -7.5 + 2k; +3 mm: atlas voxel round(z + 3 + 8) = 2k + 3.5 -> 2k + 4
        // (halves rounded up, as ITK), label (2k + 4) / 4 + 1; beyond the atlas, 0.
        for k in 0..<8 {
            let voxel = 2 * k + 4
            let expected = voxel < 16 ? Double(voxel / 4 + 1) : 0
            #expect(image.voxels[64 * k + 9] == expected, "slice \(k)")
        }
        #expect(try String(contentsOfFile: folder + "/out/sub-01_seg-slabs_dseg.tsv", encoding: .utf8).contains("three"))
        // Inverting it moves the other way.
        let inverse = folder + "/out/inverse.nii.gz"
        let back = try runTool(["warp", "--atlas", folder + "/atlas.nii.gz", "--reference", folder + "/reference.nii.gz",
                                "--transform", folder + "/shift.txt", "--invert", "1", "--out", inverse])
        #expect(back.status == 0, "\(back.stderr)")
        let inverted = try NIfTIFile.read(inverse, as: Double.self)
        #expect(inverted.voxels[64 * 0 + 9] == 0)
        #expect(inverted.voxels[64 * 7 + 9] == 4)
    }

    @Test("bad transforms: one line naming the file, exit 1, no output")
    func badTransforms() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try inputs(folder)
        var header = NIfTIHeader.make(shape: [2, 2, 2, 1, 3], affine: .diagonal(1, 1, 1))
        header.intentCode = 1007
        try NIfTIFile.write([Float](repeating: 0, count: 24), shape: [2, 2, 2, 1, 3], geometry: header, to: folder + "/warp.nii.gz")
        let cases: [([String], String, String)] = [
            (["--transform", "[\(folder)/warp.nii.gz,1]"], folder + "/warp.nii.gz", "cannot be inverted"),
            (["--transform", folder + "/missing.h5"], folder + "/missing.h5", "no such file"),
            (["--transform", folder + "/atlas.tsv"], folder + "/atlas.tsv", "unknown transform file type"),
        ]
        for (arguments, file, fragment) in cases {
            let out = folder + "/out/x.nii.gz"
            let run = try runTool(["warp", "--atlas", folder + "/atlas.nii.gz", "--reference", folder + "/reference.nii.gz"]
                                  + arguments + ["--out", out])
            #expect(run.status == 1)
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(run.stderr)")
            #expect(run.stderr.contains(file) && run.stderr.contains(fragment), "\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let none = try runTool(["warp", "--atlas", folder + "/atlas.nii.gz", "--reference", folder + "/reference.nii.gz", "--out", folder + "/o.nii.gz"])
        #expect(none.status != 0)
    }
}
