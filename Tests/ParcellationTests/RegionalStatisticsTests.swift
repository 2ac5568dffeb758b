
import TestSupport
import Testing
@testable import Parcellation

/// Naive reference statistics, written independently of the library's code path.
func naiveSummary(_ values: [Double]) -> (n: Int, mean: Double?, sd: Double?, median: Double?, p05: Double?, p95: Double?) {
    let n = values.count
    guard n > 0 else { return (0, nil, nil, nil, nil, nil) }
    let mean = values.reduce(0, +) / Double(n)
    let sd = n > 1 ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)).squareRoot() : nil
    let s = values.sorted()
    func q(_ p: Double) -> Double {
        let h = Double(n - 1) * p
        let lo = Int(h)
        let hi = min(lo + 1, n - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }
    return (n, mean, sd, q(0.5), q(0.05), q(0.95))
}

@Suite("Percentiles and summaries")
struct SummaryTests {
    @Test("numpy percentile known cases")
    func numpyCases() {
        let s = summarize([4, 1, 3, 2], name: "r")
        #expect(abs(s.percentile05! - 1.15) < 1e-12)
        #expect(abs(s.percentile95! - 3.85) < 1e-12)
        #expect(abs(s.median! - 2.5) < 1e-12)
        #expect(abs(s.mean! - 2.5) < 1e-12)
        // numpy.std([1,2,3,4], ddof=1) = 1.2909944487358056
        #expect(abs(s.standardDeviation! - 1.2909944487358056) < 1e-12)
        // numpy.percentile([10, 20, 30, 40, 50], 95) = 48.0, 5 -> 12.0
        let t = summarize([50, 10, 40, 20, 30], name: "t")
        #expect(abs(t.percentile95! - 48) < 1e-9)
        #expect(abs(t.percentile05! - 12) < 1e-9)
        #expect(t.median == 30)
    }

    @Test("single value has no sd, empty has no statistics")
    func smallRegions() {
        let one = summarize([7], name: "one")
        #expect(one.count == 1 && one.mean == 7 && one.median == 7 && one.percentile05 == 7 && one.percentile95 == 7)
        #expect(one.standardDeviation == nil)
        let none = summarize([], name: "none")
        #expect(none.count == 0 && none.mean == nil && none.standardDeviation == nil && none.median == nil)
        #expect(none.percentile05 == nil && none.percentile95 == nil)
    }
}

@Suite("Atlas")
struct AtlasTests {
    @Test("duplicate index is an error naming both regions")
    func duplicates() {
        #expect(throws: AtlasError.duplicateIndex(source: "a.tsv", index: 2, names: ["B", "C"])) {
            try Atlas(labels: [0, 1, 2], entries: [.init(index: 1, name: "A"), .init(index: 2, name: "B"),
                                                   .init(index: 2, name: "C")], source: "a.tsv")
        }
        #expect(throws: AtlasError.invalidIndex(source: "atlas", index: 0)) {
            try Atlas(labels: [0], entries: [.init(index: 0, name: "bg")])
        }
        #expect(throws: AtlasError.negativeLabel(source: "atlas", voxel: 1, label: -3)) {
            try Atlas(labels: [0, -3], entries: [])
        }
    }

    @Test("entries sorted; labels missing from the table get their number as name")
    func entries() throws {
        let atlas = try Atlas(labels: [0, 5, 3, 3, 9],
                              entries: [.init(index: 5, name: "E", network: "Default"), .init(index: 3, name: "C"),
                                        .init(index: 7, name: "absent")])
        #expect(atlas.entries.map(\.index) == [3, 5, 7, 9])
        #expect(atlas.entries.map(\.name) == ["C", "E", "absent", "9"])
        #expect(atlas.entries[1].network == "Default")
    }
}

