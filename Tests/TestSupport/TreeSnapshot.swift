#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Everything about a folder tree that a write could change: every path below it (files,
/// folders, links), its kind and permission bits, a link's target and a file's bytes.
///
/// Two snapshots are equal exactly when the trees hold the same paths with the same modes
/// and the same contents: a byte-for-byte comparison, stronger than comparing checksums of
/// the same things, and `changes(since:)` names what differs. Links are recorded, never
/// followed. Modification times are left out: reading a file must not count as a change.
public struct TreeSnapshot: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var kind: String
        public var mode: UInt32
        public var linkTarget: String?
        public var bytes: Data?
    }

    /// Entries by path relative to the root (the root itself is `.`).
    public var entries: [String: Entry]

    /// Reads the tree below `root`, skipping the relative paths in `excluding` and all below them.
    public init(_ root: String, excluding: Set<String> = []) {
        entries = [:]
        var pending = ["."]
        while let relative = pending.popLast() {
            if excluding.contains(relative) { continue }
            let path = relative == "." ? root : root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            var entry = Entry(kind: "other", mode: UInt32(info.st_mode & 0o7777), linkTarget: nil, bytes: nil)
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                entry.kind = "folder"
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                pending += names.map { relative == "." ? $0 : relative + "/" + $0 }
            case S_IFLNK:
                entry.kind = "link"
                entry.linkTarget = try? FileManager.default.destinationOfSymbolicLink(atPath: path)
            case S_IFREG:
                entry.kind = "file"
                entry.bytes = FileManager.default.contents(atPath: path)
            default:
                break
            }
            entries[relative] = entry
        }
    }

    /// The paths added, removed or changed between `earlier` and this snapshot, sorted, each
    /// with a word saying how; empty when the trees are the same.
    public func changes(since earlier: TreeSnapshot) -> [String] {
        let paths = Set(entries.keys).union(earlier.entries.keys).sorted()
        return paths.compactMap { path in
            switch (earlier.entries[path], entries[path]) {
            case (nil, _?): "added \(path)"
            case (_?, nil): "removed \(path)"
            case let (before?, after?) where before != after: "changed \(path)"
            default: nil
            }
        }
    }

    /// Number of regular files in the tree.
    public var fileCount: Int { entries.values.filter { $0.kind == "file" }.count }
}
