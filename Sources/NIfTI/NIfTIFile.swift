import Foundation
import SlabParallel
import Synchronization

/// The floating-point types voxels are converted to on reading.
public protocol NIfTIScalar: BinaryFloatingPoint, Sendable {
    init(_ value: Double)
}
extension Float: NIfTIScalar {}
extension Double: NIfTIScalar {}

/// A NIfTI image: its header and its voxels, converted to `Scalar` with scaling applied,
/// in file order (x fastest, then y, z, then volumes).
public struct NIfTIImage<Scalar: NIfTIScalar>: Sendable {
    public var header: NIfTIHeader
    public var voxels: [Scalar]

    public init(header: NIfTIHeader, voxels: [Scalar]) {
        self.header = header
        self.voxels = voxels
    }

    /// Voxel `i` of volume `volume`.
    public subscript(voxel i: Int, volume volume: Int) -> Scalar {
        voxels[volume * header.voxelsPerVolume + i]
    }
}

/// Reading and writing NIfTI-1 and NIfTI-2 files (.nii, .nii.gz, .hdr/.img pairs).
public enum NIfTIFile {
    /// The header of `path`, parsed by niftilib after nimetrics's own sanity checks.
    /// - Throws: ``NIfTIError`` naming the file and the problem.
    public static func readHeader(_ path: String) throws -> NIfTIHeader {
        try readHeaderWithLibrary(path: headerPath(for: path))
    }

    /// Reads a whole image, converting every datatype to `Scalar` and applying
    /// `scl_slope`/`scl_inter` as nibabel does.
    ///
    /// - Parameters:
    ///   - path: a .nii, .nii.gz or .hdr (the .img beside it is found) file.
    ///   - threads: threads used to convert voxels (the result does not depend on it).
    /// - Throws: ``NIfTIError`` (missing, not NIfTI, truncated, corrupt, unsupported).
    public static func read<Scalar: NIfTIScalar>(_ path: String, as _: Scalar.Type = Float.self, threads: Int = 1) throws -> NIfTIImage<Scalar> {
        let header = try readHeader(path)
        let bytes = try readAllData(header: header, reportPath: path)
        return NIfTIImage(header: header, voxels: convertedVoxels(bytes.bytes, header: header, threads: threads))
    }

    /// Opens a 4D image for reading one 3D volume at a time, so a long run never has to be in
    /// memory whole.
    public static func volumes(_ path: String) throws -> NIfTIVolumeReader {
        try NIfTIVolumeReader(path: path)
    }

    /// Writes voxels as a NIfTI-1 file (NIfTI-2 when a dimension exceeds 32767), carrying
    /// the geometry (sform, qform, their codes, voxel sizes, units) of `geometry`.
    ///
    /// The file is written to a temporary name beside `path` and renamed into place, so an
    /// interrupted run never leaves a half-written file under the final name. A path ending in
    /// `.gz` is gzip-compressed (libdeflate, `compressionLevel`).
    ///
    /// - Parameters:
    ///   - voxels: values in file order; `shape.reduce(1, *)` of them.
    ///   - shape: the output dimensions (spatial first, then volumes).
    ///   - datatype: `.float32`, `.int16`, `.uint8` (labels and masks) or any other type;
    ///     values are rounded and clamped for integer types.
    ///   - geometry: the header whose grid the output shares.
    ///   - compressionLevel: gzip level for `.gz` (libdeflate, 1 fastest ... 12 smallest).
    ///   - threads: threads compressing the chunks of a `.gz` file (the bytes do not depend on it).
    public static func write<Scalar: BinaryFloatingPoint>(
        _ voxels: [Scalar], shape: [Int], datatype: NIfTIDataType = .float32,
        geometry: NIfTIHeader, to path: String, description: String = "nimetrics",
        compressionLevel: Int = 6, threads: Int = 1
    ) throws {
        guard shape.reduce(1, *) == voxels.count else {
            throw NIfTIError(path: path, kind: .invalidArgument,
                             reason: "cannot write \(voxels.count) voxels as shape \(shape)")
        }
        try write(shape: shape, datatype: datatype, geometry: geometry, to: path, description: description,
                  compressionLevel: compressionLevel, threads: threads) { range, destination in
            storeVoxels(voxels, range, as: datatype, into: destination)
        }
    }

