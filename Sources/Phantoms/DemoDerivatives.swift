import Foundation
import NIfTI
import Tabular

/// The demo trial as a study receives it from its preprocessing pipelines: a raw BIDS dataset
/// with fMRIPrep (23.x) and QSIPrep (0.2x) derivative datasets beside it, and the situations a
/// real cohort brings: second runs, non-steady-state volumes, a multi-shell visit and a missed
/// visit. The voxels follow the same model, truth and planted changes as the ``DemoTrial/Layout/bids``
/// layout; the preprocessed images are the phantom itself, on the atlas grid (as a real
/// derivative is once resampled to the atlas's space).
extension DemoTrial {
    // MARK: - The plan

    /// One resting-state run of a visit.
    public struct PlannedRun: Equatable, Sendable {
        /// The BIDS run index, from 1.
        public var run: Int
        /// The leading volumes before the steady state: brighter, flagged in the confounds
        /// table by one `non_steady_state_outlierXX` column each (0: none, and no such column).
        public var nonSteadyStateVolumes: Int
    }

    /// What the derivatives layout holds for one visit of the design.
    public struct PlannedVisit: Equatable, Sendable {
        /// 0-based participant index.
        public var participant: Int
        /// Index into ``DemoTrial/sessions``.
        public var visit: Int
        /// False for the missed visit: a `sessions.tsv` row with clinical data, no image in any tree.
        public var imaged: Bool
        /// The distinct b-values of the DWI series, ascending (empty when not imaged).
        public var shells: [Double]
        /// The BOLD runs (empty when not imaged).
        public var runs: [PlannedRun]

        public var participantID: String { DemoTrial.participantID(participant) }
        public var sessionID: String { "ses-\(DemoTrial.sessions[visit].label)" }
    }

    /// The missed visit: sub-03 at ses-m03.
    public static let missedVisit = (participant: 2, visit: 2)
    /// The multi-shell visit: sub-01 at ses-m06 (b = 0, 1000 and 2000 s/mm²).
    public static let multiShellVisit = (participant: 0, visit: 3)
    /// The visits with a second run: sub-02 at ses-baseline and ses-m03, sub-04 at ses-m01 and ses-m06.
    public static let secondRunVisits: [(participant: Int, visit: Int)] = [(1, 0), (1, 2), (3, 1), (3, 3)]
    /// Non-steady-state volumes of run r of visit v of participant p:
    /// `nonSteadyStateCycle[(p + v + r − 1) mod 7]`, so the counts vary from run to run (as
    /// fMRIPrep's detection does) and two runs have none (sub-04 ses-m06 run-1, sub-05 ses-m03 run-1).
    static let nonSteadyStateCycle = [3, 2, 4, 3, 2, 3, 0]

    /// The multi-shell acquisition: 5 b = 0, 30 directions at b = 1000 and 30 at b = 2000 s/mm².
    public static var multiShellScheme: GradientScheme {
        .multiShell(b0Count: 5, shells: [(bValue: 1000, directionCount: 30), (bValue: 2000, directionCount: 30)])
    }

    /// The plan of visit `v` of participant `p` in the derivatives layout.
    public static func plannedVisit(participant p: Int, visit v: Int) -> PlannedVisit {
        if p == missedVisit.participant && v == missedVisit.visit {
            return PlannedVisit(participant: p, visit: v, imaged: false, shells: [], runs: [])
        }
        let multiShell = p == multiShellVisit.participant && v == multiShellVisit.visit
        let runCount = secondRunVisits.contains { $0.participant == p && $0.visit == v } ? 2 : 1
        let runs = (1...runCount).map { r in
            PlannedRun(run: r, nonSteadyStateVolumes: nonSteadyStateCycle[(p + v + r - 1) % nonSteadyStateCycle.count])
        }
        return PlannedVisit(participant: p, visit: v, imaged: true, shells: multiShell ? [0, 1000, 2000] : [0, 1000], runs: runs)
    }

    /// Every visit of the design for `participants` participants, participant by participant.
    public static func derivativesPlan(participants: Int) -> [PlannedVisit] {
        (0..<participants).flatMap { p in sessions.indices.map { plannedVisit(participant: p, visit: $0) } }
    }

    // MARK: - Writing the layout

