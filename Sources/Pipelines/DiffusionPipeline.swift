import AtomicFiles
import Diffusion
import Foundation
import NIfTI
import Parcellation
import SlabParallel
import Tabular

/// The frame of the V1 map and the tensor.
public enum VectorFrame: String, CaseIterable, Sendable {
    /// FSL's dtifit frame: the image's voxel axes, x negated when the voxel-to-world
    /// determinant is positive (so FSLeyes shows V1 right).
    case fsl
    /// Scanner/template RAS+ axes, as MRtrix's `tensor2metric -vector` gives.
    case world

    /// The same axes as the Diffusion module names them.
    var directionFrame: DirectionFrame {
        switch self {
        case .fsl: return .fsl
        case .world: return .world
        }
    }
}

/// One DWI series to process: the files it is read from, the parameters, and where the
/// outputs go.
public struct DiffusionOptions: Sendable {
    public var dwiPath: String
    /// FSL `.bval` and `.bvec` (3 x N or N x 3).
    public var bvalPath: String?
    public var bvecPath: String?
    /// MRtrix-style `[x y z b]` table in world coordinates (instead of bval/bvec).
    public var gradientTablePath: String?
    /// Brain mask on the DWI grid; nil: automatic, from the mean b=0 image.
    public var maskPath: String?
    /// Label atlases on the DWI grid, each summarised on its own (`P_seg-<name>_model-tensor_summary.tsv`);
    /// none: the whole-brain and lesion summaries only. Their `seg-` names must differ.
    public var atlases: [AtlasFile] = []
    public var lesionMaskPath: String?
    public var parameters = DiffusionParameters()
    public var threads = 1
    public var outputFolder: String
    public var prefix: String

    public init(dwiPath: String, bvalPath: String?, bvecPath: String?, outputFolder: String, prefix: String? = nil) {
        self.dwiPath = dwiPath
        self.bvalPath = bvalPath
        self.bvecPath = bvecPath
        self.outputFolder = outputFolder
        self.prefix = prefix ?? OutputNaming.prefix(fromInput: dwiPath)
    }

    /// Every file the pipeline reads for these options, with its role, in a fixed order: a
    /// batch hashes them all, so editing any of them (the atlas's label table included)
    /// redoes the visit. Several atlases' roles carry their names (`dwi_atlas_seg-JHU`).
    public var inputFiles: [(role: String, path: String)] {
        let atlasFiles = atlases.flatMap { atlas -> [(String, String?)] in
            let tag = atlases.count > 1 ? "_seg-" + atlas.name : ""
            return [("dwi_atlas" + tag, atlas.path),
                    ("dwi_atlas_table" + tag, LabelImage.tablePath(for: atlas.path, explicit: atlas.tablePath))]
        }
        let all: [(String, String?)] = [
            ("dwi", dwiPath), ("bval", bvalPath), ("bvec", bvecPath), ("grad", gradientTablePath), ("dwi_mask", maskPath),
        ] + atlasFiles + [("lesion_mask", lesionMaskPath)]
        return all.compactMap { role, path in path.map { (role, $0) } }
    }
}

/// What one DWI series gave.
public struct DiffusionResult: Sendable {
    /// Per map (`fa`, `md`, `ad`, `rd`), the summaries of the first atlas's regions, then
    /// `whole_brain` and the lesion masks'.
    public var summaries: [String: [RegionSummary]]
    /// The same for each atlas, keyed by its `seg-` name (empty without an atlas).
    public var summariesByAtlas: [String: [String: [RegionSummary]]]
    public var metrics: [VisitMetric]
    public var files: [String]
    public var warnings: [String]
    public var quality: TensorFitQuality
    public var orientation: GradientOrientationReport?
    /// The volumes fitted, the rule that chose them and the b-values used and left out.
    public var selection: VolumeSelection
}

/// DWI -> gradient table -> mask -> tensor fit -> maps and regional summaries, for one visit.
public enum DiffusionPipeline {
    /// Maps and their BIDS `param-` names, in output order.
    static let scalarMaps: [(metric: TensorMetric, name: String)] = [
        (.fractionalAnisotropy, "fa"), (.meanDiffusivity, "md"), (.axialDiffusivity, "ad"), (.radialDiffusivity, "rd"),
    ]

