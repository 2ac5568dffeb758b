import ArgumentParser
import Foundation

/// Prints a failure as one line on stderr (`nimetrics: <file>: <problem>`).
///
/// Library errors already name their file and problem in `description`; nothing is added
/// but the tool's name, so the user sees exactly one clear line.
func printFailure(_ error: any Error) {
    var line = "nimetrics: \(error)"
    if let newline = line.firstIndex(of: "\n") { line = String(line[..<newline]) }
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs a command body, turning any error into a one-line message and exit status 1.
func runReportingFailure(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printFailure(error)
        throw ExitCode(1)
    }
}

/// Prints a warning as one line on stderr.
func printWarning(_ text: String) {
    FileHandle.standardError.write(Data("nimetrics: warning: \(text)\n".utf8))
}
