import Pipelines
import Foundation

/// The two kinds of scan a visit may hold, each processed and recorded on its own.
public enum Modality: String, Sendable, CaseIterable, Codable {
    case dwi
    case functional = "func"
}

/// One visit of one participant: the files the per-visit pipelines read, and the clinical
/// columns that travel with it into the group tables.
///
/// Discovery gives whole visits (``modality`` nil). A run processes each modality of a visit
/// on its own (``units``), with its own record, so processing the DWI and the BOLD in
/// separate runs into one output folder keeps both.
public struct VisitInput: Sendable, CustomStringConvertible {
    /// Participant label without `sub-` (validated: letters and digits only).
    public var participant: String
    /// Session label without `ses-`; nil for datasets without sessions.
    public var session: String?
    /// Diffusion image (`*_dwi.nii[.gz]`), its gradient files and, for QSIPrep outputs, the
    /// brain mask beside it.
    public var dwi: String?
    public var bval: String?
    public var bvec: String?
    public var dwiMask: String?
    /// A lesion mask of the visit (`*_label-lesion_mask.nii.gz`), on the DWI grid.
    public var lesionMask: String?
    /// A label atlas of the visit on the DWI grid (a manifest's `dwi_atlas`, or a
    /// `*_space-<space>_seg-<name>_dseg.nii.gz` beside the DWI), used without `--dwi-atlas`.
    public var dwiAtlas: String?
    /// Transform files between spaces found in the derivatives for the participant and the
    /// session (`anat/*_from-<space>_to-<space>_mode-image_xfm.{h5,txt,mat}`), for atlases
    /// given in a template space.
    public var transforms: [String] = []
    /// Every resting-state run of the task, in run order.
    public var boldRuns: [BOLDRun] = []
    /// The first run's BOLD image, confounds, sidecar and brain mask (a visit of one run).
    public var bold: String? {
        get { boldRuns.first?.bold }
        set {
            guard let newValue else { boldRuns = []; return }
            if boldRuns.isEmpty { boldRuns = [BOLDRun(bold: newValue)] } else { boldRuns[0].bold = newValue }
        }
    }
    public var confounds: String? {
        get { boldRuns.first?.confounds }
        set { if !boldRuns.isEmpty { boldRuns[0].confounds = newValue } }
    }
    public var boldSidecar: String? {
        get { boldRuns.first?.sidecar }
        set { if !boldRuns.isEmpty { boldRuns[0].sidecar = newValue } }
    }
    public var brainMask: String? {
        get { boldRuns.first?.brainMask }
        set { if !boldRuns.isEmpty { boldRuns[0].brainMask = newValue } }
    }
    /// Clinical columns in order: sessions.tsv, then participants.tsv (or a manifest's extra
    /// columns). Values are kept as written (`n/a` for missing).
    public var clinical: [(String, String)]
    /// The modality this unit of work covers; nil for a whole visit.
    public var modality: Modality?

    public init(participant: String, session: String?, dwi: String? = nil, bval: String? = nil, bvec: String? = nil,
                bold: String? = nil, confounds: String? = nil, boldSidecar: String? = nil, brainMask: String? = nil,
                clinical: [(String, String)] = []) {
        self.participant = participant
        self.session = session
        self.dwi = dwi
        self.bval = bval
        self.bvec = bvec
        self.boldRuns = bold.map { [BOLDRun(bold: $0, confounds: confounds, sidecar: boldSidecar, brainMask: brainMask)] } ?? []
        self.clinical = clinical
    }

    /// `sub-01` / `ses-m01` (nil without sessions), as the BIDS tables write them.
    public var participantID: String { "sub-" + participant }
    public var sessionID: String? { session.map { "ses-" + $0 } }

    /// The BIDS file-name prefix of this visit's outputs: `sub-01_ses-m01` or `sub-01`.
    public var filePrefix: String { session.map { "sub-\(participant)_ses-\($0)" } ?? "sub-\(participant)" }

    /// The modalities the visit has files for, in a fixed order.
    public var modalities: [Modality] {
        (dwi != nil ? [.dwi] : []) + (bold != nil ? [.functional] : [])
    }

    /// The units of work of this visit: one per modality, each holding only its own files.
    public var units: [VisitInput] {
        modalities.map { modality in
            var unit = self
            unit.modality = modality
            if modality != .dwi { unit.dwi = nil; unit.bval = nil; unit.bvec = nil; unit.dwiMask = nil; unit.lesionMask = nil; unit.dwiAtlas = nil }
            if modality != .functional { unit.boldRuns = [] }
            return unit
        }
    }

    /// `sub-01_ses-m01 dwi` for a unit, `sub-01_ses-m01` for a whole visit: for messages.
    public var unitName: String { filePrefix + (modality.map { " " + $0.rawValue } ?? "") }

    /// The visit's folder relative to the output folder: `sub-01/ses-m01` or `sub-01`.
    public var relativeFolder: String { session.map { "sub-\(participant)/ses-\($0)" } ?? "sub-\(participant)" }