    /// The template space fMRIPrep's outputs are named after (its default output space).
    static let boldSpace = "MNI152NLin2009cAsym"
    /// The space QSIPrep 0.2x writes its outputs in.
    static let diffusionSpace = "T1w"

    /// Writes the ``Layout/derivatives`` layout under `root`:
    ///
    /// - the raw BIDS dataset at `root`: `dataset_description.json`, `README`, `.bidsignore`,
    ///   `participants.tsv`/`.json`, `sub-XX/sub-XX_sessions.tsv` (every visit of the design),
    ///   `sub-XX/ses-YY/dwi/sub-XX_ses-YY_dwi.{nii.gz,bval,bvec,json}` and
    ///   `sub-XX/ses-YY/func/sub-XX_ses-YY_task-rest_run-N_bold.{nii.gz,json}`;
    /// - `derivatives/fmriprep/`: `dataset_description.json` and per run, in
    ///   `sub-XX/ses-YY/func/`, `sub-XX_ses-YY_task-rest_run-N_space-MNI152NLin2009cAsym_`
    ///   `{desc-preproc_bold.nii.gz, desc-preproc_bold.json, desc-brain_mask.nii.gz, boldref.nii.gz}`
    ///   and `sub-XX_ses-YY_task-rest_run-N_desc-confounds_timeseries.{tsv,json}`;
    /// - `derivatives/qsiprep/`: `dataset_description.json` and per visit, in `sub-XX/ses-YY/dwi/`,
    ///   `sub-XX_ses-YY_space-T1w_desc-preproc_dwi.{nii.gz,bval,bvec,b,json}`,
    ///   `sub-XX_ses-YY_space-T1w_desc-brain_mask.nii.gz` and `sub-XX_ses-YY_space-T1w_dwiref.nii.gz`;
    /// - `atlas/` as in the BIDS layout, on the grid of every image;
    /// - `ground_truth/` as in the BIDS layout (`fa.tsv` for the imaged visits only), plus
    ///   `visits.tsv` (each visit: imaged or missed, its shells, its runs) and `runs.tsv` (each
    ///   run: its files, volumes and non-steady-state volumes).
    ///
    /// The plan is ``derivativesPlan(participants:)``. Run 1 of every visit draws from the same
    /// random stream as the BIDS layout's run, so its steady-state volumes are the same numbers.
    static func writeDerivativesLayout(root: String, seed: UInt64, participants: Int) throws {
        let atlas = PhantomAtlas.demo()
        let people = (0..<participants).map { Participant(index: $0, seed: seed) }
        let plan = derivativesPlan(participants: participants)
        try writeAtlas(atlas, root: root)
        let jobs = plan.filter(\.imaged).map { (people[$0.participant], $0) }
        let faRows = try runInParallel(jobs) { person, visit in
            try writeDerivativesVisit(visit, person: person, atlas: atlas, root: root, seed: seed)
        }
        try writeText(datasetDescription.rendered() + "\n", to: root + "/dataset_description.json")
        try writeText(derivativesReadme(seed: seed, participants: participants), to: root + "/README")
        try writeText("atlas/\nground_truth/\n", to: root + "/.bidsignore")
        try writeParticipantTables(people, root: root)
        try makeFolder(root + "/derivatives/fmriprep")
        try makeFolder(root + "/derivatives/qsiprep")
        try writeText(fmriprepDescription.rendered() + "\n", to: root + "/derivatives/fmriprep/dataset_description.json")
        try writeText(qsiprepDescription.rendered() + "\n", to: root + "/derivatives/qsiprep/dataset_description.json")
        try writeGroundTruth(root: root, people: people, atlas: atlas, faRows: faRows)
        try writePlanTruth(plan, root: root)
    }

