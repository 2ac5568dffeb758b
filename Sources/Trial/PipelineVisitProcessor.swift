import Diffusion
import Foundation
import Functional
import Pipelines
import Tabular

/// Per-visit files of a batch that are not part of the dataset, each a ``PathPattern`` that
/// may name the visit (`masks/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz`).
public struct VisitFilePatterns: Sendable, Equatable, Codable {
    /// Label atlases on the DWI grid, each summarised on its own; none: the visit's own atlas
    /// (``VisitInput/dwiAtlas``), if any.
    public var dwiAtlases: [PathPattern] = []
    /// The label tables of ``dwiAtlases``, one per atlas in the same order; empty: the `.tsv`
    /// beside each atlas.
    public var dwiAtlasTables: [PathPattern] = []
    /// Label atlases on the BOLD grid, each giving its own outputs; none: each run's own atlas
    /// (``BOLDRun/atlas``).
    public var funcAtlases: [PathPattern] = []
    /// The label tables of ``funcAtlases``, one per atlas in the same order; empty: the
    /// `.tsv` beside each atlas.
    public var funcAtlasTables: [PathPattern] = []
    /// Brain mask on the DWI grid (default: automatic).
    public var dwiMask: PathPattern?
    /// Brain mask on the BOLD grid (default: the dataset's mask beside the BOLD run, else
    /// voxels non-zero in the first volume).
    public var funcMask: PathPattern?
    /// Lesion mask on the DWI grid: adds `lesion` and `normal_appearing_tissue` summaries.
    public var lesionMask: PathPattern?
    /// The template space of the given atlases (`--atlas-space`); nil: each atlas's file name
    /// says (``AtlasFile/templateSpace``). An atlas in another space than the data is warped
    /// into it (``TemplateAtlases``).
    public var atlasSpace: String?

    public init() {}

    /// The patterns that name one file for every visit.
    var fixed: [PathPattern] {
        (dwiAtlases + dwiAtlasTables + funcAtlases + funcAtlasTables + [dwiMask, funcMask, lesionMask].compactMap { $0 })
            .filter(\.isFixed)
    }

    /// Checks that the tables pair with the atlases, and that the atlases of each modality
    /// named without placeholders give distinct `seg-` names (those with placeholders are
    /// checked visit by visit).
    /// - Throws: ``TrialError/badPattern(pattern:reason:)`` for tables that do not pair;
    ///   ``PipelineError`` naming both atlases that give one name.
    func validate() throws {
        for (atlases, tables) in [(dwiAtlases, dwiAtlasTables), (funcAtlases, funcAtlasTables)]
            where !tables.isEmpty && tables.count != atlases.count {
            throw TrialError.badPattern(pattern: tables.map(\.template).joined(separator: " "),
                                        reason: "\(tables.count) label tables for \(atlases.count) atlases: give one per atlas, in the same order")
        }
        for atlases in [dwiAtlases, funcAtlases] { _ = try OutputNaming.atlasNames(atlases.filter(\.isFixed).map(\.template)) }
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
        let files: [String: Patterns]
    }

