import Foundation
import Geometry
import Testing
import TestSupport
@testable import NIfTI

@Suite("Uncompressed .nii read through a memory map")
struct UncompressedReadTests {
    let identity = Affine(rows: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    func streamed(_ path: String, readsAhead: Bool, threads: Int) throws -> [Float] {
        let reader = try NIfTIFile.volumes(path)
        reader.readsAhead = readsAhead
        reader.threads = threads
        var out: [Float] = []
        var volume: [Float] = []
        while try reader.next(into: &volume) { out += volume }
        #expect(reader.nextIndex == reader.header.volumeCount)
        return out
    }

    @Test("the same image as .nii and .nii.gz reads to the same voxels, whole and volume by volume",
          arguments: [NIfTIDataType.int16, .uint8, .float32, .float64])
    func sameVoxels(datatype: NIfTIDataType) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [7, 6, 5, 9]
        var state: UInt64 = 7
        let values: [Double] = (0..<shape.reduce(1, *)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let r = Double(state >> 40) / Double(1 << 24)
            return datatype == .uint8 ? (r * 255).rounded() : datatype == .int16 ? (r * 60000 - 30000).rounded() : r * 1000 - 500
        }
        let compressed = folder + "/image.nii.gz"
        try NIfTIFile.write(values, shape: shape, datatype: datatype, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: compressed)
        let plain = try gunzipped(compressed)
        let a = try NIfTIFile.read(compressed, as: Float.self)
        let b = try NIfTIFile.read(plain, as: Float.self, threads: 3)
        #expect(a.voxels == b.voxels)
        #expect(a.header.shape == b.header.shape)
        #expect(try NIfTIFile.read(compressed, as: Double.self).voxels == NIfTIFile.read(plain, as: Double.self).voxels)
        for readsAhead in [false, true] {
            #expect(try streamed(plain, readsAhead: readsAhead, threads: 2) == a.voxels)
        }
        if datatype == .int16 || datatype == .uint8 {
            for path in [plain, compressed] {
                let reader = try NIfTIFile.volumes(path)
                reader.readsAhead = true
                var volume: [Int16] = []
                var read: [Double] = []
                while try reader.next(integersInto: &volume) { read += volume.map(Double.init) }
                #expect(read == values, "\(path)")
            }
        }
    }

    @Test("the voxels of a mapped file outlive the reader and the image read from it")
    func outlivesReader() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [4, 4, 4, 3]
        let values = (0..<192).map { Double($0) - 50 }
        let path = folder + "/image.nii"
        try NIfTIFile.write(values, shape: shape, datatype: .int16, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: path)
        var image = try NIfTIFile.read(path, as: Double.self)
        var volume: [Float] = []
        do {
            let reader = try NIfTIFile.volumes(path)
            _ = try reader.next(into: &volume)
        }
        // The file changes after reading: what was read does not.
        try NIfTIFile.write(values.map { -$0 }, shape: shape, datatype: .int16, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: path)
        #expect(image.voxels == values)
        #expect(volume == values.prefix(64).map(Float.init))
        image.voxels[0] = 1
        #expect(try NIfTIFile.read(path, as: Double.self).voxels[0] == 50)
    }

    @Test("an uncompressed series shorter than its header is refused at open, naming the file")
    func truncated() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [8, 8, 4, 5]
        let path = folder + "/full.nii"
        try NIfTIFile.write((0..<1280).map(Double.init), shape: shape, datatype: .int16, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = folder + "/cut.nii"
        try bytes.dropLast(100).write(to: URL(fileURLWithPath: cut))
        for open in [{ _ = try NIfTIFile.volumes(cut) }, { _ = try NIfTIFile.read(cut, as: Float.self) }] {
            let error = #expect(throws: NIfTIError.self) { try open() }
            #expect(error?.kind == .truncated)
            #expect(error?.description.contains("cut.nii") == true)
        }
    }
}
