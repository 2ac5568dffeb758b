import Foundation
import Phantoms
import Testing

@Suite("Interrupts: SIGINT and SIGTERM remove the process's own temporary files")
struct InterruptEndToEndTests {
    struct Interrupted {
        /// Whether the signal reached a running process (false when it had already finished).
        let landed: Bool
        let status: Int32
        let exited: Bool
        let stderr: String
    }

    /// Starts `nimetrics` with `arguments`, sends `signalNumber` after `delay` seconds, or
    /// earlier, as soon as `ready` (given the child's pid) holds.
    ///
    /// The child is started with `posix_spawn`, every signal unblocked and SIGINT and SIGTERM
    /// at their default action, as a shell starts it. (`Process` passes on the signal mask of
    /// the thread that starts it, and the test's threads block signals: a SIGTERM then stayed
    /// pending, and a tool without a handler ran on to the end.)
    func startAndSignal(_ arguments: [String], _ signalNumber: Int32, after delay: Double,
                        when ready: (Int32) -> Bool = { _ in false }) throws -> Interrupted {
        let errorFolder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: errorFolder) }
        let errorFile = errorFolder + "/stderr"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // A file, not a pipe: the run's progress lines must never block it.
        posix_spawn_file_actions_addopen(&actions, 2, errorFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([toolPath] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, toolPath, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw DemoFailure(message: "posix_spawn: \(String(cString: strerror(spawned)))") }

        var status: Int32 = 0
        func finished() -> Bool { waitpid(pid, &status, WNOHANG) == pid }
        let deadline = Date().addingTimeInterval(delay)
        var done = finished()
        while !done && Date() < deadline && !ready(pid) {
            usleep(2_000)
            done = finished()
        }
        let landed = !done
        if landed {
            kill(pid, signalNumber)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        // <sys/wait.h>: the low 7 bits are the signal that ended the child (0 when it exited),
        // the next byte its exit status.
        let exited = status & 0x7F == 0
        return Interrupted(landed: landed, status: exited ? (status >> 8) & 0xFF : status & 0x7F, exited: exited,
                           stderr: (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "")
    }

    /// Seeded delays, so a failure can be replayed: the seed is in every failure message, and
    /// NIMETRICS_INTERRUPT_SEED=<seed> runs the same delays again.
    static func delays(_ ranges: [ClosedRange<Double>]) -> (seed: UInt64, delays: [Double]) {
        let seed = ProcessInfo.processInfo.environment["NIMETRICS_INTERRUPT_SEED"].flatMap { UInt64($0) } ?? 20_261_216
        var random = PhantomRandom(seed: seed)
        return (seed, ranges.map { Double.random(in: $0, using: &random) })
    }

    func expectClean(_ result: Interrupted, _ signalNumber: Int32, output: String, label: String) {
        guard result.landed else { return }
        #expect(result.exited && result.status == 128 + signalNumber, "\(label): status \(result.status) (exited: \(result.exited)): \(result.stderr)")
        let name = signalNumber == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(result.stderr.hasSuffix("nimetrics: interrupted (\(name)); temporary files removed\n"), "\(label): \(result.stderr)")
        let leftovers = filesBelow(output).filter { $0.contains(".nimetrics-tmp-") && !$0.contains("-999999999-") }
        #expect(leftovers.isEmpty, "\(label): temporary files left: \(leftovers)")
    }

    @Test("a batch stopped by SIGTERM or SIGINT exits with 143 or 130 and leaves no temporary file")
    func interruptBatch() throws {
        let dataset = try sharedDemoDataset()
        let (seed, delays) = Self.delays([0.3...1.5, 1.5...4.0, 0.3...3.0])
        for (index, (delay, signalNumber)) in zip(delays, [SIGTERM, SIGTERM, SIGINT]).enumerated() {
            let folder = makeTemporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let output = folder + "/output"
            let result = try startAndSignal(trialArguments(dataset: dataset, output: output) + ["--jobs", "2", "--threads", "1"],
                                            signalNumber, after: delay)
            let label = "run \(index), signal \(signalNumber) after \(String(format: "%.2f", delay)) s (NIMETRICS_INTERRUPT_SEED \(seed))"
            if index == 0 { #expect(result.landed, "\(label): the run finished before the signal") }
            expectClean(result, signalNumber, output: output, label: label)
        }
    }

    /// `demo` is signalled as soon as one of its own temporaries is seen, so the clean-up is
    /// tested with a file being written (without the clean-up, the file stays); a temporary of another process (another pid) in the
    /// same folder is left alone.
    @Test("demo stopped mid-write removes its own temporaries and no one else's")
    func interruptDemo() throws {
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/demo"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let foreign = output + "/.nimetrics-tmp-999999999-0-participants.tsv"
        #expect(FileManager.default.createFile(atPath: foreign, contents: Data("another process's\n".utf8)))
        var seen: [String] = []
        let result = try startAndSignal(["demo", "--out", output, "--participants", "3", "--force"], SIGTERM, after: 30) { pid in
            // A BOLD series takes the longest to write (a SIGKILL then left it behind every time).
            seen = filesBelow(output).filter { $0.contains(".nimetrics-tmp-\(pid)-") && $0.hasSuffix("_bold.nii.gz") }
            return !seen.isEmpty
        }
        #expect(result.landed && !seen.isEmpty, "the demo finished before a temporary was seen")
        expectClean(result, SIGTERM, output: output, label: "demo, SIGTERM while writing \(seen)")
        #expect(FileManager.default.fileExists(atPath: foreign), "another process's temporary was removed")
    }
}
