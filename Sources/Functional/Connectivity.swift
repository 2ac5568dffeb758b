// Connectivity matrices: Pearson correlation, Fisher z, and partial correlation from the
// Ledoit-Wolf shrunk covariance. Missing regions come out as NaN rows and columns.

import Foundation
import SlabParallel

/// Indices of the regions usable for connectivity: all samples finite and a non-zero
/// spread (standard deviation above 1e-12 of the largest absolute sample, which catches
/// constant series whose computed deviations are pure rounding).
public func validRegions(_ x: TimeSeriesMatrix) -> [Int] {
    let n = x.timePoints
    guard n >= 2 else { return [] }
    return (0..<x.regions).filter { r in
        let s = x.values[(r * n)..<((r + 1) * n)]
        var mean = 0.0, scale = 0.0
        for v in s {
            guard v.isFinite else { return false }
            mean += v
            scale = max(scale, abs(v))
        }
        mean /= Double(n)
        var ss = 0.0
        for v in s { ss += (v - mean) * (v - mean) }
        return ss > 0 && (ss / Double(n)).squareRoot() > 1e-12 * scale
    }
}

/// Centres (and scales) the valid columns: returns column-major n x p data.
/// `unitNorm`: divide each centred column by its Euclidean norm; `zscore`: by its sample
/// standard deviation (ddof = 1).
private enum ColumnScaling { case centreOnly, unitNorm, zscore }

private func centredColumns(_ x: TimeSeriesMatrix, regions: [Int], scaling: ColumnScaling, threads: Int) -> [Double] {
    let n = x.timePoints
    let p = regions.count
    var z = [Double](repeating: 0, count: n * p)
    let input = x.values
    withSharedBuffer(&z) { out in
        forEachSlab(count: p, threads: threads) { columns in
            for c in columns {
                let start = regions[c] * n
                var mean = 0.0
                for t in 0..<n { mean += input[start + t] }
                mean /= Double(n)
                var ss = 0.0
                for t in 0..<n { let d = input[start + t] - mean; ss += d * d }
                let divisor: Double
                switch scaling {
                case .centreOnly: divisor = 1
                case .unitNorm: divisor = ss.squareRoot()
                case .zscore: divisor = (ss / Double(n - 1)).squareRoot()
                }
                for t in 0..<n { out[c * n + t] = (input[start + t] - mean) / divisor }
            }
        }
    }
    return z
}

/// Gram matrix `Z^T Z` of column-major n x p data. Only the upper triangle is computed
/// (rows interleaved across threads) and mirrored, so the result is exactly symmetric.
private func gram(_ z: [Double], rows n: Int, columns p: Int, threads: Int) -> [Double] {
    var g = [Double](repeating: 0, count: p * p)
    withSharedBuffer(&g) { out in
        forEachInterleaved(count: p, threads: threads) { i in
            z.withUnsafeBufferPointer { zb in
                let zi = UnsafeBufferPointer(rebasing: zb[(i * n)..<((i + 1) * n)])
                for j in i..<p {
                    let zj = UnsafeBufferPointer(rebasing: zb[(j * n)..<((j + 1) * n)])
                    var s = 0.0
                    for t in 0..<n { s += zi[t] * zj[t] }
                    out[i * p + j] = s
                    out[j * p + i] = s
                }
            }
        }
    }
    return g
}

/// Scatters a p x p matrix over the valid regions into an R x R matrix filled with NaN.
private func scatter(_ m: [Double], regions: [Int], size: Int) -> SquareMatrix {
    var full = SquareMatrix(size: size, repeating: .nan)
    let p = regions.count
    for a in 0..<p { for b in 0..<p { full[regions[a], regions[b]] = m[a * p + b] } }
    return full
}

