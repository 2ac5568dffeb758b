
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
