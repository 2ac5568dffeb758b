import Foundation

/// The linear mixed model y_ij = β₀ + β₁ x_ij + b_i + e_ij with a random intercept per group,
/// b_i ~ N(0, σ_b²), e_ij ~ N(0, σ²), all independent (Laird & Ware 1982), fitted by
/// restricted maximum likelihood (REML; Patterson & Thompson 1971).
///
/// **Fit.** With λ = σ_b²/σ², group i's covariance is σ² V_i, V_i = I + λ J (J the matrix of
/// ones), V_i⁻¹ = I − c_i J with c_i = λ / (1 + n_i λ), and |V_i| = 1 + n_i λ. For a given λ,
/// β̂(λ) is the generalised least-squares solution (X'V⁻¹X)⁻¹X'V⁻¹y and σ̂²(λ) = r'V⁻¹r / (N − p),
/// r = y − Xβ̂, p = 2; profiling them out leaves the REML criterion (−2 log-likelihood up to a
/// constant; Harville 1977, eq. 4.6; Bates et al. 2015, lme4, §3.4)
///
///     d(λ) = (N − p) log(r'V⁻¹r) + Σ_i log(1 + n_i λ) + log |X'V⁻¹X|,
///
/// minimised over λ ≥ 0 in ρ = λ / (1 + λ) ∈ [0, 1): a grid of 64 points, then bisection on
/// the sign of the analytic derivative d'(λ) in the bracket around the best point, to machine
/// precision. When d(0) is no larger than the interior minimum, the fit is on the boundary: σ_b² = 0 and the model is the
/// ordinary regression (β̂ = OLS, σ̂² = RSS / (N − 2)).
///
/// **Inference for the slope.** Var(β̂) = σ̂² (X'V⁻¹X)⁻¹ (the model-based covariance of lme4
/// and lmerTest). The degrees of freedom of t = β̂₁ / SE are Satterthwaite's (Satterthwaite
/// 1946; Giesbrecht & Burns 1985; as lmerTest computes them, Kuznetsova, Brockhoff &
/// Christensen 2017):
///
///     ν = 2 v(θ̂)² / (g' A g),
///
/// with θ = (σ_b², σ²), v(θ) = Var(β̂₁), g = ∂v/∂θ (g_k = [C X'Σ⁻¹ Σ_k Σ⁻¹ X C]₁₁, C = Var(β̂),
/// Σ_k = ∂Σ/∂θ_k: J per group for σ_b², I for σ²), and A = I(θ̂)⁻¹ the inverse of the REML
/// expected information I_kl = ½ tr(P Σ_k P Σ_l), P = Σ⁻¹ − Σ⁻¹X C X'Σ⁻¹. lmerTest uses the
/// numerical Hessian of the deviance (observed information) instead; both coincide on balanced
/// designs, where ν = N − m − 1 (m groups) exactly. The same formula is used on the boundary
/// σ̂_b² = 0. The p-value is two-sided from Student's t with ν degrees of freedom, the interval
/// β̂₁ ± t_{0.975, ν} SE.
///
/// All per-group algebra uses the closed forms of αI + βJ, so a fit costs O(N) per
/// evaluation and never forms an N × N matrix.
public struct RandomInterceptModel: Sendable {
    /// One fitted slope with its inference.
    public struct Fit: Sendable, Equatable {
        public var intercept: Double
        public var slope: Double
        public var standardError: Double
        public var degreesOfFreedom: Double
        public var confidenceInterval: (low: Double, high: Double)
        public var pValue: Double
        /// σ̂_b², 0 on the boundary.
        public var interceptVariance: Double
        /// σ̂².
        public var residualVariance: Double
        /// The REML criterion d(λ̂) above (lower is better), for comparisons between fits.
        public var criterion: Double
        public var groups: Int
        public var observations: Int

        public static func == (a: Fit, b: Fit) -> Bool {
            a.intercept == b.intercept && a.slope == b.slope && a.standardError == b.standardError
                && a.degreesOfFreedom == b.degreesOfFreedom && a.pValue == b.pValue
                && a.interceptVariance == b.interceptVariance && a.residualVariance == b.residualVariance
        }
    }

    /// Fits the model to observations (group, x, y).
    ///
    /// - Parameters:
    ///   - groups: a group label per observation (any integers).
    ///   - x: the covariate (e.g. months since baseline).
    ///   - y: the outcome; observations where x or y is not finite are left out.
    /// - Returns: nil when the model cannot be estimated: fewer than two groups, no group
    ///   with two observations (σ_b² and σ² then cannot be told apart), x constant, fewer than
    ///   four observations (N − p < 2), or a residual variance of 0 (a perfect fit).
    public static func fit(groups: [Int], x: [Double], y: [Double]) -> Fit? {
        precondition(groups.count == x.count && x.count == y.count, "one group, x and y per observation")
        guard let data = GroupedData(groups: groups, x: x, y: y) else { return nil }
        guard let lambda = data.minimiseCriterion() else { return nil }
        return data.inference(lambda: lambda)
    }
}

