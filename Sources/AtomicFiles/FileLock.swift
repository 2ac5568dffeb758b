#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FileSystem

/// An advisory lock on a file, held until ``release()`` (or the owner's end): the way
/// several processes writing into one output folder take turns.
///
/// Wraps `flock(2)` on a lock file opened (created if needed) for this lock alone. The lock
/// belongs to that open file, so:
///
/// - two holders conflict whether they are two processes or two threads of one process
///   (each acquisition opens the file anew);
/// - the kernel drops it when the process ends in any way (exit, crash, SIGKILL), so a lock
///   is never left behind by a killed run and nothing needs cleaning after one;
/// - the file is opened with `O_CLOEXEC`, so a child process does not inherit it.
///
/// Why `flock` rather than `fcntl(F_SETLK)`: POSIX record locks belong to the process, so
/// two threads of one process would not exclude each other, and closing *any* descriptor of
/// the file drops them. On NFS, Linux carries a `flock` to the server as a whole-file
/// record lock, so it also excludes processes on other nodes of a cluster (there two holders
/// in one process no longer exclude each other; nimetrics never takes one lock twice in a
/// process: each scan is one worker's, and the group stage runs once per process).
///
/// Lock files are never removed: removing one while another process has it open (and is
/// about to lock it) would let a third process lock a new file of the same name at once.
/// They are empty, and may be deleted by hand when no run is going.
public final class FileLock: @unchecked Sendable {
    /// Who may hold the lock at once.
    public enum Mode: Sendable {
        /// One holder, and no shared holders.
        case exclusive
        /// Any number of shared holders, and no exclusive one.
        case shared

        var operation: Int32 { self == .exclusive ? LOCK_EX : LOCK_SH }
    }

    /// The lock file.
    public let path: String
    // Only touched by the owning thread (`release` is called once, by the holder).
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock on `path`, waiting as long as another holder has it.
    ///
    /// - Parameters:
    ///   - path: the lock file; created (empty) when missing, never followed when it is a
    ///     symbolic link.
    ///   - mode: exclusive (the default) or shared.
    /// - Returns: the held lock.
    /// - Throws: ``FileSystemError`` naming the lock file when it cannot be opened or locked.
    public static func acquire(_ path: String, mode: Mode = .exclusive) throws(FileSystemError) -> FileLock {
        // Never nil when waiting.
        try lock(path, mode: mode, wait: true)!
    }

    /// Takes the lock on `path` if nobody holds it in a conflicting mode; nil at once otherwise.
    /// - Throws: ``FileSystemError`` naming the lock file when it cannot be opened or locked.
    public static func tryAcquire(_ path: String, mode: Mode = .exclusive) throws(FileSystemError) -> FileLock? {
        try lock(path, mode: mode, wait: false)
    }

    private static func lock(_ path: String, mode: Mode, wait: Bool) throws(FileSystemError) -> FileLock? {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw FileSystemError(path: path, reason: "cannot open the lock file: \(FileSystem.errorText(code))", code: code)
        }
        while flock(descriptor, mode.operation | (wait ? 0 : LOCK_NB)) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(descriptor)
            if code == EWOULDBLOCK { return nil }
            throw FileSystemError(path: path, reason: "cannot lock: \(FileSystem.errorText(code))", code: code)
        }
        return FileLock(path: path, descriptor: descriptor)
    }

    /// Lets the lock go (closing the lock file); later calls do nothing.
    public func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
