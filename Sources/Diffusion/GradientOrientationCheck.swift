// Detecting flipped gradient axes from the coherence of the fitted fibre directions.

import SlabParallel

/// The score of one candidate gradient orientation.
public struct GradientOrientationScore: Sendable, Equatable {
    /// Which axis was negated (``GradientAxisFlip/none`` = the table as given).
    public var flip: GradientAxisFlip
    /// Mean over the anisotropic voxels i and the steps to i ± V1(i) of the interpolated
    /// agreement |V1(i) · V1(j)| (0 where j is not anisotropic); 1 = perfectly continuous fibres.
    public var coherence: Double
    /// Number of steps averaged.
    public var pairs: Int
}

/// The result of ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``.
public struct GradientOrientationReport: Sendable, Equatable {
    /// One score per candidate, in the order none, x, y, z.
    public var scores: [GradientOrientationScore]
    /// The candidate with the highest coherence (the earlier in the order above on ties, so
    /// "as given" wins a tie).
    public var best: GradientAxisFlip
    /// Whether the table as given scored best; the caller should warn when it did not.
    public var asGivenIsBest: Bool { best == .none }
}

/// An input of the orientation check whose length does not fit the grid.
public enum GradientOrientationCheckError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `input` has `actual` values where the grid needs `expected` (-1 when the shape has a
    /// dimension below 1 or the product of its dimensions overflows).
    case sizeMismatch(input: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .sizeMismatch(input, expected, actual):
            return "gradient orientation check: \(input) has \(actual) values, the grid needs \(expected)"
        }
    }
}

