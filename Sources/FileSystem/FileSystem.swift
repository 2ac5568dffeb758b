#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system call that failed: the path and the reason, in words of our own or the C
/// library's (`strerror`), never an exception text from Foundation.
///
/// ``description`` is one line, `<path>: <reason>`, so the command line prints it as is.
public struct FileSystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    /// The `errno` of the failed call, when there was one (`ENOENT` tells "missing" apart).
    public let code: Int32?

    public init(path: String, reason: String, code: Int32? = nil) {
        self.path = path
        self.reason = reason
        self.code = code
    }

    public var description: String { "\(path): \(reason)" }
}

extension FileSystemError {
    /// A problem with a file that no system call reported (a malformed transform, an
    /// unreadable report input): the path and the reason.
    public init(_ path: String, _ reason: String) {
        self.init(path: path, reason: reason)
    }
}

/// What a path names, as `stat(2)` reports it (links followed).
public enum FileKind: Equatable, Sendable {
    case regularFile, folder, fifo, characterDevice, blockDevice, socket, other

    /// The kind in a message: "a FIFO", "a folder", "a character device".
    public var phrase: String {
        switch self {
        case .regularFile: "a regular file"
        case .folder: "a folder"
        case .fifo: "a FIFO"
        case .characterDevice: "a character device"
        case .blockDevice: "a block device"
        case .socket: "a socket"
        case .other: "not a file"
        }
    }

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regularFile
        case S_IFDIR: self = .folder
        case S_IFIFO: self = .fifo
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFSOCK: self = .socket
        default: self = .other
        }
    }
}

