import TestSupport
import Foundation
import Geometry
import Testing
@testable import Diffusion

@Suite("Symmetric 3 x 3 eigen-decomposition")
struct EigenTests {
    @Test("random symmetric matrices: A v = λ v, descending, orthonormal, sign convention")
    func random() {
        var rng = SplitMix64(state: 11)
        for _ in 0..<200 {
            let a = (0..<6).map { _ in rng.uniform() * 2 - 1 }
            let e = SymmetricEigen3(a[0], a[1], a[2], a[3], a[4], a[5])
            #expect(e.values.x >= e.values.y && e.values.y >= e.values.z)
            let rows = [SIMD3(a[0], a[1], a[2]), SIMD3(a[1], a[3], a[4]), SIMD3(a[2], a[4], a[5])]
            for (lambda, v) in [(e.values.x, e.vectors.0), (e.values.y, e.vectors.1), (e.values.z, e.vectors.2)] {
                let av = SIMD3((rows[0] * v).sum(), (rows[1] * v).sum(), (rows[2] * v).sum())
                let residual = av - lambda * v
                #expect((residual * residual).sum().squareRoot() < 1e-12)
                #expect(abs((v * v).sum() - 1) < 1e-12)
                let m = v.replacing(with: -v, where: v .< 0).max()
                #expect(m == v.max(), "largest-magnitude component is positive")
            }
            #expect(abs((e.vectors.0 * e.vectors.1).sum()) < 1e-12)
        }
    }

    @Test("repeated eigenvalues and diagonal matrices")
    func degenerate() {
        let iso = SymmetricEigen3(1, 0, 0, 1, 0, 1)
        #expect(iso.values == SIMD3(1, 1, 1))
        let diag = SymmetricEigen3(0.3, 0, 0, 0.1, 0, 0.7)
        #expect(diag.values == SIMD3(0.7, 0.3, 0.1))
        #expect(diag.vectors.0 == SIMD3(0, 0, 1))
        let zero = SymmetricEigen3(0, 0, 0, 0, 0, 0)
        #expect(zero.values == .zero)
    }
}

@Suite("Principal eigen-pair in closed form")
struct PrincipalEigenTests {
    func largest(_ v: SIMD3<Double>) -> Double { max(abs(v.x), abs(v.y), abs(v.z)) }

    /// A symmetric matrix R diag(λ) Rᵀ from eigenvalues and a random rotation.
    func matrix(_ values: SIMD3<Double>, _ rng: inout SplitMix64) -> [Double] {
        var u = SIMD3(rng.uniform() - 0.5, rng.uniform() - 0.5, rng.uniform() - 0.5)
        u /= (u * u).sum().squareRoot()
        var w = SIMD3(rng.uniform() - 0.5, rng.uniform() - 0.5, rng.uniform() - 0.5)
        w -= (w * u).sum() * u
        w /= (w * w).sum().squareRoot()
        let x = cross(u, w)
        let vectors = [u, w, x]
        func entry(_ r: Int, _ c: Int) -> Double {
            (0..<3).reduce(0.0) { $0 + values[$1] * vectors[$1][r] * vectors[$1][c] }
        }
        return [entry(0, 0), entry(0, 1), entry(0, 2), entry(1, 1), entry(1, 2), entry(2, 2)]
    }

