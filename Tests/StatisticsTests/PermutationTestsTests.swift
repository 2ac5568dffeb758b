import Foundation
import Testing
@testable import Statistics

@Suite("Paired change, sign-flip and Spearman permutation tests, Benjamini-Hochberg")
struct PermutationTestsTests {
    @Test("paired summary: mean and t interval by hand; degenerate inputs give no interval")
    func pairedSummary() throws {
        let summary = try #require(PairedChangeSummary(changes: [1, 2, 3, 4, 5, .nan]))
        #expect(summary.count == 5)
        #expect(summary.mean == 3)
        // s = √2.5, SE = √0.5, t_{0.975,4} = 2.7764451051977934.
        let half = 2.7764451051977934 * 0.5.squareRoot()
        let interval = try #require(summary.confidenceInterval)
        #expect(abs(interval.low - (3 - half)) < 1e-12)
        #expect(abs(interval.high - (3 + half)) < 1e-12)
        #expect(PairedChangeSummary(changes: [0.2, 0.2, 0.2])?.confidenceInterval == nil)
        #expect(PairedChangeSummary(changes: [0.2])?.confidenceInterval == nil)
        #expect(PairedChangeSummary(changes: [.nan]) == nil)
        #expect(PairedChangeSummary(changes: []) == nil)
    }

    @Test("sign flip: p-values counted by hand over the 2^n patterns")
    func signFlipByHand() throws {
        // ±1 ±2 ±3 gives 6 4 2 0 0 −2 −4 −6: the observed 6 is the largest of 8.
        #expect(PermutationTests.signFlip([1, 2, 3])?.pValue == 0.25)
        // Observed 0: five of eight sums are ≤ 0 and five ≥ 0, so 2 · 5/8 is capped at 1.
        #expect(PermutationTests.signFlip([1, 2, -3])?.pValue == 1)
        // ±1 ±1 ±2: the sums are 4 2 2 0 0 −2 −2 −4; only the observed reaches 4.
        #expect(PermutationTests.signFlip([1, 1, 2])?.pValue == 0.25)
        // d = (2, 1, −1), observed sum 2: the sums are 2 −2 0 −4 4 0 2 −2; three of eight are
        // ≥ 2 and seven ≤ 2, so p = 2 · 3/8.
        #expect(PermutationTests.signFlip([2, 1, -1])?.pValue == 0.75)
        // Five equal positive changes: only one pattern of 32 reaches the mean.
        let same = try #require(PermutationTests.signFlip([0.3, 0.3, 0.3, 0.3, 0.3]))
        #expect(same.pValue == 2.0 / 32)
        #expect(same.exact && same.resamples == 32)
        #expect(PermutationTests.signFlip([0, 0, 0])?.pValue == 1)
        #expect(PermutationTests.signFlip([1]) == nil)
        #expect(PermutationTests.signFlip([1, .nan]) == nil)
    }

    @Test("sign flip: symmetric in the sign of the data, at least 2/2^n, and exact up to 16 changes")
    func signFlipProperties() throws {
        var generator = SplitMix64(seed: 7)
        for n in 2...12 {
            let d = (0..<n).map { _ in Double.random(in: -1...1.5, using: &generator) }
            let p = try #require(PermutationTests.signFlip(d))
            let q = try #require(PermutationTests.signFlip(d.map { -$0 }))
            #expect(p.pValue == q.pValue)
            #expect(p.pValue >= 2 / Double(1 << n) && p.pValue <= 1)
            #expect(p.resamples == 1 << n)
        }
        let sixteen = try #require(PermutationTests.signFlip((1...16).map(Double.init)))
        #expect(sixteen.exact && sixteen.pValue == 2.0 / 65536)
    }

    @Test("sign flip with more than 16 changes: seeded draws, (count + 1)/(B + 1), deterministic")
    func signFlipDraws() throws {
        let d = (1...20).map { Double($0) / 10 }
        let first = try #require(PermutationTests.signFlip(d))
        let second = try #require(PermutationTests.signFlip(d))
        #expect(!first.exact && first.resamples == PermutationTests.defaultDraws)
        #expect(first == second)
        // Only the all-positive pattern (probability 2^-20) reaches the observed mean.
        #expect(first.pValue <= 2 * 3 / Double(PermutationTests.defaultDraws + 1))
        // No change at all in distribution: a small draw count keeps the test quick.
        var generator = SplitMix64(seed: 11)
        let null = (0..<30).map { _ in Double.random(in: -1...1, using: &generator) }
        let p = try #require(PermutationTests.signFlip(null, draws: 20_000))
        let exactMean = null.reduce(0, +) / 30
        // Normal approximation of the permutation distribution: sd = √(Σd²)/n.
        let z = exactMean / (null.reduce(0) { $0 + $1 * $1 }.squareRoot() / 30)
        let normal = erfc(abs(z) / 2.0.squareRoot())
        #expect(abs(p.pValue - normal) < 0.03)
    }

    @Test("average ranks give ties their mean rank")
    func ranks() {
        #expect(PermutationTests.averageRanks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4])
        #expect(PermutationTests.averageRanks([3, 1, 2]) == [3, 1, 2])
        #expect(PermutationTests.averageRanks([5, 5, 5]) == [2, 2, 2])
    }

