// Deterministic per-region summaries of a voxel-wise map.

import Dispatch

/// Summary statistics of a map within one region.
public struct RegionSummary: Sendable, Equatable {
    /// Region name: the atlas name, `whole_brain`, or the name given to an extra mask.
    public var name: String
    /// The atlas label, nil for whole-brain and extra-mask regions.
    public var index: Int?
    /// The atlas network, when the atlas has one.
    public var network: String?
    /// Number of voxels included (in the region, in the inclusion mask, with a finite value).
    public var count: Int
    /// Arithmetic mean; nil when count is 0.
    public var mean: Double?
    /// Sample standard deviation sqrt(Σ(x − mean)² / (n − 1)) (numpy `std(ddof=1)`); nil when n < 2.
    public var standardDeviation: Double?
    /// Median (the 50th percentile below); nil when count is 0.
    public var median: Double?
    /// 5th percentile; nil when count is 0.
    public var percentile05: Double?
    /// 95th percentile; nil when count is 0.
    public var percentile95: Double?
}

/// A problem with the inputs of regional statistics.
public enum RegionalStatisticsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An array does not have one entry per atlas voxel.
    case sizeMismatch(what: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .sizeMismatch(what, expected, actual):
            return "\(what) has \(actual) voxels, the atlas has \(expected)"
        }
    }
}

/// The percentile of sorted values with numpy's default ("linear", Hyndman & Fan 1996 type 7)
/// definition: position h = (n − 1) p / 100, value x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]),
/// evaluated as numpy's `_lerp` (from the upper end when h − ⌊h⌋ >= 0.5).
///
/// - Parameters:
///   - sorted: ascending values.
///   - percent: 0...100 (clamped).
/// - Returns: the percentile, or nil for no values.
public func percentile(sorted: [Double], percent: Double) -> Double? {
    let n = sorted.count
    guard n > 0 else { return nil }
    if n == 1 { return sorted[0] }
    let h = Double(n - 1) * min(100, max(0, percent)) / 100
    let lower = min(n - 1, max(0, Int(h.rounded(.down))))
    let upper = min(n - 1, lower + 1)
    let t = h - Double(lower)
    let a = sorted[lower], b = sorted[upper]
    return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t
}

/// Summarises `values` (count n, mean, sample sd, median, p05, p95) over `values`.
///
/// The mean and the sum of squared deviations are accumulated in Double in the order given,
/// so the result depends only on that order.
public func summarize(_ values: [Float], name: String, index: Int? = nil, network: String? = nil) -> RegionSummary {
    var summary = RegionSummary(name: name, index: index, network: network, count: values.count)
    let n = values.count
    guard n > 0 else { return summary }
    var sum = 0.0
    for v in values { sum += Double(v) }
    let mean = sum / Double(n)
    summary.mean = mean
    if n >= 2 {
        var squares = 0.0
        for v in values {
            let d = Double(v) - mean
            squares += d * d
        }
        summary.standardDeviation = (squares / Double(n - 1)).squareRoot()
    }
    var sorted = values.map(Double.init)
    sorted.sort()
    summary.median = percentile(sorted: sorted, percent: 50)
    summary.percentile05 = percentile(sorted: sorted, percent: 5)
    summary.percentile95 = percentile(sorted: sorted, percent: 95)
    return summary
}

