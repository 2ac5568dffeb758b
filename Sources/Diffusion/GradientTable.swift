// Gradient tables: b-values and unit directions, parsed from FSL and MRtrix text,
// with the frame conversions of MRtrix's `-fslgrad` import.

import Geometry

/// A problem with a gradient table, naming the source it came from.
///
/// Row numbers are 1-based volume numbers, as a user would count them in the file.
public enum GradientTableError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text holds no numbers at all.
    case empty(source: String)
    /// The text is not laid out as the format requires (e.g. a `.bvec` that is neither 3 x N nor N x 3).
    case malformed(source: String, reason: String)
    /// A token that is not a number.
    case nonNumeric(source: String, line: Int, token: String)
    /// The b-value file and the vector file list different numbers of volumes.
    case countMismatch(source: String, bValues: Int, vectors: Int)
    /// The table and the image list different numbers of volumes.
    case volumeCountMismatch(source: String, entries: Int, volumes: Int)
    /// A b-value that is NaN or infinite.
    case nonFiniteBValue(source: String, row: Int)
    /// A negative b-value.
    case negativeBValue(source: String, row: Int, value: Double)
    /// A diffusion-weighted row (b above the b=0 threshold) whose vector is zero or not finite.
    case invalidDirection(source: String, row: Int, bValue: Double)
    /// Every volume is a b=0 volume: every b-value is at or below the b=0 threshold.
    case noDiffusionWeighting(source: String, b0Threshold: Double)
    /// A maximum b-value below every diffusion-weighted volume (``GradientTable/selecting(maximumB:)``);
    /// `bValues` are the distinct b-values of the table, ascending.
    case noWeightedVolumeAtOrBelow(source: String, maximumB: Double, bValues: [Double])
    /// A voxel-to-world matrix that is not 3 x 3, not finite, or singular.
    case invalidTransform(source: String, reason: String)

    public var description: String {
        switch self {
        case let .empty(source):
            return "\(source): no gradient entries found"
        case let .malformed(source, reason):
            return "\(source): malformed gradient table: \(reason)"
        case let .nonNumeric(source, line, token):
            return "\(source): line \(line): '\(token)' is not a number"
        case let .countMismatch(source, bValues, vectors):
            return "\(source): \(bValues) b-values but \(vectors) gradient vectors"
        case let .volumeCountMismatch(source, entries, volumes):
            return "\(source): gradient table has \(entries) entries but the image has \(volumes) volumes"
        case let .nonFiniteBValue(source, row):
            return "\(source): volume \(row): b-value is not a finite number"
        case let .negativeBValue(source, row, value):
            return "\(source): volume \(row): negative b-value \(value)"
        case let .invalidDirection(source, row, bValue):
            return "\(source): volume \(row): b = \(bValue) but the gradient vector is zero or not a number"
        case let .noDiffusionWeighting(source, b0Threshold):
            return "\(source): no diffusion-weighted volume: every b-value is at or below the b=0 threshold (\(GradientTable.text(b0Threshold)))"
        case let .noWeightedVolumeAtOrBelow(source, maximumB, bValues):
            return "\(source): no diffusion-weighted volume has b <= \(GradientTable.text(maximumB)) (b-values in the table: \(GradientTable.describe(bValues: bValues)))"
        case let .invalidTransform(source, reason):
            return "\(source): invalid voxel-to-world matrix: \(reason)"
        }
    }
}

/// Which image axis to negate in a set of gradient directions.
public enum GradientAxisFlip: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The directions as given.
    case none
    case x
    case y
    case z

    public var description: String { rawValue }
}

