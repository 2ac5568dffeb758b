import Foundation

/// A file path that can name the visit it belongs to, for per-visit inputs of a batch:
/// `masks/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz`.
///
/// `{subject}` is replaced by the participant label and `{session}` by the session label,
/// both without their `sub-`/`ses-` prefix (BIDS labels, so they are safe in a path). A
/// pattern without placeholders names one file for every visit. Relative patterns are taken
/// from the current folder, as any other path on the command line.
public struct PathPattern: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The placeholders a pattern may hold.
    public static let placeholders = ["{subject}", "{session}"]

    public let template: String

    /// - Throws: ``TrialError/badPattern(pattern:reason:)`` for an empty pattern or a
    ///   placeholder other than `{subject}` and `{session}`.
    public init(_ template: String) throws {
        guard !template.isEmpty else { throw TrialError.badPattern(pattern: template, reason: "it is empty") }
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw TrialError.badPattern(pattern: template, reason: "a '{' is not closed")
            }
            let name = String(rest[open...close])
            guard Self.placeholders.contains(name) else {
                throw TrialError.badPattern(pattern: template, reason: "unknown placeholder \(name) (use {subject} or {session})")
            }
            rest = rest[rest.index(after: close)...]
        }
        self.template = template
    }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(template)
    }

    /// True when the pattern names the same file for every visit.
    public var isFixed: Bool { !template.contains("{") }

    /// The path for one visit.
    /// - Throws: ``TrialError/badPattern(pattern:reason:)`` when the pattern names a session
    ///   and the visit has none.
    public func path(participant: String, session: String?) throws -> String {
        var path = template.replacingOccurrences(of: "{subject}", with: participant)
        if path.contains("{session}") {
            guard let session else {
                throw TrialError.badPattern(pattern: template, reason: "it names {session}, and sub-\(participant) has no sessions")
            }
            path = path.replacingOccurrences(of: "{session}", with: session)
        }
        return path
    }

    public var description: String { template }
}
