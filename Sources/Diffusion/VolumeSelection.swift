// Which volumes of a DWI series the tensor is fitted to: every volume of a single shell,
// the low-b part of a multi-shell series, or the volumes at or below a given b-value.

/// The volumes of a gradient table kept for the tensor fit, the rule that chose them, and
/// what was left out (``GradientTable/selecting(maximumB:)``).
///
/// b-values here are the table's (as written, after the `BValueScaling` of non-unit vectors,
/// see ``GradientTable``); shells are b rounded to the nearest 100 (``GradientTable/shells``).
public struct VolumeSelection: Sendable, Equatable {
    /// How the volumes were chosen.
    public enum Rule: Sendable, Equatable, CustomStringConvertible {
        /// Automatic, one shell: every volume, whatever its b-value.
        case singleShell
        /// Automatic, several shells: the volumes with b <= the limit as written
        /// (``GradientTable/automaticMaximumB``).
        case automaticLimit(Double)
        /// Automatic, several shells, none at or below the limit: the lowest shell (its b).
        case lowestShell(Double)
        /// Given: the volumes with b <= this, as written.
        case maximum(Double)

        public var description: String {
            switch self {
            case .singleShell:
                return "automatic: single shell, every volume"
            case .automaticLimit(let limit):
                return "automatic: multi-shell, b <= \(GradientTable.text(limit))"
            case .lowestShell(let shell):
                return "automatic: multi-shell with no shell at b <= \(GradientTable.text(GradientTable.automaticMaximumB)), the lowest shell (b ~ \(GradientTable.text(shell)))"
            case .maximum(let limit):
                return "b <= \(GradientTable.text(limit))"
            }
        }
    }

    /// The rule that chose the volumes.
    public let rule: Rule
    /// The table of the kept volumes, in their original order.
    public let table: GradientTable
    /// Indices of the kept volumes in the full table, ascending, so the caller can take the
    /// same volumes from the image.
    public let volumeIndices: [Int]
    /// Indices of the volumes left out, ascending.
    public let leftOutIndices: [Int]
    /// The full table the volumes were chosen from.
    public let full: GradientTable

    /// The distinct b-values of the kept volumes (b=0 volumes included), ascending.
    public var bValuesUsed: [Double] { GradientTable.distinct(volumeIndices.map { full.bValues[$0] }) }
    /// The distinct b-values of the volumes left out, ascending.
    public var bValuesLeftOut: [Double] { GradientTable.distinct(leftOutIndices.map { full.bValues[$0] }) }
    /// The non-zero shells of the kept volumes, ascending.
    public var shellsUsed: [Double] { table.shells }
    /// The non-zero shells of the volumes left out, ascending.
    public var shellsLeftOut: [Double] {
        let shellB = full.shellBValues
        return GradientTable.distinct(leftOutIndices.map { shellB[$0] }.filter { $0 > 0 })
    }
    /// Shells of which some volumes are kept and others left out (a limit between the
    /// per-direction b-values of one shell, such as 2000 for a shell written as 1995 and 2005),
    /// with the number of volumes of each part.
    public var splitShells: [(shell: Double, kept: Int, leftOut: Int)] {
        let shellB = full.shellBValues
        return Set(shellsUsed).intersection(shellsLeftOut).sorted().map { shell in
            (shell, volumeIndices.filter { shellB[$0] == shell }.count, leftOutIndices.filter { shellB[$0] == shell }.count)
        }
    }
}

extension GradientTable {
    /// The b-value limit of the automatic choice in multi-shell series (s/mm^2).
    ///
    /// The tensor model holds at low b: at higher b the signal decays more slowly than a
    /// single exponential (diffusional kurtosis), which lowers the fitted diffusivities and
    /// changes FA (Jensen et al. 2005; Veraart et al. 2011). 1500 keeps the usual b=1000 (and
    /// b=1500) DTI shells of multi-shell protocols and leaves out the b=2000-3000 shells
    /// acquired for other models.
    public static let automaticMaximumB = 1500.0

