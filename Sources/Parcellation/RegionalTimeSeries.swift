import SlabParallel

/// Region-mean time series of a 4D series, and the voxelwise statistics of its tSNR.
public struct RegionalTimeSeries: Sendable {
    /// `series[r][t]`: the mean over region r's brain voxels at volume t (NaN for regions
    /// with no brain voxel, or none finite at t).
    public var series: [[Double]]
    /// Voxels of each region in the label image, and of those, inside the brain mask.
    public var labelVoxels: [Int]
    public var brainVoxels: [Int]
    /// Mean voxelwise tSNR (mean over time / sd over time) of each region's brain voxels,
    /// after the non-steady-state volumes; NaN when the region has no usable voxel.
    public var regionTSNR: [Double]
    /// Mean voxelwise tSNR over the whole brain mask.
    public var wholeBrainTSNR: Double
    /// Brain-mask voxels.
    public var maskVoxels: Int
    /// Non-finite voxel values met (left out of the region means at their time point).
    public var nonFiniteValues: Int
    /// Voxelwise mean over time and tSNR (after the non-steady-state volumes), one value per
    /// voxel of the grid, 0 outside the brain mask and where tSNR is undefined.
    public var voxelMean: [Float] = []
    public var voxelTSNR: [Float] = []
    /// A sample of brain voxels for a carpet plot (Power 2017), grouped by region in region
    /// order: `carpet[k]` is voxel `carpetVoxels[k]` (file-order index) at every volume,
    /// `carpetRegions[k]` its region's position.
    public var carpet: [[Float]] = []
    public var carpetVoxels: [Int] = []
    public var carpetRegions: [Int] = []

    /// Fraction of each region's label voxels that lie in the brain mask.
    public var coverage: [Double] {
        zip(brainVoxels, labelVoxels).map { $1 == 0 ? 0 : Double($0) / Double($1) }
    }
}

/// Builds ``RegionalTimeSeries`` one volume at a time, so a 4D series is never held whole.
///
/// For each volume, each region's mean over its brain voxels (non-finite values left out),
/// and for every brain voxel the sums of its values and squared values shifted by its first
/// value, from which voxelwise tSNR = mean / sd (sd with n - 1) is taken at the end: the
/// shifted-data algorithm (Chan, Golub & LeVeque 1983, "Algorithms for computing the sample
/// variance", Am Stat 37:242), as accurate as Welford's update for a series that stays near
/// its first value, with no division per voxel and volume. Each region is summed in voxel
/// order by one slab and each voxel updated by the slab that holds it, so the result does not
/// depend on the thread count.
public struct RegionalTimeSeriesAccumulator {
    private let volumes: Int
    private let skipVolumesForTSNR: Int
    private let threads: Int
    private let voxelCount: Int
    /// Brain voxels of each region, in voxel order.
    private let members: [[Int32]]
    private let labelVoxels: [Int]
    private let maskIndexes: [Int32]
    /// Region means, region-major: `sums[r * volumes + t]`.
    private var sums: [Double]
    private var nonFiniteCounts: [Int]
    /// Per brain voxel: its first tSNR value (the shift K), and the sums of x - K and (x - K)².
    private var voxelShift: [Double]
    private var voxelSum: [Double]
    private var voxelSquares: [Double]
    private var tsnrSamples = 0
    private var time = 0
    /// The carpet's voxels and regions, and their values, row-major: `carpet[k * volumes + t]`.
    private let carpetVoxels: [Int32]
    private let carpetRegions: [Int]
    private var carpet: [Float]

    /// - Parameters:
    ///   - labels: one label per voxel.
    ///   - regionIndexes: the label values of the regions, in output order.
    ///   - mask: the brain voxels (one entry per voxel).
    ///   - volumes: volumes in the series.
    ///   - skipVolumesForTSNR: leading non-steady-state volumes left out of tSNR.
    ///   - threads: slabs per volume; the result does not depend on it.
    ///   - carpetRows: at most this many brain voxels are kept whole for a carpet plot: every
    ///     k-th voxel of each region's list, k = ceil(brain voxels in regions / carpetRows).
    public init(labels: [Int32], regionIndexes: [Int], mask: [Bool], volumes: Int, skipVolumesForTSNR: Int, threads: Int,
                carpetRows: Int = 0) {
        precondition(labels.count == mask.count, "one label and one mask entry per voxel")
        voxelCount = labels.count
        self.volumes = volumes
        self.skipVolumesForTSNR = skipVolumesForTSNR
        self.threads = threads
        var position = [Int: Int]()
        for (r, index) in regionIndexes.enumerated() { position[index] = r }
        var members = [[Int32]](repeating: [], count: regionIndexes.count)
        var labelVoxels = [Int](repeating: 0, count: regionIndexes.count)
        for voxel in 0..<labels.count where labels[voxel] != 0 {
            guard let r = position[Int(labels[voxel])] else { continue }
            labelVoxels[r] += 1
            if mask[voxel] { members[r].append(Int32(voxel)) }
        }
        self.members = members
        self.labelVoxels = labelVoxels
        let inRegions = members.reduce(0) { $0 + $1.count }
        var sampled: [Int32] = [], sampledRegions: [Int] = []
        if carpetRows > 0, inRegions > 0 {
            let stride = (inRegions + carpetRows - 1) / carpetRows
            for (r, list) in members.enumerated() {
                for k in Swift.stride(from: 0, to: list.count, by: stride) { sampled.append(list[k]); sampledRegions.append(r) }
            }
        }
        carpetVoxels = sampled
        carpetRegions = sampledRegions
        carpet = [Float](repeating: .nan, count: sampled.count * volumes)
        maskIndexes = (0..<labels.count).filter { mask[$0] }.map(Int32.init)
        sums = [Double](repeating: .nan, count: regionIndexes.count * volumes)
        nonFiniteCounts = [Int](repeating: 0, count: regionIndexes.count)
        voxelShift = [Double](repeating: 0, count: maskIndexes.count)
        voxelSum = [Double](repeating: 0, count: maskIndexes.count)
        voxelSquares = [Double](repeating: 0, count: maskIndexes.count)
    }

