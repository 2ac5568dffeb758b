import ArgumentParser
import Foundation
import Functional
import Pipelines

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
            --alff-maps P_stat-alff_boldmap.nii.gz and P_stat-falff_boldmap.nii.gz. \
            With several --atlas, each atlas gives its own outputs, P_seg-<atlas>_..., and the \
            run is read once per atlas.

            References: Power et al. 2012 (framewise displacement); Satterthwaite et al. 2013 \
            (24P/36P); Zang et al. 2007 (ALFF); Zou et al. 2008 (fALFF); Ledoit & Wolf 2004; \
            Latora & Marchiori 2001 (global efficiency).
            """
    )

    @Option(help: "Preprocessed 4D BOLD run (.nii or .nii.gz).")
    var bold: String

    @Option(help: "fMRIPrep desc-confounds_timeseries.tsv.")
    var confounds: String?

    /// Where the signal is taken from: the brain mask and the atlas's regions.
    @OptionGroup(title: "Masks") var masks: MaskOptions
    @OptionGroup(title: "Atlas") var atlas: AtlasOptions

    /// How it is cleaned and measured.
    @OptionGroup var processing: FunctionalProcessingOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if atlas.atlas.isEmpty { throw ValidationError("give --atlas: the regions of the connectivity matrix") }
    }

    func run() throws {
        try runReportingFailure {
            try common.checkOutputFolder()
            let atlases = atlas.files
            let names = try OutputNaming.atlasNames(atlases.map(\.path))
            for (file, name) in zip(atlases, names) {
                // One atlas keeps the plain prefix; several are told apart by seg-<name>.
                let prefix = atlases.count == 1 ? common.prefix
                    : (common.prefix ?? OutputNaming.prefix(fromInput: bold)) + "_seg-" + name
                var options = FunctionalOptions(boldPath: bold, atlasPath: file.path, outputFolder: common.out, prefix: prefix)
                options.atlasTablePath = file.tablePath
                options.maskPath = masks.mask
                options.confoundsPath = confounds
                options.parameters = processing.parameters(resampleAtlas: atlas.resampleAtlas)
                options.threads = common.threads
                let result = try FunctionalPipeline.run(options)
                let tag = atlases.count == 1 ? "" : " seg-" + name
                for warning in result.warnings { printWarning(atlases.count == 1 ? warning : "seg-\(name): " + warning) }
                print("fmri\(tag): \(result.regionNames.count) regions, \(result.qc.keptVolumes) of \(result.qc.inputVolumes) volumes kept; wrote \(result.files.count) files to \(common.out)")
            }
        }
    }
}
