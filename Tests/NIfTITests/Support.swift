import Foundation
@testable import NIfTI

/// The repository's Fixtures folder.
let fixturesFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// A fresh temporary folder, removed when the process ends is not guaranteed: tests remove it.
func makeTemporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "nimetrics-tests-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Files in a folder (for checking that nothing was left behind).
func listing(_ folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
}