    /// Runs the pipeline: read the inputs, fit, then write the maps, summaries and sidecar.
    public static func run(_ options: DiffusionOptions) throws -> DiffusionResult {
        var timer = PhaseTimer("dti")
        var inputs = try readInputs(options)
        // The masked series is freed chunk by chunk as it is fitted.
        let (fit, mask, maskSource, maskVoxelCount) = try { () throws -> (MaskedTensorFit, [Bool], String, Int) in
            var series = try readMaskedSeries(options, inputs: inputs)
            timer.lap("read + mask + gather")
            try checkSignal(&series, &inputs, options)
            let fit = try fitTensors(series.signal, voxels: series.voxels, inputs, options)
            return (fit, series.mask, series.source, series.voxels.count)
        }()
        timer.lap("fit")
        let quality = fit.quality
        let maps = scalarMaps.map { (name: $0.name, values: fit.map($0.metric)) } + [(name: "s0", values: fit.s0)]
        let writer = MapWriter(options, header: inputs.header)
        try createOutputFolder(options.outputFolder)
        // The tensor and V1 maps (two thirds of the bytes written) depend on the fit alone: with
        // two threads or more they are written on a second thread during the orientation
        // check, the summaries and the smaller maps.
        let largeMaps = BackgroundWork(inBackground: options.threads > 1) { try writer.writeVolumeMaps(fit) }
        defer { largeMaps.waitIgnoringErrors() }

        let orientation = try options.parameters.orientationCheck
            ? checkOrientation(fit, fa: maps[0].values, options: options, header: inputs.header) : nil
        if let orientation, orientationFlipIsClear(orientation) {
            inputs.warnings.append("gradient orientation check: flipping voxel axis \(orientation.best) gives more coherent fibres than the table as given; check the b-vectors")
        }
        timer.lap("orientation check")
        let summarised = maps.filter { $0.name != "s0" }
        // Each atlas is summarised with the whole brain and the lesion masks, so that each
        // summary table is complete; those rows are the same for every atlas. Voxels with a
        // negative eigenvalue or FA above 1 are left out unless asked for (counted in the QC).
        let included = options.parameters.keepNegativeEigenvalues ? fit.fitted : fit.plausible
        let summaries = try inputs.regions.map { regions in
            let perMap = try wrap(options.dwiPath) {
                try regionalStatistics(maps: summarised.map(\.values), mask: included, atlas: regions.atlas,
                                       extraMasks: inputs.extraMasks, threads: options.threads)
            }
            return (name: regions.name, summaries: Dictionary(uniqueKeysWithValues: zip(summarised.map(\.name), perMap)))
        }
        let excluded = options.parameters.keepNegativeEigenvalues ? nil : excludedVoxels(fit, inputs: inputs)
        if let excluded, excluded.total > 0 {
            inputs.warnings.append("\(excluded.total) of \(quality.voxelsFitted) fitted voxels have a negative eigenvalue (or FA above 1) and are left out of the regional summaries; --keep-negative-eigenvalues keeps them")
        }
        timer.lap("regional summaries")

        try writer.writeScalarMaps(maps, mask: mask)
        try largeMaps.wait()
        timer.lap("write maps")
        let maskDescription = (source: maskSource, voxels: maskVoxelCount)
        var (files, metrics) = try writeTables(summaries, options: options, inputs: inputs, mask: maskDescription,
                                               quality: quality, orientation: orientation, excluded: excluded)
        files = writer.volumeMapPaths + writer.scalarMapPaths(maps) + files
        timer.lap("tables + sidecar")
        metrics.append(VisitMetric(modality: "dwi", region: wholeBrainRegion, metric: "negative_eigenvalue_fraction",
                                   value: negativeEigenvalueFraction(quality) ?? .nan))
        let byAtlas = Dictionary(uniqueKeysWithValues: summaries.compactMap { set in set.name.map { ($0, set.summaries) } })
        return DiffusionResult(summaries: summaries[0].summaries, summariesByAtlas: byAtlas,
                               metrics: metrics, files: files, warnings: inputs.warnings,
                               quality: quality, orientation: orientation, selection: inputs.selection)
    }

    // MARK: - Reading

    /// Everything read before the fit: the header, the gradient table of the kept volumes,
    /// the brain mask, the regions, and the warnings so far.
    struct Inputs {
        var header: NIfTIHeader
        var selection: VolumeSelection
        /// The mask given with `--mask`; nil: automatic, made while the series is read.
        var givenMask: [Bool]?
        /// One per atlas, in the order given; one without a name (and no region) when there
        /// is no atlas.
        var regions: [AtlasRegions]
        var extraMasks: [(name: String, mask: [Bool])]
        var warnings: [String]

        /// Kept volumes (positions in `selection.table`) left out of the fit because most of
        /// their brain voxels are not finite (``checkSignal(_:_:_:)``).
        var unusableVolumes: Set<Int> = []

        /// The gradient table of the kept volumes.
        var table: GradientTable { selection.table }
        /// The kept volumes' indices in the series.
        var volumeIndices: [Int] { selection.volumeIndices }
        /// The table fitted: the kept volumes less the unusable ones.
        var fittedTable: GradientTable { unusableVolumes.isEmpty ? table : table.removing(volumes: unusableVolumes) }
    }

    /// Reads and checks every input but the diffusion signal itself: the header, gradients,
    /// mask, atlas and lesion mask, so a bad one fails before the long read and fit.
    static func readInputs(_ options: DiffusionOptions) throws -> Inputs {
        var warnings: [String] = []
        let header = try NIfTIFile.readHeader(options.dwiPath)
        guard header.volumeCount >= 7 else {
            throw PipelineError(options.dwiPath, "a DWI series needs at least 7 volumes (1 b=0 + 6 directions), this one has \(header.volumeCount)")
        }
        let (fslTable, worldTable) = try readGradients(options, header: header)
        let selection = try selectVolumes(options.parameters.vectorFrame == .fsl ? fslTable : worldTable, options)
        warnings += selectionWarnings(selection)
        if options.maskPath == nil && selection.table.b0Indices.isEmpty {
            throw PipelineError(options.dwiPath, "no b=0 volume (b <= \(formatJSONNumber(options.parameters.b0Threshold))) to make an automatic brain mask from; give --mask")
        }
        try checkDesign(selection.table, options)
        // Opening a reader checks that the file can hold the voxels its header declares,
        // before anything the size of a volume is allocated.
        _ = try NIfTIFile.volumes(options.dwiPath)
        let givenMask = try readGivenMask(options, header: header)
        let (regions, extraMasks) = try readRegions(options, header: header)
        warnings += regions.compactMap(\.resampled)
        return Inputs(header: header, selection: selection, givenMask: givenMask,
                      regions: regions, extraMasks: extraMasks, warnings: warnings)
    }