/// A value αI + βJ in one group of size n (J the n × n matrix of ones). Such values form a
/// commutative algebra: (α₁I + β₁J)(α₂I + β₂J) = α₁α₂ I + (α₁β₂ + β₁α₂ + n β₁β₂) J.
struct GroupMatrix {
    var identity: Double
    var ones: Double
    let size: Double

    static func * (a: GroupMatrix, b: GroupMatrix) -> GroupMatrix {
        GroupMatrix(identity: a.identity * b.identity,
                    ones: a.identity * b.ones + a.ones * b.identity + a.size * a.ones * b.ones, size: a.size)
    }

    var trace: Double { size * (identity + ones) }
}

/// A symmetric 2 × 2 matrix [[a, b], [b, d]].
struct Symmetric2: Equatable {
    var a = 0.0, b = 0.0, d = 0.0
    var determinant: Double { a * d - b * b }
    var inverse: Symmetric2? {
        let det = determinant
        guard det > 0, det.isFinite else { return nil }
        return Symmetric2(a: d / det, b: -b / det, d: a / det)
    }
    static func + (l: Symmetric2, r: Symmetric2) -> Symmetric2 { Symmetric2(a: l.a + r.a, b: l.b + r.b, d: l.d + r.d) }
    static func * (s: Double, m: Symmetric2) -> Symmetric2 { Symmetric2(a: s * m.a, b: s * m.b, d: s * m.d) }
    func times(_ v: (Double, Double)) -> (Double, Double) { (a * v.0 + b * v.1, b * v.0 + d * v.1) }
    /// tr(self · other) for symmetric matrices.
    func traceOfProduct(_ o: Symmetric2) -> Double { a * o.a + 2 * b * o.b + d * o.d }
}

/// The observations sorted by group, centred, with each group's sums.
struct GroupedData {
    struct Group { var start: Int; var count: Int; var sumX: Double; var sumXX: Double }
    var x: [Double] = []
    var y: [Double] = []
    var groups: [Group] = []
    let xMean: Double, yMean: Double
    var n: Double { Double(x.count) }

    init?(groups labels: [Int], x rawX: [Double], y rawY: [Double]) {
        let kept = labels.indices.filter { rawX[$0].isFinite && rawY[$0].isFinite }
        let order = kept.sorted { (labels[$0], $0) < (labels[$1], $1) }
        guard order.count >= 4 else { return nil }
        // Centring changes only the intercept and keeps the sums of squares well conditioned.
        xMean = order.reduce(0) { $0 + rawX[$1] } / Double(order.count)
        yMean = order.reduce(0) { $0 + rawY[$1] } / Double(order.count)
        for (position, i) in order.enumerated() {
            if position == 0 || labels[order[position - 1]] != labels[i] {
                self.groups.append(Group(start: position, count: 0, sumX: 0, sumXX: 0))
            }
            let cx = rawX[i] - xMean
            x.append(cx)
            y.append(rawY[i] - yMean)
            self.groups[self.groups.count - 1].count += 1
            self.groups[self.groups.count - 1].sumX += cx
            self.groups[self.groups.count - 1].sumXX += cx * cx
        }
        guard self.groups.count >= 2, self.groups.contains(where: { $0.count >= 2 }),
              x.contains(where: { $0 != 0 }) else { return nil }
    }

    /// V_i⁻¹ = I − c J for the ratio λ, as a group matrix.
    func inverseCovariance(_ group: Group, lambda: Double) -> GroupMatrix {
        GroupMatrix(identity: 1, ones: -lambda / (1 + Double(group.count) * lambda), size: Double(group.count))
    }

    /// X'MX for a group matrix M per group (X = [1, x]).
    func crossProduct(_ matrix: (Group) -> GroupMatrix) -> Symmetric2 {
        var total = Symmetric2()
        for group in groups {
            let m = matrix(group), n = Double(group.count)
            total = total + Symmetric2(a: m.identity * n + m.ones * n * n,
                                       b: m.identity * group.sumX + m.ones * n * group.sumX,
                                       d: m.identity * group.sumXX + m.ones * group.sumX * group.sumX)
        }
        return total
    }

