/// One number of a visit, as the cohort layer tabulates it: `fa_mean` of region `L_CST`
/// from the `dwi` modality. Metric names are lowercase snake_case with the statistic in them
/// (`fa_mean`, `rd_p95`, `fd_mean`).
///
/// A session with several runs of a task has a value per run (``run`` is the run label) and
/// the session's value combined from them (``run`` nil); a session of one run has only the
/// latter.
public struct VisitMetric: Equatable, Sendable {
    public var modality: String
    public var region: String
    public var metric: String
    /// NaN when the number is not available (written `n/a`).
    public var value: Double
    /// The run label for a per-run value; nil for the session's value.
    public var run: String?

    public init(modality: String, region: String, metric: String, value: Double, run: String? = nil) {
        self.modality = modality
        self.region = region
        self.metric = metric
        self.value = value
        self.run = run
    }

    /// Equal when the keys match and the values are equal or both n/a.
    public static func == (lhs: VisitMetric, rhs: VisitMetric) -> Bool {
        lhs.modality == rhs.modality && lhs.region == rhs.region && lhs.metric == rhs.metric && lhs.run == rhs.run
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// The region name used for whole-brain (whole-mask) numbers.
public let wholeBrainRegion = "whole_brain"
