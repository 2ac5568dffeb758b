import AtomicFiles
import Foundation
import Functional
import NIfTI
import Tabular

/// One BOLD run to process: the files it is read from, the parameters, and where the
/// outputs go.
public struct FunctionalOptions: Sendable {
    public var boldPath: String
    public var atlasPath: String
    /// The atlas's label table; nil: the `.tsv` beside the atlas, if present.
    public var atlasTablePath: String?
    /// Brain mask on the BOLD grid; nil: voxels non-zero in the first volume.
    public var maskPath: String?
    /// fMRIPrep `desc-confounds_timeseries.tsv`.
    public var confoundsPath: String?
    public var parameters = FunctionalParameters()
    public var threads = 1
    public var outputFolder: String
    public var prefix: String

    public init(boldPath: String, atlasPath: String, outputFolder: String, prefix: String? = nil) {
        self.boldPath = boldPath
        self.atlasPath = atlasPath
        self.outputFolder = outputFolder
        self.prefix = prefix ?? OutputNaming.prefix(fromInput: boldPath)
    }

    /// The confound model applied to this run.
    public var strategy: ConfoundStrategy { parameters.effectiveStrategy(hasConfounds: confoundsPath != nil) }

    /// Every file the pipeline reads for these options, with its role, in a fixed order: a
    /// batch hashes them all, so editing any of them (the sidecar that gives the TR, the
    /// atlas's label table) redoes the visit.
    public var inputFiles: [(role: String, path: String)] {
        let sidecar = OutputNaming.sidecarPath(forImage: boldPath)
        let all: [(String, String?)] = [
            ("bold", boldPath), ("bold_sidecar", FileManager.default.fileExists(atPath: sidecar) ? sidecar : nil),
            ("confounds", confoundsPath), ("brain_mask", maskPath), ("func_atlas", atlasPath),
            ("func_atlas_table", LabelImage.tablePath(for: atlasPath, explicit: atlasTablePath)),
        ]
        return all.compactMap { role, path in path.map { (role, $0) } }
    }
}

/// What one run gave: the matrices, the summaries, QC and the files written.
public struct FunctionalResult: Sendable {
    public var regionNames: [String]
    public var pearson: SquareMatrix
    public var metrics: [VisitMetric]
    public var files: [String]
    public var warnings: [String]
    public var qc: CleaningQC
    public var repetitionTime: Double
}

