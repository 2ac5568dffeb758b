import FileSystem
import Foundation
import Tabular

/// What discovery looks for, beyond the raw dataset's own folders.
public struct DiscoveryOptions: Sendable {
    /// Keep only these participants (`01` or `sub-01`); empty keeps all.
    public var participantLabels: [String] = []
    /// Keep only these sessions (`m01` or `ses-m01`); empty keeps all.
    public var sessionLabels: [String] = []
    /// BIDS derivative datasets (fMRIPrep, QSIPrep, or any with the same naming) searched for
    /// preprocessed images; nil: every dataset in `BIDS_DIR/derivatives/`.
    public var derivatives: [String]?
    /// The task of the BOLD runs (every run of it is processed).
    public var task = "rest"
    /// The space of the BOLD runs; nil: the only one found, else the one whose grid matches
    /// the atlas (``Dataset/chooseSpaces(matching:)``).
    public var space: String?
    /// A BIDS filter file's constraints (fMRIPrep's `--bids-filter-file` format).
    public var filter = BIDSFilter()
    /// Folders never searched as derivatives: the output folder.
    public var excluded: [String] = []
    /// A clinical table keyed by `participant_id` and `session_id` (`--clinical`), merged
    /// into the visits (``Dataset/mergeClinicalTable(_:)``).
    public var clinical: String?

    public init() {}
}

/// The preprocessed (or raw) images of one visit folder.
struct FolderScan {
    var dwi: String?
    var bval: String?
    var bvec: String?
    var dwiMask: String?
    var lesionMask: String?
    var dwiAtlas: String?
    var boldRuns: [BOLDRun] = []
    /// `anat/*_from-*_to-*_mode-image_xfm.*` of the session, then of the participant.
    var transforms: [String] = []
    var isEmpty: Bool { dwi == nil && boldRuns.isEmpty }
}

extension Dataset {
    /// Finds the visits of a raw BIDS dataset and of the derivative datasets beside it.
    ///
    /// The raw dataset gives the visits and the clinical tables (participants.tsv,
    /// sessions.tsv); each derivative dataset is searched for the same visits' preprocessed
    /// images, which replace the raw ones modality by modality: QSIPrep's
    /// `*_desc-preproc_dwi.nii.gz` with its `.bval`/`.bvec` and `*_desc-brain_mask`;
    /// fMRIPrep's `*_task-<task>[_run-N]_space-<space>_desc-preproc_bold.nii.gz` with its
    /// confounds, sidecar and brain mask, every run of the task. A visit found only in a
    /// derivative dataset is added with the raw dataset's clinical data. The first dataset
    /// that has a modality of a visit gives it. A manifest, or a derivative dataset given as
    /// the input itself, is read as before.
    ///
    /// - Throws: ``TrialError`` as ``discover(_:participantLabels:sessionLabels:)``, and for
    ///   a derivative folder that does not exist.
    public static func discover(_ path: String, options: DiscoveryOptions) throws -> Dataset {
        var dataset = try discoverOwnVisits(path, options: options)
        if case .bids(let root) = dataset.source {
            try dataset.addDerivatives(try derivativeRoots(of: root, options: options), root: root, options: options)
        }
        if let clinical = options.clinical { try dataset.mergeClinicalTable(clinical) }
        try dataset.applyLabelFilters(options)
        return dataset
    }

    /// Merges the derivative datasets' images into the visits (adding visits found only
    /// there), modality by modality, the first dataset that has a modality giving it.
    mutating func addDerivatives(_ roots: [String], root: String, options: DiscoveryOptions) throws {
        derivativeRoots = roots
        var taken: [String: Set<Modality>] = [:]  // visit prefix -> modalities a derivative gave
        for derivative in roots {
            for (participant, session, scan) in try Dataset.scanDerivative(derivative, options: options, warnings: &warnings) {
                var visit = visits.first { $0.participant == participant && $0.session == session }
                    ?? VisitInput(participant: participant, session: session)
                if !visits.contains(where: { $0.participant == participant && $0.session == session }) {
                    let sessionRows = try Dataset.readSessionsTable(folder: root + "/sub-" + participant, participant: participant)
                    let participantPart = participantClinical[participant] ?? participantColumns.map { ($0, "n/a") }
                    let sessionPart = session.flatMap { sessionRows.rows[$0] } ?? sessionRows.columns.map { ($0, "n/a") }
                    visit.clinical = Dataset.mergeClinical(session: sessionPart, participant: participantPart)
                    visits.append(visit)
                }
                let k = visits.firstIndex { $0.participant == participant && $0.session == session }!
                taken[visit.filePrefix, default: []].formUnion(visits[k].merge(scan, keeping: taken[visit.filePrefix] ?? []))
            }
        }
    }

