import AtomicFiles
import FileSystem
import Foundation
import Testing
import Tabular
import TestSupport
@testable import Trial

/// Starts `arguments` (found on PATH) as a child process; nil when it cannot be started.
/// `posix_spawnp` and `waitpid` directly: the child's end is observed exactly.
private func spawn(_ arguments: [String]) -> pid_t? {
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    return posix_spawnp(&pid, arguments[0], nil, nil, argv, environ) == 0 ? pid : nil
}

/// Waits for the child `pid`; its exit status, or 128 + the signal that ended it.
@discardableResult
private func wait(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// A child process holding a lock with util-linux's `flock(1)`: an implementation of
/// `flock(2)` locking that is not ours. Only the flock(1) process holds the lock (`-o`), and
/// it holds it until ``letGo()`` removes the marker file its shell waits on, or it is killed.
private struct LockHolder {
    let pid: pid_t
    let marker: String

    init(_ file: String) throws {
        marker = file + ".held"
        pid = try #require(spawn(["flock", "-o", file, "sh", "-c", "touch \"$0\"; while [ -e \"$0\" ]; do sleep 0.02; done", marker]))
        // Held once the shell made its marker.
        while !FileManager.default.fileExists(atPath: marker) { usleep(2_000) }
    }

    func letGo() -> Int32 {
        try? FileManager.default.removeItem(atPath: marker)
        return wait(pid)
    }
}

/// `flock -n FILE true` in a child: true when the child could take the lock at once.
private func otherProcessCanLock(_ file: String, shared: Bool = false) throws -> Bool {
    let pid = try #require(spawn(["flock", "-n"] + (shared ? ["-s"] : []) + [file, "true"]))
    return wait(pid) == 0
}

@Suite("File locks: another holder blocks, the lock goes with its holder")
struct FileLockTests {
    @Test("a second holder in this process is refused until the first releases")
    func sameProcess() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let path = folder + "/a.lock"
        let first = try FileLock.acquire(path)
        #expect(try FileLock.tryAcquire(path) == nil)
        #expect(try FileLock.tryAcquire(path, mode: .shared) == nil)
        first.release()
        let second = try #require(try FileLock.tryAcquire(path))
        second.release()
        // Shared holders share, and keep an exclusive one out.
        let readers = [try FileLock.acquire(path, mode: .shared), try FileLock.acquire(path, mode: .shared)]
        #expect(try FileLock.tryAcquire(path) == nil)
        readers.forEach { $0.release() }
        #expect(try FileLock.tryAcquire(path) != nil)
    }

    @Test("a lock dropped without release (the holder gone) is free again")
    func releasedOnDeinit() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let path = folder + "/a.lock"
        do { _ = try FileLock.acquire(path) }
        #expect(try FileLock.tryAcquire(path) != nil)
    }

    @Test("a waiting acquire returns only after the holder released")
    func waits() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let path = folder + "/a.lock"
        let holder = try FileLock.acquire(path)
        let released = Flag(), sawRelease = Flag()
        let waiter = Thread {
            let lock = try! FileLock.acquire(path)
            if released.value { sawRelease.set() }
            lock.release()
        }
        waiter.start()
        usleep(100_000)
        released.set()
        holder.release()
        while !waiter.isFinished { usleep(1_000) }
        #expect(sawRelease.value, "the waiter got the lock while it was held")
    }

    @Test("another process: it blocks us while it holds the lock, and we block it; a killed holder frees it")
    func otherProcess() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let path = folder + "/a.lock"
        let child = try LockHolder(path)
        #expect(try FileLock.tryAcquire(path) == nil)
        #expect(child.letGo() == 0)
        let ours = try #require(try FileLock.tryAcquire(path))
        #expect(try !otherProcessCanLock(path))
        #expect(try !otherProcessCanLock(path, shared: true))
        ours.release()
        #expect(try otherProcessCanLock(path))

        let killed = try LockHolder(path)
        #expect(try FileLock.tryAcquire(path) == nil)
        kill(killed.pid, SIGKILL)
        #expect(wait(killed.pid) == 128 + SIGKILL)
        #expect(try FileLock.tryAcquire(path) != nil)
        // Its shell, orphaned, waits on the marker: let it end.
        try? FileManager.default.removeItem(atPath: killed.marker)
    }

    @Test("a lock file that is a symbolic link is refused, naming it")
    func linkRefused() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        put(folder + "/target", "keep\n")
        try FileManager.default.createSymbolicLink(atPath: folder + "/a.lock", withDestinationPath: folder + "/target")
        #expect { _ = try FileLock.acquire(folder + "/a.lock") } throws: { error in
            String(describing: error).hasPrefix(folder + "/a.lock: cannot open the lock file")
        }
        #expect(contents(folder + "/target") == "keep\n")
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    var value: Bool { lock.withLock { raised } }
    func set() { lock.withLock { raised = true } }
}