@Suite("Regional statistics")
struct RegionalStatisticsTests {
    func randomCase(seed: UInt64, voxels: Int = 5000) throws -> (values: [Float], mask: [Bool], atlas: Atlas, lesion: [Bool]) {
        var rng = SplitMix64(state: seed)
        var labels = [Int32](repeating: 0, count: voxels)
        var values = [Float](repeating: 0, count: voxels)
        var mask = [Bool](repeating: false, count: voxels)
        var lesion = [Bool](repeating: false, count: voxels)
        for i in 0..<voxels {
            labels[i] = Int32(rng.next() % 12) // 0...11; 11 is not in the table
            values[i] = Float(rng.uniform() * 2 - 0.5)
            mask[i] = rng.uniform() < 0.8
            lesion[i] = rng.uniform() < 0.05
        }
        values[17] = .nan
        mask[17] = true
        let entries = (1...10).map { LabelEntry(index: $0, name: "R\($0)") } + [LabelEntry(index: 40, name: "empty")]
        return (values, mask, try Atlas(labels: labels, entries: entries), lesion)
    }

    @Test("matches a naive implementation, including empty, unnamed and extra regions")
    func matchesNaive() throws {
        let (values, mask, atlas, lesion) = try randomCase(seed: 42)
        let result = try regionalStatistics(values: values, mask: mask, atlas: atlas,
                                            extraMasks: [("lesion", lesion)], threads: 3)
        #expect(result.map(\.name) == (1...10).map { "R\($0)" } + ["11", "empty", "whole_brain", "lesion"])
        func check(_ summary: RegionSummary, _ include: (Int) -> Bool) {
            let reference = naiveSummary((0..<values.count).filter { mask[$0] && values[$0].isFinite && include($0) }
                .map { Double(values[$0]) })
            #expect(summary.count == reference.n)
            func close(_ a: Double?, _ b: Double?) -> Bool {
                switch (a, b) {
                case (nil, nil): return true
                case let (x?, y?): return abs(x - y) <= 1e-9
                default: return false
                }
            }
            #expect(close(summary.mean, reference.mean), "\(summary.name) mean")
            #expect(close(summary.standardDeviation, reference.sd), "\(summary.name) sd")
            #expect(close(summary.median, reference.median), "\(summary.name) median")
            #expect(close(summary.percentile05, reference.p05), "\(summary.name) p05")
            #expect(close(summary.percentile95, reference.p95), "\(summary.name) p95")
        }
        for summary in result {
            if let index = summary.index {
                check(summary) { Int(atlas.labels[$0]) == index }
            } else if summary.name == "whole_brain" {
                check(summary) { _ in true }
            } else {
                check(summary) { lesion[$0] }
            }
        }
        #expect(result.first { $0.name == "empty" }?.count == 0)
        #expect(result.first { $0.name == "empty" }?.mean == nil)
    }

    @Test("identical for 1, 2 and 7 threads")
    func threadInvariance() throws {
        let (values, mask, atlas, lesion) = try randomCase(seed: 7, voxels: 20000)
        let one = try regionalStatistics(values: values, mask: mask, atlas: atlas, extraMasks: [("lesion", lesion)], threads: 1)
        for threads in [2, 7] {
            let other = try regionalStatistics(values: values, mask: mask, atlas: atlas,
                                               extraMasks: [("lesion", lesion)], threads: threads)
            #expect(other == one)
        }
    }

    @Test("size mismatches are typed errors")
    func sizeErrors() throws {
        let atlas = try Atlas(labels: [1, 1, 0], entries: [.init(index: 1, name: "A")])
        #expect(throws: RegionalStatisticsError.sizeMismatch(what: "value map", expected: 3, actual: 2)) {
            try regionalStatistics(values: [1, 2], mask: [true, true, true], atlas: atlas)
        }
        #expect(throws: RegionalStatisticsError.sizeMismatch(what: "mask 'lesion'", expected: 3, actual: 1)) {
            try regionalStatistics(values: [1, 2, 3], mask: [true, true, true], atlas: atlas, extraMasks: [("lesion", [true])])
        }
    }
}

@Suite("Percentile function")
struct PercentileTests {
    @Test("numpy linear definition at the ends, between points, and empty input")
    func cases() {
        let s = [1.0, 2, 3, 4]
        #expect(percentile(sorted: s, percent: 0) == 1)
        #expect(percentile(sorted: s, percent: 100) == 4)
        #expect(abs(percentile(sorted: s, percent: 5)! - 1.15) < 1e-12)
        #expect(abs(percentile(sorted: s, percent: 95)! - 3.85) < 1e-12)
        // numpy.percentile([0, 10], 25) = 2.5
        #expect(percentile(sorted: [0, 10], percent: 25) == 2.5)
        #expect(percentile(sorted: [], percent: 50) == nil)
    }
}

