import Foundation
import Geometry
import Testing
@testable import NIfTI

@Suite("Writing and reading back")
struct RoundTripTests {
    static let geometries: [(String, Affine)] = [
        ("RAS", Affine(rows: [[2, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2.5, -72], [0, 0, 0, 1]])),
        ("LAS", Affine(rows: [[-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])),
        ("oblique", Affine(rows: [
            [1.8610951965638265, -0.7234737123918072, -0.1420302388856717, -80],
            [0.6773832470101332, 1.8185229760290895, -0.6048322628065895, -100],
            [0.2783461981006059, 0.4117766058584689, 2.4215708424719566, 40],
            [0, 0, 0, 1],
        ])),
    ]

    @Test("every datatype round-trips exactly", arguments: NIfTIDataType.allCases, [".nii", ".nii.gz"])
    func datatypes(datatype: NIfTIDataType, suffix: String) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [3, 4, 2, 2]
        // Values inside every type's range; negative ones only for signed and float types.
        let signed = [.int8, .int16, .int32, .int64, .float32, .float64].contains(datatype)
        let values: [Double] = (0..<48).map { i in signed ? Double(i * 4 - 90) : Double(i * 5) }
        let header = NIfTIHeader.make(shape: shape, affine: Self.geometries[0].1, repetitionTime: 2)
        let path = folder + "/image" + suffix
        try NIfTIFile.write(values, shape: shape, datatype: datatype, geometry: header, to: path)
        let back = try NIfTIFile.read(path, as: Double.self)
        #expect(back.header.datatype == datatype)
        #expect(back.header.shape == shape)
        #expect(back.voxels == values)
        #expect(back.header.repetitionTime == 2)
        #expect(listing(folder) == ["image" + suffix])
    }

    /// The stored values of an uncompressed image, read straight from its bytes.
    static func storedValues<T: FixedWidthInteger>(_ path: String, as _: T.Type) throws -> [T] {
        let header = try NIfTIFile.readHeader(path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        return (0..<header.voxelCount).map { i in
            bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: header.dataOffset + i * MemoryLayout<T>.size, as: T.self) }
        }
    }

    @Test("64-bit integers saturate at the type's limits (Double(Int64.max) is 2^63) and NaN is stored as 0")
    func sixtyFourBitLimits() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let header = NIfTIHeader.make(shape: [1, 1, 1], affine: Self.geometries[0].1)
        // The largest doubles below 2^63 and 2^64 are exact integers and are kept as they are.
        let belowTwo63 = Double(sign: .plus, exponent: 63, significand: 1).nextDown
        let belowTwo64 = Double(sign: .plus, exponent: 64, significand: 1).nextDown

        let signed: [(Double, Int64)] = [
            (Double(Int64.max), .max), (0x1p64, .max), (1e300, .max), (.infinity, .max),
            (Double(Int64.min), .min), (-1e300, .min), (-.infinity, .min), (.nan, 0),
            (belowTwo63, Int64(belowTwo63)), (-belowTwo63, -Int64(belowTwo63)), (-5, -5), (0, 0), (1.5, 2), (-2.5, -3),
        ]
        let signedPath = folder + "/int64.nii"
        try NIfTIFile.write(signed.map(\.0), shape: [signed.count], datatype: .int64, geometry: header, to: signedPath)
        #expect(try Self.storedValues(signedPath, as: Int64.self) == signed.map(\.1))

        let unsigned: [(Double, UInt64)] = [
            (Double(UInt64.max), .max), (0x1p65, .max), (1e300, .max), (.infinity, .max), (0x1p63, 1 << 63),
            (-1, 0), (-.infinity, 0), (.nan, 0), (belowTwo64, UInt64(belowTwo64)), (7, 7), (2.5, 3),
        ]
        let unsignedPath = folder + "/uint64.nii.gz"
        try NIfTIFile.write(unsigned.map(\.0), shape: [unsigned.count], datatype: .uint64, geometry: header, to: unsignedPath)
        let back = try NIfTIFile.read(unsignedPath, as: Double.self)
        #expect(back.voxels == unsigned.map { Double($0.1) })
        let plainPath = folder + "/uint64.nii"
        try NIfTIFile.write(unsigned.map(\.0), shape: [unsigned.count], datatype: .uint64, geometry: header, to: plainPath)
        #expect(try Self.storedValues(plainPath, as: UInt64.self) == unsigned.map(\.1))
    }

    @Test("sform and qform survive a write", arguments: [0, 1, 2])
    func geometry(index: Int) throws {
        let (name, affine) = Self.geometries[index]
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let header = NIfTIHeader.make(shape: [4, 5, 6], affine: affine)
        let path = folder + "/\(name).nii.gz"
        try NIfTIFile.write([Float](repeating: 1, count: 120), shape: [4, 5, 6], geometry: header, to: path)
        let back = try NIfTIFile.readHeader(path)
        #expect(back.sform.maximumDifference(to: affine) < 1e-5)
        // The qform is rebuilt from the quaternion: it must describe the same transform.
        #expect(back.qform.maximumDifference(to: affine) < 1e-4)
        #expect(back.axisCodes == affine.axisCodes)
        // Writing a map derived from this file keeps the geometry again.
        let derived = folder + "/derived.nii.gz"
        try NIfTIFile.write([Float](repeating: 0, count: 360), shape: [4, 5, 6, 3], geometry: back, to: derived)
        let again = try NIfTIFile.readHeader(derived)
        #expect(again.affine.maximumDifference(to: back.affine) < 1e-6)
        #expect(again.shape == [4, 5, 6, 3])
    }

    @Test("axis codes follow nibabel's rules")
    func axisCodes() {
        #expect(Self.geometries[0].1.axisCodes == "RAS")
        #expect(Self.geometries[1].1.axisCodes == "LAS")
        // Swapped axes: voxel i runs along world y (posterior), j along world x.
        let swapped = Affine(rows: [[0, 2, 0, 0], [-2, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
        #expect(swapped.axisCodes == "PRS")
        #expect(NIfTIHeader.make(shape: [2, 2, 2], affine: .diagonal(1, 1, 1)).axisCodes == "RAS")
    }

    @Test("a large dimension is written as NIfTI-2")
    func nifti2() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shape = [40_000, 1, 1]
        let header = NIfTIHeader.make(shape: shape, affine: .diagonal(1, 1, 1))
        let values = (0..<40_000).map { Float($0 % 97) }
        try NIfTIFile.write(values, shape: shape, geometry: header, to: folder + "/long.nii")
        let back = try NIfTIFile.read(folder + "/long.nii")
        #expect(back.header.niftiVersion == 2)
        #expect(back.voxels == values)
    }

    @Test("a write into a missing folder fails cleanly")
    func missingFolder() throws {
        let header = NIfTIHeader.make(shape: [2, 2, 2], affine: .diagonal(1, 1, 1))
        #expect(throws: NIfTIError(path: "/nonexistent-folder/x.nii.gz", kind: .writeFailed,
                                   reason: "cannot create file: No such file or directory")) {
            try NIfTIFile.write([Float](repeating: 0, count: 8), shape: [2, 2, 2], geometry: header, to: "/nonexistent-folder/x.nii.gz")
        }
        #expect(throws: NIfTIError.self) {
            try NIfTIFile.write([Float](repeating: 0, count: 7), shape: [2, 2, 2], geometry: header, to: "/tmp/x.nii.gz")
        }
    }
}
