import Foundation

/// Runs the built `nimetrics` executable and captures its output.
struct ToolRun {
    /// The exit status, or the signal number when `signaled`.
    let status: Int32
    let stdout: String
    let stderr: String
    /// Whether the process was ended by a signal (a trap, an abort, a kill) rather than exiting.
    var signaled = false
}

/// The `nimetrics` binary next to the test bundle.
let toolPath: String = {
    let bundles = [Bundle.main.bundleURL, Bundle(for: BundleMarker.self).bundleURL]
    for folder in bundles.flatMap({ [$0, $0.deletingLastPathComponent()] }) {
        let path = folder.appendingPathComponent("nimetrics").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return "nimetrics"
}()

final class BundleMarker {}

/// Runs the tool; with `timeLimit` it is killed (SIGKILL, status 137) after that many
/// seconds, so a test of input that once blocked cannot hang the suite, and with
/// `addressSpaceLimitKiB` it runs under that `ulimit -v`, so an allocation larger than the
/// limit fails.
@discardableResult
func runTool(_ arguments: [String], in directory: String? = nil,
             timeLimit: Int? = nil, addressSpaceLimitKiB: Int? = nil) throws -> ToolRun {
    let process = Process()
    if timeLimit != nil || addressSpaceLimitKiB != nil {
        let limit = addressSpaceLimitKiB.map { "ulimit -v \($0) && " } ?? ""
        let timeout = timeLimit.map { "timeout -s KILL \($0) " } ?? ""
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", limit + "exec " + timeout + "\"$0\" \"$@\"", toolPath] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: toolPath)
        process.arguments = arguments
    }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes before waiting, so a large output cannot block the child; stderr on
    // another thread, so a child that fills it while stdout is still open cannot block either.
    let errBox = DataBox()
    let errReader = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); errBox.done.signal() }
    errReader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    errBox.done.wait()
    let errData = errBox.data
    process.waitUntilExit()
    return ToolRun(status: process.terminationStatus,
                   stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self),
                   signaled: process.terminationReason == .uncaughtSignal)
}

let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func makeTemporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "nimetrics-cli-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

final class DataBox: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

/// Every regular file under `folder`, as paths relative to it, sorted.
func filesBelow(_ folder: String) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
    var files = [String]()
    while let name = walker.nextObject() as? String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue {
            files.append(name)
        }
    }
    return files.sorted()
}

/// Makes a small demo trial (`nimetrics demo`) once per test process and returns its folder.
///
/// Several suites use the same dataset; it is never modified, only read.
func sharedDemoDataset(participants: Int = 2) throws -> String {
    try demoDatasetLock.withLock {
        if let folder = demoDatasets[participants] { return folder }
        let folder = makeTemporaryFolder() + "/demo"
        let run = try runTool(["demo", "--out", folder, "--participants", String(participants)])
        guard run.status == 0, !run.signaled else {
            throw DemoFailure(message: "nimetrics demo failed (\(run.status)): \(run.stderr)")
        }
        demoDatasets[participants] = folder
        return folder
    }
}

struct DemoFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

private let demoDatasetLock = NSLock()
nonisolated(unsafe) private var demoDatasets: [Int: String] = [:]

/// The bytes of a file, or nil when it cannot be read.
func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// A fresh `nimetrics demo --layout derivatives` trial in `top/bids` (the caller removes `top`).
func makeDerivativesDemo(participants: Int) throws -> (top: String, data: String) {
    let top = makeTemporaryFolder()
    let made = try runTool(["demo", "--out", top + "/bids", "--layout", "derivatives", "--participants", String(participants)])
    guard made.status == 0, !made.signaled else { throw DemoFailure(message: "nimetrics demo failed (\(made.status)): \(made.stderr)") }
    return (top, top + "/bids")
}
