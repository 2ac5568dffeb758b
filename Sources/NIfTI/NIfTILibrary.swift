// The only file that touches niftilib, zlib and libdeflate; their C pointers stay here.
// (ISA-L's streaming inflate is in InflateStream.swift.)
import CDeflate
import CNIfTI
import FileSystem
import Foundation
import Geometry
#if canImport(Glibc)
import Glibc
#endif

/// niftilib prints diagnostics to stderr at its default debug level; nimetrics reports its
/// own one-line errors instead, so the library is silenced once, before first use.
private let silenceNIfTILibrary: Void = { nifti_set_debug_level(0) }()

/// What the first bytes of a header say, checked in Swift before niftilib sees the file.
///
/// niftilib trusts several header fields (dimension products, offsets) that a malformed or
/// hostile file can set to anything; checking them here first turns each such case into a
/// clear error instead of a huge allocation or an out-of-range read.
struct RawHeaderSummary {
    var version: Int
    var swapped: Bool
    var dims: [Int]
    var datatypeCode: Int
    var voxOffset: Int
    var singleFile: Bool
    /// pixdim[0...7] as stored (niftilib replaces zeros with 1, nibabel does not).
    var pixdim: [Double]
    /// The header bytes as stored (348 or 540), handed to niftilib's converter.
    var headerBytes: [UInt8]
    /// The 4 bytes after the header, when the file has them (`extension[0] == 1`: extensions follow).
    var extender: [UInt8]
}

/// Reads up to `count` bytes from the start of a file, through zlib so gzip is transparent.
private func readLeadingBytes(path: String, count: Int) throws -> [UInt8] {
    guard let file = gzopen(path, "rb") else {
        throw NIfTIError(path: path, kind: .unreadable, reason: "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { gzclose(file) }
    var bytes = [UInt8](repeating: 0, count: count)
    let got = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(count)) }
    if got < 0 {
        throw NIfTIError(path: path, kind: .corruptCompression, reason: "corrupt gzip stream: \(gzipErrorText(file, path: path))")
    }
    return Array(bytes.prefix(Int(got)))
}

/// zlib's message for the last error on `file`, without the "<path>: " zlib puts first
/// (the error names the file already).
private func gzipErrorText(_ file: gzFile, path: String) -> String {
    var code: Int32 = 0
    guard let text = gzerror(file, &code) else { return "unknown error" }
    var message = String(cString: text)
    if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }
    return message.isEmpty ? "unknown error" : message
}

private func load<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _ type: T.Type, swapped: Bool) -> T {
    var value: T = 0
    withUnsafeMutableBytes(of: &value) { destination in
        for i in 0..<MemoryLayout<T>.size { destination[i] = bytes[offset + i] }
    }
    return swapped ? value.byteSwapped : value
}

/// Throws unless `path` is a regular file: a FIFO would block the first read until a writer
/// appeared (a whole batch once waited forever on one), and a device or folder is no image.
func checkRegularFile(_ path: String, reportPath: String) throws {
    do {
        try FileSystem.checkRegularFile(path)
    } catch {
        let which = path == reportPath ? "" : "\(path): "
        throw NIfTIError(path: reportPath, kind: error.code == ENOENT && path == reportPath ? .fileNotFound : .unreadable,
                         reason: which + error.reason)
    }
}