    /// The derivative datasets to search: those given, or every folder of
    /// `BIDS_DIR/derivatives/` that is a dataset (has a dataset_description.json) and is not
    /// the output folder nor written by nimetrics.
    static func derivativeRoots(of root: String, options: DiscoveryOptions) throws -> [String] {
        if let given = options.derivatives {
            for folder in given where !isFolder(folder) {
                throw TrialError.notADataset(path: folder, reason: "no such derivatives folder")
            }
            return given
        }
        let folder = root + "/derivatives"
        guard isFolder(folder) else { return [] }
        let excluded = Set(options.excluded.map { OutputGuard.resolvedPath($0) })
        return try sortedEntries(folder).map { folder + "/" + $0 }.filter { candidate in
            guard isFolder(candidate), !excluded.contains(OutputGuard.resolvedPath(candidate)),
                  // Only a regular file is read (a FIFO would block); anything else is no description.
                  let data = try? FileSystem.readFile(candidate + "/dataset_description.json") else { return false }
            let description = (try? JSONValue.parse(String(decoding: data, as: UTF8.self))) ?? .null
            if case .array(let tools)? = description["GeneratedBy"],
               tools.contains(where: { $0["Name"] == .string("nimetrics") }) { return false }
            return true
        }
    }

    /// The visit folders of a derivative dataset and what each holds.
    static func scanDerivative(_ root: String, options: DiscoveryOptions, warnings: inout [String]) throws
        -> [(participant: String, session: String?, scan: FolderScan)] {
        var found: [(String, String?, FolderScan)] = []
        for subject in try sortedEntries(root) where subject.hasPrefix("sub-") && isFolder(root + "/" + subject) {
            let participant = String(subject.dropFirst(4))
            guard BIDSLabel.isValid(participant) else { continue }
            let subjectFolder = root + "/" + subject
            let sessions = try sortedEntries(subjectFolder).filter { $0.hasPrefix("ses-") && isFolder(subjectFolder + "/" + $0) }
            let participantTransforms = try transforms(in: subjectFolder + "/anat")
            if sessions.isEmpty {
                let scan = try scanVisitFolder(subjectFolder, options: options, warnings: &warnings)
                if !scan.isEmpty { found.append((participant, nil, scan)) }
            }
            for sessionFolder in sessions {
                let session = String(sessionFolder.dropFirst(4))
                guard BIDSLabel.isValid(session) else { continue }
                var scan = try scanVisitFolder(subjectFolder + "/" + sessionFolder, options: options, warnings: &warnings)
                scan.transforms += participantTransforms
                if !scan.isEmpty { found.append((participant, session, scan)) }
            }
        }
        return found
    }

