import CDeflate
import Foundation

/// Inflates the gzip file at `path` (every member, back to back) with libdeflate, an inflater
/// other than the one nimetrics reads with, and writes the bytes beside it without the `.gz`
/// (`x.nii.gz` -> `x.nii`): the same image, uncompressed. Returns the new path.
public func gunzipped(_ path: String) throws -> String {
    let compressed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    guard let decompressor = libdeflate_alloc_decompressor() else { throw GunzipError(path: path) }
    defer { libdeflate_free_decompressor(decompressor) }
    var out: [UInt8] = []
    var consumed = 0
    var room = max(1 << 20, 4 * compressed.count)
    while consumed < compressed.count {
        var member = [UInt8](repeating: 0, count: room)
        var inUsed = 0, outUsed = 0
        let result = compressed.withUnsafeBytes { input in
            member.withUnsafeMutableBytes { output in
                libdeflate_gzip_decompress_ex(decompressor, input.baseAddress! + consumed, input.count - consumed,
                                              output.baseAddress, output.count, &inUsed, &outUsed)
            }
        }
        if result == LIBDEFLATE_INSUFFICIENT_SPACE { room *= 2; continue }
        guard result == LIBDEFLATE_SUCCESS else { throw GunzipError(path: path) }
        out += member.prefix(outUsed)
        consumed += inUsed
    }
    let plain = String(path.dropLast(3))
    try Data(out).write(to: URL(fileURLWithPath: plain))
    return plain
}

public struct GunzipError: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "\(path): not a gzip file libdeflate can inflate" }
}
