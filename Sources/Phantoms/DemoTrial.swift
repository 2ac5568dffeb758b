import Dispatch
import FileSystem
import Foundation
import NIfTI
import Synchronization
import Tabular

/// Why the demo trial could not be written: the file and the reason.
public typealias PhantomError = FileSystemError

/// A small synthetic BIDS dataset of the trial design, with known truth: participants treated
/// with placenta-derived mesenchymal stem cells, seen at baseline and months 1, 3 and 6, each
/// visit with a DWI series (5 b = 0 + 30 directions at b = 1000 s/mm², Rician noise, SNR 30 on
/// b = 0 in white matter) and a resting-state BOLD run (150 volumes, TR 2 s) with fMRIPrep-style
/// confounds. DWI and BOLD share one grid and one atlas (``PhantomAtlas/demo()``).
///
/// Planted changes (participant p, counted from 0):
/// - responders (p mod 5 ∈ {0, 1, 2}): FA of the lesioned tracts `L_CST` and `CC_body` × 1.00,
///   1.01, 1.025, 1.05 at baseline, m01, m03, m06; EDSS −0.5 at m06; SDMT +0, +1, +3, +5;
///   within-DMN correlation 0.30, 0.40, 0.50, 0.60.
/// - decliners (p mod 5 ∈ {3, 4}): FA × 1.00, 0.99, 0.975, 0.96; EDSS +0.5 at m06; SDMT +0, −1,
///   −2, −4; within-DMN correlation 0.30, 0.25, 0.20, 0.15.
/// - everyone: lesioned tracts start 15–25 % below the healthy FA; other tracts and the other
///   networks (SMN 0.50, VIS 0.55, FPN 0.40) do not change; networks are uncorrelated.
public enum DemoTrial {
    /// The visits: BIDS session label, month, days after baseline.
    public static let sessions: [(label: String, month: Int, day: Int)] = [
        ("baseline", 0, 0), ("m01", 1, 28), ("m03", 3, 91), ("m06", 6, 182),
    ]
    /// Tracts whose FA carries the lesion and the planted change.
    public static let lesionedTracts = ["L_CST", "CC_body"]
    public static let boldVolumes = 150
    public static let repetitionTime = 2.0
    /// b = 0 signal of white matter; the noise σ is this divided by ``signalToNoise``.
    public static let whiteMatterS0 = 1000.0
    public static let signalToNoise = 30.0
    /// ρ of the networks that do not change.
    public static let stableNetworkCorrelation: [String: Double] = ["SMN": 0.50, "VIS": 0.55, "FPN": 0.40]

    /// The planted course of one participant.
    public enum Trajectory: String, Sendable {
        case responder, decliner

        /// FA factor of the lesioned tracts, per visit (relative to baseline).
        public var faFactors: [Double] { self == .responder ? [1.0, 1.01, 1.025, 1.05] : [1.0, 0.99, 0.975, 0.96] }
        /// EDSS change from baseline, per visit.
        public var edssChanges: [Double] { self == .responder ? [0, 0, 0, -0.5] : [0, 0, 0, 0.5] }
        /// SDMT change from baseline, per visit.
        public var sdmtChanges: [Int] { self == .responder ? [0, 1, 3, 5] : [0, -1, -2, -4] }
        /// Within-DMN population correlation, per visit.
        public var defaultModeCorrelation: [Double] { self == .responder ? [0.30, 0.40, 0.50, 0.60] : [0.30, 0.25, 0.20, 0.15] }
    }

    /// The trajectory of participant `p` (0-based): three responders, then two decliners, repeating.
    public static func trajectory(ofParticipant p: Int) -> Trajectory { p % 5 < 3 ? .responder : .decliner }

    /// `sub-01`, `sub-02`, …
    public static func participantID(_ p: Int) -> String { String(format: "sub-%02d", p + 1) }

