import FileSystem
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

/// The text of an input file (a gradient table, a sidecar).
/// - Throws: ``PipelineError`` naming the file: missing, not a regular file (a FIFO is
///   refused, not waited on), or not UTF-8.
func readInputText(_ path: String) throws -> String {
    do { return try FileSystem.readText(path) } catch { throw PipelineError(path, error.reason) }
}

/// The text of an optional input file (a sidecar), or nil when there is none.
/// - Throws: ``PipelineError`` when something is there but is not a readable regular file.
func readOptionalInputText(_ path: String) throws -> String? {
    guard FileSystem.kind(of: path) != nil else { return nil }
    return try readInputText(path)
}

/// Creates an output folder (and those above it).
/// - Throws: ``PipelineError`` naming the folder and the reason in words ("a regular file of
///   that name exists", "Permission denied"), never Foundation's error text.
func createOutputFolder(_ path: String) throws {
    do { try FileSystem.createFolder(path) } catch { throw PipelineError(error.path, error.reason) }
}