    @Test("agrees with the Jacobi decomposition: random, prolate, oblate, isotropic, diagonal and zero matrices")
    func againstJacobi() {
        var rng = SplitMix64(state: 17)
        var cases: [[Double]] = []
        for _ in 0..<2000 { cases.append((0..<6).map { _ in rng.uniform() * 2 - 1 }) }
        for _ in 0..<500 {
            // Tensor-like spectra, with the gaps that DTI produces: sticks, pancakes, near-isotropic.
            let l1 = 0.5e-3 + rng.uniform() * 2e-3
            let kinds: [SIMD3<Double>] = [
                SIMD3(l1, l1 * 0.3, l1 * 0.3), SIMD3(l1, l1, l1 * 0.2), SIMD3(l1, l1 * (1 - 1e-6), l1 * 0.5),
                SIMD3(l1, l1 * 0.999, l1 * 0.998), SIMD3(l1, l1 * 0.5, -l1 * 0.1), SIMD3(l1, l1, l1),
            ]
            for values in kinds { cases.append(matrix(values, &rng)) }
        }
        cases += [[1, 0, 0, 1, 0, 1], [0.3, 0, 0, 0.1, 0, 0.7], [0, 0, 0, 0, 0, 0], [2, 0, 0, 2, 0, 1], [1, 1e-300, 0, 1, 0, 1]]
        for a in cases {
            let jacobi = SymmetricEigen3(a[0], a[1], a[2], a[3], a[4], a[5])
            let fast = SymmetricEigen3.principal(a[0], a[1], a[2], a[3], a[4], a[5])
            let scale = max(abs(jacobi.values.x), abs(jacobi.values.z), 1e-300)
            // The split of two close eigenvalues is known to about √ε of the norm; everything
            // the maps use is much better than that.
            #expect(largest(fast.values - jacobi.values) <= 1e-7 * scale, "\(a)")
            #expect(abs(fast.values.y + fast.values.z - jacobi.values.y - jacobi.values.z) <= 1e-12 * scale, "\(a)")
            #expect(fast.values.x >= fast.values.y && fast.values.y >= fast.values.z)
            #expect(abs(fractionalAnisotropy(eigenvalues: fast.values) - fractionalAnisotropy(eigenvalues: jacobi.values)) < 1e-12)
            // Where the eigenvector is well defined (a clear gap), λ1 to full accuracy and the
            // same vector with the same sign.
            if jacobi.values.x - jacobi.values.y > 1e-3 * scale {
                #expect(abs(fast.values.x - jacobi.values.x) <= 1e-12 * scale, "\(a)")
                #expect(largest(fast.vector - jacobi.vectors.0) < 1e-9, "\(a)")
            }
            #expect(abs((fast.vector * fast.vector).sum() - 1) < 1e-12)
        }
    }
}

@Suite("Tensor metrics")
struct MetricTests {
    @Test("isotropic tensor has FA 0, a stick FA 1")
    func extremes() {
        #expect(fractionalAnisotropy(eigenvalues: SIMD3(1e-3, 1e-3, 1e-3)) == 0)
        #expect(abs(fractionalAnisotropy(eigenvalues: SIMD3(1.7e-3, 0, 0)) - 1) < 1e-15)
        #expect(fractionalAnisotropy(eigenvalues: .zero) == 0)
    }

    @Test("hand-computed values, and negative eigenvalues kept as they are")
    func values() {
        let l = SIMD3(1.7e-3, 0.3e-3, 0.1e-3)
        // FA = sqrt(1/2) sqrt(1.4² + 0.2² + 1.6²) / sqrt(1.7² + 0.3² + 0.1²)
        let fa = (0.5 * (1.96 + 0.04 + 2.56) / (2.89 + 0.09 + 0.01)).squareRoot()
        #expect(abs(fractionalAnisotropy(eigenvalues: l) - fa) < 1e-12)
        #expect(abs(meanDiffusivity(eigenvalues: l) - 0.7e-3) < 1e-15)
        #expect(axialDiffusivity(eigenvalues: l) == 1.7e-3)
        #expect(abs(radialDiffusivity(eigenvalues: l) - 0.2e-3) < 1e-15)
        #expect(abs(fractionalAnisotropy(eigenvalues: SIMD3(1, 0, -1)) - 1.5.squareRoot()) < 1e-12)
        #expect(TensorMetric(rawValue: "rd") == .radialDiffusivity)
    }
}

@Suite("Tensor model and fit")
struct TensorFitTests {
    @Test("fit method parsing names the valid choices")
    func methodParsing() throws {
        #expect(try TensorFitMethod(parsing: "ols") == .ols)
        #expect(try TensorFitMethod(parsing: "WLS") == .wls)
        let error = TensorModelError.unknownFitMethod(name: "nlls", valid: ["ols", "wls"])
        #expect(throws: error) { try TensorFitMethod(parsing: "nlls") }
        #expect(error.description == "unknown tensor fit method 'nlls'; valid choices: ols, wls")
    }