    /// The volumes fitted (``GradientTable/selecting(maximumB:)``). A `--max-b` below every
    /// weighted volume is an error naming the b-value file, the b-values and the option.
    static func selectVolumes(_ table: GradientTable, _ options: DiffusionOptions) throws -> VolumeSelection {
        do {
            return try table.selecting(maximumB: options.parameters.maximumB)
        } catch GradientTableError.noWeightedVolumeAtOrBelow(_, let maximumB, let bValues) {
            let weighted = bValues.filter { $0 > table.b0Threshold }
            throw PipelineError(options.bvalPath ?? options.gradientTablePath ?? table.source,
                                "--max-b \(formatJSONNumber(maximumB)) keeps no diffusion-weighted volume (b-values in the file: "
                                + "\(GradientTable.describe(bValues: bValues))); give --max-b \(formatJSONNumber(weighted.min() ?? 0)) "
                                + "or more, or leave --max-b out for the automatic choice")
        }
    }

    /// What a user should know of the volumes left out: how many, their b-values, the rule,
    /// and any shell the limit cuts through.
    static func selectionWarnings(_ selection: VolumeSelection) -> [String] {
        var warnings: [String] = []
        let leftOut = selection.leftOutIndices.count
        let total = selection.full.count
        let described = GradientTable.describe(bValues: selection.bValuesLeftOut)
        switch selection.rule {
        case .singleShell:
            break
        case .automaticLimit(let limit):
            guard leftOut > 0 else { break }
            warnings.append("multi-shell series: \(leftOut) of \(total) volumes (b = \(described)) left out of the tensor fit, which uses b <= \(formatJSONNumber(limit)) by default; --max-b sets the limit")
        case .lowestShell(let shell):
            warnings.append("multi-shell series with no shell at b <= \(formatJSONNumber(GradientTable.automaticMaximumB)): the tensor is fitted to the lowest shell (b ~ \(formatJSONNumber(shell))); \(leftOut) of \(total) volumes (b = \(described)) left out; --max-b sets the limit")
        case .maximum(let limit):
            if leftOut > 0 {
                warnings.append("\(leftOut) of \(total) volumes with b > \(formatJSONNumber(limit)) (b = \(described)) left out of the tensor fit")
            }
        }
        for split in selection.splitShells {
            warnings.append("the limit cuts the b ~ \(formatJSONNumber(split.shell)) shell: \(split.kept) of its volumes kept, \(split.leftOut) left out")
        }
        return warnings
    }

    // MARK: - Preconditions

    /// The gradient file a design problem is blamed on: the `.bvec` (or the MRtrix table).
    static func directionsPath(_ options: DiffusionOptions) -> String {
        options.gradientTablePath ?? options.bvecPath ?? options.dwiPath
    }

    /// Refuses a design that cannot determine the tensor, or determines it so poorly that
    /// noise dominates (condition number above ``maximumDesignConditionNumber``): nearly
    /// collinear directions, full rank on paper, gave whole-brain FA 1.10.
    static func checkDesign(_ table: GradientTable, _ options: DiffusionOptions, leftOut: String = "") throws {
        let condition = designConditionNumber(table)
        let volumes = "the \(table.count) fitted volumes (\(table.b0Indices.count) b=0, \(table.diffusionIndices.count) weighted\(leftOut))"
        if !condition.isFinite && table.b0Indices.isEmpty && Set(table.shellBValues).count < 2 {
            throw PipelineError(options.bvalPath ?? directionsPath(options), "no b=0 volume (b <= \(formatJSONNumber(table.b0Threshold))) among \(volumes), and a single b-value: the tensor needs a b=0 volume (or a second b-value) to fix S0")
        }
        guard condition.isFinite else {
            throw PipelineError(directionsPath(options), "the gradient directions of \(volumes) do not determine the tensor: it needs at least 6 non-collinear directions and a b=0 volume")
        }
        guard condition <= maximumDesignConditionNumber else {
            throw PipelineError(directionsPath(options), String(
                format: "the gradient directions of %@ are nearly collinear: the tensor design has condition number %.0f (above %.0f; evenly spread schemes give 3 to 20), so the fit would be noise (FA above 1, negative eigenvalues); check the directions in this file", volumes, condition, maximumDesignConditionNumber))
        }
    }