    @Test("Spearman: monotone data give ±1 with p = 2/n!; ties counted by hand")
    func spearman() throws {
        let x: [Double] = [1, 2, 3, 4, 5]
        let up = try #require(PermutationTests.spearman(x, [0.1, 0.5, 0.7, 2, 9]))
        #expect(abs(up.statistic - 1) < 1e-15)
        #expect(up.pValue == 2.0 / 120 && up.exact && up.resamples == 120)
        let down = try #require(PermutationTests.spearman(x, [9, 2, 0.7, 0.5, 0.1]))
        #expect(abs(down.statistic + 1) < 1e-15 && down.pValue == 2.0 / 120)
        // y ranks 2 2 2 4.5 4.5: S_xy = 2.5 × (sum of the centred x ranks under the two tied
        // top values), largest (3) only when they sit at x = 4, 5: 2!·3! = 12 of 120 orderings.
        let tied = try #require(PermutationTests.spearman(x, [0, 0, 0, 1, 1]))
        #expect(abs(tied.statistic - 7.5 / 75.0.squareRoot()) < 1e-15)
        #expect(tied.pValue == 2 * 12.0 / 120)
        #expect(PermutationTests.spearman(x, [1, 1, 1, 1, 1]) == nil)
        #expect(PermutationTests.spearman([1], [2]) == nil)
        // Nine pairs: random orderings, deterministic.
        let nine = (1...9).map(Double.init)
        let drawn = try #require(PermutationTests.spearman(nine, nine.map { $0 * $0 }, draws: 5000))
        #expect(!drawn.exact && abs(drawn.statistic - 1) < 1e-15)
        #expect(drawn.pValue == PermutationTests.spearman(nine, nine.map { $0 * $0 }, draws: 5000)?.pValue)
        #expect(drawn.pValue <= 2 * 3.0 / 5001)
    }

    @Test("Benjamini-Hochberg q-values on known vectors")
    func benjaminiHochberg() {
        // Sorted 0.005 0.01 0.03 0.04 → 0.02 0.02 0.04 0.04, back in place.
        let q = MultipleTesting.benjaminiHochberg([0.01, 0.04, 0.03, 0.005])
        #expect(q == [0.02, 0.04, 0.04, 0.02])
        // Monotone from the right, capped at 1; untested entries stay out of the family.
        #expect(MultipleTesting.benjaminiHochberg([0.9, nil, 0.95]) == [0.95, nil, 0.95])
        #expect(MultipleTesting.benjaminiHochberg([0.6, 0.6, 0.6]) == [0.6, 0.6, 0.6])
        #expect(MultipleTesting.benjaminiHochberg([nil, nil]) == [nil, nil])
        #expect(MultipleTesting.benjaminiHochberg([0.8, 0.9]) == [0.9, 0.9])
        #expect(MultipleTesting.benjaminiHochberg([0.5, 1]) == [1, 1])
        // q ≥ p and the order of the q-values follows the p-values.
        var generator = SplitMix64(seed: 3)
        let p = (0..<50).map { _ in Double.random(in: 0...1, using: &generator) }
        let adjusted = MultipleTesting.benjaminiHochberg(p).map { $0! }
        for i in p.indices {
            #expect(adjusted[i] >= p[i] && adjusted[i] <= 1)
            for j in p.indices where p[i] < p[j] { #expect(adjusted[i] <= adjusted[j]) }
        }
    }

    @Test("above the asymptotic limit the p-values are the permutation distribution's normal limit, close to the draws'")
    func asymptoticRegime() throws {
        var generator = SplitMix64(seed: 7)
        func normal() -> Double {
            let u = (Double(generator.next() >> 11) + 0.5) / 9_007_199_254_740_992
            let v = Double(generator.next() >> 11) / 9_007_199_254_740_992
            return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
        }
        let n = PermutationTests.asymptoticLimit + 1
        var worst = (sign: 0.0, rank: 0.0)
        for shift in [0.0, 0.05, 0.1, 0.2, 0.3] {
            let d = (0..<n).map { _ in normal() + shift }
            let y = d.map { shift * $0 + normal() }
            let limit = try #require(PermutationTests.signFlip(d)), drawn = try #require(PermutationTests.signFlip(d, asymptoticAbove: .max))
            #expect(!limit.exact && limit.resamples == 0 && drawn.resamples == PermutationTests.defaultDraws)
            #expect(limit.statistic == drawn.statistic)
            worst.sign = max(worst.sign, abs(limit.pValue - drawn.pValue))
            let rho = try #require(PermutationTests.spearman(d, y)), rhoDrawn = try #require(PermutationTests.spearman(d, y, asymptoticAbove: .max))
            #expect(rho.statistic == rhoDrawn.statistic && rho.resamples == 0)
            worst.rank = max(worst.rank, abs(rho.pValue - rhoDrawn.pValue))
        }
        // 100 000 draws have a standard error of at most 0.0016; the normal limit's error at
        // n ≈ 100 is of order 1/n for these symmetric null distributions.
        #expect(worst.sign < 0.01, "sign flip: normal limit vs draws \(worst.sign)")
        #expect(worst.rank < 0.01, "Spearman: normal limit vs draws \(worst.rank)")
        // At the limit itself the draws are used, as before.
        let atLimit = (0..<PermutationTests.asymptoticLimit).map { _ in normal() }
        #expect(PermutationTests.signFlip(atLimit) == PermutationTests.signFlip(atLimit, asymptoticAbove: .max))
        #expect(PermutationTests.signFlip(atLimit)?.resamples == PermutationTests.defaultDraws)
    }
}
