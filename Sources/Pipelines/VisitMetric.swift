/// One number of a visit, as the cohort layer tabulates it: `fa_mean` of region `L_CST`
/// from the `dwi` modality. Metric names are lowercase snake_case with the statistic in them
/// (`fa_mean`, `rd_p95`, `fd_mean`).
///
/// A session with several runs of a task has a value per run (``run`` is the run label) and
/// the session's value combined from them (``run`` nil); a session of one run has only the
/// latter.
///
/// A visit processed with several atlases has the regional values of each (``atlas`` is the
/// atlas's `seg-` name) and, once, the values no atlas changes (``atlas`` nil; see
/// ``AtlasCombination``); a visit of one atlas has ``atlas`` nil throughout.
public struct VisitMetric: Equatable, Sendable {
    public var modality: String
    public var region: String
    public var metric: String
    /// NaN when the number is not available (written `n/a`).
    public var value: Double
    /// The run label for a per-run value; nil for the session's value.
    public var run: String?
    /// The `seg-` name of the atlas that gave a regional value when the visit used several;
    /// nil for a visit of one atlas and for values that do not depend on the atlas.
    public var atlas: String?

    public init(modality: String, region: String, metric: String, value: Double, run: String? = nil, atlas: String? = nil) {
        self.modality = modality
        self.region = region
        self.metric = metric
        self.value = value
        self.run = run
        self.atlas = atlas
    }

    /// Equal when the keys match and the values are equal or both n/a.
    public static func == (lhs: VisitMetric, rhs: VisitMetric) -> Bool {
        lhs.modality == rhs.modality && lhs.region == rhs.region && lhs.metric == rhs.metric && lhs.run == rhs.run
            && lhs.atlas == rhs.atlas
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// The region name used for whole-brain (whole-mask) numbers.
public let wholeBrainRegion = "whole_brain"