/// Regional time series -> denoising -> connectivity and amplitude, for one BOLD run.
///
/// Order of operations (every step documented in README.md):
/// 1. region means, streamed volume by volume; regions under the coverage threshold n/a;
/// 2. drop the first `dummyScans` volumes;
/// 3. remove constant and linear trend from signals and confounds;
/// 4. band-pass both with the same zero-phase FFT filter;
/// 5. regress the filtered confounds out of the filtered signals;
/// 6. censor volumes with framewise displacement above the threshold;
/// 7. Pearson (and partial) correlation, Fisher z, summaries.
/// ALFF/fALFF use steps 1-3 and 5 without filtering or censoring (Zou 2008).
public enum FunctionalPipeline {
    public static func run(_ options: FunctionalOptions) throws -> FunctionalResult {
        var warnings: [String] = []
        var timer = PhaseTimer("fmri")
        let bold = try NIfTIFile.readHeader(options.boldPath)
        guard bold.volumeCount >= 3 else {
            throw PipelineError(options.boldPath, "a BOLD run needs at least 3 volumes, this one has \(bold.volumeCount)")
        }
        let repetitionTime = try resolveRepetitionTime(options, header: bold, warnings: &warnings)
        try checkBand(options, volumes: bold.volumeCount - options.parameters.dummyScans, repetitionTime: repetitionTime)

        // Atlas and regions.
        let (labels, atlasResampled) = try LabelImage.readLabels(options.atlasPath, onto: bold, resample: options.parameters.resampleAtlas, gridName: "BOLD")
        let entries = try LabelImage.entries(labels: labels, atlasPath: options.atlasPath, tablePath: options.atlasTablePath)
        var mask: [Bool]?
        if let maskPath = options.maskPath {
            let maskImage = try NIfTIFile.read(maskPath)
            guard maskImage.header.hasSameGrid(as: bold) else {
                throw PipelineError(maskPath, "the brain mask's grid differs from the BOLD grid")
            }
            mask = maskImage.voxels.prefix(bold.voxelsPerVolume).map { $0 > 0 }
        }

        // Confounds, read before the long streaming step so a bad table fails fast.
        let confoundTable: [String: [Double]]? = try options.confoundsPath.map {
            try readConfounds($0, expectedRows: bold.volumeCount)
        }
        let confounds: ConfoundColumns?
        if options.strategy == .none {
            confounds = nil
        } else {
            guard let confoundTable, let path = options.confoundsPath else {
                throw PipelineError(options.boldPath, "confound strategy \(options.strategy) needs a confounds TSV")
            }
            do {
                confounds = try resolveConfounds(options.strategy, available: confoundTable)
            } catch {
                throw PipelineError(path, "\(error)")
            }
        }
        var censor: [Bool]?
        var framewiseDisplacement: [Double]?
        if let table = confoundTable { framewiseDisplacement = table["framewise_displacement"] }
        if let threshold = options.parameters.fdThreshold {
            guard let fd = framewiseDisplacement else {
                throw PipelineError(options.confoundsPath ?? options.boldPath,
                                    "--fd-threshold needs a framewise_displacement column in the confounds")
            }
            censor = fd.map { $0.isFinite && $0 > threshold }
        }

        let extracted = try RegionalTimeSeriesExtractor.extract(
            boldPath: options.boldPath, labels: labels, regionIndexes: entries.map(\.index),
            brainMask: mask, skipVolumesForTSNR: options.parameters.dummyScans, threads: options.threads)
        timer.lap("stream + region means")
        let coverage = extracted.coverage
        var series = extracted.series
        for r in series.indices where coverage[r] < options.parameters.minimumCoverage || extracted.brainVoxels[r] == 0 {
            series[r] = [Double](repeating: .nan, count: bold.volumeCount)
        }
        let uncovered = entries.indices.filter { series[$0].first?.isNaN ?? true }
        if !uncovered.isEmpty {
            warnings.append("\(uncovered.count) region(s) below \(options.parameters.minimumCoverage) coverage reported as n/a: "
                            + uncovered.prefix(10).map { entries[$0].name }.joined(separator: ", "))
        }

        let matrix = try wrap(options.boldPath) { try TimeSeriesMatrix(regionSeries: series) }
        let cleaningOptions = CleaningOptions(
            repetitionTime: repetitionTime, nonSteadyStateVolumes: options.parameters.dummyScans,
            detrend: true, highPass: options.parameters.highPass, lowPass: options.parameters.lowPass)
        let cleaned = try wrap(options.boldPath) {
            try cleanSignals(matrix, confounds: confounds, censor: censor, options: cleaningOptions, threads: options.threads)
        }
        let pearson = try wrap(options.boldPath) { try pearsonCorrelation(cleaned.signals, threads: options.threads) }
        let fisher = fisherZ(pearson)
        let partial: SquareMatrix? = options.parameters.partialCorrelation
            ? try wrap(options.boldPath) { try partialCorrelation(cleaned.signals, threads: options.threads) } : nil

        timer.lap("cleaning + connectivity")
        // Amplitude: detrended, confound-regressed, unfiltered, uncensored.
        var amplitudeOptions = cleaningOptions
        amplitudeOptions.highPass = nil
        amplitudeOptions.lowPass = nil
        let unfiltered = try wrap(options.boldPath) {
            try cleanSignals(matrix, confounds: confounds, censor: nil, options: amplitudeOptions, threads: options.threads)
        }
        let amplitude = try wrap(options.boldPath) {
            try amplitudeOfLowFrequencyFluctuations(unfiltered.signals, repetitionTime: repetitionTime,
                                                    band: (options.parameters.amplitudeBand.low, options.parameters.amplitudeBand.high), threads: options.threads)
        }

        let amplitudeMapFiles = options.parameters.amplitudeMaps
            ? try writeAmplitudeMaps(options, confounds: confounds, cleaning: amplitudeOptions, repetitionTime: repetitionTime, mask: mask)
            : []

        timer.lap("amplitude")
        // Summaries.
        let names = entries.map(\.name)
        let networks = entries.map(\.network)
        let hasNetworks = networks.contains { $0 != nil }
        let strength = nodeStrength(pearson)
        let efficiency = try wrap(options.boldPath) { try globalEfficiency(pearson, threads: options.threads) }
        let networkSummary = hasNetworks ? try wrap(options.boldPath) { try networkConnectivity(pearson, networks: networks) } : nil
        let fdAfterDummies = framewiseDisplacement.map { Array($0.dropFirst(options.parameters.dummyScans)).filter(\.isFinite) }
        let meanFD = fdAfterDummies.flatMap { $0.isEmpty ? nil : $0.reduce(0, +) / Double($0.count) } ?? .nan

        var summary: [(String, String, Double)] = [
            ("conn_mean", "all", meanConnectivity(pearson)),
            ("global_efficiency", "all", efficiency),
        ]
        var metrics: [VisitMetric] = [
            .init(modality: "func", region: wholeBrainRegion, metric: "conn_mean", value: meanConnectivity(pearson)),
            .init(modality: "func", region: wholeBrainRegion, metric: "global_efficiency", value: efficiency),
        ]
        if let networkSummary {
            summary.append(("conn_within_mean", "all", networkSummary.within))
            summary.append(("conn_between_mean", "all", networkSummary.between))
            metrics.append(.init(modality: "func", region: wholeBrainRegion, metric: "conn_within_mean", value: networkSummary.within))
            metrics.append(.init(modality: "func", region: wholeBrainRegion, metric: "conn_between_mean", value: networkSummary.between))
            for network in networkSummary.networks {
                summary.append(("conn_within_mean", network.network, network.within))
                summary.append(("conn_between_mean", network.network, network.between))
                metrics.append(.init(modality: "func", region: "network-" + network.network, metric: "conn_within_mean", value: network.within))
                metrics.append(.init(modality: "func", region: "network-" + network.network, metric: "conn_between_mean", value: network.between))
            }
        }
        let validAmplitude = amplitude.indices.filter { amplitude[$0].alff.isFinite }
        let alffMean = validAmplitude.isEmpty ? .nan : validAmplitude.reduce(0.0) { $0 + amplitude[$1].alff } / Double(validAmplitude.count)
        let falffMean = validAmplitude.isEmpty ? .nan : validAmplitude.reduce(0.0) { $0 + amplitude[$1].falff } / Double(validAmplitude.count)
        let quality: [(String, Double)] = [
            ("alff_mean", alffMean), ("falff_mean", falffMean),
            ("tsnr_mean", extracted.wholeBrainTSNR), ("fd_mean", meanFD),
            ("volumes_censored", Double(cleaned.qc.censoredVolumes)),
            ("censored_fraction", cleaned.qc.censoredFraction),
            ("volumes_kept", Double(cleaned.qc.keptVolumes)),
        ]
        for (name, value) in quality {
            summary.append((name, "all", value))
            metrics.append(.init(modality: "func", region: wholeBrainRegion, metric: name, value: value))
        }
        for (r, name) in names.enumerated() {
            metrics.append(.init(modality: "func", region: name, metric: "alff", value: amplitude[r].alff))
            metrics.append(.init(modality: "func", region: name, metric: "falff", value: amplitude[r].falff))
            metrics.append(.init(modality: "func", region: name, metric: "tsnr_mean", value: extracted.regionTSNR[r]))
            metrics.append(.init(modality: "func", region: name, metric: "strength", value: strength[r]))
            metrics.append(.init(modality: "func", region: name, metric: "coverage", value: coverage[r]))
        }

        // Outputs.
        try FileManager.default.createDirectory(atPath: options.outputFolder, withIntermediateDirectories: true)
        let base = options.outputFolder + "/" + options.prefix
        var files: [String] = []
        func write(_ table: TSVTable, _ suffix: String) throws {
            let path = base + suffix
            try table.write(to: path)
            files.append(path)
        }
        try write(matrixTable(pearson, names: names, diagonal: 1), "_stat-pearsoncorrelation_relmat.tsv")
        try write(matrixTable(fisher, names: names, diagonal: nil), "_stat-fisherz_relmat.tsv")
        if let partial { try write(matrixTable(partial, names: names, diagonal: 1), "_stat-partialcorrelation_relmat.tsv") }
        var timeseries = TSVTable(columns: names)
        for t in 0..<cleaned.signals.timePoints {
            timeseries.append((0..<names.count).map { tsvCell(cleaned.signals[t, $0]) })
        }
        try write(timeseries, "_stat-mean_timeseries.tsv")
        var summaryTable = TSVTable(columns: ["metric", "network", "value"])
        for (metric, network, value) in summary { summaryTable.append([metric, network, tsvCell(value)]) }
        try write(summaryTable, "_desc-summary_connectivity.tsv")
        var regions = TSVTable(columns: ["index", "region", "network", "n_voxels", "n_brain_voxels", "coverage",
                                         "tsnr_mean", "alff", "falff", "strength"])
        for (r, entry) in entries.enumerated() {
            regions.append([String(entry.index), entry.name, entry.network ?? "n/a", String(extracted.labelVoxels[r]),
                            String(extracted.brainVoxels[r]), tsvCell(coverage[r]), tsvCell(extracted.regionTSNR[r]),
                            tsvCell(amplitude[r].alff), tsvCell(amplitude[r].falff), tsvCell(strength[r])])
        }
        try write(regions, "_desc-regions_bold.tsv")
        let sidecar = JSONValue.object([
            ("GeneratedBy", .string("nimetrics")),
            ("Version", .string(NimetricsVersion.string)),
            ("Source", .string(options.boldPath)),
            ("Atlas", .string(options.atlasPath)),
            ("AtlasResampled", .bool(atlasResampled)),
            ("RepetitionTime", .number(repetitionTime)),
            ("NonSteadyStateVolumes", .int(options.parameters.dummyScans)),
            ("Detrend", .string("constant + linear")),
            ("ConfoundStrategy", .string(options.strategy.description)),
            ("ConfoundColumns", .array((confounds?.names ?? []).map { .string($0) })),
            ("HighPass", .finite(options.parameters.highPass)),
            ("LowPass", .finite(options.parameters.lowPass)),
            ("Filter", .string("zero-phase FFT (bins outside the band set to zero), signals and confounds alike")),
            ("FramewiseDisplacementThreshold", .finite(options.parameters.fdThreshold)),
            ("Correlation", .string(options.parameters.partialCorrelation ? "pearson, partial (Ledoit-Wolf)" : "pearson")),
            ("AmplitudeBand", .array([.number(options.parameters.amplitudeBand.low), .number(options.parameters.amplitudeBand.high)])),
            ("MinimumCoverage", .number(options.parameters.minimumCoverage)),
            ("AmplitudeMaps", .bool(options.parameters.amplitudeMaps)),
            ("BrainMask", .string(options.maskPath ?? "voxels non-zero in the first volume")),
            ("QC", .object([
                ("VolumesInput", .int(cleaned.qc.inputVolumes)),
                ("VolumesKept", .int(cleaned.qc.keptVolumes)),
                ("VolumesCensored", .int(cleaned.qc.censoredVolumes)),
                ("CensoredFraction", .finite(cleaned.qc.censoredFraction)),
                ("MeanFramewiseDisplacement", .finite(meanFD)),
                ("RegressorRank", .int(cleaned.qc.regressorRank)),
                ("RegressorsDropped", .int(cleaned.qc.droppedRegressors)),
                ("BrainVoxels", .int(extracted.maskVoxels)),
                ("NonFiniteValues", .int(extracted.nonFiniteValues)),
                ("RegionsMissing", .array(uncovered.map { .string(entries[$0].name) })),
                ("WholeBrainTSNR", .finite(extracted.wholeBrainTSNR)),
            ])),
            ("Warnings", .array(warnings.map { .string($0) })),
        ])
        files += amplitudeMapFiles
        let sidecarPath = base + "_desc-summary_connectivity.json"
        try AtomicFile.write(sidecar.rendered() + "\n", to: sidecarPath)
        files.append(sidecarPath)
        timer.lap("summaries + outputs")
        return FunctionalResult(regionNames: names, pearson: pearson, metrics: metrics, files: files,
                                warnings: warnings, qc: cleaned.qc, repetitionTime: repetitionTime)
    }