    /// How the demo dataset is laid out.
    public enum Layout: String, CaseIterable, Sendable {
        /// One BIDS tree: raw DWI and BOLD per visit, the fMRIPrep-style confounds beside the BOLD.
        case bids
        /// A raw BIDS tree with fMRIPrep- and QSIPrep-style derivatives under `derivatives/`,
        /// second runs, non-steady-state volumes, a multi-shell visit and a missed visit, as
        /// ``derivativesPlan(participants:)`` plans them (the files: `DemoDerivatives.swift`).
        case derivatives
    }

    /// Writes the dataset into `folder` (created if needed; existing files of the same names
    /// are replaced, nothing else is touched). The same seed gives the same bytes on one
    /// platform (the draws of ``PhantomRandom`` are portable; the signals use the C library's
    /// `exp`, `sin` and `cos`).
    ///
    /// Layout ``Layout/bids``: `dataset_description.json`, `README`, `participants.tsv`/`.json`,
    /// `sub-XX/sub-XX_sessions.tsv`, `sub-XX/ses-YY/dwi/sub-XX_ses-YY_dwi.{nii.gz,bval,bvec,json}`,
    /// `sub-XX/ses-YY/func/sub-XX_ses-YY_task-rest_{bold.nii.gz,bold.json,desc-confounds_timeseries.tsv}`,
    /// `atlas/atlas-demo_dseg.{nii.gz,tsv}`, `ground_truth/{fa,networks,changes,connectivity}.tsv`.
    /// Layout ``Layout/derivatives``: the raw tree, `derivatives/fmriprep/`, `derivatives/qsiprep/`,
    /// `atlas/` and `ground_truth/` (plus `visits.tsv` and `runs.tsv`), for the visits of
    /// ``derivativesPlan(participants:)``; `writeDerivativesLayout` lists the files.
    ///
    /// - Parameters:
    ///   - folder: the dataset root.
    ///   - seed: the seed of every random draw.
    ///   - participants: 1 to 99.
    ///   - layout: the file layout.
    /// - Throws: ``PhantomError`` for a bad argument or a folder that cannot be made; the
    ///   NIfTI and table writers' errors for files that cannot be written.
    public static func generate(at folder: String, seed: UInt64 = 2026, participants: Int = 5, layout: Layout = .bids) throws {
        guard (1...99).contains(participants) else {
            throw PhantomError(path: folder, reason: "the number of participants must be 1 to 99, not \(participants)")
        }
        let root = folder.hasSuffix("/") && folder.count > 1 ? String(folder.dropLast()) : folder
        switch layout {
        case .bids: try writeBIDSLayout(root: root, seed: seed, participants: participants)
        case .derivatives: try writeDerivativesLayout(root: root, seed: seed, participants: participants)
        }
    }

    static func writeBIDSLayout(root: String, seed: UInt64, participants: Int) throws {
        let atlas = PhantomAtlas.demo()
        let people = (0..<participants).map { Participant(index: $0, seed: seed) }
        try writeAtlas(atlas, root: root)
        for person in people {
            for session in sessions { try makeFolder(root + "/\(person.id)/ses-\(session.label)/dwi") }
            for session in sessions { try makeFolder(root + "/\(person.id)/ses-\(session.label)/func") }
        }
        let jobs = people.flatMap { person in sessions.indices.map { (person, $0) } }
        let faRows = try runInParallel(jobs) { person, visit in
            try writeVisit(person: person, visit: visit, atlas: atlas, root: root, seed: seed)
        }
        try writeText(datasetDescription.rendered() + "\n", to: root + "/dataset_description.json")
        try writeText(readme(seed: seed, participants: participants), to: root + "/README")
        try writeParticipantTables(people, root: root)
        try writeGroundTruth(root: root, people: people, atlas: atlas, faRows: faRows)
    }

