#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileSystem
import Foundation

/// Errors raised while writing an output atomically: the file and the reason.
public typealias AtomicWriteError = FileSystemError

/// Writes files so that a reader (or a restarted run) only ever sees a complete file or none.
///
/// The content goes to a hidden temporary file in the target's own folder (so the final
/// `rename(2)` stays on one file system and is atomic) and is then renamed over the final
/// name. If anything fails, the temporary file is removed.
///
/// The rename alone makes a write atomic for a process that is killed (SIGKILL, a crash):
/// the final name holds the old file or the new one, never a part. Surviving a power cut as
/// well needs the data flushed before the rename (`durable: true`); that costs an `fsync`
/// per file (729 of them for the 20-visit demo batch, which then waited on the disk), so it
/// is kept for the records that say a piece of work is complete.
public enum AtomicFile {
    /// Prefix of every temporary file this module creates; cleanup code and tests look for it.
    public static let temporaryPrefix = ".nimetrics-tmp-"

    /// A fresh temporary path beside `path`, keeping its extension (niftilib chooses the
    /// format and compression from the file name, so `.nii.gz` must stay at the end).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let token = UInt64.random(in: 0...UInt64.max)
        let hex = String(token, radix: 16)
        return folder + "/" + temporaryPrefix + "\(getpid())-" + hex + "-" + name
    }

    /// Runs `body` with a temporary path, then moves the file it wrote to `path`.
    ///
    /// - Parameters:
    ///   - path: the final destination.
    ///   - body: writes the complete file at the path it is given.
    /// - Throws: whatever `body` throws, or ``AtomicWriteError`` if the rename fails.
    ///
    /// The temporary file is created (empty) before `body` runs, and listed among this
    /// process's temporaries until it is renamed or removed, so an interrupted process
    /// removes it (``removeTemporariesOnInterrupt()``).
    public static func write(to path: String, durable: Bool = false, _ body: (String) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        close(try TemporaryFiles.create(temporary, finalPath: path))
        try finish(temporary, path, durable: durable) { try body(temporary) }
    }

    /// Runs `body`, then renames `temporary` to `path`; removes `temporary` when anything fails.
    private static func finish(_ temporary: String, _ path: String, durable: Bool, _ body: () throws -> Void) throws {
        defer { TemporaryFiles.forget(temporary) }
        do {
            try body()
            if durable { try syncFile(at: temporary) }
            guard rename(temporary, path) == 0 else {
                throw AtomicWriteError(path: path, reason: "cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// A temporary file being written, that bytes are appended to in order.
    public struct Sink: ~Copyable {
        fileprivate let descriptor: Int32
        fileprivate let path: String

        /// Appends `bytes` to the file.
        /// - Throws: ``AtomicWriteError`` naming the final path.
        public func append(_ bytes: UnsafeRawBufferPointer) throws {
            guard let base = bytes.baseAddress else { return }
            var written = 0
            while written < bytes.count {
                let result = Glibc.write(descriptor, base + written, bytes.count - written)
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else {
                    throw AtomicWriteError(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
                }
                written += result
            }
        }
    }

    /// Streams a file to `path` atomically: `body` appends its content, in order, to a
    /// temporary file that is renamed into place when `body` returns (removed if it throws).
    /// A large output can so be produced chunk by chunk, never whole in memory.
    public static func write(to path: String, durable: Bool = false, streaming body: (borrowing Sink) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        // Opened here (not with FileManager.createFile, which on Linux goes through a
        // temporary of its own that a killed process would leave behind, and copies twice).
        let descriptor = try TemporaryFiles.create(temporary, finalPath: path)
        try finish(temporary, path, durable: durable) {
            defer { close(descriptor) }
            try body(Sink(descriptor: descriptor, path: path))
        }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String, durable: Bool = false) throws {
        try write(to: path, durable: durable) { (sink: borrowing Sink) in
            try data.withUnsafeBytes { try sink.append($0) }
        }
    }

    /// Writes `text` as UTF-8 to `path` atomically.
    public static func write(_ text: String, to path: String, durable: Bool = false) throws {
        try write(Data(text.utf8), to: path, durable: durable)
    }

    /// Makes sure a finished temporary file reached the disk before it is renamed.
    private static func syncFile(at path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw AtomicWriteError(path: path, reason: "the written file vanished before it was moved into place")
        }
        defer { close(descriptor) }
        _ = fsync(descriptor)
    }

    /// Removes the temporary files of the listed final names left in `folder` by a process
    /// that was killed mid-write (and no others: another writer may be using the folder).
    /// - Returns: the number of files removed.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String, for finalNames: Set<String>) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(temporaryPrefix) {
            // `<prefix><pid>-<token>-<final name>`
            let parts = name.dropFirst(temporaryPrefix.count).split(separator: "-", maxSplits: 2)
            guard parts.count == 3, finalNames.contains(String(parts[2])) else { continue }
            if unlink(folder + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    /// Removes every temporary file in `folder` (not below it) left by a process that was
    /// killed mid-write.
    /// - Returns: the number of files removed.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(temporaryPrefix) {
            if unlink(folder + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }
}
