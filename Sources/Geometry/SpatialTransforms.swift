// ITK/ANTs spatial transforms: affine (MatrixOffsetTransformBase) and displacement fields,
// chained as antsApplyTransforms chains them, in ITK's LPS physical coordinates.
//
// Coordinates. NIfTI affines map voxels to RAS+ millimetres (x to the Right, y Anterior,
// z Superior); ITK, and so every transform ANTs, fMRIPrep or QSIPrep writes, works in LPS+
// (x to the Left, y Posterior, z Superior). The two differ by the reflection
// `F = diag(−1, −1, 1)`, its own inverse: `p_LPS = F p_RAS`. ITK applies F when it reads a
// NIfTI header, so an image's ITK origin and direction are F times the NIfTI ones, and every
// transform parameter (matrices, translations, centres, displacement vectors, displacement
// field grids) is LPS. The conversion is made here once, in ``LPS``; nothing else in
// nimetrics flips axes for transforms.

/// The RAS+ (NIfTI) / LPS+ (ITK) change of coordinates, `F = diag(−1, −1, 1)`.
public enum LPS {
    /// F as a matrix (its own inverse).
    public static let flip = Matrix3(diagonal: SIMD3(-1, -1, 1))

    /// A RAS+ point in LPS+: `(−x, −y, z)`.
    @inlinable
    public static func fromRAS(_ p: SIMD3<Double>) -> SIMD3<Double> { SIMD3(-p.x, -p.y, p.z) }

    /// An LPS+ point in RAS+: `(−x, −y, z)`.
    @inlinable
    public static func toRAS(_ p: SIMD3<Double>) -> SIMD3<Double> { SIMD3(-p.x, -p.y, p.z) }

    /// A voxel-to-RAS affine (a NIfTI sform) as voxel-to-LPS: `F A`.
    public static func voxelToLPS(_ rasAffine: Affine) -> Affine {
        Affine(linear: flip * rasAffine.linear, translation: fromRAS(rasAffine.translation))
    }

    /// The voxel-to-LPS affine of an ITK image grid: `x = origin + D diag(spacing) index`, ITK's
    /// `TransformIndexToPhysicalPoint`.
    public static func gridAffine(origin: SIMD3<Double>, spacing: SIMD3<Double>, direction: Matrix3) -> Affine {
        Affine(linear: direction * Matrix3(diagonal: spacing), translation: origin)
    }
}

/// An ITK affine transform (`AffineTransform`, `MatrixOffsetTransformBase`), in LPS millimetres:
/// `T(x) = M (x − c) + t + c`, with M the 3 x 3 matrix, t the translation and c the centre
/// (ITK's fixed parameters). Its parameters are the nine entries of M by rows, then t.
public struct AffineTransform: Equatable, Sendable {
    /// The map `x ↦ M x + (t + c − M c)` (ITK's matrix and offset).
    public var map: Affine

    /// The transform of ITK parameters: `matrix` by rows, `translation`, `center`.
    public init(matrix: Matrix3, translation: SIMD3<Double>, center: SIMD3<Double> = .zero) {
        map = Affine(linear: matrix, translation: translation + center - matrix * center)
    }

    /// The transform of a map already in matrix-and-offset form.
    public init(map: Affine) { self.map = map }

    /// The transform of ITK's 12 parameters (M by rows, then t) and 3 fixed parameters (c).
    /// - Returns: nil when the counts are not 12 and 3 (or 0, read as c = 0) or a value is not finite.
    public init?(parameters: [Double], fixedParameters: [Double]) {
        guard parameters.count == 12, fixedParameters.count == 3 || fixedParameters.isEmpty,
              parameters.allSatisfy(\.isFinite), fixedParameters.allSatisfy(\.isFinite) else { return nil }
        let p = parameters
        let c = fixedParameters.isEmpty ? SIMD3<Double>.zero : SIMD3(fixedParameters[0], fixedParameters[1], fixedParameters[2])
        self.init(matrix: Matrix3(rows: SIMD3(p[0], p[1], p[2]), SIMD3(p[3], p[4], p[5]), SIMD3(p[6], p[7], p[8])),
                  translation: SIMD3(p[9], p[10], p[11]), center: c)
    }

    /// The inverse transform, `x ↦ M⁻¹ x − M⁻¹ o` (o the offset); nil when M is singular.
    public var inverse: AffineTransform? { map.inverse.map(AffineTransform.init(map:)) }

    /// `T(x)` for an LPS point.
    @inlinable
    public func apply(_ x: SIMD3<Double>) -> SIMD3<Double> { map.apply(x) }
}

/// An ITK `DisplacementFieldTransform`: `T(x) = x + d(x)`, with d the displacement field
/// sampled by trilinear interpolation at x, in LPS millimetres.
///
/// As ITK's `VectorLinearInterpolateImageFunction` inside `DisplacementFieldTransform::
/// TransformPoint`: x is taken to the field's continuous index `u = G⁻¹ x` (G the field grid's
/// index-to-LPS affine); when u lies outside the buffer, `[−0.5, n − 0.5)` on some axis, the
/// displacement is zero (`T(x) = x`); inside, `d(x) = Σ w_c d[c]` over the 8 corners of the
/// cell holding u, with weights the products of `1 − f` or `f` (f = u − ⌊u⌋), corner indices
/// clamped to the grid (so the half-voxel margin repeats the edge values).
public struct DisplacementField: Sendable {
    /// Voxel counts along i, j, k.
    public let shape: (x: Int, y: Int, z: Int)
    /// The field grid's index-to-LPS affine G.
    public let gridToLPS: Affine
    /// `G⁻¹`: LPS millimetres to continuous index.
    public let lpsToGrid: Affine
    /// The displacements, LPS millimetres, three per voxel (dx, dy, dz), voxels x fastest.
    public let vectors: [Float]