/// Checks the gradient table for a flipped axis by fibre coherence, from one tensor fit.
///
/// Four candidates are scored: the table as given and the table with each voxel axis
/// negated. For each candidate, every fitted voxel i with FA > `faThreshold` looks one voxel
/// along ±V1(i) and scores the agreement |V1(i) · V1(j)| of the voxels j there, trilinearly
/// weighted over the 8 voxels around the point i ± V1(i); a voxel j that is not anisotropic
/// (not fitted, or FA <= `faThreshold`) contributes 0, as the fibre would end there. Points
/// off the grid are not counted. The score is the mean over all such steps. With the right
/// orientation V1 points along the fibre, so the step stays in the bundle and the directions
/// agree; with a wrong sign on one axis V1 is reflected, the step leaves the bundle wherever it
/// is oblique to that axis, and the score drops. This is the idea of Jeurissen et al. 2014,
/// "Automated correction of improperly rotated diffusion gradient orientations in diffusion
/// weighted MRI" (Med Image Anal 18:953), who compare the mean length of whole-brain
/// streamlines (wrong orientations give streamlines that soon leave the white matter), reduced
/// to one step and scored like the fibre coherence index of Schilling et al. 2019
/// (NeuroImage 185:1).
///
/// **Why one fit suffices.** Negating gradient axis a (g' = F g, F = diag(±1)) negates the
/// design-matrix columns of the off-diagonal tensor elements that involve a: X' = X S with
/// S = diag(±1). The least-squares solution is then β' = S β: for OLS,
/// (S XᵀX S)⁻¹ S Xᵀ y = S (XᵀX)⁻¹ Xᵀ y; for WLS the predictions X'β' = Xβ, and so the weights,
/// are unchanged at every pass. So D' = F D F exactly, with the same eigenvalues and FA, and
/// V1' = F V1. The flipped candidates are therefore scored from the fit of the table as given
/// by negating one component of V1, instead of refitting the tensor three more times (the
/// test "D' = F D F and V1' = ±F V1 on noisy data" checks the identity on OLS and WLS fits;
/// on this code it holds to the last bit). The agreement |V1(i) · V1(j)| does not change
/// under the flip (F V1(i) · F V1(j) = V1(i) · V1(j)); only the point stepped to does.
///
/// Two choices differ from the simplest "nearest neighbour of i + V1, average |V1·V1'|", for
/// measured reasons:
/// - Interpolation instead of the nearest voxel: rounding to a voxel ignores any component of
///   V1 below 0.5, so a flip of an axis that the fibres cross at less than 30° is invisible
///   (on the curved-bundle test phantom, nearest-voxel steps gave exact ties between the
///   table and its z flip, and between the x and y flips).
/// - Zero for steps into isotropic tissue: a reflected smooth field is itself smooth (reflected
///   concentric arcs become hyperbolas), so direction agreement alone can favour a wrong
///   flip in a bundle that curves; on a block filled with concentric arcs the agreement-only
///   score picked the wrong axis (0.9972 vs 0.9918). Bundles of finite width, as in a brain,
///   are what make the right orientation stand out, and the check needs some of them in the
///   field.
///
/// The directions must be in the image's voxel axes, since the step is taken in voxel
/// indices: convert a fit in FSL's frame or in world axes with ``DirectionTransform``. Voxels
/// are taken as roughly isotropic (the step is not scaled by voxel size).
///
/// The grid is scored in fixed blocks of voxels whose partial sums are added in block order,
/// so the scores are bit-identical for any `threads`. Scoring every fitted voxel from one fit
/// costs less than refitting even a slab of central slices three more times would, so the
/// whole brain is scored (docs/benchmarks.md).
///
/// - Parameters:
///   - principalEigenvectors: V1 in voxel axes, 3 per voxel (x, y, z), as
///     ``TensorFit/principalEigenvectors``; the sign is irrelevant.
///   - fractionalAnisotropy: FA, one per voxel.
///   - fitted: whether each voxel was fitted; other voxels count as not anisotropic.
///   - shape: the grid; voxel i = (z * ny + y) * nx + x.
///   - faThreshold: only voxels with FA above this are scored or agree (default 0.3).
///   - threads: workers for the blocks of voxels.
/// - Returns: the scores and the best candidate.
/// - Throws: ``GradientOrientationCheckError/sizeMismatch(input:expected:actual:)``.
public func gradientOrientationCheck(principalEigenvectors: [Float], fractionalAnisotropy: [Float], fitted: [Bool],
                                     shape: (x: Int, y: Int, z: Int), faThreshold: Double = 0.3,
                                     threads: Int = 1) throws -> GradientOrientationReport {
    let (nx, ny, nz) = shape
    let voxelCount = nx >= 1 && ny >= 1 && nz >= 1 ? checkedProduct(nx, ny, nz) ?? -1 : -1
    let vectorCount = voxelCount >= 0 ? checkedProduct(3, voxelCount) ?? -1 : -1
    guard principalEigenvectors.count == vectorCount else {
        throw GradientOrientationCheckError.sizeMismatch(input: "principal eigenvectors (3 per voxel)",
                                                         expected: vectorCount, actual: principalEigenvectors.count)
    }
    guard fractionalAnisotropy.count == voxelCount else {
        throw GradientOrientationCheckError.sizeMismatch(input: "FA", expected: voxelCount,
                                                         actual: fractionalAnisotropy.count)
    }
    guard fitted.count == voxelCount else {
        throw GradientOrientationCheckError.sizeMismatch(input: "fitted voxels", expected: voxelCount, actual: fitted.count)
    }
    let candidates = GradientAxisFlip.allCases.count
    let blockSize = CoherenceScorer.blockSize
    let blocks = (voxelCount + blockSize - 1) / blockSize
    var sums = [Double](repeating: 0, count: candidates * blocks)
    var pairs = [Int](repeating: 0, count: candidates * blocks)
    principalEigenvectors.withUnsafeBufferPointer { v1 in
    fractionalAnisotropy.withUnsafeBufferPointer { fa in
    fitted.withUnsafeBufferPointer { ok in
    sums.withUnsafeMutableBufferPointer { s in
    pairs.withUnsafeMutableBufferPointer { p in
        let scorer = CoherenceScorer(v1: SharedReadBuffer(v1), fa: SharedReadBuffer(fa), fitted: SharedReadBuffer(ok),
                                     nx: nx, ny: ny, nz: nz, faThreshold: faThreshold)
        let sumsOut = SharedBuffer(s), pairsOut = SharedBuffer(p)
        forEachFixedBlock(count: voxelCount, blockSize: blockSize, threads: threads) { block, range in
            scorer.score(range, sums: sumsOut.slice(candidates * block, candidates),
                         pairs: pairsOut.slice(candidates * block, candidates))
        }
    }}}}}
    var scores = [GradientOrientationScore]()
    for (c, flip) in GradientAxisFlip.allCases.enumerated() {
        var sum = 0.0, count = 0
        // Block order: the same sum whatever the thread count.
        for b in 0..<blocks {
            sum += sums[candidates * b + c]
            count += pairs[candidates * b + c]
        }
        scores.append(GradientOrientationScore(flip: flip, coherence: count > 0 ? sum / Double(count) : 0, pairs: count))
    }
    var best = scores[0]
    for score in scores.dropFirst() where score.coherence > best.coherence { best = score }
    return GradientOrientationReport(scores: scores, best: best.flip)
}

