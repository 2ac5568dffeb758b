import FileSystem
import Foundation
import Tabular

/// A BIDS filter file in the format fMRIPrep and XCP-D take (`--bids-filter-file`): a JSON
/// object whose keys name a kind of file (`bold`, `dwi`) and whose values constrain its
/// entities, e.g. `{"bold": {"task": "rest", "run": [1, 2]}, "dwi": {"acquisition": null}}`.
///
/// A constraint is a value the entity must equal (run numbers compare as numbers, so `1`
/// matches `run-01`), a list of such values (any of them), or `null` (the entity must be
/// absent). Entities are named as pybids names them (`subject`, `session`, `task`,
/// `acquisition`, `run`, `space`, `desc`, ...), or by their short keys (`acq`, `desc`).
public struct BIDSFilter: Sendable, Equatable {
    /// Per kind of file, per entity key (short form), the allowed values (nil: must be absent).
    var queries: [String: [String: [String]?]] = [:]

    public init() {}

    /// The kinds of file a filter may constrain here.
    static let kinds: Set<String> = ["bold", "dwi"]

    /// pybids' long entity names and the keys in file names.
    static let entityKeys: [String: String] = [
        "subject": "sub", "session": "ses", "task": "task", "acquisition": "acq", "ceagent": "ce",
        "reconstruction": "rec", "direction": "dir", "run": "run", "echo": "echo", "part": "part",
        "space": "space", "cohort": "cohort", "resolution": "res", "density": "den", "desc": "desc",
        "description": "desc", "suffix": "suffix", "extension": "extension", "datatype": "datatype",
    ]

    /// Reads a filter file.
    /// - Throws: ``TrialError/badTable(file:reason:)`` naming the file and what is wrong.
    public static func read(_ path: String) throws -> BIDSFilter {
        let data: [UInt8]
        do { data = try FileSystem.readFile(path) } catch {
            throw TrialError.io(path: path, reason: error.code == ENOENT ? "no such BIDS filter file" : error.reason)
        }
        let json: JSONValue
        do { json = try JSONValue.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw TrialError.badTable(file: path, reason: "not valid JSON")
        }
        guard case .object(let kinds) = json else { throw TrialError.badTable(file: path, reason: "expected a JSON object") }
        var filter = BIDSFilter()
        for (kind, query) in kinds {
            guard case .object(let entities) = query else {
                throw TrialError.badTable(file: path, reason: "'\(kind)': expected an object of entities")
            }
            // fMRIPrep's filter files also constrain anatomical and field-map inputs, which
            // nimetrics does not read: those queries are accepted and have no effect.
            guard Self.kinds.contains(kind) || ["t1w", "t2w", "flair", "fmap", "sbref", "roi"].contains(kind) else {
                throw TrialError.badTable(file: path, reason: "unknown kind of file '\(kind)' (nimetrics reads 'bold' and 'dwi')")
            }
            var constraints: [String: [String]?] = [:]
            for (name, value) in entities {
                guard let key = entityKeys[name] ?? (entityKeys.values.contains(name) ? name : nil) else {
                    throw TrialError.badTable(file: path, reason: "'\(kind)': unknown entity '\(name)'")
                }
                constraints[key] = try values(value, file: path, at: "\(kind).\(name)")
            }
            filter.queries[kind] = constraints
        }
        return filter
    }

    static func values(_ value: JSONValue, file: String, at place: String) throws -> [String]? {
        switch value {
        case .null: return nil
        case .string(let text): return [text]
        case .array(let items): return try items.flatMap { try values($0, file: file, at: place) ?? [] }
        default:
            if let number = value.doubleValue, number == number.rounded() { return [String(Int(number))] }
            throw TrialError.badTable(file: file, reason: "'\(place)': expected a string, a whole number, a list or null")
        }
    }

    /// True when a file of `kind` in a folder of `datatype` passes the filter.
    func accepts(_ name: BIDSName, kind: String, datatype: String) -> Bool {
        guard let constraints = queries[kind] else { return true }
        for (key, allowed) in constraints {
            let actual: String? = switch key {
            case "suffix": name.suffix
            case "extension": name.fileExtension
            case "datatype": datatype
            default: name.entity(key)
            }
            guard let allowed else {
                if actual != nil { return false }
                continue
            }
            guard let actual else { return false }
            let matches = allowed.contains { wanted in
                if key == "run" || key == "echo", let a = Int(actual), let b = Int(wanted) { return a == b }
                if key == "extension" { return actual.trimmingPrefix(".") == wanted.trimmingPrefix(".") }
                return actual == wanted
            }
            if !matches { return false }
        }
        return true
    }
}

private extension String {
    func trimmingPrefix(_ prefix: String) -> Substring { hasPrefix(prefix) ? dropFirst(prefix.count) : Substring(self) }
}
