// Detecting flipped gradient axes from the coherence of the fitted fibre directions.

/// The score of one candidate gradient orientation.
public struct GradientOrientationScore: Sendable, Equatable {
    /// Which axis was negated (``GradientAxisFlip/none`` = the table as given).
    public var flip: GradientAxisFlip
    /// Mean |V1(i) · V1(j)| over the anisotropic voxels i and the voxels j one step along
    /// ±V1(i); 1 = perfectly continuous fibres.
    public var coherence: Double
    /// Number of voxel pairs averaged.
    public var pairs: Int
}

/// The result of ``gradientOrientationCheck(data:volumeCount:shape:mask:table:method:faThreshold:threads:)``.
public struct GradientOrientationReport: Sendable, Equatable {
    /// One score per candidate, in the order none, x, y, z.
    public var scores: [GradientOrientationScore]
    /// The candidate with the highest coherence (the earlier in the order above on ties, so
    /// "as given" wins a tie).
    public var best: GradientAxisFlip
    /// Whether the table as given scored best; the caller should warn when it did not.
    public var asGivenIsBest: Bool { best == .none }
}

/// Checks the gradient table for a flipped axis by fibre coherence.
///
/// The tensor is fitted with the directions as given and with each axis negated. For each
/// candidate, every fitted voxel with FA > `faThreshold` steps to the voxel nearest to
/// i ± V1(i) (in voxel index space) and scores |V1(i) · V1(neighbour)| there, averaged over
/// all such pairs whose neighbour is fitted. With the right orientation V1 points along the
/// fibre, so the step stays on the same fibre and the directions agree; with a wrong sign
/// on one axis V1 is reflected, the step leaves the fibre wherever the fibre is oblique to
/// that axis, and coherence drops. This is the idea of Jeurissen et al. 2014, "Automated
/// correction of improperly rotated diffusion gradient orientations in diffusion weighted
/// MRI" (Med Image Anal 18:953), scored as in the fibre coherence index of Schilling et al.
/// 2019 (NeuroImage 185:1).
///
/// The directions must be in the image's voxel axes, since the step is taken in voxel
/// indices: convert FSL bvecs with ``GradientTable/fslToVoxel(linear:)``. Voxels are taken
/// as roughly isotropic (the step is not scaled by voxel size).
///
/// - Parameters:
///   - data: volume-major signal, `data[v * voxelCount + i]`, x fastest within a volume.
///   - volumeCount: number of volumes.
///   - shape: the grid.
///   - mask: voxels to fit (nil = all).
///   - table: directions in voxel axes.
///   - method: the fit method (default WLS).
///   - faThreshold: only voxels with FA above this are scored (default 0.3).
///   - threads: slabs for the fits.
/// - Returns: the scores and the best candidate.
/// - Throws: ``TensorModelError``, ``BrainMaskError/shapeMismatch(expected:actual:)``.
public func gradientOrientationCheck(data: [Float], volumeCount: Int, shape: (x: Int, y: Int, z: Int),
                                     mask: [Bool]? = nil, table: GradientTable, method: TensorFitMethod = .wls,
                                     faThreshold: Double = 0.3, threads: Int = 1) throws -> GradientOrientationReport {
    let (nx, ny, nz) = shape
    let expected = checkedProduct(volumeCount, nx, ny, nz) ?? -1
    guard nx >= 1, ny >= 1, nz >= 1, data.count == expected else {
        throw TensorModelError.dataSizeMismatch(expected: expected, actual: data.count)
    }
    let voxelCount = nx * ny * nz
    var scores = [GradientOrientationScore]()
    for flip in GradientAxisFlip.allCases {
        let model = try TensorModel(table: table.flipped(flip), method: method)
        let fit = try model.fit(data: data, volumeCount: volumeCount, voxelCount: voxelCount, mask: mask, threads: threads)
        let fa = fit.map(.fractionalAnisotropy, threads: threads)
        var sum = 0.0
        var pairs = 0
        // Sequential in voxel order: the sum does not depend on the thread count.
        for z in 0..<nz {
            for y in 0..<ny {
                for x in 0..<nx {
                    let i = (z * ny + y) * nx + x
                    guard fit.fitted[i], Double(fa[i]) > faThreshold else { continue }
                    let v = fit.principalEigenvector(at: i)
                    for direction in [1.0, -1.0] {
                        let tx = x + Int((direction * v.x).rounded())
                        let ty = y + Int((direction * v.y).rounded())
                        let tz = z + Int((direction * v.z).rounded())
                        guard (0..<nx).contains(tx), (0..<ny).contains(ty), (0..<nz).contains(tz) else { continue }
                        let j = (tz * ny + ty) * nx + tx
                        guard fit.fitted[j] else { continue }
                        sum += abs((v * fit.principalEigenvector(at: j)).sum())
                        pairs += 1
                    }
                }
            }
        }
        scores.append(GradientOrientationScore(flip: flip, coherence: pairs > 0 ? sum / Double(pairs) : 0, pairs: pairs))
    }
    var best = scores[0]
    for score in scores.dropFirst() where score.coherence > best.coherence { best = score }
    return GradientOrientationReport(scores: scores, best: best.flip)
}
