import Foundation
import Geometry
import NIfTI
import Parcellation
import Tabular

/// Reading a label atlas (a NIfTI label image plus its BIDS-style TSV) onto a data grid.
public enum LabelImage {
    /// The TSV conventionally beside a label image: `atlas.nii.gz` -> `atlas.tsv`.
    public static func defaultTablePath(for imagePath: String) -> String {
        for suffix in [".nii.gz", ".nii", ".hdr", ".hdr.gz"] where imagePath.hasSuffix(suffix) {
            return String(imagePath.dropLast(suffix.count)) + ".tsv"
        }
        return imagePath + ".tsv"
    }

    /// The label table read for an atlas: `explicit` when given, else the `.tsv` beside the
    /// atlas when that file exists, else nil (the labels are then named by their index).
    public static func tablePath(for atlasPath: String, explicit: String?) -> String? {
        if let explicit { return explicit }
        let beside = defaultTablePath(for: atlasPath)
        return FileManager.default.fileExists(atPath: beside) ? beside : nil
    }

    /// Reads a label table: a TSV with columns `index` and `name` and optionally `network`
    /// (BIDS `dseg.tsv` style; other columns are ignored).
    /// - Throws: ``PipelineError`` for missing columns, non-integer or negative indexes,
    ///   duplicate indexes.
    public static func readTable(_ path: String) throws -> [LabelEntry] {
        let table = try TSVTable.read(path)
        guard let indexColumn = table.index(of: "index") else {
            throw PipelineError(path, "atlas table has no 'index' column (columns: \(table.columns.joined(separator: ", ")))")
        }
        let nameColumn = table.index(of: "name") ?? table.index(of: "label")
        let networkColumn = table.index(of: "network")
        var entries: [LabelEntry] = []
        var seen = Set<Int>()
        var lineOfName: [String: Int] = [:]
        for (line, row) in table.rows.enumerated() {
            guard let index = Int(row[indexColumn]), index > 0 else {
                throw PipelineError(path, "line \(line + 2): index '\(row[indexColumn])' is not a positive integer")
            }
            guard seen.insert(index).inserted else {
                throw PipelineError(path, "line \(line + 2): duplicate index \(index)")
            }
            let name = nameColumn.map { row[$0] }.flatMap { $0.isEmpty || $0 == "n/a" ? nil : $0 } ?? String(index)
            let network = networkColumn.map { row[$0] }.flatMap { $0.isEmpty || $0 == "n/a" ? nil : $0 }
            try checkName(name, network: network, line: line + 2, lineOfName: &lineOfName, path: path)
            entries.append(LabelEntry(index: index, name: name, network: network))
        }
        return entries.sorted { $0.index < $1.index }
    }

    /// Region names the outputs use for regions of their own: a label with one of these names
    /// would collide with that row of every table.
    public static let reservedRegionNames: Set<String> = [wholeBrainRegion, "lesion", "normal_appearing_tissue", "all"]

    /// Checks a label's name and network where it is read, so a collision fails before any
    /// processing and names the table's line: a name used twice, a reserved name
    /// (``reservedRegionNames``) or one starting with `network-` (the prefix of network
    /// summaries), and a network called `all` (the whole-brain summary's network).
    static func checkName(_ name: String, network: String?, line: Int, lineOfName: inout [String: Int], path: String) throws {
        if let first = lineOfName[name] {
            throw PipelineError(path, "lines \(first) and \(line): the region name '\(name)' is used twice; names must be unique")
        }
        lineOfName[name] = line
        if reservedRegionNames.contains(name) || name.hasPrefix("network-") {
            throw PipelineError(path, "line \(line): '\(name)' is reserved for a summary region of its own (\(reservedRegionNames.sorted().joined(separator: ", ")), network-*); rename the label")
        }
        if network == "all" {
            throw PipelineError(path, "line \(line): the network name 'all' is reserved for the whole-brain summary; rename the network")
        }
    }

    /// Region list: the table's entries (the table beside the atlas when `tablePath` is nil
    /// and that file exists), plus labels present in the image but absent from the table,
    /// named by their index; without a table, every label in the image.
    public static func entries(labels: [Int32], atlasPath: String, tablePath: String?) throws -> [LabelEntry] {
        var entries: [LabelEntry] = []
        if let path = Self.tablePath(for: atlasPath, explicit: tablePath) {
            entries = try readTable(path)
        }
        let listed = Set(entries.map(\.index))
        let names = Set(entries.map(\.name))
        for label in Set(labels).subtracting([0]).sorted() where !listed.contains(Int(label)) {
            // An unlisted label is named by its index, which must not be a listed name.
            guard !names.contains(String(label)) else {
                throw PipelineError(Self.tablePath(for: atlasPath, explicit: tablePath) ?? atlasPath,
                                    "label \(label) is in the image but not the table, and its default name '\(label)' is already another label's name")
            }
            entries.append(LabelEntry(index: Int(label), name: String(label)))
        }
        guard !entries.isEmpty else { throw PipelineError(atlasPath, "the atlas has no labels") }
        return entries.sorted { $0.index < $1.index }
    }