    /// Checks the gathered signal before the fit: a kept volume whose brain voxels are mostly
    /// not finite (more than ``maximumNonFiniteVolumeFraction``) is left out of the fit with a
    /// warning naming it, rather than leaving every voxel unfitted; the design of what is
    /// left is checked again; and the mean diffusion-weighted signal must be below the mean
    /// b=0 signal (diffusion only attenuates), else the b-values label the wrong volumes.
    static func checkSignal(_ series: inout MaskedSeries, _ inputs: inout Inputs, _ options: DiffusionOptions) throws {
        let fractions = series.signal.nonFiniteFractions()
        let unusable = fractions.indices.filter { fractions[$0] > maximumNonFiniteVolumeFraction }
        if !unusable.isEmpty {
            for k in unusable {
                inputs.warnings.append(String(format: "volume %d (b = %@) of %@ is not finite in %.0f%% of the brain: left out of the fit",
                                              inputs.volumeIndices[k], formatJSONNumber(inputs.table.bValues[k]),
                                              URL(fileURLWithPath: options.dwiPath).lastPathComponent, 100 * fractions[k]))
            }
            inputs.unusableVolumes = Set(unusable)
            series.signal = series.signal.removingVolumes(inputs.unusableVolumes)
            let table = inputs.fittedTable
            guard !table.b0Indices.isEmpty else {
                throw PipelineError(options.dwiPath, "every b=0 volume is mostly not finite (volumes \(unusable.map { String(inputs.volumeIndices[$0]) }.joined(separator: ", "))): no b=0 signal to fit")
            }
            try checkDesign(table, options, leftOut: "; \(unusable.count) non-finite volume(s) left out")
        }
        let table = inputs.fittedTable
        let means = series.signal.meanSignals(isB0: table.isB0)
        if means.b0.isFinite, means.weighted.isFinite, means.weighted >= means.b0 {
            let bPath = options.bvalPath ?? options.gradientTablePath ?? table.source
            throw PipelineError(bPath, String(
                format: "the volumes labelled b=0 are not brighter than the diffusion-weighted ones in the brain (mean signal %.4g at b=0, %.4g weighted; diffusion only attenuates): the b-values label the wrong volumes; check this file against the series",
                means.b0, means.weighted))
        }
    }

    /// Fitted voxels left out of the summaries as physically impossible, in all and per
    /// summarised region (atlas regions, whole brain, extra masks, in summary order).
    struct ExcludedVoxels {
        var total: Int
        var byRegion: [(name: String, count: Int)]
    }

    static func excludedVoxels(_ fit: MaskedTensorFit, inputs: Inputs) -> ExcludedVoxels {
        let bad = fit.impossible.indices.filter { fit.impossible[$0] }
        var byRegion: [(name: String, count: Int)] = []
        for regions in inputs.regions {
            let atlas = regions.atlas
            var slot = [Int: Int]()
            for (k, entry) in atlas.entries.enumerated() { slot[entry.index] = k }
            var counts = [Int](repeating: 0, count: atlas.entries.count)
            for i in bad { if let k = slot[Int(atlas.labels[i])] { counts[k] += 1 } }
            // With several atlases, a region is named with its atlas: `seg-JHU/L_CST`.
            let prefix = inputs.regions.count > 1 ? regions.name.map { "seg-\($0)/" } ?? "" : ""
            byRegion += zip(atlas.entries, counts).map { (name: prefix + $0.name, count: $1) }
        }
        byRegion.append((name: wholeBrainRegion, count: bad.count))
        for extra in inputs.extraMasks { byRegion.append((name: extra.name, count: bad.filter { extra.mask[$0] }.count)) }
        return ExcludedVoxels(total: bad.count, byRegion: byRegion)
    }

    // MARK: - Computing

    /// Fits the tensor to the mask's voxels and places the fit on the grid.
    static func fitTensors(_ signal: MaskedSignal, voxels: [Int32], _ inputs: Inputs, _ options: DiffusionOptions) throws
        -> MaskedTensorFit {
        let model = try wrap(options.dwiPath) {
            try TensorModel(table: inputs.fittedTable, method: options.parameters.method, iterations: options.parameters.iterations)
        }
        do {
            return try model.fit(signal, voxels: voxels, gridVoxelCount: inputs.header.voxelsPerVolume, threads: options.threads)
        } catch { throw PipelineError(options.dwiPath, "\(error)") }
    }

    /// The gradient orientation check (Jeurissen et al. 2014) over every fitted voxel, from
    /// this fit: a flipped table would give D' = F D F and V1' = F V1, so the flips need no
    /// fits of their own. The check steps along V1 in voxel indices, so V1 goes from the
    /// table's frame to voxel axes first.
    static func checkOrientation(_ fit: MaskedTensorFit, fa: [Float], options: DiffusionOptions,
                                 header: NIfTIHeader) throws -> GradientOrientationReport {
        try wrap(options.dwiPath) {
            let toVoxel = try DirectionTransform(from: options.parameters.vectorFrame.directionFrame, to: .voxel,
                                                 linear: header.affine.linear, source: options.dwiPath)
            return try gradientOrientationCheck(principalEigenvectors: fit.principalEigenvectorField(toVoxel),
                                                fractionalAnisotropy: fa, fitted: fit.fitted, shape: header.spatialShape,
                                                threads: options.threads)
        }
    }

    static func negativeEigenvalueFraction(_ quality: TensorFitQuality) -> Double? {
        quality.voxelsFitted > 0 ? Double(quality.negativeEigenvalueVoxels) / Double(quality.voxelsFitted) : nil
    }

    // MARK: - Writing