    /// Voxelwise ALFF and fALFF (Zang et al. 2007; Zou et al. 2008) of every brain voxel, with
    /// the same detrending and confound regression as the regional values, written as
    /// `P_stat-alff_boldmap.nii.gz` and `P_stat-falff_boldmap.nii.gz` (0 outside the brain).
    /// Voxels are processed in blocks of 8192, so the working set beyond the run itself stays
    /// small.
    static func writeAmplitudeMaps(_ options: FunctionalOptions, confounds: ConfoundColumns?, cleaning: CleaningOptions,
                                   repetitionTime: Double, mask: [Bool]?) throws -> [String] {
        let image = try NIfTIFile.read(options.boldPath, as: Float.self, threads: options.threads)
        let header = image.header
        let n = header.voxelsPerVolume, volumes = header.volumeCount
        let brain = mask ?? (0..<n).map { image.voxels[$0].isFinite && image.voxels[$0] != 0 }
        let voxels = (0..<n).filter { brain[$0] }
        var alff = [Float](repeating: 0, count: n), falff = [Float](repeating: 0, count: n)
        let block = 8192
        var start = 0
        while start < voxels.count {
            let members = Array(voxels[start..<min(voxels.count, start + block)])
            var values = [Double](repeating: 0, count: members.count * volumes)
            for (column, voxel) in members.enumerated() {
                for t in 0..<volumes { values[column * volumes + t] = Double(image.voxels[t * n + voxel]) }
            }
            let matrix = try wrap(options.boldPath) { try TimeSeriesMatrix(timePoints: volumes, regions: members.count, values: values) }
            let cleaned = try wrap(options.boldPath) { try cleanSignals(matrix, confounds: confounds, options: cleaning, threads: options.threads) }
            let measures = try wrap(options.boldPath) {
                try amplitudeOfLowFrequencyFluctuations(cleaned.signals, repetitionTime: repetitionTime, band: (options.parameters.amplitudeBand.low, options.parameters.amplitudeBand.high), threads: options.threads)
            }
            for (column, voxel) in members.enumerated() {
                alff[voxel] = measures[column].alff.isFinite ? Float(measures[column].alff) : 0
                falff[voxel] = measures[column].falff.isFinite ? Float(measures[column].falff) : 0
            }
            start += block
        }
        try FileManager.default.createDirectory(atPath: options.outputFolder, withIntermediateDirectories: true)
        let base = options.outputFolder + "/" + options.prefix
        var geometry = header
        geometry.pixdim = Array(header.pixdim.prefix(3))
        let shape = [header.spatialShape.x, header.spatialShape.y, header.spatialShape.z]
        let paths = [base + "_stat-alff_boldmap.nii.gz", base + "_stat-falff_boldmap.nii.gz"]
        try NIfTIFile.write(alff, shape: shape, geometry: geometry, to: paths[0], description: "nimetrics ALFF")
        try NIfTIFile.write(falff, shape: shape, geometry: geometry, to: paths[1], description: "nimetrics fALFF")
        return paths
    }

