import AtomicFiles
import FileSystem
import Foundation

/// A problem in a text table, naming the file and (where it applies) the line.
public struct TableError: Error, CustomStringConvertible, Equatable, Sendable {
    public let source: String
    public let reason: String
    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }
    public var description: String { "\(source): \(reason)" }
}

/// A tab-separated table with a header row, as BIDS and fMRIPrep write them.
///
/// Missing values are `n/a`; numeric reads turn them (and empty cells) into NaN.
public struct TSVTable: Equatable, Sendable {
    public var columns: [String]
    public var rows: [[String]]
    /// Where the table came from, for error messages.
    public var source: String

    public init(columns: [String], rows: [[String]] = [], source: String = "table") {
        self.columns = columns
        self.rows = rows
        self.source = source
    }

    /// Parses TSV text. Every row must have as many cells as the header.
    ///
    /// Lines end with LF or CRLF; cells are split at tabs and trimmed of spaces and other
    /// Unicode space separators (`CharacterSet.whitespaces`); trailing blank lines are ignored.
    /// The text is split on its UTF-8 bytes, not on Characters: Swift reads CR LF as one
    /// Character, so a split on "\n" would leave a Windows-edited file one long line.
    /// - Throws: ``TableError`` for an empty table, duplicate column names or ragged rows.
    public init(text: String, source: String) throws {
        self.source = source
        var text = text
        let parsed: [[String]] = text.withUTF8 { bytes in
            var lines: [[String]] = []
            var lineStart = 0
            while lineStart <= bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
                var contentEnd = lineEnd
                if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
                var cells: [String] = []
                var cellStart = lineStart
                for i in lineStart...contentEnd where i == contentEnd || bytes[i] == 0x09 {
                    cells.append(Self.trimmedCell(bytes, cellStart..<i))
                    cellStart = i + 1
                }
                lines.append(cells)
                if lineEnd == bytes.count { break }
                lineStart = lineEnd + 1
            }
            return lines
        }
        var lines = parsed[...]
        while let last = lines.last, last.allSatisfy(\.isEmpty) { lines.removeLast() }
        guard let header = lines.first, !header.allSatisfy(\.isEmpty) else {
            throw TableError(source: source, reason: "empty table: no header row")
        }
        columns = header
        var seen = Set<String>()
        for name in columns where !seen.insert(name).inserted {
            throw TableError(source: source, reason: "duplicate column '\(name)'")
        }
        rows = []
        rows.reserveCapacity(lines.count - 1)
        for (number, cells) in lines.dropFirst().enumerated() {
            guard cells.count == columns.count else {
                throw TableError(source: source, reason: "line \(number + 2) has \(cells.count) fields, the header has \(columns.count)")
            }
            rows.append(cells)
        }
    }

    /// The cell in `range` of `bytes`, trimmed of ASCII spaces at once and of other space
    /// separators (as `CharacterSet.whitespaces`) through Foundation, which only a cell with a
    /// non-ASCII first or last byte needs.
    private static func trimmedCell(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        var start = range.lowerBound, end = range.upperBound
        while start < end && bytes[start] == 0x20 { start += 1 }
        while end > start && bytes[end - 1] == 0x20 { end -= 1 }
        let cell = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        if start < end && (bytes[start] >= 0x80 || bytes[end - 1] >= 0x80) {
            return cell.trimmingCharacters(in: .whitespaces)
        }
        return cell
    }

    /// Reads and parses a TSV file.
    /// - Throws: ``TableError`` naming the file: missing, not a regular file (a FIFO is
    ///   refused, not waited on), not UTF-8, or malformed.
    public static func read(_ path: String) throws -> TSVTable {
        let text: String
        do { text = try FileSystem.readText(path) } catch { throw TableError(source: path, reason: error.reason) }
        return try TSVTable(text: text, source: path)
    }

    /// The index of a column, if present.
    public func index(of column: String) -> Int? { columns.firstIndex(of: column) }

    /// The cells of a column.
    /// - Throws: ``TableError`` if there is no such column.
    public func column(_ name: String) throws -> [String] {
        guard let index = index(of: name) else {
            throw TableError(source: source, reason: "missing column '\(name)'")
        }
        return rows.map { $0[index] }
    }

    /// A numeric column: `n/a` and empty cells become NaN; anything else that is not a
    /// number is an error naming the line.
    public func numericColumn(_ name: String) throws -> [Double] {
        let cells = try column(name)
        return try cells.enumerated().map { line, cell in
            if cell == "n/a" || cell.isEmpty { return .nan }
            guard let value = Double(cell) else {
                throw TableError(source: source, reason: "line \(line + 2), column '\(name)': '\(cell)' is not a number")
            }
            return value
        }
    }

    /// Appends a row; it must have one cell per column.
    public mutating func append(_ row: [String]) {
        precondition(row.count == columns.count, "a row needs one cell per column")
        rows.append(row)
    }

    /// The table as TSV text, ending with a newline.
    public var text: String {
        var out = columns.joined(separator: "\t") + "\n"
        for row in rows { out += row.joined(separator: "\t") + "\n" }
        return out
    }

    /// Writes the table atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(text, to: path)
    }
}

/// A cell for a number: shortest round-trip text, `n/a` for NaN, infinities and nil.
public func tsvCell(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "n/a" }
    return formatJSONNumber(value)
}

/// A cell for a Float: its own shortest text (so 0.1 as Float prints 0.1, not 0.10000000149).
public func tsvCell(_ value: Float?) -> String {
    guard let value, value.isFinite else { return "n/a" }
    if value == value.rounded(), abs(value) < 1e7 { return String(Int64(value)) }
    return "\(value)"
}