    /// Writes a NIfTI file whose voxels are made a chunk at a time by `chunk`, so that an
    /// image need never exist whole in memory (a map scattered from a masked fit, say).
    /// Otherwise as ``write(_:shape:datatype:geometry:to:description:compressionLevel:threads:)``.
    ///
    /// - Parameter chunk: the voxels of a range of file-order indices (`range.count` of
    ///   them), in file order; called on the calling thread, ranges in increasing order.
    public static func write(
        shape: [Int], datatype: NIfTIDataType = .float32, geometry: NIfTIHeader, to path: String,
        description: String = "nimetrics", compressionLevel: Int = 6, threads: Int = 1,
        chunk: (Range<Int>) -> [Float]
    ) throws {
        try write(shape: shape, datatype: datatype, geometry: geometry, to: path, description: description,
                  compressionLevel: compressionLevel, threads: threads) { range, destination in
            let values = chunk(range)
            precondition(values.count == range.count, "a chunk of \(range.count) voxels came back with \(values.count)")
            storeVoxels(values, 0..<values.count, as: datatype, into: destination)
        }
    }

    /// The writer behind both fronts: `store` converts the voxels of a file-order range to
    /// `datatype` at the destination.
    private static func write(
        shape: [Int], datatype: NIfTIDataType, geometry: NIfTIHeader, to path: String, description: String,
        compressionLevel: Int, threads: Int, store: (Range<Int>, UnsafeMutableRawPointer) -> Void
    ) throws {
        let voxelCount = shape.reduce(1, *)
        guard !shape.isEmpty, shape.count <= 7, shape.allSatisfy({ $0 >= 1 }) else {
            throw NIfTIError(path: path, kind: .invalidArgument, reason: "cannot write an image of shape \(shape)")
        }
        var header = geometry
        header.shape = shape
        var pixdim = Array(geometry.pixdim.prefix(shape.count))
        while pixdim.count < shape.count { pixdim.append(1) }
        header.pixdim = pixdim
        header.descriptionText = description
        header.datatype = datatype
        let prefix = try encodeHeader(header, datatype: datatype, path: path)
        let compressed = path.hasSuffix(".gz")
        // The voxels are converted and (for .gz) compressed a chunk at a time, each chunk a
        // gzip member of its own (readers inflate members back to back: zlib's gzread, which
        // niftilib, FSL and MRtrix3 use; Python's gzip, which nibabel uses; libdeflate and
        // ISA-L here), so memory stays at a few chunks whatever the image size, and the
        // chunks of one file are compressed on `threads` threads. Chunk boundaries do not
        // depend on `threads`, so neither do the bytes.
        let voxelsPerChunk = max(1, gzipChunkBytes / datatype.size)
        let chunkCount = (voxelCount + voxelsPerChunk - 1) / voxelsPerChunk
        let workers = compressed ? max(1, min(threads, chunkCount)) : 1
        do {
            let slots = try (0..<workers).map { _ in
                try ChunkSlot(capacity: voxelsPerChunk * datatype.size, level: compressed ? compressionLevel : nil, path: path)
            }
            try AtomicFile.write(to: path) { (sink: borrowing AtomicFile.Sink) in
                if compressed {
                    try slots[0].compress(prefix).withUnsafeBytes { try sink.append($0) }
                } else {
                    try prefix.withUnsafeBytes { try sink.append($0) }
                }
                var first = 0
                while first < chunkCount {
                    let batch = min(workers, chunkCount - first)
                    for k in 0..<batch {
                        let start = (first + k) * voxelsPerChunk
                        let range = start..<min(voxelCount, start + voxelsPerChunk)
                        slots[k].inputCount = range.count * datatype.size
                        store(range, slots[k].input)
                    }
                    if compressed {
                        let failures = ParallelFailures(count: batch)
                        forEachInterleaved(count: batch, threads: batch) { k in
                            do { try slots[k].compressInput() } catch { failures.record(error, at: k) }
                        }
                        try failures.throwFirst()
                        for k in 0..<batch { try sink.append(slots[k].output) }
                    } else {
                        try sink.append(slots[0].inputBytes)
                    }
                    first += batch
                }
            }
        } catch let error as NIfTIError {
            throw error
        } catch let error as AtomicWriteError {
            // Already names the file; only the reason is kept, so the path is not repeated.
            throw NIfTIError(path: path, kind: .writeFailed, reason: error.reason)
        } catch {
            throw NIfTIError(path: path, kind: .writeFailed, reason: "cannot write: \(error)")
        }
    }