    /// Writes the summary table and the sidecar; returns their paths and the summary metrics.
    ///
    /// Each atlas has its own table, `P_seg-<name>_model-tensor_summary.tsv`
    /// (`P_model-tensor_summary.tsv` without an atlas). With several atlases, the metrics of
    /// the regions that are not an atlas's (`whole_brain`, the lesion masks) come once, from
    /// the first (``AtlasCombination``).
    static func writeTables(_ summaries: [(name: String?, summaries: [String: [RegionSummary]])], options: DiffusionOptions,
                            inputs: Inputs, mask: (source: String, voxels: Int), quality: TensorFitQuality,
                            orientation: GradientOrientationReport?, excluded: ExcludedVoxels?) throws
        -> (files: [String], metrics: [VisitMetric]) {
        let base = options.outputFolder + "/" + options.prefix
        var files: [String] = []
        var perAtlas: [(name: String, metrics: [VisitMetric])] = []
        for set in summaries {
            let summary = summaryRows(set.summaries)
            let path = base + (set.name.map { "_seg-" + $0 } ?? "") + "_model-tensor_summary.tsv"
            try summary.table.write(to: path)
            files.append(path)
            perAtlas.append((set.name ?? "", summary.metrics))
        }
        let atlasIndependent = Set([wholeBrainRegion] + inputs.extraMasks.map(\.name))
        let metrics = AtlasCombination.combine(perAtlas) { !atlasIndependent.contains($0.region) }
        let sidecar = sidecarJSON(options: options, inputs: inputs, mask: mask, quality: quality, orientation: orientation,
                                  excluded: excluded)
        try AtomicFile.write(sidecar.rendered() + "\n", to: base + sidecarSuffix)
        return (files + [base + sidecarSuffix], metrics)
    }

    /// The end of the sidecar's file name, after the prefix.
    public static let sidecarSuffix = "_model-tensor_dwimap.json"

    /// The non-zero shells fitted, as a sidecar lists them (`Shells`), ascending; nil when
    /// the text is not a sidecar with that key. Lets the group tables show each visit's
    /// protocol from the per-visit outputs alone.
    public static func shellsUsed(sidecar text: String) -> [Double]? {
        guard let json = try? JSONValue.parse(text), case .array(let items)? = json["Shells"] else { return nil }
        let shells = items.compactMap(\.doubleValue)
        return shells.count == items.count ? shells : nil
    }

    /// The sidecar `P_model-tensor_dwimap.json`: every parameter, the inputs and the fit's QC.
    ///
    /// The volumes fitted: `MaximumBValue` (the `--max-b` given, null for the automatic
    /// choice), `ShellSelection` (the rule that applied), `BValuesUsed` and `BValuesLeftOut`
    /// (distinct b-values as written, b=0 included), `Shells` and `ShellsLeftOut` (non-zero
    /// shells, b rounded to 100), `VolumesUsed` and `VolumesLeftOut` (counts).
    ///
    /// The QC adds `DesignConditionNumber` (``designConditionNumber(_:)`` of the fitted
    /// volumes), `VolumesNotFinite` (series volumes left out of the fit as mostly
    /// non-finite) and `ExcludedFromSummaries` (fitted voxels with a negative eigenvalue or FA
    /// above 1 left out of the regional summaries, in all and per region that has any; null
    /// with `KeepNegativeEigenvalues`).
    static func sidecarJSON(options: DiffusionOptions, inputs: Inputs, mask: (source: String, voxels: Int), quality: TensorFitQuality,
                            orientation: GradientOrientationReport?, excluded: ExcludedVoxels? = nil) -> JSONValue {
        let parameters = options.parameters
        let selection = inputs.selection
        let table = inputs.fittedTable
        var excludedJSON = JSONValue.null
        if let excluded {
            let regions: [(String, JSONValue)] = excluded.byRegion.filter { $0.count > 0 }.map { ($0.name, JSONValue.int($0.count)) }
            excludedJSON = .object([("Voxels", .int(excluded.total)), ("Regions", .object(regions))])
        }
        let notFinite: [JSONValue] = inputs.unusableVolumes.sorted().map { .int(inputs.volumeIndices[$0]) }
        let qc = JSONValue.object([
            ("VoxelsInMask", .int(mask.voxels)),
            ("VoxelsFitted", .int(quality.voxelsFitted)),
            ("NegativeEigenvalueVoxels", .int(quality.negativeEigenvalueVoxels)),
            ("NegativeEigenvalueFraction", .finite(negativeEigenvalueFraction(quality))),
            ("ExcludedFromSummaries", excludedJSON),
            ("DesignConditionNumber", .finite(designConditionNumber(table))),
            ("VolumesNotFinite", .array(notFinite)),
            ("MeanResidual", .finite(quality.meanResidual)),
            ("GradientOrientationCheck", orientation.map(orientationJSON) ?? .null),
        ])
        let gradients: String = options.gradientTablePath ?? "\(options.bvalPath ?? "") \(options.bvecPath ?? "")"
        return .object([
            ("Description", .string("Diffusion tensor maps (Basser et al. 1994) and regional summaries")),
            ("GeneratedBy", .array([.object([("Name", .string("nimetrics")), ("Version", .string(NimetricsVersion.string))])])),
            ("Source", .string(options.dwiPath)),
            ("Gradients", .string(gradients)),
            ("FitMethod", .string(parameters.method.rawValue.uppercased())),
            ("Iterations", .int(parameters.iterations)),
            ("MaximumBValue", parameters.maximumB.map { .number($0) } ?? .null),
            ("B0Threshold", .number(parameters.b0Threshold)),
            ("BValuesUsed", .array(selection.bValuesUsed.map { .number($0) })),
            ("Shells", .array(selection.shellsUsed.map { .number($0) })),
            ("VolumesUsed", .int(table.count)),
            ("DirectionsUsed", .int(table.diffusionIndices.count)),
            ("ShellSelection", .string(selection.rule.description)),
            ("BValuesLeftOut", .array(selection.bValuesLeftOut.map { .number($0) })),
            ("ShellsLeftOut", .array(selection.shellsLeftOut.map { .number($0) })),
            ("VolumesLeftOut", .int(selection.leftOutIndices.count)),
            ("VectorFrame", .string(parameters.vectorFrame.rawValue)),
            ("KeepNegativeEigenvalues", .bool(parameters.keepNegativeEigenvalues)),
            ("TensorOrder", .string("D11 D12 D13 D22 D23 D33")),
            ("DiffusivityUnits", .string("mm^2/s")),
            ("Mask", .string(mask.source)),
            // One atlas (or none) as a path (or null) and a flag; several as lists in their order.
            ("Atlas", options.atlases.count > 1 ? .array(options.atlases.map { .string($0.path) })
                : options.atlases.first.map { .string($0.path) } ?? .null),
            ("AtlasResampled", options.atlases.count > 1 ? .array(inputs.regions.map { .bool($0.resampled != nil) })
                : .bool(inputs.regions.first?.resampled != nil)),
            ("LesionMask", options.lesionMaskPath.map { .string($0) } ?? .null),
            ("QC", qc),
            ("Warnings", .array(inputs.warnings.map { .string($0) })),
        ])
    }

