import ArgumentParser
import Diffusion
import Foundation
import Functional
import Pipelines
import NIfTI
import Tabular
import Trial

// The processing options shared by `dti`, `fmri` and `run`, each group defined once. A group
// checks its own values in `validate()` and builds the parameter value the pipelines take;
// `run` records that same value as its re-run fingerprint.
//
// Numeric options are parsed `.unconditional`ly, so that `--fd-threshold -1` reaches the
// check and is refused by name instead of being read as an unknown option.

extension TensorFitMethod: ExpressibleByArgument {}
extension VectorFrame: ExpressibleByArgument {}

extension DummyScans: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension ConfoundStrategy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let strategy = try? ConfoundStrategy(parsing: argument) else { return nil }
        self = strategy
    }
    public static var allValueStrings: [String] { ["none", "6P", "24P", "36P"] }
}

/// Checks of numeric option values, each naming the option and the value refused.
enum OptionCheck {
    static func finite(_ value: Double, _ option: String) throws {
        guard value.isFinite else { throw ValidationError("\(option) must be a finite number, got \(value)") }
    }

    static func positive(_ value: Double, _ option: String) throws {
        try finite(value, option)
        guard value > 0 else { throw ValidationError("\(option) must be positive, got \(formatJSONNumber(value))") }
    }

    static func nonNegative(_ value: Double, _ option: String) throws {
        try finite(value, option)
        guard value >= 0 else { throw ValidationError("\(option) must not be negative, got \(formatJSONNumber(value))") }
    }

    static func atLeast(_ minimum: Int, _ value: Int, _ option: String) throws {
        guard value >= minimum else { throw ValidationError("\(option) must be at least \(minimum), got \(value)") }
    }

    static func fraction(_ value: Double, _ option: String) throws {
        try finite(value, option)
        guard (0...1).contains(value) else { throw ValidationError("\(option) must be between 0 and 1, got \(formatJSONNumber(value))") }
    }
}

/// The tensor fit: method, re-weighting, shells, b=0 threshold, output frame, orientation check.
struct TensorFitOptions: ParsableArguments {
    @Option(help: "Fit method: wls or ols.")
    var fit: TensorFitMethod = .wls

    @Option(parsing: .unconditional, help: "WLS re-weighting passes (MRtrix's -iter).")
    var iterations = 1

    @Option(name: .customLong("max-b"), parsing: .unconditional,
            help: ArgumentHelp("Fit only the volumes with b <= B (s/mm^2) as written, and the b=0 volumes.",
                               discussion: "Default: automatic. A single-shell series is fitted whole, at any b; a multi-shell series is fitted to b <= 1500, or to its lowest shell when that is above 1500.",
                               valueName: "B"))
    var maxB: Double?

    @Option(name: .customLong("b0-threshold"), parsing: .unconditional, help: "b-values at or below this count as b=0.")
    var b0Threshold = 50.0

    @Option(name: .customLong("vector-frame"), help: "Frame of V1 and the tensor: fsl or world.")
    var vectorFrame: VectorFrame = .fsl

    @Flag(name: .customLong("no-orientation-check"), help: "Skip the gradient orientation check.")
    var noOrientationCheck = false

    @Flag(name: .customLong("keep-negative-eigenvalues"),
          help: ArgumentHelp("Keep voxels with a negative eigenvalue (or FA above 1) in the regional summaries.",
                             discussion: "By default they are left out of the summaries and counted in the sidecar's QC; the maps hold them either way."))
    var keepNegativeEigenvalues = false

    func validate() throws {
        try OptionCheck.atLeast(1, iterations, "--iterations")
        try OptionCheck.nonNegative(b0Threshold, "--b0-threshold")
        if let maxB {
            try OptionCheck.positive(maxB, "--max-b")
            guard b0Threshold < maxB else {
                throw ValidationError("--b0-threshold (\(formatJSONNumber(b0Threshold))) must be below --max-b (\(formatJSONNumber(maxB)))")
            }
        }
    }

    /// The fit parameters; `resampleAtlas` comes from ``AtlasOptions``.
    func parameters(resampleAtlas: Bool) -> DiffusionParameters {
        var parameters = DiffusionParameters()
        parameters.method = fit
        parameters.iterations = iterations
        parameters.maximumB = maxB
        parameters.b0Threshold = b0Threshold
        parameters.vectorFrame = vectorFrame
        parameters.orientationCheck = !noOrientationCheck
        parameters.keepNegativeEigenvalues = keepNegativeEigenvalues
        parameters.resampleAtlas = resampleAtlas
        return parameters
    }
}