    /// Refuses a band-pass that keeps no frequency of the run (a TR given in milliseconds,
    /// say, puts every frequency far below 0.01 Hz), which would otherwise turn every number
    /// into n/a without a word), or an ALFF band that holds no frequency of the run.
    static func checkBand(_ options: FunctionalOptions, volumes: Int, repetitionTime: Double) throws {
        guard volumes >= 3 else {
            throw PipelineError(options.boldPath, "\(volumes) volumes after --dummy-scans: too few to analyse")
        }
        let resolution = 1 / (Double(volumes) * repetitionTime)
        let frequencies = (1...(volumes / 2)).map { Double($0) * resolution }
        func holds(_ low: Double?, _ high: Double?) -> Bool {
            frequencies.contains { ($0 >= (low ?? 0)) && ($0 <= (high ?? .infinity)) }
        }
        if options.parameters.highPass != nil || options.parameters.lowPass != nil, !holds(options.parameters.highPass, options.parameters.lowPass) {
            throw PipelineError(options.boldPath, String(
                format: "no frequency of this run (%d volumes, TR %g s: %.4g to %.4g Hz) lies in the pass band; is the TR in seconds?",
                volumes, repetitionTime, frequencies.first ?? 0, frequencies.last ?? 0))
        }
        if !holds(options.parameters.amplitudeBand.low, options.parameters.amplitudeBand.high) {
            throw PipelineError(options.boldPath, String(
                format: "no frequency of this run (%d volumes, TR %g s) lies in the ALFF band %g-%g Hz; is the TR in seconds?",
                volumes, repetitionTime, options.parameters.amplitudeBand.low, options.parameters.amplitudeBand.high))
        }
    }