    /// Bytes of voxel data per gzip member (and per conversion chunk) when writing. 512 KiB:
    /// a 96x96x60 float map is five members, so two threads share even small maps; the
    /// deflate window is 32 KiB, so the split costs almost nothing in size
    /// (docs/benchmarks.md).
    static let gzipChunkBytes = 1 << 19

    /// The header file of an image given by any of its names (`x.img` -> `x.hdr`).
    static func headerPath(for path: String) -> String {
        for (image, header) in [(".img", ".hdr"), (".img.gz", ".hdr.gz")] where path.hasSuffix(image) {
            return String(path.dropLast(image.count)) + header
        }
        return path
    }
}

import AtomicFiles

/// Streams the volumes of a 3D or 4D image in order, one at a time.
///
/// With ``readsAhead`` the next volume is inflated on a background thread while the caller
/// works on the current one, so a caller whose per-volume work is shorter than the inflate
/// reads a compressed series in about the time of the inflate alone (docs/benchmarks.md).
/// The volumes returned do not depend on it.
public final class NIfTIVolumeReader {
    public let header: NIfTIHeader
    /// The index of the next volume `next(into:)` returns.
    public private(set) var nextIndex = 0
    /// The inflating reader of a compressed file (nil when the file is mapped).
    private let stream: InflateStream?
    /// The map of an uncompressed file: each volume is a view into it, no read or copy.
    private let mapping: MappedFile?
    /// The bytes of the volume being returned.
    private var raw: ByteBuffer
    /// The inflate running ahead of the caller, once the first volume is asked for with
    /// ``readsAhead`` set.
    private var ahead: ReadAhead?
    /// The error that ended the stream: every later call throws it again.
    private var failure: (any Error)?
    private let path: String

    init(path: String) throws {
        header = try NIfTIFile.readHeader(path)
        self.path = path
        let volumeBytes = header.voxelsPerVolume * header.datatype.size
        let byteCount = volumeBytes * header.volumeCount
        if !isGzip(header.dataPath) {
            try checkUncompressedSize(path: header.dataPath, offset: header.dataOffset, byteCount: byteCount, reportPath: path)
        }
        if !isGzip(header.dataPath), let mapping = MappedFile(path: header.dataPath),
           mapping.count >= header.dataOffset + byteCount {
            self.mapping = mapping
            stream = nil
            raw = ByteBuffer(count: 0)
        } else {
            mapping = nil
            stream = try InflateStream(path: header.dataPath, offset: header.dataOffset, reportPath: path, expectedBytes: byteCount)
            raw = ByteBuffer(count: volumeBytes)
        }
    }

    deinit {
        // The inflate ahead uses the stream and the buffers: stop it and let it finish first.
        ahead?.stop()
    }

    /// Threads given to the reader; see ``threadsForVolumeWork``.
    public var threads = 1

    /// Threads for the work on each volume (the conversion here, and the caller's): all of
    /// ``threads`` but the one inflating the next volume while a compressed series is read
    /// ahead, so that the inflate, the serial part of reading, never waits for a core.
    public var threadsForVolumeWork: Int {
        readsAhead && stream != nil ? max(1, threads - 1) : threads
    }

    /// Inflate the following volumes on a thread of their own, one ahead of the caller's work
    /// (default false; one more volume of memory). The volumes returned do not depend on it.
    public var readsAhead = false

