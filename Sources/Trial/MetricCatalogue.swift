import AtomicFiles
import Foundation
import Pipelines
import Tabular

/// The distinct metric keys the group stage meets (modality, atlas, region, metric, run),
/// each stored once: a visit then holds an id into this table and a value per metric, 12
/// bytes a row instead of five strings (a trial of 10 000 visits of ~400 rows each would
/// otherwise hold four million rows of strings).
///
/// Ids are handed out in order of first appearance; nothing written depends on them, only
/// on the keys they stand for. Filled while the visits are read (one thread), read after.
final class MetricCatalogue {
    /// The key of an id, as a row whose value is 0.
    private(set) var keys: [MetricRow] = []
    private var ids: [Identity: UInt32] = [:]

    private struct Identity: Hashable {
        var modality: String, region: String, metric: String, run: String?, atlas: String?
    }

    init() {}

    /// The id of `row`'s key, added when new.
    func id(_ row: MetricRow) -> UInt32 {
        let identity = Identity(modality: row.modality, region: row.region, metric: row.metric, run: row.run, atlas: row.atlas)
        if let id = ids[identity] { return id }
        let id = UInt32(keys.count)
        ids[identity] = id
        keys.append(MetricRow(modality: row.modality, region: row.region, metric: row.metric, value: 0, run: row.run, atlas: row.atlas))
        return id
    }

    /// The row of key `id` with `value`.
    func row(_ id: UInt32, value: Double) -> MetricRow {
        var row = keys[Int(id)]
        row.value = value
        return row
    }

    /// Per key, the cells of metrics_long.tsv before the value (`modality\tregion\tmetric\t`)
    /// and after it (`\trun\tatlas\tkind`), and of change_from_baseline.tsv after the
    /// percent change (`\tatlas\tkind`): built once, so writing a row joins four strings.
    func textPieces() -> (before: [String], after: [String], changeAfter: [String]) {
        var before: [String] = [], after: [String] = [], changeAfter: [String] = []
        for key in keys {
            let kind = MetricKind.of(metric: key.metric).rawValue
            before.append("\(key.modality)\t\(key.region)\t\(key.metric)\t")
            after.append("\t\(key.run ?? "n/a")\t\(key.atlas ?? "n/a")\t\(kind)")
            changeAfter.append("\t\(key.atlas ?? "n/a")\t\(kind)")
        }
        return (before, after, changeAfter)
    }
}

/// A text table written line by line into a file through a buffer of about 1 MiB, so a
/// table of millions of rows never lies whole in memory. The lines are those
/// ``TSVTable/text`` would give for the same cells.
final class TSVStream {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private var buffer = ""
    private static let flushSize = 1 << 20

    private init(path: String, shownAs shown: String) throws {
        guard let file = fopen(path, "w") else {
            throw TrialError.io(path: shown, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        self.file = file
        self.path = shown
        buffer.reserveCapacity(Self.flushSize + 4096)
    }

    /// Writes the table at `path` atomically: the header, then what `rows` appends.
    static func write(to path: String, columns: [String], _ rows: (TSVStream) throws -> Void) throws {
        try AtomicFile.write(to: path) { temporary in
            let stream = try TSVStream(path: temporary, shownAs: path)
            var closed = false
            defer { if !closed { fclose(stream.file) } }
            stream.line(columns.joined(separator: "\t"))
            try rows(stream)
            try stream.flush()
            closed = true
            guard fclose(stream.file) == 0 else {
                throw TrialError.io(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Appends one line (its cells joined by tabs, without the newline).
    func line(_ text: String) {
        buffer += text
        buffer += "\n"
    }

    /// Writes the buffer out when it is full; call between rows.
    func flushIfFull() throws {
        if buffer.utf8.count >= Self.flushSize { try flush() }
    }

    private func flush() throws {
        let written = buffer.withUTF8 { bytes in bytes.isEmpty ? 0 : fwrite(bytes.baseAddress, 1, bytes.count, file) }
        guard written == buffer.utf8.count else {
            throw TrialError.io(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
