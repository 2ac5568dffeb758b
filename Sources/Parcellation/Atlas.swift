// Label atlases: a label per voxel and the table that names the labels.

/// One row of an atlas label table.
public struct LabelEntry: Sendable, Equatable, Hashable {
    /// The label value in the image (> 0; 0 is background).
    public var index: Int
    /// The region name, e.g. "Left-Thalamus".
    public var name: String
    /// The network or system the region belongs to (e.g. a Yeo network), when the atlas has one.
    public var network: String?

    public init(index: Int, name: String, network: String? = nil) {
        self.index = index
        self.name = name
        self.network = network
    }
}

/// A problem with an atlas.
public enum AtlasError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Two entries share a label index.
    case duplicateIndex(source: String, index: Int, names: [String])
    /// A label index that is not positive (0 is the background) or does not fit a 32-bit label.
    case invalidIndex(source: String, index: Int)
    /// A label value in the image that is negative.
    case negativeLabel(source: String, voxel: Int, label: Int32)

    public var description: String {
        switch self {
        case let .duplicateIndex(source, index, names):
            return "\(source): label \(index) is listed more than once (\(names.joined(separator: ", ")))"
        case let .invalidIndex(source, index):
            return "\(source): label index \(index) must be a positive integer (0 is background)"
        case let .negativeLabel(source, voxel, label):
            return "\(source): voxel \(voxel) has negative label \(label)"
        }
    }
}

/// A parcellation: one integer label per voxel (0 = background) and the named regions.
///
/// ``entries`` are sorted by index. They may list labels absent from the image (such regions
/// get n = 0 in statistics); labels present in the image but missing from the table are added
/// with `name = String(index)` and no network, so that no labelled voxel is silently dropped.
public struct Atlas: Sendable, Equatable {
    /// The label of each voxel, in the voxel order of the images it is used with.
    public let labels: [Int32]
    /// The regions, sorted by index.
    public let entries: [LabelEntry]
    /// The name used in error messages.
    public let source: String

    /// Creates an atlas, validating the label table.
    /// - Parameters:
    ///   - labels: the label of each voxel (0 = background).
    ///   - entries: the label table, in any order.
    ///   - source: a name for error messages (e.g. the atlas file name).
    /// - Throws: ``AtlasError`` for duplicate or non-positive indexes and negative labels.
    public init(labels: [Int32], entries: [LabelEntry], source: String = "atlas") throws {
        var byIndex = [Int: LabelEntry]()
        for entry in entries {
            guard entry.index > 0, entry.index <= Int(Int32.max) else {
                throw AtlasError.invalidIndex(source: source, index: entry.index)
            }
            if let previous = byIndex[entry.index] {
                throw AtlasError.duplicateIndex(source: source, index: entry.index, names: [previous.name, entry.name])
            }
            byIndex[entry.index] = entry
        }
        var present = Set<Int32>()
        for (voxel, label) in labels.enumerated() where label != 0 {
            guard label > 0 else { throw AtlasError.negativeLabel(source: source, voxel: voxel, label: label) }
            present.insert(label)
        }
        for label in present where byIndex[Int(label)] == nil {
            byIndex[Int(label)] = LabelEntry(index: Int(label), name: String(label))
        }
        self.labels = labels
        self.entries = byIndex.values.sorted { $0.index < $1.index }
        self.source = source
    }

    /// Number of voxels.
    public var voxelCount: Int { labels.count }
}
