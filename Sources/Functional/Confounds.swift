// Confound selection: named strategies (6P, 24P, 36P) resolved against the columns of an
// fMRIPrep confounds table, with fMRIPrep's expansion columns computed when absent.

/// Confound regressors resolved for one run: named columns of equal length.
///
/// Storage is column-major like `TimeSeriesMatrix`: column `c` is
/// `values[c * timePoints ..< (c + 1) * timePoints]`. All values are finite.
public struct ConfoundColumns: Sendable, Equatable {
    /// Column names, in regression order.
    public let names: [String]
    /// Number of time points (rows).
    public let timePoints: Int
    /// Column-major values.
    public let values: [Double]

    /// Wraps already finite, equally long columns.
    /// - Throws: `FunctionalError.shapeMismatch` on unequal lengths,
    ///   `FunctionalError.nonFiniteConfound` on a NaN or infinite value.
    public init(names: [String], columns: [[Double]]) throws(FunctionalError) {
        guard names.count == columns.count else {
            throw .shapeMismatch("confounds: \(names.count) names for \(columns.count) columns")
        }
        let t = columns.first?.count ?? 0
        var values: [Double] = []
        values.reserveCapacity(t * columns.count)
        for (name, column) in zip(names, columns) {
            guard column.count == t else {
                throw .shapeMismatch("confounds: column '\(name)' has \(column.count) rows, expected \(t)")
            }
            if let row = column.firstIndex(where: { !$0.isFinite }) {
                throw .nonFiniteConfound(column: name, row: row, value: column[row])
            }
            values.append(contentsOf: column)
        }
        self.names = names
        self.timePoints = t
        self.values = values
    }

    /// Column `c` (a copy).
    public func column(_ c: Int) -> [Double] { Array(values[(c * timePoints)..<((c + 1) * timePoints)]) }
}

/// A confound regression strategy, after Ciric et al. 2017 (NeuroImage 154:174-187) and
/// Satterthwaite et al. 2013 (NeuroImage 64:240-256), with fMRIPrep's column names.
///
/// - `none`: no confound regressors (detrending and filtering still apply).
/// - `sixP`: `trans_x, trans_y, trans_z, rot_x, rot_y, rot_z`.
/// - `twentyFourP`: the six, then for each its `_derivative1`, `_power2`, `_derivative1_power2`.
/// - `thirtySixP`: 24P plus `white_matter, csf, global_signal` and their three expansions.
/// - `columns`: an explicit list of column names (expansion suffixes are honoured too).
public enum ConfoundStrategy: Sendable, Equatable, CustomStringConvertible {
    case none
    case sixP
    case twentyFourP
    case thirtySixP
    case columns([String])

    /// The six rigid-body motion parameters, in fMRIPrep's names.
    public static let motionParameters = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    /// The three physiological signals of the 36P model.
    public static let physiologicalSignals = ["white_matter", "csf", "global_signal"]
    /// fMRIPrep's expansion suffixes, in the order they are appended.
    public static let expansionSuffixes = ["_derivative1", "_power2", "_derivative1_power2"]

    /// Parses "none", "6P", "24P", "36P" (case-insensitive, surrounding spaces ignored).
    /// - Throws: `FunctionalError.unknownConfoundStrategy` naming the unknown string.
    public init(parsing name: String) throws(FunctionalError) {
        switch name.trimmingSpaces.lowercased() {
        case "none": self = .none
        case "6p": self = .sixP
        case "24p": self = .twentyFourP
        case "36p": self = .thirtySixP
        default: throw .unknownConfoundStrategy(name)
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .sixP: return "6P"
        case .twentyFourP: return "24P"
        case .thirtySixP: return "36P"
        case .columns(let names): return names.joined(separator: ",")
        }
    }

    /// The column names this strategy regresses, in order.
    public var columnNames: [String] {
        func expanded(_ bases: [String]) -> [String] {
            bases + bases.flatMap { base in Self.expansionSuffixes.map { base + $0 } }
        }
        switch self {
        case .none: return []
        case .sixP: return Self.motionParameters
        case .twentyFourP: return expanded(Self.motionParameters)
        case .thirtySixP: return expanded(Self.motionParameters) + expanded(Self.physiologicalSignals)
        case .columns(let names): return names
        }
    }
}

/// Encoded as its name ("6P") or, for explicit columns, as the list of column names.
extension ConfoundStrategy: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let columns = try? container.decode([String].self) {
            self = .columns(columns)
        } else {
            let name = try container.decode(String.self)
            do { self = try ConfoundStrategy(parsing: name) } catch {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if case .columns(let names) = self { try container.encode(names) } else { try container.encode(description) }
    }
}

private extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }
}

/// Backward difference as fMRIPrep computes `_derivative1`: `d_0 = NaN`, `d_t = x_t - x_{t-1}`.
public func backwardDifference(_ x: [Double]) -> [Double] {
    guard !x.isEmpty else { return [] }
    var d = [Double](repeating: .nan, count: x.count)
    for t in 1..<x.count { d[t] = x[t] - x[t - 1] }
    return d
}

/// Selects the confound regressors of `strategy` from an fMRIPrep confounds table.
///
/// Each requested column is taken from `available` when present (fMRIPrep's own
/// expansion columns are used as they are). An absent expansion is computed as fMRIPrep
/// computes it from its base column: `_derivative1` is the backward difference with n/a
/// at row 0, `_power2` the square, `_derivative1_power2` the square of the derivative
/// (of fMRIPrep's `_derivative1` column when that one is present).
///
/// n/a handling follows nilearn's `load_confounds` (`_prepare_output`): fMRIPrep's
/// derivative columns are n/a on the first row only, and nilearn replaces a first-row n/a
/// by the value of the second row. The same is done here; an n/a anywhere else is an
/// error (nilearn would fail later in `signal.clean`). nilearn also demeans the confounds;
/// here `cleanSignals` detrends them, which includes demeaning.
///
/// - Parameters:
///   - strategy: the strategy to resolve.
///   - available: the confounds table, column name to values, NaN for `n/a`.
/// - Returns: the resolved columns, in `strategy.columnNames` order.
/// - Throws: `FunctionalError.missingConfoundColumn` naming the first base column that is
///   absent, `.shapeMismatch` on unequal column lengths, `.nonFiniteConfound` for an n/a
///   after row 0 (or on both of the first two rows).
public func resolveConfounds(
    _ strategy: ConfoundStrategy, available: [String: [Double]]
) throws(FunctionalError) -> ConfoundColumns {
    let names = strategy.columnNames
    var columns: [[Double]] = []
    columns.reserveCapacity(names.count)
    for name in names {
        var column = try confoundColumn(named: name, available: available)
        if column.count > 1, !column[0].isFinite { column[0] = column[1] }
        columns.append(column)
    }
    return try ConfoundColumns(names: names, columns: columns)
}

/// A column by name, computing fMRIPrep's expansions from the base column when absent.
private func confoundColumn(named name: String, available: [String: [Double]]) throws(FunctionalError) -> [Double] {
    if let column = available[name] { return column }
    if name.hasSuffix("_derivative1_power2") {
        let derivative = try confoundColumn(named: String(name.dropLast("_power2".count)), available: available)
        return derivative.map { $0 * $0 }
    }
    if name.hasSuffix("_power2") {
        return try confoundColumn(named: String(name.dropLast("_power2".count)), available: available).map { $0 * $0 }
    }
    if name.hasSuffix("_derivative1") {
        return backwardDifference(try confoundColumn(named: String(name.dropLast("_derivative1".count)), available: available))
    }
    throw .missingConfoundColumn(name)
}