    /// The shared atlas, in `atlas/`, and the `ground_truth/` folder.
    static func writeAtlas(_ atlas: PhantomAtlas, root: String) throws {
        try makeFolder(root + "/atlas")
        try makeFolder(root + "/ground_truth")
        try atlas.write(image: root + "/atlas/atlas-demo_dseg.nii.gz", table: root + "/atlas/atlas-demo_dseg.tsv")
    }

    /// Runs `work` on every job in parallel and returns the rows of all jobs, in job order.
    ///
    /// Visits are independent (each has its own random streams), so they run in parallel;
    /// results go to fixed slots and are assembled in order, so the output does not depend on
    /// the thread count. The first failure, in job order, is thrown.
    static func runInParallel<Job: Sendable>(_ jobs: [Job], _ work: @Sendable (Job) throws -> [[String]]) throws -> [[String]] {
        let results = ResultSlots(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { job in
            do {
                results.store(.success(try work(jobs[job])), at: job)
            } catch {
                results.store(.failure(error), at: job)
            }
        }
        var rows: [[String]] = []
        for result in results.values {
            switch result {
            case .success(let more): rows += more
            case .failure(let error): throw error
            case nil: throw PhantomError(path: "demo trial", reason: "a visit was not simulated")
            }
        }
        return rows
    }

    /// `participants.tsv`/`.json` and each participant's `sessions.tsv` (every planned visit,
    /// with its clinical scores).
    static func writeParticipantTables(_ people: [Participant], root: String) throws {
        try TSVTable(columns: ["participant_id", "age", "sex", "group"],
                     rows: people.map { [$0.id, String($0.age), $0.sex, "pdmsc"] }).write(to: root + "/participants.tsv")
        try writeText(participantsSidecar.rendered() + "\n", to: root + "/participants.json")
        for person in people {
            try makeFolder(root + "/\(person.id)")
            let rows = sessions.indices.map { v in
                ["ses-\(sessions[v].label)", person.acquisitionTime(visit: v), String(sessions[v].month),
                 tsvCell(person.edss(visit: v)), String(person.sdmt(visit: v))]
            }
            try TSVTable(columns: ["session_id", "acq_time", "visit_month", "edss", "sdmt"], rows: rows)
                .write(to: root + "/\(person.id)/\(person.id)_sessions.tsv")
        }
    }

    // MARK: - One visit

    /// Simulates and writes one visit's DWI and BOLD; returns its `ground_truth/fa.tsv` rows.
    static func writeVisit(person: Participant, visit: Int, atlas: PhantomAtlas, root: String, seed: UInt64) throws -> [[String]] {
        let session = "ses-\(sessions[visit].label)"
        let prefix = root + "/\(person.id)/\(session)"
        let stem = "\(person.id)_\(session)"

        let diffusion = simulateDiffusion(person: person, visit: visit, atlas: atlas, scheme: .halfSphere(), seed: seed)
        try diffusion.phantom.write(signal: diffusion.signal, stem: prefix + "/dwi/\(stem)_dwi")
        try writeText(diffusionSidecar.rendered() + "\n", to: prefix + "/dwi/\(stem)_dwi.json")

        let run = simulateRestingState(person: person, visit: visit, run: 1, nonSteadyStateVolumes: 0, atlas: atlas, seed: seed)
        try writeBOLD(run, atlas: atlas, to: prefix + "/func/\(stem)_task-rest_bold.nii.gz", description: "nimetrics phantom BOLD")
        try writeText(boldSidecar.rendered() + "\n", to: prefix + "/func/\(stem)_task-rest_bold.json")
        try run.confounds.write(to: prefix + "/func/\(stem)_task-rest_desc-confounds_timeseries.tsv")

        return regionalTruthRows(person: person, session: session, atlas: atlas, truth: diffusion.truth)
    }

    // MARK: - Simulation of one visit, shared by the layouts

    /// The DWI series of one visit: the true tensors, the phantom and its noisy signal (random
    /// stream `[participant, visit, 1]`).
    static func simulateDiffusion(person: Participant, visit: Int, atlas: PhantomAtlas, scheme: GradientScheme,
                                  seed: UInt64) -> (truth: [TensorTruth], phantom: DiffusionPhantom, signal: [Float]) {
        let truth = person.tensors(atlas: atlas, visit: visit)
        let s0 = (0..<atlas.voxelCount).map { i -> Double in
            guard atlas.brainMask[i] else { return 0 }
            let label = atlas.labels[i]
            let tissue = label == 0 ? nil : atlas.region(index: label)?.tissue
            return tissue == .whiteMatter ? whiteMatterS0 : tissue == .grayMatter ? 1.1 * whiteMatterS0 : 1.2 * whiteMatterS0
        }
        let phantom = DiffusionPhantom(shape: atlas.shape, affine: atlas.affine, scheme: scheme, s0: s0, truth: truth)
        var dwiRandom = PhantomRandom(seed: seed, stream: [UInt64(person.index), UInt64(visit), 1])
        let signal = phantom.simulate(noiseSigma: whiteMatterS0 / signalToNoise, random: &dwiRandom)
        return (truth, phantom, signal)
    }

    /// One resting-state run of a visit: the visit's within-network correlations, its own noise
    /// (random stream `[participant, visit, 2]` for run 1, `[participant, visit, 2, run]` for
    /// later runs), and `nonSteadyStateVolumes` bright leading volumes.
    static func simulateRestingState(person: Participant, visit: Int, run: Int, nonSteadyStateVolumes: Int,
                                     atlas: PhantomAtlas, seed: UInt64) -> FunctionalPhantom.Run {
        let stream: [UInt64] = run == 1 ? [UInt64(person.index), UInt64(visit), 2] : [UInt64(person.index), UInt64(visit), 2, UInt64(run)]
        var boldRandom = PhantomRandom(seed: seed, stream: stream)
        var correlation = stableNetworkCorrelation
        correlation["DMN"] = person.trajectory.defaultModeCorrelation[visit]
        let functional = FunctionalPhantom(atlas: atlas, configuration: .init(
            volumeCount: boldVolumes, repetitionTime: repetitionTime, nonSteadyStateVolumes: nonSteadyStateVolumes))
        return functional.simulate(withinNetworkCorrelation: correlation, random: &boldRandom)
    }

    /// Writes a BOLD run as int16 on the atlas grid, with the TR in the header.
    static func writeBOLD(_ run: FunctionalPhantom.Run, atlas: PhantomAtlas, to path: String, description: String) throws {
        let header = NIfTIHeader.make(shape: run.shape, affine: atlas.affine, repetitionTime: repetitionTime, datatype: .int16)
        try NIfTIFile.write(run.voxels, shape: run.shape, datatype: .int16, geometry: header, to: path, description: description)
    }

    /// Truth: the mean of the true voxel FA and MD in each region (`ground_truth/fa.tsv` rows).
    static func regionalTruthRows(person: Participant, session: String, atlas: PhantomAtlas, truth: [TensorTruth]) -> [[String]] {
        var sums = [Int: (fa: Double, md: Double, count: Int)]()
        for i in 0..<atlas.voxelCount where atlas.labels[i] != 0 {
            let current = sums[atlas.labels[i]] ?? (0, 0, 0)
            sums[atlas.labels[i]] = (current.fa + truth[i].fractionalAnisotropy, current.md + truth[i].meanDiffusivity, current.count + 1)
        }
        return atlas.regions.map { region in
            let s = sums[region.index] ?? (0, 0, 0)
            let n = Double(max(s.count, 1))
            return [person.id, session, region.name, String(format: "%.6f", s.fa / n), String(format: "%.8f", s.md / n)]
        }
    }

    /// The raw DWI sidecar.
    static let diffusionSidecar = JSONValue.object([
        ("Manufacturer", .string("nimetrics phantom")),
        ("MagneticFieldStrength", .number(3)),
        ("EchoTime", .number(0.089)),
        ("RepetitionTime", .number(8.5)),
        ("PhaseEncodingDirection", .string("j-")),
        ("TotalReadoutTime", .number(0.05)),
        ("PhantomNoiseSigma", .number(whiteMatterS0 / signalToNoise)),
        ("PhantomNote", .string("Synthetic: S = S0 exp(-b g'Dg) with Rician noise; bvecs in FSL convention on a LAS grid.")),
    ])

    /// The raw BOLD sidecar.
    static let boldSidecar = JSONValue.object([
        ("TaskName", .string("rest")),
        ("RepetitionTime", .number(repetitionTime)),
        ("EchoTime", .number(0.03)),
        ("MagneticFieldStrength", .number(3)),
        ("Manufacturer", .string("nimetrics phantom")),
    ])

    // MARK: - Files of the whole dataset

    static func writeGroundTruth(root: String, people: [Participant], atlas: PhantomAtlas, faRows: [[String]]) throws {
        try TSVTable(columns: ["participant_id", "session_id", "region", "true_fa", "true_md"], rows: faRows)
            .write(to: root + "/ground_truth/fa.tsv")
        try TSVTable(columns: ["region", "network"],
                     rows: atlas.regions.compactMap { r in r.network.map { [r.name, $0] } })
            .write(to: root + "/ground_truth/networks.tsv")
        var changes = TSVTable(columns: ["participant_id", "trajectory", "measure", "target", "session_id", "value", "change_from_baseline"])
        var connectivity = TSVTable(columns: ["participant_id", "session_id", "network", "metric", "value"])
        for person in people {
            let t = person.trajectory
            for (v, session) in sessions.enumerated() {
                let ses = "ses-\(session.label)"
                for tract in lesionedTracts {
                    changes.append([person.id, t.rawValue, "fa_factor", tract, ses, tsvCell(t.faFactors[v]), tsvCell(t.faFactors[v] - 1)])
                }
                changes.append([person.id, t.rawValue, "edss", "n/a", ses, tsvCell(person.edss(visit: v)), tsvCell(t.edssChanges[v])])
                changes.append([person.id, t.rawValue, "sdmt", "n/a", ses, String(person.sdmt(visit: v)), String(t.sdmtChanges[v])])
                changes.append([person.id, t.rawValue, "within_network_correlation", "DMN", ses,
                                tsvCell(t.defaultModeCorrelation[v]), tsvCell(t.defaultModeCorrelation[v] - t.defaultModeCorrelation[0])])
                var correlation = stableNetworkCorrelation
                correlation["DMN"] = t.defaultModeCorrelation[v]
                for network in atlas.networks {
                    connectivity.append([person.id, ses, network, "within_network_population_correlation", tsvCell(correlation[network] ?? 0)])
                }
            }
        }
        try changes.write(to: root + "/ground_truth/changes.tsv")
        try connectivity.write(to: root + "/ground_truth/connectivity.tsv")
    }

    static let datasetDescription = JSONValue.object([
        ("Name", .string("nimetrics demo trial (synthetic)")),
        ("BIDSVersion", .string("1.9.0")),
        ("DatasetType", .string("raw")),
        ("License", .string("CC0")),
        ("GeneratedBy", .array([.object([("Name", .string("nimetrics demo")), ("Version", .string(phantomsVersion))])])),
    ])

    static let participantsSidecar = JSONValue.object([
        ("participant_id", .object([("Description", .string("Participant label"))])),
        ("age", .object([("Description", .string("Age at baseline")), ("Units", .string("years"))])),
        ("sex", .object([("Description", .string("Sex")), ("Levels", .object([("F", .string("female")), ("M", .string("male"))]))])),
        ("group", .object([("Description", .string("Treatment arm")),
                           ("Levels", .object([("pdmsc", .string("placenta-derived mesenchymal stem cells"))]))])),
    ])

    static func readme(seed: UInt64, participants: Int) -> String {
        """
            nimetrics demo trial (synthetic data, seed \(seed))
            ===================================================

            A phase I design: \(participants) participants with secondary-progressive MS treated with
            placenta-derived mesenchymal stem cells, seen at baseline and months 1, 3 and 6
            (sessions ses-baseline, ses-m01, ses-m03, ses-m06). Nothing here comes from a person.

            Acquisition (all visits)
            - DWI: 24 x 28 x 20 voxels of 3 mm, LAS (radiological) storage, 5 b=0 volumes and 30
              directions at b=1000 s/mm2 (Fibonacci half-sphere); S = S0 exp(-b g'Dg) (Basser 1994)
              with Rician noise, sigma = \(formatJSONNumber(whiteMatterS0 / signalToNoise)) (SNR 30 on b=0 in white matter).
              bvecs follow FSL: voxel axes, x not flipped because the affine determinant is negative.
            - BOLD: same grid, \(boldVolumes) volumes, TR \(formatJSONNumber(repetitionTime)) s; network signals in 0.01-0.08 Hz,
              drift, a motion-coupled confound and white noise; fMRIPrep-style confounds beside it.
            - atlas/atlas-demo_dseg: labels 1-5 are white-matter tracts (L_CST, R_CST, CC_body,
              L_SLF, R_SLF; used for DTI), labels 6-19 cortical regions in networks DMN, SMN, VIS,
              FPN (used for connectivity). See atlas-demo_dseg.tsv.

            Planted changes (ground_truth/changes.tsv has them visit by visit)
            \(plantedChangesText(participants: participants))

            Ground truth
            - ground_truth/fa.tsv: mean true voxel FA (and MD, mm2/s) in each atlas region per visit.
            - ground_truth/networks.tsv: network of each cortical region.
            - ground_truth/connectivity.tsv: population within-network correlation per visit.
            - ground_truth/changes.tsv: the planted factors and clinical changes.

            Note: the confounds tables sit beside the raw BOLD here for convenience; in a real
            dataset they come from fMRIPrep derivatives.

            """
    }

    /// The README's list of planted changes (lines indented as in the README, no final newline).
    static func plantedChangesText(participants: Int) -> String {
        let responders = (0..<participants).filter { trajectory(ofParticipant: $0) == .responder }.map(participantID)
        let decliners = (0..<participants).filter { trajectory(ofParticipant: $0) == .decliner }.map(participantID)
        return """
            - Responders (\(responders.joined(separator: ", "))): FA of the lesioned tracts L_CST and
              CC_body x1.00, x1.01, x1.025, x1.05 (baseline, m01, m03, m06); EDSS -0.5 at m06;
              SDMT +0, +1, +3, +5; within-DMN correlation 0.30, 0.40, 0.50, 0.60.
            - Decliners (\(decliners.joined(separator: ", "))): FA x1.00, x0.99, x0.975, x0.96;
              EDSS +0.5 at m06; SDMT +0, -1, -2, -4; within-DMN correlation 0.30, 0.25, 0.20, 0.15.
            - Lesioned tracts start 15-25 % below their healthy FA (L_CST/R_CST 0.65, CC_body 0.75,
              SLF 0.55). Other tracts, and the SMN (0.50), VIS (0.55) and FPN (0.40) networks, are
              stable; regions of different networks are uncorrelated.
            """
    }

    static func makeFolder(_ path: String) throws {
        do { try FileSystem.createFolder(path) } catch { throw PhantomError(path: error.path, reason: error.reason) }
    }
}

/// The version written into the dataset description.
let phantomsVersion = "0.1.0"

// MARK: - Participants

/// One synthetic participant: demographics, clinical baseline, lesion severity and the
/// per-voxel anatomy of the tensors, all drawn from the participant's own stream.
struct Participant: Sendable {
    let index: Int
    let seed: UInt64
    let id: String
    let age: Int
    let sex: String
    let trajectory: DemoTrial.Trajectory
    let baselineEDSS: Double
    let baselineSDMT: Int
    /// FA factor of each lesioned tract at baseline (0.75–0.85).
    let lesionSeverity: [String: Double]