/// The b-values and unit gradient directions of a diffusion acquisition, one entry per volume.
///
/// Construction normalises the directions the way MRtrix3 does (`DWI::get_DW_scheme` with
/// `BValueScaling`): a vector whose norm differs from 1 by more than
/// ``normTolerance`` is normalised and its b-value multiplied by the squared norm (scanners
/// that encode several b-values with one nominal b write shorter vectors); vectors within the
/// tolerance are only normalised. On b=0 rows a zero or NaN vector is valid and stored as the
/// zero vector.
///
/// b=0 volumes are those with b <= ``b0Threshold`` (default 50 s/mm^2, as DIPY's
/// `b0_threshold`). Diffusion-weighted volumes are grouped into shells by rounding b to the
/// nearest 100 s/mm^2 (``shellBValues``): scanners report per-direction b-values such as 995
/// or 1005 for a nominal 1000, and rounding groups them as MRtrix3's shell clustering does
/// (MRtrix groups b-values closer than its `BValueEpsilon`, 80 by default; rounding to 100
/// gives the same shells for the usual 500-spaced schemes and is simpler to state).
/// Rounding is to nearest with halves away from zero (1550 -> 1600). Shells tell a
/// single-shell series from a multi-shell one and name the shells in the outputs; a maximum
/// b-value is compared with the b-values themselves, never with their shells
/// (``selecting(maximumB:)``).
public struct GradientTable: Sendable, Equatable {
    /// Tolerance on |‖g‖ − 1| below which a vector is taken as unit and its b-value kept.
    ///
    /// 0.01 matches the precision with which scanners print directions (often 4-6 digits) with
    /// a wide margin, while genuine `BValueScaling` schemes differ from 1 by far more.
    public static let normTolerance = 0.01

    /// The resolution to which b-values are rounded to form shells (s/mm^2).
    public static let shellRounding = 100.0

    /// b-values (s/mm^2), after scaling by the squared vector norm where that applied.
    public let bValues: [Double]
    /// Unit gradient directions; the zero vector on b=0 rows given without a direction.
    public let directions: [SIMD3<Double>]
    /// Volumes with b <= this are b=0 volumes.
    public let b0Threshold: Double
    /// The name used in error messages (usually the file name).
    public let source: String

    /// Number of volumes.
    public var count: Int { bValues.count }

    /// Whether each volume is a b=0 volume.
    public var isB0: [Bool] { bValues.map { $0 <= b0Threshold } }

    /// Indices of the b=0 volumes.
    public var b0Indices: [Int] { bValues.indices.filter { bValues[$0] <= b0Threshold } }

    /// Indices of the diffusion-weighted volumes.
    public var diffusionIndices: [Int] { bValues.indices.filter { bValues[$0] > b0Threshold } }

    /// The shell b-value of each volume: 0 for b=0 volumes, else b rounded to the nearest 100.
    public var shellBValues: [Double] {
        bValues.map { $0 <= b0Threshold ? 0 : ($0 / Self.shellRounding).rounded() * Self.shellRounding }
    }

    /// The distinct non-zero shell b-values, ascending.
    public var shells: [Double] { Array(Set(shellBValues.filter { $0 > 0 })).sorted() }

    /// Creates a table from b-values and direction vectors, validating and normalising them.
    ///
    /// - Parameters:
    ///   - bValues: one b-value per volume (s/mm^2).
    ///   - directions: one vector per volume; need not be unit (see the type's discussion).
    ///   - b0Threshold: volumes with b <= this are b=0 volumes.
    ///   - source: a name for error messages.
    /// - Throws: ``GradientTableError`` for count mismatch, NaN or negative b, a zero or NaN
    ///   vector on a weighted row, an empty table, or a table with only b=0 volumes.
    public init(bValues: [Double], directions: [SIMD3<Double>], b0Threshold: Double = 50,
                source: String = "gradient table") throws {
        guard bValues.count == directions.count else {
            throw GradientTableError.countMismatch(source: source, bValues: bValues.count, vectors: directions.count)
        }
        guard !bValues.isEmpty else { throw GradientTableError.empty(source: source) }
        var b = [Double]()
        var g = [SIMD3<Double>]()
        b.reserveCapacity(bValues.count)
        g.reserveCapacity(bValues.count)
        for (index, (value, vector)) in zip(bValues, directions).enumerated() {
            let row = index + 1
            guard value.isFinite else { throw GradientTableError.nonFiniteBValue(source: source, row: row) }
            guard value >= 0 else { throw GradientTableError.negativeBValue(source: source, row: row, value: value) }
            let finite = vector.x.isFinite && vector.y.isFinite && vector.z.isFinite
            // Scaled by the largest component, so a huge vector's squared norm cannot overflow.
            let largest = finite ? max(abs(vector.x), abs(vector.y), abs(vector.z)) : 0
            let norm = largest > 0 ? largest * ((vector / largest) * (vector / largest)).sum().squareRoot() : 0
            if norm < 1e-6 {
                guard value <= b0Threshold else {
                    throw GradientTableError.invalidDirection(source: source, row: row, bValue: value)
                }
                b.append(value)
                g.append(.zero)
                continue
            }
            let scaledB = abs(norm - 1) > Self.normTolerance ? value * norm * norm : value
            guard scaledB.isFinite else {
                throw GradientTableError.malformed(source: source, reason: "row \(row): a direction of norm \(norm) scales its b-value beyond any number")
            }
            b.append(scaledB)
            g.append(vector / norm)
        }
        guard b.contains(where: { $0 > b0Threshold }) else {
            throw GradientTableError.noDiffusionWeighting(source: source, b0Threshold: b0Threshold)
        }
        self.bValues = b
        self.directions = g
        self.b0Threshold = b0Threshold
        self.source = source
    }

