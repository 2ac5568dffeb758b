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
    public var atlasPath: String?
    /// The atlas's label table; nil: the `.tsv` beside the atlas, if present.
    public var atlasTablePath: String?
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
    /// redoes the visit.
    public var inputFiles: [(role: String, path: String)] {
        let atlasTable = atlasPath.flatMap { LabelImage.tablePath(for: $0, explicit: atlasTablePath) }
        let all: [(String, String?)] = [
            ("dwi", dwiPath), ("bval", bvalPath), ("bvec", bvecPath), ("grad", gradientTablePath),
            ("dwi_mask", maskPath), ("dwi_atlas", atlasPath), ("dwi_atlas_table", atlasTable),
            ("lesion_mask", lesionMaskPath),
        ]
        return all.compactMap { role, path in path.map { (role, $0) } }
    }
}

/// What one DWI series gave.
public struct DiffusionResult: Sendable {
    public var summaries: [String: [RegionSummary]]
    public var metrics: [VisitMetric]
    public var files: [String]
    public var warnings: [String]
    public var quality: TensorFitQuality
    public var orientation: GradientOrientationReport?
    public var bValuesUsed: [Double]
}

/// DWI -> gradient table -> mask -> tensor fit -> maps and regional summaries, for one visit.
public enum DiffusionPipeline {
    /// Maps and their BIDS `param-` names, in output order.
    static let scalarMaps: [(metric: TensorMetric, name: String)] = [
        (.fractionalAnisotropy, "fa"), (.meanDiffusivity, "md"), (.axialDiffusivity, "ad"), (.radialDiffusivity, "rd"),
    ]

