import Foundation

/// BIDS labels and the paths built from them.
public enum BIDSLabel {
    /// Strips an optional `sub-` / `ses-` prefix and checks the rest is a BIDS label
    /// (ASCII letters and digits only), so no path built from it can leave its folder.
    /// - Parameters:
    ///   - text: `01`, `sub-01`, `m03`, `ses-m03`.
    ///   - kind: `participant` or `session`.
    /// - Throws: ``TrialError/invalidLabel(kind:label:)``.
    public static func normalized(_ text: String, kind: String) throws -> String {
        let prefix = kind == "participant" ? "sub-" : "ses-"
        let label = text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
        guard isValid(label) else { throw TrialError.invalidLabel(kind: kind, label: text) }
        return label
    }

    /// True for a non-empty string of ASCII letters and digits.
    public static func isValid(_ label: String) -> Bool {
        !label.isEmpty && label.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }

    /// Orders labels so that digit runs compare by value (`2` < `10`, `m3` < `m12`); ties
    /// fall back to plain string order, so the order is total and does not depend on locale.
    public static func naturalLess(_ a: String, _ b: String) -> Bool {
        let ka = naturalKey(a), kb = naturalKey(b)
        for (x, y) in zip(ka, kb) where x != y {
            switch (x, y) {
            case (.number(let p), .number(let q)):
                return p.count != q.count ? p.count < q.count : p < q
            case (.number, .text): return true
            case (.text, .number): return false
            case (.text(let p), .text(let q)): return p < q
            }
        }
        if ka.count != kb.count { return ka.count < kb.count }
        return a < b
    }

    private enum Piece: Equatable { case number(String), text(String) }

    private static func naturalKey(_ s: String) -> [Piece] {
        var pieces: [Piece] = []
        var current = ""
        var inDigits = false
        for ch in s {
            let digit = ch.isASCII && ch.isNumber
            if !current.isEmpty && digit != inDigits {
                pieces.append(inDigits ? .number(stripZeros(current)) : .text(current))
                current = ""
            }
            inDigits = digit
            current.append(ch)
        }
        if !current.isEmpty { pieces.append(inDigits ? .number(stripZeros(current)) : .text(current)) }
        return pieces
    }

    private static func stripZeros(_ digits: String) -> String {
        let trimmed = digits.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }
}

/// Path helpers that refuse to leave a root folder.
enum SafePath {
    /// `root/relative`, checked (after resolving `.` and `..`) to stay inside `root`.
    static func join(_ root: String, _ relative: String) throws -> String {
        let joined = URL(fileURLWithPath: root).appendingPathComponent(relative).standardizedFileURL.path
        guard isInside(joined, root: root) else { throw TrialError.outputEscapes(path: joined, root: root) }
        return joined
    }

    /// True when `path` (standardized) is `root` or lies below it.
    static func isInside(_ path: String, root: String) -> Bool {
        let base = URL(fileURLWithPath: root).standardizedFileURL.path
        let candidate = URL(fileURLWithPath: path).standardizedFileURL.path
        return candidate == base || candidate.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}
