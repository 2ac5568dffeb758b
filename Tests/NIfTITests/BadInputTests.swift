import Foundation
import Testing
@testable import NIfTI

/// Builds damaged files from a valid one and checks each gives the right kind of error,
/// naming the file.
@Suite("Bad input")
struct BadInputTests {
    /// A valid uncompressed 4x4x3 int16 image, as bytes.
    static func validBytes() throws -> [UInt8] {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let header = NIfTIHeader.make(shape: [4, 4, 3], affine: .diagonal(2, 2, 2), datatype: .int16)
        try NIfTIFile.write((0..<48).map { Float($0) }, shape: [4, 4, 3], datatype: .int16, geometry: header, to: folder + "/v.nii")
        return [UInt8](FileManager.default.contents(atPath: folder + "/v.nii")!)
    }

    static func patched(_ bytes: [UInt8], at offset: Int, _ value: some FixedWidthInteger) -> [UInt8] {
        var copy = bytes
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { copy[offset + i] = byte }
        }
        return copy
    }

    func expectError(_ bytes: [UInt8], name: String, kind: NIfTIError.Kind, mentioning text: String) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            _ = try NIfTIFile.read(path)
            Issue.record("\(name): no error")
        } catch let error as NIfTIError {
            #expect(error.kind == kind, "\(name): \(error)")
            #expect(error.description.hasPrefix(path + ": "))
            #expect(error.description.contains(text), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("missing file")
    func missing() {
        #expect(throws: NIfTIError(path: "/no/such.nii", kind: .fileNotFound, reason: "no such file")) {
            _ = try NIfTIFile.read("/no/such.nii")
        }
    }

    @Test("empty, random and short files are not NIfTI")
    func notNIfTI() throws {
        try expectError([], name: "empty.nii", kind: .notNIfTI, mentioning: "empty")
        var generator = SystemRandomNumberGenerator()
        let random = (0..<4000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try expectError(random, name: "random.nii", kind: .notNIfTI, mentioning: "not a NIfTI")
        try expectError(Array(try Self.validBytes().prefix(200)), name: "short.nii", kind: .notNIfTI, mentioning: "348")
        try expectError(Self.patched(try Self.validBytes(), at: 0, Int32(349)), name: "size.nii", kind: .notNIfTI, mentioning: "sizeof_hdr")
    }

    @Test("truncated data, uncompressed and gzip")
    func truncated() throws {
        let valid = try Self.validBytes()
        try expectError(Array(valid.prefix(352)), name: "header-only.nii", kind: .truncated, mentioning: "truncated")
        try expectError(Array(valid.dropLast(10)), name: "cut.nii", kind: .truncated, mentioning: "truncated")
        let compressed = [UInt8](try ChunkSlot(capacity: 1, level: 6, path: "x").compress(valid))
        let cut = [UInt8](compressed.prefix(compressed.count - 30))
        try expectError(cut, name: "cut.nii.gz", kind: .truncated, mentioning: "truncated")
        var corrupt = [UInt8](compressed)
        for i in 40..<min(corrupt.count - 8, 80) { corrupt[i] ^= 0x5A }
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        FileManager.default.createFile(atPath: folder + "/corrupt.nii.gz", contents: Data(corrupt))
        #expect(throws: NIfTIError.self) { _ = try NIfTIFile.read(folder + "/corrupt.nii.gz") }
        try expectError(Self.patched(valid, at: 108, Float(1e6).bitPattern), name: "offset.nii", kind: .truncated, mentioning: "past the end")
    }

    @Test("unsupported datatypes", arguments: [(32, "complex"), (1792, "complex"), (128, "RGB"), (2304, "RGB"), (1536, "float128"), (99, "unknown")])
    func datatypes(code: Int, word: String) throws {
        let bytes = Self.patched(try Self.validBytes(), at: 70, Int16(code))
        try expectError(bytes, name: "dt\(code).nii", kind: .unsupportedDataType, mentioning: word)
    }

    @Test("bad dimensions")
    func dimensions() throws {
        let valid = try Self.validBytes()
        try expectError(Self.patched(valid, at: 42, Int16(-4)), name: "negative.nii", kind: .invalidHeader, mentioning: "dim[1]")
        try expectError(Self.patched(valid, at: 44, Int16(0)), name: "zero.nii", kind: .invalidHeader, mentioning: "dim[2]")
        try expectError(Self.patched(valid, at: 40, Int16(9)), name: "ndim.nii", kind: .invalidHeader, mentioning: "dim[0]")
        try expectError(Self.patched(valid, at: 80, Float(0).bitPattern), name: "pixdim.nii", kind: .invalidHeader, mentioning: "pixdim[1]")
    }

    @Test("NIfTI-2 dimensions whose product overflows 64 bits")
    func overflow() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let header = NIfTIHeader.make(shape: [40_000, 1, 1], affine: .diagonal(1, 1, 1))
        try NIfTIFile.write([Float](repeating: 0, count: 40_000), shape: [40_000, 1, 1], geometry: header, to: folder + "/n2.nii")
        var bytes = [UInt8](FileManager.default.contents(atPath: folder + "/n2.nii")!)
        bytes = Self.patched(bytes, at: 16, Int64(4))
        for axis in 1...4 { bytes = Self.patched(bytes, at: 16 + 8 * axis, Int64(1) << 20) }
        try expectError(bytes, name: "huge.nii", kind: .tooLarge, mentioning: "overflow")
    }
}
