// Test helpers: a seeded RNG and Gaussian samples, so every test builds the same data.

import Foundation
@testable import Functional

/// SplitMix64: small, seeded, reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Standard normal by Box-Muller.
    mutating func gaussian() -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// Lower Cholesky factor of a small SPD row-major matrix (test reference, independent of
/// the library).
func referenceCholesky(_ a: [[Double]]) -> [[Double]] {
    let p = a.count
    var l = [[Double]](repeating: [Double](repeating: 0, count: p), count: p)
    for j in 0..<p {
        var d = a[j][j]
        for k in 0..<j { d -= l[j][k] * l[j][k] }
        l[j][j] = d.squareRoot()
        for i in (j + 1)..<p {
            var s = a[i][j]
            for k in 0..<j { s -= l[i][k] * l[j][k] }
            l[i][j] = s / l[j][j]
        }
    }
    return l
}

/// Bit patterns, so that NaN entries compare equal in determinism checks.
func bits(_ values: [Double]) -> [UInt64] { values.map(\.bitPattern) }

/// Independent Gaussian series with a random-walk drift, column per region.
func randomSeries(timePoints: Int, regions: Int, seed: UInt64) -> [[Double]] {
    var rng = SeededGenerator(seed: seed)
    return (0..<regions).map { _ in
        var level = 0.0
        return (0..<timePoints).map { _ in
            level += 0.1 * rng.gaussian()
            return 100 + level + rng.gaussian()
        }
    }
}