/// The label atlases and how they meet the data's grid.
///
/// Several atlases are measured one by one, each giving its own outputs named `seg-<name>`
/// (the atlas file's `atlas-` or `seg-` entity); two with one name are refused.
struct AtlasOptions: ParsableArguments {
    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("Label atlases on the data's grid (.nii.gz), each with a TSV (index, name[, network]) beside it.",
                               discussion: "Several give each its own outputs, named seg-<name> after the atlas file's atlas- (or seg-) entity.",
                               valueName: "atlas"))
    var atlas: [String] = []

    @Option(name: .customLong("atlas-table"), parsing: .upToNextOption,
            help: "The atlases' label tables, if not the .tsv beside them: one per --atlas, in the same order.")
    var atlasTable: [String] = []

    @Flag(name: .customLong("resample-atlas"), help: "Resample the atlas to the data's grid by nearest neighbour if the grids differ.")
    var resampleAtlas = false

    func validate() throws {
        if !atlasTable.isEmpty && atlas.isEmpty { throw ValidationError("--atlas-table needs --atlas") }
        if !atlasTable.isEmpty && atlasTable.count != atlas.count {
            throw ValidationError("--atlas-table takes one label table per --atlas, in the same order: \(atlas.count) atlases, \(atlasTable.count) tables")
        }
        try Self.checkNames(atlas.filter { !$0.contains("{") }, option: "--atlas")
    }

    /// The atlases with their tables.
    var files: [AtlasFile] {
        atlas.enumerated().map { k, path in AtlasFile(path: path, tablePath: atlasTable.isEmpty ? nil : atlasTable[k]) }
    }

    /// Refuses two atlases whose outputs would have the same `seg-` name.
    static func checkNames(_ paths: [String], option: String) throws {
        do { _ = try OutputNaming.atlasNames(paths) } catch { throw ValidationError("\(option): \(error)") }
    }
}

/// The brain mask on the data's grid.
struct MaskOptions: ParsableArguments {
    @Option(help: "Brain mask on the data's grid (default: dti makes one from the mean b=0; fmri takes the voxels non-zero in the first volume).")
    var mask: String?
}

/// The lesion mask of an MS trial's DWI, which adds the lesion and normal-appearing-tissue
/// summaries.
struct LesionOptions: ParsableArguments {
    @Option(name: .customLong("lesion-mask"),
            help: "Lesion mask on the DWI grid: adds 'lesion' and 'normal_appearing_tissue' summaries (run: a path pattern).")
    var lesionMask: String?
}

/// Confound regression and the band-pass filter.
struct DenoisingOptions: ParsableArguments {
    @Option(help: "Confound strategy: none, 6P, 24P or 36P (default 6P with a confounds table, none without).")
    var strategy: ConfoundStrategy?

    @Option(name: .customLong("confound-columns"), help: "Explicit comma-separated confound columns (instead of --strategy).")
    var confoundColumns: String?

    @Option(name: .customLong("high-pass"), parsing: .unconditional, help: "High-pass cut-off in Hz (0 for none).")
    var highPass = 0.01

    @Option(name: .customLong("low-pass"), parsing: .unconditional, help: "Low-pass cut-off in Hz (0 for none).")
    var lowPass = 0.08

    func validate() throws {
        if strategy != nil && confoundColumns != nil {
            throw ValidationError("give either --strategy or --confound-columns, not both")
        }
        if let columns = confoundColumns, parsedColumns(columns).isEmpty {
            throw ValidationError("--confound-columns names no column")
        }
        try OptionCheck.nonNegative(highPass, "--high-pass")
        try OptionCheck.nonNegative(lowPass, "--low-pass")
        if highPass > 0 && lowPass > 0 && highPass >= lowPass {
            throw ValidationError("--high-pass (\(formatJSONNumber(highPass)) Hz) must be below --low-pass (\(formatJSONNumber(lowPass)) Hz)")
        }
    }

    private func parsedColumns(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Writes the confound model and band into `parameters`.
    func apply(to parameters: inout FunctionalParameters) {
        parameters.strategy = confoundColumns.map { .columns(parsedColumns($0)) } ?? strategy
        parameters.highPass = highPass > 0 ? highPass : nil
        parameters.lowPass = lowPass > 0 ? lowPass : nil
    }
}

/// Volumes left out: non-steady-state volumes at the start, and high-motion volumes.
struct CensoringOptions: ParsableArguments {
    @Option(name: .customLong("fd-threshold"), parsing: .unconditional,
            help: "Censor volumes with framewise displacement above this (mm).")
    var fdThreshold: Double?

