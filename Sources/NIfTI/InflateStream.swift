// Sequential reads of voxel data, inflated with ISA-L when the file is gzip-compressed.
import CISAL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the voxel bytes of a file in order, from a byte offset: plain reads for `.nii`,
/// streaming inflate for `.nii.gz`.
///
/// The streaming inflate is ISA-L's (`isal_inflate`), which is faster than zlib's `gzread`
/// with the same few megabytes of memory; the inflate is the largest share of
/// `nimetrics fmri` (docs/benchmarks.md). Several gzip members back to back are read in turn;
/// the CRC of each member is checked.
///
/// `@unchecked Sendable`: it owns C resources (a `FILE *` and ISA-L's inflate state) that one
/// thread at a time uses; ``NIfTIVolumeReader`` hands the stream to its background read and
/// touches it again only after that read's `wait()` has returned.
final class InflateStream: @unchecked Sendable {
    private let file: UnsafeMutablePointer<FILE>
    /// The compressed file mapped, when it can be: ISA-L then inflates straight from the page
    /// cache, with no copy into ``input`` (the copy is on the serial path of every read).
    private let mapping: MappedFile?
    /// Bytes of the map handed to ISA-L so far, and the start of the part not yet released.
    private var mappedOffset = 0
    private var releasedOffset = 0
    private let compressed: Bool
    private let reportPath: String
    private let expectedBytes: Int
    private let state: UnsafeMutablePointer<inflate_state>
    private let input: UnsafeMutableRawPointer
    private let inputCapacity = 1 << 20
    private var endOfFile = false