    static func orientationJSON(_ report: GradientOrientationReport) -> JSONValue {
        .object([
            ("Best", .string(report.best.rawValue)),
            ("AsGivenIsBest", .bool(report.asGivenIsBest)),
            ("FlipRecommended", .bool(orientationFlipIsClear(report))),
            ("Margin", .number(orientationMargin)),
            ("Coherence", .object(report.scores.map { ($0.flip.rawValue, .finite($0.coherence)) })),
        ])
    }

    /// The long-format summary table (region, label, n_voxels, metric, mean, sd, median, p05,
    /// p95) and the same numbers as visit metrics (`fa_mean`, ..., and `n_voxels` per region).
    static func summaryRows(_ summaries: [String: [RegionSummary]]) -> (table: TSVTable, metrics: [VisitMetric]) {
        var table = TSVTable(columns: ["region", "label", "n_voxels", "metric", "mean", "sd", "median", "p05", "p95"])
        var metrics: [VisitMetric] = []
        let regionCount = summaries["fa"]!.count
        for r in 0..<regionCount {
            for key in scalarMaps.map(\.name) {
                let s = summaries[key]![r]
                table.append([s.name, s.index.map(String.init) ?? "n/a", String(s.count), key,
                              tsvCell(s.mean), tsvCell(s.standardDeviation), tsvCell(s.median),
                              tsvCell(s.percentile05), tsvCell(s.percentile95)])
                let stats: [(String, Double?)] = [("mean", s.mean), ("sd", s.standardDeviation), ("median", s.median),
                                                  ("p05", s.percentile05), ("p95", s.percentile95)]
                for (statistic, value) in stats {
                    metrics.append(VisitMetric(modality: "dwi", region: s.name, metric: "\(key)_\(statistic)", value: value ?? .nan))
                }
            }
            let s = summaries["fa"]![r]
            metrics.append(VisitMetric(modality: "dwi", region: s.name, metric: "n_voxels", value: Double(s.count)))
        }
        return (table, metrics)
    }

    /// The brain mask given with `--mask`, or nil for an automatic one.
    static func readGivenMask(_ options: DiffusionOptions, header: NIfTIHeader) throws -> [Bool]? {
        try options.maskPath.map { try LabelImage.readMask($0, onto: header, name: "mask", gridName: "DWI") }
    }

    /// The diffusion signal of the mask's voxels, and the mask.
    struct MaskedSeries {
        var mask: [Bool]
        var source: String
        var voxels: [Int32]
        var signal: MaskedSignal
    }

