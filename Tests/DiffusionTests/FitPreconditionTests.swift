import Diffusion
import Testing

@Suite("Fit preconditions")
struct FitPreconditionTests {
    static let sixDirections: [SIMD3<Double>] = {
        let r = 0.5.squareRoot()
        return [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1), SIMD3(r, r, 0), SIMD3(r, 0, r), SIMD3(0, r, r)]
    }()

    @Test("condition number of a known design: one b=0 volume and the six axis/diagonal directions")
    func knownDesign() throws {
        let table = try GradientTable(bValues: [0] + [Double](repeating: 1000, count: 6),
                                      directions: [.zero] + Self.sixDirections)
        // Reference: numpy.linalg.cond of the same 7 x 7 design (b / 1000) is 6.846396067828.
        #expect(abs(designConditionNumber(table) - 6.846396067828) < 1e-6)
        // Scaling every b-value leaves it unchanged (b is divided by the largest).
        let doubled = try GradientTable(bValues: [0] + [Double](repeating: 2000, count: 6),
                                        directions: [.zero] + Self.sixDirections)
        #expect(abs(designConditionNumber(doubled) - designConditionNumber(table)) < 1e-9)
    }

    @Test("nearly collinear directions exceed the threshold; a rank-deficient design is infinite")
    func collinear() throws {
        let near: [SIMD3<Double>] = [(0, 0), (1, 0), (0, 1), (1, 1), (-1, 0.5), (0.5, -1)].map { SIMD3(1, 0.1 * $0.0, 0.1 * $0.1) }
        let table = try GradientTable(bValues: [0] + [Double](repeating: 1000, count: 6), directions: [.zero] + near)
        #expect(designConditionNumber(table) > maximumDesignConditionNumber)
        let five = try GradientTable(bValues: [0] + [Double](repeating: 1000, count: 5),
                                     directions: [.zero] + Array(Self.sixDirections.prefix(5)))
        #expect(designConditionNumber(five) == .infinity)
    }

    @Test("impossible tensors: a negative eigenvalue, not the rounding noise of a zero tensor")
    func impossible() {
        #expect(isImpossibleTensor(eigenvalues: SIMD3(1.7e-3, 0.3e-3, -0.2e-3)))
        #expect(!isImpossibleTensor(eigenvalues: SIMD3(1.7e-3, 0.3e-3, 0.3e-3)))
        #expect(!isImpossibleTensor(eigenvalues: SIMD3(1e-13, 0, -1e-13)))
    }

    @Test("non-finite fractions, removing volumes and the mean b=0 and weighted signals")
    func signal() throws {
        // Three volumes of two voxels: b=0, weighted, weighted all NaN.
        let signal = MaskedSignal(float: [1000, 800, 400, 300, .nan, .nan], voxelCount: 2)
        #expect(signal.nonFiniteFractions() == [0, 0, 1])
        let kept = signal.removingVolumes([2])
        #expect(kept.volumeCount == 2 && kept.values(volume: 0) == [1000, 800] && kept.values(volume: 1) == [400, 300])
        #expect(kept.nonFiniteFractions() == [0, 0])
        let means = signal.meanSignals(isB0: [true, false, false])
        #expect(means.b0 == 900 && means.weighted == 350)
        let integers = MaskedSignal(int16: [1000, 800, 400, 300, -2, 6], voxelCount: 2)
        #expect(integers.meanSignals(isB0: [true, false, true]).b0 == 451)
        let table = try GradientTable(bValues: [0] + [Double](repeating: 1000, count: 6), directions: [.zero] + Self.sixDirections)
        #expect(table.removing(volumes: [0, 3]).bValues == [Double](repeating: 1000, count: 5))
    }
}