    /// Every input file with its role, in a fixed order (the order of the visit record).
    /// The files of a second or later run carry its label: `bold_run-2`.
    public var inputFiles: [(role: String, path: String)] {
        var all: [(String, String?)] = [("dwi", dwi), ("bval", bval), ("bvec", bvec), ("dwi_mask", dwiMask),
                                        ("lesion_mask", lesionMask), ("dwi_atlas", dwiAtlas)]
        for (k, run) in boldRuns.enumerated() {
            let tag = k == 0 ? "" : "_run-" + (run.label ?? String(k + 1))
            all += [("bold" + tag, run.bold), ("confounds" + tag, run.confounds), ("bold_sidecar" + tag, run.sidecar),
                    ("brain_mask" + tag, run.brainMask), ("func_atlas" + tag, run.atlas)]
        }
        return all.compactMap { role, path in path.map { (role, $0) } }
    }

    /// The value of a clinical column, if present and not `n/a`.
    public func clinicalValue(_ column: String) -> String? {
        guard let value = clinical.first(where: { $0.0 == column })?.1, value != "n/a", !value.isEmpty else { return nil }
        return value
    }

    public var description: String { filePrefix }
}

/// One resting-state run of a visit: its preprocessed BOLD image and the files beside it.
public struct BOLDRun: Sendable, Equatable {
    public var bold: String
    /// fMRIPrep's `*_desc-confounds_timeseries.tsv` of the run.
    public var confounds: String?
    /// The image's JSON sidecar (RepetitionTime, SkullStripped).
    public var sidecar: String?
    /// fMRIPrep's `*_desc-brain_mask.nii.gz` in the same space.
    public var brainMask: String?
    /// A label atlas on the run's grid (a manifest's `func_atlas`, or a
    /// `*_space-<space>_seg-<name>_dseg.nii.gz` beside the run), used without `--func-atlas`.
    public var atlas: String?

    public init(bold: String, confounds: String? = nil, sidecar: String? = nil, brainMask: String? = nil, atlas: String? = nil) {
        self.bold = bold
        self.confounds = confounds
        self.sidecar = sidecar
        self.brainMask = brainMask
        self.atlas = atlas
    }

    /// The `run-` entity of the image's name, nil when it has none.
    public var label: String? { BIDSName(URL(fileURLWithPath: bold).lastPathComponent)?.entity("run") }

    /// The `space-` entity of the image's name, nil when it has none.
    public var space: String? { BIDSName(URL(fileURLWithPath: bold).lastPathComponent)?.entity("space") }
}

/// One number computed for a visit (the pipelines' ``VisitMetric``).
public typealias MetricRow = VisitMetric

/// What the per-visit work produced.
public struct VisitResult: Sendable {
    /// The metrics; written by the runner to `<prefix>_metrics.tsv`.
    public var metrics: [MetricRow]
    /// Files the processor wrote, absolute or relative to the visit folder. A re-run skips a
    /// visit only while all of them still exist.
    public var files: [String]
    /// Non-fatal remarks (e.g. "no confounds file: motion metrics skipped"); kept in the record.
    public var warnings: [String]

    public init(metrics: [MetricRow], files: [String] = [], warnings: [String] = []) {
        self.metrics = metrics
        self.files = files
        self.warnings = warnings
    }
}

/// The per-visit work (the DTI and fMRI pipelines), injected into ``TrialRunner``.
///
/// `process` is called from several threads at once, one visit per call, so it must not
/// share mutable state between calls.
public protocol VisitProcessor: Sendable {
    /// JSON text of every parameter that changes the results. It is stored in each visit
    /// record; a re-run whose fingerprint differs redoes the visit.
    var parametersFingerprint: String { get }

    /// The fingerprint of the parameters that change one modality's results (all of them
    /// when nil), so that a change of a functional parameter does not redo the DWI.
    func parametersFingerprint(for modality: Modality?) -> String

    /// Every file processing `visit` reads, with its role, in a fixed order. The runner
    /// hashes them all into the visit record, so editing any of them redoes the visit.
    /// - Throws: when the files cannot be determined (the runner records the visit as failed).
    func inputFiles(for visit: VisitInput) throws -> [(role: String, path: String)]

    /// Processes one visit, writing its outputs into `outputFolder` (which exists).
    /// - Parameters:
    ///   - visit: the inputs.
    ///   - outputFolder: `OUTPUT/sub-XX/ses-YY` (or `OUTPUT/sub-XX`).
    ///   - threads: threads this visit may use.
    /// - Returns: the metrics, the files written and any warnings.
    /// - Throws: any error; the runner records its description as the visit's failure.
    func process(visit: VisitInput, outputFolder: String, threads: Int) throws -> VisitResult
}

extension VisitProcessor {
    /// The dataset's files of the visit (``VisitInput/inputFiles``).
    public func inputFiles(for visit: VisitInput) throws -> [(role: String, path: String)] { visit.inputFiles }

    /// The same fingerprint for every modality.
    public func parametersFingerprint(for modality: Modality?) -> String { parametersFingerprint }
}
