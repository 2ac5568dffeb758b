import Foundation

/// Wall-clock time per pipeline phase, printed to stderr when `NIMETRICS_PROFILE=1`, so a
/// user (and the benchmark script) can see where a run spends its time without a profiler.
public struct PhaseTimer {
    private let enabled = ProcessInfo.processInfo.environment["NIMETRICS_PROFILE"] == "1"
    private var last = DispatchTime.now().uptimeNanoseconds
    private let label: String

    public init(_ label: String) { self.label = label }

    /// The process's peak resident set so far (VmHWM), in MB; 0 where /proc is absent.
    static func peakResidentMegabytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    /// Ends the current phase.
    public mutating func lap(_ phase: String) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now - last) / 1e9
        let padded = phase.padding(toLength: max(phase.count, 22), withPad: " ", startingAt: 0)
        FileHandle.standardError.write(Data("profile: \(label) \(padded) \(String(format: "%7.3f", seconds)) s  peak RSS \(Self.peakResidentMegabytes()) MB\n".utf8))
        last = now
    }
}
