/// A label atlas with its labels renumbered: the same regions under other indices, so that
/// every regional number measured with it must equal the original's, region by region.
public enum AtlasRelabelling {
    /// Label `i` becomes `permutation[i]` (labels absent from it, and 0, stay).
    public static func labels<Value: BinaryFloatingPoint>(_ labels: [Value], _ permutation: [Int: Int]) -> [Value] {
        labels.map { value in permutation[Int(value)].map { Value($0) } ?? value }
    }

    /// A label table (header row, `index` first) with each row's index renumbered; the other
    /// cells, the row order and the header stay.
    public static func table(_ text: String, _ permutation: [Int: Int]) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for k in lines.indices.dropFirst() where !lines[k].isEmpty {
            var cells = lines[k].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if let index = Int(cells[0]), let renumbered = permutation[index] { cells[0] = String(renumbered) }
            lines[k] = cells.joined(separator: "\t")
        }
        return lines.joined(separator: "\n")
    }

    /// The reversal of labels 1...count (`i` -> `count + 1 - i`).
    public static func reversal(count: Int) -> [Int: Int] {
        Dictionary(uniqueKeysWithValues: (1...count).map { ($0, count + 1 - $0) })
    }
}