    /// The images of one visit folder (raw or derivative): the DWI series, every run of the
    /// task, and a lesion mask.
    static func scanVisitFolder(_ folder: String, options: DiscoveryOptions, warnings: inout [String]) throws -> FolderScan {
        var scan = FolderScan()
        let dwiFolder = folder + "/dwi"
        if isFolder(dwiFolder) {
            let names = try sortedEntries(dwiFolder)
            let parsed = names.compactMap(BIDSName.init)
            let candidates = parsed.filter { $0.suffix == "dwi" && $0.isImage && options.filter.accepts($0, kind: "dwi", datatype: "dwi") }
                .sorted { a, b in
                    let ap = a.entity("desc") == "preproc", bp = b.entity("desc") == "preproc"
                    return ap != bp ? ap : a.fileName < b.fileName
                }
            if let chosen = candidates.first {
                scan.dwi = dwiFolder + "/" + chosen.fileName
                if names.contains(chosen.stem + ".bval") { scan.bval = dwiFolder + "/" + chosen.stem + ".bval" }
                if names.contains(chosen.stem + ".bvec") { scan.bvec = dwiFolder + "/" + chosen.stem + ".bvec" }
                let mask = parsed.first { $0.suffix == "mask" && $0.isImage && $0.entity("desc") == "brain"
                    && $0.entitiesExcept(["desc"]) == chosen.entitiesExcept(["desc"]) }
                scan.dwiMask = mask.map { dwiFolder + "/" + $0.fileName }
                scan.dwiAtlas = atlas(beside: chosen, in: parsed).map { dwiFolder + "/" + $0 }
                if candidates.count > 1 { warnings.append("\(dwiFolder): \(candidates.count) DWI images; using \(chosen.fileName)") }
            }
            scan.lesionMask = lesionMask(in: dwiFolder, names: parsed)
        }
        scan.transforms = try transforms(in: folder + "/anat")
        if scan.lesionMask == nil, isFolder(folder + "/anat") {
            scan.lesionMask = lesionMask(in: folder + "/anat", names: try sortedEntries(folder + "/anat").compactMap(BIDSName.init))
        }
        let funcFolder = folder + "/func"
        if isFolder(funcFolder) {
            scan.boldRuns = try boldRuns(in: funcFolder, options: options, warnings: &warnings)
        }
        return scan
    }

    /// fMRIPrep's and QSIPrep's transforms between spaces in an `anat/` folder:
    /// `*_from-<space>_to-<space>_mode-image_xfm.h5` (or `.txt`, `.mat`), by name.
    static func transforms(in folder: String) throws -> [String] {
        guard isFolder(folder) else { return [] }
        return try sortedEntries(folder).filter { name in
            guard let ext = [".h5", ".txt", ".mat"].first(where: { name.hasSuffix("_xfm" + $0) }) else { return false }
            let entities = name.dropLast(ext.count).split(separator: "_")
            return entities.contains { $0.hasPrefix("from-") } && entities.contains { $0.hasPrefix("to-") }
        }.map { folder + "/" + $0 }
    }

    /// A label atlas written beside an image in its space (`*_space-<space>_seg-<name>_dseg.nii.gz`,
    /// as XCP-D and QSIRecon write them); the first by name when there are several.
    static func atlas(beside image: BIDSName, in names: [BIDSName]) -> String? {
        names.filter { $0.suffix == "dseg" && $0.isImage && $0.entity("seg") != nil && $0.entity("space") == image.entity("space")
            && $0.entity("sub") == image.entity("sub") && $0.entity("ses") == image.entity("ses") }
            .map(\.fileName).sorted().first
    }

    /// `*_label-lesion_mask.nii.gz` or `*_desc-lesion_mask.nii.gz`.
    static func lesionMask(in folder: String, names: [BIDSName]) -> String? {
        names.first { $0.suffix == "mask" && $0.isImage && ($0.entity("label") == "lesion" || $0.entity("desc") == "lesion") }
            .map { folder + "/" + $0.fileName }
    }