    @Test("design matrix: Basser 1994 columns with b scaled by the largest b")
    func design() throws {
        let table = try standardTable(directions: 12)
        let model = try TensorModel(table: table, method: .ols)
        #expect(model.bScale == 1000)
        let g = table.directions[7]
        let row = Array(model.designMatrix[49..<56])
        let expected = [-g.x * g.x, -2 * g.x * g.y, -2 * g.x * g.z, -g.y * g.y, -2 * g.y * g.z, -g.z * g.z, 1]
        for (a, b) in zip(row, expected) { #expect(abs(a - b) < 1e-15) }
        #expect(model.pseudoInverse.count == 7 * table.count)
    }

    @Test("degenerate designs and bad sizes are typed errors")
    func errors() throws {
        let collinear = try GradientTable(bValues: [0, 1000, 1000, 1000, 1000, 1000, 1000],
                                          directions: [.zero] + Array(repeating: SIMD3(1, 0, 0), count: 6))
        #expect(throws: TensorModelError.degenerateDesign(source: "gradient table")) {
            try TensorModel(table: collinear)
        }
        #expect(throws: TensorModelError.invalidIterations(0)) { try TensorModel(table: try standardTable(), iterations: 0) }
        let model = try TensorModel(table: try standardTable())
        #expect(throws: TensorModelError.volumeCountMismatch(entries: 35, volumes: 34)) {
            try model.fit(data: [Float](repeating: 1, count: 34 * 2), volumeCount: 34, voxelCount: 2)
        }
        #expect(throws: TensorModelError.dataSizeMismatch(expected: 70, actual: 69)) {
            try model.fit(data: [Float](repeating: 1, count: 69), volumeCount: 35, voxelCount: 2)
        }
        #expect(throws: TensorModelError.maskSizeMismatch(expected: 2, actual: 3)) {
            try model.fit(data: [Float](repeating: 1, count: 70), volumeCount: 35, voxelCount: 2, mask: [true, true, true])
        }
    }

    /// Random tensors with distinct λ1 at random orientations.
    func randomTensors(_ count: Int, seed: UInt64) -> [SyntheticTensor] {
        var rng = SplitMix64(state: seed)
        return (0..<count).map { _ in
            let l1 = 1.0e-3 + rng.uniform() * 1.2e-3
            let l2 = 0.1e-3 + rng.uniform() * (l1 - 0.35e-3)
            let l3 = 0.05e-3 + rng.uniform() * (l2 - 0.05e-3)
            return SyntheticTensor(eigenvalues: SIMD3(l1, l2, l3), v1: rng.unitVector(), roll: rng.uniform() * 3)
        }
    }

    @Test("noiseless signals: metrics and V1 recovered by OLS and WLS", arguments: [TensorFitMethod.ols, .wls])
    func noiseless(method: TensorFitMethod) throws {
        let table = try standardTable()
        var tensors = randomTensors(60, seed: 3)
        tensors.append(SyntheticTensor(eigenvalues: SIMD3(0.8e-3, 0.8e-3, 0.8e-3), v1: SIMD3(1, 0, 0)))
        tensors.append(SyntheticTensor(eigenvalues: SIMD3(1.7e-3, 0, 0), v1: SIMD3(0.3, -0.5, 0.8)))
        let data = volumeMajor(tensors.map { $0.signal(table, s0: 1200) }, volumes: table.count)
        for iterations in [1, 3] {
            let model = try TensorModel(table: table, method: method, iterations: iterations)
            let fit = try model.fit(data: data, volumeCount: table.count, voxelCount: tensors.count, threads: 2)
            for (i, truth) in tensors.enumerated() {
                #expect(fit.fitted[i])
                let l = fit.eigenvalues(at: i)
                #expect(abs(fractionalAnisotropy(eigenvalues: l) - fractionalAnisotropy(eigenvalues: truth.eigenvalues)) < 1e-4)
                #expect(abs(meanDiffusivity(eigenvalues: l) - meanDiffusivity(eigenvalues: truth.eigenvalues)) < 1e-7)
                #expect(abs(axialDiffusivity(eigenvalues: l) - axialDiffusivity(eigenvalues: truth.eigenvalues)) < 1e-7)
                #expect(abs(radialDiffusivity(eigenvalues: l) - radialDiffusivity(eigenvalues: truth.eigenvalues)) < 1e-7)
                #expect(abs(Double(fit.s0[i]) - 1200) < 1e-2)
                #expect(fit.residuals[i] < 1e-5)
                if truth.eigenvalues.x - truth.eigenvalues.y > 1e-4 {
                    #expect(abs((fit.principalEigenvector(at: i) * truth.axes.0).sum()) > 1 - 1e-4)
                }
            }
            let last = tensors.count - 1
            #expect(abs(Double(fit.map(.fractionalAnisotropy)[last]) - 1) < 1e-4)
            #expect(abs(Double(fit.map(.fractionalAnisotropy)[last - 1])) < 1e-4)
            #expect(fit.quality.voxelsFitted == tensors.count)
        }
    }

    @Test("tensor elements in D11 D12 D13 D22 D23 D33 order")
    func elementOrder() throws {
        let table = try standardTable()
        let t = SyntheticTensor(eigenvalues: SIMD3(1.5e-3, 0.5e-3, 0.2e-3), v1: SIMD3(1, 1, 0))
        let fit = try TensorModel(table: table).fit(data: volumeMajor([t.signal(table, s0: 100)], volumes: table.count),
                                                    volumeCount: table.count, voxelCount: 1)
        // D = Σ λ_k a_k a_kᵀ
        func d(_ r: Int, _ c: Int) -> Double {
            let axes = [t.axes.0, t.axes.1, t.axes.2]
            return (0..<3).reduce(0) { $0 + t.eigenvalues[$1] * axes[$1][r] * axes[$1][c] }
        }
        let expected = [d(0, 0), d(0, 1), d(0, 2), d(1, 1), d(1, 2), d(2, 2)]
        for k in 0..<6 { #expect(abs(Double(fit.tensors[k]) - expected[k]) < 1e-8) }
    }

    /// Rician noise: magnitude of the signal plus complex Gaussian noise.
    func rician(_ s: Double, sigma: Double, _ rng: inout SplitMix64) -> Double {
        let re = s + sigma * rng.normal(), im = sigma * rng.normal()
        return (re * re + im * im).squareRoot()
    }

    @Test("Rician noise (SNR 30): WLS errors are small and not worse than OLS")
    func noisy() throws {
        let table = try standardTable()
        let tensors = randomTensors(400, seed: 5)
        var rng = SplitMix64(state: 99)
        let s0 = 1000.0, sigma = s0 / 30
        let signals = tensors.map { $0.signal(table, s0: s0).map { rician($0, sigma: sigma, &rng) } }
        let data = volumeMajor(signals, volumes: table.count)
        var faError = [TensorFitMethod: Double](), mdError = [TensorFitMethod: Double]()
        for method in TensorFitMethod.allCases {
            let fit = try TensorModel(table: table, method: method).fit(data: data, volumeCount: table.count,
                                                                        voxelCount: tensors.count, threads: 2)
            var fa = 0.0, md = 0.0
            for (i, truth) in tensors.enumerated() {
                let l = fit.eigenvalues(at: i)
                fa += abs(fractionalAnisotropy(eigenvalues: l) - fractionalAnisotropy(eigenvalues: truth.eigenvalues))
                md += abs(meanDiffusivity(eigenvalues: l) - meanDiffusivity(eigenvalues: truth.eigenvalues))
            }
            faError[method] = fa / Double(tensors.count)
            mdError[method] = md / Double(tensors.count)
        }
        #expect(faError[.wls]! < 0.05)
        #expect(mdError[.wls]! < 0.05e-3)
        #expect(faError[.wls]! <= faError[.ols]! * 1.02)
        #expect(mdError[.wls]! <= mdError[.ols]! * 1.02)
    }

    @Test("mask, zero and NaN signals: unfitted voxels hold zeros")
    func maskAndFailures() throws {
        let table = try standardTable()
        let t = SyntheticTensor(eigenvalues: SIMD3(1.5e-3, 0.4e-3, 0.3e-3), v1: SIMD3(0, 1, 0))
        var signals = Array(repeating: t.signal(table, s0: 500), count: 4)
        signals[2] = Array(repeating: 0, count: table.count)   // all zero: clamped, fitted (to junk but finite)
        signals[3][7] = .nan                                    // NaN: not fitted
        let data = volumeMajor(signals, volumes: table.count)
        let fit = try TensorModel(table: table).fit(data: data, volumeCount: table.count, voxelCount: 4,
                                                    mask: [true, false, true, true])
        #expect(fit.fitted == [true, false, true, false])
        #expect(fit.tensors[6..<12].allSatisfy { $0 == 0 } && fit.s0[1] == 0 && fit.eigenvalues[3..<6].allSatisfy { $0 == 0 })
        #expect(fit.tensors[18..<24].allSatisfy { $0 == 0 } && fit.residuals[3] == 0)
        #expect(fit.map(.meanDiffusivity)[1] == 0)
        #expect(fit.quality.voxelsFitted == 2)
        #expect(abs(Double(fit.s0[2]) - 1e-4) < 1e-8) // ln(1e-4) everywhere: S0 = the clamp, D = 0
    }

    @Test("results are bit-identical for 1, 2 and 7 threads")
    func threadInvariance() throws {
        let table = try standardTable()
        let tensors = randomTensors(1500, seed: 8)
        var rng = SplitMix64(state: 1)
        let data = volumeMajor(tensors.map { $0.signal(table, s0: 800).map { rician($0, sigma: 40, &rng) } },
                               volumes: table.count)
        var mask = (0..<tensors.count).map { _ in rng.uniform() < 0.7 }
        mask[0] = true
        for method in TensorFitMethod.allCases {
            let model = try TensorModel(table: table, method: method, iterations: 2)
            let one = try model.fit(data: data, volumeCount: table.count, voxelCount: tensors.count, mask: mask, threads: 1)
            for threads in [2, 7] {
                let other = try model.fit(data: data, volumeCount: table.count, voxelCount: tensors.count,
                                          mask: mask, threads: threads)
                #expect(other.tensors == one.tensors)
                #expect(other.s0 == one.s0)
                #expect(other.eigenvalues == one.eigenvalues)
                #expect(other.principalEigenvectors == one.principalEigenvectors)
                #expect(other.fitted == one.fitted)
                #expect(other.residuals == one.residuals)
                #expect(other.map(.fractionalAnisotropy, threads: threads) == one.map(.fractionalAnisotropy))
                #expect(other.quality == one.quality)
            }
        }
    }

    @Test("a voxel's fit does not depend on its lane: shifted by 0-8 voxels, float and int16 alike")
    func laneInvariance() throws {
        let table = try standardTable()
        let tensors = randomTensors(20, seed: 21)
        var rng = SplitMix64(state: 5)
        let signals = tensors.map { $0.signal(table, s0: 900).map { rician($0, sigma: 30, &rng).rounded() } }
        for method in TensorFitMethod.allCases {
            let model = try TensorModel(table: table, method: method)
            var reference: (tensors: [Float], s0: Float)?
            for shift in 0...8 {
                // The 20 voxels after `shift` copies of another voxel: voxel k sits in lane (shift + k) % 8.
                let shifted = Array(repeating: signals[19], count: shift) + signals
                let floats = volumeMajor(shifted, volumes: table.count)
                let integers = floats.map { Int16($0) }
                let a = try model.fit(data: floats, volumeCount: table.count, voxelCount: shifted.count)
                let b = try model.fit(data: integers, volumeCount: table.count, voxelCount: shifted.count)
                let first = Array(a.tensors[(6 * shift)..<(6 * shift + 6)])
                #expect(Array(b.tensors[(6 * shift)..<(6 * shift + 6)]) == first)
                #expect(a.fitted.allSatisfy { $0 })
                if let reference {
                    #expect(first == reference.tensors, "shift \(shift), \(method)")
                    #expect(a.s0[shift] == reference.s0)
                } else {
                    reference = (first, a.s0[0])
                }
            }
        }
    }

    @Test("infinite signals are not fitted; tiny and huge finite ones are")
    func extremeSignals() throws {
        let table = try standardTable()
        let t = SyntheticTensor(eigenvalues: SIMD3(1.7e-3, 0.3e-3, 0.2e-3), v1: SIMD3(1, 0, 0))
        var signals = Array(repeating: t.signal(table, s0: 1000), count: 3)
        signals[0][3] = .infinity
        signals[1] = t.signal(table, s0: 1e-30).map { max($0, 1e-38) }   // below the clamp: clamped, finite
        signals[2] = t.signal(table, s0: 1e30)                            // ln S ~ 69: well within range
        let fit = try TensorModel(table: table).fit(data: volumeMajor(signals, volumes: table.count),
                                                    volumeCount: table.count, voxelCount: 3)
        #expect(fit.fitted == [false, true, true])
        let md = fit.map(.meanDiffusivity)
        #expect(abs(Double(md[2]) - 2.2e-3 / 3) < 1e-7)
        #expect(abs(Double(fit.s0[2]) / 1e30 - 1) < 1e-5)
    }

    @Test("QC counts negative eigenvalues")
    func negativeEigenvalues() throws {
        let table = try standardTable()
        // A signal that rises with b along x (negative diffusivity there).
        let signal = (0..<table.count).map { v -> Double in
            let g = table.directions[v]
            return 100 * Foundation.exp(-table.bValues[v] * (-0.2e-3 * g.x * g.x + 1e-3 * (g.y * g.y + g.z * g.z)))
        }
        let good = SyntheticTensor(eigenvalues: SIMD3(1e-3, 0.5e-3, 0.4e-3), v1: SIMD3(0, 0, 1)).signal(table, s0: 100)
        let fit = try TensorModel(table: table).fit(data: volumeMajor([signal, good], volumes: table.count),
                                                    volumeCount: table.count, voxelCount: 2)
        #expect(fit.negativeEigenvalueCount == 1)
        let q = fit.quality
        #expect(q.voxelsFitted == 2 && q.negativeEigenvalueVoxels == 1 && q.negativeEigenvalueFraction == 0.5)
        #expect(abs(Double(fit.eigenvalues[2]) + 0.2e-3) < 1e-8)
        #expect(q.meanResidual! < 1e-5)
    }
}

