import Foundation
import Phantoms
import Testing
import TestSupport

/// Starts `nimetrics` with `arguments` (and `environment` added to this process's).
private func startTool(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: toolPath)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    return (process, output)
}

/// The hidden staging and retired folders of the group set in `output`.
private func groupLeftovers(_ output: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter { $0.hasPrefix(".group.") }.sorted()
}

@Suite("Concurrent runs and killed group stages")
struct ConcurrentRunsEndToEndTests {
    @Test("a group stage killed at each write step and at random moments always leaves one complete set")
    func groupKilled() throws {
        let (dataset, reference) = try referenceTrialRun()
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/output"
        try FileManager.default.copyItem(atPath: reference, toPath: output)
        // Two sets in which every file differs: the group of participant 01 alone, and of both.
        let arguments = [["run", dataset, output, "group", "--participant-label", "01"], ["run", dataset, output, "group"]]
        var sets: [TreeSnapshot] = []
        var seconds = 0.0
        for variant in arguments {
            let clock = Date()
            let run = try runTool(variant)
            seconds = max(seconds, Date().timeIntervalSince(clock))
            #expect(run.status == 0, "\(run.stderr)")
            sets.append(TreeSnapshot(output + "/group"))
        }
        #expect(sets[1] == TreeSnapshot(reference + "/group"))
        for name in ["metrics_long.tsv", "visits.tsv", "change_from_baseline.tsv", "nimetrics.sqlite"] {
            #expect(sets[0].entries[name]?.bytes != sets[1].entries[name]?.bytes, "\(name) is the same in both sets: a mix would go unseen")
        }
        var current = 1

        let seed = ProcessInfo.processInfo.environment["NIMETRICS_CRASH_SEED"].flatMap { UInt64($0) } ?? 20_261_205
        var random = PhantomRandom(seed: seed)
        let fallback = ["NIMETRICS_TEST_NO_EXCHANGE": "1"]
        var tries = 0
        /// Runs the group stage for the other set, killed at `step` (NIMETRICS_TEST_KILL_AT) or
        /// after `delay`, and checks what it left; returns whether it was killed.
        func attempt(_ environment: [String: String], step: Int?, delay: Double) throws -> Bool {
            let target = 1 - current
            let how = (environment.isEmpty ? "exchange" : "two renames") + ", "
                + (step.map { "killed at write step \($0)" } ?? String(format: "killed after %.3f s (seed %llu, NIMETRICS_CRASH_SEED)", delay, seed))
            tries += 1
            var variables = environment
            if let step { variables["NIMETRICS_TEST_KILL_AT"] = String(step) }
            let (process, pipe) = try startTool(arguments[target], environment: variables)
            if step == nil {
                let deadline = Date().addingTimeInterval(delay)
                while process.isRunning && Date() < deadline { usleep(2_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let killed = process.terminationReason == .uncaughtSignal
            #expect(killed || process.terminationStatus == 0, "try \(tries), \(how): \(log)")
            var found = TreeSnapshot(output + "/group")
            if !FileManager.default.fileExists(atPath: output + "/group") {
                // Killed between the two renames: the previous set waits under .group.old-,
                // for the next group stage to put back.
                let retired = groupLeftovers(output).filter { $0.hasPrefix(".group.old-") }
                #expect(retired.count == 1 && !environment.isEmpty, "try \(tries), \(how): no group/, set aside: \(retired)")
                found = TreeSnapshot(output + "/" + (retired.first ?? "group"))
            }
            #expect(found == sets[0] || found == sets[1],
                    "try \(tries), \(how): not one complete set: \(found.changes(since: sets[current]))")
            if found == sets[target] { current = target }
            if !killed { #expect(current == target, "try \(tries), \(how): a finished run left the previous set") }
            return killed
        }
        // Every write step (each file written, the flush, the swap or each of the two
        // renames) in turn until a run passes them all, in both ways of swapping; then
        // random moments, up to 20 tries or more.
        var stepsLanded: [Int] = []
        for environment in [[:], fallback] {
            var step = 1
            while try attempt(environment, step: step, delay: 0) { step += 1 }
            stepsLanded.append(step - 1)
        }
        while tries < 20 {
            _ = try attempt(tries % 2 == 0 ? [:] : fallback, step: nil, delay: Double.random(in: 0...(1.2 * seconds), using: &random))
        }
        // The 4 files, the flush and the swap; and one more step between the two renames.
        #expect(stepsLanded[0] >= 6 && stepsLanded[1] == stepsLanded[0] + 1, "write steps reached: \(stepsLanded)")
        let finish = try runTool(arguments[1 - current])
        #expect(finish.status == 0, "\(finish.stderr)")
        #expect(TreeSnapshot(output + "/group") == sets[1 - current])
        #expect(groupLeftovers(output).isEmpty, "left behind: \(groupLeftovers(output))")
    }

    @Test("four participant runs at once (two on disjoint participants, two on all) give one run's bytes, each scan processed once")
    func concurrentParticipants() throws {
        let (dataset, reference) = try referenceTrialRun()
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/output"
        let common = ["run", dataset, output, "participant", "--atlas", dataset + "/atlas/atlas-demo_dseg.nii.gz",
                      "--threads", "2", "--jobs", "1", "--participant-label"]
        let started = try [["01"], ["02"], ["01", "02"], ["01", "02"]].map { try startTool(common + $0) }
        var processed = 0
        for (process, pipe) in started {
            let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && process.terminationReason == .exit, "\(log)")
            // "nimetrics: 12 scans of 6 visits: 5 processed, 7 up to date, 0 failed"
            let counts = log.split(separator: "\n").first { $0.contains(" scans of ") }?.split(separator: " ")
            if let counts, let index = counts.firstIndex(of: "processed,"), let value = Int(counts[index - 1]) { processed += value }
        }
        let scans = filesBelow(reference).filter { $0.hasSuffix("_visit.json") }.count
        #expect(processed == scans, "each of the \(scans) scans should be processed by exactly one run")
        let group = try runTool(["run", dataset, output, "group"])
        #expect(group.status == 0, "\(group.stderr)")
        try expectSameOutputs(reference, output, label: "four concurrent runs")
    }
}