    /// Internal memberwise construction from already validated values.
    init(validatedBValues: [Double], directions: [SIMD3<Double>], b0Threshold: Double, source: String) {
        self.bValues = validatedBValues
        self.directions = directions
        self.b0Threshold = b0Threshold
        self.source = source
    }

    // MARK: - Parsing

    /// Parses an FSL `.bval`/`.bvec` pair.
    ///
    /// `.bval`: one row of N numbers, or one column. `.bvec`: 3 rows of N numbers (FSL's
    /// layout) or N rows of 3 (the transposed layout some converters write); when N = 3 the
    /// FSL layout is assumed. Directions stay in FSL's frame (image voxel axes, x negated when
    /// the voxel-to-world determinant is positive); see ``fslToWorld(linear:)``.
    ///
    /// - Parameters:
    ///   - bval: contents of the `.bval` file.
    ///   - bvec: contents of the `.bvec` file.
    ///   - source: a name for error messages (e.g. the `.bvec` path).
    ///   - bvalSource: the name of the b-values in error messages (e.g. the `.bval` path);
    ///     by default `source` followed by "(bval)".
    ///   - b0Threshold: volumes with b <= this are b=0 volumes.
    /// - Throws: ``GradientTableError``.
    public static func fsl(bval: String, bvec: String, source: String, bvalSource: String? = nil,
                           b0Threshold: Double = 50) throws -> GradientTable {
        let bvalName = bvalSource ?? source + " (bval)"
        let bRows = try numberRows(bval, source: bvalName)
        guard !bRows.isEmpty else { throw GradientTableError.empty(source: bvalName) }
        let bValues: [Double]
        if bRows.count == 1 {
            bValues = bRows[0]
        } else if bRows.allSatisfy({ $0.count == 1 }) {
            bValues = bRows.map { $0[0] }
        } else {
            throw GradientTableError.malformed(source: bvalName,
                                               reason: "expected one row or one column, found \(bRows.count) rows of \(bRows[0].count)")
        }
        // A bad b-value is the .bval's fault: say so before the vectors are read.
        for (index, value) in bValues.enumerated() {
            guard value.isFinite else { throw GradientTableError.nonFiniteBValue(source: bvalName, row: index + 1) }
            guard value >= 0 else { throw GradientTableError.negativeBValue(source: bvalName, row: index + 1, value: value) }
        }
        guard bValues.contains(where: { $0 > b0Threshold }) else {
            throw GradientTableError.noDiffusionWeighting(source: bvalName, b0Threshold: b0Threshold)
        }
        let vRows = try numberRows(bvec, source: source + " (bvec)")
        guard !vRows.isEmpty else { throw GradientTableError.empty(source: source + " (bvec)") }
        let n = bValues.count
        var vectors = [SIMD3<Double>]()
        // 3 equal rows: FSL's layout (also when N = 3, where both layouts have the same shape).
        if vRows.count == 3, vRows.allSatisfy({ $0.count == vRows[0].count }) {
            let columns = vRows[0].count
            guard columns == n else {
                throw GradientTableError.countMismatch(source: source, bValues: n, vectors: columns)
            }
            vectors = (0..<n).map { SIMD3(vRows[0][$0], vRows[1][$0], vRows[2][$0]) }
        } else if vRows.allSatisfy({ $0.count == 3 }) {
            guard vRows.count == n else {
                throw GradientTableError.countMismatch(source: source, bValues: n, vectors: vRows.count)
            }
            vectors = vRows.map { SIMD3($0[0], $0[1], $0[2]) }
        } else {
            throw GradientTableError.malformed(source: source + " (bvec)",
                                               reason: "expected 3 rows of N values or N rows of 3 values")
        }
        return try GradientTable(bValues: bValues, directions: vectors, b0Threshold: b0Threshold, source: source)
    }