@Suite("Folder sets: replaced whole or not at all")
struct AtomicFolderTests {
    func names(_ folder: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() }

    @Test("a new set replaces the old whole; a failure halfway leaves the old one and no staging folder")
    func replaceOrKeep() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let final = top + "/group"
        try AtomicFolder.replace(final) { staging in put(staging + "/a.tsv", "1\n"); put(staging + "/b.tsv", "1\n") }
        #expect(names(top) == ["group"])
        let first = TreeSnapshot(final)
        struct DiskFull: Error {}
        #expect(throws: DiskFull.self) {
            try AtomicFolder.replace(final) { staging in put(staging + "/a.tsv", "2\n"); throw DiskFull() }
        }
        #expect(TreeSnapshot(final).changes(since: first) == [])
        #expect(names(top) == ["group"])
        try AtomicFolder.replace(final) { staging in put(staging + "/a.tsv", "3\n") }
        #expect(names(final) == ["a.tsv"] && contents(final + "/a.tsv") == "3\n")
        #expect(names(top) == ["group"])
    }

    @Test("leftovers of a killed run: staging folders removed, a set moved aside put back when the final one is missing")
    func leftovers() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let final = top + "/group"
        put(top + "/.group.new-1-a/half.tsv", "half\n")
        put(top + "/.group.old-1-a/visits.tsv", "previous\n")
        put(top + "/.groupie/keep.tsv", "not ours\n")
        #expect(AtomicFolder.recoverLeftovers(of: final) == 1)
        #expect(contents(final + "/visits.tsv") == "previous\n")
        #expect(names(top) == [".groupie", "group"])
        // With the final folder there, a set moved aside is stale, not put back.
        put(top + "/.group.old-2-b/visits.tsv", "older\n")
        #expect(AtomicFolder.recoverLeftovers(of: final) == 1)
        #expect(contents(final + "/visits.tsv") == "previous\n")
        #expect(names(top) == [".groupie", "group"])
    }
}

@Suite("Group output set: errors name the real file")
struct GroupOutputSetTests {
    @Test("a file that cannot be written is named by its final path; the previous set stays")
    func errorsNameFinalPath() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let lock = try TrialRunner.lockGroupStage(output: top)
        defer { lock.release() }
        try TrialRunner.writeGroupSet(output: top, holding: lock) { set in try set.write(TSVTable(columns: ["a"]), "visits.tsv") }
        let before = TreeSnapshot(top + "/group")
        var table = TSVTable(columns: ["a"])
        table.append(["1"])
        #expect { try TrialRunner.writeGroupSet(output: top, holding: lock) { set in
            try set.write(table, "metrics_long.tsv")
            // A folder where the file should go: the rename into it fails.
            try FileManager.default.createDirectory(atPath: set.staging + "/visits.tsv", withIntermediateDirectories: true)
            try set.write(table, "visits.tsv")
        } } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix(top + "/group/visits.tsv: ") && !text.contains(".group.new-")
        }
        #expect(TreeSnapshot(top + "/group").changes(since: before) == [])
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: top)) ?? []).sorted() == [".locks", "group"])
    }

    @Test("runGroup holds the group lock: it waits for another holder")
    func groupLockHeld() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let input = top + "/bids", output = top + "/out"
        makeBIDS(at: input, participants: ["01"], sessions: ["m00"])
        let dataset = try Dataset.discover(input)
        let holder = try TrialRunner.lockGroupStage(output: output)
        let released = Flag(), wroteAfterRelease = Flag()
        let group = Thread {
            _ = try? TrialRunner.runGroup(dataset: dataset, output: output)
            if released.value { wroteAfterRelease.set() }
        }
        group.start()
        usleep(200_000)
        #expect(!exists(output + "/group/visits.tsv"), "the group tables were written while another held the lock")
        released.set()
        holder.release()
        while !group.isFinished { usleep(1_000) }
        #expect(wroteAfterRelease.value && exists(output + "/group/visits.tsv"))
    }
}