    /// Streams the series once and keeps the mask's voxels of the kept volumes, voxel-compact
    /// (as DIPY fits only masked voxels) and as stored when they are small integers, so
    /// peak memory is the masked voxels, not the whole 4D series.
    ///
    /// Without a given mask, the automatic one (median filter + Otsu on the mean b=0 image)
    /// is made in the same pass: volumes are kept whole only until the last b=0 volume has
    /// been read, then gathered, and the rest are gathered as they come.
    static func readMaskedSeries(_ options: DiffusionOptions, inputs: Inputs) throws -> MaskedSeries {
        let reader = try NIfTIFile.volumes(options.dwiPath)
        reader.threads = options.threads
        // The next volume inflates on a second thread while this one is gathered.
        reader.readsAhead = reader.header.voxelsPerVolume >= minimumParallelVolume
        let voxelCount = inputs.header.voxelsPerVolume
        let b0Volumes = Set(inputs.table.b0Indices.map { inputs.volumeIndices[$0] })
        if inputs.givenMask == nil && b0Volumes.isEmpty {
            throw PipelineError(options.dwiPath, "no b=0 volume (b <= \(formatJSONNumber(options.parameters.b0Threshold))) to make an automatic brain mask from; give --mask")
        }
        var position = [Int: Int]()
        for (k, v) in inputs.volumeIndices.enumerated() { position[v] = k }
        var mask = inputs.givenMask
        var gatherer = try mask.map { try SignalGatherer(mask: $0, volumes: inputs.volumeIndices.count, integers: reader.storesSmallIntegers, source: options) }
        var pending: [(k: Int, volume: StoredVolume)] = []
        var meanB0 = [Float](repeating: 0, count: mask == nil ? voxelCount : 0)
        let lastB0 = b0Volumes.max() ?? -1
        var volume = StoredVolume.empty(integers: reader.storesSmallIntegers)
        for v in 0...(inputs.volumeIndices.last ?? 0) {
            if let gatherer, volume.isInteger {
                // The mask is known: the kept voxels are gathered straight from the reader.
                let gathered: Void? = try reader.next(integers: &volume.integers) { (stored: UnsafeBufferPointer<Int16>) in
                    if let k = position[v] { gatherer.gather(stored, at: k) }
                }
                guard gathered != nil else { break }
                continue
            }
            guard try volume.read(from: reader) else { break }
            if mask == nil, b0Volumes.contains(v) { volume.add(to: &meanB0) }
            if let k = position[v] {
                if let gatherer { gatherer.gather(volume, at: k) } else { pending.append((k, volume)) }
            }
            if mask == nil, v == lastB0 {
                let scale = 1 / Float(b0Volumes.count)
                for i in 0..<voxelCount { meanB0[i] *= scale }
                let automatic = try wrap(options.dwiPath) { try brainMask(meanB0: meanB0, shape: inputs.header.spatialShape, threads: options.threads) }
                mask = automatic
                let made = try SignalGatherer(mask: automatic, volumes: inputs.volumeIndices.count, integers: reader.storesSmallIntegers, source: options)
                for (k, kept) in pending { made.gather(kept, at: k) }
                gatherer = made
                pending = []
            }
        }
        guard let mask, let gatherer, gatherer.signal.isComplete else {
            throw PipelineError(options.dwiPath, "the series ended before its last fitted volume")
        }
        let source = options.maskPath ?? "automatic (median filter + Otsu on the mean b=0)"
        return MaskedSeries(mask: mask, source: source, voxels: gatherer.voxels, signal: gatherer.signal)
    }

    /// One atlas's regions on the DWI grid.
    struct AtlasRegions {
        /// The `seg-` name; nil for the empty atlas used when none is given.
        var name: String?
        var atlas: Atlas
        /// The warning of a resampled atlas; nil when it was on the grid.
        var resampled: String?
    }

    /// The regions summarised: each atlas (labels on the DWI grid, resampled when asked), or
    /// an empty one when there is none, and the lesion and normal-appearing-tissue masks when
    /// a lesion mask is given.
    static func readRegions(_ options: DiffusionOptions, header: NIfTIHeader) throws
        -> (regions: [AtlasRegions], extraMasks: [(name: String, mask: [Bool])]) {
        let voxelCount = header.voxelsPerVolume
        var regions: [AtlasRegions] = []
        for (atlasFile, name) in zip(options.atlases, try OutputNaming.atlasNames(options.atlases.map(\.path))) {
            let atlasPath = atlasFile.path
            let read = try LabelImage.readLabels(atlasPath, onto: header, resample: options.parameters.resampleAtlas, gridName: "DWI")
            let entries = try LabelImage.entries(labels: read.labels, atlasPath: atlasPath, tablePath: atlasFile.tablePath)
            let atlas = try wrap(atlasPath) { try Atlas(labels: read.labels, entries: entries, source: atlasPath) }
            regions.append(AtlasRegions(name: name, atlas: atlas, resampled: read.resampled))
        }
        if regions.isEmpty {
            let empty = try wrap(options.dwiPath) { try Atlas(labels: [Int32](repeating: 0, count: voxelCount), entries: []) }
            regions = [AtlasRegions(name: nil, atlas: empty, resampled: nil)]
        }
        var extraMasks: [(name: String, mask: [Bool])] = []
        if let lesionPath = options.lesionMaskPath {
            let lesion = try LabelImage.readMask(lesionPath, onto: header, name: "lesion mask", gridName: "DWI")
            extraMasks = [("lesion", lesion), ("normal_appearing_tissue", lesion.map { !$0 })]
        }
        return (regions, extraMasks)
    }

    /// Coherence margin (on a 0-1 scale) by which a flipped table must beat the table as given
    /// before a warning is raised. Straight, uniform bundles score the same under every flip
    /// (measured on the demo phantom: all four within 0.005), so smaller differences are noise.
    static let orientationMargin = 0.02

    /// Fewest neighbour pairs the check must have scored before its verdict is trusted (a
    /// two-slice test image gave a false warning).
    static let orientationMinimumPairs = 500

    static func orientationFlipIsClear(_ report: GradientOrientationReport) -> Bool {
        guard !report.asGivenIsBest,
              report.scores.allSatisfy({ $0.pairs >= orientationMinimumPairs }),
              let given = report.scores.first(where: { $0.flip == .none })?.coherence,
              let best = report.scores.first(where: { $0.flip == report.best })?.coherence else { return false }
        return best > given + orientationMargin
    }

    /// Reads the gradient table and returns it in both frames (FSL and world).
    static func readGradients(_ options: DiffusionOptions, header: NIfTIHeader) throws -> (fsl: GradientTable, world: GradientTable) {
        let linear = header.affine.linear
        // Gradient-table errors already name the file they concern; they pass through as they are.
        if let path = options.gradientTablePath {
            let text = try readText(path)
            let world = try GradientTable.mrtrix(text, source: path, b0Threshold: options.parameters.b0Threshold)
            try world.validate(volumeCount: header.volumeCount)
            return (try world.worldToFSL(linear: linear), world)
        }
        guard let bvalPath = options.bvalPath, let bvecPath = options.bvecPath else {
            throw PipelineError(options.dwiPath, "no gradient table: give --bval and --bvec, or --grad")
        }
        let fsl = try GradientTable.fsl(bval: try readText(bvalPath), bvec: try readText(bvecPath), source: bvecPath,
                                        bvalSource: bvalPath, b0Threshold: options.parameters.b0Threshold)
        try fsl.validate(volumeCount: header.volumeCount)
        return (fsl, try fsl.fslToWorld(linear: linear))
    }

