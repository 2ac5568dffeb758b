import AtomicFiles
import FileSystem
import Foundation
import Geometry
import NIfTI
import Tabular
import TransformFiles

/// A transform file as antsApplyTransforms takes it: `-t FILE` or `-t [FILE,1]` (inverted).
public struct TransformReference: Sendable, Equatable {
    public var path: String
    public var invert: Bool

    public init(path: String, invert: Bool = false) {
        self.path = path
        self.invert = invert
    }
}

/// Warping a label atlas onto a reference grid through ITK/ANTs transforms (`nimetrics warp`,
/// and atlases in a template space during `run`).
public enum AtlasWarp {
    /// What a warp wrote.
    public struct Result: Sendable {
        /// The warped label image (on the reference grid).
        public var imagePath: String
        /// The label table copied beside it, when the atlas had one.
        public var tablePath: String?
        /// Reference voxels given a label (non-zero).
        public var labelledVoxels: Int
    }

    /// Reads the atlas, the reference grid and the transforms, resamples the labels by nearest
    /// neighbour through the transforms (``warpNearest(_:sourceShape:sourceAffine:targetShape:targetAffine:through:threads:)``),
    /// and writes the labels on the reference grid to `outPath` and the atlas's label table
    /// (the `.tsv` beside it, or `tablePath`) beside the output, both atomically.
    /// - Parameters:
    ///   - transforms: in antsApplyTransforms' `-t` order: the last is applied first to the
    ///     reference's points.
    /// - Throws: ``PipelineError``, ``TransformFileError`` or ``NIfTIError`` naming the file at fault.
    public static func warp(atlas atlasPath: String, tablePath: String? = nil, reference referencePath: String,
                            transforms: [TransformReference], to outPath: String, threads: Int) throws -> Result {
        var timer = PhaseTimer("warp")
        let (atlasHeader, labels) = try LabelImage.readLabelValues(atlasPath)
        let reference = try NIfTIFile.readHeader(referencePath)
        timer.lap("read atlas")
        let chain = TransformChain(try transforms.flatMap { try TransformFile.read($0.path, invert: $0.invert) })
        timer.lap("read transforms")
        guard let warped = warpNearest(labels, sourceShape: atlasHeader.spatialShape, sourceAffine: atlasHeader.affine,
                                       targetShape: reference.spatialShape, targetAffine: reference.affine,
                                       through: chain, threads: threads) else {
            throw PipelineError(atlasPath, "the atlas or reference affine is singular (determinant 0), so it cannot be resampled")
        }
        timer.lap("resample")
        let labelled = warped.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
        guard labelled > 0 else {
            throw PipelineError(atlasPath, "warped onto \(referencePath), no labelled voxel falls on the reference grid (wrong transform or transform order?)")
        }
        try writeLabels(warped, onto: reference, to: outPath, threads: threads)
        timer.lap("write")
        var copiedTable: String?
        if let table = LabelImage.tablePath(for: atlasPath, explicit: tablePath) {
            let destination = LabelImage.defaultTablePath(for: outPath)
            try AtomicFile.write(Data(try FileSystem.readFile(table)), to: destination)
            copiedTable = destination
        }
        return Result(imagePath: outPath, tablePath: copiedTable, labelledVoxels: labelled)
    }

    /// ``warp(atlas:tablePath:reference:transforms:to:threads:)`` unless `outPath` already holds
    /// this warp: its sidecar (`.json` beside it) records the same `checksums` (the atlas's and
    /// the transform's, by role) and the image is on the reference grid. The sidecar is written
    /// after the image and the table, so an interrupted warp is redone.
    /// - Returns: the warped image and its table (nil when the atlas has none).
    public static func cachedWarp(atlas: AtlasFile, reference referencePath: String, transform: TransformReference,
                                  checksums: [(role: String, sha256: String)], to outPath: String,
                                  threads: Int) throws -> AtlasFile {
        let sidecar = OutputNaming.sidecarPath(forImage: outPath)
        let record = JSONValue.object([
            ("Description", .string("atlas warped into the space of the reference by nimetrics (nearest neighbour)")),
            ("Atlas", .string(atlas.path)),
            ("Transform", .string(transform.path)),
            ("Reference", .string(referencePath)),
        ] + checksums.map { ($0.role + "_sha256", JSONValue.string($0.sha256)) })
        let table = LabelImage.tablePath(for: atlas.path, explicit: atlas.tablePath)
        let cachedTable = table.map { _ in LabelImage.defaultTablePath(for: outPath) }
        if let text = try? FileSystem.readText(sidecar), let previous = try? JSONValue.parse(text),
           checksums.allSatisfy({ previous[$0.role + "_sha256"] == .string($0.sha256) }),
           let cached = try? NIfTIFile.readHeader(outPath), let grid = try? NIfTIFile.readHeader(referencePath),
           cached.hasSameGrid(as: grid), cachedTable.map({ FileManager.default.fileExists(atPath: $0) }) ?? true {
            return AtlasFile(path: outPath, tablePath: cachedTable)
        }
        try FileSystem.createFolder(URL(fileURLWithPath: outPath).deletingLastPathComponent().path)
        let result = try warp(atlas: atlas.path, tablePath: atlas.tablePath, reference: referencePath,
                              transforms: [transform], to: outPath, threads: threads)
        try AtomicFile.write(record.rendered() + "\n", to: sidecar)
        return AtlasFile(path: outPath, tablePath: result.tablePath)
    }

    /// Writes labels on `grid` as a 3-D image in the smallest integer type that holds them
    /// (uint8, int16 or int32), atomically.
    static func writeLabels(_ labels: [Int32], onto grid: NIfTIHeader, to path: String, threads: Int) throws {
        let largest = labels.max() ?? 0
        let datatype: NIfTIDataType = largest <= 255 ? .uint8 : largest <= Int32(Int16.max) ? .int16 : .int32
        var header = NIfTIHeader.make(shape: [grid.spatialShape.x, grid.spatialShape.y, grid.spatialShape.z], affine: grid.affine, datatype: datatype)
        header.intentCode = 1002 // NIFTI_INTENT_LABEL
        let s = grid.spatialShape
        try NIfTIFile.write(labels.map(Double.init), shape: [s.x, s.y, s.z], datatype: datatype, geometry: header,
                            to: path, description: "nimetrics warp", threads: threads)
    }
}