    /// TR: `--tr`, else the BOLD sidecar's RepetitionTime (BIDS makes it authoritative), else
    /// the NIfTI header; a disagreement between sidecar and header is reported as a warning.
    static func resolveRepetitionTime(_ options: FunctionalOptions, header: NIfTIHeader, warnings: inout [String]) throws -> Double {
        if let tr = options.parameters.repetitionTime {
            guard tr > 0, tr.isFinite else { throw PipelineError("--tr", "must be a positive number of seconds, got \(tr)") }
            return tr
        }
        let sidecarPath = OutputNaming.sidecarPath(forImage: options.boldPath)
        var sidecarTR: Double?
        if FileManager.default.fileExists(atPath: sidecarPath) {
            let text = (try? String(contentsOfFile: sidecarPath, encoding: .utf8)) ?? ""
            guard let json = try? JSONValue.parse(text) else {
                throw PipelineError(sidecarPath, "not valid JSON")
            }
            if let value = json["RepetitionTime"] {
                guard let tr = value.doubleValue, tr > 0 else {
                    throw PipelineError(sidecarPath, "RepetitionTime must be a positive number")
                }
                sidecarTR = tr
            }
        }
        if let sidecarTR {
            if let headerTR = header.repetitionTime, abs(headerTR - sidecarTR) > 0.01 * sidecarTR {
                warnings.append("RepetitionTime \(sidecarTR) s in \(sidecarPath) differs from the NIfTI header's \(headerTR) s; using the sidecar")
            }
            return sidecarTR
        }
        if let headerTR = header.repetitionTime { return headerTR }
        throw PipelineError(options.boldPath, "no repetition time: give --tr, a RepetitionTime in \(sidecarPath), or a pixdim[4] in the header")
    }

    /// Reads an fMRIPrep confounds table as numeric columns (NaN for n/a).
    static func readConfounds(_ path: String, expectedRows: Int) throws -> [String: [Double]] {
        let table = try TSVTable.read(path)
        guard table.rows.count == expectedRows else {
            throw PipelineError(path, "the confounds table has \(table.rows.count) rows, the BOLD run has \(expectedRows) volumes")
        }
        var columns: [String: [Double]] = [:]
        for name in table.columns {
            columns[name] = try table.numericColumn(name)
        }
        return columns
    }

    static func matrixTable(_ m: SquareMatrix, names: [String], diagonal: Double?) -> TSVTable {
        var table = TSVTable(columns: ["region"] + names)
        for i in 0..<m.size {
            table.append([names[i]] + (0..<m.size).map { j in tsvCell(i == j ? (diagonal ?? .nan) : m[i, j]) })
        }
        return table
    }

}
