import Diffusion
import Foundation
import Functional
import Pipelines
import Tabular

/// Per-visit files of a batch that are not part of the dataset, each a ``PathPattern`` that
/// may name the visit (`masks/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz`).
public struct VisitFilePatterns: Sendable, Equatable, Codable {
    /// Label atlas on the DWI grid, and its label table (default: the `.tsv` beside it).
    public var dwiAtlas: PathPattern?
    public var dwiAtlasTable: PathPattern?
    /// Label atlas on the BOLD grid, and its label table (default: the `.tsv` beside it).
    public var funcAtlas: PathPattern?
    public var funcAtlasTable: PathPattern?
    /// Brain mask on the DWI grid (default: automatic).
    public var dwiMask: PathPattern?
    /// Brain mask on the BOLD grid (default: the dataset's mask beside the BOLD run, else
    /// voxels non-zero in the first volume).
    public var funcMask: PathPattern?
    /// Lesion mask on the DWI grid: adds `lesion` and `normal_appearing_tissue` summaries.
    public var lesionMask: PathPattern?

    public init() {}

    /// The patterns that name one file for every visit.
    var fixed: [PathPattern] {
        [dwiAtlas, dwiAtlasTable, funcAtlas, funcAtlasTable, dwiMask, funcMask, lesionMask].compactMap { $0 }.filter(\.isFixed)
    }
}

/// The parameters of the per-visit pipelines that a batch applies to every visit: the
/// pipelines' own parameter values and the per-visit files. Its JSON encoding, with the tool
/// version, is the batch's re-run fingerprint.
public struct VisitParameters: Sendable, Equatable, Codable {
    public var diffusion = DiffusionParameters()
    public var functional = FunctionalParameters()
    public var files = VisitFilePatterns()

    public init() {}
}

/// Runs the DTI and fMRI pipelines on one visit: the real ``VisitProcessor`` of
/// `nimetrics run`. Diffusion outputs go to `<visit>/dwi/`, functional ones to `<visit>/func/`.
///
/// A visit without a DWI series (or without a BOLD run) is processed for what it has, with
/// a warning; a visit with neither, or whose files are missing or unreadable, fails.
public struct PipelineVisitProcessor: VisitProcessor {
    public let parameters: VisitParameters
    public let parametersFingerprint: String

    /// What the fingerprint encodes: every parameter, and the version that applied them.
    private struct Fingerprint: Encodable {
        let nimetricsVersion: String
        let parameters: VisitParameters
    }

    /// What one modality's fingerprint encodes: its parameters and its per-visit files.
    private struct ModalityFingerprint<Parameters: Encodable>: Encodable {
        let nimetricsVersion: String
        let parameters: Parameters
        let files: [String: PathPattern]
    }

    private let modalityFingerprints: [Modality: String]

    /// - Throws: ``TrialError/io(path:reason:)`` when a per-visit file given without
    ///   placeholders does not exist (found before any visit runs, not once per visit).
    public init(parameters: VisitParameters) throws {
        self.parameters = parameters
        for pattern in parameters.files.fixed where !FileManager.default.fileExists(atPath: pattern.template) {
            throw TrialError.io(path: pattern.template, reason: "no such file")
        }
        let version = NimetricsVersion.string
        parametersFingerprint = try ProcessingParameters.fingerprint(Fingerprint(nimetricsVersion: version, parameters: parameters))
        let files = parameters.files
        func named(_ pairs: [(String, PathPattern?)]) -> [String: PathPattern] {
            Dictionary(uniqueKeysWithValues: pairs.compactMap { name, pattern in pattern.map { (name, $0) } })
        }
        modalityFingerprints = [
            .dwi: try ProcessingParameters.fingerprint(ModalityFingerprint(
                nimetricsVersion: version, parameters: parameters.diffusion,
                files: named([("dwi_atlas", files.dwiAtlas), ("dwi_atlas_table", files.dwiAtlasTable),
                              ("dwi_mask", files.dwiMask), ("lesion_mask", files.lesionMask)]))),
            .functional: try ProcessingParameters.fingerprint(ModalityFingerprint(
                nimetricsVersion: version, parameters: parameters.functional,
                files: named([("func_atlas", files.funcAtlas), ("func_atlas_table", files.funcAtlasTable),
                              ("func_mask", files.funcMask)]))),
        ]
    }

    /// The parameters that change one modality's results, so a changed functional parameter
    /// does not redo the DWI (and the other way round).
    public func parametersFingerprint(for modality: Modality?) -> String {
        modality.flatMap { modalityFingerprints[$0] } ?? parametersFingerprint
    }

    /// The diffusion pipeline's options for a visit, or nil when it has no DWI series. The
    /// outputs keep the DWI's entities (`space-T1w` of a QSIPrep series).
    func diffusionOptions(_ visit: VisitInput, outputFolder: String, threads: Int) throws -> DiffusionOptions? {
        guard let dwi = visit.dwi else { return nil }
        guard visit.bval != nil, visit.bvec != nil else {
            throw PipelineError(dwi, "no .bval/.bvec beside the DWI series")
        }
        let files = parameters.files
        var options = DiffusionOptions(dwiPath: dwi, bvalPath: visit.bval, bvecPath: visit.bvec,
                                       outputFolder: outputFolder + "/dwi", prefix: OutputNaming.prefix(fromInput: dwi))
        options.atlasPath = try files.dwiAtlas.map { try visitPath($0, visit) } ?? visit.dwiAtlas
        options.atlasTablePath = try files.dwiAtlasTable.map { try visitPath($0, visit) }
        options.maskPath = try files.dwiMask.map { try visitPath($0, visit) } ?? visit.dwiMask
        options.lesionMaskPath = try files.lesionMask.map { try visitPath($0, visit) } ?? visit.lesionMask
        options.parameters = parameters.diffusion
        options.threads = threads
        return options
    }