    /// Every run of the task in a func folder, in run order. For each run (the BOLD's
    /// entities but space, res, den and desc), the image of the chosen space (`options.space`,
    /// else every space found, for ``chooseSpaces(matching:)`` to settle), preferring
    /// fMRIPrep's `desc-preproc`; with its confounds, sidecar and brain mask.
    static func boldRuns(in folder: String, options: DiscoveryOptions, warnings: inout [String]) throws -> [BOLDRun] {
        let names = try sortedEntries(folder)
        let parsed = names.compactMap(BIDSName.init)
        let bolds = parsed.filter { name in
            name.suffix == "bold" && name.isImage && name.entity("task") == options.task
                && options.filter.accepts(name, kind: "bold", datatype: "func")
                && (options.space == nil || name.entity("space") == options.space)
        }
        let runs = Dictionary(grouping: bolds) { $0.coreEntities.joined(separator: "_") }
        var result: [BOLDRun] = []
        for key in runs.keys.sorted(by: BIDSLabel.naturalLess) {
            // A preprocessed image makes the raw one beside it (no desc-preproc) irrelevant.
            let preprocessed = runs[key]!.filter { $0.entity("desc") == "preproc" }
            let pool = preprocessed.isEmpty ? runs[key]! : preprocessed
            let bySpace = Dictionary(grouping: pool) { $0.entity("space") ?? "" }
            for space in bySpace.keys.sorted() {
                let chosen = bySpace[space]!.sorted { $0.fileName < $1.fileName }[0]
                if bySpace.count == 1 && runs[key]!.count > 1 {
                    warnings.append("\(folder): \(runs[key]!.count) BOLD images; using \(chosen.fileName)")
                }
                let confounds = parsed.first { $0.isConfounds && $0.coreEntities == chosen.coreEntities }
                let mask = parsed.first { $0.suffix == "mask" && $0.isImage && $0.entity("desc") == "brain"
                    && $0.entitiesExcept(["desc"]) == chosen.entitiesExcept(["desc"]) }
                result.append(BOLDRun(bold: folder + "/" + chosen.fileName, confounds: confounds.map { folder + "/" + $0.fileName },
                                      sidecar: names.contains(chosen.stem + ".json") ? folder + "/" + chosen.stem + ".json" : nil,
                                      brainMask: mask.map { folder + "/" + $0.fileName },
                                      atlas: atlas(beside: chosen, in: parsed).map { folder + "/" + $0 }))
            }
        }
        return result
    }

    /// Keeps one space for the BOLD runs when discovery found several: the space whose
    /// images `matches` (the atlas's grid).
    /// - Throws: ``TrialError/badTable(file:reason:)`` listing the spaces found when none or
    ///   several match.
    public mutating func chooseSpaces(matching matches: (String) throws -> Bool) throws {
        var spaces: [String: String] = [:]  // space -> one image in it
        for visit in visits {
            let keys = visit.boldRuns.map(\.runKey)
            guard Set(keys).count < keys.count else { continue }
            for run in visit.boldRuns { spaces[run.space ?? "none"] = spaces[run.space ?? "none"] ?? run.bold }
        }
        guard !spaces.isEmpty else { return }
        let fitting = try spaces.keys.sorted().filter { try matches(spaces[$0]!) }
        guard fitting.count == 1, let space = fitting.first else {
            let found = spaces.keys.sorted().joined(separator: ", ")
            let rule = fitting.isEmpty ? "none matches the atlas grid" : "several match the atlas grid (\(fitting.joined(separator: ", ")))"
            throw TrialError.badTable(file: path, reason: "the BOLD runs come in several spaces (\(found)) and \(rule): choose one with --space")
        }
        for k in visits.indices where Set(visits[k].boldRuns.map(\.runKey)).count < visits[k].boldRuns.count {
            visits[k].boldRuns.removeAll { ($0.space ?? "none") != space }
        }
    }
}

extension VisitInput {
    /// Takes a folder's images, modality by modality, except the modalities in `kept`
    /// (given by an earlier derivative dataset).
    /// - Returns: the modalities taken.
    @discardableResult
    mutating func merge(_ scan: FolderScan, keeping kept: Set<Modality>) -> Set<Modality> {
        var taken = Set<Modality>()
        if let dwi = scan.dwi, !kept.contains(.dwi) {
            self.dwi = dwi
            bval = scan.bval
            bvec = scan.bvec
            dwiMask = scan.dwiMask
            if let atlas = scan.dwiAtlas { dwiAtlas = atlas }
            taken.insert(.dwi)
        }
        if !scan.boldRuns.isEmpty, !kept.contains(.functional) {
            boldRuns = scan.boldRuns
            taken.insert(.functional)
        }
        if let lesion = scan.lesionMask { lesionMask = lesion }
        transforms += scan.transforms.filter { !transforms.contains($0) }
        return taken
    }
}

extension BOLDRun {
    /// The run's acquisition entities (task, run, echo, ...), without space, res, den and
    /// desc: the same for one run's images in different spaces.
    var runKey: String {
        BIDSName(URL(fileURLWithPath: bold).lastPathComponent)?.coreEntities.joined(separator: "_") ?? bold
    }
}
