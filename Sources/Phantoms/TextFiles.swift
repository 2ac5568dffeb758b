import AtomicFiles
import Foundation

/// Writes UTF-8 text atomically (temporary file, then rename).
func writeText(_ text: String, to path: String) throws {
    try AtomicFile.write(text, to: path)
}