    init(index: Int, seed: UInt64) {
        self.index = index
        self.seed = seed
        id = DemoTrial.participantID(index)
        trajectory = DemoTrial.trajectory(ofParticipant: index)
        var random = PhantomRandom(seed: seed, stream: [UInt64(index), 0xDE70])
        age = 38 + Int(random.uniform() * 22)
        sex = random.uniform() < 0.6 ? "F" : "M"
        baselineEDSS = 4.0 + 0.5 * Double(Int(random.uniform() * 6))
        baselineSDMT = 35 + Int(random.uniform() * 16)
        var severity: [String: Double] = [:]
        for tract in DemoTrial.lesionedTracts { severity[tract] = random.uniform(0.75, 0.85) }
        lesionSeverity = severity
    }

    func edss(visit: Int) -> Double { baselineEDSS + trajectory.edssChanges[visit] }
    func sdmt(visit: Int) -> Int { baselineSDMT + trajectory.sdmtChanges[visit] }

    /// ISO 8601 time of a visit: baseline on 2025-01-06 plus a week per participant, 09:00 + p·30 min.
    func acquisitionTime(visit: Int) -> String {
        let (y, m, d) = civilDate(daysSinceEpoch: 20_094 + 7 * index + DemoTrial.sessions[visit].day)
        let minutes = 9 * 60 + 30 * (index % 16)
        return String(format: "%04d-%02d-%02dT%02d:%02d:00", y, m, d, minutes / 60, minutes % 60)
    }

