import AtomicFiles
import Foundation
import Functional
import NIfTI
import Parcellation
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
    /// Runs the pipeline: read the inputs, stream the region means, clean, correlate, then
    /// write the tables and the sidecar.
    public static func run(_ options: FunctionalOptions) throws -> FunctionalResult {
        var timer = PhaseTimer("fmri")
        var inputs = try readInputs(options)
        let regional = try regionalSeries(options, inputs: &inputs)
        timer.lap("stream + region means")
        let measures = try computeMeasures(options, inputs: inputs, regional: regional)
        inputs.warnings += cleaningWarnings(inputs: inputs, regional: regional, qc: measures.cleaned.qc)
        timer.lap("cleaning + connectivity + amplitude")
        // Nothing is written before the run is known to be usable (bad input leaves no output).
        let streamOutputs = try startStreamOutputs(options, inputs: inputs, regional: regional, inBackground: options.threads > 1)
        defer { streamOutputs.waitIgnoringErrors() }
        let amplitudeMapFiles = options.parameters.amplitudeMaps
            ? try writeAmplitudeMaps(options, confounds: inputs.confounds, cleaning: measures.amplitudeCleaning,
                                     repetitionTime: inputs.repetitionTime, mask: inputs.mask)
            : []
        let summary = try summaryMetrics(options, inputs: inputs, regional: regional, measures: measures)
        var files = try writeTables(options, inputs: inputs, regional: regional, measures: measures, summary: summary.rows)
        files.insert(contentsOf: amplitudeMapFiles, at: files.count - 1)
        files.insert(contentsOf: try finishQualityOutputs(streamOutputs, options, inputs: inputs, qc: measures.cleaned.qc),
                     at: files.count - 1)
        timer.lap("summaries + outputs")
        return FunctionalResult(regionNames: inputs.entries.map(\.name), pearson: measures.pearson, metrics: summary.metrics,
                                files: files, warnings: inputs.warnings, qc: measures.cleaned.qc,
                                repetitionTime: inputs.repetitionTime)
    }

    // MARK: - Reading

    /// Everything read before the BOLD series is streamed.
    struct Inputs {
        var header: NIfTIHeader
        var repetitionTime: Double
        var labels: [Int32]
        var entries: [LabelEntry]
        var atlasResampled: Bool
        var mask: [Bool]?
        var confounds: ConfoundColumns?
        var framewiseDisplacement: [Double]?
        var censor: [Bool]?
        /// Leading volumes dropped, and where the number came from.
        var dummyScans: Int
        var dummyScansSource: String
        var warnings: [String]
    }

    /// Reads and checks the header, TR, atlas, mask and confounds, so a bad one fails before
    /// the long streaming step.
    static func readInputs(_ options: FunctionalOptions) throws -> Inputs {
        var warnings: [String] = []
        let bold = try NIfTIFile.readHeader(options.boldPath)
        guard bold.volumeCount >= 3 else {
            throw PipelineError(options.boldPath, "a BOLD run needs at least 3 volumes, this one has \(bold.volumeCount)")
        }
        let repetitionTime = try resolveRepetitionTime(options, header: bold, warnings: &warnings)
        try checkSkullStripping(options)
        var model = try readConfoundModel(options, volumes: bold.volumeCount)
        let dummy = try resolveDummyScans(options, flagged: model.flagged, censor: &model.censor, volumes: bold.volumeCount)
        try checkBand(options, volumes: bold.volumeCount - dummy.count, repetitionTime: repetitionTime)
        let (labels, resampled) = try LabelImage.readLabels(options.atlasPath, onto: bold, resample: options.parameters.resampleAtlas,
                                                            gridName: "BOLD")
        if let resampled { warnings.append(resampled) }
        let entries = try LabelImage.entries(labels: labels, atlasPath: options.atlasPath, tablePath: options.atlasTablePath)
        let mask = try options.maskPath.map { try LabelImage.readMask($0, onto: bold, name: "brain mask", gridName: "BOLD") }
        return Inputs(header: bold, repetitionTime: repetitionTime, labels: labels, entries: entries,
                      atlasResampled: resampled != nil, mask: mask, confounds: model.confounds,
                      framewiseDisplacement: model.framewiseDisplacement, censor: model.censor,
                      dummyScans: dummy.count, dummyScansSource: dummy.source, warnings: warnings)
    }

    /// The confound regressors of the strategy, the framewise displacement and the censoring
    /// mask, from the confounds table.
    static func readConfoundModel(_ options: FunctionalOptions, volumes: Int) throws
        -> (confounds: ConfoundColumns?, framewiseDisplacement: [Double]?, censor: [Bool]?, flagged: [Int]) {
        let table: [String: [Double]]? = try options.confoundsPath.map { try readConfounds($0, expectedRows: volumes) }
        var confounds: ConfoundColumns?
        let strategy = options.strategy
        if strategy != .none {
            guard let table, let path = options.confoundsPath else {
                throw PipelineError(options.boldPath, "confound strategy \(strategy) needs a confounds TSV")
            }
            do { confounds = try resolveConfounds(strategy, available: table) } catch { throw PipelineError(path, "\(error)") }
        }
        let framewiseDisplacement = table?["framewise_displacement"]
        var censor: [Bool]?
        if let threshold = options.parameters.fdThreshold {
            guard let fd = framewiseDisplacement else {
                throw PipelineError(options.confoundsPath ?? options.boldPath,
                                    "--fd-threshold needs a framewise_displacement column in the confounds")
            }
            censor = fd.map { $0.isFinite && $0 > threshold }
        }
        // fMRIPrep marks each non-steady-state volume with a one-hot column of its own.
        let flagged = (table ?? [:]).filter { $0.key.hasPrefix("non_steady_state_outlier") }.values
            .flatMap { column in column.indices.filter { column[$0] == 1 } }
        return (confounds, framewiseDisplacement, censor, Array(Set(flagged)).sorted())
    }

    /// The leading volumes to drop: `--dummy-scans N`, or by default the volumes fMRIPrep
    /// flags as non-steady-state (as nilearn's `load_confounds` and XCP-D). Flagged volumes
    /// past the leading run of them are censored instead.
    static func resolveDummyScans(_ options: FunctionalOptions, flagged: [Int], censor: inout [Bool]?, volumes: Int) throws
        -> (count: Int, source: String) {
        switch options.parameters.dummyScans {
        case .count(let count):
            return (count, "--dummy-scans")
        case .automatic:
            guard !flagged.isEmpty else {
                return (0, options.confoundsPath == nil ? "none (no confounds table)" : "none flagged in the confounds")
            }
            var leading = 0
            while leading < flagged.count && flagged[leading] == leading { leading += 1 }
            let later = flagged[leading...]
            if !later.isEmpty {
                var mask = censor ?? [Bool](repeating: false, count: volumes)
                for t in later where t < volumes { mask[t] = true }
                censor = mask
            }
            return (leading, "fMRIPrep non_steady_state_outlier columns" + (later.isEmpty ? "" : " (\(later.count) later flagged volume(s) censored)"))
        }
    }

    /// A BOLD series that is not skull-stripped (fMRIPrep's sidecar says `SkullStripped:
    /// false`) needs its brain mask: without one, the whole field of view would be "brain".
    static func checkSkullStripping(_ options: FunctionalOptions) throws {
        guard options.maskPath == nil else { return }
        let sidecarPath = OutputNaming.sidecarPath(forImage: options.boldPath)
        guard let text = try readOptionalInputText(sidecarPath),
              let json = try? JSONValue.parse(text),
              json["SkullStripped"] == .bool(false) else { return }
        let expected = OutputNaming.brainMaskPath(forImage: options.boldPath)
        throw PipelineError(options.boldPath, "not skull-stripped (SkullStripped: false in \(URL(fileURLWithPath: sidecarPath).lastPathComponent)) and no brain mask: expected \(expected), or give a mask")
    }

    // MARK: - Computing

    /// The streamed region means, and the series analysed: those of regions under the
    /// coverage threshold replaced by n/a (``uncovered`` lists them).
    struct RegionalSeries {
        var extracted: RegionalTimeSeries
        var series: [[Double]]
        var uncovered: [Int]
    }

    /// The streamed region means, with regions under the coverage threshold set to n/a (and
    /// named in a warning).
    static func regionalSeries(_ options: FunctionalOptions, inputs: inout Inputs) throws
        -> RegionalSeries {
        let extracted = try RegionalTimeSeriesExtractor.extract(
            boldPath: options.boldPath, labels: inputs.labels, regionIndexes: inputs.entries.map(\.index),
            brainMask: inputs.mask, skipVolumesForTSNR: inputs.dummyScans, threads: options.threads,
            carpetRows: carpetRows)
        let coverage = extracted.coverage
        var series = extracted.series
        let minimum = options.parameters.minimumCoverage
        for r in series.indices where coverage[r] < minimum || extracted.brainVoxels[r] == 0 {
            series[r] = [Double](repeating: .nan, count: inputs.header.volumeCount)
        }
        // By coverage alone: a region that is NaN at some volume (an all-NaN volume) is not
        // uncovered; the cleaning censors that volume instead.
        let uncovered = inputs.entries.indices.filter { coverage[$0] < minimum || extracted.brainVoxels[$0] == 0 }
        if !uncovered.isEmpty {
            inputs.warnings.append("\(uncovered.count) region(s) below \(minimum) coverage reported as n/a: "
                                   + uncovered.prefix(10).map { inputs.entries[$0].name }.joined(separator: ", "))
        }
        return RegionalSeries(extracted: extracted, series: series, uncovered: uncovered)
    }

    /// What the cleaned series give: the matrices, and the amplitude measures.
    struct Measures {
        var cleaned: CleanedSignals
        var pearson: SquareMatrix
        var partial: SquareMatrix?
        var amplitude: [AmplitudeMeasures]
        /// The cleaning of the amplitude measures: no band-pass, no censoring (Zou et al. 2008).
        var amplitudeCleaning: CleaningOptions
    }

    /// Detrend, band-pass, regress and censor (steps 3-6), then correlate; ALFF/fALFF from the
    /// detrended, confound-regressed, unfiltered, uncensored series.
    static func computeMeasures(_ options: FunctionalOptions, inputs: Inputs,
                                regional: RegionalSeries) throws -> Measures {
        let parameters = options.parameters, threads = options.threads
        /// `cleanSignals`, with too few degrees of freedom explained in the options' terms.
        func clean(_ matrix: TimeSeriesMatrix, censor: [Bool]?, options cleaning: CleaningOptions) throws -> CleanedSignals {
            do {
                return try cleanSignals(matrix, confounds: inputs.confounds, censor: censor, options: cleaning, threads: threads)
            } catch .tooFewDegreesOfFreedom(let dof, let minimum) {
                throw PipelineError(options.boldPath, String(
                    format: "too few degrees of freedom left to estimate connectivity: %@ (at least %g needed); use fewer confounds (--strategy), a wider band or none (--high-pass 0, --low-pass 0), less censoring (--fd-threshold), or a longer run",
                    dof.description, minimum))
            }
        }
        return try wrap(options.boldPath) {
            let matrix = try TimeSeriesMatrix(regionSeries: regional.series)
            let cleaning = CleaningOptions(repetitionTime: inputs.repetitionTime, nonSteadyStateVolumes: inputs.dummyScans,
                                           detrend: true, highPass: parameters.highPass, lowPass: parameters.lowPass)
            let cleaned = try clean(matrix, censor: inputs.censor, options: cleaning)
            try checkUsableRegions(options, inputs: inputs, regional: regional, qc: cleaned.qc)
            let pearson = try pearsonCorrelation(cleaned.signals, threads: threads)
            let partial = parameters.partialCorrelation ? try partialCorrelation(cleaned.signals, threads: threads) : nil
            var amplitudeCleaning = cleaning
            amplitudeCleaning.highPass = nil
            amplitudeCleaning.lowPass = nil
            // ALFF needs evenly spaced samples: a non-finite sample is interpolated, not censored.
            amplitudeCleaning.censorNonFiniteVolumes = false
            let unfiltered = try clean(matrix, censor: nil, options: amplitudeCleaning)
            let amplitude = try amplitudeOfLowFrequencyFluctuations(
                unfiltered.signals, repetitionTime: inputs.repetitionTime,
                band: (parameters.amplitudeBand.low, parameters.amplitudeBand.high), threads: threads)
            return Measures(cleaned: cleaned, pearson: pearson, partial: partial, amplitude: amplitude,
                            amplitudeCleaning: amplitudeCleaning)
        }
    }

    /// Fails the run when no region has a usable series (every one uncovered, constant or
    /// not finite): there is nothing to measure, and all-n/a tables would look like a result.
    static func checkUsableRegions(_ options: FunctionalOptions, inputs: Inputs, regional: RegionalSeries,
                                   qc: CleaningQC) throws {
        guard qc.missingRegions.count == inputs.entries.count else { return }
        let reasons = missingRegionReasons(inputs: inputs, regional: regional, qc: qc)
        var counts: [String: Int] = [:]
        for (_, reason) in reasons { counts[reason, default: 0] += 1 }
        let described = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        throw PipelineError(options.boldPath, "no region of the atlas has a usable signal (\(described)); check the run and the atlas")
    }

    /// The missing regions (entry positions) and why: coverage below the threshold, a
    /// constant signal, or non-finite values; in entry order.
    static func missingRegionReasons(inputs: Inputs, regional: RegionalSeries, qc: CleaningQC) -> [(region: Int, reason: String)] {
        let uncovered = Set(regional.uncovered)
        var reasons: [Int: String] = [:]
        for (region, reason) in zip(qc.missingRegions, qc.missingRegionReasons) { reasons[region] = reason.description }
        for region in uncovered { reasons[region] = "coverage below the minimum" }
        return reasons.keys.sorted().map { ($0, reasons[$0]!) }
    }

    /// Warnings for the regions the cleaning found unusable (constant, not finite) and the
    /// volumes censored because a region's sample was not finite there.
    static func cleaningWarnings(inputs: Inputs, regional: RegionalSeries, qc: CleaningQC) -> [String] {
        var warnings: [String] = []
        let uncovered = Set(regional.uncovered)
        let names = inputs.entries.map(\.name)
        var byReason: [String: [String]] = [:]
        for (region, reason) in zip(qc.missingRegions, qc.missingRegionReasons) where !uncovered.contains(region) {
            let key: String
            switch reason {
            case .constant: key = "constant signal"
            case .nonFinite: key = "not finite in more than \(Int(maximumNonFiniteRegionFraction * 100))% of the volumes"
            }
            byReason[key, default: []].append(names[region])
        }
        for (reason, regions) in byReason.sorted(by: { $0.key < $1.key }) {
            warnings.append("\(regions.count) region(s) reported as n/a (\(reason)): " + regions.prefix(10).joined(separator: ", "))
        }
        if !qc.nonFiniteVolumes.isEmpty {
            let volumes = qc.nonFiniteVolumes.prefix(10).map(String.init).joined(separator: ", ")
            warnings.append("\(qc.nonFiniteVolumes.count) volume(s) censored because a region's mean is not finite there (no finite voxel: an all-NaN volume, or NaN/Inf values): volume(s) \(volumes)")
        }
        return warnings
    }

    /// The visit metrics and the rows of the summary table (metric, network, value).
    static func summaryMetrics(_ options: FunctionalOptions, inputs: Inputs,
                               regional: RegionalSeries,
                               measures: Measures) throws -> (metrics: [VisitMetric], rows: [(String, String, Double)]) {
        let pearson = measures.pearson, extracted = regional.extracted
        let networks = inputs.entries.map(\.network)
        let efficiency = try wrap(options.boldPath) { try globalEfficiency(pearson, threads: options.threads) }
        let networkSummary = networks.contains { $0 != nil }
            ? try wrap(options.boldPath) { try networkConnectivity(pearson, networks: networks) } : nil
        var rows: [(String, String, Double)] = []
        var metrics: [VisitMetric] = []
        func add(_ metric: String, _ value: Double, network: String = "all") {
            rows.append((metric, network, value))
            let region = network == "all" ? wholeBrainRegion : "network-" + network
            metrics.append(.init(modality: "func", region: region, metric: metric, value: value))
        }
        add("conn_mean", meanConnectivity(pearson))
        add("global_efficiency", efficiency)
        if let networkSummary {
            add("conn_within_mean", networkSummary.within)
            add("conn_between_mean", networkSummary.between)
            for network in networkSummary.networks {
                add("conn_within_mean", network.within, network: network.network)
                add("conn_between_mean", network.between, network: network.network)
            }
        }
        let amplitude = measures.amplitude
        let valid = amplitude.indices.filter { amplitude[$0].alff.isFinite }
        func mean(_ value: (AmplitudeMeasures) -> Double) -> Double {
            valid.isEmpty ? .nan : valid.reduce(0.0) { $0 + value(amplitude[$1]) } / Double(valid.count)
        }
        let qc = measures.cleaned.qc
        add("alff_mean", mean(\.alff))
        add("falff_mean", mean(\.falff))
        add("tsnr_mean", extracted.wholeBrainTSNR)
        add("fd_mean", meanFramewiseDisplacement(inputs.framewiseDisplacement, dummyScans: inputs.dummyScans))
        add("volumes_censored", Double(qc.censoredVolumes))
        add("censored_fraction", qc.censoredFraction)
        add("volumes_kept", Double(qc.keptVolumes))
        let strength = nodeStrength(pearson), coverage = extracted.coverage
        for (r, entry) in inputs.entries.enumerated() {
            metrics.append(.init(modality: "func", region: entry.name, metric: "alff", value: amplitude[r].alff))
            metrics.append(.init(modality: "func", region: entry.name, metric: "falff", value: amplitude[r].falff))
            metrics.append(.init(modality: "func", region: entry.name, metric: "tsnr_mean", value: extracted.regionTSNR[r]))
            metrics.append(.init(modality: "func", region: entry.name, metric: "strength", value: strength[r]))
            metrics.append(.init(modality: "func", region: entry.name, metric: "coverage", value: coverage[r]))
        }
        return (metrics, rows)
    }

    /// Mean framewise displacement (Power et al. 2012) after the non-steady-state volumes,
    /// over its finite values (fMRIPrep writes n/a for the first volume).
    static func meanFramewiseDisplacement(_ fd: [Double]?, dummyScans: Int) -> Double {
        guard let values = fd.map({ Array($0.dropFirst(dummyScans)).filter(\.isFinite) }), !values.isEmpty else { return .nan }
        return values.reduce(0, +) / Double(values.count)
    }

    // MARK: - Writing

    /// Writes the matrices, time series, summary and region tables and the sidecar; returns
    /// their paths, the sidecar last.
    static func writeTables(_ options: FunctionalOptions, inputs: Inputs,
                            regional: RegionalSeries,
                            measures: Measures, summary: [(String, String, Double)]) throws -> [String] {
        try createOutputFolder(options.outputFolder)
        let base = options.outputFolder + "/" + options.prefix
        let names = inputs.entries.map(\.name)
        var files: [String] = []
        func write(_ table: TSVTable, _ suffix: String) throws {
            try table.write(to: base + suffix)
            files.append(base + suffix)
        }
        try write(matrixTable(measures.pearson, names: names, diagonal: 1), "_stat-pearsoncorrelation_relmat.tsv")
        try write(matrixTable(fisherZ(measures.pearson), names: names, diagonal: nil), "_stat-fisherz_relmat.tsv")
        if let partial = measures.partial {
            try write(matrixTable(partial, names: names, diagonal: 1), "_stat-partialcorrelation_relmat.tsv")
        }
        let signals = measures.cleaned.signals
        var timeseries = TSVTable(columns: names)
        for t in 0..<signals.timePoints { timeseries.append((0..<names.count).map { tsvCell(signals[t, $0]) }) }
        try write(timeseries, "_stat-mean_timeseries.tsv")
        var summaryTable = TSVTable(columns: ["metric", "network", "value"])
        for (metric, network, value) in summary { summaryTable.append([metric, network, tsvCell(value)]) }
        try write(summaryTable, "_desc-summary_connectivity.tsv")
        try write(regionTable(inputs: inputs, extracted: regional.extracted, measures: measures), "_desc-regions_bold.tsv")
        let sidecar = sidecarJSON(options, inputs: inputs, regional: regional, measures: measures)
        try AtomicFile.write(sidecar.rendered() + "\n", to: base + "_desc-summary_connectivity.json")
        return files + [base + "_desc-summary_connectivity.json"]
    }

    /// `P_desc-regions_bold.tsv`: one row per region with its voxels, coverage and measures.
    static func regionTable(inputs: Inputs, extracted: RegionalTimeSeries, measures: Measures) -> TSVTable {
        var regions = TSVTable(columns: ["index", "region", "network", "n_voxels", "n_brain_voxels", "coverage",
                                         "tsnr_mean", "alff", "falff", "strength"])
        let coverage = extracted.coverage, strength = nodeStrength(measures.pearson), amplitude = measures.amplitude
        for (r, entry) in inputs.entries.enumerated() {
            regions.append([String(entry.index), entry.name, entry.network ?? "n/a", String(extracted.labelVoxels[r]),
                            String(extracted.brainVoxels[r]), tsvCell(coverage[r]), tsvCell(extracted.regionTSNR[r]),
                            tsvCell(amplitude[r].alff), tsvCell(amplitude[r].falff), tsvCell(strength[r])])
        }
        return regions
    }

    /// The sidecar `P_desc-summary_connectivity.json`: every parameter, the inputs and the QC.
    static func sidecarJSON(_ options: FunctionalOptions, inputs: Inputs,
                            regional: RegionalSeries,
                            measures: Measures) -> JSONValue {
        let parameters = options.parameters, qc = measures.cleaned.qc, extracted = regional.extracted
        let missing = missingRegionReasons(inputs: inputs, regional: regional, qc: qc)
        return .object([
            ("GeneratedBy", .string("nimetrics")),
            ("Version", .string(NimetricsVersion.string)),
            ("Source", .string(options.boldPath)),
            ("Atlas", .string(options.atlasPath)),
            ("AtlasResampled", .bool(inputs.atlasResampled)),
            ("RepetitionTime", .number(inputs.repetitionTime)),
            ("NonSteadyStateVolumes", .int(inputs.dummyScans)),
            ("NonSteadyStateSource", .string(inputs.dummyScansSource)),
            ("Detrend", .string("constant + linear")),
            ("ConfoundStrategy", .string(options.strategy.description)),
            ("ConfoundColumns", .array((inputs.confounds?.names ?? []).map { .string($0) })),
            ("HighPass", .finite(parameters.highPass)),
            ("LowPass", .finite(parameters.lowPass)),
            ("Filter", .string("zero-phase FFT (bins outside the band set to zero), signals and confounds alike")),
            ("FramewiseDisplacementThreshold", .finite(parameters.fdThreshold)),
            ("Correlation", .string(parameters.partialCorrelation ? "pearson, partial (Ledoit-Wolf)" : "pearson")),
            ("AmplitudeBand", .array([.number(parameters.amplitudeBand.low), .number(parameters.amplitudeBand.high)])),
            ("MinimumCoverage", .number(parameters.minimumCoverage)),
            ("AmplitudeMaps", .bool(parameters.amplitudeMaps)),
            ("BrainMask", .string(options.maskPath ?? "voxels non-zero in the first volume")),
            ("QC", .object([
                ("VolumesInput", .int(qc.inputVolumes)),
                ("VolumesKept", .int(qc.keptVolumes)),
                ("VolumesCensored", .int(qc.censoredVolumes)),
                ("CensoredFraction", .finite(qc.censoredFraction)),
                ("MeanFramewiseDisplacement", .finite(meanFramewiseDisplacement(inputs.framewiseDisplacement,
                                                                                  dummyScans: inputs.dummyScans))),
                ("RegressorRank", .int(qc.regressorRank)),
                ("RegressorsDropped", .int(qc.droppedRegressors)),
                ("BrainVoxels", .int(extracted.maskVoxels)),
                ("NonFiniteValues", .int(extracted.nonFiniteValues)),
                ("RegionsMissing", .array(missing.map { .string(inputs.entries[$0.region].name) })),
                ("RegionsMissingReasons", .object(missing.map { (inputs.entries[$0.region].name, .string($0.reason)) })),
                ("VolumesCensoredNonFinite", .array(qc.nonFiniteVolumes.map { .int($0) })),
                ("DegreesOfFreedom", .finite(qc.degreesOfFreedom?.remaining)),
                ("WholeBrainTSNR", .finite(extracted.wholeBrainTSNR)),
            ])),
            ("Warnings", .array(inputs.warnings.map { .string($0) })),
        ])
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
        try createOutputFolder(options.outputFolder)
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
            throw PipelineError(options.boldPath, "\(volumes) volumes left after the non-steady-state ones: too few to analyse")
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
        if let text = try readOptionalInputText(sidecarPath) {
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
