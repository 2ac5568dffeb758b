import ArgumentParser
import Diffusion
import Foundation
import Functional
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

            Every per-visit option of `nimetrics dti` and `nimetrics fmri` applies to each \
            visit. Options that name a file (atlases, label tables, masks) take a pattern in \
            which {subject} and {session} stand for the visit's labels (without sub-/ses-), \
            for example --lesion-mask 'masks/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz'. \
            The mask of `dti` is --dwi-mask here, that of `fmri` --func-mask (default: the \
            dataset's desc-brain mask beside the BOLD run). The content of every file a visit \
            reads (images, gradient files, sidecars, confounds, atlases and their label tables, \
            masks) is hashed into its record, so editing any of them redoes the visit.
            """
    )

    @Argument(help: "BIDS dataset folder or manifest TSV.")
    var input: String

    @Argument(help: "Output folder (BIDS derivatives).")
    var output: String

    @Argument(help: "participant or group.")
    var analysisLevel: AnalysisLevel

    @Option(name: .customLong("participant-label"), parsing: .upToNextOption, help: "Participants to process (with or without 'sub-').")
    var participantLabels: [String] = []

    @Option(name: .customLong("session-label"), parsing: .upToNextOption, help: "Sessions to process (with or without 'ses-').")
    var sessionLabels: [String] = []

    @Option(parsing: .unconditional, help: "Visits processed at once (default: cores).")
    var jobs: Int?

    @Option(parsing: .unconditional, help: "Threads per visit (default: cores / jobs).")
    var threads: Int?

    @OptionGroup(title: "Atlas (each a path pattern)") var atlas: AtlasOptions

    @Option(name: .customLong("dwi-atlas"), help: "Label atlas on the DWI grid (overrides --atlas for DWI; path pattern).")
    var dwiAtlas: String?

    @Option(name: .customLong("func-atlas"), help: "Label atlas on the BOLD grid (overrides --atlas for BOLD; path pattern).")
    var funcAtlas: String?

    @Option(name: .customLong("dwi-mask"), help: "Brain mask on the DWI grid (default: automatic; path pattern).")
    var dwiMask: String?

    @Option(name: .customLong("func-mask"), help: "Brain mask on the BOLD grid (default: the dataset's, else non-zero voxels; path pattern).")
    var funcMask: String?

    @OptionGroup(title: "Lesions") var lesion: LesionOptions

    @OptionGroup(title: "Tensor fit") var tensorFit: TensorFitOptions
    @OptionGroup var functional: FunctionalProcessingOptions

    @Option(name: .customLong("baseline-session"), help: "Baseline session for change from baseline (default: earliest acq_time).")
    var baselineSession: String?

    @Flag(help: "At participant level, build the group tables afterwards as well.")
    var group = false

    func validate() throws {
        if let jobs { try OptionCheck.atLeast(1, jobs, "--jobs") }
        if let threads { try OptionCheck.atLeast(1, threads, "--threads") }
        _ = try visitParameters()
    }

    /// The per-visit parameters: the option groups' values and the file patterns.
    func visitParameters() throws -> VisitParameters {
        func pattern(_ text: String?, _ option: String) throws -> PathPattern? {
            guard let text else { return nil }
            do { return try PathPattern(text) } catch { throw ValidationError("\(option): \(error)") }
        }
        var parameters = VisitParameters()
        parameters.diffusion = tensorFit.parameters(resampleAtlas: atlas.resampleAtlas)
        parameters.functional = functional.parameters(resampleAtlas: atlas.resampleAtlas)
        var files = VisitFilePatterns()
        files.dwiAtlas = try pattern(dwiAtlas, "--dwi-atlas") ?? pattern(atlas.atlas, "--atlas")
        files.funcAtlas = try pattern(funcAtlas, "--func-atlas") ?? pattern(atlas.atlas, "--atlas")
        // --atlas-table belongs to --atlas; --dwi-atlas and --func-atlas use the table beside them.
        files.dwiAtlasTable = dwiAtlas == nil ? try pattern(atlas.atlasTable, "--atlas-table") : nil
        files.funcAtlasTable = funcAtlas == nil ? try pattern(atlas.atlasTable, "--atlas-table") : nil
        files.dwiMask = try pattern(dwiMask, "--dwi-mask")
        files.funcMask = try pattern(funcMask, "--func-mask")
        files.lesionMask = try pattern(lesion.lesionMask, "--lesion-mask")
        parameters.files = files
        return parameters
    }

    func run() throws {
        try runReportingFailure {
            var timer = PhaseTimer("run")
            let dataset = try Dataset.discover(input, participantLabels: participantLabels, sessionLabels: sessionLabels)
            for warning in dataset.warnings { printWarning(warning) }
            timer.lap("discovery")
            var succeeded = true
            if analysisLevel == .participant {
                let parameters = try visitParameters()
                if parameters.files.funcAtlas == nil, dataset.visits.contains(where: { $0.bold != nil }) {
                    throw ValidationError("the dataset has BOLD runs: give --atlas or --func-atlas")
                }
                let processor = try PipelineVisitProcessor(parameters: parameters)
                timer.lap("set-up")
                let summary = try TrialRunner.runParticipants(
                    dataset: dataset, output: output, processor: processor, jobs: jobs, threads: threads,
                    version: NimetricsVersion.string, progress: ConsoleProgressReporter())
                succeeded = summary.succeeded
                timer.lap("visits")
            }
            if analysisLevel == .group || group {
                let summary = try TrialRunner.runGroup(dataset: dataset, output: output, baselineSession: baselineSession)
                for warning in summary.warnings { printWarning(warning) }
                print("group tables in \(summary.folder):")
                for file in summary.files { print("  " + file) }
                timer.lap("group")
            }
            if !succeeded { throw ExitCode(1) }
        }
    }
}