    /// Parses an MRtrix-style gradient table: one row `x y z b` per volume, directions in
    /// scanner (world, RAS) coordinates; `#` starts a comment.
    ///
    /// - Throws: ``GradientTableError``.
    public static func mrtrix(_ text: String, source: String, b0Threshold: Double = 50) throws -> GradientTable {
        let rows = try numberRows(text, source: source)
        guard !rows.isEmpty else { throw GradientTableError.empty(source: source) }
        for (i, row) in rows.enumerated() where row.count != 4 {
            throw GradientTableError.malformed(source: source,
                                               reason: "row \(i + 1) has \(row.count) values, expected 4 (x y z b)")
        }
        return try GradientTable(bValues: rows.map { $0[3] },
                                 directions: rows.map { SIMD3($0[0], $0[1], $0[2]) },
                                 b0Threshold: b0Threshold, source: source)
    }

    /// Splits text into rows of numbers; blank lines and `#` comments are skipped, commas count
    /// as separators. `nan` and `inf` parse (and are judged later).
    static func numberRows(_ text: String, source: String) throws -> [[Double]] {
        var rows = [[Double]]()
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let tokens = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" })
            if tokens.isEmpty { continue }
            var row = [Double]()
            row.reserveCapacity(tokens.count)
            for token in tokens {
                guard let value = Double(token) else {
                    throw GradientTableError.nonNumeric(source: source, line: lineNumber, token: String(token))
                }
                row.append(value)
            }
            rows.append(row)
        }
        return rows
    }

    // MARK: - Checks and selection

    /// Checks that the table has one entry per image volume.
    /// - Throws: ``GradientTableError/volumeCountMismatch(source:entries:volumes:)``.
    public func validate(volumeCount: Int) throws {
        guard volumeCount == count else {
            throw GradientTableError.volumeCountMismatch(source: source, entries: count, volumes: volumeCount)
        }
    }

    /// The same table with one axis of every direction negated.
    public func flipped(_ axis: GradientAxisFlip) -> GradientTable {
        let sign: SIMD3<Double>
        switch axis {
        case .none: return self
        case .x: sign = SIMD3(-1, 1, 1)
        case .y: sign = SIMD3(1, -1, 1)
        case .z: sign = SIMD3(1, 1, -1)
        }
        return GradientTable(validatedBValues: bValues, directions: directions.map { ($0 * sign) + SIMD3<Double>.zero },
                             b0Threshold: b0Threshold, source: source)
    }

    // MARK: - Frames

    /// Converts FSL-frame directions to world (scanner RAS) directions, as MRtrix3's
    /// `-fslgrad` import does.
    ///
    /// FSL stores directions in the image's voxel axes, with x negated when the voxel-to-world
    /// matrix has a positive determinant (FSL's radiological convention). So
    /// `world = R * F * g`, where R is the voxel-to-world linear part with each column
    /// normalised to unit length (removing the voxel sizes) and F = diag(-1, 1, 1) when
    /// det(linear) > 0, else the identity. Results are renormalised (a sheared matrix would
    /// otherwise change their norm); b-values are unchanged.
    ///
    /// MRtrix first permutes the image axes to near-RAS order and then applies this formula;
    /// pass the linear part of the affine for the axes as the data is stored, in which the
    /// FSL vectors are expressed.
    ///
    /// - Parameter linear: the 3 x 3 linear part of the voxel-to-world affine.
    /// - Throws: ``GradientTableError/invalidTransform(source:reason:)``.
    public func fslToWorld(linear: Matrix3) throws -> GradientTable {
        transformed(by: try DirectionTransform(from: .fsl, to: .world, linear: linear, source: source))
    }

    /// Converts world (scanner RAS) directions to FSL's frame: the inverse of
    /// ``fslToWorld(linear:)``, `g = F * R^-1 * world`.
    /// - Throws: ``GradientTableError/invalidTransform(source:reason:)``.
    public func worldToFSL(linear: Matrix3) throws -> GradientTable {
        transformed(by: try DirectionTransform(from: .world, to: .fsl, linear: linear, source: source))
    }

    /// Converts FSL-frame directions to the image's voxel axes: `F * g`, which undoes FSL's x
    /// negation when det(linear) > 0. Used by ``gradientOrientationCheck(data:volumeCount:shape:mask:table:method:faThreshold:threads:)``,
    /// which steps through voxel indices along the principal direction (``DirectionTransform``
    /// converts fitted directions the same way).
    /// - Throws: ``GradientTableError/invalidTransform(source:reason:)``.
    public func fslToVoxel(linear: Matrix3) throws -> GradientTable {
        let (_, _, flipX) = try Self.frame(linear, source: source)
        return flipX ? flipped(.x) : self
    }

    private func transformed(by transform: DirectionTransform) -> GradientTable {
        GradientTable(validatedBValues: bValues, directions: directions.map(transform.apply), b0Threshold: b0Threshold,
                      source: source)
    }

    /// The column-normalised matrix R, its inverse, and whether FSL's x flip applies.
    fileprivate static func frame(_ linear: Matrix3, source: String) throws -> (Matrix3, Matrix3, Bool) {
        guard (0..<3).allSatisfy({ r in (0..<3).allSatisfy { linear[r, $0].isFinite } }) else {
            throw GradientTableError.invalidTransform(source: source, reason: "non-finite entry")
        }
        let det = linear.determinant
        let norms = linear.columnNorms
        for c in 0..<3 where !(norms[c] > 0) {
            throw GradientTableError.invalidTransform(source: source, reason: "column \(c + 1) is zero")
        }
        let r = Matrix3(columns: linear.column(0) / norms.x, linear.column(1) / norms.y, linear.column(2) / norms.z)
        guard abs(r.determinant) > 1e-9, abs(det) > 0, let inverse = r.inverse else {
            throw GradientTableError.invalidTransform(source: source, reason: "singular matrix")
        }
        return (r, inverse, det > 0)
    }
}