    /// Reads the next volume into `volume` (resized to one volume), or returns false after the last.
    /// - Throws: ``NIfTIError`` when the data are truncated or the stream is corrupt.
    public func next<Scalar: NIfTIScalar>(into volume: inout [Scalar]) throws -> Bool {
        guard try advance() else { return false }
        let count = header.voxelsPerVolume
        if volume.count != count { volume = [Scalar](repeating: 0, count: count) }
        volume.withUnsafeMutableBufferPointer { convertVoxels(raw.bytes, header: header, into: $0, threads: threadsForVolumeWork) }
        return true
    }

    /// Whether ``next(integersInto:)`` can read this image: 8- or 16-bit integers without scaling.
    public var storesSmallIntegers: Bool {
        [.int16, .uint8, .int8].contains(header.datatype) && header.scaling == nil
    }

    /// Reads the next volume as its stored integers, exactly (no scaling applies; see
    /// ``storesSmallIntegers``), into `volume` (resized to one volume), or returns false after
    /// the last. Half the memory of floats, and no conversion.
    /// - Throws: ``NIfTIError`` with kind `unsupportedDataType` when the image does not store
    ///   small integers without scaling; otherwise as ``next(into:)``.
    public func next(integersInto volume: inout [Int16]) throws -> Bool {
        guard storesSmallIntegers else {
            throw NIfTIError(path: path, kind: .unsupportedDataType,
                             reason: "not read as stored integers: \(header.datatype) \(header.scaling == nil ? "" : "with scaling")")
        }
        guard try advance() else { return false }
        let count = header.voxelsPerVolume
        if volume.count != count { volume = [Int16](repeating: 0, count: count) }
        let bytes = raw.bytes
        let swapped = header.byteSwapped
        let datatype = header.datatype
        volume.withUnsafeMutableBufferPointer { out in
            switch datatype {
            case .int16:
                for i in 0..<count {
                    let v = bytes.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)
                    out[i] = swapped ? v.byteSwapped : v
                }
            case .uint8:
                for i in 0..<count { out[i] = Int16(bytes[i]) }
            default: // .int8
                for i in 0..<count { out[i] = Int16(Int8(bitPattern: bytes[i])) }
            }
        }
        return true
    }

    /// Reads the next volume and passes its voxels as stored 16-bit integers to `body`, or
    /// returns nil after the last: the reader's own bytes when the file stores native-order
    /// int16 (no copy), else the volume converted into `scratch` (see
    /// ``next(integersInto:)``). The buffer is valid only inside `body`.
    public func next<R>(integers scratch: inout [Int16], _ body: (UnsafeBufferPointer<Int16>) throws -> R) throws -> R? {
        if header.datatype == .int16, !header.byteSwapped, storesSmallIntegers {
            guard try advance() else { return nil }
            let count = header.voxelsPerVolume
            let bytes = UnsafeRawBufferPointer(rebasing: raw.bytes.prefix(2 * count))
            if Int(bitPattern: bytes.baseAddress) % MemoryLayout<Int16>.alignment == 0 {
                return try bytes.withMemoryRebound(to: Int16.self, body)
            }
            if scratch.count != count { scratch = [Int16](repeating: 0, count: count) }
            scratch.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
            return try scratch.withUnsafeBufferPointer(body)
        }
        guard try next(integersInto: &scratch) else { return nil }
        return try scratch.withUnsafeBufferPointer(body)
    }

    /// Makes `raw` hold volume `nextIndex` (from the inflate ahead, or read now) and moves on.
    private func advance() throws -> Bool {
        if let failure { throw failure }
        guard nextIndex < header.volumeCount else { return false }
        guard let stream else { return advanceMapped() }
        do {
            if readsAhead && ahead == nil {
                ahead = ReadAhead(stream: stream, first: raw, volumeBytes: raw.count, from: nextIndex, to: header.volumeCount)
            }
            if let ahead {
                raw = try ahead.take(nextIndex)
            } else {
                try stream.read(into: raw.pointer, count: raw.count, alreadyRead: nextIndex * raw.count)
            }
        } catch {
            failure = error
            throw error
        }
        nextIndex += 1
        return true
    }
}