/// Checks the fields niftilib would trust, and reports the first problem found.
func validateRawHeader(path: String) throws -> RawHeaderSummary {
    _ = silenceNIfTILibrary
    try checkRegularFile(path, reportPath: path)
    let bytes = try readLeadingBytes(path: path, count: 544)
    if bytes.isEmpty { throw NIfTIError(path: path, kind: .notNIfTI, reason: "empty file, not a NIfTI image") }
    guard bytes.count >= 348 else {
        throw NIfTIError(path: path, kind: .notNIfTI, reason: "not a NIfTI file: only \(bytes.count) bytes, a header needs 348")
    }
    let rawSize = load(bytes, 0, Int32.self, swapped: false)
    let version: Int
    let swapped: Bool
    switch rawSize {
    case 348: (version, swapped) = (1, false)
    case 540: (version, swapped) = (2, false)
    case Int32(348).byteSwapped: (version, swapped) = (1, true)
    case Int32(540).byteSwapped: (version, swapped) = (2, true)
    default:
        throw NIfTIError(path: path, kind: .notNIfTI, reason: "not a NIfTI file: sizeof_hdr is \(rawSize), expected 348 or 540")
    }
    var dims: [Int]
    let datatype: Int
    let voxOffset: Double
    let singleFile: Bool
    var pixdim: [Double]
    if version == 1 {
        let magic = Array(bytes[344..<348])
        guard magic == [0x6E, 0x2B, 0x31, 0] || magic == [0x6E, 0x69, 0x31, 0] else {
            throw NIfTIError(path: path, kind: .notNIfTI, reason: "not a NIfTI-1 file: the magic string is missing (Analyze 7.5 files are not supported)")
        }
        singleFile = magic[1] == 0x2B
        dims = (0..<8).map { Int(load(bytes, 40 + 2 * $0, Int16.self, swapped: swapped)) }
        datatype = Int(load(bytes, 70, Int16.self, swapped: swapped))
        voxOffset = Double(Float(bitPattern: load(bytes, 108, UInt32.self, swapped: swapped)))
        pixdim = (0..<8).map { Double(Float(bitPattern: load(bytes, 76 + 4 * $0, UInt32.self, swapped: swapped))) }
    } else {
        guard bytes.count >= 540 else {
            throw NIfTIError(path: path, kind: .truncated, reason: "NIfTI-2 header truncated: \(bytes.count) of 540 bytes")
        }
        let magic = Array(bytes[4..<8])
        guard magic == [0x6E, 0x2B, 0x32, 0] || magic == [0x6E, 0x69, 0x32, 0] else {
            throw NIfTIError(path: path, kind: .notNIfTI, reason: "not a NIfTI-2 file: the magic string is missing")
        }
        singleFile = magic[1] == 0x2B
        dims = (0..<8).map { Int(load(bytes, 16 + 8 * $0, Int64.self, swapped: swapped)) }
        datatype = Int(load(bytes, 12, Int16.self, swapped: swapped))
        voxOffset = Double(load(bytes, 168, Int64.self, swapped: swapped))
        pixdim = (0..<8).map { Double(bitPattern: load(bytes, 104 + 8 * $0, UInt64.self, swapped: swapped)) }
    }
    let dimensionCount = dims[0]
    guard (1...7).contains(dimensionCount) else {
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: dim[0] is \(dimensionCount), must be 1 to 7")
    }
    var total = 1
    for axis in 1...dimensionCount {
        guard dims[axis] >= 1 else {
            throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: dim[\(axis)] is \(dims[axis]), dimensions must be positive")
        }
        let (product, overflow) = total.multipliedReportingOverflow(by: dims[axis])
        guard !overflow else {
            throw NIfTIError(path: path, kind: .tooLarge, reason: "invalid header: the dimensions \(dims[1...dimensionCount].map(String.init).joined(separator: "x")) overflow a 64-bit voxel count")
        }
        total = product
    }
    if let reason = NIfTIDataType.unsupportedReason(code: datatype) {
        throw NIfTIError(path: path, kind: .unsupportedDataType, reason: reason)
    }
    let bytesPerVoxel = NIfTIDataType(rawValue: datatype)!.size
    guard !total.multipliedReportingOverflow(by: bytesPerVoxel).overflow else {
        throw NIfTIError(path: path, kind: .tooLarge, reason: "invalid header: the data size overflows 64 bits")
    }
    for axis in 1...min(3, dimensionCount) where !(pixdim[axis].isFinite && pixdim[axis] > 0) {
        if dims[axis] == 1 && pixdim[axis] == 0 { continue }  // a singleton axis may leave pixdim 0
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: pixdim[\(axis)] is \(pixdim[axis]), voxel sizes must be positive")
    }
    let headerSize = version == 1 ? 348 : 540
    // NIfTI-1 stores vox_offset as a float but niftilib holds it in an `int`.
    let largestOffset = version == 1 ? Double(Int32.max) : 9.0e15
    guard voxOffset.isFinite, voxOffset >= 0, voxOffset <= largestOffset else {
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: vox_offset is \(voxOffset)")
    }
    if singleFile && Int(voxOffset) < headerSize {
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: vox_offset \(Int(voxOffset)) lies inside the \(headerSize)-byte header")
    }
    let summary = RawHeaderSummary(version: version, swapped: swapped, dims: Array(dims[1...dimensionCount]),
                                   datatypeCode: datatype, voxOffset: Int(voxOffset), singleFile: singleFile,
                                   pixdim: pixdim, headerBytes: Array(bytes.prefix(headerSize)),
                                   extender: Array(bytes.dropFirst(headerSize).prefix(4)))
    try checkExtensions(path: path, summary: summary)
    return summary
}

