import Dispatch
import Foundation
import NIfTI
import SlabParallel

/// Region-mean time series of a BOLD run, computed by streaming the 4D file one volume at
/// a time, with the per-voxel statistics needed for tSNR gathered on the way.
public struct RegionalTimeSeries: Sendable {
    /// `series[r][t]`: the mean over region r's brain voxels at volume t (NaN for regions
    /// with no brain voxel).
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
    public var header: NIfTIHeader

    /// Fraction of each region's label voxels that lie in the brain mask.
    public var coverage: [Double] {
        zip(brainVoxels, labelVoxels).map { $1 == 0 ? 0 : Double($0) / Double($1) }
    }
}

public enum RegionalTimeSeriesExtractor {
    /// Streams `boldPath` and averages each region's voxels at every volume.
    ///
    /// - Parameters:
    ///   - labels: one label per voxel of the BOLD grid.
    ///   - regionIndexes: the label values of the regions, in output order.
    ///   - brainMask: voxels to use; nil means the voxels whose first volume is finite and
    ///     non-zero (fMRIPrep writes zeros outside its brain mask).
    ///   - skipVolumesForTSNR: leading non-steady-state volumes left out of tSNR.
    ///   - threads: regions are split across threads; every region's sum runs in voxel order
    ///     on one thread, so the result does not depend on the thread count.
    public static func extract(
        boldPath: String, labels: [Int32], regionIndexes: [Int], brainMask: [Bool]?,
        skipVolumesForTSNR: Int, threads: Int
    ) throws -> RegionalTimeSeries {
        let reader = try NIfTIFile.volumes(boldPath)
        reader.threads = threads
        // Inflate the next volume while this one is summed (the same sums, sooner), and share
        // the per-volume sums between threads, where a volume is large enough to pay for the
        // hand-over (measured on the demo trial's 24x28x20 runs: both cost more than they saved).
        let parallelVolumes = reader.header.voxelsPerVolume >= minimumParallelVolume
        reader.readsAhead = parallelVolumes
        let volumeThreads = parallelVolumes ? threads : 1
        let header = reader.header
        let voxelCount = header.voxelsPerVolume
        guard header.volumeCount >= 2 else {
            throw PipelineError(boldPath, "a BOLD run needs a 4D image, this one has \(header.volumeCount) volume")
        }
        guard labels.count == voxelCount else {
            throw PipelineError(boldPath, "the label image has \(labels.count) voxels, a volume has \(voxelCount)")
        }
        var volume: [Float] = []
        guard try reader.next(into: &volume) else {
            throw PipelineError(boldPath, "no volumes")
        }
        let mask: [Bool]
        if let brainMask {
            guard brainMask.count == voxelCount else {
                throw PipelineError(boldPath, "the brain mask has \(brainMask.count) voxels, a volume has \(voxelCount)")
            }
            mask = brainMask
        } else {
            mask = volume.map { $0.isFinite && $0 != 0 }
        }
        // Voxel lists per region, in voxel order.
        var position = [Int: Int]()
        for (r, index) in regionIndexes.enumerated() { position[index] = r }
        var members = [[Int32]](repeating: [], count: regionIndexes.count)
        var labelVoxels = [Int](repeating: 0, count: regionIndexes.count)
        for voxel in 0..<voxelCount where labels[voxel] != 0 {
            guard let r = position[Int(labels[voxel])] else { continue }
            labelVoxels[r] += 1
            if mask[voxel] { members[r].append(Int32(voxel)) }
        }
        let maskIndexes = (0..<voxelCount).filter { mask[$0] }.map(Int32.init)
        let regionCount = regionIndexes.count
        let volumes = header.volumeCount
        // series stored region-major: sums[r * volumes + t].
        var sums = [Double](repeating: .nan, count: regionCount * volumes)
        var nonFiniteCounts = [Int](repeating: 0, count: regionCount)
        // Welford accumulators for voxelwise tSNR over the brain mask.
        var voxelMean = [Double](repeating: 0, count: maskIndexes.count)
        var voxelM2 = [Double](repeating: 0, count: maskIndexes.count)
        var tsnrSamples = 0
        var t = 0
        repeat {
            let time = t
            volume.withUnsafeBufferPointer { valuesBuffer in
                let values = SharedReadBuffer(valuesBuffer)
                sums.withUnsafeMutableBufferPointer { sumsBuffer in
                    nonFiniteCounts.withUnsafeMutableBufferPointer { nonFiniteBuffer in
                        members.withUnsafeBufferPointer { listsBuffer in
                            let out = SharedBuffer(sumsBuffer), bad = SharedBuffer(nonFiniteBuffer)
                            let lists = SharedReadBuffer(listsBuffer)
                            // Each region is summed in voxel order by one slab: thread-count independent.
                            forEachSlab(count: regionCount, threads: volumeThreads) { regions in
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
                        }
                    }
                }
            }
            if t >= skipVolumesForTSNR {
                tsnrSamples += 1
                let n = Double(tsnrSamples)
                volume.withUnsafeBufferPointer { valuesBuffer in
                    voxelMean.withUnsafeMutableBufferPointer { meanBuffer in
                        voxelM2.withUnsafeMutableBufferPointer { m2Buffer in
                            maskIndexes.withUnsafeBufferPointer { indexBuffer in
                                let values = SharedReadBuffer(valuesBuffer), indexes = SharedReadBuffer(indexBuffer)
                                let mean = SharedBuffer(meanBuffer), m2 = SharedBuffer(m2Buffer)
                                forEachSlab(count: indexes.count, threads: volumeThreads) { range in
                                    for k in range {
                                        let x = Double(values[Int(indexes[k])])
                                        let delta = x - mean[k]
                                        mean[k] += delta / n
                                        m2[k] += delta * (x - mean[k])
                                    }
                                }
                            }
                        }
                    }
                }
            }
            t += 1
        } while try reader.next(into: &volume)

        // Voxelwise tSNR, then its mean per region and over the brain.
        var voxelTSNR = [Double](repeating: .nan, count: voxelCount)
        var brainSum = 0.0, brainUsed = 0
        if tsnrSamples >= 2 {
            for (k, voxel) in maskIndexes.enumerated() {
                let sd = (voxelM2[k] / Double(tsnrSamples - 1)).squareRoot()
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
        let series = (0..<regionCount).map { r in Array(sums[(r * volumes)..<((r + 1) * volumes)]) }
        return RegionalTimeSeries(
            series: series, labelVoxels: labelVoxels, brainVoxels: members.map(\.count),
            regionTSNR: regionTSNR, wholeBrainTSNR: brainUsed > 0 ? brainSum / Double(brainUsed) : .nan,
            maskVoxels: maskIndexes.count, nonFiniteValues: nonFiniteCounts.reduce(0, +), header: header)
    }
}

/// Voxels per volume below which per-volume work stays on one thread and the next volume is
/// not read ahead: handing 150 volumes of 24x28x20 voxels to a second thread cost more than it
/// saved (the demo trial's fMRI step: 0.21 s of the batch's per-visit time), while 64x64x36
/// volumes gain. The results are the same either way.
let minimumParallelVolume = 65_536

