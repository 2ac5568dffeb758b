/// A seeded pseudo-random generator whose draws are the same on every platform.
///
/// The state is xoshiro256** (Blackman & Vigna 2021, "Scrambled linear pseudorandom number
/// generators", ACM TOMS 47(4)), seeded through SplitMix64 (Steele, Lea & Flood 2014,
/// "Fast splittable pseudorandom number generators", OOPSLA) as its authors recommend.
/// Uniform draws use only integer arithmetic; Gaussian draws use the Marsaglia polar method
/// with ``portableLogarithm(_:)`` and `squareRoot()` (exactly rounded by IEEE 754), so they
/// too are bit-identical everywhere. `SystemRandomNumberGenerator` is never used.
///
/// Independent streams (one per participant, per visit, per purpose) come from
/// ``init(seed:stream:)``: a change in one stream never shifts the draws of another, so
/// adding a participant does not change the data of the others.
public struct PhantomRandom: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)
    /// The second value of the last polar-method pair, returned by the next ``gaussian()``.
    private var spareGaussian: Double?

    /// A generator for `seed`.
    public init(seed: UInt64) {
        var mixer = SplitMix64(state: seed)
        state = (mixer.next(), mixer.next(), mixer.next(), mixer.next())
        if state == (0, 0, 0, 0) { state.0 = 0x9E37_79B9_7F4A_7C15 } // xoshiro's one forbidden state
    }

    /// A generator for one named stream of `seed`: the stream's words are mixed into the
    /// seed one after the other with SplitMix64's finaliser.
    public init(seed: UInt64, stream: [UInt64]) {
        var mixed = SplitMix64.mix(seed)
        for word in stream { mixed = SplitMix64.mix(mixed ^ SplitMix64.mix(word &+ 0x9E37_79B9_7F4A_7C15)) }
        self.init(seed: mixed)
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// A uniform draw in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform draw in [`low`, `high`).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// A standard normal draw (mean 0, variance 1).
    ///
    /// Marsaglia & Bray 1964, "A convenient method for generating normal variables",
    /// SIAM Review 6(3): with u, v uniform on (-1, 1) and s = u² + v² in (0, 1),
    /// u·√(-2 ln s / s) and v·√(-2 ln s / s) are independent standard normals.
    public mutating func gaussian() -> Double {
        if let spare = spareGaussian {
            spareGaussian = nil
            return spare
        }
        while true {
            let u = 2 * uniform() - 1
            let v = 2 * uniform() - 1
            let s = u * u + v * v
            guard s > 0, s < 1 else { continue }
            let factor = (-2 * portableLogarithm(s) / s).squareRoot()
            spareGaussian = v * factor
            return u * factor
        }
    }

    /// A normal draw with the given mean and standard deviation.
    public mutating func gaussian(mean: Double, standardDeviation: Double) -> Double {
        mean + standardDeviation * gaussian()
    }

    @inline(__always)
    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// SplitMix64 (Steele, Lea & Flood 2014): used only to seed ``PhantomRandom``.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.finalise(state)
    }

    /// One step of the generator from `value`, as a stateless hash.
    static func mix(_ value: UInt64) -> UInt64 { finalise(value &+ 0x9E37_79B9_7F4A_7C15) }

    private static func finalise(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The natural logarithm of a positive finite `x`, computed with IEEE 754 additions,
/// multiplications and divisions only, so that it returns the same bits on every platform
/// (C libraries' `log` may differ in the last bit).
///
/// With x = m·2ᵉ and m in [1/√2, √2], ln x = e·ln 2 + 2·atanh(s), s = (m − 1)/(m + 1),
/// |s| ≤ 0.172, and atanh(s) = s + s³/3 + s⁵/5 + … (Abramowitz & Stegun 4.5.64); thirteen
/// terms leave a truncation error below 1e-19 relative. Accurate to a few ulp.
public func portableLogarithm(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite, "portableLogarithm needs a positive finite number")
    var exponent = Double(x.exponent)
    var m = x.significand
    if m > 1.4142135623730951 {
        m /= 2
        exponent += 1
    }
    let s = (m - 1) / (m + 1)
    let s2 = s * s
    // Horner form of s · Σₙ s²ⁿ/(2n + 1), n = 0 … 12, highest term first.
    var series = 1.0 / 25
    series = series * s2 + 1.0 / 23
    series = series * s2 + 1.0 / 21
    series = series * s2 + 1.0 / 19
    series = series * s2 + 1.0 / 17
    series = series * s2 + 1.0 / 15
    series = series * s2 + 1.0 / 13
    series = series * s2 + 1.0 / 11
    series = series * s2 + 1.0 / 9
    series = series * s2 + 1.0 / 7
    series = series * s2 + 1.0 / 5
    series = series * s2 + 1.0 / 3
    series = series * s2 + 1
    return 2 * s * series + exponent * 0.6931471805599453
}
