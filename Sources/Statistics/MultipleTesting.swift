/// Corrections for testing many hypotheses at once.
public enum MultipleTesting {
    /// Benjamini-Hochberg q-values (Benjamini & Hochberg 1995; the adjusted p-values of
    /// statsmodels' `multipletests(p, method='fdr_bh')`).
    ///
    /// With the m p-values sorted, p_(1) ≤ … ≤ p_(m), q_(i) = min_{j ≥ i} p_(j) / (j/m),
    /// capped at 1, and each q returned in the position of its p. The arithmetic is
    /// statsmodels' (p divided by j/m, then a running minimum from the largest), so the
    /// numbers agree to the last bit. Equal p-values get equal q-values, whatever their order.
    ///
    /// - Parameter pValues: nil entries (a test that could not be done) are not part of the
    ///   family: they get nil and do not count in m.
    /// - Returns: one q-value per p-value.
    public static func benjaminiHochberg(_ pValues: [Double?]) -> [Double?] {
        let tested = pValues.indices.filter { pValues[$0].map { $0.isFinite } ?? false }
        let m = tested.count
        var result = [Double?](repeating: nil, count: pValues.count)
        guard m > 0 else { return result }
        let sorted = tested.sorted { (pValues[$0]!, $0) < (pValues[$1]!, $1) }
        var running = Double.infinity
        for rank in stride(from: m, through: 1, by: -1) {
            let index = sorted[rank - 1]
            let raw = pValues[index]! / (Double(rank) / Double(m))
            running = min(running, raw)
            result[index] = min(running, 1)
        }
        return result
    }
}
