import TestSupport
import Foundation
import Geometry
import Testing
@testable import Diffusion

@Suite("Brain mask")
struct BrainMaskTests {
    @Test("ellipsoid head with a dark ventricle and a detached noise blob")
    func ellipsoid() throws {
        let shape = (x: 40, y: 36, z: 30)
        var rng = SplitMix64(state: 4)
        var image = [Float](repeating: 0, count: shape.x * shape.y * shape.z)
        var truth = [Bool](repeating: false, count: image.count)
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                for x in 0..<shape.x {
                    let i = (z * shape.y + y) * shape.x + x
                    let dx = (Double(x) - 19.5) / 15, dy = (Double(y) - 17.5) / 13, dz = (Double(z) - 14.5) / 11
                    let r2 = dx * dx + dy * dy + dz * dz
                    let vx = (Double(x) - 19.5) / 4, vy = (Double(y) - 17.5) / 3, vz = (Double(z) - 14.5) / 3
                    var value = abs(30 * rng.normal())           // background: Rayleigh-like noise
                    if r2 <= 1 {
                        truth[i] = true
                        value = 900 + 60 * rng.normal()
                        if vx * vx + vy * vy + vz * vz <= 1 { value = 120 + 20 * rng.normal() } // CSF, dark in b=0? (kept dark)
                    }
                    if x >= 1 && x <= 3 && y >= 1 && y <= 3 && z >= 1 && z <= 3 { value = 1000 } // detached blob
                    image[i] = Float(value)
                }
            }
        }
        image[5] = .nan
        let mask = try brainMask(meanB0: image, shape: shape, threads: 2)
        var intersection = 0, sizeMask = 0, sizeTruth = 0
        for i in 0..<mask.count {
            if mask[i] { sizeMask += 1 }
            if truth[i] { sizeTruth += 1 }
            if mask[i] && truth[i] { intersection += 1 }
        }
        let dice = 2 * Double(intersection) / Double(sizeMask + sizeTruth)
        #expect(dice > 0.97)
        #expect(!mask[(2 * shape.y + 2) * shape.x + 2], "the detached blob is dropped")
        #expect(mask[(14 * shape.y + 17) * shape.x + 19], "the ventricle is filled")
        #expect(try brainMask(meanB0: image, shape: shape, threads: 1) == mask)
        #expect(try brainMask(meanB0: image, shape: shape, threads: 5) == mask)
    }

    @Test("shape and radius errors")
    func errors() {
        #expect(throws: BrainMaskError.shapeMismatch(expected: 8, actual: 7)) {
            try brainMask(meanB0: [Float](repeating: 1, count: 7), shape: (2, 2, 2))
        }
        #expect(throws: BrainMaskError.invalidRadius(4)) {
            try brainMask(meanB0: [Float](repeating: 1, count: 8), shape: (2, 2, 2), medianRadius: 4)
        }
    }

    @Test("median selection and Otsu threshold on known inputs")
    func helpers() {
        var values: [Float] = [5, 1, 4, 2, 3, 9, 0]
        let median = values.withUnsafeMutableBufferPointer { select($0.baseAddress!, count: 7, k: 3) }
        #expect(median == 3)
        var repeated: [Float] = [2, 2, 2, 1, 2]
        #expect(repeated.withUnsafeMutableBufferPointer { select($0.baseAddress!, count: 5, k: 0) } == 1)
        let bimodal = [Float](repeating: 10, count: 100) + [Float](repeating: 90, count: 50)
        let t = otsuThreshold(bimodal)
        #expect(t > 10 && t < 90)
    }
}

