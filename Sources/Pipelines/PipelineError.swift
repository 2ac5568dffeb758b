/// A per-visit input problem: the file (or option) and what is wrong with it.
public struct PipelineError: Error, CustomStringConvertible, Equatable, Sendable {
    public let source: String
    public let reason: String
    public init(_ source: String, _ reason: String) {
        self.source = source
        self.reason = reason
    }
    public var description: String { "\(source): \(reason)" }
}
