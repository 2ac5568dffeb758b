import Foundation
import Statistics

/// The seeded generator of ``Statistics`` (SplitMix64; Steele, Lea & Flood 2014), so every
/// test builds the same data on every machine, without system randomness.
public typealias SplitMix64 = Statistics.SplitMix64

/// The draws the tests build their data from.
extension Statistics.SplitMix64 {
    public init(state: UInt64) { self.init(seed: state) }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal, by Box-Muller.
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// A uniformly distributed unit vector.
    public mutating func unitVector() -> SIMD3<Double> {
        let z = 2 * uniform() - 1, phi = 2 * Double.pi * uniform()
        let r = (1 - z * z).squareRoot()
        return SIMD3(r * Foundation.cos(phi), r * Foundation.sin(phi), z)
    }
}