    @Option(name: .customLong("dummy-scans"), parsing: .unconditional,
            help: "Non-steady-state volumes to drop: auto (those fMRIPrep flags in the confounds) or a number.")
    var dummyScans = DummyScans.automatic

    func validate() throws {
        if let fdThreshold { try OptionCheck.positive(fdThreshold, "--fd-threshold") }
    }

    func apply(to parameters: inout FunctionalParameters) {
        parameters.fdThreshold = fdThreshold
        parameters.dummyScans = dummyScans
    }
}

/// What the resting-state pipeline measures, beyond denoising and censoring.
struct ConnectivityOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Repetition time in seconds (overrides the sidecar and header).")
    var tr: Double?

    @Flag(help: "Also compute partial correlation (Ledoit-Wolf shrinkage).")
    var partial = false

    @Option(name: .customLong("min-coverage"), parsing: .unconditional,
            help: "Regions with a smaller fraction of their voxels in the brain are n/a.")
    var minCoverage = 0.5

    @Flag(name: .customLong("alff-maps"), help: "Also write voxelwise ALFF and fALFF maps (reads the whole run into memory).")
    var alffMaps = false

    func validate() throws {
        if let tr { try OptionCheck.positive(tr, "--tr") }
        try OptionCheck.fraction(minCoverage, "--min-coverage")
    }

    func apply(to parameters: inout FunctionalParameters) {
        parameters.repetitionTime = tr
        parameters.partialCorrelation = partial
        parameters.minimumCoverage = minCoverage
        parameters.amplitudeMaps = alffMaps
    }
}

/// Everything that shapes the resting-state measures: denoising, censoring, connectivity.
struct FunctionalProcessingOptions: ParsableArguments {
    @OptionGroup(title: "Denoising") var denoising: DenoisingOptions
    @OptionGroup(title: "Censoring") var censoring: CensoringOptions
    @OptionGroup(title: "Connectivity and amplitude") var connectivity: ConnectivityOptions

    /// The functional parameters; `resampleAtlas` comes from ``AtlasOptions``.
    func parameters(resampleAtlas: Bool) -> FunctionalParameters {
        var parameters = FunctionalParameters()
        denoising.apply(to: &parameters)
        censoring.apply(to: &parameters)
        connectivity.apply(to: &parameters)
        parameters.resampleAtlas = resampleAtlas
        return parameters
    }
}

/// What `run` and `visits` take from a dataset: the visits (labels), the derivative datasets
/// with the preprocessed images, the task, the space and a BIDS filter. One definition, so
/// `visits` lists exactly the visits `run` processes.
struct DatasetSelectionOptions: ParsableArguments {
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

    func validate() throws {
        guard BIDSLabel.isValid(task) else { throw ValidationError("--task must be a BIDS label (letters and digits), got '\(task)'") }
        if let space, !BIDSLabel.isValid(space) { throw ValidationError("--space must be a BIDS label (letters and digits), got '\(space)'") }
        for item in derivatives where item.hasSuffix("=") || item.hasPrefix("=") {
            throw ValidationError("--derivatives takes PATH or NAME=PATH, got '\(item)'")
        }
    }

    /// What discovery looks for; `output` is left out of the default derivative datasets.
    func discoveryOptions(output: String?) throws -> DiscoveryOptions {
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
        options.excluded = output.map { [$0] } ?? []
        return options
    }

    /// When the BOLD runs come in several spaces and no --space was given, keeps the one
    /// whose grid is the (first) atlas's.
    static func chooseSpace(_ dataset: inout Dataset, atlas: PathPattern?) throws {
        guard let atlas, let visit = dataset.visits.first(where: { $0.bold != nil }) else {
            // Without one atlas for all, there is no grid to choose by: several spaces are an error.
            return try dataset.chooseSpaces { _ in false }
        }
        let atlasPath = try atlas.path(participant: visit.participant, session: visit.session)
        let grid = try NIfTIFile.readHeader(atlasPath)
        try dataset.chooseSpaces { image in try NIfTIFile.readHeader(image).hasSameGrid(as: grid) }
    }
}

/// The HTML reports: `run` writes them unless `--no-reports`; `report` rebuilds them.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong("report-metrics"), parsing: .upToNextOption,
            help: "Outcome metrics whose trajectories the trial report plots (default: fa_mean md_mean conn_within_mean).")
    var reportMetrics: [String] = []

    /// The metrics of the trial report; nil for the default.
    var metrics: [String]? { reportMetrics.isEmpty ? nil : reportMetrics }

    func validate() throws {
        for metric in reportMetrics where metric.isEmpty || metric.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw ValidationError("--report-metrics takes metric names such as fa_mean, got '\(metric)'")
        }
    }
}