/// Checks the gradient table for a flipped axis by fibre coherence, fitting the tensor once.
///
/// A convenience for data that has not been fitted yet: the tensor is fitted with the table
/// as given, and the four candidates are scored from that one fit by
/// ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``,
/// which explains the score and why the flipped tables need no fits of their own.
///
/// The directions must be in the image's voxel axes: convert FSL bvecs with
/// ``GradientTable/fslToVoxel(linear:)``.
///
/// - Parameters:
///   - data: volume-major signal, `data[v * voxelCount + i]`, x fastest within a volume.
///   - volumeCount: number of volumes.
///   - shape: the grid.
///   - mask: voxels to fit (nil = all).
///   - table: directions in voxel axes.
///   - method: the fit method (default WLS).
///   - faThreshold: only voxels with FA above this are scored (default 0.3).
///   - threads: slabs for the fit, workers for the scoring.
/// - Returns: the scores and the best candidate.
/// - Throws: ``TensorModelError``.
public func gradientOrientationCheck(data: [Float], volumeCount: Int, shape: (x: Int, y: Int, z: Int),
                                     mask: [Bool]? = nil, table: GradientTable, method: TensorFitMethod = .wls,
                                     faThreshold: Double = 0.3, threads: Int = 1) throws -> GradientOrientationReport {
    let (nx, ny, nz) = shape
    let expected = checkedProduct(volumeCount, nx, ny, nz) ?? -1
    guard nx >= 1, ny >= 1, nz >= 1, data.count == expected else {
        throw TensorModelError.dataSizeMismatch(expected: expected, actual: data.count)
    }
    let model = try TensorModel(table: table, method: method)
    let fit = try model.fit(data: data, volumeCount: volumeCount, voxelCount: nx * ny * nz, mask: mask, threads: threads)
    return try gradientOrientationCheck(principalEigenvectors: fit.principalEigenvectors,
                                        fractionalAnisotropy: fit.map(.fractionalAnisotropy, threads: threads),
                                        fitted: fit.fitted, shape: shape, faThreshold: faThreshold, threads: threads)
}

/// The per-voxel scoring of ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``
/// over views of its inputs, shared by the workers.
struct CoherenceScorer: Sendable {
    let v1: SharedReadBuffer<Float>
    let fa: SharedReadBuffer<Float>
    let fitted: SharedReadBuffer<Bool>
    let nx: Int, ny: Int, nz: Int
    let faThreshold: Double

    /// Voxels per block of partial sums: a few slices' worth of work per block keeps two
    /// workers balanced on a brain, and the blocks' sums are few to add.
    static let blockSize = 8192

    @inline(__always)
    func isAnisotropic(_ j: Int) -> Bool { fitted[j] && Double(fa[j]) > faThreshold }

    /// |v · V1(j)|, or 0 when voxel j is not anisotropic: a step into tissue that is not
    /// anisotropic ends the fibre. It is the same for every candidate (F u · F w = u · w).
    @inline(__always)
    func agreement(_ vx: Double, _ vy: Double, _ vz: Double, _ j: Int) -> Double {
        guard isAnisotropic(j) else { return 0 }
        return abs(vx * Double(v1[3 * j]) + vy * Double(v1[3 * j + 1]) + vz * Double(v1[3 * j + 2]))
    }