    /// Reads a mask on the data's grid: voxels whose value is above 0.
    /// - Parameters:
    ///   - name: what the mask is, for the error ("lesion mask").
    ///   - gridName: the data's grid, for the error ("DWI").
    /// - Throws: ``PipelineError`` when the grids differ, ``NIfTIError`` for unreadable files.
    public static func readMask(_ path: String, onto grid: NIfTIHeader, name: String, gridName: String) throws -> [Bool] {
        let image = try NIfTIFile.read(path)
        guard image.header.hasSameGrid(as: grid) else {
            throw PipelineError(path, "the \(name)'s grid differs from the \(gridName) grid")
        }
        return image.voxels.prefix(grid.voxelsPerVolume).map { $0 > 0 }
    }

    /// Reads label values onto `grid`.
    ///
    /// The label image must share the data's grid (shape and affine within 1e-3 mm), unless
    /// `resample` is set, in which case each data voxel takes the label of the atlas voxel
    /// nearest to its centre in world coordinates (0 outside the atlas; see `resampleNearest`).
    /// - Returns: one label per voxel of `grid`'s first volume, and, when it was resampled, a
    ///   warning saying so with the grids and their largest affine difference.
    /// - Throws: ``PipelineError`` for non-integer or negative labels, grid mismatches and a
    ///   singular atlas affine, ``NIfTIError`` for unreadable files.
    public static func readLabels(_ path: String, onto grid: NIfTIHeader, resample: Bool, gridName: String) throws -> (labels: [Int32], resampled: String?) {
        let image = try readLabelValues(path)
        let labels = image.labels
        if image.header.hasSameGrid(as: grid) { return (labels, nil) }
        let s = image.header.spatialShape, t = grid.spatialShape
        let grids = "atlas grid \(s.x)x\(s.y)x\(s.z) (max affine difference \(String(format: "%.3g", image.header.affine.maximumDifference(to: grid.affine))) mm) differs from the \(gridName) grid \(t.x)x\(t.y)x\(t.z)"
        guard resample else {
            throw PipelineError(path, grids + "; resample the atlas onto it, or give --resample-atlas to resample it by nearest neighbour")
        }
        guard let resampled = resampleNearest(labels, sourceShape: image.header.spatialShape, sourceAffine: image.header.affine,
                                              targetShape: grid.spatialShape, targetAffine: grid.affine) else {
            throw PipelineError(path, "the atlas affine is singular (its linear part has determinant 0), so it cannot be resampled")
        }
        guard resampled.contains(where: { $0 != 0 }) else {
            throw PipelineError(path, grids + ": resampled by nearest neighbour, no labelled voxel falls on the \(gridName) grid (do the two cover the same space?)")
        }
        return (resampled, "\(URL(fileURLWithPath: path).lastPathComponent): \(grids): resampled by nearest neighbour")
    }
}

extension LabelImage {
    /// Reads a 3-D label image whatever its grid: its header and its labels (x fastest).
    /// - Throws: ``PipelineError`` for several volumes, non-integer or negative labels, or no
    ///   labelled voxel; ``NIfTIError`` for unreadable files.
    public static func readLabelValues(_ path: String) throws -> (header: NIfTIHeader, labels: [Int32]) {
        let image = try NIfTIFile.read(path, as: Double.self)
        guard image.header.volumeCount == 1 else {
            throw PipelineError(path, "an atlas must be a 3D label image, this one has \(image.header.volumeCount) volumes")
        }
        var labels = [Int32](repeating: 0, count: image.voxels.count)
        for (i, value) in image.voxels.enumerated() {
            guard value.isFinite, value == value.rounded(), value >= 0, value <= Double(Int32.max) else {
                throw PipelineError(path, "label image holds \(value) at voxel \(i): labels must be non-negative integers")
            }
            labels[i] = Int32(value)
        }
        guard labels.contains(where: { $0 != 0 }) else { throw PipelineError(path, "the atlas has no labelled voxel (every value is 0)") }
        return (image.header, labels)
    }
}