/// The statistics as the library computed them before selection replaced sorting: sums in the
/// given order, then a stable sort of the values as Doubles and ``percentile(sorted:percent:)``.
func sortingReference(_ values: [Float], name: String) -> RegionSummary {
    var summary = RegionSummary(name: name, count: values.count)
    guard !values.isEmpty else { return summary }
    var sum = 0.0
    for v in values { sum += Double(v) }
    let mean = sum / Double(values.count)
    summary.mean = mean
    if values.count >= 2 {
        var squares = 0.0
        for v in values { squares += (Double(v) - mean) * (Double(v) - mean) }
        summary.standardDeviation = (squares / Double(values.count - 1)).squareRoot()
    }
    var sorted = values.map(Double.init)
    sorted.sort() // stable
    summary.median = percentile(sorted: sorted, percent: 50)
    summary.percentile05 = percentile(sorted: sorted, percent: 5)
    summary.percentile95 = percentile(sorted: sorted, percent: 95)
    return summary
}

/// Equal to the last bit, the sign of zero included.
func identical(_ a: RegionSummary, _ b: RegionSummary) -> Bool {
    func bits(_ x: Double?) -> UInt64? { x?.bitPattern }
    return a.name == b.name && a.index == b.index && a.network == b.network && a.count == b.count
        && bits(a.mean) == bits(b.mean) && bits(a.standardDeviation) == bits(b.standardDeviation)
        && bits(a.median) == bits(b.median) && bits(a.percentile05) == bits(b.percentile05)
        && bits(a.percentile95) == bits(b.percentile95)
}

@Suite("Order statistics by selection")
struct SelectionTests {
    @Test("selected ranks hold the sorted values, on orders that trouble quickselect")
    func patterns() {
        var rng = SplitMix64(state: 3)
        for n in [1, 2, 3, 15, 16, 17, 100, 1000, 4097, histogramSelectionMinimum - 1, histogramSelectionMinimum, 50000] {
            let patterns: [[Float]] = [
                (0..<n).map { Float($0) },                          // ascending
                (0..<n).map { Float(n - $0) },                      // descending
                [Float](repeating: 2.5, count: n),                  // all tied
                (0..<n).map { Float($0 % 2) },                      // two values
                (0..<n).map { Float(min($0, n - 1 - $0)) },         // organ pipe
                (0..<n).map { _ in Float(rng.next() % 7) - 3 },     // heavy ties
                (0..<n).map { _ in Float(rng.normal()) },
                (0..<n).map { _ in Float(0.0007 + 0.0002 * rng.uniform()) }, // narrow range
                (0..<n).map { _ in Float(rng.normal()) * (rng.uniform() < 0.5 ? 1e-30 : 1e30) }, // wide range
            ]
            for values in patterns {
                let sorted = values.sorted()
                let ranks = Array(Set((0..<6).map { _ in Int(rng.next() % UInt64(n)) } + [0, n - 1])).sorted()
                var reordered = values
                let selected = reordered.withUnsafeMutableBufferPointer { orderStatistics($0, ranks: ranks) }
                #expect(reordered.sorted() == sorted, "n \(n): not a permutation")
                #expect(selected == ranks.map { sorted[$0] }, "n \(n), ranks \(ranks)")
            }
        }
    }

    @Test("summaries equal the sorting reference bit for bit, signed zeros and ties included")
    func signedZeros() {
        var rng = SplitMix64(state: 11)
        let pool: [Float] = [-0.0, 0.0, -1, 1, 0.5]
        for _ in 0..<3000 {
            let n = Int(rng.next() % 40)
            let values = (0..<n).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
            let fast = summarize(values, name: "r")
            #expect(identical(fast, sortingReference(values, name: "r")), "\(values)")
        }
    }
}

