import Foundation
import Testing
@testable import Statistics

@Suite("Random-intercept mixed model (REML, Satterthwaite)")
struct RandomInterceptModelTests {
    /// m participants seen at the same months, y = a_i + slope · month + e.
    static func balanced(participants m: Int, months: [Double], slope: Double, spread: Double, noise: Double,
                         seed: UInt64) -> (groups: [Int], x: [Double], y: [Double]) {
        var generator = SplitMix64(seed: seed)
        var groups: [Int] = [], x: [Double] = [], y: [Double] = []
        for i in 0..<m {
            let intercept = spread * Double.random(in: -1...1, using: &generator)
            for month in months {
                groups.append(i)
                x.append(month)
                y.append(0.5 + intercept + slope * month + noise * Double.random(in: -1...1, using: &generator))
            }
        }
        return (groups, x, y)
    }

    @Test("balanced design, interior optimum: within-participant slope, within MSE, ν = N − m − 1")
    func balancedClosedForm() throws {
        let months: [Double] = [0, 1, 3, 6]
        for seed: UInt64 in 1...5 {
            let data = Self.balanced(participants: 6, months: months, slope: 0.004, spread: 0.05, noise: 0.01, seed: seed)
            let fit = try #require(RandomInterceptModel.fit(groups: data.groups, x: data.x, y: data.y))
            // Closed form: every participant has the same months, so the GLS slope is the
            // within-participant (and the pooled OLS) slope, and with SSB/(m−1) above the
            // within mean square REML gives σ² = SSW / (N − m − 1).
            let m = 6, k = months.count, n = m * k
            let monthMean = months.reduce(0, +) / Double(k)
            let sxx = Double(m) * months.reduce(0) { $0 + ($1 - monthMean) * ($1 - monthMean) }
            var sxy = 0.0
            var participantMeans = [Double](repeating: 0, count: m)
            for i in 0..<n { participantMeans[data.groups[i]] += data.y[i] / Double(k) }
            for i in 0..<n { sxy += (data.x[i] - monthMean) * (data.y[i] - participantMeans[data.groups[i]]) }
            let slope = sxy / sxx
            var ssw = 0.0
            for i in 0..<n {
                let r = data.y[i] - participantMeans[data.groups[i]] - slope * (data.x[i] - monthMean)
                ssw += r * r
            }
            let sigma2 = ssw / Double(n - m - 1)
            #expect(abs(fit.slope - slope) < 1e-12)
            #expect(abs(fit.residualVariance - sigma2) < 1e-9 * sigma2)
            #expect(abs(fit.standardError - (sigma2 / sxx).squareRoot()) < 1e-8 * fit.standardError)
            #expect(abs(fit.degreesOfFreedom - Double(n - m - 1)) < 1e-6)
            #expect(fit.interceptVariance > 0)
            let t = try #require(StudentT(degreesOfFreedom: Double(n - m - 1)))
            #expect(abs(fit.pValue - t.twoSidedTail(slope / fit.standardError)) < 1e-9 * max(fit.pValue, 1e-300))
            #expect(fit.groups == 6 && fit.observations == 24)
        }
    }

    @Test("no spread between participants: the boundary σ_b² = 0, the ordinary regression")
    func boundary() throws {
        // Each participant's residuals sum to zero around a common line: the between-participant
        // mean square is below the within one, so REML puts σ_b² at 0.
        let months: [Double] = [0, 1, 3, 6]
        let pattern: [[Double]] = [[0.02, -0.03, 0.03, -0.02], [-0.01, 0.04, -0.04, 0.01], [0.03, -0.01, -0.03, 0.01]]
        var groups: [Int] = [], x: [Double] = [], y: [Double] = []
        for (i, noise) in pattern.enumerated() {
            for (k, month) in months.enumerated() {
                groups.append(i); x.append(month); y.append(1 + 0.01 * month + noise[k])
            }
        }
        let fit = try #require(RandomInterceptModel.fit(groups: groups, x: x, y: y))
        #expect(fit.interceptVariance == 0)
        let mx = x.reduce(0, +) / 12, my = y.reduce(0, +) / 12
        var sxx = 0.0, sxy = 0.0
        for i in 0..<12 { sxx += (x[i] - mx) * (x[i] - mx); sxy += (x[i] - mx) * (y[i] - my) }
        let slope = sxy / sxx
        var rss = 0.0
        for i in 0..<12 { let r = y[i] - my - slope * (x[i] - mx); rss += r * r }
        #expect(abs(fit.slope - slope) < 1e-12)
        #expect(abs(fit.residualVariance - rss / 10) < 1e-12)
        #expect(abs(fit.standardError - (rss / 10 / sxx).squareRoot()) < 1e-10)
        #expect(fit.degreesOfFreedom.isFinite && fit.degreesOfFreedom > 0)
    }

