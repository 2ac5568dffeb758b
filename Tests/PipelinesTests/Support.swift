import Foundation
import NIfTI

func makeTemporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "nimetrics-pipelines-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Reads a TSV into rows of cells (header first).
func readCells(_ path: String) -> [[String]] {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
}
