import NIfTI

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

/// Runs `body`, turning a library error (which knows no file names) into a pipeline error
/// naming the file it concerns; errors that already name their file pass through.
func wrap<T>(_ source: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as PipelineError {
        throw error
    } catch let error as NIfTIError {
        throw error
    } catch {
        throw PipelineError(source, "\(error)")
    }
}
