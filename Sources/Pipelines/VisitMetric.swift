/// One number of a visit, as the cohort layer tabulates it: `fa_mean` of region `L_CST`
/// from the `dwi` modality.
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
}

/// The region name used for whole-brain (whole-mask) numbers.
public let wholeBrainRegion = "whole_brain"
