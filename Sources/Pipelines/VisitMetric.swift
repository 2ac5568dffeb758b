/// One number of a visit, as the cohort layer tabulates it: `fa_mean` of region `L_CST`
/// from the `dwi` modality. Metric names are lowercase snake_case with the statistic in them
/// (`fa_mean`, `rd_p95`, `fd_mean`).
public struct VisitMetric: Equatable, Sendable {
    public var modality: String
    public var region: String
    public var metric: String
    /// NaN when the number is not available (written `n/a`).
    public var value: Double

    public init(modality: String, region: String, metric: String, value: Double) {
        self.modality = modality
        self.region = region
        self.metric = metric
        self.value = value
    }

    /// Equal when the keys match and the values are equal or both n/a.
    public static func == (lhs: VisitMetric, rhs: VisitMetric) -> Bool {
        lhs.modality == rhs.modality && lhs.region == rhs.region && lhs.metric == rhs.metric
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// The region name used for whole-brain (whole-mask) numbers.
public let wholeBrainRegion = "whole_brain"
