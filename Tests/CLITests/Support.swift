import Foundation

/// Runs the built `nimetrics` executable and captures its output.
struct ToolRun {
    let status: Int32
    let stdout: String
    let stderr: String
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

@discardableResult
func runTool(_ arguments: [String], in directory: String? = nil) throws -> ToolRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: toolPath)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes before waiting, so a large output cannot block the child.
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ToolRun(status: process.terminationStatus,
                   stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
}

let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func makeTemporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "nimetrics-cli-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