/// The few file-system calls nimetrics makes beside its readers and writers, each failure
/// turned into a ``FileSystemError`` naming the path and the reason.
///
/// Inputs are checked with ``checkRegularFile(_:)`` (or read with ``readFile(_:)``) before
/// they are opened: opening a FIFO for reading blocks until a writer appears, which once held
/// a whole batch forever, and a device or a folder is never an image or a table.
public enum FileSystem {
    /// The `strerror(3)` text of an `errno` value ("No such file or directory").
    public static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// What `path` names, following links; nil when nothing is there (or it cannot be reached).
    public static func kind(of path: String) -> FileKind? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileKind(mode: info.st_mode)
    }

    /// Throws unless `path` is a regular file (or a link to one).
    ///
    /// - Throws: ``FileSystemError``: "no such file", "not a regular file (a FIFO)", or the
    ///   reason `stat(2)` gives ("Permission denied", "File name too long").
    public static func checkRegularFile(_ path: String) throws(FileSystemError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw statFailure(path, errno) }
        let kind = FileKind(mode: info.st_mode)
        guard kind == .regularFile else { throw notRegular(path, kind) }
    }

    /// The whole content of a regular file.
    ///
    /// The file is opened without blocking (`O_NONBLOCK`) and checked again on the open
    /// descriptor (`fstat`), so a FIFO swapped in after the check cannot block the read either.
    /// - Throws: ``FileSystemError`` as ``checkRegularFile(_:)``, or when a read fails.
    public static func readFile(_ path: String) throws(FileSystemError) -> [UInt8] {
        try checkRegularFile(path)
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw statFailure(path, errno) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            throw FileSystemError(path: path, reason: "cannot read: \(errorText(code))", code: code)
        }
        let kind = FileKind(mode: info.st_mode)
        guard kind == .regularFile else { throw notRegular(path, kind) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileSystemError(path: path, reason: "cannot read: \(errorText(code))", code: code)
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return bytes
    }

    /// The content of a regular file as UTF-8 text.
    /// - Throws: ``FileSystemError`` as ``readFile(_:)``, or "not UTF-8 text".
    public static func readText(_ path: String) throws(FileSystemError) -> String {
        let bytes = try readFile(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw FileSystemError(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    /// Creates a folder and any missing folders above it (`mkdir -p`).
    ///
    /// Each component is made with `mkdir(2)`, so a failure names the reason in the C
    /// library's words, and an existing non-folder on the way is named as such.
    /// - Throws: ``FileSystemError`` naming `path`: "cannot create the folder: a file of that
    ///   name exists", "... under <parent>: Permission denied", "... File name too long".
    public static func createFolder(_ path: String) throws(FileSystemError) {
        try checkPathLength(path)
        if kind(of: path) == .folder { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            if mkdir(prefix, 0o777) == 0 { continue }
            let code = errno
            if code == EEXIST || code == EISDIR || code == EROFS || code == EACCES {
                // Already there (or not ours to make): fine if it is a folder.
                if let existing = kind(of: prefix) {
                    if existing == .folder { continue }
                    throw FileSystemError(path: path, reason: prefix == path
                        ? "cannot create the folder: \(existing.phrase) of that name exists"
                        : "cannot create the folder: \(prefix) is \(existing.phrase), not a folder", code: EEXIST)
                }
            }
            let place = prefix == path ? "" : " (at \(prefix))"
            throw FileSystemError(path: path, reason: "cannot create the folder\(place): \(errorText(code))", code: code)
        }
    }

    /// Throws at once when `path` could not be made a folder (or used as one): an existing
    /// non-folder at the path or above it, a name longer than the system allows, or a nearest
    /// existing folder that cannot be written to. Creates nothing.
    ///
    /// Commands call it before their work, so a wrong `--out` is reported in a second, not
    /// after the processing whose outputs it would hold.
    public static func checkFolderCanBeCreated(_ path: String) throws(FileSystemError) {
        try checkPathLength(path)
        var current = path
        while true {
            if let existing = kind(of: current) {
                guard existing == .folder else {
                    throw FileSystemError(path: path, reason: current == path
                        ? "\(existing.phrase) of that name exists, a folder is needed"
                        : "\(current) is \(existing.phrase), not a folder", code: ENOTDIR)
                }
                guard access(current, W_OK | X_OK) == 0 else {
                    let code = errno
                    throw FileSystemError(path: path, reason: current == path
                        ? "the folder is not writable: \(errorText(code))"
                        : "cannot create the folder in \(current): \(errorText(code))", code: code)
                }
                return
            }
            let parent = parentFolder(current)
            if parent == current { return }
            current = parent
        }
    }

    /// The names in a folder (without `.` and `..`), unsorted.
    /// - Throws: ``FileSystemError``: "cannot list the folder: Permission denied".
    public static func entries(of folder: String) throws(FileSystemError) -> [String] {
        guard let stream = opendir(folder) else {
            let code = errno
            throw FileSystemError(path: folder, reason: "cannot list the folder: \(errorText(code))", code: code)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Throws when a path, or one of its names, is longer than the system allows (`PATH_MAX`,
    /// `NAME_MAX`), which the calls would otherwise report only as ENAMETOOLONG.
    public static func checkPathLength(_ path: String) throws(FileSystemError) {
        let bytes = path.utf8.count
        guard bytes < Int(PATH_MAX) else {
            throw FileSystemError(path: shortened(path), reason: "the path is \(bytes) bytes long, more than the system's limit of \(PATH_MAX - 1)", code: ENAMETOOLONG)
        }
        if let long = path.split(separator: "/").first(where: { $0.utf8.count > Int(NAME_MAX) }) {
            throw FileSystemError(path: shortened(path), reason: "the name '\(shortened(String(long)))' is \(long.utf8.count) bytes long, more than the system's limit of \(NAME_MAX)", code: ENAMETOOLONG)
        }
    }

    /// A very long path cut to its first and last 60 characters, so a message stays readable.
    static func shortened(_ path: String) -> String {
        path.count <= 160 ? path : String(path.prefix(60)) + "..." + String(path.suffix(60))
    }

    static func parentFolder(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    static func statFailure(_ path: String, _ code: Int32) -> FileSystemError {
        switch code {
        case ENOENT: FileSystemError(path: path, reason: "no such file", code: code)
        case ENOTDIR: FileSystemError(path: path, reason: "no such file (a folder on the path is a file)", code: code)
        default: FileSystemError(path: path, reason: "cannot open: \(errorText(code))", code: code)
        }
    }

    static func notRegular(_ path: String, _ kind: FileKind) -> FileSystemError {
        FileSystemError(path: path, reason: "not a regular file (\(kind.phrase))", code: kind == .folder ? EISDIR : nil)
    }
}