@Suite("Absurd sizes")
struct AbsurdSizeTests {
    @Test("negative or overflowing sizes are errors, not traps")
    func sizes() throws {
        let model = try TensorModel(table: try standardTable())
        #expect(throws: TensorModelError.dataSizeMismatch(expected: -1, actual: 0)) {
            try model.fit(data: [Float](), volumeCount: 35, voxelCount: -1)
        }
        #expect(throws: TensorModelError.dataSizeMismatch(expected: -1, actual: 0)) {
            try model.fit(data: [Float](), volumeCount: 35, voxelCount: Int.max / 2)
        }
        #expect(throws: BrainMaskError.shapeMismatch(expected: -1, actual: 0)) {
            try brainMask(meanB0: [], shape: (Int.max / 2, 4, 4))
        }
        let empty = try model.fit(data: [Float](), volumeCount: 35, voxelCount: 0)
        #expect(empty.voxelCount == 0 && empty.quality.voxelsFitted == 0 && empty.quality.meanResidual == nil)
    }
}

@Suite("Zero tensors")
struct ZeroTensorTests {
    @Test("a tensor of rounding noise has FA 0, and noise far above it does not")
    func roundingNoise() {
        #expect(fractionalAnisotropy(eigenvalues: SIMD3(3e-19, -1e-19, -2e-19)) == 0)
        #expect(fractionalAnisotropy(eigenvalues: SIMD3(1.7e-3, 0.3e-3, 0.3e-3)) > 0.79)
        // Just above the threshold the formula applies again.
        #expect(fractionalAnisotropy(eigenvalues: SIMD3(2e-9, 0, 0)) == 1)
    }
}