    /// Adds the next volume (one value per voxel). Volumes past `volumes` are ignored.
    public mutating func add(_ volume: [Float]) {
        precondition(volume.count == voxelCount, "a volume has one value per voxel")
        guard time < volumes else { return }
        let time = self.time, volumes = self.volumes, threads = self.threads
        for (k, voxel) in carpetVoxels.enumerated() { carpet[k * volumes + time] = volume[Int(voxel)] }
        let updatesTSNR = time >= skipVolumesForTSNR
        let firstTSNR = updatesTSNR && tsnrSamples == 0
        if updatesTSNR { tsnrSamples += 1 }
        volume.withUnsafeBufferPointer { valuesBuffer in
        members.withUnsafeBufferPointer { listsBuffer in
        maskIndexes.withUnsafeBufferPointer { indexBuffer in
        sums.withUnsafeMutableBufferPointer { sumsBuffer in
        nonFiniteCounts.withUnsafeMutableBufferPointer { nonFiniteBuffer in
        voxelShift.withUnsafeMutableBufferPointer { shiftBuffer in
        voxelSum.withUnsafeMutableBufferPointer { sumBuffer in
        voxelSquares.withUnsafeMutableBufferPointer { squaresBuffer in
            let values = SharedReadBuffer(valuesBuffer), lists = SharedReadBuffer(listsBuffer)
            let indexes = SharedReadBuffer(indexBuffer)
            let out = SharedBuffer(sumsBuffer), bad = SharedBuffer(nonFiniteBuffer)
            let shift = SharedBuffer(shiftBuffer), sum = SharedBuffer(sumBuffer), squares = SharedBuffer(squaresBuffer)
            forEachSlab(count: lists.count, threads: threads) { regions in
                for r in regions {
                    var sum = 0.0
                    var used = 0
                    for voxel in lists[r] {
                        let v = values[Int(voxel)]
                        if v.isFinite { sum += Double(v); used += 1 } else { bad[r] += 1 }
                    }
                    out[r * volumes + time] = used > 0 ? sum / Double(used) : .nan
                }
            }
            guard updatesTSNR else { return }
            forEachSlab(count: indexes.count, threads: threads) { range in
                if firstTSNR {
                    for k in range { shift[k] = Double(values[Int(indexes[k])]) }
                }
                for k in range {
                    let d = Double(values[Int(indexes[k])]) - shift[k]
                    sum[k] += d
                    squares[k] += d * d
                }
            }
        }}}}}}}}
        self.time += 1
    }

    /// The series and tSNR of the volumes added (region means of volumes never added are NaN).
    public func result() -> RegionalTimeSeries {
        var voxelTSNR = [Double](repeating: .nan, count: voxelCount)
        var brainSum = 0.0, brainUsed = 0
        let n = Double(tsnrSamples)
        let voxelMean = maskIndexes.indices.map { voxelShift[$0] + voxelSum[$0] / n }
        if tsnrSamples >= 2 {
            for (k, voxel) in maskIndexes.enumerated() {
                // Σ(x - K)² - (Σ(x - K))²/n: the sum of squared deviations, never below 0.
                let deviations = max(0, voxelSquares[k] - voxelSum[k] * voxelSum[k] / n)
                let sd = (deviations / Double(tsnrSamples - 1)).squareRoot()
                guard voxelMean[k].isFinite, sd > 0 else { continue }
                let value = voxelMean[k] / sd
                voxelTSNR[Int(voxel)] = value
                brainSum += value
                brainUsed += 1
            }
        }
        let regionTSNR: [Double] = members.map { list in
            var sum = 0.0, used = 0
            for voxel in list where voxelTSNR[Int(voxel)].isFinite { sum += voxelTSNR[Int(voxel)]; used += 1 }
            return used > 0 ? sum / Double(used) : .nan
        }
        let series = (0..<members.count).map { r in Array(sums[(r * volumes)..<((r + 1) * volumes)]) }
        var meanMap = [Float](repeating: 0, count: voxelCount), tsnrMap = [Float](repeating: 0, count: voxelCount)
        if tsnrSamples >= 1 {
            for (k, voxel) in maskIndexes.enumerated() where voxelMean[k].isFinite { meanMap[Int(voxel)] = Float(voxelMean[k]) }
        }
        for (voxel, value) in voxelTSNR.enumerated() where value.isFinite { tsnrMap[voxel] = Float(value) }
        var result = RegionalTimeSeries(
            series: series, labelVoxels: labelVoxels, brainVoxels: members.map(\.count),
            regionTSNR: regionTSNR, wholeBrainTSNR: brainUsed > 0 ? brainSum / Double(brainUsed) : .nan,
            maskVoxels: maskIndexes.count, nonFiniteValues: nonFiniteCounts.reduce(0, +))
        result.voxelMean = meanMap
        result.voxelTSNR = tsnrMap
        result.carpet = (0..<carpetVoxels.count).map { k in Array(carpet[(k * volumes)..<((k + 1) * volumes)]) }
        result.carpetVoxels = carpetVoxels.map(Int.init)
        result.carpetRegions = carpetRegions
        return result
    }
}
