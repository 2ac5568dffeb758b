// The diffusion tensor model: acquisition plus precomputed design (DIPY's TensorModel,
// MRtrix3's dwi2tensor).

import Foundation

/// How the tensor is estimated from the log signal.
///
/// Parsed from the names `ols` and `wls` (``init(parsing:)``), so a command line can take it directly.
public enum TensorFitMethod: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Ordinary least squares on the log signal (Basser, Mattiello & LeBihan 1994).
    case ols
    /// Weighted least squares on the log signal with weights from a first OLS pass
    /// (Salvador et al. 2005; Veraart et al. 2013). The default, as in DIPY and MRtrix3.
    case wls

    public var description: String { rawValue }

    /// Parses a method name (case-insensitive: `ols`, `wls`).
    /// - Throws: ``TensorModelError/unknownFitMethod(name:valid:)`` naming the valid choices.
    public init(parsing name: String) throws {
        guard let method = TensorFitMethod(rawValue: name.lowercased()) else {
            throw TensorModelError.unknownFitMethod(name: name, valid: Self.allCases.map(\.rawValue))
        }
        self = method
    }
}

/// A problem building a tensor model or fitting it.
public enum TensorModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownFitMethod(name: String, valid: [String])
    /// The directions do not determine the six tensor elements (fewer than six non-collinear
    /// weighted directions, or no b=0 / second b-value to fix S0).
    case degenerateDesign(source: String)
    case invalidIterations(Int)
    case invalidMinimumSignal(Float)
    /// The table and the data disagree on the number of volumes.
    case volumeCountMismatch(entries: Int, volumes: Int)
    /// `data.count` is not `volumeCount * voxelCount` (`expected` is -1 when a size is negative
    /// or the product overflows).
    case dataSizeMismatch(expected: Int, actual: Int)
    /// The mask does not have one entry per voxel.
    case maskSizeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .unknownFitMethod(name, valid):
            return "unknown tensor fit method '\(name)'; valid choices: \(valid.joined(separator: ", "))"
        case let .degenerateDesign(source):
            return "\(source): gradient directions do not determine the tensor (need >= 6 non-collinear directions and a b=0 volume)"
        case let .invalidIterations(n):
            return "WLS iterations must be >= 1, got \(n)"
        case let .invalidMinimumSignal(value):
            return "minimum signal must be positive and finite, got \(value)"
        case let .volumeCountMismatch(entries, volumes):
            return "gradient table has \(entries) entries but the data has \(volumes) volumes"
        case let .dataSizeMismatch(expected, actual):
            return "data has \(actual) values, expected volumes x voxels = \(expected)"
        case let .maskSizeMismatch(expected, actual):
            return "mask has \(actual) entries, expected one per voxel (\(expected))"
        }
    }
}

/// The single-tensor model of the diffusion signal (Basser, Mattiello & LeBihan 1994):
///
///     S_i = S0 * exp(-b_i * g_iᵀ D g_i)
///     ln S_i = X_i · β,  X_i = (-b gx², -2b gx gy, -2b gx gz, -b gy², -2b gy gz, -b gz², 1),
///                        β = (D11, D12, D13, D22, D23, D33, ln S0)
///
/// The model holds the gradient table and what can be computed from it once: the design
/// matrix X, the OLS pseudo-inverse (XᵀX)⁻¹Xᵀ and the per-volume outer products x_i x_iᵀ used
/// to build the WLS normal equations.
///
/// Internally b is divided by the largest b-value so that all columns of X are of order 1
/// (better-conditioned normal equations); tensors are rescaled on output and are in mm²/s
/// when b is in s/mm².
public struct TensorModel: Sendable {
    /// The acquisition.
    public let table: GradientTable
    /// The estimator.
    public let method: TensorFitMethod
    /// Number of WLS passes. 1 = weights from the OLS prediction (DIPY's `WLS`); each further
    /// pass re-weights with the previous WLS prediction (MRtrix3 `dwi2tensor -iter`).
    public let iterations: Int
    /// Signals below this are raised to it before the log, so that zeros and negative
    /// values (from noise or interpolation) give a finite, heavily down-weighted sample.
    /// Default 1e-4, DIPY's fallback `min_signal`; its WLS weight exp(2 ln 1e-4) is negligible.
    public let minimumSignal: Float

