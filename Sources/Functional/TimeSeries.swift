// Data types shared by the functional maths: region time series, square
// connectivity matrices, the module's typed errors and the check of a thread
// count (the parallel loops themselves are SlabParallel's).

import Dispatch

/// Region time series: `timePoints` samples (rows, T) for each of `regions` series (columns, R).
///
/// Storage is **column-major per region**: the samples of region `r` are the contiguous
/// slice `values[r * timePoints ..< (r + 1) * timePoints]`. Every per-region operation
/// (detrending, filtering, regression, spectra) therefore runs over one contiguous buffer.
///
/// A region whose series is missing is represented by NaN samples; the cleaning step
/// also turns exactly constant inputs into NaN columns, and the connectivity functions
/// report such regions as NaN rows and columns.
public struct TimeSeriesMatrix: Sendable, Equatable {
    /// Number of time points (volumes), T.
    public let timePoints: Int
    /// Number of regions (series), R.
    public let regions: Int
    /// Column-major samples: `values[r * timePoints + t]`.
    public var values: [Double]

    /// Wraps column-major samples (`values[r * timePoints + t]`).
    /// - Throws: `FunctionalError.shapeMismatch` when `values.count != timePoints * regions`
    ///   or a dimension is negative.
    public init(timePoints: Int, regions: Int, values: [Double]) throws(FunctionalError) {
        guard timePoints >= 0, regions >= 0, values.count == timePoints * regions else {
            throw .shapeMismatch("time series: \(values.count) values for \(timePoints) time points x \(regions) regions")
        }
        self.timePoints = timePoints
        self.regions = regions
        self.values = values
    }

    /// Builds the matrix from one array per region (each of length T).
    /// - Throws: `FunctionalError.shapeMismatch` when the columns differ in length.
    public init(regionSeries: [[Double]]) throws(FunctionalError) {
        let t = regionSeries.first?.count ?? 0
        var values: [Double] = []
        values.reserveCapacity(t * regionSeries.count)
        for (r, column) in regionSeries.enumerated() {
            guard column.count == t else {
                throw .shapeMismatch("time series: region \(r) has \(column.count) time points, region 0 has \(t)")
            }
            values.append(contentsOf: column)
        }
        self.timePoints = t
        self.regions = regionSeries.count
        self.values = values
    }

    /// Builds the matrix from row-major samples (`rowMajor[t * regions + r]`), the layout of
    /// a T x R table as read from a TSV file.
    /// - Throws: `FunctionalError.shapeMismatch` when the count does not match.
    public init(timePoints: Int, regions: Int, rowMajor: [Double]) throws(FunctionalError) {
        guard timePoints >= 0, regions >= 0, rowMajor.count == timePoints * regions else {
            throw .shapeMismatch("time series: \(rowMajor.count) values for \(timePoints) time points x \(regions) regions")
        }
        var values = [Double](repeating: 0, count: rowMajor.count)
        for t in 0..<timePoints {
            for r in 0..<regions { values[r * timePoints + t] = rowMajor[t * regions + r] }
        }
        self.timePoints = timePoints
        self.regions = regions
        self.values = values
    }

    /// Sample `t` of region `r`.
    public subscript(t: Int, r: Int) -> Double {
        get { values[r * timePoints + t] }
        set { values[r * timePoints + t] = newValue }
    }

    /// The series of region `r` (a copy).
    public func series(_ r: Int) -> [Double] {
        Array(values[(r * timePoints)..<((r + 1) * timePoints)])
    }
}

/// A symmetric R x R matrix (correlations, partial correlations, Fisher z), stored
/// row-major: `values[i * size + j]`. NaN marks entries that are undefined (missing regions,
/// the Fisher-z diagonal).
public struct SquareMatrix: Sendable, Equatable {
    /// Number of rows and columns.
    public let size: Int
    /// Row-major entries.
    public var values: [Double]

    /// A matrix filled with `value`.
    public init(size: Int, repeating value: Double) {
        self.size = size
        self.values = [Double](repeating: value, count: size * size)
    }

    /// Wraps row-major entries.
    /// - Throws: `FunctionalError.shapeMismatch` when `values.count != size * size`.
    public init(size: Int, values: [Double]) throws(FunctionalError) {
        guard size >= 0, values.count == size * size else {
            throw .shapeMismatch("square matrix: \(values.count) values for size \(size)")
        }
        self.size = size
        self.values = values
    }

    /// Entry (i, j).
    public subscript(i: Int, j: Int) -> Double {
        get { values[i * size + j] }
        set { values[i * size + j] = newValue }
    }
}

/// Errors of the functional maths. Each case says what was wrong and where.
public enum FunctionalError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Array sizes do not agree (the message says which).
    case shapeMismatch(String)
    /// A confound strategy name that is not one of none, 6P, 24P, 36P.
    case unknownConfoundStrategy(String)
    /// A confound column the strategy needs is not among the available columns.
    case missingConfoundColumn(String)
    /// A confound column holds a NaN (n/a) or infinite value outside the first row; `row`
    /// counts data rows from 0, so the file line is `row + 2` (the header is line 1).
    case nonFiniteConfound(column: String, row: Int, value: Double)
    /// A parameter is out of range (the message says which and why).
    case invalidParameter(String)
    /// Too few time points remain for the requested operation.
    case tooFewTimePoints(needed: Int, available: Int)
    /// The covariance of the valid regions is not positive definite (Cholesky failed at `pivot`).
    case covarianceNotPositiveDefinite(pivot: Int)
    /// Detrending, the band-pass, confound regression and censoring leave fewer degrees of
    /// freedom than `minimum` (``DegreesOfFreedom``).
    case tooFewDegreesOfFreedom(DegreesOfFreedom, minimum: Double)

    public var description: String {
        switch self {
        case .shapeMismatch(let what): return "shape mismatch: \(what)"
        case .unknownConfoundStrategy(let name):
            return "unknown confound strategy '\(name)' (expected none, 6P, 24P or 36P)"
        case .missingConfoundColumn(let name): return "confounds: missing column '\(name)'"
        case .nonFiniteConfound(let column, let row, let value):
            let shown = value.isNaN ? "n/a" : (value > 0 ? "inf" : "-inf")
            return "confounds: line \(row + 2) (the header is line 1): column '\(column)' is \(shown)"
        case .invalidParameter(let what): return "invalid parameter: \(what)"
        case .tooFewTimePoints(let needed, let available):
            return "too few time points: \(available) available, \(needed) needed"
        case .covarianceNotPositiveDefinite(let pivot):
            return "covariance is not positive definite (Cholesky failed at pivot \(pivot))"
        case let .tooFewDegreesOfFreedom(dof, minimum):
            return "too few degrees of freedom left to estimate anything: \(dof) (at least \(formatted(minimum)) needed); use fewer confounds, a wider band or no filter, less censoring, or a longer run"
        }
    }
}

/// Checks a `threads:` argument.
func validatedThreads(_ threads: Int) throws(FunctionalError) -> Int {
    guard threads >= 1 else { throw .invalidParameter("threads must be at least 1, got \(threads)") }
    return threads
}

/// A number as short as it reads (10, not 10.0).
private func formatted(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