/// Pearson correlation matrix of the region series.
///
/// `r_ij = sum_t (x_ti - mean_i)(x_tj - mean_j) / sqrt(sum_t (x_ti - mean_i)^2 sum_t (x_tj - mean_j)^2)`,
/// computed as the dot product of centred unit-norm columns, clamped to [-1, 1]; the
/// diagonal is exactly 1. Regions that are not valid (`validRegions`) get NaN rows and
/// columns; the others are computed exactly as if those regions were absent.
///
/// - Parameters:
///   - x: T x R series (T >= 2).
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Throws: `FunctionalError.invalidParameter` for a bad thread count.
public func pearsonCorrelation(_ x: TimeSeriesMatrix, threads: Int = 1) throws(FunctionalError) -> SquareMatrix {
    let threads = try validatedThreads(threads)
    let regions = validRegions(x)
    let p = regions.count
    let z = centredColumns(x, regions: regions, scaling: .unitNorm, threads: threads)
    var r = gram(z, rows: x.timePoints, columns: p, threads: threads)
    for i in 0..<p {
        for j in 0..<p { r[i * p + j] = i == j ? 1 : min(1, max(-1, r[i * p + j])) }
    }
    // Symmetrise exactly: the (i, j) and (j, i) dot products sum in the same order, but keep
    // the upper triangle as the reference.
    for i in 0..<p { for j in 0..<i { r[i * p + j] = r[j * p + i] } }
    return scatter(r, regions: regions, size: x.regions)
}

/// Fisher's z transform of a correlation matrix: `z_ij = atanh(r_ij)` off the diagonal.
///
/// The diagonal (r = 1, z = infinity) is reported as NaN (`n/a` in tables); NaN entries stay
/// NaN; an off-diagonal |r| = 1 gives +/- infinity. Fisher 1915, Biometrika 10:507-521.
public func fisherZ(_ r: SquareMatrix) -> SquareMatrix {
    var z = r
    for i in 0..<r.size {
        for j in 0..<r.size { z[i, j] = i == j ? .nan : atanh(r[i, j]) }
    }
    return z
}

/// A Ledoit-Wolf shrunk covariance estimate over the valid regions.
public struct LedoitWolfEstimate: Sendable, Equatable {
    /// R x R shrunk covariance; NaN rows/columns for invalid regions.
    public var covariance: SquareMatrix
    /// Shrinkage intensity in [0, 1].
    public var shrinkage: Double
    /// Shrinkage target scale, `mu = trace(S) / p`.
    public var mu: Double
    /// Regions the estimate covers (`validRegions`).
    public var regions: [Int]
}

/// Ledoit-Wolf shrunk covariance, as scikit-learn's `LedoitWolf()` (assume_centered=False).
///
/// With the valid series centred (n samples, p regions), `S = X^T X / n`,
/// `mu = trace(S) / p`, `delta = ||S - mu I||_F^2 / p`,
/// `beta = (sum_t ||x_t||^4 / n - ||X^T X||_F^2 / n^2) / (p n)` (x_t the t-th sample, the
/// form of scikit-learn's `ledoit_wolf_shrinkage`), clipped to `delta`;
/// shrinkage `s = beta / delta` (0 when beta = 0) and the estimate `(1 - s) S + s mu I`.
/// Ledoit & Wolf 2004, J Multivar Anal 88:365-411.
///
/// - Parameters:
///   - x: T x R series.
///   - standardize: z-score each series (sample sd, ddof 1) before estimating. nilearn's
///     `ConnectivityMeasure` standardizes only for kind "correlation"; for
///     "partial correlation" it fits `LedoitWolf` on the series as given, which is the
///     default here.
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Throws: `FunctionalError.tooFewTimePoints` when T < 2.
public func ledoitWolfCovariance(
    _ x: TimeSeriesMatrix, standardize: Bool = false, threads: Int = 1
) throws(FunctionalError) -> LedoitWolfEstimate {
    let threads = try validatedThreads(threads)
    let n = x.timePoints
    guard n >= 2 else { throw .tooFewTimePoints(needed: 2, available: n) }
    let regions = validRegions(x)
    let p = regions.count
    let z = centredColumns(x, regions: regions, scaling: standardize ? .zscore : .centreOnly, threads: threads)
    var g = gram(z, rows: n, columns: p, threads: threads)  // X^T X
    let nd = Double(n), pd = Double(p)
    var trace = 0.0
    for i in 0..<p { trace += g[i * p + i] }
    trace /= nd  // sum of emp_cov_trace
    let mu = p > 0 ? trace / pd : 0
    var shrinkage = 0.0
    if p > 1 {
        var deltaRaw = 0.0
        for v in g { deltaRaw += v * v }
        deltaRaw /= nd * nd
        var betaRaw = 0.0
        for t in 0..<n {
            var rowSquares = 0.0
            for c in 0..<p { rowSquares += z[c * n + t] * z[c * n + t] }
            betaRaw += rowSquares * rowSquares
        }
        var beta = (betaRaw / nd - deltaRaw) / (pd * nd)
        let delta = (deltaRaw - 2 * mu * trace + pd * mu * mu) / pd
        beta = min(beta, delta)
        shrinkage = beta == 0 ? 0 : beta / delta
    }
    for i in 0..<p {
        for j in 0..<p {
            g[i * p + j] = (1 - shrinkage) * g[i * p + j] / nd + (i == j ? shrinkage * mu : 0)
        }
    }
    return LedoitWolfEstimate(covariance: scatter(g, regions: regions, size: x.regions),
                              shrinkage: shrinkage, mu: mu, regions: regions)
}