@Suite("Integer signal")
struct IntegerSignalTests {
    @Test("fitting an int16 signal as stored gives exactly the fit of its floats")
    func int16() throws {
        let model = try TensorModel(table: try standardTable())
        var rng = SplitMix64(state: 5)
        let voxels = 50, volumes = model.table.count
        let stored: [Int16] = (0..<(voxels * volumes)).map { _ in Int16(200 + rng.uniform() * 800) }
        let a = try model.fit(data: stored, volumeCount: volumes, voxelCount: voxels, threads: 2)
        let b = try model.fit(data: stored.map(Float.init), volumeCount: volumes, voxelCount: voxels, threads: 2)
        #expect(a.tensors == b.tensors && a.s0 == b.s0 && a.fitted == b.fitted && a.residuals == b.residuals)
        #expect(a.fitted.contains(true))
    }

    @Test("the looked-up logarithms of every 16-bit value, the floor and the extremes included, are the computed ones")
    func everyValue() throws {
        let model = try TensorModel(table: try standardTable())
        let volumes = model.table.count
        // Every int16 value appears in some voxel and volume: negative, zero and tiny values
        // (raised to the minimum signal) as well as the extremes.
        let voxels = (65_536 + volumes - 1) / volumes
        let stored: [Int16] = (0..<(voxels * volumes)).map { Int16(truncatingIfNeeded: $0 * 7919 + 32_768) }
        #expect(Set(stored).count == 65_536)
        let a = try model.fit(data: stored, volumeCount: volumes, voxelCount: voxels, threads: 3)
        let b = try model.fit(data: stored.map(Float.init), volumeCount: volumes, voxelCount: voxels, threads: 3)
        #expect(a.tensors == b.tensors && a.s0 == b.s0 && a.fitted == b.fitted && a.residuals == b.residuals)
    }
}

