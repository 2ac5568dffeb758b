import Foundation

/// Student's t distribution with `degreesOfFreedom` (any positive real, as Satterthwaite's
/// approximation gives), through the regularized incomplete beta function.
///
/// For t ≥ 0, P(T > t) = ½ I_x(ν/2, ½) with x = ν / (ν + t²) (Abramowitz & Stegun 1964,
/// 26.7.1 and 26.5.27), so the two-sided tail is P(|T| > t) = I_x(ν/2, ½).
public struct StudentT: Sendable, Equatable {
    public let degreesOfFreedom: Double

    /// nil unless `degreesOfFreedom` is finite and positive.
    public init?(degreesOfFreedom: Double) {
        guard degreesOfFreedom.isFinite, degreesOfFreedom > 0 else { return nil }
        self.degreesOfFreedom = degreesOfFreedom
    }

    /// P(|T| ≥ |t|): the two-sided p-value of an observed t.
    public func twoSidedTail(_ t: Double) -> Double {
        guard t.isFinite else { return t.isNaN ? .nan : 0 }
        let nu = degreesOfFreedom
        return SpecialFunctions.regularizedIncompleteBeta(nu / 2, 0.5, nu / (nu + t * t))
    }

    /// P(T ≤ t).
    public func cdf(_ t: Double) -> Double {
        let tail = 0.5 * twoSidedTail(t)
        return t >= 0 ? 1 - tail : tail
    }

    /// The quantile t_p with P(T ≤ t_p) = p, for 0 < p < 1.
    ///
    /// Solves I_x(ν/2, ½) = 2 min(p, 1−p) for x by bisection on [0, 1] (I_x is increasing in
    /// x; 200 halvings reach the double-precision limit), then t = √(ν (1 − x) / x) with
    /// the sign of p − ½.
    public func quantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "a quantile needs 0 < p < 1")
        if p == 0.5 { return 0 }
        let target = 2 * min(p, 1 - p)
        let a = degreesOfFreedom / 2
        var low = 0.0, high = 1.0
        for _ in 0..<200 {
            let mid = 0.5 * (low + high)
            if mid == low || mid == high { break }
            if SpecialFunctions.regularizedIncompleteBeta(a, 0.5, mid) < target { low = mid } else { high = mid }
        }
        let x = 0.5 * (low + high)
        let t = (degreesOfFreedom * (1 - x) / x).squareRoot()
        return p < 0.5 ? -t : t
    }
}

/// Log-gamma and the regularized incomplete beta function.
public enum SpecialFunctions {
    /// ln Γ(x) for x > 0, by the Lanczos approximation (g = 7, 9 coefficients; Lanczos 1964,
    /// coefficients as in Numerical Recipes 3rd ed. §6.1 and Boost), relative error about
    /// 1e-15; the reflection formula is not needed since x > 0 here. Written out rather than
    /// taken from the C library, whose `lgamma` writes the global `signgam` (a data race when
    /// called from several threads).
    public static func logGamma(_ x: Double) -> Double {
        precondition(x > 0, "logGamma needs x > 0")
        if x < 0.5 {
            // Γ(x) = Γ(x + 1) / x keeps the series in its accurate range.
            return logGamma(x + 1) - log(x)
        }
        let coefficients: [Double] = [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7,
        ]
        let z = x - 1
        var sum = coefficients[0]
        for i in 1..<coefficients.count { sum += coefficients[i] / (z + Double(i)) }
        let t = z + 7.5
        return 0.5 * log(2 * Double.pi) + (z + 0.5) * log(t) - t + log(sum)
    }

    /// The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0
    /// and 0 ≤ x ≤ 1.
    ///
    /// The continued fraction of Abramowitz & Stegun 26.5.8, evaluated by the modified Lentz
    /// method (Press et al., Numerical Recipes 3rd ed. §6.4), on x when x < (a+1)/(a+b+2) and
    /// through I_x(a, b) = 1 − I_{1−x}(b, a) otherwise, where it converges fast.
    public static func regularizedIncompleteBeta(_ a: Double, _ b: Double, _ x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * continuedFraction(a, b, x) / a
        }
        return 1 - exp(logFront) * continuedFraction(b, a, 1 - x) / b
    }

    /// The continued fraction of I_x(a, b) (A&S 26.5.8) by modified Lentz.
    static func continuedFraction(_ a: Double, _ b: Double, _ x: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...1000 {
            let m = Double(m)
            let m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return h
    }
}