    static func readText(_ path: String) throws -> String {
        try readInputText(path)
    }
}

/// Writes a fit's maps as NIfTI, with the DWI's spatial geometry, in BIDS order and names:
/// tensor, V1, FA, MD, AD, RD, S0, mask.
struct MapWriter: Sendable {
    let base: String
    let geometry: NIfTIHeader
    let shape: [Int]
    let level: Int
    let threads: Int
    let description = "nimetrics \(NimetricsVersion.string)"

    /// The multi-volume maps, made chunk by chunk from the fit as they are written.
    static let volumeMaps: [(map: MaskedTensorFit.VolumeMap, volumes: Int, suffix: String)] = [
        (.tensor, 6, "_model-tensor_param-tensor_dwimap.nii.gz"),
        (.principalEigenvector, 3, "_model-tensor_param-v1_dwimap.nii.gz"),
    ]

    init(_ options: DiffusionOptions, header: NIfTIHeader) {
        base = options.outputFolder + "/" + options.prefix
        var geometry = header
        geometry.pixdim = Array(header.pixdim.prefix(3)) + [1]
        geometry.timeUnits = 0
        self.geometry = geometry
        let spatial = header.spatialShape
        shape = [spatial.x, spatial.y, spatial.z]
        level = options.parameters.compressionLevel
        threads = options.threads
    }

    var volumeMapPaths: [String] { Self.volumeMaps.map { base + $0.suffix } }

    func scalarMapPaths(_ maps: [(name: String, values: [Float])]) -> [String] {
        maps.map { base + "_model-tensor_param-\($0.name)_dwimap.nii.gz" } + [base + "_desc-brain_mask.nii.gz"]
    }

    func writeVolumeMaps(_ fit: MaskedTensorFit) throws {
        for output in Self.volumeMaps {
            try NIfTIFile.write(shape: shape + [output.volumes], geometry: geometry, to: base + output.suffix,
                                description: description, compressionLevel: level) { range in
                fit.chunk(of: output.map, range)
            }
        }
    }

    /// The scalar maps and the mask; each map's chunks are compressed on all threads (its
    /// bytes do not depend on it).
    func writeScalarMaps(_ maps: [(name: String, values: [Float])], mask: [Bool]) throws {
        let paths = scalarMapPaths(maps)
        for (map, path) in zip(maps, paths) {
            try NIfTIFile.write(map.values, shape: shape, datatype: .float32, geometry: geometry, to: path,
                                description: description, compressionLevel: level, threads: threads)
        }
        try NIfTIFile.write(mask.map { $0 ? Float(1) : 0 }, shape: shape, datatype: .uint8, geometry: geometry, to: paths[maps.count],
                            description: description, compressionLevel: level, threads: threads)
    }
}

/// One volume as the reader gives it: stored small integers, or floats. The two buffers
/// are plain stored arrays so that reading into them happens in place (an enum payload
/// would be copied on every read).
struct StoredVolume {
    let isInteger: Bool
    var floats: [Float] = []
    var integers: [Int16] = []

    static func empty(integers: Bool) -> StoredVolume { StoredVolume(isInteger: integers) }

    /// Reads the next volume into this one's storage; false after the last.
    mutating func read(from reader: NIfTIVolumeReader) throws -> Bool {
        isInteger ? try reader.next(integersInto: &integers) : try reader.next(into: &floats)
    }

    /// Adds the volume's values to `sum`, voxel by voxel.
    func add(to sum: inout [Float]) {
        if isInteger { for i in sum.indices { sum[i] += Float(integers[i]) } } else { for i in sum.indices { sum[i] += floats[i] } }
    }
}

/// Keeps the mask's voxels of each listed volume in a ``MaskedSignal``.
struct SignalGatherer {
    let voxels: [Int32]
    let signal: MaskedSignal

    init(mask: [Bool], volumes: Int, integers: Bool, source options: DiffusionOptions) throws {
        voxels = mask.indices.filter { mask[$0] }.map { Int32($0) }
        guard !voxels.isEmpty else { throw PipelineError(options.maskPath ?? options.dwiPath, "the brain mask is empty") }
        signal = MaskedSignal(voxelCount: voxels.count, volumeCount: volumes, storage: integers ? .int16 : .float)
    }

    /// Stores a volume of stored integers as the k-th listed volume.
    func gather(_ stored: UnsafeBufferPointer<Int16>, at k: Int) {
        voxels.withUnsafeBufferPointer { signal.store(volume: k, gathering: $0, from: stored) }
    }

    /// Stores `volume` as the k-th listed volume.
    func gather(_ volume: StoredVolume, at k: Int) {
        voxels.withUnsafeBufferPointer { list in
            if volume.isInteger {
                volume.integers.withUnsafeBufferPointer { signal.store(volume: k, gathering: list, from: $0) }
            } else {
                volume.floats.withUnsafeBufferPointer { signal.store(volume: k, gathering: list, from: $0) }
            }
        }
    }
}
