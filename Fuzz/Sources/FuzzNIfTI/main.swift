// libFuzzer target: arbitrary bytes as a NIfTI file, read whole and volume by volume.
//
// Any thrown NIfTIError is a correct outcome; a crash, a sanitizer report, a leak, a hang or
// an allocation above libFuzzer's -malloc_limit_mb is a bug.
import Foundation
import FuzzDriver
import NIfTI

/// One scratch folder per fuzzing process, on tmpfs when there is one (a file is written
/// per input, so the disk would otherwise set the pace).
private let scratchFolder: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let folder = base + "/nimetrics-fuzz-nifti-\(getpid())"
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    return folder
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // The readers sniff gzip from the content, but niftilib also looks at the name.
    let compressed = size >= 2 && data[0] == 0x1F && data[1] == 0x8B
    let path = scratchFolder + (compressed ? "/input.nii.gz" : "/input.nii")
    guard (try? bytes.write(to: URL(fileURLWithPath: path))) != nil else { return 0 }
    defer { unlink(path) }

    if let header = try? NIfTIFile.readHeader(path) {
        precondition(header.shape.allSatisfy { $0 >= 1 }, "a header with a non-positive dimension was accepted")
        precondition(header.voxelCount == header.shape.reduce(1, *), "voxelCount disagrees with the shape")
    }
    if let image = try? NIfTIFile.read(path, as: Float.self, threads: 2) {
        precondition(image.voxels.count == image.header.voxelCount, "voxel count differs from the header's")
    }
    if let reader = try? NIfTIFile.volumes(path) {
        var volume = [Float]()
        var count = 0
        while (try? reader.next(into: &volume)) == true {
            precondition(volume.count == reader.header.voxelsPerVolume, "a volume of the wrong size")
            count += 1
        }
        precondition(count <= reader.header.volumeCount, "more volumes than the header declares")
    }
    return 0
}

exit(nimetrics_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    fuzz(data!, size)
})
