/// Nearest-neighbour resampling of a label grid onto another grid: each target voxel takes the
/// label of the source voxel nearest to its centre in world coordinates, or 0 when that voxel
/// lies outside the source grid.
///
/// For target voxel (i, j, k), `p = sourceAffine⁻¹(targetAffine(i, j, k))` (the two maps applied
/// in turn, see ``Affine/apply(_:)`` and ``Affine/inverse``), and the source voxel is
/// `(round(p₀), round(p₁), round(p₂))`, halves rounded away from zero. Labels are never mixed,
/// so the result holds only labels of the source (and 0).
///
/// - Parameters:
///   - labels: the source labels, x fastest (`labels[i + nx (j + ny k)]`), one per voxel of
///     `sourceShape`.
///   - sourceShape: the source grid's voxel counts along i, j, k.
///   - sourceAffine: the source grid's voxel-to-world affine.
///   - targetShape: the target grid's voxel counts.
///   - targetAffine: the target grid's voxel-to-world affine.
/// - Returns: one label per target voxel, x fastest; nil when `sourceAffine` is singular.
public func resampleNearest(_ labels: [Int32], sourceShape: (x: Int, y: Int, z: Int), sourceAffine: Affine,
                            targetShape: (x: Int, y: Int, z: Int), targetAffine: Affine) -> [Int32]? {
    let s = sourceShape, t = targetShape
    precondition(labels.count == s.x * s.y * s.z, "one label per source voxel")
    guard let worldToSource = sourceAffine.inverse else { return nil }
    let limit = SIMD3(Double(s.x), Double(s.y), Double(s.z))
    var output = [Int32](repeating: 0, count: t.x * t.y * t.z)
    for k in 0..<t.z {
        for j in 0..<t.y {
            for i in 0..<t.x {
                let world = targetAffine.apply(SIMD3(Double(i), Double(j), Double(k)))
                let nearest = worldToSource.apply(world).rounded(.toNearestOrAwayFromZero)
                // Compared as doubles, so far-away or non-finite points are skipped, not trapped.
                guard all(nearest .>= 0 .& nearest .< limit) else { continue }
                let a = Int(nearest.x), b = Int(nearest.y), c = Int(nearest.z)
                output[i + t.x * (j + t.y * k)] = labels[a + s.x * (b + s.y * c)]
            }
        }
    }
    return output
}