    /// Simulates one imaged visit and writes its raw images and their derivatives; returns its
    /// `ground_truth/fa.tsv` rows.
    static func writeDerivativesVisit(_ plan: PlannedVisit, person: Participant, atlas: PhantomAtlas,
                                      root: String, seed: UInt64) throws -> [[String]] {
        let session = plan.sessionID
        let stem = "\(person.id)_\(session)"
        let raw = root + "/\(person.id)/\(session)"
        let fmriprep = root + "/derivatives/fmriprep/\(person.id)/\(session)/func"
        let qsiprep = root + "/derivatives/qsiprep/\(person.id)/\(session)/dwi"
        for folder in [raw + "/dwi", raw + "/func", fmriprep, qsiprep] { try makeFolder(folder) }

        // Diffusion: the raw series, and the same series as QSIPrep's output on the same grid.
        let scheme = plan.shells.count > 2 ? multiShellScheme : .halfSphere()
        let diffusion = simulateDiffusion(person: person, visit: plan.visit, atlas: atlas, scheme: scheme, seed: seed)
        let rawDWI = "\(person.id)/\(session)/dwi/\(stem)_dwi.nii.gz"
        try diffusion.phantom.write(signal: diffusion.signal, stem: raw + "/dwi/\(stem)_dwi")
        try writeText(diffusionSidecar.rendered() + "\n", to: raw + "/dwi/\(stem)_dwi.json")
        let preprocessed = qsiprep + "/\(stem)_space-\(diffusionSpace)_desc-preproc_dwi"
        try diffusion.phantom.write(signal: diffusion.signal, stem: preprocessed)
        try writeText(scheme.mrtrixText(linear: atlas.affine.linear), to: preprocessed + ".b")
        try writeText(JSONValue.object([
            ("Sources", .array([.string("bids:raw:" + rawDWI)])),
            ("PhantomNote", .string("Synthetic stand-in for a QSIPrep output: the raw phantom series, on the atlas grid.")),
        ]).rendered() + "\n", to: preprocessed + ".json")
        try writeBrainMask(atlas, to: qsiprep + "/\(stem)_space-\(diffusionSpace)_desc-brain_mask.nii.gz")
        let b0Volumes = scheme.bValues.indices.filter { scheme.bValues[$0] == 0 }
        try writeMeanVolume(of: diffusion.signal, volumes: b0Volumes, atlas: atlas,
                            to: qsiprep + "/\(stem)_space-\(diffusionSpace)_dwiref.nii.gz", description: "nimetrics phantom mean b=0")

        // Resting state: each run raw, and as fMRIPrep's output with its mask, reference and confounds.
        for planned in plan.runs {
            let run = simulateRestingState(person: person, visit: plan.visit, run: planned.run,
                                           nonSteadyStateVolumes: planned.nonSteadyStateVolumes, atlas: atlas, seed: seed)
            let runStem = "\(stem)_task-rest_run-\(planned.run)"
            let rawBOLD = "\(person.id)/\(session)/func/\(runStem)_bold.nii.gz"
            try writeBOLD(run, atlas: atlas, to: root + "/" + rawBOLD, description: "nimetrics phantom BOLD")
            try writeText(boldSidecar.rendered() + "\n", to: raw + "/func/\(runStem)_bold.json")
            let spaced = fmriprep + "/\(runStem)_space-\(boldSpace)"
            try writeBOLD(run, atlas: atlas, to: spaced + "_desc-preproc_bold.nii.gz", description: "nimetrics phantom BOLD")
            try writeText(JSONValue.object([
                ("RepetitionTime", .number(repetitionTime)),
                ("SkullStripped", .bool(false)),
                ("SliceTimingCorrected", .bool(false)),
                ("TaskName", .string("rest")),
                ("Sources", .array([.string("bids:raw:" + rawBOLD)])),
            ]).rendered() + "\n", to: spaced + "_desc-preproc_bold.json")
            try writeBrainMask(atlas, to: spaced + "_desc-brain_mask.nii.gz")
            try writeMeanVolume(of: run.voxels, volumes: planned.nonSteadyStateVolumes..<boldVolumes, atlas: atlas,
                                to: spaced + "_boldref.nii.gz", description: "nimetrics phantom BOLD reference")
            try run.confounds.write(to: fmriprep + "/\(runStem)_desc-confounds_timeseries.tsv")
            try writeText(confoundsSidecar(nonSteadyStateVolumes: planned.nonSteadyStateVolumes).rendered() + "\n",
                          to: fmriprep + "/\(runStem)_desc-confounds_timeseries.json")
        }
        return regionalTruthRows(person: person, session: session, atlas: atlas, truth: diffusion.truth)
    }

