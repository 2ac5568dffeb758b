import Foundation

/// A JSON value whose objects keep their key order, so sidecars and `--json` output are
/// byte-for-byte reproducible and read in the order the documentation lists the keys.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.rendered() == rhs.rendered()
    }

    /// A number, or `null` when it is not finite (JSON has no NaN).
    public static func finite(_ value: Double?) -> JSONValue {
        guard let value, value.isFinite else { return .null }
        return .number(value)
    }

    /// The value as JSON text: two-space indentation when `pretty`, one line otherwise.
    public func rendered(pretty: Bool = true) -> String {
        var out = ""
        write(into: &out, indent: pretty ? 0 : nil)
        return out
    }

    private func write(into out: inout String, indent: Int?) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .number(let d): out += formatJSONNumber(d)
        case .string(let s): out += quoteJSON(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            // Arrays of scalars stay on one line (affines, shapes, b-values).
            let scalar = items.allSatisfy { if case .array = $0 { return false }; if case .object = $0 { return false }; return true }
            if indent == nil || scalar {
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += indent == nil ? "," : ", " }
                    item.write(into: &out, indent: nil)
                }
                out += "]"
            } else {
                let level = indent!
                out += "[\n"
                for (i, item) in items.enumerated() {
                    out += String(repeating: "  ", count: level + 1)
                    item.write(into: &out, indent: level + 1)
                    out += i < items.count - 1 ? ",\n" : "\n"
                }
                out += String(repeating: "  ", count: level) + "]"
            }
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            guard let level = indent else {
                out += "{"
                for (i, (key, value)) in members.enumerated() {
                    if i > 0 { out += "," }
                    out += quoteJSON(key) + ":"
                    value.write(into: &out, indent: nil)
                }
                out += "}"
                return
            }
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += String(repeating: "  ", count: level + 1) + quoteJSON(key) + ": "
                value.write(into: &out, indent: level + 1)
                out += i < members.count - 1 ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: level) + "}"
        }
    }

    /// Looks a key up in an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// Parses JSON text with Foundation's `JSONSerialization`.
    ///
    /// Object keys come back sorted, not in the order written: `JSONSerialization` returns
    /// dictionaries, which keep no order. (Rendering keeps the order a `JSONValue` was built
    /// with; parsing cannot.) Nesting deeper than Foundation's limit and numbers out of Double
    /// range are reported as invalid JSON.
    public static func parse(_ text: String) throws -> JSONValue {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        return JSONValue(foundation: object)
    }

    private init(foundation object: Any) {
        switch object {
        case is NSNull: self = .null
        case let number as NSNumber:
            switch String(cString: number.objCType) {
            case "c" where "\(type(of: number))".contains("Boolean"): self = .bool(number.boolValue)
            case "f", "d": self = .number(number.doubleValue)
            default: self = .int(number.intValue)
            }
        case let string as String: self = .string(string)
        case let array as [Any]: self = .array(array.map(JSONValue.init(foundation:)))
        case let dictionary as [String: Any]:
            self = .object(dictionary.keys.sorted().map { ($0, JSONValue(foundation: dictionary[$0]!)) })
        default: self = .null
        }
    }

    /// The value as a Double when it is a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }
}

/// Shortest text that reads back as the same Double (Swift's own algorithm), without a
/// trailing ".0" on integral values.
public func formatJSONNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

private func quoteJSON(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}
