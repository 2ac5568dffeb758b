import Foundation

/// Wall-clock time per pipeline phase, printed to stderr when `NIMETRICS_PROFILE=1`, so a
/// user (and the benchmark script) can see where a run spends its time without a profiler.
struct PhaseTimer {
    private let enabled = ProcessInfo.processInfo.environment["NIMETRICS_PROFILE"] == "1"
    private var last = DispatchTime.now().uptimeNanoseconds
    private let label: String

    init(_ label: String) { self.label = label }

    /// Ends the current phase.
    mutating func lap(_ phase: String) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now - last) / 1e9
        let padded = phase.padding(toLength: max(phase.count, 22), withPad: " ", startingAt: 0)
        FileHandle.standardError.write(Data("profile: \(label) \(padded) \(String(format: "%7.3f", seconds)) s\n".utf8))
        last = now
    }
}