    /// GLS for the ratio λ: β, X'V⁻¹X, r'V⁻¹r (r computed observation by observation).
    func generalisedLeastSquares(lambda: Double) -> (beta: (Double, Double), information: Symmetric2, weightedRSS: Double)? {
        let information = crossProduct { inverseCovariance($0, lambda: lambda) }
        var rhs = (0.0, 0.0)
        for group in groups {
            let c = inverseCovariance(group, lambda: lambda).ones
            var sumY = 0.0, sumXY = 0.0
            for k in group.start..<(group.start + group.count) { sumY += y[k]; sumXY += x[k] * y[k] }
            rhs.0 += sumY + c * Double(group.count) * sumY
            rhs.1 += sumXY + c * group.sumX * sumY
        }
        guard let inverse = information.inverse else { return nil }
        let beta = inverse.times(rhs)
        var weighted = 0.0
        for group in groups {
            let c = inverseCovariance(group, lambda: lambda).ones
            var squares = 0.0, sum = 0.0
            for k in group.start..<(group.start + group.count) {
                let r = y[k] - beta.0 - beta.1 * x[k]
                squares += r * r
                sum += r
            }
            weighted += squares + c * sum * sum
        }
        return (beta, information, weighted)
    }

    /// The REML criterion d(λ) (infinite where the GLS fails or fits perfectly).
    func criterion(lambda: Double) -> Double {
        guard let gls = generalisedLeastSquares(lambda: lambda), gls.weightedRSS > 0 else { return .infinity }
        var logDeterminants = 0.0
        for group in groups { logDeterminants += log1p(Double(group.count) * lambda) }
        return (n - 2) * log(gls.weightedRSS) + logDeterminants + log(gls.information.determinant)
    }

    /// The derivative d'(λ) of the REML criterion (β profiled out, so by the envelope
    /// theorem only W moves; ∂c_i/∂λ = 1/(1 + n_i λ)²):
    ///
    ///     d'(λ) = −(N − p) Σ c_i' (1'r_i)² / r'V⁻¹r + Σ n_i / (1 + n_i λ) − Σ c_i' s_i'(X'V⁻¹X)⁻¹s_i,
    ///
    /// s_i = X_i'1. Its sign locates the minimum to machine precision, where the criterion
    /// itself, flat at the minimum, only gives √ε.
    func criterionSlope(lambda: Double) -> Double? {
        guard let gls = generalisedLeastSquares(lambda: lambda), gls.weightedRSS > 0,
              let inverse = gls.information.inverse else { return nil }
        var residualTerm = 0.0, determinantTerm = 0.0, designTerm = 0.0
        for group in groups {
            let n = Double(group.count)
            let dc = 1 / ((1 + n * lambda) * (1 + n * lambda))
            var sum = 0.0
            for k in group.start..<(group.start + group.count) { sum += y[k] - gls.beta.0 - gls.beta.1 * x[k] }
            residualTerm += dc * sum * sum
            determinantTerm += n / (1 + n * lambda)
            let s = (n, group.sumX)
            let As = inverse.times(s)
            designTerm += dc * (s.0 * As.0 + s.1 * As.1)
        }
        return -(self.n - 2) * residualTerm / gls.weightedRSS + determinantTerm - designTerm
    }

    /// λ̂: the criterion on a grid of ρ = λ/(1+λ) ∈ [0, 1), then bisection on the sign of
    /// d' in the bracket around the best grid point; 0 (the boundary) when the best point is
    /// ρ = 0 and d'(0) ≥ 0, or when d(0) is no larger than the interior minimum; nil when the
    /// criterion keeps falling towards ρ = 1 (no residual variance within participants:
    /// σ² → 0, nothing to estimate it from).
    func minimiseCriterion() -> Double? {
        func lambda(_ rho: Double) -> Double { rho / (1 - rho) }
        let top = 1 - 1e-9
        let steps = 64
        let grid = (0...steps).map { top * Double($0) / Double(steps) }
        let values = grid.map { criterion(lambda: lambda($0)) }
        var best = 0
        for k in values.indices where values[k] < values[best] { best = k }
        guard values[best].isFinite, best < steps else { return nil }
        if best == 0, let slope = criterionSlope(lambda: 0), slope >= 0 { return 0 }
        var low = grid[max(best - 1, 0)], high = grid[best + 1]
        for _ in 0..<200 {
            let mid = 0.5 * (low + high)
            if mid <= low || mid >= high { break }
            guard let slope = criterionSlope(lambda: lambda(mid)) else { return nil }
            if slope < 0 { low = mid } else { high = mid }
        }
        let rho = 0.5 * (low + high)
        let interior = criterion(lambda: lambda(rho))
        if values[0] <= interior { return 0 }
        if !interior.isFinite || rho > top - 1e-6 { return nil }
        return lambda(rho)
    }

