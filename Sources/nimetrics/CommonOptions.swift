import ArgumentParser
import FileSystem
import Foundation

/// Options every per-visit command takes.
struct CommonOptions: ParsableArguments {
    @Option(help: "Output folder (created if needed).")
    var out: String

    @Option(help: "Output file prefix (default: the input's BIDS entities, e.g. sub-01_ses-m03).")
    var prefix: String?

    @Option(parsing: .unconditional, help: "Threads (default: all cores). Results do not depend on it.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        try OptionCheck.atLeast(1, threads, "--threads")
        if let prefix, prefix.isEmpty || prefix.contains("/") {
            throw ValidationError("--prefix must be a file name prefix without '/'")
        }
    }

    /// Throws at once when `--out` cannot be a folder (a file of that name, a path too long,
    /// a parent that cannot be written), so the user learns it before the processing.
    func checkOutputFolder() throws {
        try FileSystem.checkFolderCanBeCreated(out)
    }
}
