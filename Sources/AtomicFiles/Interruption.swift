#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// The temporary files this process has created and not yet renamed or removed.
///
/// Files are created under the registry's lock, and an interrupted process removes them
/// while holding that lock until it exits, so no temporary can appear after the clean-up:
/// a writer about to create one waits on the lock and dies with the process.
enum TemporaryFiles {
    /// Temporary files, and staging folders (``AtomicFolder``) removed with all they hold.
    private struct Registry {
        var files: Set<String> = []
        var folders: Set<String> = []
    }
    private static let active = Mutex(Registry())

    /// Creates `temporary` (empty, exclusive, write-only) and lists it.
    /// - Returns: the open descriptor.
    /// - Throws: ``AtomicWriteError`` naming `finalPath` when the file cannot be created.
    static func create(_ temporary: String, finalPath: String) throws -> Int32 {
        let (descriptor, code) = active.withLock { registry -> (Int32, Int32) in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 { registry.files.insert(temporary) }
            return (descriptor, errno)
        }
        guard descriptor >= 0 else {
            throw AtomicWriteError(path: finalPath, reason: "cannot create file: \(String(cString: strerror(code)))")
        }
        return descriptor
    }

    /// Creates the staging folder `folder` (exclusive: it must not exist) and lists it.
    /// - Throws: ``AtomicWriteError`` naming `finalPath` when the folder cannot be created.
    static func createFolder(_ folder: String, finalPath: String) throws {
        let code = active.withLock { registry -> Int32 in
            guard mkdir(folder, 0o777) == 0 else { return errno }
            registry.folders.insert(folder)
            return 0
        }
        guard code == 0 else {
            throw AtomicWriteError(path: finalPath, reason: "cannot create the folder: \(String(cString: strerror(code)))", code: code)
        }
    }

    /// Takes the staging folder `folder` off the list (moved into place or removed).
    static func forgetFolder(_ folder: String) {
        _ = active.withLock { $0.folders.remove(folder) }
    }

    /// Takes `temporary` off the list (it was renamed into place or removed).
    static func forget(_ temporary: String) {
        _ = active.withLock { $0.files.remove(temporary) }
    }

    /// Removes every listed temporary and ends the process with `status`, without returning
    /// the lock: nothing can be created between the removal and the exit.
    static func removeAllAndExit(status: Int32, message: String) -> Never {
        active.withLock { registry -> Never in
            for path in registry.files { unlink(path) }
            for folder in registry.folders { AtomicFolder.removeTree(folder) }
            message.withCString { text in _ = write(2, text, strlen(text)) }
            _exit(status)
        }
    }
}

extension AtomicFile {
    /// The signal sources kept alive for the life of the process.
    private static let interruptSources = Mutex<[any DispatchSourceSignal]>([])

    /// Makes SIGINT and SIGTERM remove this process's temporary files before it exits with
    /// status 128 + the signal (130, 143), as a shell reports a process ended by them.
    ///
    /// Without it an interrupted run left its hidden `.nimetrics-tmp-<pid>-...` files beside
    /// the outputs until the next run cleaned them. The default action of each signal is
    /// replaced by `SIG_IGN` and a dispatch signal source (`DispatchSource.makeSignalSource`)
    /// on a queue of its own: the clean-up then runs as ordinary code on an ordinary thread,
    /// not inside a signal handler, where taking a lock or allocating would not be safe.
    /// Only temporaries this process created are removed (another process may be writing
    /// beside it), then `_exit` ends it without running anything else.
    ///
    /// Call once, early in `main`; later calls do nothing.
    public static func removeTemporariesOnInterrupt() {
        interruptSources.withLock { sources in
            guard sources.isEmpty else { return }
            let queue = DispatchQueue(label: "nimetrics.interrupt")
            for (signalNumber, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler {
                    TemporaryFiles.removeAllAndExit(status: 128 + signalNumber,
                                                    message: "nimetrics: interrupted (\(name)); temporary files removed\n")
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
