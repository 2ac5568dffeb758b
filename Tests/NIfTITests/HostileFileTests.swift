import Foundation
import Testing
@testable import NIfTI

/// Files made to hurt a reader rather than damaged by accident: header extensions that do
/// not fit the file, and names that are not regular files.
@Suite("Hostile files")
struct HostileFileTests {
    /// The valid 4x4x3 int16 image of ``BadInputTests`` with `extensions` (each a whole
    /// extension: esize, ecode, data) inserted after the header, extender[0] set to 1 and
    /// vox_offset moved past them by `voxOffsetExtra` more bytes than they take.
    static func withExtensions(_ extensions: [[UInt8]], padding: Int = 0, voxOffsetExtra: Int = 0) throws -> [UInt8] {
        let valid = try BadInputTests.validBytes()
        let chain = extensions.flatMap { $0 } + [UInt8](repeating: 0, count: padding)
        var bytes = Array(valid[0..<348]) + [1, 0, 0, 0] + chain + Array(valid[352...])
        bytes = BadInputTests.patched(bytes, at: 108, Float(352 + chain.count + voxOffsetExtra).bitPattern)
        return bytes
    }

    static func fileExtension(esize: Int32, ecode: Int32 = 6, dataBytes: Int? = nil) -> [UInt8] {
        let count = dataBytes ?? max(0, Int(esize) - 8)
        var bytes = [UInt8]()
        withUnsafeBytes(of: esize.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: ecode.littleEndian) { bytes += $0 }
        return bytes + [UInt8](repeating: 0x41, count: count)
    }

    func write(_ bytes: [UInt8], name: String, in folder: String) -> String {
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test("well-formed extensions, and zero padding after them, are read past")
    func validExtensions() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let two = try Self.withExtensions([Self.fileExtension(esize: 32), Self.fileExtension(esize: 16, ecode: 4)])
        let padded = try Self.withExtensions([Self.fileExtension(esize: 48)], padding: 32)
        for (name, bytes) in [("two.nii", two), ("padded.nii", padded)] {
            let image = try NIfTIFile.read(write(bytes, name: name, in: folder))
            #expect(image.voxels == (0..<48).map { Float($0) }, "\(name)")
        }
    }

    @Test("extensions that do not fit are refused, naming the extension",
          arguments: [
            ("size-unaligned.nii", [fileExtension(esize: 20, dataBytes: 24)], 0, "esize is 20, must be a positive multiple of 16"),
            ("size-small.nii", [fileExtension(esize: 8, dataBytes: 24)], 0, "esize is 8"),
            ("size-negative.nii", [fileExtension(esize: -32, dataBytes: 24)], 0, "esize is -32"),
            ("past-vox-offset.nii", [fileExtension(esize: 64, dataBytes: 24)], 0, "esize 64 runs past vox_offset 384"),
            ("past-end.nii", [fileExtension(esize: 1 << 30, dataBytes: 24)], (1 << 30) + 64, "header extension 1 at byte 352 claims 1.1 GB, past the end of the file"),
          ] as [(String, [[UInt8]], Int, String)])
    func badExtensions(name: String, extensions: [[UInt8]], voxOffsetExtra: Int, message: String) throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = write(try Self.withExtensions(extensions, voxOffsetExtra: voxOffsetExtra), name: name, in: folder)
        do {
            _ = try NIfTIFile.readHeader(path)
            Issue.record("\(name): no error")
        } catch let error as NIfTIError {
            #expect(error.description.hasPrefix(path + ": "))
            #expect(error.description.contains(message), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }

    /// Scripts/fuzz: a 745-byte NIfTI-2 file whose vox_offset is 1.5 GB and whose one extension
    /// claims 1 GiB made niftilib allocate the gibibyte before any size check. It is now
    /// refused from its first 552 bytes. (Memory is checked in the command-line suite, which
    /// runs `info` on it under a 256 MiB address-space limit.)
    @Test("the fuzz finding: a 1 GiB extension in a 745-byte file is refused at once")
    func fuzzFinding() throws {
        let path = fixturesFolder + "/fuzz-regressions/nifti/oom-nifti2-extension.nii"
        let start = ContinuousClock.now
        #expect {
            _ = try NIfTIFile.readHeader(path)
        } throws: { error in
            guard let error = error as? NIfTIError else { return false }
            return error.kind == .truncated && error.reason == "header extension 1 at byte 544 claims 1.1 GB, past the end of the file (745 bytes)"
        }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test("a gzip file's extensions are checked against the inflated data")
    func compressedExtensions() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = try Self.withExtensions([Self.fileExtension(esize: 32)])
        let slot = try ChunkSlot(capacity: 1, level: 6, path: "x")
        let image = try NIfTIFile.read(write(try slot.compress(good), name: "good.nii.gz", in: folder))
        #expect(image.voxels.count == 48)
        // One extension of 4 MiB under a vox_offset past it, in a file that inflates to 500 bytes.
        let bad = try Self.withExtensions([Self.fileExtension(esize: 1 << 22, dataBytes: 24)], voxOffsetExtra: (1 << 22) + 64)
        let path = write(try slot.compress(bad), name: "bad.nii.gz", in: folder)
        #expect {
            _ = try NIfTIFile.readHeader(path)
        } throws: { error in
            (error as? NIfTIError)?.reason.contains("header extension 1 at byte 352 claims 4.2 MB, past the end of the inflated data") == true
        }
    }

    @Test("a FIFO, a folder or a device given as an image is refused at once, naming it")
    func nonRegularFiles() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fifo = folder + "/pipe.nii"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Nothing ever writes to the FIFO: a reader that opened it would block here forever.
        for (path, kind) in [(fifo, "a FIFO"), (folder, "a folder"), ("/dev/null", "a character device")] {
            for read in [{ _ = try NIfTIFile.readHeader(path) }, { _ = try NIfTIFile.read(path) }, { _ = try NIfTIFile.volumes(path) }] as [() throws -> Void] {
                #expect(throws: NIfTIError(path: path, kind: .unreadable, reason: "not a regular file (\(kind))")) { try read() }
            }
        }
    }

    @Test("the image file of a .hdr/.img pair is checked too")
    func pairImageIsFIFO() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: fixturesFolder + "/nifti/pair_int16.hdr", toPath: folder + "/pair.hdr")
        #expect(mkfifo(folder + "/pair.img", 0o600) == 0)
        #expect(throws: NIfTIError(path: folder + "/pair.hdr", kind: .unreadable,
                                   reason: "\(folder)/pair.img: not a regular file (a FIFO)")) {
            _ = try NIfTIFile.read(folder + "/pair.hdr")
        }
    }
}