    init(path: String, offset: Int, reportPath: String, expectedBytes: Int) throws {
        guard let file = fopen(path, "rb") else {
            throw NIfTIError(path: reportPath, kind: .unreadable, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.file = file
        self.reportPath = reportPath
        self.expectedBytes = expectedBytes
        state = .allocate(capacity: 1)
        input = .allocate(byteCount: inputCapacity, alignment: 64)
        var magic: (UInt8, UInt8) = (0, 0)
        let got = fread(&magic, 1, 2, file)
        compressed = got == 2 && magic.0 == 0x1F && magic.1 == 0x8B
        mapping = compressed ? MappedFile(path: path) : nil
        rewind(file)
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
        state.pointee.avail_in = 0
        // Every stored property is set: a throw from here on runs deinit.
        if compressed {
            try checkCompressedSize(path: path, offset: offset, byteCount: expectedBytes, reportPath: reportPath)
            if offset > 0 {
                let skipped = UnsafeMutableRawPointer.allocate(byteCount: offset, alignment: 8)
                defer { skipped.deallocate() }
                do {
                    try inflate(into: skipped, count: offset, alreadyRead: 0)
                } catch let error as NIfTIError where error.kind == .truncated {
                    throw NIfTIError(path: reportPath, kind: .truncated, reason: "vox_offset \(offset) is past the end of the data")
                }
            }
        } else {
            try checkUncompressedSize(path: path, offset: offset, byteCount: expectedBytes, reportPath: reportPath)
            if fseeko(file, off_t(offset), SEEK_SET) != 0 {
                throw NIfTIError(path: reportPath, kind: .truncated, reason: "vox_offset \(offset) is past the end of the data")
            }
        }
    }

    deinit {
        fclose(file)
        state.deallocate()
        input.deallocate()
    }

    /// Reads exactly `count` bytes or throws (truncation or corrupt stream).
    /// - Parameter alreadyRead: bytes read before this call, for the truncation message.
    func read(into destination: UnsafeMutableRawPointer, count: Int, alreadyRead: Int) throws {
        if compressed {
            try inflate(into: destination, count: count, alreadyRead: alreadyRead)
            // After the last voxel, inflate to the end of the member so its CRC is checked:
            // a stream damaged in a way that still inflates is caught here.
            if alreadyRead + count >= expectedBytes { try finishMember(alreadyRead: alreadyRead + count) }
            return
        }
        let got = fread(destination, 1, count, file)
        guard got == count else {
            throw NIfTIError(path: reportPath, kind: .truncated,
                             reason: "data truncated: \(formatBytes(alreadyRead + got)) of \(formatBytes(expectedBytes))")
        }
    }

    /// Bytes of the map handed to ISA-L at a time; the pages behind them are released once
    /// this much has been inflated past them, so the map adds a few megabytes to the
    /// resident memory, not the file.
    private static let mappedStep = 1 << 20

    private func refill() {
        guard state.pointee.avail_in == 0, !endOfFile else { return }
        if let mapping {
            // Everything handed over so far has been consumed.
            if mappedOffset - releasedOffset >= 2 * Self.mappedStep {
                mapping.release(offset: releasedOffset, end: mappedOffset)
                releasedOffset = mappedOffset
            }
            let count = min(Self.mappedStep, mapping.count - mappedOffset)
            if count == 0 { endOfFile = true }
            state.pointee.next_in = UnsafeMutablePointer(mutating: (mapping.base + mappedOffset).assumingMemoryBound(to: UInt8.self))
            state.pointee.avail_in = UInt32(count)
            mappedOffset += count
            return
        }
        let got = fread(input, 1, inputCapacity, file)
        if got == 0 { endOfFile = true }
        state.pointee.next_in = input.assumingMemoryBound(to: UInt8.self)
        state.pointee.avail_in = UInt32(got)
    }

    private func inflate(into destination: UnsafeMutableRawPointer, count: Int, alreadyRead: Int) throws {
        var done = 0
        while done < count {
            refill()
            let room = UInt32(min(count - done, Int(UInt32.max)))
            state.pointee.next_out = (destination + done).assumingMemoryBound(to: UInt8.self)
            state.pointee.avail_out = room
            let status = isal_inflate(state)
            done += Int(room - state.pointee.avail_out)
            if status < 0 {
                let reason = status == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch" : "invalid compressed data (ISA-L status \(status))"
                throw NIfTIError(path: reportPath, kind: .corruptCompression, reason: "corrupt gzip stream: \(reason)")
            }
            if state.pointee.block_state == ISAL_BLOCK_FINISH {
                guard done < count else { break }
                // One member ended; another may follow.
                refill()
                guard state.pointee.avail_in >= 2, state.pointee.next_in[0] == 0x1F, state.pointee.next_in[1] == 0x8B else {
                    throw truncated(alreadyRead + done)
                }
                let (next, available) = (state.pointee.next_in, state.pointee.avail_in)
                isal_inflate_reset(state)
                state.pointee.crc_flag = UInt32(ISAL_GZIP)
                state.pointee.next_in = next
                state.pointee.avail_in = available
            } else if state.pointee.avail_in == 0 && endOfFile {
                throw truncated(alreadyRead + done)
            }
        }
    }

    private func finishMember(alreadyRead: Int) throws {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while state.pointee.block_state != ISAL_BLOCK_FINISH {
            refill()
            let status = scratch.withUnsafeMutableBufferPointer { buffer -> Int32 in
                state.pointee.next_out = buffer.baseAddress
                state.pointee.avail_out = UInt32(buffer.count)
                return isal_inflate(state)
            }
            if status < 0 {
                let reason = status == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch" : "invalid compressed data (ISA-L status \(status))"
                throw NIfTIError(path: reportPath, kind: .corruptCompression, reason: "corrupt gzip stream: \(reason)")
            }
            if state.pointee.block_state != ISAL_BLOCK_FINISH && state.pointee.avail_in == 0 && endOfFile {
                throw NIfTIError(path: reportPath, kind: .truncated, reason: "data truncated: the gzip stream ends without its trailer")
            }
        }
    }

    private func truncated(_ got: Int) -> NIfTIError {
        NIfTIError(path: reportPath, kind: .truncated, reason: "data truncated: \(formatBytes(got)) of \(formatBytes(expectedBytes))")
    }
}