/// Partial correlation from the Ledoit-Wolf covariance, as nilearn's
/// `ConnectivityMeasure(kind="partial correlation")` with its default estimator.
///
/// The precision matrix `P = C^-1` is computed by Cholesky factorisation of the shrunk
/// covariance `C` of the valid regions; then `partial_ij = -P_ij / sqrt(P_ii P_jj)` and the
/// diagonal is 1 (Whittaker 1990, Graphical Models in Applied Multivariate Statistics).
/// Invalid regions get NaN rows and columns.
///
/// - Parameters:
///   - x: T x R series.
///   - standardize: see `ledoitWolfCovariance`.
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Throws: `FunctionalError.covarianceNotPositiveDefinite` when the covariance is
///   singular (no shrinkage and T <= p), `.tooFewTimePoints` when T < 2.
public func partialCorrelation(
    _ x: TimeSeriesMatrix, standardize: Bool = false, threads: Int = 1
) throws(FunctionalError) -> SquareMatrix {
    let estimate = try ledoitWolfCovariance(x, standardize: standardize, threads: threads)
    let regions = estimate.regions
    let p = regions.count
    var c = [Double](repeating: 0, count: p * p)
    for a in 0..<p { for b in 0..<p { c[a * p + b] = estimate.covariance[regions[a], regions[b]] } }
    let precision = try choleskyInverse(c, size: p, threads: threads)
    var partial = [Double](repeating: 0, count: p * p)
    for i in 0..<p {
        for j in 0..<p {
            partial[i * p + j] = i == j ? 1
                : -precision[i * p + j] / (precision[i * p + i] * precision[j * p + j]).squareRoot()
        }
    }
    for i in 0..<p { for j in 0..<i { partial[i * p + j] = partial[j * p + i] } }
    return scatter(partial, regions: regions, size: x.regions)
}

/// Inverse of a symmetric positive definite matrix via `A = L L^T`, then solving
/// `L L^T x = e_j` for each column j (columns split across threads).
func choleskyInverse(_ a: [Double], size p: Int, threads: Int) throws(FunctionalError) -> [Double] {
    var l = [Double](repeating: 0, count: p * p)
    for j in 0..<p {
        var d = a[j * p + j]
        for k in 0..<j { d -= l[j * p + k] * l[j * p + k] }
        guard d > 0, d.isFinite else { throw .covarianceNotPositiveDefinite(pivot: j) }
        let ljj = d.squareRoot()
        l[j * p + j] = ljj
        for i in (j + 1)..<p {
            var s = a[i * p + j]
            for k in 0..<j { s -= l[i * p + k] * l[j * p + k] }
            l[i * p + j] = s / ljj
        }
    }
    let factor = l
    var inverse = [Double](repeating: 0, count: p * p)
    withSharedBuffer(&inverse) { out in
        forEachSlab(count: p, threads: threads) { columns in
            var y = [Double](repeating: 0, count: p)
            for j in columns {
                // L y = e_j: y_i = 0 for i < j.
                for i in 0..<j { y[i] = 0 }
                for i in j..<p {
                    var s = i == j ? 1.0 : 0.0
                    for k in j..<i { s -= factor[i * p + k] * y[k] }
                    y[i] = s / factor[i * p + i]
                }
                // L^T x = y, in place.
                for i in stride(from: p - 1, through: 0, by: -1) {
                    var s = y[i]
                    for k in (i + 1)..<p { s -= factor[k * p + i] * y[k] }
                    y[i] = s / factor[i * p + i]
                }
                for i in 0..<p { out[i * p + j] = y[i] }
            }
        }
    }
    // Symmetrise: keep the upper triangle.
    for i in 0..<p { for j in 0..<i { inverse[i * p + j] = inverse[j * p + i] } }
    return inverse
}