    /// One pattern as its text, several as a list: the fingerprint of one atlas is what it
    /// was before several were allowed, so outputs made then are not redone for it.
    private struct Patterns: Encodable {
        let patterns: [PathPattern]
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            if patterns.count == 1 { try container.encode(patterns[0]) } else { try container.encode(patterns) }
        }
    }

    private let modalityFingerprints: [Modality: String]

    /// - Throws: ``TrialError/io(path:reason:)`` when a per-visit file given without
    ///   placeholders does not exist (found before any visit runs, not once per visit).
    public init(parameters: VisitParameters) throws {
        self.parameters = parameters
        try parameters.files.validate()
        for pattern in parameters.files.fixed where !FileManager.default.fileExists(atPath: pattern.template) {
            throw TrialError.io(path: pattern.template, reason: "no such file")
        }
        let version = NimetricsVersion.string
        parametersFingerprint = try ProcessingParameters.fingerprint(Fingerprint(nimetricsVersion: version, parameters: parameters))
        let files = parameters.files
        func named(_ pairs: [(String, [PathPattern])]) -> [String: Patterns] {
            Dictionary(uniqueKeysWithValues: pairs.compactMap { name, patterns in patterns.isEmpty ? nil : (name, Patterns(patterns: patterns)) })
        }
        func optional(_ pattern: PathPattern?) -> [PathPattern] { pattern.map { [$0] } ?? [] }
        modalityFingerprints = [
            .dwi: try ProcessingParameters.fingerprint(ModalityFingerprint(
                nimetricsVersion: version, parameters: parameters.diffusion,
                files: named([("dwi_atlas", files.dwiAtlases), ("dwi_atlas_table", files.dwiAtlasTables),
                              ("dwi_mask", optional(files.dwiMask)), ("lesion_mask", optional(files.lesionMask))]))),
            .functional: try ProcessingParameters.fingerprint(ModalityFingerprint(
                nimetricsVersion: version, parameters: parameters.functional,
                files: named([("func_atlas", files.funcAtlases), ("func_atlas_table", files.funcAtlasTables),
                              ("func_mask", optional(files.funcMask))]))),
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
        options.atlases = try atlases(files.dwiAtlases, tables: files.dwiAtlasTables, visit)
            ?? visit.dwiAtlas.map { [AtlasFile(path: $0)] } ?? []
        options.maskPath = try files.dwiMask.map { try visitPath($0, visit) } ?? visit.dwiMask
        options.lesionMaskPath = try files.lesionMask.map { try visitPath($0, visit) } ?? visit.lesionMask
        options.parameters = parameters.diffusion
        options.threads = threads
        return options
    }

    /// The atlases given as patterns, with their tables, for a visit; nil when none is given.
    private func atlases(_ patterns: [PathPattern], tables: [PathPattern], _ visit: VisitInput) throws -> [AtlasFile]? {
        guard !patterns.isEmpty else { return nil }
        return try patterns.enumerated().map { k, pattern in
            AtlasFile(path: try visitPath(pattern, visit), tablePath: try tables.isEmpty ? nil : visitPath(tables[k], visit),
                      space: parameters.files.atlasSpace)
        }
    }

    /// One pass of the functional pipeline: a run of the visit with one of its atlases.
    struct FunctionalPass {
        /// The run's label when the visit has several runs, else nil.
        var label: String?
        /// The atlas's position among the run's atlases, and its `seg-` name.
        var atlasIndex: Int
        var atlasName: String
        var options: FunctionalOptions
    }

    /// The functional pipeline's options for each run of a visit and each atlas (none when it
    /// has no BOLD run), run by run, each run's atlases in order. Outputs are named by the
    /// BOLD's entities (task, run, space) and the atlas (`seg-<name>`, as XCP-D names them).
    ///
    /// Each pass streams the run's BOLD series once, so several atlases cost one read of the
    /// series each (the streaming extraction keeps one atlas's regions).
    func functionalOptions(_ visit: VisitInput, outputFolder: String, threads: Int) throws -> [FunctionalPass] {
        let files = parameters.files
        let given = try atlases(files.funcAtlases, tables: files.funcAtlasTables, visit)
        return try visit.boldRuns.enumerated().flatMap { k, run -> [FunctionalPass] in
            guard let atlases = given ?? run.atlas.map({ [AtlasFile(path: $0)] }) else {
                throw PipelineError(run.bold, "no atlas for the BOLD run (give --atlas or --func-atlas, or a *_seg-<name>_dseg.nii.gz beside it)")
            }
            // A preprocessed run without its confounds cannot be denoised: that is an error
            // unless no denoising was asked for.
            if run.confounds == nil && parameters.functional.strategy != ConfoundStrategy.none {
                throw PipelineError(run.bold, "no confounds table beside the BOLD run (a *_desc-confounds_timeseries.tsv with the same entities); give --strategy none to process it without confound regression")
            }
            let names = try OutputNaming.atlasNames(atlases.map(\.path))
            let label = visit.boldRuns.count > 1 ? (run.label ?? String(k + 1)) : nil
            return try zip(atlases, names).enumerated().map { a, pair in
                let (atlas, name) = pair
                let prefix = OutputNaming.prefix(fromInput: run.bold) + "_seg-" + name
                var options = FunctionalOptions(boldPath: run.bold, atlasPath: atlas.path, outputFolder: outputFolder + "/func", prefix: prefix)
                options.atlasTablePath = atlas.tablePath
                options.maskPath = try files.funcMask.map { try visitPath($0, visit) } ?? run.brainMask
                options.confoundsPath = run.confounds
                options.parameters = parameters.functional
                options.threads = threads
                return FunctionalPass(label: label, atlasIndex: a, atlasName: name, options: options)
            }
        }
    }

    /// Every file the visit's pipelines read: the dataset's images and tables, the atlases
    /// and their label tables, masks and sidecars. A second or later run's roles carry its
    /// label (`bold_run-2`); with several atlases, each atlas's roles carry its name
    /// (`func_atlas_seg-Schaefer100`).
    public func inputFiles(for visit: VisitInput) throws -> [(role: String, path: String)] {
        let diffusion = try diffusionOptions(visit, outputFolder: "", threads: 1)?.inputFiles ?? []
        var functional: [(role: String, path: String)] = []
        var shared = Set<String>()
        let passes = try functionalOptions(visit, outputFolder: "", threads: 1)
        let severalAtlases = passes.contains { $0.atlasIndex > 0 }
        var runIndex = -1
        for pass in passes {
            if pass.atlasIndex == 0 { runIndex += 1 }
            for file in pass.options.inputFiles {
                // The atlases and their tables are read once per visit, whatever the runs.
                if file.role.hasPrefix("func_atlas") {
                    let role = file.role + (severalAtlases ? "_seg-" + pass.atlasName : "")
                    if shared.insert(role).inserted { functional.append((role, file.path)) }
                    continue
                }
                // The run's own files, once whatever its atlases.
                guard pass.atlasIndex == 0 else { continue }
                functional.append((runIndex == 0 ? file.role : file.role + "_run-" + (pass.label ?? String(runIndex + 1)), file.path))
            }
        }
        return diffusion + functional + (try atlasTransforms(visit))
    }

    /// `--atlas-space` for the BOLD's atlases when they are given (a run's own atlas, beside
    /// it in its space, is never taken to be in a template space).
    private var givenFuncAtlasSpace: String? { parameters.files.funcAtlases.isEmpty ? nil : parameters.files.atlasSpace }

    /// The transforms that take the visit's template-space atlases into its spaces
    /// (``TemplateAtlases``), each once: `dwi_atlas_transform`, `func_atlas_transform`, with
    /// the atlas's name when there are several (`_seg-<name>`).
    func atlasTransforms(_ visit: VisitInput) throws -> [(role: String, path: String)] {
        var found: [(role: String, path: String)] = []
        if let options = try diffusionOptions(visit, outputFolder: "", threads: 1) {
            for atlas in options.atlases {
                guard let transform = try TemplateAtlases.transform(for: atlas, image: options.dwiPath, visit: visit) else { continue }
                found.append(("dwi_atlas_transform" + (options.atlases.count > 1 ? "_seg-" + atlas.name : ""), transform))
            }
        }
        let passes = try functionalOptions(visit, outputFolder: "", threads: 1)
        let several = passes.contains { $0.atlasIndex > 0 }
        for pass in passes {
            let atlas = AtlasFile(path: pass.options.atlasPath, tablePath: pass.options.atlasTablePath, space: givenFuncAtlasSpace)
            guard let transform = try TemplateAtlases.transform(for: atlas, image: pass.options.boldPath, visit: visit) else { continue }
            let role = "func_atlas_transform" + (several ? "_seg-" + pass.atlasName : "")
            if !found.contains(where: { $0.role == role || $0.path == transform }) { found.append((role, transform)) }
        }
        return found
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
        var warped: [String: AtlasFile] = [:]
        if var options = try diffusionOptions(visit, outputFolder: outputFolder, threads: threads) {
            options.atlases = try options.atlases.map {
                try TemplateAtlases.inSpace(of: options.dwiPath, $0, modality: "dwi", visit: visit, outputFolder: outputFolder,
                                            threads: threads, warped: &warped)
            }
            let diffusion = try DiffusionPipeline.run(options)
            add(diffusion.metrics, diffusion.files, diffusion.warnings, modality: "dwi")
        } else if wantsDiffusion {
            result.warnings.append("no DWI series: diffusion metrics skipped")
        }
        let passes = try functionalOptions(visit, outputFolder: outputFolder, threads: threads)
        let severalAtlases = passes.contains { $0.atlasIndex > 0 }
        // Per atlas (by position: a run's own atlas is each run's first), its runs' metrics.
        var perAtlas: [(name: String, runs: [(label: String?, metrics: [VisitMetric])])] = []
        for var pass in passes {
            let atlas = try TemplateAtlases.inSpace(
                of: pass.options.boldPath, AtlasFile(path: pass.options.atlasPath, tablePath: pass.options.atlasTablePath, space: givenFuncAtlasSpace),
                modality: "bold", visit: visit, outputFolder: outputFolder, threads: threads, warped: &warped)
            (pass.options.atlasPath, pass.options.atlasTablePath) = (atlas.path, atlas.tablePath)
            let functional = try FunctionalPipeline.run(pass.options)
            result.files += functional.files
            let tag = (pass.label.map { " run-" + $0 } ?? "") + (severalAtlases ? " seg-" + pass.atlasName : "")
            result.warnings += functional.warnings.map { "func" + tag + ": " + $0 }
            if pass.atlasIndex == perAtlas.count { perAtlas.append((pass.atlasName, [])) }
            perAtlas[pass.atlasIndex].runs.append((pass.label, functional.metrics))
        }
        // The session's values combine each atlas's runs; then the atlases are combined.
        let combined = perAtlas.map { atlas in
            let perRun = atlas.runs.compactMap { run in run.label.map { ($0, run.metrics) } }
            return (name: atlas.name, metrics: perRun.isEmpty ? atlas.runs.flatMap(\.metrics) : RunCombination.combine(perRun))
        }
        result.metrics += AtlasCombination.combine(combined, dependsOnAtlas: AtlasCombination.functionalDependsOnAtlas)
        if passes.isEmpty && wantsFunctional { result.warnings.append("no BOLD run: functional metrics skipped") }
        return result
    }

    private func visitPath(_ pattern: PathPattern, _ visit: VisitInput) throws -> String {
        try pattern.path(participant: visit.participant, session: visit.session)
    }
}
