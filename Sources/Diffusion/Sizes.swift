/// The product of non-negative sizes, or nil when one is negative or the product overflows
/// (sizes come from headers and tables the user gave, so they are checked, never trapped on).
func checkedProduct(_ factors: Int...) -> Int? {
    var product = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        product = p
    }
    return product
}
