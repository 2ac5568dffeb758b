import Foundation
import NIfTI
import Parcellation

public enum RegionalTimeSeriesExtractor {
    /// Streams `boldPath` one volume at a time and averages each region's voxels at every
    /// volume, with the voxelwise tSNR gathered on the way (``RegionalTimeSeriesAccumulator``).
    ///
    /// - Parameters:
    ///   - labels: one label per voxel of the BOLD grid.
    ///   - regionIndexes: the label values of the regions, in output order.
    ///   - brainMask: voxels to use; nil means the voxels whose first volume is finite and
    ///     non-zero (fMRIPrep writes zeros outside its brain mask).
    ///   - skipVolumesForTSNR: leading non-steady-state volumes left out of tSNR.
    ///   - threads: slabs per volume; the result does not depend on it.
    ///   - carpetRows: brain voxels kept whole for a carpet plot (0: none).
    public static func extract(
        boldPath: String, labels: [Int32], regionIndexes: [Int], brainMask: [Bool]?,
        skipVolumesForTSNR: Int, threads: Int, carpetRows: Int = 0
    ) throws -> RegionalTimeSeries {
        let reader = try NIfTIFile.volumes(boldPath)
        reader.threads = threads
        // Inflating the next volume while this one is summed, and splitting a volume's sums
        // across threads, pay only for volumes large enough (docs/benchmarks.md).
        let parallelVolumes = reader.header.voxelsPerVolume >= minimumParallelVolume
        reader.readsAhead = parallelVolumes
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
        if let brainMask, brainMask.count != voxelCount {
            throw PipelineError(boldPath, "the brain mask has \(brainMask.count) voxels, a volume has \(voxelCount)")
        }
        let mask = brainMask ?? volume.map { $0.isFinite && $0 != 0 }
        var accumulator = RegionalTimeSeriesAccumulator(
            labels: labels, regionIndexes: regionIndexes, mask: mask, volumes: header.volumeCount,
            skipVolumesForTSNR: skipVolumesForTSNR, threads: parallelVolumes ? reader.threadsForVolumeWork : 1, carpetRows: carpetRows)
        repeat {
            accumulator.add(volume)
        } while try reader.next(into: &volume)
        return accumulator.result()
    }
}

/// Voxels per volume below which per-volume work stays on one thread and the next volume is
/// not read ahead (the hand-over costs more than it saves on small volumes; the results are
/// the same either way; docs/benchmarks.md has the measurement).
let minimumParallelVolume = 65_536