@Suite("Gradient orientation check")
struct OrientationCheckTests {
    /// Fibres fanning out radially from a point just outside a corner of a 12³ block: straight
    /// along each fibre, changing direction across fibres, oblique to every axis (so each
    /// axis flip changes where the step along V1 lands).
    func phantom(table: GradientTable) -> (data: [Float], shape: (x: Int, y: Int, z: Int)) {
        let shape = (x: 12, y: 12, z: 12)
        let centre = SIMD3<Double>(-2, -1.5, -2.5)
        var signals = [[Double]]()
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                for x in 0..<shape.x {
                    let direction = SIMD3(Double(x), Double(y), Double(z)) - centre
                    let tensor = SyntheticTensor(eigenvalues: SIMD3(1.7e-3, 0.3e-3, 0.3e-3), v1: direction)
                    signals.append(tensor.signal(table, s0: 1000))
                }
            }
        }
        return (volumeMajor(signals, volumes: table.count), shape)
    }

    @Test("the table as given wins on consistent data")
    func asGiven() throws {
        let table = try standardTable()
        let (data, shape) = phantom(table: table)
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table, threads: 2)
        #expect(report.best == .none)
        #expect(report.asGivenIsBest)
        #expect(report.scores.map(\.flip) == [.none, .x, .y, .z])
        #expect(report.scores[0].coherence > 0.99)
        // Measured: 0.99860 as given, 0.99633 / 0.99648 / 0.99620 for x / y / z flips (a
        // smooth fan changes little over one voxel; the curved bundle below separates more).
        for score in report.scores.dropFirst() { #expect(score.coherence < report.scores[0].coherence - 0.001) }
    }

    @Test("data acquired with a flipped axis: that flip wins", arguments: [GradientAxisFlip.x, .y, .z])
    func flipped(axis: GradientAxisFlip) throws {
        let table = try standardTable()
        let (data, shape) = phantom(table: table.flipped(axis))
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table)
        #expect(report.best == axis)
        #expect(!report.asGivenIsBest)
    }

    @Test("noisy data (Rician, SNR 20): the flip used to acquire it still wins", arguments: [GradientAxisFlip.none, .x])
    func noisy(axis: GradientAxisFlip) throws {
        let table = try standardTable()
        var (data, shape) = phantom(table: table.flipped(axis))
        var rng = SplitMix64(state: 21)
        let sigma = 1000.0 / 20
        for k in data.indices {
            let re = Double(data[k]) + sigma * rng.normal(), im = sigma * rng.normal()
            data[k] = Float((re * re + im * im).squareRoot())
        }
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table)
        #expect(report.best == axis)
    }

    /// A curved bundle: half of a torus (tube radius 2.5, ring radius 6, in a plane oblique to
    /// all axes) in isotropic tissue, fibres along the ring.
    func arcBundle(table: GradientTable) -> (data: [Float], shape: (x: Int, y: Int, z: Int)) {
        let shape = (x: 18, y: 18, z: 18)
        let centre = SIMD3<Double>(7.2, 9.1, 8.3)
        var normal = SIMD3<Double>(0.3, 0.4, 1)
        normal /= (normal * normal).sum().squareRoot()
        var signals = [[Double]]()
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                for x in 0..<shape.x {
                    let p = SIMD3(Double(x), Double(y), Double(z)) - centre
                    let height = (p * normal).sum()
                    let inPlane = p - height * normal
                    let rho = (inPlane * inPlane).sum().squareRoot()
                    let inBundle = (rho - 6) * (rho - 6) + height * height <= 2.5 * 2.5
                        && (inPlane * SIMD3(1, -0.5, 0.2)).sum() >= 0
                    let tensor = inBundle
                        ? SyntheticTensor(eigenvalues: SIMD3(1.7e-3, 0.3e-3, 0.3e-3), v1: cross(normal, inPlane))
                        : SyntheticTensor(eigenvalues: SIMD3(0.8e-3, 0.8e-3, 0.8e-3), v1: SIMD3(1, 0, 0))
                    signals.append(tensor.signal(table, s0: 1000))
                }
            }
        }
        return (volumeMajor(signals, volumes: table.count), shape)
    }

    @Test("curved bundle in isotropic tissue: the flip the data was made with wins",
          arguments: [GradientAxisFlip.none, .x, .y, .z])
    func curvedBundle(axis: GradientAxisFlip) throws {
        let table = try standardTable()
        let (data, shape) = arcBundle(table: table.flipped(axis))
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table)
        // Measured (as the data's own flip / the others): 0.804 / 0.756-0.769.
        #expect(report.best == axis)
    }

    /// The score as the check first computed it, sequentially in voxel order, corner by
    /// corner, for one V1 field in voxel axes (3 per voxel).
    func referenceScore(v1: [Float], fa: [Float], fitted: [Bool], shape: (x: Int, y: Int, z: Int),
                        faThreshold: Double = 0.3) -> GradientOrientationScore {
        let (nx, ny, nz) = shape
        func vector(_ i: Int) -> SIMD3<Double> { SIMD3(Double(v1[3 * i]), Double(v1[3 * i + 1]), Double(v1[3 * i + 2])) }
        var sum = 0.0
        var pairs = 0
        for z in 0..<nz {
            for y in 0..<ny {
                for x in 0..<nx {
                    let i = (z * ny + y) * nx + x
                    guard fitted[i], Double(fa[i]) > faThreshold else { continue }
                    let v = vector(i)
                    for direction in [1.0, -1.0] {
                        let px = Double(x) + direction * v.x, py = Double(y) + direction * v.y
                        let pz = Double(z) + direction * v.z
                        guard px >= 0, py >= 0, pz >= 0, px <= Double(nx - 1), py <= Double(ny - 1),
                              pz <= Double(nz - 1) else { continue }
                        let x0 = Int(px), y0 = Int(py), z0 = Int(pz)
                        let fx = px - Double(x0), fy = py - Double(y0), fz = pz - Double(z0)
                        var agreement = 0.0
                        for corner in 0..<8 {
                            let cx = corner & 1, cy = (corner >> 1) & 1, cz = corner >> 2
                            let weight = (cx == 1 ? fx : 1 - fx) * (cy == 1 ? fy : 1 - fy) * (cz == 1 ? fz : 1 - fz)
                            guard weight > 0 else { continue }
                            let j = ((z0 + cz) * ny + (y0 + cy)) * nx + (x0 + cx)
                            if fitted[j] && Double(fa[j]) > faThreshold {
                                agreement += weight * abs((v * vector(j)).sum())
                            }
                        }
                        sum += agreement
                        pairs += 1
                    }
                }
            }
        }
        return GradientOrientationScore(flip: .none, coherence: pairs > 0 ? sum / Double(pairs) : 0, pairs: pairs)
    }

    /// The check as it was before it scored the flips from one fit: the tensor refitted with
    /// each flipped table, and each fit's own V1 scored. Kept here as the reference the
    /// one-fit check must reproduce.
    func refitReference(data: [Float], volumeCount: Int, shape: (x: Int, y: Int, z: Int),
                        table: GradientTable) throws -> GradientOrientationReport {
        var scores = [GradientOrientationScore]()
        for flip in GradientAxisFlip.allCases {
            let fit = try TensorModel(table: table.flipped(flip))
                .fit(data: data, volumeCount: volumeCount, voxelCount: shape.x * shape.y * shape.z)
            var score = referenceScore(v1: fit.principalEigenvectors, fa: fit.map(.fractionalAnisotropy),
                                       fitted: fit.fitted, shape: shape)
            score.flip = flip
            scores.append(score)
        }
        var best = scores[0]
        for score in scores.dropFirst() where score.coherence > best.coherence { best = score }
        return GradientOrientationReport(scores: scores, best: best.flip)
    }

    @Test("one fit gives the report of four refits, for any thread count",
          arguments: ["fan", "noisy fan", "curved bundle"], [GradientAxisFlip.none, .x, .y, .z])
    func matchesRefits(phantomName: String, axis: GradientAxisFlip) throws {
        let table = try standardTable()
        var (data, shape) = phantomName == "curved bundle" ? arcBundle(table: table.flipped(axis))
            : phantom(table: table.flipped(axis))
        if phantomName == "noisy fan" {
            var rng = SplitMix64(state: 21)
            for k in data.indices {
                let re = Double(data[k]) + 50 * rng.normal(), im = 50 * rng.normal()
                data[k] = Float((re * re + im * im).squareRoot())
            }
        }
        let reference = try refitReference(data: data, volumeCount: table.count, shape: shape, table: table)
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table)
        #expect(report.best == reference.best)
        #expect(report.scores.map(\.flip) == reference.scores.map(\.flip))
        #expect(report.scores.map(\.pairs) == reference.scores.map(\.pairs))
        for (score, expected) in zip(report.scores, reference.scores) {
            // Only the order of the additions differs (blocks of voxels; measured: at most 1.1e-16).
            #expect(abs(score.coherence - expected.coherence) <= 1e-12, "\(score.flip): \(score.coherence) vs \(expected.coherence)")
        }
        #expect(report.scores[0].pairs > 500)
        // The scores are the same bits whatever the thread count.
        for threads in [2, 7] {
            #expect(try gradientOrientationCheck(data: data, volumeCount: table.count, shape: shape, table: table,
                                                 threads: threads) == report)
        }
    }

    @Test("any field: axis-aligned, short and long vectors score as corner by corner, for any thread count")
    func anyField() throws {
        // Random vectors of length 0.3 to 2.5 (steps up to 2.5 voxels), axis-aligned unit
        // vectors (steps landing exactly on voxels, whose far corners have weight 0), random FA
        // and fitted flags, on a grid that is not a multiple of the block size.
        let shape = (x: 31, y: 23, z: 17)
        let n = shape.x * shape.y * shape.z
        var rng = SplitMix64(state: 5)
        var v1 = [Float](), fa = [Float](), fitted = [Bool]()
        for _ in 0..<n {
            let kind = rng.next() % 4
            var v = rng.unitVector()
            if kind == 0 { v = [SIMD3<Double>(1, 0, 0), SIMD3(0, -1, 0), SIMD3(0, 0, 1)][Int(rng.next() % 3)] }
            if kind == 1 { v *= 0.3 + 2.2 * rng.uniform() }
            v1 += [Float(v.x), Float(v.y), Float(v.z)]
            fa.append(Float(rng.uniform()))
            fitted.append(rng.next() % 8 != 0)
        }
        let report = try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa, fitted: fitted,
                                                  shape: shape, faThreshold: 0.2)
        let signs: [SIMD3<Float>] = [SIMD3(1, 1, 1), SIMD3(-1, 1, 1), SIMD3(1, -1, 1), SIMD3(1, 1, -1)]
        for (candidate, score) in report.scores.enumerated() {
            let flipped = (0..<n).flatMap { i in (0..<3).map { v1[3 * i + $0] * signs[candidate][$0] } }
            let expected = referenceScore(v1: flipped, fa: fa, fitted: fitted, shape: shape, faThreshold: 0.2)
            #expect(score.pairs == expected.pairs)
            // Only the grouping of the additions differs (two blocks of voxels; measured: at
            // most 1.3e-15).
            #expect(abs(score.coherence - expected.coherence) <= 1e-13, "\(score.flip)")
        }
        #expect(report.scores[0].pairs > 5000)
        for threads in [2, 3, 16] {
            #expect(try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa, fitted: fitted,
                                                 shape: shape, faThreshold: 0.2, threads: threads) == report)
        }
    }

    @Test("a field in voxel axes: thresholds, unfitted voxels and sizes")
    func field() throws {
        // A straight bundle along x through the middle row of a 6x3x3 grid, FA 0.8; the
        // voxel at x = 3 is not fitted, so the steps into it score 0.
        let shape = (x: 6, y: 3, z: 3)
        let n = 54
        var v1 = [Float](repeating: 0, count: 3 * n), fa = [Float](repeating: 0.1, count: n)
        var fitted = [Bool](repeating: true, count: n)
        for x in 0..<6 {
            let i = (1 * 3 + 1) * 6 + x
            v1[3 * i] = 1
            fa[i] = 0.8
        }
        fitted[(1 * 3 + 1) * 6 + 3] = false
        let report = try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa, fitted: fitted,
                                                  shape: shape, threads: 3)
        // Scored voxels x = 0, 1, 2, 4, 5; the steps off the grid (from 0 and from 5) are not
        // counted, which leaves 8, of which the 2 into x = 3 score 0 and the others 1.
        // Flipping an axis perpendicular to V1, or V1's own axis, leaves a straight bundle
        // as it is: all four candidates tie, and "as given" wins the tie.
        #expect(report.scores.allSatisfy { $0.pairs == 8 })
        #expect(report.scores.allSatisfy { abs($0.coherence - 6.0 / 8) < 1e-15 })
        #expect(report.best == .none)
        // Above the threshold only: FA equal to it is not anisotropic.
        let lowered = try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa.map { $0 == 0.8 ? 0.5 : $0 },
                                                   fitted: fitted, shape: shape, faThreshold: 0.5)
        #expect(lowered.scores.allSatisfy { $0.pairs == 0 && $0.coherence == 0 })
        #expect(throws: GradientOrientationCheckError.sizeMismatch(input: "principal eigenvectors (3 per voxel)",
                                                                   expected: 162, actual: 54)) {
            try gradientOrientationCheck(principalEigenvectors: fa, fractionalAnisotropy: fa, fitted: fitted, shape: shape)
        }
        #expect(throws: GradientOrientationCheckError.sizeMismatch(input: "fitted voxels", expected: 54, actual: 53)) {
            try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa,
                                         fitted: Array(fitted.dropLast()), shape: shape)
        }
        #expect(throws: GradientOrientationCheckError.sizeMismatch(input: "principal eigenvectors (3 per voxel)",
                                                                   expected: -1, actual: 162)) {
            try gradientOrientationCheck(principalEigenvectors: v1, fractionalAnisotropy: fa, fitted: fitted, shape: (6, 0, 3))
        }
    }

    @Test("isotropic data has nothing to score")
    func isotropic() throws {
        let table = try standardTable()
        let signal = SyntheticTensor(eigenvalues: SIMD3(1e-3, 1e-3, 1e-3), v1: SIMD3(1, 0, 0)).signal(table, s0: 100)
        let data = volumeMajor(Array(repeating: signal, count: 27), volumes: table.count)
        let report = try gradientOrientationCheck(data: data, volumeCount: table.count, shape: (3, 3, 3), table: table)
        #expect(report.scores.allSatisfy { $0.pairs == 0 && $0.coherence == 0 })
        #expect(report.best == .none)
    }
}

