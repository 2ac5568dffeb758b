import Foundation
import Testing
@testable import Phantoms

@Suite("Seeded random draws")
struct RandomTests {
    @Test("SplitMix64 matches the reference output for seed 0")
    func splitMixReference() {
        // Reference values of splitmix64.c (Vigna) started from state 0.
        var mixer = SplitMix64(state: 0)
        #expect(mixer.next() == 0xE220_A839_7B1D_CDAF)
        #expect(mixer.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test("the same seed and stream give the same draws; other seeds and streams differ")
    func determinism() {
        var a = PhantomRandom(seed: 7, stream: [1, 2])
        var b = PhantomRandom(seed: 7, stream: [1, 2])
        var c = PhantomRandom(seed: 8, stream: [1, 2])
        var d = PhantomRandom(seed: 7, stream: [2, 1])
        let drawsA = (0..<100).map { _ in a.gaussian() }
        #expect(drawsA == (0..<100).map { _ in b.gaussian() })
        #expect(drawsA != (0..<100).map { _ in c.gaussian() })
        #expect(drawsA != (0..<100).map { _ in d.gaussian() })
    }

    @Test("uniform and Gaussian draws have the right moments")
    func moments() {
        var random = PhantomRandom(seed: 2026)
        let n = 100_000
        let uniforms = (0..<n).map { _ in random.uniform() }
        #expect(uniforms.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(uniforms.reduce(0, +) / Double(n) - 0.5) < 0.005)
        let gaussians = (0..<n).map { _ in random.gaussian() }
        let mean = gaussians.reduce(0, +) / Double(n)
        let variance = gaussians.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        // Standard errors: 1/sqrt(n) = 0.0032 for the mean, sqrt(2/n) = 0.0045 for the variance.
        #expect(abs(mean) < 0.015)
        #expect(abs(variance - 1) < 0.02)
        let beyondTwo = Double(gaussians.filter { abs($0) > 2 }.count) / Double(n)
        #expect(abs(beyondTwo - 0.0455) < 0.004)
    }

    @Test("the portable logarithm agrees with the C library", arguments: [1e-300, 1e-12, 0.001, 0.3, 0.7071, 1, 1.4143, 2, 10, 12345.678, 1e300])
    func logarithm(x: Double) {
        let expected = log(x)
        #expect(abs(portableLogarithm(x) - expected) <= 4 * Double.ulpOfOne * max(1, abs(expected)))
    }
}