    /// The head mask of the atlas as fMRIPrep and QSIPrep write masks: uint8, 1 inside.
    static func writeBrainMask(_ atlas: PhantomAtlas, to path: String) throws {
        let header = NIfTIHeader.make(shape: atlas.shape, affine: atlas.affine, datatype: .uint8)
        try NIfTIFile.write(atlas.brainMask.map { Float($0 ? 1 : 0) }, shape: atlas.shape, datatype: .uint8,
                            geometry: header, to: path, description: "nimetrics phantom brain mask")
    }

    /// The mean of some volumes of a volume-major series, as a float32 reference image.
    static func writeMeanVolume(of series: [Float], volumes: some Collection<Int>, atlas: PhantomAtlas,
                                to path: String, description: String) throws {
        let n = atlas.voxelCount
        var sum = [Double](repeating: 0, count: n)
        for volume in volumes {
            for i in 0..<n { sum[i] += Double(series[volume * n + i]) }
        }
        let count = Double(max(volumes.count, 1))
        let header = NIfTIHeader.make(shape: atlas.shape, affine: atlas.affine, datatype: .float32)
        try NIfTIFile.write(sum.map { Float($0 / count) }, shape: atlas.shape, datatype: .float32,
                            geometry: header, to: path, description: description)
    }

    // MARK: - Descriptions and truth

    /// The entry that says who really wrote a derivative dataset.
    static let phantomGenerator = JSONValue.object([
        ("Name", .string("nimetrics demo")),
        ("Version", .string(phantomsVersion)),
        ("Description", .string("Synthetic stand-in written by nimetrics demo --layout derivatives: the phantom, named as the pipeline names its outputs.")),
    ])

    static let fmriprepDescription = derivativeDescription(
        name: "fMRIPrep - fMRI PREProcessing workflow", pipeline: "fMRIPrep", version: "23.2.1",
        codeURL: "https://github.com/nipreps/fmriprep/archive/23.2.1.tar.gz")

    static let qsiprepDescription = derivativeDescription(
        name: "qsiprep output", pipeline: "qsiprep", version: "0.21.4",
        codeURL: "https://github.com/PennLINC/qsiprep/archive/0.21.4.tar.gz")

    /// A derivative dataset's description as the pipeline writes it, with the entry that
    /// says the phantom stands in for it.
    static func derivativeDescription(name: String, pipeline: String, version: String, codeURL: String) -> JSONValue {
        .object([
            ("Name", .string(name)),
            ("BIDSVersion", .string("1.8.0")),
            ("DatasetType", .string("derivative")),
            ("GeneratedBy", .array([
                .object([("Name", .string(pipeline)), ("Version", .string(version)), ("CodeURL", .string(codeURL))]),
                phantomGenerator,
            ])),
            ("DatasetLinks", .object([("raw", .string("../../"))])),
        ])
    }