@Suite("Tensor fit under a flipped gradient axis")
struct FlippedAxisFitTests {
    /// Negating gradient axis a (g' = F g, F = diag(±1)) negates the design-matrix columns of
    /// the off-diagonal elements that involve a: X' = X S with S = diag(s) of ±1. The
    /// least-squares solution is then β' = S β (OLS: (SXᵀXS)⁻¹SXᵀy = S(XᵀX)⁻¹Xᵀy; WLS: the
    /// predictions X'β' = Xβ and so the weights are unchanged), i.e. D' = F D F, V1' = ±F V1,
    /// with the same eigenvalues. The orientation check scores its four candidates from one
    /// fit on the strength of this identity; here it is checked on noisy fits.
    @Test("D' = F D F and V1' = ±F V1 on noisy data",
          arguments: [(TensorFitMethod.ols, 1), (.wls, 1), (.wls, 3)])
    func identity(method: TensorFitMethod, iterations: Int) throws {
        // Two shells on distinct directions, 4 b=0 volumes.
        let directions = spiralDirections(60)
        let table = try GradientTable(bValues: Array(repeating: 0, count: 4) + Array(repeating: 1000, count: 30)
                                          + Array(repeating: 2000, count: 30),
                                      directions: Array(repeating: .zero, count: 4) + directions)
        // Random prolate tensors at random orientations (distinct λ1, so V1 is defined), with
        // Rician noise at SNR 25.
        var rng = SplitMix64(state: 77)
        let voxelCount = 500
        var signals = [[Double]]()
        for _ in 0..<voxelCount {
            let l1 = 1.2e-3 + 0.8e-3 * rng.uniform(), l2 = 0.3e-3 + 0.4e-3 * rng.uniform()
            let tensor = SyntheticTensor(eigenvalues: SIMD3(l1, l2, 0.8 * l2), v1: rng.unitVector(), roll: rng.uniform())
            signals.append(tensor.signal(table, s0: 1000).map { s in
                let re = s + 40 * rng.normal(), im = 40 * rng.normal()
                return (re * re + im * im).squareRoot()
            })
        }
        let data = volumeMajor(signals, volumes: table.count)
        let given = try TensorModel(table: table, method: method, iterations: iterations)
            .fit(data: data, volumeCount: table.count, voxelCount: voxelCount)
        #expect(given.fitted.allSatisfy { $0 })
        // Which of D11 D12 D13 D22 D23 D33 change sign, and the diagonal of F.
        let cases: [(GradientAxisFlip, [Float], SIMD3<Double>)] = [
            (.x, [1, -1, -1, 1, 1, 1], SIMD3(-1, 1, 1)),
            (.y, [1, -1, 1, 1, -1, 1], SIMD3(1, -1, 1)),
            (.z, [1, 1, -1, 1, -1, 1], SIMD3(1, 1, -1)),
        ]
        for (flip, signs, f) in cases {
            let flipped = try TensorModel(table: table.flipped(flip), method: method, iterations: iterations)
                .fit(data: data, volumeCount: table.count, voxelCount: voxelCount)
            var largestChange: Float = 0
            for i in 0..<voxelCount {
                #expect(flipped.fitted[i])
                let d = given.tensors[(6 * i)..<(6 * i + 6)], dFlipped = flipped.tensors[(6 * i)..<(6 * i + 6)]
                let norm = d.map(abs).max()!
                for k in 0..<6 {
                    // Tolerance: 16 single-precision ulps of the largest element (measured: equal).
                    #expect(abs(dFlipped[6 * i + k] - signs[k] * d[6 * i + k]) <= 1e-6 * norm,
                            "\(method) \(flip) voxel \(i) element \(k): \(dFlipped[6 * i + k]) vs \(signs[k] * d[6 * i + k])")
                    largestChange = max(largestChange, abs(dFlipped[6 * i + k] - d[6 * i + k]) / norm)
                }
                let v = given.principalEigenvector(at: i) * f, vFlipped = flipped.principalEigenvector(at: i)
                // ±: the fit fixes the sign so that the largest component is positive.
                let minus = vFlipped - v, plus = vFlipped + v
                let difference = min(max(abs(minus.x), abs(minus.y), abs(minus.z)), max(abs(plus.x), abs(plus.y), abs(plus.z)))
                #expect(difference <= 1e-5, "\(method) \(flip) voxel \(i): V1 \(vFlipped) vs F V1 \(v)")
                for k in 0..<3 {
                    #expect(abs(flipped.eigenvalues[3 * i + k] - given.eigenvalues[3 * i + k]) <= 1e-6 * norm)
                }
            }
            // The flip does change the fit (oblique tensors have off-diagonal elements), so the
            // comparisons above are not between equal things.
            #expect(largestChange > 0.1, "\(flip)")
        }
    }
}

