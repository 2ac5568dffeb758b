import ArgumentParser
import Diffusion
import FileSystem
import Foundation
import Functional
import NIfTI
import Pipelines
import Reports
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
            nimetrics.sqlite, from the per-visit outputs and the clinical tables alone. Every \
            scheduled visit of sessions.tsv (or --clinical) is listed, a visit without images as \
            missing. Visits processed with different parameters are refused unless \
            --allow-mixed-parameters.

            Reports (unless --no-reports): after the visits, each visit's \
            sub-XX_ses-YY_report.html and each participant's OUTPUT/sub-XX.html; at group \
            level, OUTPUT/group/report.html with the trajectories of --report-metrics. \
            `nimetrics report OUTPUT` rebuilds them from the outputs alone.

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

    @OptionGroup(title: "Selection") var selection: DatasetSelectionOptions

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

    @Option(name: .customLong("atlas-space"),
            help: "The template space of the atlases (default: their file name's tpl- or space- entity); an atlas in another space than the data is warped into it with the derivatives' from-<space>_to-<data space> transform.")
    var atlasSpace: String?

    @Option(name: .customLong("dwi-mask"), help: "Brain mask on the DWI grid (default: automatic; path pattern).")
    var dwiMask: String?

    @Option(name: .customLong("func-mask"), help: "Brain mask on the BOLD grid (default: the dataset's, else non-zero voxels; path pattern).")
    var funcMask: String?

    @OptionGroup(title: "Lesions") var lesion: LesionOptions

    @OptionGroup(title: "Tensor fit") var tensorFit: TensorFitOptions
    @OptionGroup var functional: FunctionalProcessingOptions

    @Option(name: .customLong("baseline-session"),
            help: "Baseline session for change from baseline (default: the session with visit_month 0 or BL, else the earliest acq_time, else the first).")
    var baselineSession: String?

    @Option(help: "A clinical table (TSV keyed by participant_id and session_id; its sidecar FILE.json) merged with the dataset's participants.tsv and sessions.tsv.")
    var clinical: String?

    @Flag(name: .customLong("allow-mixed-parameters"),
          help: "Group level: combine visits processed with different parameters (each metric row then carries its parameters_id).")
    var allowMixedParameters = false

    @Option(name: .customLong("clinical-outcome"),
            help: "Clinical column whose change group/stats.tsv correlates with each metric's change (default: edss when present).")
    var clinicalOutcome: String?

    @Flag(help: "At participant level, build the group tables afterwards as well.")
    var group = false

    @Flag(name: .customLong("no-reports"), help: "Write no HTML report (visit, participant and trial reports are written by default).")
    var noReports = false

    @OptionGroup(title: "Reports") var reports: ReportOptions

    func validate() throws {
        if let jobs { try OptionCheck.atLeast(1, jobs, "--jobs") }
        if let threads { try OptionCheck.atLeast(1, threads, "--threads") }
        _ = try visitParameters()
    }

    /// What discovery looks for: labels, derivative datasets, task, space and filter.
    func discoveryOptions() throws -> DiscoveryOptions {
        var options = try selection.discoveryOptions(output: output)
        options.clinical = clinical
        return options
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
        files.atlasSpace = atlasSpace
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
                succeeded = try runParticipantLevel(&dataset, timer: &timer)
            }
            if analysisLevel == .group || group {
                try runGroupLevel(dataset)
                timer.lap("group")
            }
            if !succeeded { throw ExitCode(1) }
        }
    }

    /// Every visit of `dataset`, each visit's report as soon as its last scan is done, then the
    /// participants' pages; false when a visit failed.
    func runParticipantLevel(_ dataset: inout Dataset, timer: inout PhaseTimer) throws -> Bool {
        let parameters = try visitParameters()
        if parameters.files.funcAtlases.isEmpty, dataset.visits.contains(where: { $0.boldRuns.contains { $0.atlas == nil } }) {
            throw ValidationError("the dataset has BOLD runs without an atlas of their own: give --atlas or --func-atlas")
        }
        try DatasetSelectionOptions.chooseSpace(&dataset, atlas: parameters.files.funcAtlases.first)
        let processor = try PipelineVisitProcessor(parameters: parameters)
        timer.lap("set-up")
        let output = output
        let visitReport: @Sendable (VisitInput) -> Void = { visit in
            let folder = VisitFolder(participant: visit.participantID, session: visit.sessionID,
                                     path: output + "/" + visit.relativeFolder)
            if case .failure(let failure) = ReportWriter.writeVisitReport(folder, generator: ReportCommand.generator) {
                printWarning(failure.message)
            }
        }
        let summary = try TrialRunner.runParticipants(
            dataset: dataset, output: output, processor: processor, jobs: jobs, threads: threads,
            version: NimetricsVersion.string, progress: ConsoleProgressReporter(),
            visitFinished: noReports ? nil : visitReport)
        timer.lap("visits")
        if !noReports {
            let participants = Set(dataset.visits.map(\.participantID))
            let pages = ReportWriter.writeParticipantPages(output: output, participants: participants, generator: ReportCommand.generator)
            for failure in pages.failures { printWarning(failure) }
        }
        return summary.succeeded
    }

    /// The group tables, statistics and database, with the trial report in the same set.
    func runGroupLevel(_ dataset: Dataset) throws {
        var groupOptions = GroupOptions(baselineSession: baselineSession, allowMixedParameters: allowMixedParameters,
                                        clinicalOutcome: clinicalOutcome)
        if !noReports {
            // The trial report joins the tables' set: a kill leaves both of one run.
            let (output, metrics) = (output, reports.metrics)
            groupOptions.derivedFiles = [GroupDerivedFile(name: "report.html") { tables, path in
                try TrialReport.write(output: output, tables: tables, to: path, metrics: metrics, generator: ReportCommand.generator)
            }]
        }
        let summary = try TrialRunner.runGroup(dataset: dataset, output: output, options: groupOptions)
        for warning in summary.warnings { printWarning(warning) }
        print("group tables in \(summary.folder):")
        for file in summary.files { print("  " + file) }
    }
}