    /// The design matrix, row-major, one row of 7 per volume (b scaled by 1 / ``bScale``).
    public let designMatrix: [Double]
    /// The OLS pseudo-inverse (XᵀX)⁻¹Xᵀ, row-major 7 x N.
    public let pseudoInverse: [Double]
    /// b-value scale used inside the design (the largest b-value).
    public let bScale: Double

    // Fit-time layouts of the same quantities, flat so the kernel reads plain memory:
    let rows: [Double]         // X_i at i*8 (7 used)
    let pinvColumns: [Double]  // column i of the pseudo-inverse at i*8 (7 used)
    let outer: [Double]        // packed upper triangle of X_i X_iᵀ at i*28

    /// Builds the model.
    /// - Parameters:
    ///   - table: the acquisition (directions in the frame the tensor should be expressed in).
    ///   - method: OLS or WLS (default WLS).
    ///   - iterations: WLS passes, >= 1 (default 1).
    ///   - minimumSignal: the clamp applied before the log (default 1e-4).
    /// - Throws: ``TensorModelError``.
    public init(table: GradientTable, method: TensorFitMethod = .wls, iterations: Int = 1,
                minimumSignal: Float = 1e-4) throws {
        guard iterations >= 1 else { throw TensorModelError.invalidIterations(iterations) }
        guard minimumSignal > 0, minimumSignal.isFinite else { throw TensorModelError.invalidMinimumSignal(minimumSignal) }
        self.table = table
        self.method = method
        self.iterations = iterations
        self.minimumSignal = minimumSignal
        let n = table.count
        let scale = table.bValues.max() ?? 1
        bScale = scale > 0 ? scale : 1

        var x = [SIMD8<Double>]()
        x.reserveCapacity(n)
        for i in 0..<n {
            let b = table.bValues[i] / bScale
            let g = table.directions[i]
            x.append(SIMD8(-b * g.x * g.x, -2 * b * g.x * g.y, -2 * b * g.x * g.z,
                           -b * g.y * g.y, -2 * b * g.y * g.z, -b * g.z * g.z, 1, 0))
        }
        // XᵀX and its inverse by Cholesky.
        var normal = [Double](repeating: 0, count: 28)
        var outer = [Double]()
        outer.reserveCapacity(28 * n)
        for row in x {
            let p = Self.packedOuter(row)
            for k in 0..<28 {
                outer.append(p[k])
                normal[k] += p[k]
            }
        }
        let factor = UnsafeMutablePointer<Double>.allocate(capacity: 64)
        defer { factor.deallocate() }
        guard normal.withUnsafeBufferPointer({ Cholesky7.factor(packed: $0.baseAddress!, into: factor) }) else {
            throw TensorModelError.degenerateDesign(source: table.source)
        }
        var pinv = [SIMD8<Double>]()
        pinv.reserveCapacity(n)
        for row in x {
            let column = Cholesky7.solve(factor, row)
            guard column.sum().isFinite else { throw TensorModelError.degenerateDesign(source: table.source) }
            pinv.append(column)
        }
        self.rows = x.flatMap { v in (0..<8).map { v[$0] } }
        self.pinvColumns = pinv.flatMap { v in (0..<8).map { v[$0] } }
        self.outer = outer
        var design = [Double]()
        design.reserveCapacity(7 * n)
        for row in x { for c in 0..<7 { design.append(row[c]) } }
        designMatrix = design
        var p = [Double](repeating: 0, count: 7 * n)
        for i in 0..<n { for r in 0..<7 { p[r * n + i] = pinv[i][r] } }
        pseudoInverse = p
    }

    /// The packed upper triangle (row-major: (0,0),(0,1)...(0,6),(1,1),...,(6,6)) of x xᵀ.
    @inline(__always)
    static func packedOuter(_ x: SIMD8<Double>) -> [Double] {
        var p = [Double](repeating: 0, count: 28)
        var k = 0
        for r in 0..<7 {
            for c in r..<7 {
                p[k] = x[r] * x[c]
                k += 1
            }
        }
        return p
    }
}

