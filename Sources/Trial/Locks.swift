import AtomicFiles
import FileSystem
import Foundation
import Tabular

/// The advisory locks that let several `run` processes write into one output folder at
/// once (cluster array jobs, one per participant or visit), each a ``FileLock`` on an empty
/// file in `OUTPUT/.locks/`:
///
/// - `output.lock`: held while a run removes stale temporaries at the top of the output
///   folder and writes `dataset_description.json` (a few milliseconds).
/// - `sub-XX_ses-YY_<modality>.lock`, one per scan (the unit a run processes; the DWI and
///   the BOLD of a visit are processed independently): held from before the scan's folder is
///   cleaned until its record is written. A run that reaches a scan another process holds
///   **waits** for it, then finds it up to date (same inputs and parameters) and skips it,
///   or processes it itself if the other run failed or used other parameters. Waiting
///   rather than skipping at once means every run's summary and exit status tell the truth
///   about every scan it was asked for, and a workflow manager that starts the same visit
///   twice gets one computation and two correct answers.
/// - `group.lock`: held by the group stage from before it reads the visits until it has
///   replaced `OUTPUT/group` (see ``GroupOutputSet``), so two group stages take turns, the
///   last to write is the last to read, and one never removes the other's staging folder.
///
/// No process holds two of these at once (a worker holds one scan lock at a time; the
/// output and group locks are taken while no scan lock is held), so runs cannot deadlock.
/// Holding the lock is what makes a leftover provably stale: a temporary of a scan, or a
/// staging folder of the group set, found while holding its lock belongs to a process that
/// is gone, so only then is it removed. The kernel releases every lock when its process
/// ends, a SIGKILL included, so nothing is left to clean after a kill.
public enum OutputLocks {
    /// The folder of lock files below the output folder.
    public static let folderName = ".locks"

    /// Takes the lock of the output folder's top level (see the type's discussion).
    public static func outputFolder(_ output: String) throws -> FileLock {
        try acquire(output: output, name: "output")
    }

    /// Takes the lock of one scan (`visit` with its modality), waiting for another holder.
    public static func scan(_ visit: VisitInput, output: String) throws -> FileLock {
        try acquire(output: output, name: visit.filePrefix + (visit.modality.map { "_" + $0.rawValue } ?? ""))
    }

    /// Takes the group stage's lock.
    public static func group(_ output: String) throws -> FileLock {
        try acquire(output: output, name: "group")
    }

    /// The lock file `OUTPUT/.locks/<name>.lock`.
    public static func path(output: String, name: String) -> String {
        output + "/" + folderName + "/" + name + ".lock"
    }

    static func acquire(output: String, name: String) throws -> FileLock {
        try OutputGuard.makeFolder(folderName, in: output)
        do { return try FileLock.acquire(path(output: output, name: name)) } catch {
            throw TrialError.io(path: error.path, reason: error.reason)
        }
    }
}

/// The group tables being written as one set: each file goes into a hidden staging folder
/// and the whole folder replaces `OUTPUT/group` at the end (``AtomicFolder``), so a kill or a
/// full disk at any moment leaves the previous complete set or the new one.
///
/// Every error names the file's final path (`OUTPUT/group/visits.tsv`), never the staging
/// folder. Build one with ``TrialRunner/writeGroupSet(output:holding:_:)``.
public struct GroupOutputSet {
    /// The final folder, `OUTPUT/group`.
    public let folder: String
    /// The staging folder being filled.
    let staging: String
    /// The final paths of the files written, in the order written.
    public private(set) var files: [String] = []

    /// Writes `table` as the set's file `name`.
    /// - Throws: ``TrialError/io(path:reason:)`` naming `OUTPUT/group/<name>`.
    public mutating func write(_ table: TSVTable, _ name: String) throws {
        try write(name) { path in try table.write(to: path) }
    }

    /// Runs `body` with the path the set's file `name` is to be written at (in the staging
    /// folder), and lists the file. Any error `body` throws is reported on the final path.
    /// - Throws: ``TrialError`` naming `OUTPUT/group/<name>`.
    public mutating func write(_ name: String, _ body: (String) throws -> Void) throws {
        let final = folder + "/" + name
        do {
            try body(staging + "/" + name)
        } catch {
            throw shownAtFinalPath(error, file: final)
        }
        files.append(final)
        AtomicFolder.crashPoint()
    }

    /// `error` with the staging folder's name replaced by the final folder's.
    func shownAtFinalPath(_ error: any Error, file: String) -> TrialError {
        func real(_ text: String) -> String { text.replacingOccurrences(of: staging, with: folder) }
        switch error {
        case let error as TrialError:
            switch error {
            case .io(let path, let reason): return .io(path: real(path), reason: real(reason))
            case .sqlite(let path, let function, let message): return .sqlite(path: real(path), function: function, message: real(message))
            case .badTable(let path, let reason): return .badTable(file: real(path), reason: real(reason))
            default: return error
            }
        case let error as FileSystemError:
            return .io(path: real(error.path), reason: "cannot write: " + real(error.reason))
        default:
            return .io(path: file, reason: "cannot write: " + real(TrialRunner.oneLine(error)))
        }
    }
}

extension TrialRunner {
    /// Takes the group stage's lock (``OutputLocks``), creating the output folder if needed.
    ///
    /// A group stage holds it from before it reads the visits until its set is in place, so
    /// of two group stages (two `run ... participant --group` jobs ending together) the one
    /// that writes last also read last, and sees every visit the other saw.
    public static func lockGroupStage(output: String) throws -> FileLock {
        try createFolder(output)
        return try OutputLocks.group(output)
    }

    /// Replaces `OUTPUT/group` by the files `body` writes into the given set, as one set.
    ///
    /// What a killed group stage left is dealt with first
    /// (``AtomicFolder/recoverLeftovers(of:)``): safe because the caller holds the group
    /// lock, which `lock` stands for. A symbolic link at `OUTPUT/group` or inside it is
    /// refused before anything is written.
    /// - Parameters:
    ///   - output: the output folder.
    ///   - lock: the group lock, from ``lockGroupStage(output:)``, held by the caller.
    ///   - body: writes the set's files with ``GroupOutputSet/write(_:_:)-(TSVTable,_)``.
    /// - Returns: the set written: its final folder and the final paths of its files.
    /// - Throws: what `body` throws (the previous set then stays), ``TrialError`` naming
    ///   `OUTPUT/group` when the swap fails.
    @discardableResult
    public static func writeGroupSet(output: String, holding lock: FileLock,
                                     _ body: (inout GroupOutputSet) throws -> Void) throws -> GroupOutputSet {
        precondition(lock.path == OutputLocks.path(output: output, name: "group"), "writeGroupSet needs the group lock")
        let folder = output + "/group"
        AtomicFolder.recoverLeftovers(of: folder)
        switch OutputGuard.kind(of: folder) {
        case .missing: break
        case .folder: try OutputGuard.refuseLinks(inside: folder, root: output)
        case .link(let target): throw TrialError.outputSymlink(link: folder, target: target, root: output)
        case .other: throw TrialError.io(path: folder, reason: "exists and is not a folder")
        }
        var written: GroupOutputSet?
        do {
            try AtomicFolder.replace(folder) { staging in
                var set = GroupOutputSet(folder: folder, staging: staging)
                try body(&set)
                written = set
            }
        } catch let error as FileSystemError {
            throw TrialError.io(path: error.path, reason: error.reason)
        }
        guard let written else { throw TrialError.io(path: folder, reason: "the group tables were not written") }
        return written
    }
}
