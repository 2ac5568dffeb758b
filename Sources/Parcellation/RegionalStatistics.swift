// Deterministic per-region summaries of voxel-wise maps.

import SlabParallel

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

/// Where a percentile lies among n sorted values, with numpy's default ("linear", Hyndman &
/// Fan 1996 type 7) definition: position h = (n − 1) p / 100 between the order statistics
/// x[⌊h⌋] and x[⌊h⌋+1].
struct PercentilePosition {
    /// ⌊h⌋, the rank (from 0) of the lower order statistic.
    var lower: Int
    /// The rank of the upper order statistic (the lower one at the last rank).
    var upper: Int
    /// h − ⌊h⌋.
    var fraction: Double

    /// - Parameters:
    ///   - n: the number of values, at least 1.
    ///   - percent: 0...100 (clamped).
    init(count n: Int, percent: Double) {
        let h = Double(n - 1) * min(100, max(0, percent)) / 100
        lower = min(n - 1, max(0, Int(h.rounded(.down))))
        upper = min(n - 1, lower + 1)
        fraction = h - Double(lower)
    }

    /// x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]), evaluated as numpy's `_lerp` (from the upper
    /// end when h − ⌊h⌋ >= 0.5).
    /// - Parameters:
    ///   - a: the order statistic at ``lower``.
    ///   - b: the order statistic at ``upper``.
    func interpolate(_ a: Double, _ b: Double) -> Double {
        let t = fraction
        return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t
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
    let position = PercentilePosition(count: n, percent: percent)
    return position.interpolate(sorted[position.lower], sorted[position.upper])
}

/// Summarises `values` (count n, mean, sample sd, median, p05, p95) over `values`.
///
/// The mean and the sum of squared deviations are accumulated in Double in the order given,
/// so the result depends only on that order. The percentiles are those of
/// ``percentile(sorted:percent:)`` on the values sorted (stably) as Doubles.
public func summarize(_ values: [Float], name: String, index: Int? = nil, network: String? = nil) -> RegionSummary {
    var summary = RegionSummary(name: name, index: index, network: network, count: values.count)
    var scratch = values
    scratch.withUnsafeMutableBufferPointer { summarize(reordering: $0, into: &summary) }
    return summary
}

/// The percentiles a summary reports: median, p05, p95.
private let reportedPercents: [Double] = [50, 5, 95]

/// Fills `summary`'s count and statistics from `values`, one region's included values in
/// voxel order, which it may leave reordered.
///
/// The mean and the sum of squared deviations are accumulated in Double in voxel order. Each
/// percentile needs only the two order statistics around its position, so instead of sorting
/// (a stable merge sort of Doubles, many times slower; docs/benchmarks.md) they are found by
/// ``orderStatistics(_:ranks:)`` on the Floats: Float to Double is exact and
/// monotone, so the values are those the sort would put at those ranks, to the sign of zero.
/// A stable sort keeps −0.0 and +0.0 (which compare equal) in voxel order, so when a selected
/// value is a zero and the region holds a −0.0, its sign is read from the voxel order
/// (``zero(atRank:in:)``); the outputs are then bit for bit those of sorting.
func summarize(reordering values: UnsafeMutableBufferPointer<Float>, into summary: inout RegionSummary) {
    let n = values.count
    summary.count = n
    guard n > 0 else { return }
    var sum = 0.0
    var negativeZeros = 0
    let negativeZero = (-0.0 as Float).bitPattern
    for v in values {
        sum += Double(v)
        negativeZeros &+= v.bitPattern == negativeZero ? 1 : 0
    }
    let mean = sum / Double(n)
    summary.mean = mean
    if n == 1 {
        let only = Double(values[0])
        (summary.median, summary.percentile05, summary.percentile95) = (only, only, only)
        return
    }
    var squares = 0.0
    for v in values {
        let d = Double(v) - mean
        squares += d * d
    }
    summary.standardDeviation = (squares / Double(n - 1)).squareRoot()

    let voxelOrder: [Float]? = negativeZeros > 0 ? Array(values) : nil
    let positions = reportedPercents.map { PercentilePosition(count: n, percent: $0) }
    var ranks: [Int] = []
    for rank in positions.flatMap({ [$0.lower, $0.upper] }).sorted() where ranks.last != rank { ranks.append(rank) }
    let selected = orderStatistics(values, ranks: ranks)
    func orderStatistic(_ rank: Int) -> Double {
        let value = selected[ranks.firstIndex(of: rank)!]
        if value == 0, let voxelOrder { return Double(zero(atRank: rank, in: voxelOrder)) }
        return Double(value)
    }
    let results = positions.map { $0.interpolate(orderStatistic($0.lower), orderStatistic($0.upper)) }
    (summary.median, summary.percentile05, summary.percentile95) = (results[0], results[1], results[2])
}

/// The zero that a stable ascending sort of `values` puts at `rank`, a rank that sort fills
/// with zeros: −0.0 and +0.0 compare equal, so it keeps them in their given order after the
/// negative values.
private func zero(atRank rank: Int, in values: [Float]) -> Float {
    var below = 0
    for v in values where v < 0 { below += 1 }
    var remaining = rank - below
    for v in values where v == 0 {
        if remaining == 0 { return v }
        remaining -= 1
    }
    preconditionFailure("rank \(rank) does not hold a zero")
}

/// The values that an ascending sort of `values` puts at `ranks`, equal (==) to them but for
/// the sign of a zero; `values` may be left reordered.
///
/// Regions of at least ``histogramSelectionMinimum`` values go through a histogram of their
/// values' leading bits (``histogramOrderStatistics(_:ranks:)``), smaller ones through
/// introselect (``introselect(_:_:ranks:)``).
///
/// - Parameters:
///   - values: finite values.
///   - ranks: ascending, distinct, each in `0..<values.count`.
/// - Returns: one value per rank.
func orderStatistics(_ values: UnsafeMutableBufferPointer<Float>, ranks: [Int]) -> [Float] {
    if values.count >= histogramSelectionMinimum && values.count <= Int(UInt32.max) {
        return histogramOrderStatistics(values, ranks: ranks)
    }
    introselect(values, 0..<values.count, ranks: ranks[...])
    return ranks.map { values[$0] }
}

/// From this many values on, a histogram finds order statistics faster than introselect
/// (uniform, narrow-range and tied values alike); below it introselect is faster
/// (docs/benchmarks.md).
let histogramSelectionMinimum = 1 << 14

/// The bits of a Float as an unsigned integer in the order of the values: negatives (bits
/// reversed) below positives (sign bit set), so −0.0 falls just below +0.0.
@inline(__always)
private func orderedKey(_ value: Float) -> UInt32 {
    let bits = value.bitPattern
    return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
}

/// Order statistics through a histogram of the leading 16 bits of ``orderedKey(_:)``
/// (sign, exponent and 7 bits of mantissa: 128 bins per octave, so that even values as
/// narrowly spread as mean diffusivities fill many bins): one pass counts the bins, the
/// cumulative counts name the bin holding each rank, a second pass copies out the values of
/// those few bins, and introselect finishes within each. Two linear passes with predictable
/// branches, where introselect's partitions mispredict about every other comparison.
///
/// - Parameters:
///   - values: finite values, at most `UInt32.max` of them.
///   - ranks: ascending, distinct, each in `0..<values.count`.
/// - Returns: one value per rank.
private func histogramOrderStatistics(_ values: UnsafeMutableBufferPointer<Float>, ranks: [Int]) -> [Float] {
    let binCount = 1 << 16
    var histogram = [UInt32](repeating: 0, count: binCount)
    histogram.withUnsafeMutableBufferPointer { counts in
        for v in values { counts[Int(orderedKey(v) >> 16)] &+= 1 }
    }
    // The bins holding the ranks, ascending, each with the rank of its first value.
    var bins: [(bin: Int, firstRank: Int)] = []
    var binOfRank = [Int](repeating: 0, count: ranks.count) // position in `bins`
    var below = 0, r = 0, bin = 0
    while r < ranks.count {
        let count = Int(histogram[bin])
        if ranks[r] < below + count {
            bins.append((bin, below))
            while r < ranks.count && ranks[r] < below + count {
                binOfRank[r] = bins.count - 1
                r += 1
            }
        }
        below += count
        bin += 1
    }
    // Copy out those bins' values, bin after bin.
    var slotOfBin = [UInt8](repeating: 0, count: binCount) // 1 + position in `bins`; 0 for other bins
    var start = [0]
    for (slot, wanted) in bins.enumerated() {
        slotOfBin[wanted.bin] = UInt8(slot + 1)
        start.append(start[slot] + Int(histogram[wanted.bin]))
    }
    var candidates = [Float](repeating: 0, count: start[bins.count])
    var cursor = start
    candidates.withUnsafeMutableBufferPointer { out in
        slotOfBin.withUnsafeBufferPointer { slotOf in
            for v in values {
                let slot = Int(slotOf[Int(orderedKey(v) >> 16)])
                if slot != 0 {
                    out[cursor[slot - 1]] = v
                    cursor[slot - 1] += 1
                }
            }
        }
        for (slot, wanted) in bins.enumerated() {
            let local = ranks.indices.filter { binOfRank[$0] == slot }.map { ranks[$0] - wanted.firstRank + start[slot] }
            introselect(out, start[slot]..<start[slot + 1], ranks: local[...])
        }
    }
    return ranks.indices.map { candidates[ranks[$0] - bins[binOfRank[$0]].firstRank + start[binOfRank[$0]]] }
}

/// Rearranges `x[range]` so that `x[k]`, for each k in `ranks`, equals (==) the value a sort
/// of `x[range]` puts there: introselect (Musser 1997), a quickselect that follows only the
/// sides holding wanted ranks, with Hoare partitions around a median of three (even splits
/// of tied values) and a sort of the remaining range when the partitions stop shrinking
/// (after 2 log2 n rounds), so it is linear on average and n log n at worst.
///
/// - Parameters:
///   - x: finite values (a NaN breaks the partitions' sentinels).
///   - range: the values to select among.
///   - ranks: ascending, distinct, each in `range`.
private func introselect(_ x: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>, ranks: ArraySlice<Int>) {
    let depth = 2 * (Int.bitWidth - range.count.leadingZeroBitCount)
    select(x, range, ranks, depth: depth)
}

/// Ranges this short are finished by insertion sort.
private let insertionSortLength = 16

private func select(_ x: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>, _ ranks: ArraySlice<Int>, depth: Int) {
    var lo = range.lowerBound, hi = range.upperBound, ranks = ranks, depth = depth
    while !ranks.isEmpty {
        if hi - lo <= insertionSortLength {
            insertionSort(x, lo..<hi)
            return
        }
        if depth == 0 {
            var rest = UnsafeMutableBufferPointer(rebasing: x[lo..<hi])
            rest.sort()
            return
        }
        depth -= 1
        let j = partition(x, lo..<hi)
        // x[lo...j] <= pivot <= x[j+1..<hi]
        let split = ranks.firstIndex { $0 > j } ?? ranks.endIndex
        let left = ranks[..<split], right = ranks[split...]
        if left.isEmpty {
            lo = j + 1
            ranks = right
        } else if right.isEmpty {
            hi = j + 1
            ranks = left
        } else {
            select(x, lo..<(j + 1), left, depth: depth)
            lo = j + 1
            ranks = right
        }
    }
}

/// Hoare's partition of `x[range]` (at least 3 values) around the median of its first, middle
/// and last values. Returns j with every value in `range.lowerBound...j` <= the pivot <= every
/// value in `(j + 1)..<range.upperBound`, both parts non-empty.
@inline(__always)
private func partition(_ x: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>) -> Int {
    let lo = range.lowerBound, last = range.upperBound - 1
    let mid = lo + (last - lo) / 2
    if x[mid] < x[lo] { x.swapAt(mid, lo) }
    if x[last] < x[lo] { x.swapAt(last, lo) }
    if x[last] < x[mid] { x.swapAt(last, mid) }
    let pivot = x[mid]
    var i = lo - 1, j = last + 1
    while true {
        repeat { i += 1 } while x[i] < pivot
        repeat { j -= 1 } while pivot < x[j]
        if i >= j { return j }
        x.swapAt(i, j)
    }
}

private func insertionSort(_ x: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>) {
    guard range.count > 1 else { return }
    for i in (range.lowerBound + 1)..<range.upperBound {
        let value = x[i]
        var j = i
        while j > range.lowerBound && value < x[j - 1] {
            x[j] = x[j - 1]
            j -= 1
        }
        x[j] = value
    }
}

/// Per-region statistics of a voxel-wise map: ``regionalStatistics(maps:mask:atlas:extraMasks:threads:)``
/// for one map.
///
/// - Throws: ``RegionalStatisticsError/sizeMismatch(what:expected:actual:)``.
public func regionalStatistics(values: [Float], mask: [Bool], atlas: Atlas,
                               extraMasks: [(name: String, mask: [Bool])] = [],
                               threads: Int = 1) throws -> [RegionSummary] {
    try regionalStatistics(maps: [values], mask: mask, atlas: atlas, extraMasks: extraMasks, threads: threads)[0]
}

/// Per-region statistics of several voxel-wise maps on one grid (FA, MD, AD, RD), sharing the
/// bucketing of voxels by region.
///
/// Regions, in this order: every atlas entry (in entry order, so by index), then
/// `whole_brain` (all included voxels, labelled or not), then each extra mask (e.g. lesions,
/// normal-appearing white matter), each intersected with the inclusion mask. Voxels with a
/// non-finite value are left out everywhere (a NaN FA outside the fit is no data), map by map.
///
/// One pass buckets the included voxels by label (a counting sort, in voxel order); then each
/// (map, region) pair gathers its finite values in voxel order and is summarised as by
/// ``summarize(_:name:index:network:)``, the pairs spread over threads, largest first. Every
/// summary depends only on its voxels in voxel order, so results are identical for any thread
/// count.
///
/// - Parameters:
///   - maps: the maps, one value per voxel each.
///   - mask: voxels to include (e.g. the brain mask, or where the tensor was fitted).
///   - atlas: the parcellation.
///   - extraMasks: further named regions.
///   - threads: workers over (map, region) pairs.
/// - Returns: per map, one summary per region.
/// - Throws: ``RegionalStatisticsError/sizeMismatch(what:expected:actual:)``.
public func regionalStatistics(maps: [[Float]], mask: [Bool], atlas: Atlas,
                               extraMasks: [(name: String, mask: [Bool])] = [],
                               threads: Int = 1) throws -> [[RegionSummary]] {
    let voxels = atlas.voxelCount
    for (k, values) in maps.enumerated() where values.count != voxels {
        let what = maps.count == 1 ? "value map" : "value map \(k + 1)"
        throw RegionalStatisticsError.sizeMismatch(what: what, expected: voxels, actual: values.count)
    }
    guard mask.count == voxels else {
        throw RegionalStatisticsError.sizeMismatch(what: "inclusion mask", expected: voxels, actual: mask.count)
    }
    for extra in extraMasks where extra.mask.count != voxels {
        throw RegionalStatisticsError.sizeMismatch(what: "mask '\(extra.name)'", expected: voxels, actual: extra.mask.count)
    }
    // Counting sort of the included labelled voxels by region slot, in voxel order.
    let regionCount = atlas.entries.count
    var regionStart = [Int](repeating: 0, count: regionCount + 1)
    var regionVoxels: [Int] = []
    if regionCount > 0 {
        // Slot of each label in `entries` (every image label has an entry, by Atlas's invariant).
        var slotOf = [Int32: Int32]()
        for (slot, entry) in atlas.entries.enumerated() { slotOf[Int32(entry.index)] = Int32(slot) }
        var slotOfVoxel = [Int32](repeating: -1, count: voxels)
        var lastLabel: Int32 = 0, lastSlot: Int32 = -1
        for (i, label) in atlas.labels.enumerated() where label != 0 && mask[i] {
            if label != lastLabel {
                lastLabel = label
                lastSlot = slotOf[label] ?? -1
            }
            slotOfVoxel[i] = lastSlot
        }
        for slot in slotOfVoxel where slot >= 0 { regionStart[Int(slot) + 1] += 1 }
        for r in 0..<regionCount { regionStart[r + 1] += regionStart[r] }
        regionVoxels = [Int](repeating: 0, count: regionStart[regionCount])
        var cursor = regionStart
        for (i, slot) in slotOfVoxel.enumerated() where slot >= 0 {
            regionVoxels[cursor[Int(slot)]] = i
            cursor[Int(slot)] += 1
        }
    }

    // Regions: atlas entries, whole brain, extra masks; at most `sizes[r]` voxels each.
    let extras = extraMasks.map(\.mask)
    let included = mask.reduce(0) { $0 + ($1 ? 1 : 0) }
    let sizes = (0..<regionCount).map { regionStart[$0 + 1] - regionStart[$0] } + [included]
        + extras.map { extra in zip(mask, extra).reduce(0) { $0 + ($1.0 && $1.1 ? 1 : 0) } }
    let blank = atlas.entries.map { RegionSummary(name: $0.name, index: $0.index, network: $0.network, count: 0) }
        + (["whole_brain"] + extraMasks.map(\.name)).map { RegionSummary(name: $0, count: 0) }
    let total = blank.count
    // Pairs (map, region) as map * total + region, largest regions first so that the
    // interleaved workers get similar loads.
    let order = (0..<(maps.count * total)).sorted { a, b in
        let sizeA = sizes[a % total], sizeB = sizes[b % total]
        return sizeA != sizeB ? sizeA > sizeB : a < b
    }
    let voxelsOf = regionVoxels, startOf = regionStart
    var results = [RegionSummary]((0..<maps.count).map { _ in blank }.joined())
    withSharedBuffer(&results) { out in
        forEachInterleaved(count: order.count, threads: threads) { t in
            let pair = order[t]
            let region = pair % total
            var summary = blank[region]
            // One slot more than the region's voxels: the whole-brain and extra-mask loops
            // store every voxel's value and advance only past included ones (no branch to
            // mispredict on a ragged mask).
            withUnsafeTemporaryAllocation(of: Float.self, capacity: sizes[region] + 1) { scratch in
                var n = 0
                maps[pair / total].withUnsafeBufferPointer { values in
                    if region < regionCount {
                        for voxel in voxelsOf[startOf[region]..<startOf[region + 1]] {
                            scratch[n] = values[voxel]
                            n += values[voxel].isFinite ? 1 : 0
                        }
                    } else if region == regionCount {
                        mask.withUnsafeBufferPointer { mask in
                            for voxel in 0..<voxels {
                                scratch[n] = values[voxel]
                                n += mask[voxel] && values[voxel].isFinite ? 1 : 0
                            }
                        }
                    } else {
                        let extra = extras[region - regionCount - 1]
                        mask.withUnsafeBufferPointer { mask in
                            extra.withUnsafeBufferPointer { extra in
                                for voxel in 0..<voxels {
                                    scratch[n] = values[voxel]
                                    n += mask[voxel] && extra[voxel] && values[voxel].isFinite ? 1 : 0
                                }
                            }
                        }
                    }
                }
                summarize(reordering: UnsafeMutableBufferPointer(rebasing: scratch[0..<n]), into: &summary)
            }
            out[pair] = summary
        }
    }
    return (0..<maps.count).map { m in Array(results[(m * total)..<((m + 1) * total)]) }
}
