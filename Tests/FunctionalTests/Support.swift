// Test helpers: a seeded RNG and Gaussian samples, so every test builds the same data.

import TestSupport
import Foundation
@testable import Functional

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
    var rng = SplitMix64(seed: seed)
    return (0..<regions).map { _ in
        var level = 0.0
        return (0..<timePoints).map { _ in
            level += 0.1 * rng.normal()
            return 100 + level + rng.normal()
        }
    }
}
