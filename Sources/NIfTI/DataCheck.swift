/// Whether the voxel data a header promises is all in its file.
public enum DataCompleteness: Equatable, Sendable {
    /// Every byte is there (and, for gzip, every member inflated with a matching CRC).
    case complete
    /// Missing or damaged: the reason, in the words of the reader's error
    /// ("data truncated: 1.2 MB of 3.6 MB", "corrupt gzip stream: checksum mismatch").
    case incomplete(String)
    /// A gzip file that was not inflated: its size does not say how much data it holds.
    case unchecked

    /// `true`, `false`, or nil when unchecked.
    public var isComplete: Bool? {
        switch self {
        case .complete: true
        case .incomplete: false
        case .unchecked: nil
        }
    }
}

extension NIfTIFile {
    /// Says whether the data `header` promises is all in the file, without keeping it.
    ///
    /// An uncompressed file is judged from its size: vox_offset plus the data must fit. A
    /// gzip file is refused at once when its size could not hold the data even at deflate's
    /// best ratio; otherwise it is `unchecked` unless `inflate` is true, when the whole stream
    /// is inflated (ISA-L, a 1 MiB buffer reused) and each member's CRC-32 and length are
    /// checked against its trailer, which is what `nimetrics info --check` does before a batch.
    ///
    /// - Parameters:
    ///   - path: the file `header` was read from (named in the reasons).
    ///   - header: its header, from ``readHeader(_:)``.
    ///   - inflate: for gzip files, inflate and verify everything.
    public static func checkData(_ path: String, header: NIfTIHeader, inflate: Bool) -> DataCompleteness {
        let byteCount = header.voxelCount * header.datatype.size
        let dataPath = header.dataPath
        do {
            guard isGzip(dataPath) else {
                try checkUncompressedSize(path: dataPath, offset: header.dataOffset, byteCount: byteCount, reportPath: path)
                return .complete
            }
            try checkCompressedSize(path: dataPath, offset: header.dataOffset, byteCount: byteCount, reportPath: path)
            guard inflate else { return .unchecked }
            let stream = try InflateStream(path: dataPath, offset: header.dataOffset, reportPath: path, expectedBytes: byteCount)
            let chunk = ByteBuffer(count: 1 << 20)
            var read = 0
            while read < byteCount {
                let count = min(chunk.count, byteCount - read)
                // The last read also inflates to the end of the member, checking its CRC.
                try stream.read(into: chunk.pointer, count: count, alreadyRead: read)
                read += count
            }
            return .complete
        } catch let error as NIfTIError {
            return .incomplete(error.reason)
        } catch {
            return .incomplete("\(error)")
        }
    }
}
