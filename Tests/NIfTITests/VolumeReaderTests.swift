import Foundation
import Geometry
import Testing
@testable import NIfTI

@Suite("Volume-by-volume reading")
struct VolumeReaderTests {
    let identity = Affine(rows: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    /// Every volume of `path` through a reader, as floats.
    func volumes(_ path: String, readsAhead: Bool) throws -> [[Float]] {
        let reader = try NIfTIFile.volumes(path)
        reader.readsAhead = readsAhead
        var out: [[Float]] = []
        var volume: [Float] = []
        while try reader.next(into: &volume) { out.append(volume) }
        #expect(reader.nextIndex == reader.header.volumeCount)
        return out
    }

    @Test("reading ahead gives the volumes of a whole read", arguments: expectedFixtures.keys.sorted())
    func readAhead(name: String) throws {
        let path = fixturesFolder + "/nifti/" + name
        let whole = try NIfTIFile.read(path, as: Float.self)
        let n = whole.header.voxelsPerVolume
        for readsAhead in [false, true] {
            let streamed = try volumes(path, readsAhead: readsAhead)
            #expect(streamed.count == whole.header.volumeCount)
            for (k, volume) in streamed.enumerated() {
                #expect(volume.elementsEqual(whole.voxels[(k * n)..<((k + 1) * n)]), "\(name) volume \(k)")
            }
        }
    }

    @Test("stored integers are read exactly, with or without reading ahead, also from a .hdr/.img pair",
          arguments: [NIfTIDataType.int16, .uint8, .int8], [".nii", ".nii.gz"])
    func integers(datatype: NIfTIDataType, suffix: String) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [5, 4, 3, 7]
        let values: [Double] = (0..<420).map { (i: Int) -> Double in
            switch datatype {
            case .uint8: return Double((i * 37) % 256)
            case .int8: return Double((i * 37) % 256 - 128)
            default: return Double((i * 7919) % 65536 - 32768)
            }
        }
        let path = folder + "/image" + suffix
        try NIfTIFile.write(values, shape: shape, datatype: datatype, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: path)
        for readsAhead in [false, true] {
            let reader = try NIfTIFile.volumes(path)
            reader.readsAhead = readsAhead
            #expect(reader.storesSmallIntegers)
            var volume: [Int16] = []
            var read: [Double] = []
            while try reader.next(integersInto: &volume) { read += volume.map(Double.init) }
            #expect(read == values)
        }
        let pair = fixturesFolder + "/nifti/pair_int16.hdr"
        let reader = try NIfTIFile.volumes(pair)
        var volume: [Int16] = []
        var read: [Float] = []
        while try reader.next(integersInto: &volume) { read += volume.map(Float.init) }
        #expect(read == (try NIfTIFile.read(pair, as: Float.self)).voxels)
    }

    @Test("scaled or floating-point data are not read as stored integers")
    func integersRefused() throws {
        for name in ["las_int16_scaled_4d.nii.gz", "dtype_float32.nii", "dtype_int32.nii"] {
            let reader = try NIfTIFile.volumes(fixturesFolder + "/nifti/" + name)
            #expect(!reader.storesSmallIntegers)
            var volume: [Int16] = []
            let error = #expect(throws: NIfTIError.self) { try reader.next(integersInto: &volume) }
            #expect(error?.kind == .unsupportedDataType)
        }
    }

    @Test("a truncated series fails at the same volume with or without reading ahead, and keeps failing")
    func truncated() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [16, 16, 8, 6]
        var state: UInt64 = 1
        let values: [Double] = (0..<(16 * 16 * 8 * 6)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(Int16(truncatingIfNeeded: state >> 48))
        }
        let full = folder + "/full.nii.gz"
        try NIfTIFile.write(values, shape: shape, datatype: .int16, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: full)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        let cut = folder + "/cut.nii.gz"
        try bytes.prefix(bytes.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        var failedAt: [Int] = []
        for readsAhead in [false, true] {
            let reader = try NIfTIFile.volumes(cut)
            reader.readsAhead = readsAhead
            var volume: [Float] = []
            var count = 0
            let error = #expect(throws: NIfTIError.self) {
                while try reader.next(into: &volume) { count += 1 }
            }
            #expect(error?.kind == .truncated || error?.kind == .corruptCompression)
            #expect(error?.description.contains("cut.nii.gz") == true)
            failedAt.append(count)
            #expect(throws: NIfTIError.self) { _ = try reader.next(into: &volume) }
        }
        #expect(failedAt[0] == failedAt[1])
        #expect(failedAt[0] < 6)
    }
}

