import Foundation

/// A small seeded generator (SplitMix64; Steele, Lea & Flood 2014) so every test builds the
/// same data on every machine, without system randomness. Shared by the test targets.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

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