@Suite("Masked signal")
struct MaskedSignalTests {
    /// A phantom of `voxels` voxels, several chunks long, with a few voxels that cannot be fitted.
    static func phantom(voxels: Int, model: TensorModel) -> (floats: [Float], integers: [Int16]) {
        var rng = SplitMix64(state: 11)
        let volumes = model.table.count
        var integers: [Int16] = (0..<(voxels * volumes)).map { _ in Int16(300 + rng.uniform() * 700) }
        for k in 0..<volumes { integers[k * voxels + 4097] = 0 } // raised to the floor: fitted
        var floats = integers.map(Float.init)
        for k in 0..<volumes { floats[k * voxels + 5] = .nan } // not fitted
        return (floats, integers)
    }

    @Test("the chunked fit of a masked signal equals the grid fit, for any thread count, and frees the signal",
          arguments: [1, 2, 3])
    func chunkedFit(threads: Int) throws {
        let model = try TensorModel(table: try standardTable())
        let n = 2 * MaskedSignal.chunkVoxels + 123, volumes = model.table.count
        let (floats, integers) = Self.phantom(voxels: n, model: model)
        // Every other grid voxel is in the mask.
        let grid = 2 * n
        let voxels = (0..<n).map { Int32(2 * $0) }
        for (signal, expected) in [(MaskedSignal(float: floats, voxelCount: n), try model.fit(data: floats, volumeCount: volumes, voxelCount: n)),
                                   (MaskedSignal(int16: integers, voxelCount: n), try model.fit(data: integers, volumeCount: volumes, voxelCount: n))] {
            let fit = try model.fit(signal, voxels: voxels, gridVoxelCount: grid, threads: threads)
            #expect(expected.fitted[5] == (signal.storage == .int16) && expected.fitted[4097])
            #expect(expected.fitted.filter { $0 }.count >= n - 1)
            for j in [0, 5, 4095, 4096, 4097, n - 1] {
                #expect(fit.fitted[2 * j] == expected.fitted[j] && !fit.fitted[2 * j + 1])
                #expect(fit.s0[2 * j] == expected.s0[j])
            }
            #expect(fit.quality == expected.quality)
            let tensor = fit.chunk(of: .tensor, 0..<(6 * grid))
            for c in 0..<6 {
                #expect((0..<n).allSatisfy { tensor[c * grid + 2 * $0] == expected.tensors[6 * $0 + c] })
            }
            #expect((0..<n).allSatisfy { fit.map(.fractionalAnisotropy)[2 * $0] == Float(fractionalAnisotropy(eigenvalues: expected.eigenvalues(at: $0))) })
        }
    }

