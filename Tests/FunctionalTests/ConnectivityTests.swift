import TestSupport
import Foundation
import Testing
@testable import Functional

@Suite("Connectivity")
struct ConnectivityTests {
    /// Population correlation with a known Cholesky factor.
    static let population: [[Double]] = [
        [1.0, 0.6, 0.3, 0.0],
        [0.6, 1.0, 0.5, -0.2],
        [0.3, 0.5, 1.0, -0.4],
        [0.0, -0.2, -0.4, 1.0],
    ]

    static func correlatedSeries(timePoints: Int, seed: UInt64) throws -> TimeSeriesMatrix {
        let l = referenceCholesky(population)
        var rng = SplitMix64(seed: seed)
        var columns = [[Double]](repeating: [], count: 4)
        for _ in 0..<timePoints {
            let z = (0..<4).map { _ in rng.normal() }
            for i in 0..<4 {
                var v = 0.0
                for k in 0...i { v += l[i][k] * z[k] }
                columns[i].append(10 * Double(i + 1) + 3 * v)  // offsets and scale must not matter
            }
        }
        return try TimeSeriesMatrix(regionSeries: columns)
    }

    static func naiveCorrelation(_ a: [Double], _ b: [Double]) -> Double {
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        return sab / (saa * sbb).squareRoot()
    }

    @Test("Pearson recovers the population correlation and matches a naive two-pass correlation")
    func pearsonKnownStructure() throws {
        let x = try Self.correlatedSeries(timePoints: 20_000, seed: 42)
        let r = try pearsonCorrelation(x)
        for i in 0..<4 {
            #expect(r[i, i] == 1)
            for j in 0..<4 where j != i {
                // Standard error of r is about (1 - rho^2) / sqrt(T) <= 0.007; allow 4 of them.
                #expect(abs(r[i, j] - Self.population[i][j]) < 0.03)
                #expect(abs(r[i, j] - Self.naiveCorrelation(x.series(i), x.series(j))) < 1e-12)
                #expect(r[i, j] == r[j, i])
            }
        }
    }

    @Test("missing regions are NaN rows and columns and leave the others unchanged")
    func missingRegions() throws {
        let x = try Self.correlatedSeries(timePoints: 500, seed: 7)
        var columns = (0..<4).map { x.series($0) }
        let reference = try pearsonCorrelation(x)
        let referencePartial = try partialCorrelation(x)
        columns.insert([Double](repeating: .nan, count: 500), at: 1)
        columns.insert([Double](repeating: 3.7, count: 500), at: 4)
        let withMissing = try TimeSeriesMatrix(regionSeries: columns)
        #expect(validRegions(withMissing) == [0, 2, 3, 5])
        let r = try pearsonCorrelation(withMissing)
        let partial = try partialCorrelation(withMissing)
        let map = [0, 2, 3, 5]
        for i in 0..<6 {
            #expect(r[1, i].isNaN && r[i, 1].isNaN && r[4, i].isNaN && r[i, 4].isNaN)
            #expect(partial[1, i].isNaN && partial[i, 4].isNaN)
        }
        for a in 0..<4 {
            for b in 0..<4 {
                #expect(r[map[a], map[b]] == reference[a, b])
                #expect(partial[map[a], map[b]] == referencePartial[a, b])
            }
        }
        let strength = nodeStrength(r)
        #expect(strength[1].isNaN && strength[4].isNaN && strength[0].isFinite)
    }

    @Test("Fisher z is atanh off the diagonal and NaN on it")
    func fisher() throws {
        let r = try SquareMatrix(size: 2, values: [1, 0.5, 0.5, 1])
        let z = fisherZ(r)
        #expect(z[0, 0].isNaN && z[1, 1].isNaN)
        #expect(abs(z[0, 1] - 0.5 * log(1.5 / 0.5)) < 1e-15)
    }

    @Test("Ledoit-Wolf shrinkage matches the paper's formula on a small matrix")
    func ledoitWolfSmall() throws {
        let columns: [[Double]] = [
            [1.0, 2.0, 0.5, -1.0, 3.0, 0.0, 1.5],
            [0.3, -0.7, 1.2, 2.2, -0.4, 0.9, 0.1],
            [2.0, 1.0, 0.0, 1.0, 2.5, -1.0, 0.7],
        ]
        let estimate = try ledoitWolfCovariance(try TimeSeriesMatrix(regionSeries: columns))
        // Hand computation: centred samples x_t, S = (1/n) sum x_t x_t^T, mu = tr(S)/p,
        // delta = ||S - mu I||^2 / p, beta = (1/n^2) sum_t ||x_t x_t^T - S||^2 / p,
        // shrinkage = min(beta, delta) / delta.
        let n = 7, p = 3
        let means = columns.map { $0.reduce(0, +) / Double(n) }
        let x = (0..<n).map { t in (0..<p).map { columns[$0][t] - means[$0] } }
        var s = [[Double]](repeating: [0, 0, 0], count: p)
        for t in 0..<n { for i in 0..<p { for j in 0..<p { s[i][j] += x[t][i] * x[t][j] / Double(n) } } }
        let mu = (0..<p).map { s[$0][$0] }.reduce(0, +) / Double(p)
        var delta = 0.0
        for i in 0..<p { for j in 0..<p { let d = s[i][j] - (i == j ? mu : 0); delta += d * d } }
        delta /= Double(p)
        var beta = 0.0
        for t in 0..<n { for i in 0..<p { for j in 0..<p { let d = x[t][i] * x[t][j] - s[i][j]; beta += d * d } } }
        beta /= Double(n * n * p)
        let shrinkage = min(beta, delta) / delta
        #expect(abs(estimate.shrinkage - shrinkage) < 1e-12)
        #expect(abs(estimate.mu - mu) < 1e-12)
        for i in 0..<p {
            for j in 0..<p {
                let expected = (1 - shrinkage) * s[i][j] + (i == j ? shrinkage * mu : 0)
                #expect(abs(estimate.covariance[i, j] - expected) < 1e-12)
            }
        }
    }

    @Test("partial correlation of a Gaussian chain recovers its sparsity pattern")
    func partialChain() throws {
        // Precision: tridiagonal, 1 on the diagonal, -0.4 beside it; partial r = 0.4 for
        // neighbours, 0 otherwise. Samples x = L^-T z with P = L L^T have covariance P^-1.
        let p = 6, n = 6000
        var precision = [[Double]](repeating: [Double](repeating: 0, count: p), count: p)
        for i in 0..<p {
            precision[i][i] = 1
            if i + 1 < p { precision[i][i + 1] = -0.4; precision[i + 1][i] = -0.4 }
        }
        let l = referenceCholesky(precision)
        var rng = SplitMix64(seed: 2024)
        var columns = [[Double]](repeating: [], count: p)
        for _ in 0..<n {
            var v = (0..<p).map { _ in rng.normal() }
            for i in stride(from: p - 1, through: 0, by: -1) {
                for k in (i + 1)..<p { v[i] -= l[k][i] * v[k] }
                v[i] /= l[i][i]
            }
            for i in 0..<p { columns[i].append(v[i]) }
        }
        let partial = try partialCorrelation(try TimeSeriesMatrix(regionSeries: columns))
        for i in 0..<p {
            #expect(partial[i, i] == 1)
            for j in 0..<p where j != i {
                if abs(i - j) == 1 {
                    #expect(abs(partial[i, j] - 0.4) < 0.06)
                } else {
                    #expect(abs(partial[i, j]) < 0.06)
                }
            }
        }
    }
}