/// Volumes inflated one after another on a thread of their own into two buffers, while the
/// caller works on the volume before: the inflate (the serial part of reading a compressed
/// series) never waits for a hand-over, only for the caller to be done with a buffer.
///
/// `@unchecked Sendable`: the stream and the buffers are shared by the two threads under the
/// semaphores' protocol. The inflating thread writes buffer `v % 2` only after the caller has
/// handed it back (the `free` semaphore) and hands it over with `filled`; the caller reads a
/// buffer only between `take` and its next `take`.
private final class ReadAhead: @unchecked Sendable {
    private let buffers: [ByteBuffer]
    private let first: Int
    /// Buffers the inflate may fill. Every semaphore starts at 0 (libdispatch traps when one
    /// is freed below its starting value, as `free` is when the caller stops early); the two
    /// buffers are signalled free in `init`.
    private let free = DispatchSemaphore(value: 0)
    private let filled = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// The volume whose read failed, and the error; set before `filled` is signalled.
    private let failure = Mutex<(volume: Int, error: any Error)?>(nil)
    private let cancelled = Mutex(false)
    /// Whether the caller holds a buffer (each `take` after the first hands one back).
    private var holding = false

    /// Starts inflating volumes `start ..< end` of `stream`, `volumeBytes` each, into `first`
    /// and one more buffer.
    init(stream: InflateStream, first buffer: ByteBuffer, volumeBytes: Int, from start: Int, to end: Int) {
        buffers = [buffer, ByteBuffer(count: volumeBytes)]
        first = start
        free.signal()
        free.signal()
        // The thread holds this object until it finishes, which `stop` waits for.
        DispatchQueue(label: "nimetrics.inflate-ahead").async { [self] in
            defer { finished.signal() }
            for v in start..<end {
                free.wait()
                if cancelled.withLock({ $0 }) { return }
                do {
                    try stream.read(into: buffers[(v - start) % 2].pointer, count: volumeBytes, alreadyRead: v * volumeBytes)
                } catch {
                    failure.withLock { $0 = (v, error) }
                    filled.signal()
                    return
                }
                filled.signal()
            }
        }
    }

    /// The buffer of volume `v` (the next one), once inflated; hands the one before back.
    func take(_ v: Int) throws -> ByteBuffer {
        if holding { free.signal() }
        holding = true
        filled.wait()
        if let failed = failure.withLock({ $0 }), failed.volume == v { throw failed.error }
        return buffers[(v - first) % 2]
    }

    /// Stops the inflate (after the volume in progress) and waits for its thread to finish.
    func stop() {
        cancelled.withLock { $0 = true }
        free.signal()
        free.signal()
        finished.wait()
    }
}

extension NIfTIVolumeReader {
    /// Points `raw` at volume `nextIndex` in the map and moves on; reading ahead becomes a
    /// hint to the kernel to fetch the next volume's pages.
    private func advanceMapped() -> Bool {
        guard let mapping else { return false }
        let volumeBytes = header.voxelsPerVolume * header.datatype.size
        let offset = header.dataOffset + nextIndex * volumeBytes
        // The volume before is done with (`raw` is only read inside `next`): unmap its pages.
        if nextIndex > 0 { mapping.release(offset: offset - volumeBytes, end: offset) }
        raw = ByteBuffer(mapping: mapping, offset: offset, count: volumeBytes)
        nextIndex += 1
        if readsAhead && nextIndex < header.volumeCount { mapping.prefetch(offset: offset + volumeBytes, count: volumeBytes) }
        return true
    }
}

// MARK: - Conversion

/// Converts all stored voxels to a new array.
func convertedVoxels<Scalar: NIfTIScalar>(_ bytes: UnsafeRawBufferPointer, header: NIfTIHeader, threads: Int) -> [Scalar] {
    let count = header.voxelCount
    return [Scalar](unsafeUninitializedCapacity: count) { output, initialized in
        convertVoxels(bytes, header: header, into: output, threads: threads)
        initialized = count
    }
}

