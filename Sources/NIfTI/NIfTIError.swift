/// Why a NIfTI file could not be read or written.
///
/// Every case carries the path, and ``description`` is the one-line message the command
/// line prints: `sub-02_ses-m03_dwi.nii.gz: data truncated: 1.2 MB of 3.6 MB`.
public struct NIfTIError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kinds of failure, so callers and tests can tell them apart without parsing text.
    public enum Kind: String, Sendable {
        case fileNotFound
        case unreadable
        case notNIfTI
        case invalidHeader
        case unsupportedDataType
        case truncated
        case corruptCompression
        case tooLarge
        case writeFailed
        case invalidArgument
    }

    public let path: String
    public let kind: Kind
    public let reason: String

    public init(path: String, kind: Kind, reason: String) {
        self.path = path
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// Formats a byte count as analysts read it (`1.2 MB`).
func formatBytes(_ count: Int) -> String {
    let value = Double(count)
    if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
    if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
    if value >= 1e3 { return String(format: "%.1f kB", value / 1e3) }
    return "\(count) bytes"
}

import Foundation