/// Per-region statistics of a voxel-wise map.
///
/// Regions, in this order: every atlas entry (in entry order, so by index), then
/// `whole_brain` (all included voxels, labelled or not), then each extra mask (e.g. lesions,
/// normal-appearing white matter), each intersected with the inclusion mask. Voxels with a
/// non-finite value are left out everywhere (a NaN FA outside the fit is no data).
///
/// One pass buckets the included values by label (a counting sort, in voxel order); then each
/// region is summarised by ``summarize(_:name:index:network:)``, regions split over threads.
/// Every region's numbers depend only on its voxels in voxel order, so results are identical
/// for any thread count.
///
/// - Parameters:
///   - values: the map, one value per voxel.
///   - mask: voxels to include (e.g. the brain mask, or where the tensor was fitted).
///   - atlas: the parcellation.
///   - extraMasks: further named regions.
///   - threads: slabs of regions.
/// - Returns: one summary per region.
/// - Throws: ``RegionalStatisticsError/sizeMismatch(what:expected:actual:)``.
public func regionalStatistics(values: [Float], mask: [Bool], atlas: Atlas,
                               extraMasks: [(name: String, mask: [Bool])] = [],
                               threads: Int = 1) throws -> [RegionSummary] {
    let voxels = atlas.voxelCount
    guard values.count == voxels else {
        throw RegionalStatisticsError.sizeMismatch(what: "value map", expected: voxels, actual: values.count)
    }
    guard mask.count == voxels else {
        throw RegionalStatisticsError.sizeMismatch(what: "inclusion mask", expected: voxels, actual: mask.count)
    }
    for extra in extraMasks where extra.mask.count != voxels {
        throw RegionalStatisticsError.sizeMismatch(what: "mask '\(extra.name)'", expected: voxels, actual: extra.mask.count)
    }
    // Slot of each label in `entries` (every image label has an entry, by Atlas's invariant).
    var slotOf = [Int32: Int]()
    for (slot, entry) in atlas.entries.enumerated() { slotOf[Int32(entry.index)] = slot }
    let regionCount = atlas.entries.count
    // Counting sort of the included values by region slot, in voxel order.
    var slotOfVoxel = [Int](repeating: -1, count: voxels)
    var counts = [Int](repeating: 0, count: regionCount)
    var lastLabel: Int32 = 0, lastSlot = -1
    for i in 0..<voxels where mask[i] && values[i].isFinite && atlas.labels[i] != 0 {
        let label = atlas.labels[i]
        if label != lastLabel {
            lastLabel = label
            lastSlot = slotOf[label] ?? -1
        }
        slotOfVoxel[i] = lastSlot
        if lastSlot >= 0 { counts[lastSlot] += 1 }
    }
    var offsets = [Int](repeating: 0, count: regionCount + 1)
    for r in 0..<regionCount { offsets[r + 1] = offsets[r] + counts[r] }
    var bucketed = [Float](repeating: 0, count: offsets[regionCount])
    var cursor = Array(offsets.dropLast())
    for i in 0..<voxels where slotOfVoxel[i] >= 0 {
        let s = slotOfVoxel[i]
        bucketed[cursor[s]] = values[i]
        cursor[s] += 1
    }

    // Region bodies: atlas regions from the buckets, then whole brain and extra masks.
    let names = atlas.entries.map(\.name) + ["whole_brain"] + extraMasks.map(\.name)
    let total = names.count
    let entries = atlas.entries
    let summaries = SummaryStore(count: total)
    let finiteMasked = (0..<voxels).map { mask[$0] && values[$0].isFinite }
    let extras = extraMasks
    let offsetsCopy = offsets
    let bucketedCopy = bucketed
    let work: @Sendable (Range<Int>) -> Void = { regions in
        for r in regions {
            let region: [Float]
            if r < regionCount {
                region = Array(bucketedCopy[offsetsCopy[r]..<offsetsCopy[r + 1]])
            } else if r == regionCount {
                region = (0..<voxels).filter { finiteMasked[$0] }.map { values[$0] }
            } else {
                let extra = extras[r - regionCount - 1].mask
                region = (0..<voxels).filter { finiteMasked[$0] && extra[$0] }.map { values[$0] }
            }
            let entry = r < regionCount ? entries[r] : nil
            summaries.set(r, summarize(region, name: entry?.name ?? names[r], index: entry?.index, network: entry?.network))
        }
    }
    let slabs = max(1, min(threads, total))
    if slabs == 1 {
        work(0..<total)
    } else {
        DispatchQueue.concurrentPerform(iterations: slabs) { slab in
            work((total * slab / slabs)..<(total * (slab + 1) / slabs))
        }
    }
    return summaries.values()
}

/// Preallocated per-region results written by disjoint slabs of regions.
///
/// `@unchecked Sendable`: each index is written by exactly one slab, and `values()` is read
/// only after `concurrentPerform` has returned.
private final class SummaryStore: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<RegionSummary?>
    private let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil, count: count)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    func set(_ index: Int, _ summary: RegionSummary) { storage[index] = summary }

    func values() -> [RegionSummary] { (0..<count).map { storage[$0]! } }
}