    /// A field on the grid `gridToLPS` (index to LPS), with `vectors` as described above.
    /// - Returns: nil when the grid is singular or `vectors` is not 3 per voxel.
    public init?(shape: (x: Int, y: Int, z: Int), gridToLPS: Affine, vectors: [Float]) {
        guard shape.x > 0, shape.y > 0, shape.z > 0, vectors.count == 3 * shape.x * shape.y * shape.z,
              let inverse = gridToLPS.inverse else { return nil }
        self.shape = shape
        self.gridToLPS = gridToLPS
        self.lpsToGrid = inverse
        self.vectors = vectors
    }

    /// `d(x)`, the interpolated displacement at an LPS point (zero outside the buffer).
    @inlinable
    public func displacement(at x: SIMD3<Double>) -> SIMD3<Double> {
        vectors.withUnsafeBufferPointer { displacement(at: x, in: $0) }
    }

    /// `d(x)` reading the vectors through `buffer` (``vectors``' storage), for hot loops.
    @inlinable
    public func displacement(at x: SIMD3<Double>, in buffer: UnsafeBufferPointer<Float>) -> SIMD3<Double> {
        Self.sample(at: x, lpsToGrid: lpsToGrid, shape: shape, vectors: buffer.baseAddress!)
    }

    /// The trilinear sample of the type's discussion, on a grid given by its parts (so a hot
    /// loop holds no reference-counted storage).
    @inlinable
    static func sample(at x: SIMD3<Double>, lpsToGrid: Affine, shape: (x: Int, y: Int, z: Int),
                       vectors: UnsafePointer<Float>) -> SIMD3<Double> {
        let u = lpsToGrid.apply(x)
        let n = SIMD3(Double(shape.x), Double(shape.y), Double(shape.z))
        // Compared as doubles, so non-finite or far-away points count as outside.
        guard all(u .>= -0.5 .& u .< n - 0.5) else { return .zero }
        let base = u.rounded(.down)
        let f = u - base
        let i0 = Int(base.x), j0 = Int(base.y), k0 = Int(base.z)
        let xs = (max(i0, 0), min(i0 + 1, shape.x - 1))
        let ys = (max(j0, 0), min(j0 + 1, shape.y - 1))
        let zs = (max(k0, 0), min(k0 + 1, shape.z - 1))
        let nx = shape.x, nxy = shape.x * shape.y
        @inline(__always) func corner(_ i: Int, _ j: Int, _ k: Int) -> SIMD3<Double> {
            let o = 3 * (i + nx * j + nxy * k)
            return SIMD3(Double(vectors[o]), Double(vectors[o + 1]), Double(vectors[o + 2]))
        }
        let c00 = corner(xs.0, ys.0, zs.0) * (1 - f.x) + corner(xs.1, ys.0, zs.0) * f.x
        let c10 = corner(xs.0, ys.1, zs.0) * (1 - f.x) + corner(xs.1, ys.1, zs.0) * f.x
        let c01 = corner(xs.0, ys.0, zs.1) * (1 - f.x) + corner(xs.1, ys.0, zs.1) * f.x
        let c11 = corner(xs.0, ys.1, zs.1) * (1 - f.x) + corner(xs.1, ys.1, zs.1) * f.x
        let c0 = c00 * (1 - f.y) + c10 * f.y
        let c1 = c01 * (1 - f.y) + c11 * f.y
        return c0 * (1 - f.z) + c1 * f.z
    }

    /// `T(x) = x + d(x)`.
    @inlinable
    public func apply(_ x: SIMD3<Double>) -> SIMD3<Double> { x + displacement(at: x) }
}

/// One transform of a chain.
public enum SpatialTransform: Sendable {
    case affine(AffineTransform)
    case displacementField(DisplacementField)

    /// A short name for messages and records ("affine", "displacement field 96x114x96").
    public var summary: String {
        switch self {
        case .affine: "affine"
        case .displacementField(let field): "displacement field \(field.shape.x)x\(field.shape.y)x\(field.shape.z)"
        }
    }
}

/// A list of transforms applied as antsApplyTransforms applies its `-t` list: the points of
/// the output (reference) space are mapped by the **last** transform first, then the one before
/// it, ..., the first one last, giving the points of the input (moving) image to sample:
/// `x_input = T₁(T₂(…Tₙ(x_output)))`. An ITK CompositeTransform file holds its transforms in
/// this same order (its first transform is applied last), so a composite's transforms are
/// listed in place.
public struct TransformChain: Sendable {
    /// The transforms, in the order given (`-t` order).
    public var transforms: [SpatialTransform]

    public init(_ transforms: [SpatialTransform]) { self.transforms = transforms }

    /// Maps an LPS point of the output space to the input space.
    @inlinable
    public func apply(_ x: SIMD3<Double>) -> SIMD3<Double> {
        var p = x
        for transform in transforms.reversed() {
            switch transform {
            case .affine(let affine): p = affine.apply(p)
            case .displacementField(let field): p = field.apply(p)
            }
        }
        return p
    }
}