    /// The true tensor of every voxel at `visit`. The anatomy (per-voxel FA variation of ±3 %
    /// and the orientation of cortex and unlabelled tissue) is the participant's own and the
    /// same at every visit; lesioned tracts are scaled by the lesion severity and the visit's
    /// factor.
    func tensors(atlas: PhantomAtlas, visit: Int) -> [TensorTruth] {
        var anatomy = PhantomRandom(seed: seed, stream: [UInt64(index), 0xA7A7])
        let visitFactor = trajectory.faFactors[visit]
        var regionByLabel = [Int: AtlasRegion]()
        for region in atlas.regions { regionByLabel[region.index] = region }
        return (0..<atlas.voxelCount).map { i in
            guard atlas.brainMask[i] else { return .empty }
            let jitter = 1 + 0.03 * anatomy.gaussian()
            let randomDirection = [anatomy.gaussian(), anatomy.gaussian(), anatomy.gaussian()]
            guard let region = regionByLabel[atlas.labels[i]] else {
                // Unlabelled tissue inside the head: mixed, weakly anisotropic.
                return TensorTruth(eigenvalues: cylindricalEigenvalues(fractionalAnisotropy: 0.25 * jitter, meanDiffusivity: 0.9e-3),
                                   principalDirection: randomDirection)
            }
            var fa = region.fractionalAnisotropy * jitter
            if let severity = lesionSeverity[region.name] { fa *= severity * visitFactor }
            fa = min(fa, 0.9)
            return TensorTruth(eigenvalues: cylindricalEigenvalues(fractionalAnisotropy: fa, meanDiffusivity: region.meanDiffusivity),
                               principalDirection: region.fiberDirection ?? randomDirection)
        }
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
func civilDate(daysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

/// Fixed slots filled by parallel visit jobs; each job writes only its own slot.
final class ResultSlots: Sendable {
    private let slots: Mutex<[Result<[[String]], any Error>?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func store(_ result: Result<[[String]], any Error>, at index: Int) {
        slots.withLock { $0[index] = result }
    }

    var values: [Result<[[String]], any Error>?] { slots.withLock { $0 } }
}