    /// The functional pipeline's options for each run of a visit (none when it has no BOLD
    /// run), labelled by run when there are several. Outputs are named by the BOLD's
    /// entities (task, run, space) and the atlas (`seg-<name>`, as XCP-D names them).
    func functionalOptions(_ visit: VisitInput, outputFolder: String, threads: Int) throws
        -> [(label: String?, options: FunctionalOptions)] {
        let files = parameters.files
        let given = try files.funcAtlas.map { try visitPath($0, visit) }
        return try visit.boldRuns.enumerated().map { k, run in
            guard let atlas = given ?? run.atlas else {
                throw PipelineError(run.bold, "no atlas for the BOLD run (give --atlas or --func-atlas, or a *_seg-<name>_dseg.nii.gz beside it)")
            }
            // A preprocessed run without its confounds cannot be denoised: that is an error
            // unless no denoising was asked for.
            if run.confounds == nil && parameters.functional.strategy != ConfoundStrategy.none {
                throw PipelineError(run.bold, "no confounds table beside the BOLD run (a *_desc-confounds_timeseries.tsv with the same entities); give --strategy none to process it without confound regression")
            }
            let prefix = OutputNaming.prefix(fromInput: run.bold) + "_seg-" + OutputNaming.atlasName(atlas)
            var options = FunctionalOptions(boldPath: run.bold, atlasPath: atlas, outputFolder: outputFolder + "/func", prefix: prefix)
            options.atlasTablePath = try files.funcAtlasTable.map { try visitPath($0, visit) }
            options.maskPath = try files.funcMask.map { try visitPath($0, visit) } ?? run.brainMask
            options.confoundsPath = run.confounds
            options.parameters = parameters.functional
            options.threads = threads
            let label = visit.boldRuns.count > 1 ? (run.label ?? String(k + 1)) : nil
            return (label, options)
        }
    }

    /// Every file the visit's pipelines read: the dataset's images and tables, the atlases
    /// and their label tables, masks and sidecars. A second or later run's roles carry its
    /// label (`bold_run-2`).
    public func inputFiles(for visit: VisitInput) throws -> [(role: String, path: String)] {
        let diffusion = try diffusionOptions(visit, outputFolder: "", threads: 1)?.inputFiles ?? []
        var functional: [(role: String, path: String)] = []
        var shared = Set<String>()
        for (k, run) in try functionalOptions(visit, outputFolder: "", threads: 1).enumerated() {
            for file in run.options.inputFiles {
                // The atlas and its table are read once per visit, whatever the runs.
                if file.role.hasPrefix("func_atlas") { if shared.insert(file.role).inserted { functional.append(file) }; continue }
                functional.append((k == 0 ? file.role : file.role + "_run-" + (run.label ?? String(k + 1)), file.path))
            }
        }
        return diffusion + functional
    }

    public func process(visit: VisitInput, outputFolder: String, threads: Int) throws -> VisitResult {
        guard visit.dwi != nil || visit.bold != nil else {
            throw PipelineError(visit.filePrefix, "no DWI series and no BOLD run found for this visit")
        }
        let wantsDiffusion = visit.modality != .functional, wantsFunctional = visit.modality != .dwi
        var result = VisitResult(metrics: [])
        func add(_ metrics: [VisitMetric], _ files: [String], _ warnings: [String], modality: String) {
            result.metrics += metrics
            result.files += files
            result.warnings += warnings.map { modality + ": " + $0 }
        }
        if let options = try diffusionOptions(visit, outputFolder: outputFolder, threads: threads) {
            let diffusion = try DiffusionPipeline.run(options)
            add(diffusion.metrics, diffusion.files, diffusion.warnings, modality: "dwi")
        } else if wantsDiffusion {
            result.warnings.append("no DWI series: diffusion metrics skipped")
        }
        let runs = try functionalOptions(visit, outputFolder: outputFolder, threads: threads)
        var perRun: [(label: String, metrics: [VisitMetric])] = []
        for (label, options) in runs {
            let functional = try FunctionalPipeline.run(options)
            result.files += functional.files
            result.warnings += functional.warnings.map { "func" + (label.map { " run-" + $0 } ?? "") + ": " + $0 }
            if let label { perRun.append((label, functional.metrics)) } else { result.metrics += functional.metrics }
        }
        if !perRun.isEmpty { result.metrics += RunCombination.combine(perRun) }
        if runs.isEmpty && wantsFunctional { result.warnings.append("no BOLD run: functional metrics skipped") }
        return result
    }

    private func visitPath(_ pattern: PathPattern, _ visit: VisitInput) throws -> String {
        try pattern.path(participant: visit.participant, session: visit.session)
    }
}