    @Test("a volume's sums are kept as it is stored, and removing volumes keeps them")
    func volumeSums() throws {
        let voxels: [Int32] = [3, 0, 2]
        let signal = MaskedSignal(voxelCount: 3, volumeCount: 2, storage: .float)
        #expect(!signal.isComplete)
        func store(_ k: Int, _ volume: [Float]) {
            volume.withUnsafeBufferPointer { values in voxels.withUnsafeBufferPointer { signal.store(volume: k, gathering: $0, from: values) } }
        }
        // Voxel 1 of the grid is not in the mask: its infinity is not counted.
        store(1, [10, .infinity, 30, 40])
        #expect(signal.values(volume: 1) == [40, 10, 30] && signal.nonFiniteFractions()[1] == 0)
        store(0, [1, 2, .nan, 4])
        #expect(signal.isComplete)
        #expect(signal.values(volume: 0).map(\.isNaN) == [false, false, true])
        #expect(signal.nonFiniteFractions() == [1.0 / 3, 0])
        let means = signal.meanSignals(isB0: [true, false])
        #expect(means.b0 == 2.5 && means.weighted == 80.0 / 3)
        let second = signal.removingVolumes([0])
        #expect(second.values(volume: 0) == [40, 10, 30] && second.meanSignals(isB0: [false]).weighted == 80.0 / 3)
    }
}
