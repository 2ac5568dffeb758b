/// The summary of paired changes (follow-up − baseline, one per participant): how many, their
/// mean, and the 95 % confidence interval of the mean from Student's t.
///
/// With d̄ the mean and s the sample standard deviation (divisor n − 1) of the n changes,
/// the interval is d̄ ± t_{0.975, n−1} · s / √n (Student 1908; the interval of SciPy's
/// `ttest_1samp(d).confidence_interval()`).
public struct PairedChangeSummary: Sendable, Equatable {
    /// The number of finite changes.
    public var count: Int
    /// Their mean, summed in order then divided by n.
    public var mean: Double
    /// The 95 % interval; nil for n < 2 or changes that are all equal (s = 0: the t interval
    /// is then no interval).
    public var confidenceInterval: (low: Double, high: Double)?

    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && a.mean == b.mean && a.confidenceInterval?.low == b.confidenceInterval?.low
            && a.confidenceInterval?.high == b.confidenceInterval?.high
    }

    /// Summarises the finite values of `changes` (NaN and infinities are left out); nil when
    /// none is finite.
    public init?(changes: [Double], level: Double = 0.95) {
        let values = changes.filter(\.isFinite)
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = values.reduce(0, +) / Double(count)
        confidenceInterval = nil
        guard count >= 2, let t = StudentT(degreesOfFreedom: Double(count - 1)),
              values.contains(where: { $0 != values[0] }) else { return }
        var squares = 0.0
        for value in values { squares += (value - mean) * (value - mean) }
        let standardError = (squares / Double(count - 1)).squareRoot() / Double(count).squareRoot()
        guard standardError > 0, standardError.isFinite else { return }
        let half = t.quantile(0.5 + level / 2) * standardError
        confidenceInterval = (mean - half, mean + half)
    }
}
