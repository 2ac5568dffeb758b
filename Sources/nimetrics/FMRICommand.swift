import ArgumentParser
import Foundation
import Functional
import Pipelines

extension ConfoundStrategy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let strategy = try? ConfoundStrategy(parsing: argument) else { return nil }
        self = strategy
    }
    public static var allValueStrings: [String] { ["none", "6P", "24P", "36P"] }
}

/// `nimetrics fmri`: connectivity and amplitude metrics of one resting-state run.
struct FMRICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmri",
        abstract: "Regional time series, denoising, connectivity, ALFF/fALFF and QC of one BOLD run.",
        discussion: """
            Order: region means (streamed volume by volume) -> drop --dummy-scans -> linear \
            detrend -> band-pass signals and confounds with the same zero-phase FFT filter -> \
            regress the confounds -> censor volumes above --fd-threshold -> correlation. \
            ALFF/fALFF use the detrended, confound-regressed, unfiltered series. \
            TR comes from --tr, else the BOLD sidecar's RepetitionTime, else the NIfTI header.

            Outputs (in --out, named with --prefix, default the BOLD file's BIDS entities): \
            P_stat-pearsoncorrelation_relmat.tsv, P_stat-fisherz_relmat.tsv, \
            [P_stat-partialcorrelation_relmat.tsv], P_stat-mean_timeseries.tsv, \
            P_desc-summary_connectivity.tsv and .json, P_desc-regions_bold.tsv, and with \
            --alff-maps P_stat-alff_boldmap.nii.gz and P_stat-falff_boldmap.nii.gz.

            References: Power et al. 2012 (framewise displacement); Satterthwaite et al. 2013 \
            (24P/36P); Zang et al. 2007 (ALFF); Zou et al. 2008 (fALFF); Ledoit & Wolf 2004; \
            Latora & Marchiori 2001 (global efficiency).
            """
    )

    @Option(help: "Preprocessed 4D BOLD run (.nii or .nii.gz).")
    var bold: String

    @Option(help: "Label atlas on the BOLD grid (.nii.gz), with a TSV (index, name[, network]) beside it.")
    var atlas: String

    @Option(name: .customLong("atlas-table"), help: "The atlas's label table, if not the .tsv beside it.")
    var atlasTable: String?

    @Flag(name: .customLong("resample-atlas"), help: "Resample the atlas to the BOLD grid by nearest neighbour if the grids differ.")
    var resampleAtlas = false

    @Option(help: "Brain mask on the BOLD grid (default: voxels non-zero in the first volume).")
    var mask: String?

    @Option(help: "fMRIPrep desc-confounds_timeseries.tsv.")
    var confounds: String?

    @Option(help: "Confound strategy: none, 6P, 24P or 36P (default 6P; none without --confounds).")
    var strategy: ConfoundStrategy?

    @Option(name: .customLong("confound-columns"), help: "Explicit comma-separated confound columns (instead of --strategy).")
    var confoundColumns: String?

    @Option(name: .customLong("high-pass"), help: "High-pass cut-off in Hz (0 for none).")
    var highPass: Double = 0.01

    @Option(name: .customLong("low-pass"), help: "Low-pass cut-off in Hz (0 for none).")
    var lowPass: Double = 0.08

    @Option(name: .customLong("fd-threshold"), help: "Censor volumes with framewise displacement above this (mm).")
    var fdThreshold: Double?

    @Option(name: .customLong("dummy-scans"), help: "Non-steady-state volumes to drop.")
    var dummyScans = 0

    @Option(help: "Repetition time in seconds (overrides the sidecar and header).")
    var tr: Double?

    @Flag(help: "Also compute partial correlation (Ledoit-Wolf shrinkage).")
    var partial = false

    @Option(name: .customLong("min-coverage"), help: "Regions with a smaller fraction of their voxels in the brain are n/a.")
    var minCoverage = 0.5

    @Flag(name: .customLong("alff-maps"), help: "Also write voxelwise ALFF and fALFF maps (reads the whole run into memory).")
    var alffMaps = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if strategy != nil && confoundColumns != nil {
            throw ValidationError("give either --strategy or --confound-columns, not both")
        }
        if highPass < 0 || lowPass < 0 { throw ValidationError("band limits must not be negative") }
        if highPass > 0 && lowPass > 0 && highPass >= lowPass {
            throw ValidationError("--high-pass (\(highPass) Hz) must be below --low-pass (\(lowPass) Hz)")
        }
        if dummyScans < 0 { throw ValidationError("--dummy-scans must not be negative") }
        if let fdThreshold, fdThreshold <= 0 { throw ValidationError("--fd-threshold must be positive") }
        if !(0...1).contains(minCoverage) { throw ValidationError("--min-coverage must be between 0 and 1") }
    }

    func run() throws {
        try runReportingFailure {
            var options = FunctionalOptions(boldPath: bold, atlasPath: atlas, outputFolder: common.out, prefix: common.prefix)
            options.atlasTablePath = atlasTable
            options.resampleAtlas = resampleAtlas
            options.maskPath = mask
            options.confoundsPath = confounds
            if let confoundColumns {
                options.strategy = .columns(confoundColumns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            } else {
                options.strategy = strategy ?? (confounds == nil ? .none : .sixP)
            }
            options.highPass = highPass > 0 ? highPass : nil
            options.lowPass = lowPass > 0 ? lowPass : nil
            options.fdThreshold = fdThreshold
            options.dummyScans = dummyScans
            options.repetitionTime = tr
            options.partialCorrelation = partial
            options.minimumCoverage = minCoverage
            options.amplitudeMaps = alffMaps
            options.threads = common.threads
            let result = try FunctionalPipeline.run(options)
            for warning in result.warnings { printWarning(warning) }
            print("fmri: \(result.regionNames.count) regions, \(result.qc.keptVolumes) of \(result.qc.inputVolumes) volumes kept; wrote \(result.files.count) files to \(common.out)")
        }
    }
}