    /// The confounds sidecar: what each family of columns holds.
    static func confoundsSidecar(nonSteadyStateVolumes: Int) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("global_signal", .object([("Description", .string("Mean signal in the brain mask."))])),
            ("csf", .object([("Description", .string("Mean signal of the unlabelled tissue inside the head."))])),
            ("white_matter", .object([("Description", .string("Mean signal of the white-matter tracts."))])),
            ("framewise_displacement", .object([("Description", .string("Power et al. 2012, 50 mm radius; n/a on the first volume.")),
                                                 ("Units", .string("mm"))])),
        ]
        for volume in 0..<nonSteadyStateVolumes {
            members.append((String(format: "non_steady_state_outlier%02d", volume),
                            .object([("Description", .string("1 on non-steady-state volume \(volume), 0 elsewhere."))])))
        }
        return .object(members)
    }

    /// `ground_truth/visits.tsv` and `ground_truth/runs.tsv`.
    static func writePlanTruth(_ plan: [PlannedVisit], root: String) throws {
        var visits = TSVTable(columns: ["participant_id", "session_id", "status", "dwi_shells", "bold_runs"])
        var runs = TSVTable(columns: ["participant_id", "session_id", "run", "bold", "confounds", "volumes", "non_steady_state_volumes"])
        for visit in plan {
            visits.append([visit.participantID, visit.sessionID, visit.imaged ? "imaged" : "missed",
                           visit.imaged ? visit.shells.map { String(Int($0)) }.joined(separator: ",") : "n/a", String(visit.runs.count)])
            for run in visit.runs {
                let stem = "derivatives/fmriprep/\(visit.participantID)/\(visit.sessionID)/func/"
                    + "\(visit.participantID)_\(visit.sessionID)_task-rest_run-\(run.run)"
                runs.append([visit.participantID, visit.sessionID, String(run.run),
                             stem + "_space-\(boldSpace)_desc-preproc_bold.nii.gz", stem + "_desc-confounds_timeseries.tsv",
                             String(boldVolumes), String(run.nonSteadyStateVolumes)])
            }
        }
        try visits.write(to: root + "/ground_truth/visits.tsv")
        try runs.write(to: root + "/ground_truth/runs.tsv")
    }

    static func derivativesReadme(seed: UInt64, participants: Int) -> String {
        let plan = derivativesPlan(participants: participants)
        let secondRuns = plan.filter { $0.runs.count > 1 }.map { "\($0.participantID) \($0.sessionID)" }
        let multiShell = plan.filter { $0.shells.count > 2 }.map { "\($0.participantID) \($0.sessionID)" }
        let missed = plan.filter { !$0.imaged }.map { "\($0.participantID) \($0.sessionID)" }
        func list(_ items: [String]) -> String { items.isEmpty ? "none with \(participants) participants" : items.joined(separator: ", ") }
        return """
            nimetrics demo trial (synthetic data, seed \(seed)), with derivatives
            =====================================================================

            A phase I design: \(participants) participants with secondary-progressive MS treated with
            placenta-derived mesenchymal stem cells, seen at baseline and months 1, 3 and 6
            (sessions ses-baseline, ses-m01, ses-m03, ses-m06). Nothing here comes from a person.

            Layout: this folder is the raw BIDS dataset; the preprocessed data are BIDS derivative
            datasets under derivatives/, and they are the preferred inputs:
            - derivatives/fmriprep: named as fMRIPrep 23 names its outputs. Per run,
              *_space-\(boldSpace)_desc-preproc_bold.nii.gz (+ .json), *_desc-brain_mask.nii.gz,
              *_boldref.nii.gz and *_desc-confounds_timeseries.tsv (+ .json).
            - derivatives/qsiprep: named as QSIPrep 0.2x names its outputs. Per visit,
              *_space-\(diffusionSpace)_desc-preproc_dwi.nii.gz (+ .bval, .bvec, .b, .json),
              *_space-\(diffusionSpace)_desc-brain_mask.nii.gz and *_space-\(diffusionSpace)_dwiref.nii.gz.
            The preprocessed images are the phantom itself on the atlas grid (24 x 28 x 20 voxels of
            3 mm, LAS), the same voxels as the raw images; atlas/atlas-demo_dseg is on that grid.

            Acquisition and situations
            - DWI: 5 b=0 volumes and 30 directions at b=1000 s/mm2, Rician noise at SNR 30 on b=0 in
              white matter; multi-shell (5 b=0, 30 at b=1000, 30 at b=2000) at: \(list(multiShell)).
            - BOLD: \(boldVolumes) volumes, TR \(formatJSONNumber(repetitionTime)) s, run-1 at every imaged visit; a second run
              (its own noise, the same network correlations) at: \(list(secondRuns)).
            - Non-steady-state volumes: the first 0 to 4 volumes of each run are brighter (up to
              2.5 times the steady state, decaying with the tissue's T1), with a transient shared
              by every cortical region that drives their correlations towards 1 unless the volumes
              are dropped. fMRIPrep's confounds flag each with a non_steady_state_outlierXX column
              (1 on that volume); ground_truth/runs.tsv lists the count per run.
            - Missed visit (sessions.tsv has its clinical data, no tree has images): \(list(missed)).

            Planted changes (ground_truth/changes.tsv has them visit by visit)
            \(plantedChangesText(participants: participants))

            Ground truth
            - ground_truth/fa.tsv: mean true voxel FA (and MD, mm2/s) in each atlas region per imaged visit.
            - ground_truth/networks.tsv: network of each cortical region.
            - ground_truth/connectivity.tsv: population within-network correlation per visit.
            - ground_truth/changes.tsv: the planted factors and clinical changes.
            - ground_truth/visits.tsv: each visit of the design, imaged or missed, its shells and runs.
            - ground_truth/runs.tsv: each BOLD run, its files and its non-steady-state volumes.

            """
    }
}