/// Converts stored voxels to floating point, byte-swapping and scaling as needed, split
/// across `threads` (each thread converts a disjoint range).
///
/// The public entry points are generic, and callers in other modules reach them
/// unspecialized, where a generic per-voxel conversion is several times slower; the two
/// scalar types are therefore dispatched here to specialized loops.
func convertVoxels<Scalar: NIfTIScalar>(_ bytes: UnsafeRawBufferPointer, header: NIfTIHeader,
                                        into output: UnsafeMutableBufferPointer<Scalar>, threads: Int) {
    if Scalar.self == Float.self {
        let floats = UnsafeMutableRawBufferPointer(output).bindMemory(to: Float.self)
        convertVoxelsSpecialized(bytes, header: header, into: floats, threads: threads)
    } else if Scalar.self == Double.self {
        let doubles = UnsafeMutableRawBufferPointer(output).bindMemory(to: Double.self)
        convertVoxelsSpecialized(bytes, header: header, into: doubles, threads: threads)
    } else {
        convertVoxelsSpecialized(bytes, header: header, into: output, threads: threads)
    }
}

@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func convertVoxelsSpecialized<Scalar: NIfTIScalar>(_ bytes: UnsafeRawBufferPointer, header: NIfTIHeader,
                                        into output: UnsafeMutableBufferPointer<Scalar>, threads: Int) {
    let count = output.count
    // Conversion is per voxel, so any split gives the same result; small images stay on
    // the calling thread.
    let slabs = max(1, min(threads, count / 65_536))
    let source = SharedReadBuffer(bytes.bindMemory(to: UInt8.self))
    let destination = SharedBuffer(output)
    let scaling = header.scaling
    let swapped = header.byteSwapped
    let datatype = header.datatype
    forEachSlab(count: count, threads: slabs) { range in
        let from = UnsafeRawPointer(source.base), to = destination.base
        let (start, end) = (range.lowerBound, range.upperBound)
        switch datatype {
        case .uint8: convertRange(from, UInt8.self, to, start, end, swapped, scaling)
        case .int8: convertRange(from, Int8.self, to, start, end, swapped, scaling)
        case .int16: convertRange(from, Int16.self, to, start, end, swapped, scaling)
        case .uint16: convertRange(from, UInt16.self, to, start, end, swapped, scaling)
        case .int32: convertRange(from, Int32.self, to, start, end, swapped, scaling)
        case .uint32: convertRange(from, UInt32.self, to, start, end, swapped, scaling)
        case .int64: convertRange(from, Int64.self, to, start, end, swapped, scaling)
        case .uint64: convertRange(from, UInt64.self, to, start, end, swapped, scaling)
        case .float32: convertRange(from, Float32Bits.self, to, start, end, swapped, scaling)
        case .float64: convertRange(from, Float64Bits.self, to, start, end, swapped, scaling)
        }
    }
}

/// A stored voxel type: loads from unaligned bytes, swaps, and widens to Double.
protocol StoredVoxel {
    static func value(at pointer: UnsafeRawPointer, swapped: Bool) -> Double
}

extension StoredVoxel where Self: FixedWidthInteger {
    @inline(__always)
    static func value(at pointer: UnsafeRawPointer, swapped: Bool) -> Double {
        let raw = pointer.loadUnaligned(as: Self.self)
        return Double(swapped ? raw.byteSwapped : raw)
    }
}
extension UInt8: StoredVoxel {}
extension Int8: StoredVoxel {}
extension Int16: StoredVoxel {}
extension UInt16: StoredVoxel {}
extension Int32: StoredVoxel {}
extension UInt32: StoredVoxel {}
extension Int64: StoredVoxel {}
extension UInt64: StoredVoxel {}

enum Float32Bits: StoredVoxel {
    @inline(__always)
    static func value(at pointer: UnsafeRawPointer, swapped: Bool) -> Double {
        let bits = pointer.loadUnaligned(as: UInt32.self)
        return Double(Float(bitPattern: swapped ? bits.byteSwapped : bits))
    }
}
enum Float64Bits: StoredVoxel {
    @inline(__always)
    static func value(at pointer: UnsafeRawPointer, swapped: Bool) -> Double {
        let bits = pointer.loadUnaligned(as: UInt64.self)
        return Double(bitPattern: swapped ? bits.byteSwapped : bits)
    }
}