    /// Writes the block's sums of agreements and its step counts to `sums` and `pairs`, one
    /// entry per candidate.
    ///
    /// Every step of voxel (x, y, z) lands within one voxel of it, so its 8 corners lie in the
    /// 3 x 3 x 3 neighbourhood (a corner two voxels away is reached only with weight 0, and
    /// skipped). The agreements |V1(i) · V1(j)| of that neighbourhood are computed once per
    /// voxel (0 for a voxel that is not anisotropic or off the grid) and shared by the 8 steps
    /// of the 4 candidates, which would otherwise compute up to 64; the sums are the same, bit
    /// for bit, as computing each corner's agreement where it is used. The per-candidate sums
    /// are scalars and the 8 corners unrolled, which is faster than a corner-by-corner loop in
    /// SIMD3 arithmetic with the sums in a SIMD4 indexed by candidate (docs/benchmarks.md).
    func score(_ range: Range<Int>, sums: UnsafeMutableBufferPointer<Double>, pairs: UnsafeMutableBufferPointer<Int>) {
        let sliceSize = nx * ny
        // Per-candidate accumulators for the block (none, x, y, z).
        var sum0 = 0.0, sum1 = 0.0, sum2 = 0.0, sum3 = 0.0
        var pairs0 = 0, pairs1 = 0, pairs2 = 0, pairs3 = 0
        // The neighbourhood's agreements, at (dz + 1) * 16 + (dy + 1) * 4 + (dx + 1) for the
        // voxel at offset (dx, dy, dz) of -1...1; offset 2 (reached only with weight 0) holds 0.
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 64) { neighbourhood in
            let agreements = neighbourhood.baseAddress!
            agreements.initialize(repeating: 0, count: 64)
            for i in range where isAnisotropic(i) {
                let z = i / sliceSize, y = (i - z * sliceSize) / nx, x = i - z * sliceSize - y * nx
                let vx = Double(v1[3 * i]), vy = Double(v1[3 * i + 1]), vz = Double(v1[3 * i + 2])
                // Unit vectors (the fit's) step within the neighbourhood; anything else (a
                // component above 1, or NaN) takes the agreement of each corner where it is used.
                let local = abs(vx) <= 1 && abs(vy) <= 1 && abs(vz) <= 1
                if local {
                    for dz in -1...1 {
                        for dy in -1...1 {
                            for dx in -1...1 {
                                let xx = x + dx, yy = y + dy, zz = z + dz
                                let inGrid = xx >= 0 && xx < nx && yy >= 0 && yy < ny && zz >= 0 && zz < nz
                                agreements[(dz + 1) * 16 + (dy + 1) * 4 + dx + 1]
                                    = inGrid ? agreement(vx, vy, vz, (zz * ny + yy) * nx + xx) : 0
                            }
                        }
                    }
                }
                /// Adds the step to (x, y, z) + (sx, sy, sz) to a candidate's sums.
                @inline(__always)
                func step(_ sx: Double, _ sy: Double, _ sz: Double, _ sum: inout Double, _ count: inout Int) {
                    // The point one voxel along ±V1, and the 8 voxels around it.
                    let px = Double(x) + sx, py = Double(y) + sy, pz = Double(z) + sz
                    // Off the grid: no information, not counted.
                    guard px >= 0, py >= 0, pz >= 0, px <= Double(nx - 1), py <= Double(ny - 1),
                          pz <= Double(nz - 1) else { return }
                    let x0 = Int(px), y0 = Int(py), z0 = Int(pz)
                    let fx = px - Double(x0), fy = py - Double(y0), fz = pz - Double(z0)
                    let gx = 1 - fx, gy = 1 - fy, gz = 1 - fz
                    // Corner (cx, cy, cz) has weight wx * wy * wz; a corner of weight 0 is
                    // skipped, as it may lie past the neighbourhood or the grid.
                    var total = 0.0
                    if local {
                        let base = (z0 - z + 1) * 16 + (y0 - y + 1) * 4 + (x0 - x + 1)
                        @inline(__always)
                        func corner(_ weight: Double, _ offset: Int) {
                            if weight > 0 { total += weight * agreements[base + offset] }
                        }
                        corner(gx * gy * gz, 0); corner(fx * gy * gz, 1); corner(gx * fy * gz, 4); corner(fx * fy * gz, 5)
                        corner(gx * gy * fz, 16); corner(fx * gy * fz, 17); corner(gx * fy * fz, 20); corner(fx * fy * fz, 21)
                    } else {
                        @inline(__always)
                        func corner(_ weight: Double, _ cx: Int, _ cy: Int, _ cz: Int) {
                            if weight > 0 { total += weight * agreement(vx, vy, vz, ((z0 + cz) * ny + y0 + cy) * nx + x0 + cx) }
                        }
                        corner(gx * gy * gz, 0, 0, 0); corner(fx * gy * gz, 1, 0, 0)
                        corner(gx * fy * gz, 0, 1, 0); corner(fx * fy * gz, 1, 1, 0)
                        corner(gx * gy * fz, 0, 0, 1); corner(fx * gy * fz, 1, 0, 1)
                        corner(gx * fy * fz, 0, 1, 1); corner(fx * fy * fz, 1, 1, 1)
                    }
                    sum += total
                    count += 1
                }
                // Each candidate's V1 (one axis negated), forwards then backwards.
                step(vx, vy, vz, &sum0, &pairs0); step(-vx, -vy, -vz, &sum0, &pairs0)
                step(-vx, vy, vz, &sum1, &pairs1); step(vx, -vy, -vz, &sum1, &pairs1)
                step(vx, -vy, vz, &sum2, &pairs2); step(-vx, vy, -vz, &sum2, &pairs2)
                step(vx, vy, -vz, &sum3, &pairs3); step(-vx, -vy, vz, &sum3, &pairs3)
            }
        }
        sums[0] = sum0; sums[1] = sum1; sums[2] = sum2; sums[3] = sum3
        pairs[0] = pairs0; pairs[1] = pairs1; pairs[2] = pairs2; pairs[3] = pairs3
    }
}