    /// Slope, SE, Satterthwaite df, interval and p at λ̂; nil when degenerate.
    func inference(lambda: Double) -> RandomInterceptModel.Fit? {
        guard let gls = generalisedLeastSquares(lambda: lambda), let unscaled = gls.information.inverse else { return nil }
        let sigma2 = gls.weightedRSS / (n - 2)
        guard sigma2 > 0, sigma2.isFinite else { return nil }
        let covariance = sigma2 * unscaled
        let variance = covariance.d
        guard variance > 0 else { return nil }
        let df = satterthwaite(lambda: lambda, sigma2: sigma2, covariance: covariance)
        guard let df, let t = StudentT(degreesOfFreedom: df) else { return nil }
        let se = variance.squareRoot()
        let half = t.quantile(0.975) * se
        let slope = gls.beta.1
        return RandomInterceptModel.Fit(
            intercept: gls.beta.0 + yMean - slope * xMean, slope: slope, standardError: se, degreesOfFreedom: df,
            confidenceInterval: (slope - half, slope + half), pValue: t.twoSidedTail(slope / se),
            interceptVariance: lambda * sigma2, residualVariance: sigma2, criterion: criterion(lambda: lambda),
            groups: groups.count, observations: x.count)
    }

    /// ν = 2 v² / (g' I⁻¹ g) with the REML expected information (see ``RandomInterceptModel``).
    func satterthwaite(lambda: Double, sigma2: Double, covariance: Symmetric2) -> Double? {
        // Σ_i⁻¹ = (I − c J) / σ²; the derivatives of Σ are J (σ_b²) and I (σ²).
        func inverse(_ g: Group) -> GroupMatrix {
            let v = inverseCovariance(g, lambda: lambda)
            return GroupMatrix(identity: v.identity / sigma2, ones: v.ones / sigma2, size: v.size)
        }
        let derivatives: [(Group) -> GroupMatrix] = [
            { GroupMatrix(identity: 0, ones: 1, size: Double($0.count)) },
            { GroupMatrix(identity: 1, ones: 0, size: Double($0.count)) },
        ]
        // X'Σ⁻¹ Σ_k Σ⁻¹X and X'Σ⁻¹ Σ_k Σ⁻¹ Σ_l Σ⁻¹X, and tr(Σ⁻¹Σ_kΣ⁻¹Σ_l).
        let first = (0..<2).map { k in crossProduct { g in inverse(g) * derivatives[k](g) * inverse(g) } }
        var information = [[0.0, 0.0], [0.0, 0.0]]
        for k in 0..<2 {
            for l in k..<2 {
                var traceTerm = 0.0
                for g in groups { traceTerm += (inverse(g) * derivatives[k](g) * inverse(g) * derivatives[l](g)).trace }
                let second = crossProduct { g in inverse(g) * derivatives[k](g) * inverse(g) * derivatives[l](g) * inverse(g) }
                let value = 0.5 * (traceTerm - 2 * covariance.traceOfProduct(second)
                                   + (Matrix2(covariance) * Matrix2(first[k]) * Matrix2(covariance) * Matrix2(first[l])).trace)
                information[k][l] = value
                information[l][k] = value
            }
        }
        let gradient = first.map { m -> Double in
            // [C M C]₁₁ = (C e₁)' M (C e₁).
            let ce = (covariance.b, covariance.d)
            let mce = m.times(ce)
            return ce.0 * mce.0 + ce.1 * mce.1
        }
        let info = Symmetric2(a: information[0][0], b: information[0][1], d: information[1][1])
        let variance = covariance.d
        let quadratic: Double
        if let inv = info.inverse {
            let ig = inv.times((gradient[0], gradient[1]))
            quadratic = gradient[0] * ig.0 + gradient[1] * ig.1
        } else if info.d > 0 {
            // σ_b² not estimable from the information (no group spread): σ² alone.
            quadratic = gradient[1] * gradient[1] / info.d
        } else {
            return nil
        }
        guard quadratic > 0, quadratic.isFinite else { return nil }
        let df = 2 * variance * variance / quadratic
        return df.isFinite && df > 0 ? df : nil
    }
}

/// A general 2 × 2 matrix, for products of symmetric ones.
struct Matrix2 {
    var m00, m01, m10, m11: Double
    init(_ s: Symmetric2) { m00 = s.a; m01 = s.b; m10 = s.b; m11 = s.d }
    init(_ a: Double, _ b: Double, _ c: Double, _ d: Double) { m00 = a; m01 = b; m10 = c; m11 = d }
    static func * (l: Matrix2, r: Matrix2) -> Matrix2 {
        Matrix2(l.m00 * r.m00 + l.m01 * r.m10, l.m00 * r.m01 + l.m01 * r.m11,
                l.m10 * r.m00 + l.m11 * r.m10, l.m10 * r.m01 + l.m11 * r.m11)
    }
    var trace: Double { m00 + m11 }
}
