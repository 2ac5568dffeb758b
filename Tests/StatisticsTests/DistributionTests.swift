import Foundation
import Testing
@testable import Statistics

@Suite("Student's t and the incomplete beta function")
struct DistributionTests {
    @Test("log-gamma of integers and one half")
    func logGamma() {
        var factorial = 1.0
        for n in 1...30 {
            if n > 1 { factorial *= Double(n - 1) }
            #expect(abs(SpecialFunctions.logGamma(Double(n)) - log(factorial)) <= 1e-13 * max(1, log(factorial)))
        }
        #expect(abs(SpecialFunctions.logGamma(0.5) - 0.5 * log(Double.pi)) < 1e-14)
        #expect(abs(SpecialFunctions.logGamma(0.1) - log(9.513507698668731836)) < 1e-13)
    }

    @Test("incomplete beta against its closed forms I_x(a,1) = x^a and I_x(1,b) = 1-(1-x)^b")
    func incompleteBeta() {
        for a in [0.3, 1, 2.5, 7, 40] {
            for x in stride(from: 0.01, through: 0.99, by: 0.07) {
                #expect(abs(SpecialFunctions.regularizedIncompleteBeta(a, 1, x) - pow(x, a)) < 1e-13)
                #expect(abs(SpecialFunctions.regularizedIncompleteBeta(1, a, x) - (1 - pow(1 - x, a))) < 1e-13)
            }
        }
        #expect(SpecialFunctions.regularizedIncompleteBeta(2, 3, 0) == 0)
        #expect(SpecialFunctions.regularizedIncompleteBeta(2, 3, 1) == 1)
    }

    @Test("t CDF: Cauchy (1 df) and 2 df in closed form")
    func closedFormCDF() throws {
        let one = try #require(StudentT(degreesOfFreedom: 1))
        let two = try #require(StudentT(degreesOfFreedom: 2))
        for t in [-30.0, -3, -1, -0.2, 0, 0.5, 1, 2, 10, 100] {
            #expect(abs(one.cdf(t) - (0.5 + atan(t) / Double.pi)) < 1e-14)
            #expect(abs(two.cdf(t) - (0.5 + t / (2 * (2 + t * t).squareRoot()))) < 1e-14)
        }
    }

    @Test("t quantiles against tabulated values and their CDF")
    func quantiles() throws {
        // t_{0.975, ν}: closed forms for ν = 1 (tan(0.475π)) and ν = 2 (0.95 √(2 / (4 · 0.975 · 0.025))),
        // Abramowitz & Stegun table 26.10 to more digits (as scipy.stats.t.ppf prints them) for the others.
        let table: [(Double, Double)] = [
            (1, tan(0.475 * Double.pi)), (2, 0.95 * (2 / (4 * 0.975 * 0.025)).squareRoot()), (4, 2.7764451051977934),
            (10, 2.228138851986274), (30, 2.0422724563012378),
        ]
        for (df, expected) in table {
            let t = try #require(StudentT(degreesOfFreedom: df))
            #expect(abs(t.quantile(0.975) - expected) < 1e-11 * expected)
            #expect(abs(t.quantile(0.025) + expected) < 1e-11 * expected)
        }
        let large = try #require(StudentT(degreesOfFreedom: 1e7))
        #expect(abs(large.quantile(0.975) - 1.959963984540054) < 1e-6)
        for df in [0.7, 1.5, 3.3, 17.2] {
            let t = try #require(StudentT(degreesOfFreedom: df))
            for p in [0.001, 0.05, 0.3, 0.5, 0.8, 0.999] { #expect(abs(t.cdf(t.quantile(p)) - p) < 1e-12) }
        }
        #expect(StudentT(degreesOfFreedom: 0) == nil)
        #expect(StudentT(degreesOfFreedom: .nan) == nil)
    }
}
