#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Receives the progress of a participant-level run.
///
/// The runner calls these one at a time (never concurrently), from its worker threads.
public protocol ProgressReporter: Sendable {
    /// Before any visit starts.
    func runStarted(total: Int)
    /// A worker picked up a visit.
    func visitStarted(_ visit: VisitInput)
    /// A visit ended (processed, skipped as up to date, or failed); `done` counts ended visits.
    func visitFinished(_ outcome: VisitOutcome, done: Int, total: Int)
    /// After the last visit.
    func runFinished(_ summary: ParticipantRunSummary)
}

/// Reports nothing (tests, library use).
public struct SilentProgress: ProgressReporter {
    public init() {}
    public func runStarted(total: Int) {}
    public func visitStarted(_ visit: VisitInput) {}
    public func visitFinished(_ outcome: VisitOutcome, done: Int, total: Int) {}
    public func runFinished(_ summary: ParticipantRunSummary) {}
}

/// Progress on standard error: a one-line live display (visits done/total, current visit,
/// elapsed, ETA) when stderr is a terminal, else one plain log line per finished visit.
/// Both end with the summary (failed visits listed one per line).
public final class ConsoleProgressReporter: ProgressReporter, Sendable {
    private struct Display {
        var start = Date()
        var running: [String] = []
    }
    private let display = Mutex(Display())
    private let live: Bool
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - live: force the live display on or off; nil decides with `isatty(2)`.
    ///   - write: where text goes; standard error by default.
    public init(live: Bool? = nil, write: (@Sendable (String) -> Void)? = nil) {
        self.live = live ?? (isatty(STDERR_FILENO) != 0)
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public func runStarted(total: Int) {
        display.withLock { $0.start = Date() }
        if live { write("\r\u{1B}[2K[0/\(total)] starting") }
    }

    public func visitStarted(_ visit: VisitInput) {
        display.withLock { $0.running.append(visit.unitName) }
    }

    public func visitFinished(_ outcome: VisitOutcome, done: Int, total: Int) {
        let elapsed = display.withLock { display -> TimeInterval in
            display.running.removeAll { $0 == outcome.visit.unitName }
            return Date().timeIntervalSince(display.start)
        }
        if live {
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let current = display.withLock { $0.running.last } ?? outcome.visit.unitName
            var line = "[\(done)/\(total)] \(current)  elapsed \(Self.clock(elapsed))  ETA \(Self.clock(eta))"
            if outcome.status == .failed { line = "\(outcome.visit.unitName) FAILED: \(outcome.error ?? "")\n" + line }
            write("\r\u{1B}[2K" + line)
        } else {
            let what: String
            switch (outcome.status, outcome.skipped) {
            case (.ok, true): what = "up to date, skipped"
            case (.ok, false): what = String(format: "ok (%.1f s)", outcome.seconds)
            default: what = "FAILED: \(outcome.error ?? "")"
            }
            write("nimetrics: [\(done)/\(total)] \(outcome.visit.unitName) \(what)\n")
        }
    }

    public func runFinished(_ summary: ParticipantRunSummary) {
        if live { write("\r\u{1B}[2K") }
        write(summary.report)
    }

    /// `h:mm:ss` or `m:ss`.
    static func clock(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
