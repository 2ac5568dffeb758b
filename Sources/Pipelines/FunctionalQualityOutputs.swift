import AtomicFiles
import Foundation
import Functional
import NIfTI
import Parcellation
import SlabParallel
import Tabular

/// Brain voxels kept whole for the carpet plot of a run's report: more rows than the plot
/// has pixels (260), few enough that the table stays small (300 x 240 volumes of float32
/// values is about 0.7 MB of text) and quick to write and read.
let carpetRows = 300

extension FunctionalPipeline {
    /// The quality outputs a report shows, all gathered during the one streaming pass (no
    /// extra read of the run):
    /// - `P_stat-mean_boldmap.nii.gz` and `P_stat-tsnr_boldmap.nii.gz`: voxelwise mean over
    ///   time and tSNR (mean / sd) after the non-steady-state volumes, 0 outside the brain;
    /// - `P_desc-censoring_timeseries.tsv` (+ `.json`): per volume the framewise
    ///   displacement, whether it was dropped as non-steady-state, censored for motion or
    ///   for non-finite values, and kept;
    /// - `P_desc-carpet_bold.tsv` (+ `.json`): a sample of brain voxels grouped by region,
    ///   each row one voxel's raw values at every volume.
    ///
    /// The maps and the carpet depend on the stream alone: this starts writing them (with two
    /// threads or more on a second thread, while the series are cleaned and correlated), and
    /// ``finishQualityOutputs(_:_:inputs:qc:)`` writes the censoring table and returns
    /// every path, in the order above.
    static func startStreamOutputs(_ options: FunctionalOptions, inputs: Inputs, regional: RegionalSeries,
                                   inBackground: Bool) throws -> BackgroundWork<(maps: [String], carpet: [String])> {
        try createOutputFolder(options.outputFolder)
        let base = options.outputFolder + "/" + options.prefix
        let (extracted, header, threads) = (regional.extracted, inputs.header, options.threads)
        let (regionNames, repetitionTime) = (inputs.entries.map(\.name), inputs.repetitionTime)
        return BackgroundWork(inBackground: inBackground) {
            let shape = [header.spatialShape.x, header.spatialShape.y, header.spatialShape.z]
            var maps: [String] = []
            for (suffix, values, what) in [("_stat-mean_boldmap.nii.gz", extracted.voxelMean, "mean BOLD"),
                                           ("_stat-tsnr_boldmap.nii.gz", extracted.voxelTSNR, "tSNR")] where values.count == shape.reduce(1, *) {
                try NIfTIFile.write(values, shape: shape, geometry: header, to: base + suffix,
                                    description: "nimetrics \(what)", compressionLevel: 1, threads: threads)
                maps.append(base + suffix)
            }
            let carpet = try writeCarpet(base: base, volumes: header.volumeCount, regionNames: regionNames,
                                         repetitionTime: repetitionTime, extracted: extracted)
            return (maps, carpet)
        }
    }

    /// The censoring table, once the stream outputs are written: every path, in order.
    static func finishQualityOutputs(_ started: BackgroundWork<(maps: [String], carpet: [String])>, _ options: FunctionalOptions,
                                     inputs: Inputs, qc: CleaningQC) throws -> [String] {
        let censoring = try writeCensoring(base: options.outputFolder + "/" + options.prefix, inputs: inputs, qc: qc)
        let written = try started.wait()
        return written.maps + censoring + written.carpet
    }

    static func writeCensoring(base: String, inputs: Inputs, qc: CleaningQC) throws -> [String] {
        let volumes = inputs.header.volumeCount
        let nonFinite = Set(qc.nonFiniteVolumes)
        var table = TSVTable(columns: ["framewise_displacement", "non_steady_state", "censored_motion", "censored_nonfinite", "kept"])
        for t in 0..<volumes {
            let dropped = t < inputs.dummyScans
            let motion = !dropped && (inputs.censor.map { t < $0.count && $0[t] } ?? false)
            let bad = !dropped && nonFinite.contains(t)
            let fd = inputs.framewiseDisplacement.map { t < $0.count ? tsvCell($0[t]) : "n/a" } ?? "n/a"
            table.append([fd, dropped ? "1" : "0", motion ? "1" : "0", bad ? "1" : "0", (dropped || motion || bad) ? "0" : "1"])
        }
        try table.write(to: base + "_desc-censoring_timeseries.tsv")
        let sidecar = JSONValue.object([
            ("framewise_displacement", .object([("Description", .string("framewise displacement from the confounds table (Power et al. 2012)")), ("Units", .string("mm"))])),
            ("non_steady_state", .object([("Description", .string("1: a leading non-steady-state volume, dropped before any processing"))])),
            ("censored_motion", .object([("Description", .string("1: censored, framewise displacement above the threshold (or a later flagged non-steady-state volume)"))])),
            ("censored_nonfinite", .object([("Description", .string("1: censored, a region's mean was not finite at this volume"))])),
            ("kept", .object([("Description", .string("1: the volume entered the connectivity estimates"))])),
            ("RepetitionTime", .number(inputs.repetitionTime)),
            ("GeneratedBy", .string("nimetrics \(NimetricsVersion.string)")),
        ])
        try AtomicFile.write(sidecar.rendered() + "\n", to: base + "_desc-censoring_timeseries.json")
        return [base + "_desc-censoring_timeseries.tsv", base + "_desc-censoring_timeseries.json"]
    }

    static func writeCarpet(base: String, volumes: Int, regionNames: [String], repetitionTime: Double,
                            extracted: RegionalTimeSeries) throws -> [String] {
        var table = TSVTable(columns: ["region", "voxel"] + (0..<volumes).map { "vol\($0)" })
        for (k, row) in extracted.carpet.enumerated() {
            table.append([regionNames[extracted.carpetRegions[k]], String(extracted.carpetVoxels[k])] + row.map { tsvCell($0) })
        }
        try table.write(to: base + "_desc-carpet_bold.tsv")
        let sidecar = JSONValue.object([
            ("Description", .string("A sample of brain voxels for a carpet plot (Power 2017): every k-th brain voxel of each atlas region, grouped by region in atlas order; one row per voxel (its file-order index), one column per volume, raw values")),
            ("MaximumRows", .int(carpetRows)),
            ("RepetitionTime", .number(repetitionTime)),
            ("GeneratedBy", .string("nimetrics \(NimetricsVersion.string)")),
        ])
        try AtomicFile.write(sidecar.rendered() + "\n", to: base + "_desc-carpet_bold.json")
        return [base + "_desc-carpet_bold.tsv", base + "_desc-carpet_bold.json"]
    }
}
