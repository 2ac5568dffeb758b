import SlabParallel

/// Nearest-neighbour resampling of a label grid onto a reference grid through a chain of
/// ITK/ANTs transforms, as `antsApplyTransforms -n NearestNeighbor` (ITK's
/// `ResampleImageFilter` with a `NearestNeighborInterpolateImageFunction`) does it.
///
/// For reference voxel v: `x = F A_ref v` (its centre in LPS, ``LPS``), `y = chain(x)`
/// (``TransformChain/apply(_:)``, the last transform first), and `u = (F A_src)⁻¹ y`, the
/// continuous index in the source. As ITK: when u lies outside `[−0.5, n − 0.5)` on some axis
/// the voxel gets label 0, else the label of voxel `⌊u + 0.5⌋` (halves rounded up). Labels
/// are never mixed.
///
/// Reference slices are split into slabs over `threads` workers; each voxel is computed on
/// its own, so the output does not depend on the thread count.
///
/// - Parameters:
///   - labels: the source labels, x fastest, one per voxel of `sourceShape`.
///   - sourceAffine: the source's voxel-to-RAS affine (NIfTI).
///   - targetAffine: the reference's voxel-to-RAS affine (NIfTI).
///   - chain: the transforms, in antsApplyTransforms' `-t` order.
/// - Returns: one label per reference voxel, x fastest; nil when an affine is singular.
public func warpNearest(_ labels: [Int32], sourceShape: (x: Int, y: Int, z: Int), sourceAffine: Affine,
                        targetShape: (x: Int, y: Int, z: Int), targetAffine: Affine,
                        through chain: TransformChain, threads: Int) -> [Int32]? {
    let s = sourceShape, t = targetShape
    precondition(labels.count == s.x * s.y * s.z, "one label per source voxel")
    guard let lpsToSource = LPS.voxelToLPS(sourceAffine).inverse, targetAffine.inverse != nil else { return nil }
    let targetToLPS = LPS.voxelToLPS(targetAffine)
    var output = [Int32](repeating: 0, count: t.x * t.y * t.z)
    let limit = SIMD3(Double(s.x), Double(s.y), Double(s.z)) - 0.5
    // The chain as plain values (no reference counting per point), in the order applied:
    // the last transform first. The fields' storage stays alive with `chain`.
    let steps: [WarpStep] = chain.transforms.reversed().map { transform in
        switch transform {
        case .affine(let affine): return WarpStep(affine: affine.map)
        case .displacementField(let field):
            return WarpStep(field: field.lpsToGrid, shape: field.shape,
                            // A let array that is never mutated keeps its storage where it is while
                            // it lives; `chain` (which holds it) outlives the loop below.
                            vectors: SharedReadBuffer(field.vectors.withUnsafeBufferPointer { $0 }))
        }
    }
    withExtendedLifetime(chain) {
    labels.withUnsafeBufferPointer { source in
        let input = SharedReadBuffer(source)
        withSharedBuffer(&output) { out in
            forEachSlab(count: t.z, threads: threads) { slices in
                for k in slices {
                    for j in 0..<t.y {
                        for i in 0..<t.x {
                            let x = targetToLPS.apply(SIMD3(Double(i), Double(j), Double(k)))
                            var y = x
                            for step in steps { y = step.apply(y) }
                            let u = lpsToSource.apply(y)
                            // Compared as doubles, so far-away or non-finite points are skipped, not trapped.
                            guard all(u .>= -0.5 .& u .< limit) else { continue }
                            let nearest = (u + 0.5).rounded(.down)
                            let a = min(Int(nearest.x), s.x - 1), b = min(Int(nearest.y), s.y - 1), c = min(Int(nearest.z), s.z - 1)
                            out[i + t.x * (j + t.y * k)] = input[a + s.x * (b + s.y * c)]
                        }
                    }
                }
            }
        }
    }
    }
    return output
}

/// One transform of a chain as plain values for the resampling loop: an affine map, or a
/// displacement field's grid and a view of its vectors (valid while the field lives).
struct WarpStep: @unchecked Sendable {
    let isField: Bool
    let map: Affine
    let shape: (x: Int, y: Int, z: Int)
    let vectors: SharedReadBuffer<Float>

    init(affine: Affine) {
        isField = false
        map = affine
        shape = (1, 1, 1)
        vectors = SharedReadBuffer(UnsafeBufferPointer(start: nil, count: 0))
    }

    init(field lpsToGrid: Affine, shape: (x: Int, y: Int, z: Int), vectors: SharedReadBuffer<Float>) {
        isField = true
        map = lpsToGrid
        self.shape = shape
        self.vectors = vectors
    }

    @inline(__always)
    func apply(_ x: SIMD3<Double>) -> SIMD3<Double> {
        isField ? x + DisplacementField.sample(at: x, lpsToGrid: map, shape: shape, vectors: vectors.base) : map.apply(x)
    }
}