/// Walks the header extensions and throws unless each lies whole inside the file, before
/// vox_offset.
///
/// The NIfTI-1 standard (nifti1.h, "extension format"): when `extension[0]` of the 4 bytes
/// after the header is nonzero, extensions follow, each `esize` bytes long (a positive
/// multiple of 16, its 8-byte head included: esize, ecode, then the data), back to back up
/// to vox_offset in a `.nii` file. niftilib's `nifti_image_read` reads them (when
/// `extension[0] == 1`) with one `malloc(esize - 8)` each before any size check: a 745-byte
/// NIfTI-2 file whose vox_offset is 1.5 GB and whose one extension claims 1 GiB made it
/// allocate the gibibyte (found by Scripts/fuzz;
/// Fixtures/fuzz-regressions/nifti/oom-nifti2-extension.nii). nimetrics no longer lets
/// niftilib read extensions (``readHeaderWithLibrary(path:)`` converts the header bytes
/// itself) and uses none; the chain is still checked, so that a file whose extensions do not
/// fit gets a clear error instead of being read as if sound.
///
/// An all-zero extension head (esize 0, ecode 0) ends the chain: some writers pad with zeros
/// between the last extension and a rounded-up vox_offset. The walk reads 8 bytes per
/// extension (and one at each extension's end, to prove it is there) and allocates nothing
/// that depends on the header.
func checkExtensions(path: String, summary: RawHeaderSummary) throws {
    // niftilib reads extensions only when extension[0] is 1; other values are taken as none.
    guard summary.extender.count == 4, summary.extender[0] == 1 else { return }
    let headerSize = summary.version == 1 ? 348 : 540
    let first = headerSize + 4
    // In a .nii file the extensions lie between the header and the data; in a .hdr file
    // they fill the rest of the file.
    let regionEnd = summary.singleFile ? summary.voxOffset : Int.max
    guard regionEnd - first >= 16 else { return }
    let compressed = isGzip(path)
    let size = fileSize(path) ?? 0
    // What the file can hold: its size, or for gzip the most it can inflate to.
    let (bound, overflow) = size.multipliedReportingOverflow(by: compressed ? maximumDeflateRatio : 1)
    let dataEnd = overflow ? Int.max : bound
    guard let file = gzopen(path, "rb") else {
        throw NIfTIError(path: path, kind: .unreadable, reason: "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { gzclose(file) }
    var offset = first
    var index = 1
    let whereTheyEnd = summary.singleFile ? "vox_offset \(summary.voxOffset)" : "the end of the header file"
    while regionEnd - offset >= 16 {
        var head = [UInt8](repeating: 0, count: 8)
        let got = gzseek(file, off_t(offset), SEEK_SET) == off_t(offset)
            ? head.withUnsafeMutableBytes { gzread(file, $0.baseAddress, 8) } : -1
        guard got == 8 else {
            if got >= 0 && !summary.singleFile { return }  // a .hdr file may end right after its last extension
            throw NIfTIError(path: path, kind: .truncated,
                             reason: "header extension \(index) at byte \(offset): the file ends before the extension does (the header promises extensions up to \(whereTheyEnd))")
        }
        let esize = Int(load(head, 0, Int32.self, swapped: summary.swapped))
        let ecode = Int(load(head, 4, Int32.self, swapped: summary.swapped))
        if esize == 0 && ecode == 0 { return }
        guard esize >= 16, esize % 16 == 0 else {
            throw NIfTIError(path: path, kind: .invalidHeader,
                             reason: "invalid header extension \(index) at byte \(offset): esize is \(esize), must be a positive multiple of 16")
        }
        guard esize <= regionEnd - offset else {
            throw NIfTIError(path: path, kind: .invalidHeader,
                             reason: "invalid header extension \(index) at byte \(offset): esize \(esize) runs past \(whereTheyEnd)")
        }
        let end = offset + esize
        var last: UInt8 = 0
        guard end <= dataEnd, gzseek(file, off_t(end - 1), SEEK_SET) == off_t(end - 1), gzread(file, &last, 1) == 1 else {
            throw NIfTIError(path: path, kind: .truncated,
                             reason: "header extension \(index) at byte \(offset) claims \(formatBytes(esize)), past the end of the \(compressed ? "inflated data" : "file") (\(compressed ? "at most " + formatBytes(dataEnd) : formatBytes(size)))")
        }
        offset = end
        index += 1
    }
}

private func affine(from m: nifti_dmat44) -> Affine {
    var matrix = m
    return withUnsafeBytes(of: &matrix.m) { raw in
        let values = raw.bindMemory(to: Double.self)
        return Affine(rows: (0..<4).map { r in (0..<4).map { c in values[r * 4 + c] } })
    }
}

private func fixedString<T>(_ tuple: T) -> String {
    var copy = tuple
    return withUnsafeBytes(of: &copy) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Parses a header with niftilib (`nifti_convert_n1hdr2nim` / `nifti_convert_n2hdr2nim`,
/// what `nifti_image_read` does before it reads extensions and data), after the checks above.
func readHeaderWithLibrary(path: String) throws -> NIfTIHeader {
    let summary = try validateRawHeader(path: path)
    // niftilib's converter, as `nifti_image_read` calls it, without the extension reading
    // that follows there (see ``checkExtensions(path:summary:)``).
    let converted: UnsafeMutablePointer<nifti_image>?
    if summary.version == 1 {
        var raw = nifti_1_header()
        precondition(MemoryLayout<nifti_1_header>.size == 348, "nifti_1_header is not 348 bytes")
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: summary.headerBytes.prefix(348)) }
        converted = nifti_convert_n1hdr2nim(raw, path)
    } else {
        var raw = nifti_2_header()
        precondition(MemoryLayout<nifti_2_header>.size == 540, "nifti_2_header is not 540 bytes")
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: summary.headerBytes.prefix(540)) }
        converted = nifti_convert_n2hdr2nim(raw, path)
    }
    guard let image = converted else {
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "niftilib could not parse the header")
    }
    defer { nifti_image_free(image) }
    let nim = image.pointee
    guard let datatype = NIfTIDataType(rawValue: Int(nim.datatype)) else {
        throw NIfTIError(path: path, kind: .unsupportedDataType, reason: NIfTIDataType.unsupportedReason(code: Int(nim.datatype)) ?? "unsupported datatype")
    }
    var dim = nim.dim
    let dims = withUnsafeBytes(of: &dim) { Array($0.bindMemory(to: Int64.self)) }
    let dimensionCount = Int(dims[0])
    var header = NIfTIHeader(
        niftiVersion: summary.version,
        shape: (1...dimensionCount).map { Int(dims[$0]) },
        pixdim: (1...dimensionCount).map { summary.pixdim[$0] },
        datatype: datatype,
        sclSlope: nim.scl_slope, sclInter: nim.scl_inter,
        qformCode: Int(nim.qform_code), sformCode: Int(nim.sform_code),
        qform: affine(from: nim.qto_xyz),
        quaternion: QuaternionParameters(b: nim.quatern_b, c: nim.quatern_c, d: nim.quatern_d,
                                         offsetX: nim.qoffset_x, offsetY: nim.qoffset_y, offsetZ: nim.qoffset_z,
                                         qfac: nim.qfac),
        sform: affine(from: nim.sto_xyz),
        xyzUnits: Int(nim.xyz_units), timeUnits: Int(nim.time_units), toffset: nim.toffset,
        descriptionText: fixedString(nim.descrip), intentCode: Int(nim.intent_code)
    )
    if header.shape != summary.dims {
        throw NIfTIError(path: path, kind: .invalidHeader, reason: "invalid header: niftilib and the raw header disagree on the dimensions")
    }
    header.dataPath = nim.iname.map { String(cString: $0) } ?? path
    if header.dataPath != path { try checkRegularFile(header.dataPath, reportPath: path) }
    // niftilib converts a NIfTI-1 vox_offset with `(int)` (nifti_convert_n1hdr2nim): a value
    // of 2^31 or more is undefined behaviour and came back as -2^31 on x86-64, which the size
    // check then read as "plenty of data" and a 1.3 GB buffer was allocated for a 348-byte
    // file (found by Scripts/fuzz; Fixtures/fuzz-regressions/nifti/vox-offset-int-overflow).
    // The offset is therefore taken from the raw header, and niftilib must agree with it.
    guard Int(nim.iname_offset) == summary.voxOffset else {
        throw NIfTIError(path: path, kind: .invalidHeader,
                         reason: "invalid header: vox_offset \(summary.voxOffset) is out of range")
    }
    header.dataOffset = summary.voxOffset
    header.byteSwapped = summary.swapped
    return header
}