    @Test("a planted slope is recovered, unbalanced visits included; the optimum is a minimum")
    func plantedSlope() throws {
        var generator = SplitMix64(seed: 42)
        var groups: [Int] = [], x: [Double] = [], y: [Double] = []
        for i in 0..<30 {
            let intercept = 0.05 * Double.random(in: -1...1, using: &generator)
            for month in [0.0, 1, 3, 6] where Double.random(in: 0...1, using: &generator) > 0.15 {
                groups.append(i); x.append(month)
                y.append(0.45 + intercept + 0.003 * month + 0.004 * Double.random(in: -1...1, using: &generator))
            }
        }
        let fit = try #require(RandomInterceptModel.fit(groups: groups, x: x, y: y))
        #expect(abs(fit.slope - 0.003) < 4 * fit.standardError)
        #expect(fit.confidenceInterval.low < 0.003 && 0.003 < fit.confidenceInterval.high)
        #expect(fit.pValue < 1e-10)
        let data = try #require(GroupedData(groups: groups, x: x, y: y))
        let lambda = fit.interceptVariance / fit.residualVariance
        for factor in [0.9, 0.99, 1.01, 1.1] {
            #expect(data.criterion(lambda: lambda * factor) >= data.criterion(lambda: lambda))
        }
        // Relabelling and reordering the observations changes nothing.
        let order = Array(groups.indices.reversed())
        let shuffled = try #require(RandomInterceptModel.fit(groups: order.map { 100 - groups[$0] },
                                                             x: order.map { x[$0] }, y: order.map { y[$0] }))
        #expect(abs(shuffled.slope - fit.slope) < 1e-12)
        #expect(abs(shuffled.degreesOfFreedom - fit.degreesOfFreedom) < 1e-6)
    }

    @Test("no slope: p-values spread over (0, 1), CI covers 0 about 95 % of the time")
    func nullSweep() throws {
        var covered = 0, small = 0
        let trials = 200
        for seed in 0..<UInt64(trials) {
            let data = Self.balanced(participants: 5, months: [0, 1, 3, 6], slope: 0, spread: 0.03, noise: 0.01, seed: 1000 + seed)
            let fit = try #require(RandomInterceptModel.fit(groups: data.groups, x: data.x, y: data.y))
            if fit.confidenceInterval.low <= 0 && 0 <= fit.confidenceInterval.high { covered += 1 }
            if fit.pValue < 0.05 { small += 1 }
            #expect(fit.pValue > 0 && fit.pValue <= 1)
        }
        #expect(covered >= 180 && covered <= 198)
        #expect(small == trials - covered)
    }

    @Test("degenerate inputs give nil, never NaN or a trap")
    func degenerate() {
        // One participant.
        #expect(RandomInterceptModel.fit(groups: [0, 0, 0, 0], x: [0, 1, 2, 3], y: [1, 2, 2, 4]) == nil)
        // Every visit at the same month.
        #expect(RandomInterceptModel.fit(groups: [0, 0, 1, 1, 2, 2], x: [3, 3, 3, 3, 3, 3], y: [1, 2, 2, 4, 1, 1]) == nil)
        // Too few observations.
        #expect(RandomInterceptModel.fit(groups: [0, 0, 1], x: [0, 1, 0], y: [1, 2, 2]) == nil)
        // One visit per participant: σ_b² and σ² cannot be told apart.
        #expect(RandomInterceptModel.fit(groups: [0, 1, 2, 3, 4], x: [0, 1, 2, 3, 4], y: [1, 2, 2, 4, 3]) == nil)
        // Constant values, and values exactly on a line per participant (zero residual variance).
        #expect(RandomInterceptModel.fit(groups: [0, 0, 1, 1], x: [0, 1, 0, 1], y: [2, 2, 2, 2]) == nil)
        #expect(RandomInterceptModel.fit(groups: [0, 0, 0, 1, 1, 1], x: [0, 1, 2, 0, 1, 2], y: [1, 2, 3, 5, 6, 7]) == nil)
        // Non-finite values are left out.
        let fit = RandomInterceptModel.fit(groups: [0, 0, 0, 1, 1, 1, 2], x: [0, 1, 2, 0, 1, 2, .nan],
                                           y: [1, 2.1, 2.9, 5, 6.2, 6.8, 3])
        #expect(fit?.observations == 6)
        #expect(fit.map { $0.slope.isFinite && $0.standardError.isFinite && $0.pValue.isFinite } == true)
    }
}