@Suite("Reading ahead")
struct ReadAheadTests {
    let identity = Affine(rows: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    @Test("a reader dropped after any number of volumes read ahead stops its inflate cleanly, and the volumes are the file's",
          arguments: [0, 1, 2, 5, 8])
    func stopEarly(volumesRead: Int) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Volumes large enough to be worth reading ahead; eight of them.
        let shape = [64, 64, 20, 8]
        let perVolume = 64 * 64 * 20
        let values = (0..<(perVolume * 8)).map { Float(($0 * 37) % 1000) }
        let path = folder + "/series.nii.gz"
        try NIfTIFile.write(values, shape: shape, geometry: NIfTIHeader.make(shape: shape, affine: identity), to: path)
        for _ in 0..<3 {
            let reader = try NIfTIFile.volumes(path)
            reader.readsAhead = true
            var volume: [Float] = []
            for k in 0..<volumesRead {
                #expect(try reader.next(into: &volume))
                #expect(volume == Array(values[(k * perVolume)..<((k + 1) * perVolume)]))
            }
            if volumesRead == 8 { #expect(try !reader.next(into: &volume)) }
        }
    }
}

@Suite("Chunked writing")
struct ChunkedWriteTests {
    let identity = Affine(rows: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    @Test("a map made chunk by chunk is the file of the same array; its bytes do not depend on the threads",
          arguments: [(".nii", 6), (".nii.gz", 6), (".nii.gz", 1)])
    func chunked(suffix: String, level: Int) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Three volumes of 64x64x45 floats: five 512 KiB chunks, some across volume boundaries.
        let shape = [64, 64, 45, 3]
        let count = shape.reduce(1, *)
        // Smooth values, then noise: each compressor's state after one chunk differs from
        // its state after another, so bytes that depended on a slot's history would differ.
        let values: [Float] = (0..<count).map { (i: Int) -> Float in
            if i % 7 == 0 { return 0 }
            if i < count / 2 { return Float(sin(Double(i) * 0.001)) * 1e-3 }
            let hashed: Int = (i &* 2_654_435_761) & 0xFFFF
            return Float(hashed) / 65_536
        }
        let header = NIfTIHeader.make(shape: shape, affine: identity)
        let reference = folder + "/array" + suffix
        try NIfTIFile.write(values, shape: shape, geometry: header, to: reference, compressionLevel: level)
        var ranges: [Range<Int>] = []
        for threads in [1, 2, 3] {
            let path = folder + "/chunks-\(threads)" + suffix
            ranges = []
            try NIfTIFile.write(shape: shape, geometry: header, to: path, compressionLevel: level, threads: threads) { range in
                ranges.append(range)
                return Array(values[range])
            }
            #expect(FileManager.default.contents(atPath: path) == FileManager.default.contents(atPath: reference))
        }
        // The ranges tile the image in order.
        #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == count)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(ranges.count > 3)
        let back = try NIfTIFile.read(reference, as: Float.self)
        #expect(back.voxels == values)
        #expect(listing(folder).allSatisfy { !$0.hasPrefix(".nimetrics-tmp-") })
    }

    @Test("a shape with a zero or negative dimension is refused, and nothing is written")
    func badShape() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = #expect(throws: NIfTIError.self) {
            try NIfTIFile.write(shape: [4, 0, 2], geometry: NIfTIHeader.make(shape: [4, 1, 2], affine: identity),
                                to: folder + "/x.nii.gz") { _ in [] }
        }
        #expect(error?.kind == .invalidArgument)
        #expect(listing(folder).isEmpty)
    }
}