    /// Chooses the volumes the tensor is fitted to. b=0 volumes are always kept.
    ///
    /// - `maximumB` given: the volumes with b <= `maximumB` as written (b-values are not
    ///   rounded to their shell here: a limit of 2000 keeps 1995 and leaves out 2005).
    /// - `maximumB` nil (automatic), a single shell (every weighted b rounds to the same
    ///   shell): every volume, at any b-value, as MRtrix3's `dwi2tensor` and DIPY fit it.
    /// - automatic, several shells: the volumes with b <= ``automaticMaximumB`` as written;
    ///   when that leaves no weighted volume (the lowest shell is above the limit), the
    ///   lowest shell instead.
    ///
    /// - Parameter maximumB: the largest b-value kept (s/mm^2), or nil for the automatic rule.
    /// - Returns: the kept volumes, the rule applied and what was left out.
    /// - Throws: ``GradientTableError/noWeightedVolumeAtOrBelow(source:maximumB:bValues:)``
    ///   when `maximumB` is below every diffusion-weighted volume.
    public func selecting(maximumB: Double?) throws -> VolumeSelection {
        let b0 = isB0
        let kept: [Int]
        let rule: VolumeSelection.Rule
        if let maximumB {
            kept = bValues.indices.filter { b0[$0] || bValues[$0] <= maximumB }
            rule = .maximum(maximumB)
            guard kept.contains(where: { !b0[$0] }) else {
                throw GradientTableError.noWeightedVolumeAtOrBelow(source: source, maximumB: maximumB,
                                                                   bValues: Self.distinct(bValues))
            }
        } else if shells.count == 1 {
            kept = Array(bValues.indices)
            rule = .singleShell
        } else {
            let limit = Self.automaticMaximumB
            let low = bValues.indices.filter { b0[$0] || bValues[$0] <= limit }
            if low.contains(where: { !b0[$0] }) {
                kept = low
                rule = .automaticLimit(limit)
            } else {
                // The initialiser guarantees a weighted volume, so there is a lowest shell.
                let lowest = shells[0]
                let shellB = shellBValues
                kept = bValues.indices.filter { b0[$0] || shellB[$0] == lowest }
                rule = .lowestShell(lowest)
            }
        }
        let keptSet = Set(kept)
        let table = GradientTable(validatedBValues: kept.map { bValues[$0] }, directions: kept.map { directions[$0] },
                                  b0Threshold: b0Threshold, source: source)
        return VolumeSelection(rule: rule, table: table, volumeIndices: kept,
                               leftOutIndices: bValues.indices.filter { !keptSet.contains($0) }, full: self)
    }

    /// The distinct values, ascending.
    static func distinct(_ values: [Double]) -> [Double] { Array(Set(values)).sorted() }

    /// A b-value as text: integers without a decimal point (2000), others as Swift prints them (987.5).
    public static func text(_ b: Double) -> String {
        b.rounded() == b && abs(b) < 1e15 ? String(Int64(b)) : String(b)
    }

    /// Distinct b-values as short text for messages, one item per shell (b rounded to the
    /// nearest 100): the value when the shell has one ("0, 1000, 2000"), else its range
    /// ("0, 987-1003" for a table whose every direction has its own b-value). Values are
    /// shown rounded to integers; the sidecar lists them exactly.
    public static func describe(bValues: [Double]) -> String {
        var groups: [(shell: Double, low: Double, high: Double)] = []
        for b in distinct(bValues) {
            let shell = (b / shellRounding).rounded() * shellRounding
            if let last = groups.last, last.shell == shell {
                groups[groups.count - 1].high = b
            } else {
                groups.append((shell, b, b))
            }
        }
        guard !groups.isEmpty else { return "none" }
        return groups.map { group in
            let low = text(group.low.rounded()), high = text(group.high.rounded())
            return low == high ? low : "\(low)-\(high)"
        }.joined(separator: ", ")
    }
}