@Suite("Median filter")
struct MedianFilterTests {
    @Test("fast interior path and border path match a sort-based median", arguments: [1, 2])
    func matchesNaive(radius: Int) {
        let shape = (x: 9, y: 7, z: 6)
        var rng = SplitMix64(state: UInt64(radius))
        // Few distinct values, so ties are common.
        let image = (0..<(shape.x * shape.y * shape.z)).map { _ in Float(rng.next() % 13) }
        let filtered = medianFilter(image, shape: shape, radius: radius, threads: 3)
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                for x in 0..<shape.x {
                    var window = [Float]()
                    for zz in max(0, z - radius)...min(shape.z - 1, z + radius) {
                        for yy in max(0, y - radius)...min(shape.y - 1, y + radius) {
                            for xx in max(0, x - radius)...min(shape.x - 1, x + radius) {
                                window.append(image[(zz * shape.y + yy) * shape.x + xx])
                            }
                        }
                    }
                    window.sort()
                    #expect(filtered[(z * shape.y + y) * shape.x + x] == window[window.count / 2])
                }
            }
        }
    }
}

@Suite("Mean b=0")
struct MeanB0Tests {
    @Test("averages only the b=0 volumes")
    func mean() throws {
        let table = try GradientTable(bValues: [0, 1000, 5, 1000, 1000, 1000, 1000, 1000],
                                      directions: [.zero] + [SIMD3(1, 0, 0)] + [.zero] + spiralDirections(5))
        // Two voxels; value = 10 * volume + voxel.
        let data = (0..<8).flatMap { v in (0..<2).map { Float(10 * v + $0) } }
        #expect(try meanB0(data: data, table: table, voxelCount: 2, threads: 2) == [10, 11])
        #expect(throws: TensorModelError.dataSizeMismatch(expected: 16, actual: 15)) {
            try meanB0(data: Array(data.dropLast()), table: table, voxelCount: 2)
        }
    }
}
