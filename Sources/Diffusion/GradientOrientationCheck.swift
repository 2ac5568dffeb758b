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
/// so the scores are bit-identical for any `threads`.
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

    /// The sign of each voxel axis under each candidate, in ``GradientAxisFlip/allCases`` order.
    static let signs: [SIMD3<Double>] = [SIMD3(1, 1, 1), SIMD3(-1, 1, 1), SIMD3(1, -1, 1), SIMD3(1, 1, -1)]

    @inline(__always)
    func isAnisotropic(_ j: Int) -> Bool { fitted[j] && Double(fa[j]) > faThreshold }

    @inline(__always)
    func vector(_ i: Int) -> SIMD3<Double> { SIMD3(Double(v1[3 * i]), Double(v1[3 * i + 1]), Double(v1[3 * i + 2])) }

    /// Writes the block's sums of agreements and its step counts to `sums` and `pairs`, one
    /// entry per candidate.
    func score(_ range: Range<Int>, sums: UnsafeMutableBufferPointer<Double>, pairs: UnsafeMutableBufferPointer<Int>) {
        let sliceSize = nx * ny
        let upper = SIMD3(Double(nx - 1), Double(ny - 1), Double(nz - 1))
        // Per-candidate accumulators for the block, in the lanes of none, x, y, z.
        var blockSums = SIMD4<Double>(), blockPairs = SIMD4<Int>()
        for i in range where isAnisotropic(i) {
            let z = i / sliceSize, y = (i - z * sliceSize) / nx, x = i - z * sliceSize - y * nx
            let position = SIMD3(Double(x), Double(y), Double(z))
            let v = vector(i)
            for candidate in 0..<4 {
                let step = v * Self.signs[candidate]
                for direction in 0..<2 {
                    // The point one voxel along ±V1, and the 8 voxels around it.
                    let p = direction == 0 ? position + step : position - step
                    // Off the grid: no information, not counted. (A corner past the last voxel
                    // can only be reached with weight 0, and is skipped below.)
                    guard p.x >= 0, p.y >= 0, p.z >= 0, p.x <= upper.x, p.y <= upper.y, p.z <= upper.z else { continue }
                    let x0 = Int(p.x), y0 = Int(p.y), z0 = Int(p.z)
                    let fx = p.x - Double(x0), fy = p.y - Double(y0), fz = p.z - Double(z0)
                    var agreement = 0.0
                    for corner in 0..<8 {
                        let cx = corner & 1, cy = (corner >> 1) & 1, cz = corner >> 2
                        let weight = (cx == 1 ? fx : 1 - fx) * (cy == 1 ? fy : 1 - fy) * (cz == 1 ? fz : 1 - fz)
                        guard weight > 0 else { continue }
                        let j = ((z0 + cz) * ny + (y0 + cy)) * nx + (x0 + cx)
                        // A step into tissue that is not anisotropic ends the fibre: it scores 0.
                        // The agreement is the same for every candidate: F u · F w = u · w.
                        if isAnisotropic(j) { agreement += weight * abs((v * vector(j)).sum()) }
                    }
                    blockSums[candidate] += agreement
                    blockPairs[candidate] += 1
                }
            }
        }
        for candidate in 0..<4 {
            sums[candidate] = blockSums[candidate]
            pairs[candidate] = blockPairs[candidate]
        }
    }
}
