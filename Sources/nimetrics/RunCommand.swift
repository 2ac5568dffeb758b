import ArgumentParser
import Diffusion
import FileSystem
import Foundation
import Functional
import NIfTI
import Pipelines
import Trial

/// `nimetrics run`: the BIDS-App style batch over a trial's visits.
struct RunCommand: ParsableCommand {
    enum AnalysisLevel: String, ExpressibleByArgument, CaseIterable {
        case participant, group
    }

    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Process every visit of a dataset (participant level) and build the trial tables (group level).",
        discussion: """
            INPUT is a BIDS dataset (sub-*/ses-*/dwi and func, participants.tsv, \
            sub-*/sub-*_sessions.tsv, fMRIPrep-style confounds beside each BOLD run) or a \
            manifest TSV (participant_id, session_id, dwi, bval, bvec, bold, confounds, and \
            clinical columns; paths relative to the manifest).

            participant: each visit's maps and tables into OUTPUT/sub-XX/ses-YY/{dwi,func}, \
            plus, per modality, sub-XX_ses-YY_desc-{dwi,func}_metrics.tsv and \
            sub-XX_ses-YY_desc-{dwi,func}_visit.json (status, timings, \
            parameters, sha256 of every input). Visits whose inputs and parameters are \
            unchanged are skipped; failed ones are redone. Exit status 1 when a visit failed.

            group: OUTPUT/group/metrics_long.tsv, visits.tsv, change_from_baseline.tsv and \
            nimetrics.sqlite, from the per-visit outputs alone.

            OUTPUT may not be INPUT, lie inside it (except below INPUT/derivatives/, e.g. \
            INPUT/derivatives/nimetrics) or hold it; nothing below OUTPUT is written through \
            a symbolic link.

            Preprocessed images come from BIDS derivative datasets (--derivatives, default \
            every dataset in INPUT/derivatives/ but the output): QSIPrep's desc-preproc DWI \
            with its gradients and brain mask, fMRIPrep's desc-preproc BOLD of every run of \
            --task with its confounds, sidecar and brain mask; the raw dataset gives the visits \
            and the clinical tables. By default the volumes fMRIPrep flags as non-steady-state \
            are dropped (--dummy-scans auto), a BOLD run without its confounds fails unless \
            --strategy none, and a session of several runs gets per-run values and the \
            session's (correlations averaged in Fisher z, weighted by the volumes kept).

            Every per-visit option of `nimetrics dti` and `nimetrics fmri` applies to each \
            visit. Options that name a file (atlases, label tables, masks) take a pattern in \
            which {subject} and {session} stand for the visit's labels (without sub-/ses-), \
            for example --lesion-mask 'masks/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz'. \
            --atlas, --dwi-atlas and --func-atlas take several atlases (give them after INPUT \
            OUTPUT LEVEL, or end the list with another option): each gives its own outputs, \
            named seg-<atlas>, and its metrics carry its name in the atlas column. \
            The mask of `dti` is --dwi-mask here, that of `fmri` --func-mask (default: the \
            dataset's desc-brain mask beside the BOLD run). The content of every file a visit \
            reads (images, gradient files, sidecars, confounds, atlases and their label tables, \
            masks) is hashed into its record, so editing any of them redoes the visit.
            """
    )

    @Argument(help: "BIDS dataset folder (raw, or a derivatives dataset) or manifest TSV.")
    var input: String

    @Argument(help: "Output folder (BIDS derivatives).")
    var output: String

    @Argument(help: "participant or group.")
    var analysisLevel: AnalysisLevel

    @Option(name: .customLong("participant-label"), parsing: .upToNextOption, help: "Participants to process (with or without 'sub-').")
    var participantLabels: [String] = []

    @Option(name: .customLong("session-label"), parsing: .upToNextOption, help: "Sessions to process (with or without 'ses-').")
    var sessionLabels: [String] = []

    @Option(parsing: .upToNextOption,
            help: "BIDS derivative datasets with the preprocessed images (fMRIPrep, QSIPrep): PATH or NAME=PATH (default: every dataset in INPUT/derivatives/).")
    var derivatives: [String] = []

    @Option(help: "The task of the BOLD runs; every run of it is processed.")
    var task = "rest"

    @Option(help: "The space of the BOLD runs (default: the only one found, else the one whose grid matches the atlas).")
    var space: String?

    @Option(name: .customLong("bids-filter-file"), help: "A BIDS filter file in fMRIPrep's format ({\"bold\": {\"run\": 1}, \"dwi\": {...}}).")
    var bidsFilterFile: String?

    @Option(parsing: .unconditional, help: "Visits processed at once (default: cores).")
    var jobs: Int?

    @Option(parsing: .unconditional, help: "Threads per visit (default: cores / jobs).")
    var threads: Int?

    @OptionGroup(title: "Atlas (each a path pattern)") var atlas: AtlasOptions

    @Option(name: .customLong("dwi-atlas"), parsing: .upToNextOption,
            help: "Label atlases on the DWI grid (replace --atlas for DWI; path patterns).")
    var dwiAtlas: [String] = []

    @Option(name: .customLong("func-atlas"), parsing: .upToNextOption,
            help: "Label atlases on the BOLD grid (replace --atlas for BOLD; path patterns).")
    var funcAtlas: [String] = []

    @Option(name: .customLong("dwi-mask"), help: "Brain mask on the DWI grid (default: automatic; path pattern).")
    var dwiMask: String?

    @Option(name: .customLong("func-mask"), help: "Brain mask on the BOLD grid (default: the dataset's, else non-zero voxels; path pattern).")
    var funcMask: String?

    @OptionGroup(title: "Lesions") var lesion: LesionOptions

    @OptionGroup(title: "Tensor fit") var tensorFit: TensorFitOptions
    @OptionGroup var functional: FunctionalProcessingOptions

    @Option(name: .customLong("baseline-session"), help: "Baseline session for change from baseline (default: earliest acq_time).")
    var baselineSession: String?

    @Option(name: .customLong("clinical-outcome"),
            help: "Clinical column whose change group/stats.tsv correlates with each metric's change (default: edss when present).")
    var clinicalOutcome: String?

    @Flag(help: "At participant level, build the group tables afterwards as well.")
    var group = false

    func validate() throws {
        guard BIDSLabel.isValid(task) else { throw ValidationError("--task must be a BIDS label (letters and digits), got '\(task)'") }
        if let space, !BIDSLabel.isValid(space) { throw ValidationError("--space must be a BIDS label (letters and digits), got '\(space)'") }
        for item in derivatives where item.hasSuffix("=") || item.hasPrefix("=") {
            throw ValidationError("--derivatives takes PATH or NAME=PATH, got '\(item)'")
        }
        if let jobs { try OptionCheck.atLeast(1, jobs, "--jobs") }
        if let threads { try OptionCheck.atLeast(1, threads, "--threads") }
        _ = try visitParameters()
    }

    /// What discovery looks for: labels, derivative datasets, task, space and filter.
    func discoveryOptions() throws -> DiscoveryOptions {
        var options = DiscoveryOptions()
        options.participantLabels = participantLabels
        options.sessionLabels = sessionLabels
        // NAME=PATH names a dataset as XCP-D's --derivatives does; the name is a label only.
        options.derivatives = derivatives.isEmpty ? nil : derivatives.map { item in
            guard let equals = item.firstIndex(of: "="), !FileManager.default.fileExists(atPath: item) else { return item }
            return String(item[item.index(after: equals)...])
        }
        options.task = task
        options.space = space
        options.filter = try bidsFilterFile.map(BIDSFilter.read) ?? BIDSFilter()
        options.excluded = [output]
        return options
    }

    /// When the BOLD runs come in several spaces and no --space was given, keeps the one
    /// whose grid is the (first) atlas's.
    func chooseSpace(_ dataset: inout Dataset, atlas: PathPattern?) throws {
        guard let atlas, let visit = dataset.visits.first(where: { $0.bold != nil }) else {
            // Without one atlas for all, there is no grid to choose by: several spaces are an error.
            return try dataset.chooseSpaces { _ in false }
        }
        let atlasPath = try atlas.path(participant: visit.participant, session: visit.session)
        let grid = try NIfTIFile.readHeader(atlasPath)
        try dataset.chooseSpaces { image in try NIfTIFile.readHeader(image).hasSameGrid(as: grid) }
    }

    /// The per-visit parameters: the option groups' values and the file patterns.
    func visitParameters() throws -> VisitParameters {
        func pattern(_ text: String?, _ option: String) throws -> PathPattern? {
            guard let text else { return nil }
            do { return try PathPattern(text) } catch { throw ValidationError("\(option): \(error)") }
        }
        func patterns(_ texts: [String], _ option: String) throws -> [PathPattern] {
            try texts.map { try pattern($0, option)! }
        }
        var parameters = VisitParameters()
        parameters.diffusion = tensorFit.parameters(resampleAtlas: atlas.resampleAtlas)
        parameters.functional = functional.parameters(resampleAtlas: atlas.resampleAtlas)
        var files = VisitFilePatterns()
        files.dwiAtlases = try dwiAtlas.isEmpty ? patterns(atlas.atlas, "--atlas") : patterns(dwiAtlas, "--dwi-atlas")
        files.funcAtlases = try funcAtlas.isEmpty ? patterns(atlas.atlas, "--atlas") : patterns(funcAtlas, "--func-atlas")
        // --atlas-table belongs to --atlas; --dwi-atlas and --func-atlas use the tables beside them.
        files.dwiAtlasTables = dwiAtlas.isEmpty ? try patterns(atlas.atlasTable, "--atlas-table") : []
        files.funcAtlasTables = funcAtlas.isEmpty ? try patterns(atlas.atlasTable, "--atlas-table") : []
        files.dwiMask = try pattern(dwiMask, "--dwi-mask")
        files.funcMask = try pattern(funcMask, "--func-mask")
        files.lesionMask = try pattern(lesion.lesionMask, "--lesion-mask")
        try AtlasOptions.checkNames(dwiAtlas.filter { !$0.contains("{") }, option: "--dwi-atlas")
        try AtlasOptions.checkNames(funcAtlas.filter { !$0.contains("{") }, option: "--func-atlas")
        parameters.files = files
        return parameters
    }

    func run() throws {
        try runReportingFailure {
            // A wrong OUTPUT (a file of that name, a path too long, a folder not writable) is
            // reported before the dataset is read.
            try FileSystem.checkFolderCanBeCreated(output)
            var timer = PhaseTimer("run")
            var dataset = try Dataset.discover(input, options: discoveryOptions())
            for warning in dataset.warnings { printWarning(warning) }
            timer.lap("discovery")
            var succeeded = true
            if analysisLevel == .participant {
                let parameters = try visitParameters()
                if parameters.files.funcAtlases.isEmpty, dataset.visits.contains(where: { $0.boldRuns.contains { $0.atlas == nil } }) {
                    throw ValidationError("the dataset has BOLD runs without an atlas of their own: give --atlas or --func-atlas")
                }
                try chooseSpace(&dataset, atlas: parameters.files.funcAtlases.first)
                let processor = try PipelineVisitProcessor(parameters: parameters)
                timer.lap("set-up")
                let summary = try TrialRunner.runParticipants(
                    dataset: dataset, output: output, processor: processor, jobs: jobs, threads: threads,
                    version: NimetricsVersion.string, progress: ConsoleProgressReporter())
                succeeded = summary.succeeded
                timer.lap("visits")
            }
            if analysisLevel == .group || group {
                let summary = try TrialRunner.runGroup(dataset: dataset, output: output, baselineSession: baselineSession,
                                                       clinicalOutcome: clinicalOutcome)
                for warning in summary.warnings { printWarning(warning) }
                print("group tables in \(summary.folder):")
                for file in summary.files { print("  " + file) }
                timer.lap("group")
            }
            if !succeeded { throw ExitCode(1) }
        }
    }
}