    public static func run(_ options: DiffusionOptions) throws -> DiffusionResult {
        var warnings: [String] = []
        var timer = PhaseTimer("dti")
        let header = try NIfTIFile.readHeader(options.dwiPath)
        guard header.volumeCount >= 7 else {
            throw PipelineError(options.dwiPath, "a DWI series needs at least 7 volumes (1 b=0 + 6 directions), this one has \(header.volumeCount)")
        }
        let (fslTable, worldTable) = try readGradients(options, header: header)
        let selection: (table: GradientTable, volumeIndices: [Int])
        selection = try (options.parameters.vectorFrame == .fsl ? fslTable : worldTable).selecting(maximumB: options.parameters.maximumB)
        if selection.volumeIndices.count < header.volumeCount {
            warnings.append("\(header.volumeCount - selection.volumeIndices.count) volume(s) with b > \(formatJSONNumber(options.parameters.maximumB)) left out of the tensor fit")
        }
        let table = selection.table
        let volumeIndices = selection.volumeIndices

        // The series is streamed volume by volume; only the mask's voxels of the kept volumes
        // are kept, voxel-compact (DIPY fits only masked voxels too) and as stored when they
        // are small integers, so peak memory is the masked voxels, not the whole 4D series.
        // Opening the reader checks that the file can hold the voxels its header declares,
        // before anything the size of a volume is allocated; it streams the series later.
        let series = try NIfTIFile.volumes(options.dwiPath)
        let voxelCount = header.voxelsPerVolume
        let spatial = header.spatialShape

        let (mask, maskSource) = try readMask(options, header: header, table: table, volumeIndices: volumeIndices)
        let maskIndexes = (0..<voxelCount).filter { mask[$0] }.map { Int32($0) }
        guard !maskIndexes.isEmpty else { throw PipelineError(options.maskPath ?? options.dwiPath, "the brain mask is empty") }
        timer.lap("mask")

        // The atlas and lesion mask, read (and checked) before the fit, so a bad one fails fast.
        let (atlas, atlasResampled, extraMasks) = try readRegions(options, header: header)
        let model = try wrap(options.dwiPath) { try TensorModel(table: table, method: options.parameters.method, iterations: options.parameters.iterations) }
        // Gather and fit in one scope, so the masked series is freed as soon as it is fitted.
        // An integer series without scaling is kept as stored (half the memory of floats).
        let keepIntegers = series.storesSmallIntegers
        let compactFit = try { () throws -> TensorFit in
            let gathered = try gatherVolumes(series, volumes: volumeIndices, maskVoxels: maskIndexes,
                                             integers: keepIntegers, threads: options.threads)
            timer.lap("read + gather")
            return try wrap(options.dwiPath) {
                switch gathered {
                case .float(let values):
                    try model.fit(data: values, volumeCount: table.count, voxelCount: maskIndexes.count, threads: options.threads)
                case .int16(let values):
                    try model.fit(data: values, volumeCount: table.count, voxelCount: maskIndexes.count, threads: options.threads)
                }
            }
        }()
        timer.lap("fit")
        let quality = compactFit.quality
        let fit = ScatteredFit(compactFit, voxels: maskIndexes, voxelCount: voxelCount, threads: options.threads)
        var maps: [(String, [Float])] = scalarMaps.map { ($0.name, fit.map($0.metric)) }
        maps.append(("s0", fit.s0))
        let fa = maps[0].1
        timer.lap("metric maps")

        // Outputs.
        try FileManager.default.createDirectory(atPath: options.outputFolder, withIntermediateDirectories: true)
        let base = options.outputFolder + "/" + options.prefix
        var files: [String] = []
        var geometry = header
        geometry.pixdim = Array(header.pixdim.prefix(3)) + [1]
        geometry.timeUnits = 0
        let shape3 = [spatial.x, spatial.y, spatial.z]
        let description = "nimetrics \(NimetricsVersion.string)"
        let level = options.parameters.compressionLevel
        let mapGeometry = geometry
        // In BIDS order: tensor, V1, FA, MD, AD, RD, S0, mask.
        let volumeMaps: [(map: ScatteredFit.VolumeMap, volumes: Int, suffix: String)] = [
            (.tensor, 6, "_model-tensor_param-tensor_dwimap.nii.gz"),
            (.principalEigenvector, 3, "_model-tensor_param-v1_dwimap.nii.gz"),
        ]
        var gridMaps: [(values: [Float], suffix: String, datatype: NIfTIDataType)] =
            maps.map { name, values in (values, "_model-tensor_param-\(name)_dwimap.nii.gz", .float32) }
        gridMaps.append((mask.map { $0 ? 1 : 0 }, "_desc-brain_mask.nii.gz", .uint8))
        files += volumeMaps.map { base + $0.suffix } + gridMaps.map { base + $0.suffix }
        // The tensor and V1 maps (two thirds of the bytes written) depend on the fit alone:
        // with two threads or more they are made and written on a second thread while this one
        // runs the orientation check, the summaries and the smaller maps (measured on the
        // standard visit: 0.03 s off the run).
        let largeMaps = BackgroundWork(inBackground: options.threads > 1) {
            for output in volumeMaps {
                try NIfTIFile.write(shape: shape3 + [output.volumes], geometry: mapGeometry, to: base + output.suffix,
                                    description: description, compressionLevel: level) { range in
                    fit.chunk(of: output.map, range)
                }
            }
        }
        defer { largeMaps.waitIgnoringErrors() }

        // Gradient orientation check, over every fitted voxel, from this fit: a flipped table
        // would give D' = F D F and V1' = F V1, so the flips need no fits of their own. The
        // check steps along V1 in voxel indices, so V1 goes from the table's frame to voxel axes.
        var orientation: GradientOrientationReport?
        if options.parameters.orientationCheck {
            let toVoxel = try wrap(options.dwiPath) {
                try DirectionTransform(from: options.parameters.vectorFrame.directionFrame, to: .voxel, linear: header.affine.linear,
                                       source: options.dwiPath)
            }
            let report = try wrap(options.dwiPath) {
                try gradientOrientationCheck(principalEigenvectors: fit.principalEigenvectorField(toVoxel),
                                             fractionalAnisotropy: fa, fitted: fit.fitted, shape: spatial,
                                             threads: options.threads)
            }
            if orientationFlipIsClear(report) {
                warnings.append("gradient orientation check: flipping voxel axis \(report.best) gives more coherent fibres than the table as given; check the b-vectors")
            }
            orientation = report
        }
        timer.lap("orientation check")

        // Regional summaries.
        let fitted = fit.fitted
        let summarised = maps.filter { $0.0 != "s0" }
        let perMap = try wrap(options.dwiPath) {
            try regionalStatistics(maps: summarised.map(\.1), mask: fitted, atlas: atlas, extraMasks: extraMasks, threads: options.threads)
        }
        let summaries = Dictionary(uniqueKeysWithValues: zip(summarised.map(\.0), perMap))

        timer.lap("regional summaries")

        // The scalar maps and the mask, then the wait for the tensor and V1 maps.
        for output in gridMaps {
            // A map's chunks are compressed on all threads; its bytes do not depend on it.
            try NIfTIFile.write(output.values, shape: shape3, datatype: output.datatype, geometry: mapGeometry,
                                to: base + output.suffix, description: description, compressionLevel: level,
                                threads: options.threads)
        }
        try largeMaps.wait()
        timer.lap("write maps")
        let summary = summaryRows(summaries)
        var metrics = summary.metrics
        let summaryPath = base + "_model-tensor_summary.tsv"
        try summary.table.write(to: summaryPath)
        files.append(summaryPath)

        let bUsed = table.bValues
        let sidecar = JSONValue.object([
            ("Description", .string("Diffusion tensor maps (Basser et al. 1994) and regional summaries")),
            ("GeneratedBy", .array([.object([("Name", .string("nimetrics")), ("Version", .string(NimetricsVersion.string))])])),
            ("Source", .string(options.dwiPath)),
            ("Gradients", .string(options.gradientTablePath ?? "\(options.bvalPath ?? "") \(options.bvecPath ?? "")")),
            ("FitMethod", .string(options.parameters.method.rawValue.uppercased())),
            ("Iterations", .int(options.parameters.iterations)),
            ("MaximumBValue", .number(options.parameters.maximumB)),
            ("B0Threshold", .number(options.parameters.b0Threshold)),
            ("BValuesUsed", .array(bUsed.map { .number($0) })),
            ("Shells", .array(table.shells.map { .number($0) })),
            ("VolumesUsed", .int(table.count)),
            ("DirectionsUsed", .int(table.diffusionIndices.count)),
            ("VectorFrame", .string(options.parameters.vectorFrame.rawValue)),
            ("TensorOrder", .string("D11 D12 D13 D22 D23 D33")),
            ("DiffusivityUnits", .string("mm^2/s")),
            ("Mask", .string(maskSource)),
            ("Atlas", options.atlasPath.map { .string($0) } ?? .null),
            ("AtlasResampled", .bool(atlasResampled)),
            ("LesionMask", options.lesionMaskPath.map { .string($0) } ?? .null),
            ("QC", .object([
                ("VoxelsInMask", .int(maskIndexes.count)),
                ("VoxelsFitted", .int(quality.voxelsFitted)),
                ("NegativeEigenvalueVoxels", .int(quality.negativeEigenvalueVoxels)),
                ("NegativeEigenvalueFraction", .finite(quality.voxelsFitted > 0 ? Double(quality.negativeEigenvalueVoxels) / Double(quality.voxelsFitted) : nil)),
                ("MeanResidual", .finite(quality.meanResidual)),
                ("GradientOrientationCheck", orientation.map { report in
                    .object([
                        ("Best", .string(report.best.rawValue)),
                        ("AsGivenIsBest", .bool(report.asGivenIsBest)),
                        ("FlipRecommended", .bool(orientationFlipIsClear(report))),
                        ("Margin", .number(orientationMargin)),
                        ("Coherence", .object(report.scores.map { ($0.flip.rawValue, .finite($0.coherence)) })),
                    ])
                } ?? .null),
            ])),
            ("Warnings", .array(warnings.map { .string($0) })),
        ])
        let sidecarPath = base + "_model-tensor_dwimap.json"
        try AtomicFile.write(sidecar.rendered() + "\n", to: sidecarPath)
        files.append(sidecarPath)
        metrics.append(VisitMetric(modality: "dwi", region: wholeBrainRegion, metric: "negative_eigenvalue_fraction",
                                   value: quality.voxelsFitted > 0 ? Double(quality.negativeEigenvalueVoxels) / Double(quality.voxelsFitted) : .nan))
        timer.lap("tables + sidecar")
        return DiffusionResult(summaries: summaries, metrics: metrics, files: files, warnings: warnings,
                               quality: quality, orientation: orientation, bValuesUsed: bUsed)
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

    /// The brain mask: `--mask`, or an automatic one from the mean b=0 image (a first pass
    /// over the b=0 volumes), and how it was made, for the sidecar.
    static func readMask(_ options: DiffusionOptions, header: NIfTIHeader, table: GradientTable,
                         volumeIndices: [Int]) throws -> (mask: [Bool], source: String) {
        let voxelCount = header.voxelsPerVolume
        if let maskPath = options.maskPath {
            let maskImage = try NIfTIFile.read(maskPath)
            guard maskImage.header.hasSameGrid(as: header) else {
                throw PipelineError(maskPath, "the mask's grid differs from the DWI grid")
            }
            return (maskImage.voxels.prefix(voxelCount).map { $0 > 0 }, maskPath)
        }
        let b0Volumes = Set(table.b0Indices.map { volumeIndices[$0] })
        var meanB0 = [Float](repeating: 0, count: voxelCount)
        let reader = try NIfTIFile.volumes(options.dwiPath)
        reader.threads = options.threads
        var volume: [Float] = []
        for v in 0...(b0Volumes.max() ?? 0) {
            guard try reader.next(into: &volume) else { break }
            if b0Volumes.contains(v) { for i in 0..<voxelCount { meanB0[i] += volume[i] } }
        }
        let scale = 1 / Float(b0Volumes.count)
        for i in 0..<voxelCount { meanB0[i] *= scale }
        let mask = try wrap(options.dwiPath) { try brainMask(meanB0: meanB0, shape: header.spatialShape, threads: options.threads) }
        return (mask, "automatic (median filter + Otsu on the mean b=0)")
    }

    /// The regions summarised: the atlas (labels on the DWI grid, resampled when asked) or
    /// none, and the lesion and normal-appearing-tissue masks when a lesion mask is given.
    static func readRegions(_ options: DiffusionOptions, header: NIfTIHeader) throws
        -> (atlas: Atlas, resampled: Bool, extraMasks: [(name: String, mask: [Bool])]) {
        let voxelCount = header.voxelsPerVolume
        var atlas: Atlas
        var resampled = false
        if let atlasPath = options.atlasPath {
            let read = try LabelImage.readLabels(atlasPath, onto: header, resample: options.parameters.resampleAtlas, gridName: "DWI")
            resampled = read.resampled
            let entries = try LabelImage.entries(labels: read.labels, atlasPath: atlasPath, tablePath: options.atlasTablePath)
            atlas = try wrap(atlasPath) { try Atlas(labels: read.labels, entries: entries, source: atlasPath) }
        } else {
            atlas = try wrap(options.dwiPath) { try Atlas(labels: [Int32](repeating: 0, count: voxelCount), entries: []) }
        }
        var extraMasks: [(name: String, mask: [Bool])] = []
        if let lesionPath = options.lesionMaskPath {
            let lesionImage = try NIfTIFile.read(lesionPath)
            guard lesionImage.header.hasSameGrid(as: header) else {
                throw PipelineError(lesionPath, "the lesion mask's grid differs from the DWI grid")
            }
            let lesion = lesionImage.voxels.prefix(voxelCount).map { $0 > 0 }
            extraMasks = [("lesion", lesion), ("normal_appearing_tissue", lesion.map { !$0 })]
        }
        return (atlas, resampled, extraMasks)
    }

    /// A gathered signal, as floats or as stored integers.
    enum GatheredSignal {
        case float([Float])
        case int16([Int16])
    }

    /// Streams the series from `reader` (at its first volume) and keeps the mask's voxels of the listed volumes (as Int16 when
    /// `integers`, which the caller sets only for integer data without scaling, so the values
    /// are exact), volume-major: element `k * n + j` is voxel j of the k-th listed volume.
    static func gatherVolumes(_ reader: NIfTIVolumeReader, volumes: [Int], maskVoxels: [Int32], integers: Bool,
                              threads: Int) throws -> GatheredSignal {
        var position = [Int: Int]()
        for (k, v) in volumes.enumerated() { position[v] = k }
        let n = maskVoxels.count
        var maskFloats = [Float](repeating: 0, count: integers ? 0 : volumes.count * n)
        var maskIntegers = [Int16](repeating: 0, count: integers ? volumes.count * n : 0)
        reader.threads = threads
        // The next volume inflates on a second thread while this one is gathered here: the
        // gather (a fraction of a millisecond a volume) hides behind the inflate, which is
        // most of the read (measured on the standard visit: read + gather 0.20-0.24 s before,
        // about the 0.15 s inflate alone after).
        reader.readsAhead = reader.header.voxelsPerVolume >= minimumParallelVolume
        var floats: [Float] = []
        var stored: [Int16] = []
        var v = 0
        while let last = volumes.last, v <= last {
            guard try integers ? reader.next(integersInto: &stored) : reader.next(into: &floats) else { break }
            defer { v += 1 }
            guard let k = position[v] else { continue }
            maskVoxels.withUnsafeBufferPointer { list in
                if integers {
                    stored.withUnsafeBufferPointer { from in
                        maskIntegers.withUnsafeMutableBufferPointer { to in
                            let target = to.baseAddress! + k * n
                            for j in 0..<n { target[j] = from[Int(list[j])] }
                        }
                    }
                } else {
                    floats.withUnsafeBufferPointer { from in
                        maskFloats.withUnsafeMutableBufferPointer { to in
                            let target = to.baseAddress! + k * n
                            for j in 0..<n { target[j] = from[Int(list[j])] }
                        }
                    }
                }
            }
        }
        return integers ? .int16(maskIntegers) : .float(maskFloats)
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
        guard FileManager.default.fileExists(atPath: path) else { throw PipelineError(path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw PipelineError(path, "cannot read the file as text")
        }
        return text
    }
}

/// A fit of the mask's voxels, scattered back onto the whole grid (0 and not fitted
/// elsewhere), as the maps and regional summaries need it. The multi-volume maps (tensor,
/// V1) are not kept on the grid: ``chunk(of:_:)`` makes any part of them on demand, for the
/// writer (20 MB less for the standard visit, and no pass over them).
struct ScatteredFit: Sendable {
    let fitted: [Bool]
    let s0: [Float]
    /// The compact index of each grid voxel's fit, -1 where none.
    private let compactIndex: [Int32]
    private let compact: TensorFit
    private let voxels: [Int32]
    private let threads: Int

    /// FA, MD, AD and RD on the whole grid.
    private let metricMaps: [[Float]]

    /// Scatters the fit and computes the scalar maps in one pass over the fitted voxels,
    /// split into slabs (each grid voxel is written once, by the slab holding it, so the maps
    /// do not depend on `threads`).
    init(_ fit: TensorFit, voxels: [Int32], voxelCount n: Int, threads: Int) {
        compact = fit
        self.voxels = voxels
        self.threads = threads
        var fitted = [Bool](repeating: false, count: n)
        var s0 = [Float](repeating: 0, count: n)
        var compactIndex = [Int32](repeating: -1, count: n)
        var fa = [Float](repeating: 0, count: n), md = fa, ad = fa, rd = fa
        voxels.withUnsafeBufferPointer { list in
        fit.fitted.withUnsafeBufferPointer { ok in
        fit.s0.withUnsafeBufferPointer { compactS0 in
        fit.eigenvalues.withUnsafeBufferPointer { compactEigenvalues in
        fitted.withUnsafeMutableBufferPointer { fittedOut in
        s0.withUnsafeMutableBufferPointer { s0Out in
        compactIndex.withUnsafeMutableBufferPointer { indexOut in
        fa.withUnsafeMutableBufferPointer { faOut in
        md.withUnsafeMutableBufferPointer { mdOut in
        ad.withUnsafeMutableBufferPointer { adOut in
        rd.withUnsafeMutableBufferPointer { rdOut in
            let list = SharedReadBuffer(list), ok = SharedReadBuffer(ok), cs0 = SharedReadBuffer(compactS0)
            let ce = SharedReadBuffer(compactEigenvalues)
            let fittedOut = SharedBuffer(fittedOut), s0Out = SharedBuffer(s0Out), indexOut = SharedBuffer(indexOut)
            let faOut = SharedBuffer(faOut), mdOut = SharedBuffer(mdOut), adOut = SharedBuffer(adOut), rdOut = SharedBuffer(rdOut)
            forEachSlab(count: list.count, threads: threads) { range in
                for k in range where ok[k] {
                    let i = Int(list[k])
                    fittedOut[i] = true
                    s0Out[i] = cs0[k]
                    indexOut[i] = Int32(k)
                    let l = SIMD3(Double(ce[3 * k]), Double(ce[3 * k + 1]), Double(ce[3 * k + 2]))
                    faOut[i] = Float(fractionalAnisotropy(eigenvalues: l))
                    mdOut[i] = Float(meanDiffusivity(eigenvalues: l))
                    adOut[i] = Float(axialDiffusivity(eigenvalues: l))
                    rdOut[i] = Float(radialDiffusivity(eigenvalues: l))
                }
            }
        }}}}}}}}}}}
        self.fitted = fitted
        self.s0 = s0
        self.compactIndex = compactIndex
        metricMaps = [fa, md, ad, rd]
    }

    /// A multi-volume map made from the compact fit.
    enum VolumeMap: Sendable {
        /// Six volumes, D11 D12 D13 D22 D23 D33.
        case tensor
        /// Three volumes, the x, y, z components of V1.
        case principalEigenvector
    }

    /// The voxels `range` (file order: volume after volume) of `map`, 0 where not fitted.
    func chunk(of map: VolumeMap, _ range: Range<Int>) -> [Float] {
        let (values, components) = switch map {
        case .tensor: (compact.tensors, 6)
        case .principalEigenvector: (compact.principalEigenvectors, 3)
        }
        let n = compactIndex.count
        var out = [Float](repeating: 0, count: range.count)
        var i = range.lowerBound
        while i < range.upperBound {
            // The part of the range in volume c.
            let c = i / n
            let end = min(range.upperBound, (c + 1) * n)
            for g in (i - c * n)..<(end - c * n) {
                let k = Int(compactIndex[g])
                if k >= 0 { out[c * n + g - range.lowerBound] = values[components * k + c] }
            }
            i = end
        }
        return out
    }

    /// V1 on the whole grid, 3 per voxel (x, y, z), taken through `transform` (zero where
    /// not fitted), as ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``
    /// takes it.
    func principalEigenvectorField(_ transform: DirectionTransform) -> [Float] {
        var field = [Float](repeating: 0, count: 3 * fitted.count)
        compact.principalEigenvectors.withUnsafeBufferPointer { source in
        compact.fitted.withUnsafeBufferPointer { ok in
        voxels.withUnsafeBufferPointer { list in
        field.withUnsafeMutableBufferPointer { target in
            let v1 = SharedReadBuffer(source), fitted = SharedReadBuffer(ok), voxels = SharedReadBuffer(list)
            let out = SharedBuffer(target)
            // Each voxel is written once, by the slab that holds it.
            forEachSlab(count: voxels.count, threads: threads) { range in
                for k in range where fitted[k] {
                    let v = transform.apply(SIMD3(Double(v1[3 * k]), Double(v1[3 * k + 1]), Double(v1[3 * k + 2])))
                    let i = 3 * Int(voxels[k])
                    out[i] = Float(v.x); out[i + 1] = Float(v.y); out[i + 2] = Float(v.z)
                }
            }
        }}}}
        return field
    }

    /// A scalar map on the whole grid.
    func map(_ metric: TensorMetric) -> [Float] {
        switch metric {
        case .fractionalAnisotropy: metricMaps[0]
        case .meanDiffusivity: metricMaps[1]
        case .axialDiffusivity: metricMaps[2]
        case .radialDiffusivity: metricMaps[3]
        }
    }
}