// MARK: - Voxel bytes

/// An owned, uninitialised byte buffer (freed in deinit); `bytes` starts `offset` bytes in,
/// so a whole inflated file can hand out its voxel bytes without a copy.
///
/// `@unchecked Sendable`: it owns raw memory that one thread at a time writes (a volume read
/// ahead is filled by the background read and read by the volume reader only after waiting
/// for it); once filled, any number of threads may read it.
///
/// A buffer made from a ``MappedFile`` owns no memory: it keeps the map alive and its bytes
/// are the file's own, read-only (nothing writes through `pointer` into such a buffer).
final class ByteBuffer: @unchecked Sendable {
    private let storage: UnsafeMutableRawPointer
    private let offset: Int
    private let mapping: MappedFile?
    let count: Int
    init(count: Int, offset: Int = 0) {
        self.count = count
        self.offset = offset
        mapping = nil
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(count + offset, 1), alignment: 64)
    }
    /// `count` bytes of `mapping` from `offset`, which the caller has checked lie in the file.
    init(mapping: MappedFile, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= mapping.count, "a mapped buffer past the end of its file")
        self.mapping = mapping
        self.count = count
        self.offset = offset
        storage = UnsafeMutableRawPointer(mutating: mapping.base)
    }
    deinit { if mapping == nil { storage.deallocate() } }
    /// The start of the `count` bytes.
    var pointer: UnsafeMutableRawPointer { storage + offset }
    /// The start of the whole allocation (header bytes included).
    var allocation: UnsafeMutableRawPointer { storage }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }
}

