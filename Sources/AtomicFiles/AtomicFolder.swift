#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileSystem
import Synchronization

/// Replaces a whole folder of outputs as one set: a reader, or a run killed at any moment,
/// sees the previous complete set or the new complete set, never files of both.
///
/// The new set is written into a hidden staging folder beside the final one
/// (`.<name>.new-<pid>-<token>`), its files and the folder are flushed (`fsync`), and the
/// staging folder is then swapped with the final one in one step:
///
/// - **Linux**: `renameat2(2)` with `RENAME_EXCHANGE` exchanges the two names atomically;
///   the staging name then holds the previous set, which is removed. The final name stays a
///   real folder (not a link), so readers, workflow managers that check `group/visits.tsv`,
///   copies and backups see the same layout as always, and the rule that nothing below an
///   output folder is a symbolic link (``OutputGuard`` in the cohort layer) still holds.
///   A symbolic link `group -> .group-<id>` swapped by `rename(2)` was the alternative; it
///   is atomic on every file system, but the visible name becomes a link, two runs' trees
///   differ by the hidden name, and copying the folder with tools that keep links breaks it.
/// - **Elsewhere**, and on file systems that refuse the exchange (NFS and some cluster file
///   systems answer `EINVAL`), two renames: the previous set to `.<name>.old-<pid>-<token>`,
///   then the staging folder to the final name. A kill between the two leaves no final
///   folder but the previous complete set under the `.old-` name, which
///   ``recoverLeftovers(of:)`` puts back before anything else.
///
/// Staging and retired folders left by a killed run are removed by
/// ``recoverLeftovers(of:)``, which the caller must call only while holding a lock that
/// every writer of this folder holds (``FileLock``): then no other live process can own them.
public enum AtomicFolder {
    /// Marks a staging folder being filled: `.<name>` + this + `<pid>-<token>`.
    public static let stagingMarker = ".new-"
    /// Marks a previous set moved aside: `.<name>` + this + `<pid>-<token>`.
    public static let retiredMarker = ".old-"

    /// Writes a new set of files for the folder `path` and swaps it in.
    ///
    /// - Parameters:
    ///   - path: the final folder (`OUTPUT/group`); its parent must exist. It may be missing.
    ///   - body: writes the complete set into the (empty) staging folder it is given.
    /// - Throws: whatever `body` throws (the staging folder is then removed and `path` is
    ///   untouched), or ``AtomicWriteError`` naming `path` when the swap fails.
    public static func replace(_ path: String, _ body: (String) throws -> Void) throws {
        let (parent, name) = split(path)
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let staging = parent + "/." + name + stagingMarker + "\(getpid())-" + token
        try TemporaryFiles.createFolder(staging, finalPath: path)
        defer { TemporaryFiles.forgetFolder(staging) }
        do {
            try body(staging)
            try syncTree(staging, shownAs: path)
            crashPoint()
            try swap(staging, into: path, retired: parent + "/." + name + retiredMarker + "\(getpid())-" + token)
        } catch {
            removeTree(staging)
            throw error
        }
        crashPoint()
        // `staging` now holds the previous set (or nothing).
        removeTree(staging)
        syncFolder(parent)
    }

    /// Puts the final folder back from a retired previous set when a run was killed between
    /// the two renames of the fallback (the final name missing), then removes every staging
    /// and retired folder of `path`.
    ///
    /// Call only while holding the lock that every writer of `path` holds: the folders found
    /// are then known to belong to runs that are gone.
    /// - Returns: the number of folders removed.
    @discardableResult
    public static func recoverLeftovers(of path: String) -> Int {
        let (parent, name) = split(path)
        guard let names = try? FileSystem.entries(of: parent) else { return 0 }
        let retired = names.filter { $0.hasPrefix("." + name + retiredMarker) }.sorted()
        if FileSystem.kind(of: path) == nil, let previous = retired.last, rename(parent + "/" + previous, path) == 0 {
            syncFolder(parent)
        }
        var removed = 0
        for leftover in names where leftover.hasPrefix("." + name + stagingMarker) || leftover.hasPrefix("." + name + retiredMarker) {
            let folder = parent + "/" + leftover
            guard FileSystem.kind(of: folder) != nil else { continue }
            removeTree(folder)
            removed += 1
        }
        return removed
    }