@inline(__always)
private func convertRange<Stored: StoredVoxel, Scalar: NIfTIScalar>(
    _ source: UnsafeRawPointer, _: Stored.Type, _ destination: UnsafeMutablePointer<Scalar>,
    _ start: Int, _ end: Int, _ swapped: Bool, _ scaling: (slope: Double, intercept: Double)?
) {
    let size = Stored.self == Float32Bits.self ? 4 : Stored.self == Float64Bits.self ? 8 : MemoryLayout<Stored>.size
    if Stored.self == Float32Bits.self, Scalar.self == Float.self, !swapped, scaling == nil {
        // Stored as wanted: a copy.
        (destination + start).withMemoryRebound(to: UInt8.self, capacity: 4 * (end - start)) { bytes in
            bytes.update(from: source.assumingMemoryBound(to: UInt8.self) + 4 * start, count: 4 * (end - start))
        }
        return
    }
    if let (slope, intercept) = scaling {
        for i in start..<end {
            destination[i] = Scalar(Stored.value(at: source + i * size, swapped: swapped) * slope + intercept)
        }
    } else {
        for i in start..<end {
            destination[i] = Scalar(Stored.value(at: source + i * size, swapped: swapped))
        }
    }
}

/// Stores voxels in `datatype`, little-endian (native on every platform nimetrics runs on);
/// integer types round to nearest and clamp to their range, NaN becomes 0.
///
/// Callers in other modules reach the public generic `write` unspecialized, where a generic
/// per-voxel conversion is several times slower; dispatching here to concrete element types
/// keeps the loops specialized (docs/benchmarks.md).
private func storeVoxels<Scalar: BinaryFloatingPoint>(_ voxels: [Scalar], _ range: Range<Int>, as datatype: NIfTIDataType,
                                                      into destination: UnsafeMutableRawPointer) {
    // `as? [Float]` would copy element by element; the type test plus a bit cast does not.
    if Scalar.self == Float.self {
        storeConcrete(unsafeBitCast(voxels, to: [Float].self), range, as: datatype, into: destination)
    } else if Scalar.self == Double.self {
        storeConcrete(unsafeBitCast(voxels, to: [Double].self), range, as: datatype, into: destination)
    } else {
        storeConcrete(voxels[range].map { Double($0) }, 0..<range.count, as: datatype, into: destination)
    }
}

private func storeConcrete<Scalar: BinaryFloatingPoint>(_ voxels: [Scalar], _ range: Range<Int>, as datatype: NIfTIDataType,
                                                        into destination: UnsafeMutableRawPointer) {
    voxels.withUnsafeBufferPointer { whole in
        let input = UnsafeBufferPointer(rebasing: whole[range])
        // Rounded to the nearest integer and saturated; NaN is stored as 0. `Double(T.max)`
        // is exact up to 32 bits but rounds up to 2^63 (2^64) for Int64 (UInt64), which `make`
        // cannot convert back, so the saturation compares before converting: anything at or
        // above `Double(T.max)` is `T.max`. `Double(T.min)` is exact for every type.
        func integers<T: FixedWidthInteger>(_: T.Type, _ make: (Double) -> T) {
            let out = destination.bindMemory(to: T.self, capacity: input.count)
            let low = Double(T.min), high = Double(T.max)
            for i in 0..<input.count {
                let d = Double(input[i]).rounded()
                out[i] = d.isNaN ? 0 : d >= high ? T.max : d <= low ? T.min : make(d)
            }
        }
        switch datatype {
        case .float32:
            let out = destination.bindMemory(to: Float.self, capacity: input.count)
            for i in 0..<input.count { out[i] = Float(input[i]) }
        case .float64:
            let out = destination.bindMemory(to: Double.self, capacity: input.count)
            for i in 0..<input.count { out[i] = Double(input[i]) }
        case .uint8: integers(UInt8.self) { UInt8($0) }
        case .int8: integers(Int8.self) { Int8($0) }
        case .int16: integers(Int16.self) { Int16($0) }
        case .uint16: integers(UInt16.self) { UInt16($0) }
        case .int32: integers(Int32.self) { Int32($0) }
        case .uint32: integers(UInt32.self) { UInt32($0) }
        case .int64: integers(Int64.self) { Int64($0) }
        case .uint64: integers(UInt64.self) { UInt64($0) }
        }
    }
}