private func fileSize(_ path: String) -> Int? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Int(info.st_size)
}

func isGzip(_ path: String) -> Bool {
    guard let handle = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? handle.close() }
    let magic = handle.readData(ofLength: 2)
    return magic.count == 2 && magic[magic.startIndex] == 0x1F && magic[magic.startIndex + 1] == 0x8B
}

/// Reads the data bytes of a whole image.
///
/// Uncompressed files are memory-mapped (``MappedFile``), read with `fread` only where they
/// cannot be mapped.
/// Compressed files are read whole and inflated with libdeflate, which is faster than zlib
/// on a whole buffer (docs/benchmarks.md); if libdeflate refuses the stream (multi-member
/// oddities, trailing bytes, damage), the streaming reader (``InflateStream``, ISA-L) takes
/// over and reports exactly what is wrong.
func readAllData(header: NIfTIHeader, reportPath: String) throws -> ByteBuffer {
    let byteCount = header.voxelCount * header.datatype.size
    let path = header.dataPath
    if isGzip(path) {
        try checkCompressedSize(path: path, offset: header.dataOffset, byteCount: byteCount, reportPath: reportPath)
        if let buffer = try? inflateWhole(path: path, offset: header.dataOffset, byteCount: byteCount) {
            return buffer
        }
        let reader = try InflateStream(path: path, offset: header.dataOffset, reportPath: reportPath, expectedBytes: byteCount)
        let buffer = ByteBuffer(count: byteCount)
        try reader.read(into: buffer.pointer, count: byteCount, alreadyRead: 0)
        return buffer
    }
    try checkUncompressedSize(path: path, offset: header.dataOffset, byteCount: byteCount, reportPath: reportPath)
    // Uncompressed voxels are converted straight from the page cache (no read into a buffer).
    if let mapping = MappedFile(path: path), mapping.count >= header.dataOffset + byteCount {
        return ByteBuffer(mapping: mapping, offset: header.dataOffset, count: byteCount)
    }
    guard let file = fopen(path, "rb") else {
        throw NIfTIError(path: reportPath, kind: .unreadable, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    let buffer = ByteBuffer(count: byteCount)
    fseeko(file, off_t(header.dataOffset), SEEK_SET)
    let got = fread(buffer.pointer, 1, byteCount, file)
    guard got == byteCount else {
        throw NIfTIError(path: reportPath, kind: .truncated, reason: "data truncated: \(formatBytes(got)) of \(formatBytes(byteCount))")
    }
    return buffer
}

func checkUncompressedSize(path: String, offset: Int, byteCount: Int, reportPath: String) throws {
    guard offset >= 0 else {
        throw NIfTIError(path: reportPath, kind: .invalidHeader, reason: "invalid header: vox_offset is \(offset)")
    }
    let size = fileSize(path) ?? 0
    if offset > size {
        throw NIfTIError(path: reportPath, kind: .truncated, reason: "vox_offset \(offset) is past the end of the file (\(size) bytes)")
    }
    if size - offset < byteCount {
        throw NIfTIError(path: reportPath, kind: .truncated, reason: "data truncated: \(formatBytes(size - offset)) of \(formatBytes(byteCount))")
    }
}

/// The most bytes deflate can produce per compressed byte: a 258-byte match coded in
/// 2 bits gives 1032:1 (zlib's "Technical details"; `deflateBound` is the inverse bound).
/// Every gzip member adds at least 18 bytes of header and trailer, so no gzip file of
/// n bytes inflates to more than 1032 n.
let maximumDeflateRatio = 1032

/// Rejects a compressed image whose header declares more data than its file could inflate
/// to, before any buffer is allocated.
///
/// Without it, a few hundred bytes of gzip claiming 2^50 voxels made `readAllData` ask for a
/// 31 PB buffer and the process died in the allocator (Fixtures/bad/nifti2_huge.nii.gz).
func checkCompressedSize(path: String, offset: Int, byteCount: Int, reportPath: String) throws {
    guard offset >= 0 else {
        throw NIfTIError(path: reportPath, kind: .invalidHeader, reason: "invalid header: vox_offset is \(offset)")
    }
    let size = fileSize(path) ?? 0
    let (bound, overflow) = size.multipliedReportingOverflow(by: maximumDeflateRatio)
    let (needed, neededOverflow) = offset.addingReportingOverflow(byteCount)
    if !overflow && (neededOverflow || needed > bound) {
        throw NIfTIError(path: reportPath, kind: .truncated,
                         reason: "data truncated: the header declares \(formatBytes(byteCount)) of voxels from vox_offset \(offset), more than a gzip file of \(formatBytes(size)) can hold (at most \(formatBytes(bound)) inflated)")
    }
}

private struct InflateFailure: Error {}

/// Inflates a whole gzip file with libdeflate and keeps `byteCount` bytes from `offset`.
private func inflateWhole(path: String, offset: Int, byteCount: Int) throws -> ByteBuffer {
    guard let compressed = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { throw InflateFailure() }
    guard let decompressor = libdeflate_alloc_decompressor() else { throw InflateFailure() }
    defer { libdeflate_free_decompressor(decompressor) }
    let total = offset + byteCount
    let whole = ByteBuffer(count: byteCount, offset: offset)
    var produced = 0
    try compressed.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
        var consumed = 0
        // A gzip file may hold several members back to back; inflate them in turn.
        while produced < total && consumed < input.count {
            var inUsed = 0
            var outUsed = 0
            let result = libdeflate_gzip_decompress_ex(
                decompressor, input.baseAddress! + consumed, input.count - consumed,
                whole.allocation + produced, total - produced, &inUsed, &outUsed)
            guard result == LIBDEFLATE_SUCCESS else { throw InflateFailure() }
            consumed += inUsed
            produced += outUsed
        }
    }
    guard produced == total else { throw InflateFailure() }
    return whole
}

// MARK: - Writing

/// Encodes a header for writing through niftilib's own converter, so the bytes on disk are
/// exactly what niftilib (and so FSL, AFNI and MRtrix) expects.
///
/// - Returns: the header bytes followed by the 4-byte extension flag (all zero), i.e. the
///   bytes that precede the voxel data at `vox_offset`.
func encodeHeader(_ header: NIfTIHeader, datatype: NIfTIDataType, path: String) throws -> [UInt8] {
    _ = silenceNIfTILibrary
    let needsVersion2 = header.shape.contains { $0 > Int(Int16.max) }
    var dims = [Int64](repeating: 1, count: 8)
    dims[0] = Int64(header.shape.count)
    for (axis, size) in header.shape.enumerated() { dims[axis + 1] = Int64(size) }
    guard let image = nifti_make_new_nim(dims, Int32(datatype.rawValue), 0) else {
        throw NIfTIError(path: path, kind: .writeFailed, reason: "niftilib could not create an image header")
    }
    defer { nifti_image_free(image) }
    for (axis, value) in header.pixdim.enumerated() where axis < 7 {
        withUnsafeMutableBytes(of: &image.pointee.pixdim) { $0.bindMemory(to: Double.self)[axis + 1] = value }
    }
    image.pointee.dx = header.pixdim.count > 0 ? header.pixdim[0] : 1
    image.pointee.dy = header.pixdim.count > 1 ? header.pixdim[1] : 1
    image.pointee.dz = header.pixdim.count > 2 ? header.pixdim[2] : 1
    image.pointee.dt = header.pixdim.count > 3 ? header.pixdim[3] : 1
    image.pointee.qform_code = Int32(header.qformCode)
    image.pointee.sform_code = Int32(header.sformCode)
    let q = header.quaternion
    image.pointee.quatern_b = q.b
    image.pointee.quatern_c = q.c
    image.pointee.quatern_d = q.d
    image.pointee.qoffset_x = q.offsetX
    image.pointee.qoffset_y = q.offsetY
    image.pointee.qoffset_z = q.offsetZ
    image.pointee.qfac = q.qfac < 0 ? -1 : 1
    withUnsafeMutableBytes(of: &image.pointee.sto_xyz.m) { raw in
        let values = raw.bindMemory(to: Double.self)
        for r in 0..<4 { for c in 0..<4 { values[r * 4 + c] = header.sform.rows[r][c] } }
    }
    image.pointee.scl_slope = 1
    image.pointee.scl_inter = 0
    image.pointee.xyz_units = Int32(header.xyzUnits)
    image.pointee.time_units = Int32(header.timeUnits)
    image.pointee.toffset = header.toffset
    image.pointee.intent_code = Int32(header.intentCode)
    let text = Array(header.descriptionText.utf8.prefix(79))
    withUnsafeMutableBytes(of: &image.pointee.descrip) { raw in
        for i in 0..<raw.count { raw[i] = i < text.count ? text[i] : 0 }
    }
    if needsVersion2 {
        image.pointee.nifti_type = 4  // NIFTI_FTYPE_NIFTI2_1
        image.pointee.iname_offset = 544
        var encoded = nifti_2_header()
        guard nifti_convert_nim2n2hdr(image, &encoded) == 0 else {
            throw NIfTIError(path: path, kind: .writeFailed, reason: "niftilib could not encode the NIfTI-2 header")
        }
        return withUnsafeBytes(of: &encoded) { Array($0.prefix(540)) } + [0, 0, 0, 0]
    }
    image.pointee.nifti_type = 1  // NIFTI_FTYPE_NIFTI1_1
    image.pointee.iname_offset = 352
    var encoded = nifti_1_header()
    guard nifti_convert_nim2n1hdr(image, &encoded) == 0 else {
        throw NIfTIError(path: path, kind: .writeFailed, reason: "niftilib could not encode the NIfTI-1 header")
    }
    return withUnsafeBytes(of: &encoded) { Array($0.prefix(348)) } + [0, 0, 0, 0]
}

/// One chunk of an image being written: its bytes as stored and, for `.gz`, the gzip member
/// libdeflate made of them (`libdeflate_gzip_compress`).
///
/// `@unchecked Sendable`: a slot is used by one thread at a time (filled by the writer,
/// compressed by one worker, read back by the writer after the workers have joined).
final class ChunkSlot: @unchecked Sendable {
    /// Room for one chunk's stored bytes.
    let input: UnsafeMutableRawPointer
    /// Bytes of `input` in use.
    var inputCount = 0
    private let capacity: Int
    private let compressor: OpaquePointer?
    private var memberStorage: UnsafeMutableRawPointer?
    private var memberCapacity = 0
    private var memberCount = 0
    private let path: String

    /// - Parameter level: the gzip level, or nil for a slot that only holds stored bytes.
    /// - Throws: ``NIfTIError`` (`writeFailed`) when libdeflate has no compressor for `level`.
    init(capacity: Int, level: Int?, path: String) throws {
        self.capacity = max(capacity, 1)
        self.path = path
        if let level {
            guard let compressor = libdeflate_alloc_compressor(Int32(level)) else {
                throw NIfTIError(path: path, kind: .writeFailed, reason: "cannot create a gzip compressor at level \(level)")
            }
            self.compressor = compressor
        } else {
            compressor = nil
        }
        input = .allocate(byteCount: self.capacity, alignment: 64)
    }

    deinit {
        input.deallocate()
        memberStorage?.deallocate()
        if let compressor { libdeflate_free_compressor(compressor) }
    }

    var inputBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: input, count: inputCount) }

    /// The gzip member made by the last ``compressInput()`` or ``compress(_:)``.
    var output: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: memberStorage, count: memberCount) }

    /// Compresses the stored bytes into ``output``.
    func compressInput() throws {
        try compressMember(UnsafeRawBufferPointer(start: input, count: inputCount))
    }

    /// Compresses `bytes` (a header, say) as a gzip member of their own and returns it.
    func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try compressMember($0) }
        return [UInt8](output)
    }

    private func compressMember(_ bytes: UnsafeRawBufferPointer) throws {
        guard let compressor else { preconditionFailure("ChunkSlot made without a compression level") }
        let bound = libdeflate_gzip_compress_bound(compressor, bytes.count)
        if bound > memberCapacity {
            memberStorage?.deallocate()
            memberStorage = .allocate(byteCount: bound, alignment: 64)
            memberCapacity = bound
        }
        memberCount = libdeflate_gzip_compress(compressor, bytes.baseAddress, bytes.count, memberStorage, memberCapacity)
        guard memberCount > 0 else {
            throw NIfTIError(path: path, kind: .writeFailed, reason: "gzip compression failed")
        }
    }
}
