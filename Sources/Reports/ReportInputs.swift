import FileSystem
import Foundation
import Tabular

/// A report could not be read from the outputs or written: the file and the reason, in one line.
public typealias ReportError = FileSystemError

extension JSONValue {
    var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    var arrayValue: [JSONValue] { if case .array(let a) = self { a } else { [] } }
    var objectMembers: [(String, JSONValue)] { if case .object(let m) = self { m } else { [] } }

    /// Short text for a table cell.
    var displayText: String {
        switch self {
        case .null: "n/a"
        case .bool(let b): b ? "yes" : "no"
        case .int(let i): String(i)
        case .number(let d): tickLabel(d)
        case .string(let s): s
        case .array(let a): a.map(\.displayText).joined(separator: ", ")
        case .object: rendered(pretty: false)
        }
    }
}

/// Reading the pipelines' outputs for a report.
enum ReportInputs {
    static func files(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    static func json(_ path: String) throws -> JSONValue {
        do { return try JSONValue.parse(try FileSystem.readText(path)) } catch {
            throw ReportError(path, "cannot read the JSON: \(error)")
        }
    }

    static func table(_ path: String) -> TSVTable? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? TSVTable.read(path)
    }

    /// A path recorded in a sidecar (as the pipeline was given it), if it can be found now:
    /// as written (absolute, or relative to the working folder).
    static func recordedFile(_ value: JSONValue?) -> String? {
        guard let path = value?.stringValue, !path.isEmpty else { return nil }
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static func number(_ text: String) -> Double? {
        guard text != "n/a", let value = Double(text), value.isFinite else { return nil }
        return value
    }
}