@Suite("Regional statistics against sorting")
struct RegionalStatisticsReferenceTests {
    /// Labels 1...6 (6 has one voxel, 5 two, 4 none but is in the table, 7 is not in the
    /// table), values with ties, signed zeros and non-finite values in the mask.
    func randomCase(seed: UInt64, voxels: Int) throws -> (maps: [[Float]], mask: [Bool], atlas: Atlas, extra: [Bool]) {
        var rng = SplitMix64(state: seed)
        var labels = [Int32](repeating: 0, count: voxels)
        var mask = [Bool](repeating: false, count: voxels)
        var extra = [Bool](repeating: false, count: voxels)
        for i in 0..<voxels {
            labels[i] = [0, 1, 1, 2, 2, 3, 7][Int(rng.next() % 7)]
            mask[i] = rng.uniform() < 0.7
            extra[i] = rng.uniform() < 0.1
        }
        labels[10] = 6
        mask[10] = true
        labels[20] = 5
        labels[21] = 5
        mask[20] = true
        mask[21] = true
        let special: [Float] = [-0.0, 0.0, .nan, .infinity, -.infinity]
        let maps = (0..<3).map { m in
            (0..<voxels).map { _ -> Float in
                let u = rng.uniform()
                if u < 0.05 { return special[Int(rng.next() % 5)] }
                // map 0 continuous, map 1 on a coarse grid (many ties), map 2 mostly zeros
                switch m {
                case 0: return Float(rng.normal())
                case 1: return Float(Int(rng.next() % 9) - 4) / 4
                default: return u < 0.6 ? (rng.uniform() < 0.5 ? -0.0 : 0.0) : Float(rng.uniform())
                }
            }
        }
        let entries = (1...6).map { LabelEntry(index: $0, name: "R\($0)", network: $0 % 2 == 0 ? "even" : nil) }
        return (maps, mask, try Atlas(labels: labels, entries: entries), extra)
    }

    @Test("every region, whole brain and extra mask bit for bit, for 1, 2, 3 and 8 threads")
    func matchesSorting() throws {
        for (seed, voxels) in [(1 as UInt64, 300), (2, 5000), (3, 40000)] {
            let (maps, mask, atlas, extra) = try randomCase(seed: seed, voxels: voxels)
            let extras = [(name: "extra", mask: extra), (name: "nothing", mask: [Bool](repeating: false, count: voxels))]
            var expected: [[RegionSummary]] = []
            for values in maps {
                func reference(_ name: String, index: Int? = nil, network: String? = nil, _ include: (Int) -> Bool) -> RegionSummary {
                    var summary = sortingReference((0..<voxels).filter { mask[$0] && values[$0].isFinite && include($0) }
                        .map { values[$0] }, name: name)
                    (summary.index, summary.network) = (index, network)
                    return summary
                }
                expected.append(atlas.entries.map { entry in
                    reference(entry.name, index: entry.index, network: entry.network) { Int(atlas.labels[$0]) == entry.index }
                } + [reference("whole_brain") { _ in true }, reference("extra") { extra[$0] }, reference("nothing") { _ in false }])
            }
            let counts = expected[0].map(\.count)
            #expect(counts[atlas.entries.firstIndex { $0.index == 4 }!] == 0)
            #expect(counts[atlas.entries.firstIndex { $0.index == 6 }!] == 1)
            #expect(counts[atlas.entries.firstIndex { $0.index == 5 }!] == 2)
            for threads in [1, 2, 3, 8] {
                let together = try regionalStatistics(maps: maps, mask: mask, atlas: atlas, extraMasks: extras, threads: threads)
                #expect(together.count == maps.count)
                for (m, values) in maps.enumerated() {
                    let alone = try regionalStatistics(values: values, mask: mask, atlas: atlas, extraMasks: extras, threads: threads)
                    #expect(alone.count == expected[m].count && together[m].count == expected[m].count)
                    for (r, summary) in expected[m].enumerated() {
                        #expect(identical(alone[r], summary), "map \(m), \(summary.name), \(threads) threads: \(alone[r]) vs \(summary)")
                        #expect(identical(together[m][r], summary), "map \(m), \(summary.name), \(threads) threads, all maps")
                    }
                }
            }
        }
    }

    @Test("a map of the wrong size is named by its position")
    func sizeErrors() throws {
        let atlas = try Atlas(labels: [1, 1, 0], entries: [.init(index: 1, name: "A")])
        #expect(throws: RegionalStatisticsError.sizeMismatch(what: "value map 2", expected: 3, actual: 4)) {
            try regionalStatistics(maps: [[1, 2, 3], [1, 2, 3, 4]], mask: [true, true, true], atlas: atlas)
        }
        #expect(try regionalStatistics(maps: [], mask: [true, true, true], atlas: atlas).isEmpty)
    }
}