/// In-place Cholesky factorisation A = L Lᵀ of a symmetric positive-definite 7 x 7 matrix,
/// and the solve that follows, on caller-provided scratch (no allocation). Used to build the
/// model's pseudo-inverse; the per-voxel fits solve their normal equations eight at a time in
/// the TensorKernels C target, with the same factorisation and pivot test.
enum Cholesky7 {
    /// Unpacks the packed upper triangle (row-major (0,0),(0,1)...(0,6),(1,1)...(6,6)) into
    /// `l` (7 x 7, stride 8) and factorises it in place; the lower triangle then holds L.
    /// Returns false when A is not numerically positive definite or not finite.
    @inline(__always)
    static func factor(packed a: UnsafePointer<Double>, into l: UnsafeMutablePointer<Double>) -> Bool {
        var k = 0
        for r in 0..<7 {
            for c in r..<7 {
                l[c * 8 + r] = a[k]
                k += 1
            }
        }
        var maxDiagonal = 0.0
        for i in 0..<7 { maxDiagonal = max(maxDiagonal, l[i * 9]) }
        let floor = maxDiagonal * 1e-13
        for j in 0..<7 {
            var d = l[j * 9]
            for k in 0..<j { d -= l[j * 8 + k] * l[j * 8 + k] }
            guard d > floor, d.isFinite else { return false }
            let ljj = d.squareRoot()
            l[j * 9] = ljj
            let inverse = 1 / ljj
            var i = j + 1
            while i < 7 {
                var s = l[i * 8 + j]
                for k in 0..<j { s -= l[i * 8 + k] * l[j * 8 + k] }
                l[i * 8 + j] = s * inverse
                i += 1
            }
        }
        return true
    }

    /// Solves L Lᵀ x = b with the factor from ``factor(packed:into:)``.
    @inline(__always)
    static func solve(_ l: UnsafeMutablePointer<Double>, _ b: SIMD8<Double>) -> SIMD8<Double> {
        let (y0, y1, y2, y3, y4, y5, y6) = solve(l, b[0], b[1], b[2], b[3], b[4], b[5], b[6])
        return SIMD8(y0, y1, y2, y3, y4, y5, y6, 0)
    }

    /// Solves L Lᵀ x = b with the factor from ``factor(packed:into:)``, on scalars.
    @inline(__always)
    static func solve(_ l: UnsafeMutablePointer<Double>, _ b0: Double, _ b1: Double, _ b2: Double, _ b3: Double,
                      _ b4: Double, _ b5: Double, _ b6: Double)
        -> (Double, Double, Double, Double, Double, Double, Double) {
        var y0 = b0, y1 = b1, y2 = b2, y3 = b3, y4 = b4, y5 = b5, y6 = b6
        // Forward substitution L y = b (unrolled: 7 is fixed).
        y0 /= l[0]
        y1 = (y1 - l[8] * y0) / l[9]
        y2 = (y2 - l[16] * y0 - l[17] * y1) / l[18]
        y3 = (y3 - l[24] * y0 - l[25] * y1 - l[26] * y2) / l[27]
        y4 = (y4 - l[32] * y0 - l[33] * y1 - l[34] * y2 - l[35] * y3) / l[36]
        y5 = (y5 - l[40] * y0 - l[41] * y1 - l[42] * y2 - l[43] * y3 - l[44] * y4) / l[45]
        y6 = (y6 - l[48] * y0 - l[49] * y1 - l[50] * y2 - l[51] * y3 - l[52] * y4 - l[53] * y5) / l[54]
        // Back substitution Lᵀ x = y.
        y6 /= l[54]
        y5 = (y5 - l[53] * y6) / l[45]
        y4 = (y4 - l[44] * y5 - l[52] * y6) / l[36]
        y3 = (y3 - l[35] * y4 - l[43] * y5 - l[51] * y6) / l[27]
        y2 = (y2 - l[26] * y3 - l[34] * y4 - l[42] * y5 - l[50] * y6) / l[18]
        y1 = (y1 - l[17] * y2 - l[25] * y3 - l[33] * y4 - l[41] * y5 - l[49] * y6) / l[9]
        y0 = (y0 - l[8] * y1 - l[16] * y2 - l[24] * y3 - l[32] * y4 - l[40] * y5 - l[48] * y6) / l[0]
        return (y0, y1, y2, y3, y4, y5, y6)
    }
}