    // MARK: - Swapping

    /// `renameat2(2)`, looked up at run time: glibc has it since 2.28 but Swift's Glibc
    /// module does not declare it. nil where the C library lacks it.
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32
    private static let renameat2: RenameAt2? = {
        #if os(Linux)
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
        #else
        return nil
        #endif
    }()
    /// For the crash tests: `NIMETRICS_TEST_NO_EXCHANGE` set takes the two-rename path, as on
    /// a file system without the exchange.
    private static let exchangeDisabled = getenv("NIMETRICS_TEST_NO_EXCHANGE") != nil
    /// `RENAME_EXCHANGE` of `<linux/fs.h>`.
    private static let renameExchange: UInt32 = 1 << 1

    private static func swap(_ staging: String, into path: String, retired: String) throws {
        if FileSystem.kind(of: path) == nil {
            guard rename(staging, path) == 0 else { throw failure(path, "cannot move the new set into place") }
            return
        }
        if let renameat2, !exchangeDisabled {
            if renameat2(AT_FDCWD, staging, AT_FDCWD, path, renameExchange) == 0 { return }
            let code = errno
            // The file system or kernel cannot exchange: fall back to two renames.
            guard code == EINVAL || code == ENOSYS || code == EOPNOTSUPP || code == ENOTSUP else {
                throw failure(path, "cannot swap the new set into place", code: code)
            }
        }
        guard rename(path, retired) == 0 else { throw failure(path, "cannot move the previous set aside") }
        crashPoint()
        guard rename(staging, path) == 0 else {
            let code = errno
            _ = rename(retired, path)
            throw failure(path, "cannot move the new set into place", code: code)
        }
        // The caller removes `staging`, which is gone; the previous set is at `retired`.
        removeTree(retired)
    }

    private static func failure(_ path: String, _ what: String, code: Int32 = errno) -> AtomicWriteError {
        AtomicWriteError(path: path, reason: "\(what): \(FileSystem.errorText(code))", code: code)
    }

    // MARK: - Flushing and removing

    /// Flushes every file below `folder`, then the folders, so the set is on disk before it
    /// becomes visible (a power cut after the swap then finds it whole).
    private static func syncTree(_ folder: String, shownAs path: String) throws {
        let names = try FileSystem.entries(of: folder).sorted()
        for name in names {
            let child = folder + "/" + name
            var info = stat()
            guard lstat(child, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR { try syncTree(child, shownAs: path + "/" + name); continue }
            guard info.st_mode & S_IFMT == S_IFREG else { continue }
            let descriptor = open(child, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw failure(path + "/" + name, "cannot flush") }
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else { throw failure(path + "/" + name, "cannot flush to disk") }
        }
        syncFolder(folder)
    }

    private static func syncFolder(_ folder: String) {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    /// Removes `path` and everything below it; links are removed, never followed.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in (try? FileSystem.entries(of: path)) ?? [] { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    private static func split(_ path: String) -> (parent: String, name: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", String(trimmed)) }
        let parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        return (parent, String(trimmed[trimmed.index(after: slash)...]))
    }

    // MARK: - Crash tests

    /// For the crash tests: with `NIMETRICS_TEST_KILL_AT=<n>` in the environment, the n-th
    /// call (from 1) in the process kills the process with SIGKILL, as a kill from outside
    /// landing exactly there would. Writers of an output set call it after each step
    /// (each file written, the flush, each rename), so a test can land on every step.
    /// Without the variable it does nothing.
    public static func crashPoint() {
        guard let target = killTarget else { return }
        let count = crashPoints.add(1, ordering: .relaxed).newValue
        if count == target { kill(getpid(), SIGKILL) }
    }

    private static let killTarget: Int? = getenv("NIMETRICS_TEST_KILL_AT").flatMap { Int(String(cString: $0)) }
    private static let crashPoints = Atomic<Int>(0)
}