/// The axes a direction (a gradient, a fitted V1) is expressed in.
public enum DirectionFrame: String, CaseIterable, Sendable {
    /// The image's voxel axes, in which ``gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:faThreshold:threads:)``
    /// steps.
    case voxel
    /// FSL's bvec and dtifit frame: the voxel axes with x negated when the voxel-to-world
    /// determinant is positive.
    case fsl
    /// Scanner/template RAS+ axes (MRtrix gradient tables, `tensor2metric -vector`).
    case world
}

/// A change of frame for directions, `v' = M v / ‖M v‖` (the zero vector stays zero), built
/// from the image's voxel-to-world matrix as MRtrix3's `-fslgrad` import does.
///
/// With R the voxel-to-world linear part with unit columns and F = diag(-1, 1, 1) when
/// det(linear) > 0 (else the identity), a direction v in voxel axes is `F v` in FSL's frame
/// and `R v` in world axes; so, for instance, world to voxel is `R^-1` and FSL to world is
/// `R F`. Results are renormalised, since a sheared matrix would change their norm.
///
/// ``GradientTable/fslToWorld(linear:)`` and ``GradientTable/worldToFSL(linear:)`` convert a
/// table with it; the DTI pipeline converts the fitted V1 field into voxel axes for the
/// gradient orientation check.
public struct DirectionTransform: Sendable, Equatable {
    let matrix: Matrix3

    /// The transform taking directions in `from` to directions in `to`.
    /// - Parameters:
    ///   - from: the frame of the directions given to ``apply(_:)``.
    ///   - to: the frame of its results.
    ///   - linear: the 3 x 3 linear part of the voxel-to-world affine.
    ///   - source: a name for error messages (e.g. the gradient table or the image).
    /// - Throws: ``GradientTableError/invalidTransform(source:reason:)``.
    public init(from: DirectionFrame, to: DirectionFrame, linear: Matrix3, source: String = "voxel-to-world matrix") throws {
        let (r, rInverse, flipX) = try GradientTable.frame(linear, source: source)
        let identity = Matrix3.identity
        let f = flipX ? Matrix3(diagonal: SIMD3(-1, 1, 1)) : identity
        guard from != to else {
            matrix = identity
            return
        }
        // Each frame to voxel axes (F is its own inverse), then voxel axes to the target.
        let toVoxel: Matrix3
        switch from {
        case .voxel: toVoxel = identity
        case .fsl: toVoxel = f
        case .world: toVoxel = rInverse
        }
        switch to {
        case .voxel: matrix = toVoxel
        case .fsl: matrix = f * toVoxel
        case .world: matrix = r * toVoxel
        }
    }

    /// The direction `v` in the target frame, unit length (zero when `v` is zero).
    @inline(__always)
    public func apply(_ v: SIMD3<Double>) -> SIMD3<Double> {
        if v == .zero { return v }
        let w = matrix * v
        return w / (w * w).sum().squareRoot()
    }
}
