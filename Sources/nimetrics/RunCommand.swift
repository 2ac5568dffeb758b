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
            plus sub-XX_ses-YY_metrics.tsv and sub-XX_ses-YY_visit.json (status, timings, \
            parameters, sha256 of every input). Visits whose inputs and parameters are \
            unchanged are skipped; failed ones are redone. Exit status 1 when a visit failed.

            group: OUTPUT/group/metrics_long.tsv, visits.tsv, change_from_baseline.tsv and \
            nimetrics.sqlite, from the per-visit outputs alone.
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

    @Option(help: "Label atlas used for both DWI and BOLD (with its .tsv beside it).")
    var atlas: String?

    @Option(name: .customLong("dwi-atlas"), help: "Label atlas on the DWI grid (overrides --atlas for DWI).")
    var dwiAtlas: String?

    @Option(name: .customLong("func-atlas"), help: "Label atlas on the BOLD grid (overrides --atlas for BOLD).")
    var funcAtlas: String?

    @Flag(name: .customLong("resample-atlas"), help: "Resample atlases to each image's grid by nearest neighbour.")
    var resampleAtlas = false

    @Option(help: "Visits processed at once (default: cores).")
    var jobs: Int?

    @Option(help: "Threads per visit (default: cores / jobs).")
    var threads: Int?

    @Option(help: "Tensor fit: wls or ols.")
    var fit: TensorFitMethod = .wls

    @Option(name: .customLong("max-b"), help: "Largest b-value in the tensor fit.")
    var maxB = 1500.0

    @Option(help: "Confound strategy: none, 6P, 24P or 36P.")
    var strategy: ConfoundStrategy = .sixP

    @Option(name: .customLong("high-pass"), help: "High-pass cut-off in Hz (0 for none).")
    var highPass = 0.01

    @Option(name: .customLong("low-pass"), help: "Low-pass cut-off in Hz (0 for none).")
    var lowPass = 0.08

    @Option(name: .customLong("fd-threshold"), help: "Censor volumes with framewise displacement above this (mm).")
    var fdThreshold: Double?

    @Option(name: .customLong("dummy-scans"), help: "Non-steady-state volumes to drop.")
    var dummyScans = 0

    @Flag(help: "Also compute partial correlation.")
    var partial = false

    @Option(name: .customLong("baseline-session"), help: "Baseline session for change from baseline (default: earliest acq_time).")
    var baselineSession: String?

    @Flag(help: "At participant level, build the group tables afterwards as well.")
    var group = false

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if highPass < 0 || lowPass < 0 { throw ValidationError("band limits must not be negative") }
        if highPass > 0 && lowPass > 0 && highPass >= lowPass {
            throw ValidationError("--high-pass must be below --low-pass")
        }
        if dummyScans < 0 { throw ValidationError("--dummy-scans must not be negative") }
    }

    func run() throws {
        try runReportingFailure {
            var timer = PhaseTimer("run")
            let dataset = try Dataset.discover(input, participantLabels: participantLabels, sessionLabels: sessionLabels)
            for warning in dataset.warnings { printWarning(warning) }
            timer.lap("discovery")
            var succeeded = true
            if analysisLevel == .participant {
                var parameters = VisitParameters()
                parameters.dwiAtlas = dwiAtlas ?? atlas
                parameters.funcAtlas = funcAtlas ?? atlas
                parameters.resampleAtlas = resampleAtlas
                parameters.fitMethod = fit
                parameters.maximumB = maxB
                parameters.strategy = strategy
                parameters.highPass = highPass > 0 ? highPass : nil
                parameters.lowPass = lowPass > 0 ? lowPass : nil
                parameters.fdThreshold = fdThreshold
                parameters.dummyScans = dummyScans
                parameters.partialCorrelation = partial
                if parameters.funcAtlas == nil, dataset.visits.contains(where: { $0.bold != nil }) {
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
