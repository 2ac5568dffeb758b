import Foundation

/// The session's values of a task scanned in several runs, from the runs' own values.
///
/// Each run is weighted by the volumes it kept after dropping and censoring (`volumes_kept`),
/// so a short or heavily censored run counts less:
/// - correlations and their means (`conn_mean`, `conn_within_mean`, `conn_between_mean`) are
///   averaged in Fisher z, z̄ = Σ wᵢ atanh(rᵢ) / Σ wᵢ, and returned as tanh(z̄), as
///   correlations from independent samples are combined (Fisher 1921; Silver & Dunlap 1987);
/// - counts of volumes (`volumes_kept`, `volumes_censored`) are summed, and
///   `censored_fraction` is the censored share of the volumes of all runs;
/// - every other metric is the weighted mean of the runs' values.
///
/// A run whose value is n/a is left out of that metric (and its weight with it); a metric n/a
/// in every run is n/a for the session.
public enum RunCombination {
    /// Metrics whose values are Pearson correlations, combined in Fisher z.
    public static let correlationMetrics: Set<String> = ["conn_mean", "conn_within_mean", "conn_between_mean"]
    /// Metrics that count volumes, summed over the runs.
    public static let countMetrics: Set<String> = ["volumes_kept", "volumes_censored"]

    /// The runs' metrics tagged with their run label, then the session's values (run nil),
    /// in the order of the first run's metrics.
    /// - Parameter runs: each run's label and metrics (all runs of one modality).
    public static func combine(_ runs: [(label: String, metrics: [VisitMetric])]) -> [VisitMetric] {
        let tagged = runs.flatMap { run in run.metrics.map { metric in var m = metric; m.run = run.label; return m } }
        let weights = runs.map { run in
            run.metrics.first { $0.region == wholeBrainRegion && $0.metric == "volumes_kept" }?.value ?? .nan
        }
        func key(_ m: VisitMetric) -> String { m.modality + "\t" + m.region + "\t" + m.metric }
        let values = runs.map { run in Dictionary(run.metrics.map { (key($0), $0.value) }, uniquingKeysWith: { a, _ in a }) }
        var session: [VisitMetric] = []
        var seen = Set<String>()
        for metric in runs.flatMap(\.metrics) where seen.insert(key(metric)).inserted {
            let perRun = values.map { $0[key(metric)] ?? .nan }
            var combined = metric
            combined.run = nil
            combined.value = combine(perRun, weights: weights, metric: metric.metric, allValues: values)
            session.append(combined)
        }
        return tagged + session
    }

    static func combine(_ values: [Double], weights: [Double], metric: String, allValues: [[String: Double]]) -> Double {
        if countMetrics.contains(metric) {
            let present = values.filter(\.isFinite)
            return present.isEmpty ? .nan : present.reduce(0, +)
        }
        if metric == "censored_fraction" {
            let key = "func\t\(wholeBrainRegion)\t"
            let censored = allValues.map { $0[key + "volumes_censored"] ?? .nan }
            let kept = allValues.map { $0[key + "volumes_kept"] ?? .nan }
            let total = zip(censored, kept).filter { $0.isFinite && $1.isFinite }
            let all = total.reduce(0.0) { $0 + $1.0 + $1.1 }
            return all > 0 ? total.reduce(0.0) { $0 + $1.0 } / all : .nan
        }
        var sum = 0.0, weight = 0.0
        for (value, w) in zip(values, weights) where value.isFinite && w.isFinite && w > 0 {
            let x = correlationMetrics.contains(metric) ? atanh(max(-1 + 1e-15, min(1 - 1e-15, value))) : value
            sum += w * x
            weight += w
        }
        guard weight > 0 else { return .nan }
        return correlationMetrics.contains(metric) ? tanh(sum / weight) : sum / weight
    }
}
