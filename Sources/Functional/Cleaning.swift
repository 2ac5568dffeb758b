// Signal cleaning in nilearn's signal.clean order: drop non-steady-state volumes,
// detrend, band-pass signals and confounds alike, regress confounds, then censor.

import CFFTW
import SlabParallel

/// Parameters of `cleanSignals`.
public struct CleaningOptions: Sendable, Equatable {
    /// Repetition time in seconds (sampling interval), > 0.
    public var repetitionTime: Double
    /// Number of initial non-steady-state volumes to drop from signals and confounds.
    public var nonSteadyStateVolumes: Int
    /// Remove a constant and a linear trend from signals and confounds.
    public var detrend: Bool
    /// High-pass cut-off in Hz (frequencies below it are removed, and the DC bin), or nil.
    public var highPass: Double?
    /// Low-pass cut-off in Hz (frequencies above it are removed), or nil.
    public var lowPass: Double?
    /// Fewest effective degrees of freedom the cleaned series must keep
    /// (``DegreesOfFreedom/remaining``); fewer is an error. Default
    /// ``defaultMinimumDegreesOfFreedom``; 0 turns the check off.
    public var minimumDegreesOfFreedom: Double
    /// Remove the volumes where a kept region's sample is not finite from the output, as
    /// censored volumes are (true, for connectivity); false keeps them with the sample
    /// interpolated (for ALFF, whose spectrum needs evenly spaced samples).
    public var censorNonFiniteVolumes: Bool

    /// Defaults: no volumes dropped, linear detrending, no filtering.
    public init(
        repetitionTime: Double, nonSteadyStateVolumes: Int = 0, detrend: Bool = true,
        highPass: Double? = nil, lowPass: Double? = nil,
        minimumDegreesOfFreedom: Double = defaultMinimumDegreesOfFreedom, censorNonFiniteVolumes: Bool = true
    ) {
        self.repetitionTime = repetitionTime
        self.nonSteadyStateVolumes = nonSteadyStateVolumes
        self.detrend = detrend
        self.highPass = highPass
        self.lowPass = lowPass
        self.minimumDegreesOfFreedom = minimumDegreesOfFreedom
        self.censorNonFiniteVolumes = censorNonFiniteVolumes
    }
}

/// Fewest effective degrees of freedom a cleaned series must keep for its correlations to
/// mean anything.
///
/// With d degrees of freedom the standard error of a Fisher z is about 1 / sqrt(d - 3)
/// (Fisher 1921; the usual n - 3 with n replaced by the effective sample size, as Bartlett
/// 1935 and Afyouni, Smith & Nichols 2019, NeuroImage 199:609, do for autocorrelated
/// series). At 10 it is 0.38: a correlation of 0.6 is still told from 0 at the 5% level,
/// while below it every correlation is within noise of every other, and at 0 to 2 they are
/// rounding noise or exactly ±1. CONN counts the same degrees of freedom (its
/// `conn_process`: samples x pass-band fraction - regressors) and warns below 10 as well.
public let defaultMinimumDegreesOfFreedom = 10.0

/// Fraction of a region's volumes that may be non-finite before the region is reported
/// missing instead of having those volumes censored: a few isolated bad samples (one all-NaN
/// volume, one +Inf) cost a few volumes; a region that is not finite in more than a tenth of
/// the run has no series worth keeping, and censoring for it would cost every other region.
public let maximumNonFiniteRegionFraction = 0.1

/// The degrees of freedom a cleaned series keeps: what detrending, the band-pass, confound
/// regression and censoring each take from the volumes of the run.
///
/// `remaining = (passband - detrending - regressors) * keptVolumes / volumes`:
/// - `passband`: dimensions the FFT filter keeps of the `volumes`-point series, one per kept
///   DC or Nyquist bin and two (cosine and sine) per other kept bin, so about
///   `2 * volumes * (lowPass - highPass) * TR`; all `volumes` without a filter;
/// - `detrending`: the constant (unless a high-pass already removed the DC bin) and the
///   linear trend;
/// - `regressors`: confound regressors kept by the rank guard, less the constant that the
///   detrending already removed (each takes one dimension of the band, as the confounds
///   are filtered alike);
/// - censoring keeps the fraction `keptVolumes / volumes` of what is left (the censored
///   volumes are spread through the run).
public struct DegreesOfFreedom: Sendable, Equatable, CustomStringConvertible {
    /// Volumes after the non-steady-state ones.
    public var volumes: Int
    /// Dimensions the band-pass keeps (`volumes` without a filter).
    public var passband: Int
    /// Dimensions removed by detrending.
    public var detrending: Int
    /// Confound regressors (rank, beyond the constant).
    public var regressors: Int
    /// Volumes left after censoring.
    public var keptVolumes: Int

    /// `(passband - detrending - regressors) * keptVolumes / volumes`, at least 0.
    public var remaining: Double {
        guard volumes > 0 else { return 0 }
        return max(0, Double(passband - detrending - regressors) * Double(keptVolumes) / Double(volumes))
    }

    public var description: String {
        String(format: "%d volumes, %d kept by the band-pass, %d removed by detrending, %d by confound regression, %d of %d left after censoring: %.1f degrees of freedom",
               volumes, passband, detrending, regressors, keptVolumes, volumes, remaining)
    }

    /// The degrees of freedom of a cleaning.
    /// - Parameters:
    ///   - volumes: volumes after the non-steady-state ones.
    ///   - options: the cleaning (repetition time, detrending, cut-offs).
    ///   - regressorRank: the rank of constant + confounds (0 without confounds).
    ///   - keptVolumes: volumes left after censoring.
    public init(volumes: Int, options: CleaningOptions, regressorRank: Int, keptVolumes: Int) {
        let band = SpectralBand(highPass: options.highPass, lowPass: options.lowPass, repetitionTime: options.repetitionTime)
        let filtering = options.highPass != nil || options.lowPass != nil
        var passband = volumes
        if filtering {
            passband = 0
            for k in 0...(volumes / 2) where band.keeps(bin: k, length: volumes) {
                passband += (k == 0 || 2 * k == volumes) ? 1 : 2
            }
        }
        let dcKept = !filtering || band.keeps(bin: 0, length: volumes)
        let constantGone = options.detrend || !dcKept
        self.volumes = volumes
        self.passband = passband
        detrending = options.detrend ? (dcKept ? 2 : 1) : 0
        regressors = regressorRank > 0 && constantGone ? regressorRank - 1 : regressorRank
        self.keptVolumes = keptVolumes
    }
}

/// Why a region's cleaned series is missing.
public enum MissingRegionReason: Sendable, Equatable, CustomStringConvertible {
    /// Exactly the same value at every volume.
    case constant
    /// Not finite at this many of the volumes (after the non-steady-state ones).
    case nonFinite(volumes: Int, of: Int)

    public var description: String {
        switch self {
        case .constant: "constant signal"
        case let .nonFinite(volumes, total): volumes == total ? "no finite value" : "not finite in \(volumes) of \(total) volumes"
        }
    }
}

/// Quality-control counts of one cleaning run.
public struct CleaningQC: Sendable, Equatable {
    /// Volumes in the input.
    public var inputVolumes: Int
    /// Initial non-steady-state volumes dropped.
    public var nonSteadyStateVolumes: Int
    /// Volumes removed by the censoring mask (after the non-steady-state ones).
    public var censoredVolumes: Int
    /// Volumes in the output.
    public var keptVolumes: Int
    /// `censoredVolumes / (inputVolumes - nonSteadyStateVolumes)`.
    public var censoredFraction: Double
    /// Regressors that survived the rank guard, the constant included (0 without confounds).
    public var regressorRank: Int
    /// Regressors dropped as linearly dependent on the others.
    public var droppedRegressors: Int
    /// Regions returned as NaN because their input was non-finite or exactly constant.
    public var missingRegions: [Int]
    /// Why each of `missingRegions` is missing (same order).
    public var missingRegionReasons: [MissingRegionReason] = []
    /// Volumes (indices in the input) where a kept region's sample was not finite: its
    /// value there was interpolated for filtering and regression, and, with
    /// `censorNonFiniteVolumes`, the volume is censored (counted in `censoredVolumes`).
    public var nonFiniteVolumes: [Int] = []
    /// What the cleaning left to estimate with.
    public var degreesOfFreedom: DegreesOfFreedom? = nil
}

/// The output of `cleanSignals`.
public struct CleanedSignals: Sendable, Equatable {
    /// Cleaned series, `qc.keptVolumes` x R, column-major like the input.
    public var signals: TimeSeriesMatrix
    /// What was removed.
    public var qc: CleaningQC
}

/// Cleans region time series for connectivity analysis.
///
/// The steps, in order (nilearn `signal.clean` order where it applies):
/// 1. drop the first `options.nonSteadyStateVolumes` volumes of signals, confounds and mask;
/// 2. if `options.detrend`, remove a constant and a linear trend from each signal and each
///    confound (`linearDetrend`);
/// 3. if a cut-off is given, band-pass each signal **and** each confound with the same
///    zero-phase FFT filter (`bandPassFilter`), so that the regression does not reintroduce
///    the removed frequencies (Lindquist et al. 2019, Hum Brain Mapp 40:2358-2376; nilearn
///    filters confounds the same way since 0.9);
/// 4. regress the filtered confounds plus a constant out of each filtered signal by
///    orthogonal projection, `y - Q Q^T y`, where `Q` comes from a column-pivoted QR
///    (modified Gram-Schmidt, re-orthogonalised) of the unit-norm regressors. A regressor
///    whose remaining norm falls below 1e-10 of its own norm is dropped as linearly
///    dependent (the rank guard; nilearn likewise drops QR columns with tiny |R_kk|);
/// 5. censor: remove the volumes with `censor[t] == true`. Censoring comes last, after
///    filtering and regression, so the FFT sees an evenly sampled series; the flagged
///    volumes still enter the filter and the fit (nilearn instead interpolates them before
///    a Butterworth filter; with an FFT filter on equally spaced samples there is no
///    interpolation to do).
///
/// Without confounds (nil or an empty list, e.g. strategy `none`) step 4 is skipped: no
/// constant is regressed either, so the mean is removed only by detrending or a high-pass.
///
/// For ALFF/fALFF, call this without cut-offs and without a censoring mask: the result is
/// the detrended, confound-regressed, unfiltered series that
/// `amplitudeOfLowFrequencyFluctuations` expects.
///
/// Degenerate input (Never a silent wrong number):
/// - a region that is not finite at more than ``maximumNonFiniteRegionFraction`` of the
///   volumes, or exactly constant, is returned as a NaN column and listed in
///   `qc.missingRegions` with its reason (`qc.missingRegionReasons`); the others are not
///   affected by it;
/// - in the other regions, a non-finite sample (a region with no finite voxel at one volume,
///   e.g. an all-NaN volume) is interpolated for detrending, filtering and regression, and
///   its volume is censored like a high-motion one (`qc.nonFiniteVolumes`; kept,
///   interpolated, when `options.censorNonFiniteVolumes` is false);
/// - when the degrees of freedom left (``DegreesOfFreedom``) are below
///   `options.minimumDegreesOfFreedom`, nothing is returned: correlations of what is left
///   would be rounding noise or exactly ±1.
///
/// - Parameters:
///   - signals: T x R region series.
///   - confounds: resolved confounds with T rows, or nil for none.
///   - censor: T flags (true = remove the volume), or nil; flags on non-steady-state
///     volumes are ignored.
///   - options: repetition time, volumes to drop, detrending, cut-offs.
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Returns: the cleaned series and QC counts.
/// - Throws: `FunctionalError.shapeMismatch` when confounds or mask do not have T rows,
///   `.invalidParameter` for a bad repetition time, cut-off, volume count or thread count,
///   `.tooFewTimePoints` when fewer than 3 volumes remain to fit or fewer than 2 to keep,
///   `.tooFewDegreesOfFreedom` below `options.minimumDegreesOfFreedom`.
public func cleanSignals(
    _ signals: TimeSeriesMatrix, confounds: ConfoundColumns? = nil, censor: [Bool]? = nil,
    options: CleaningOptions, threads: Int = 1
) throws(FunctionalError) -> CleanedSignals {
    let threads = try validatedThreads(threads)
    let t0 = signals.timePoints
    let drop = options.nonSteadyStateVolumes
    guard options.repetitionTime > 0, options.repetitionTime.isFinite else {
        throw .invalidParameter("repetition time must be positive, got \(options.repetitionTime)")
    }
    try validateBand(highPass: options.highPass, lowPass: options.lowPass)
    guard drop >= 0, drop < t0 else {
        throw .invalidParameter("non-steady-state volumes must be in 0..<\(t0), got \(drop)")
    }
    if let confounds, confounds.timePoints != t0, !confounds.names.isEmpty {
        throw .shapeMismatch("confounds have \(confounds.timePoints) rows, signals \(t0) time points")
    }
    if let censor, censor.count != t0 {
        throw .shapeMismatch("censoring mask has \(censor.count) entries, signals \(t0) time points")
    }
    let n = t0 - drop
    guard n >= 3 else { throw .tooFewTimePoints(needed: 3, available: n) }
    let r = signals.regions
    let input = signals.values
    let screen = screenRegions(input, timePoints: t0, regions: r, drop: drop)
    let badVolumes = Set(options.censorNonFiniteVolumes ? screen.nonFiniteVolumes : [])
    let keep: [Int] = (drop..<t0).filter { !(censor?[$0] ?? false) && !badVolumes.contains($0 - drop) }.map { $0 - drop }
    guard keep.count >= 2 else { throw .tooFewTimePoints(needed: 2, available: keep.count) }

    let filtering = options.highPass != nil || options.lowPass != nil
    let plan: RealFFTPlan? = filtering ? RealFFTPlan.shared(length: n) : nil
    let band = SpectralBand(highPass: options.highPass, lowPass: options.lowPass, repetitionTime: options.repetitionTime)

    // Regressors: constant + confounds, each prepared like the signals (steps 1-3).
    var design: [Double] = [Double](repeating: 1, count: n)
    var designColumns = 1
    if let confounds, !confounds.names.isEmpty {
        let work = plan?.makeWorkspace()
        for c in 0..<confounds.names.count {
            var column = Array(confounds.values[(c * t0 + drop)..<((c + 1) * t0)])
            column.withUnsafeMutableBufferPointer { buf in
                if options.detrend { detrendInPlace(buf) }
                if let plan, let work { filterInPlace(buf, plan: plan, work: work, band: band) }
            }
            design.append(contentsOf: column)
            designColumns += 1
        }
    }
    let basis = confounds.map { $0.names.isEmpty } == false
        ? orthonormalBasis(design, rows: n, columns: designColumns)
        : (q: [Double](), rank: 0)
    let q = basis.q
    let rank = basis.rank
    let dof = DegreesOfFreedom(volumes: n, options: options, regressorRank: rank, keptVolumes: keep.count)
    guard dof.remaining >= options.minimumDegreesOfFreedom else {
        throw .tooFewDegreesOfFreedom(dof, minimum: options.minimumDegreesOfFreedom)
    }

    // Signals, region by region (steps 1-5), into a preallocated output.
    let kept = keep.count
    var output = [Double](repeating: .nan, count: kept * r)
    let missing = screen.reasons
    let detrend = options.detrend
    withSharedBuffer(&output) { out in
            forEachSlab(count: r, threads: threads) { regions in
                let work = plan?.makeWorkspace()
                var y = [Double](repeating: 0, count: n)
                for region in regions where missing[region] == nil {
                    let start = region * t0 + drop
                    for t in 0..<n { y[t] = input[start + t] }
                    y.withUnsafeMutableBufferPointer { buf in
                        interpolateNonFinite(buf)
                        if detrend { detrendInPlace(buf) }
                        if let plan, let work { filterInPlace(buf, plan: plan, work: work, band: band) }
                        if rank > 0 {
                            q.withUnsafeBufferPointer { qb in projectOut(buf, basis: qb, rank: rank) }
                        }
                    }
                    let dest = region * kept
                    for (k, t) in keep.enumerated() { out[dest + k] = y[t] }
                }
            }
    }
    let cleaned = try TimeSeriesMatrix(timePoints: kept, regions: r, values: output)
    let missingRegions = (0..<r).filter { missing[$0] != nil }
    let qc = CleaningQC(
        inputVolumes: t0, nonSteadyStateVolumes: drop, censoredVolumes: n - kept, keptVolumes: kept,
        censoredFraction: Double(n - kept) / Double(n), regressorRank: rank,
        droppedRegressors: rank > 0 ? designColumns - rank : 0,
        missingRegions: missingRegions, missingRegionReasons: missingRegions.map { missing[$0]! },
        nonFiniteVolumes: screen.nonFiniteVolumes.map { $0 + drop }, degreesOfFreedom: dof)
    return CleanedSignals(signals: cleaned, qc: qc)
}

/// Sorts the regions of a run (after its first `drop` volumes) into usable and missing, and
/// finds the volumes where a usable region is not finite.
///
/// A region is missing when it is not finite at more than ``maximumNonFiniteRegionFraction``
/// of the volumes, or exactly constant over its finite values. In the others, a non-finite
/// sample marks its volume (0-based after `drop`), which is then censored for the run.
func screenRegions(_ input: [Double], timePoints t0: Int, regions r: Int, drop: Int)
    -> (reasons: [MissingRegionReason?], nonFiniteVolumes: [Int]) {
    let n = t0 - drop
    var reasons = [MissingRegionReason?](repeating: nil, count: r)
    var bad = Set<Int>()
    for region in 0..<r {
        let start = region * t0 + drop
        var nonFinite: [Int] = []
        var first: Double?
        var constant = true
        for t in 0..<n {
            let v = input[start + t]
            guard v.isFinite else { nonFinite.append(t); continue }
            if let first { if v != first { constant = false } } else { first = v }
        }
        if nonFinite.count == n || Double(nonFinite.count) > maximumNonFiniteRegionFraction * Double(n) {
            reasons[region] = .nonFinite(volumes: nonFinite.count, of: n)
        } else if constant {
            reasons[region] = .constant
        } else {
            bad.formUnion(nonFinite)
        }
    }
    return (reasons, bad.sorted())
}

/// Replaces non-finite samples by linear interpolation between the nearest finite ones (the
/// nearest finite value at either end), so that detrending, the FFT and the regression see an
/// evenly sampled series; the volumes are then censored or, for ALFF, kept as interpolated.
/// A series with no finite sample is left as it is.
func interpolateNonFinite(_ y: UnsafeMutableBufferPointer<Double>) {
    let n = y.count
    var previous = -1
    var t = 0
    while t < n {
        if y[t].isFinite { previous = t; t += 1; continue }
        var next = t
        while next < n && !y[next].isFinite { next += 1 }
        for u in t..<next {
            switch (previous >= 0, next < n) {
            case (true, true):
                let w = Double(u - previous) / Double(next - previous)
                y[u] = y[previous] + w * (y[next] - y[previous])
            case (true, false): y[u] = y[previous]
            case (false, true): y[u] = y[next]
            case (false, false): return
            }
        }
        t = next
    }
}

// MARK: - Detrending

/// Removes the least-squares constant and linear trend from a series.
///
/// With centred time `u_t = t - (n-1)/2`: `y_t - mean(y) - b u_t`, `b = sum(u_t y_t) / sum(u_t^2)`
/// (the two regressors are orthogonal, so this is the exact least-squares fit, as
/// `scipy.signal.detrend(type="linear")` used by nilearn).
public func linearDetrend(_ series: [Double]) -> [Double] {
    var y = series
    y.withUnsafeMutableBufferPointer { detrendInPlace($0) }
    return y
}

func detrendInPlace(_ y: UnsafeMutableBufferPointer<Double>) {
    let n = y.count
    guard n > 0 else { return }
    var mean = 0.0
    for v in y { mean += v }
    mean /= Double(n)
    guard n > 1 else { y[0] -= mean; return }
    let centre = Double(n - 1) / 2
    var sxy = 0.0, sxx = 0.0
    for t in 0..<n {
        let u = Double(t) - centre
        sxy += u * (y[t] - mean)
        sxx += u * u
    }
    let slope = sxy / sxx
    for t in 0..<n { y[t] = y[t] - mean - slope * (Double(t) - centre) }
}

// MARK: - FFT band-pass filter

/// Pass band of the FFT filter, in Hz.
struct SpectralBand: Sendable {
    var highPass: Double?
    var lowPass: Double?
    var repetitionTime: Double

    /// Whether bin `k` of an `n`-point transform is kept.
    func keeps(bin k: Int, length n: Int) -> Bool {
        let f = Double(k) / (Double(n) * repetitionTime)
        if let hp = highPass, k == 0 || f < hp { return false }
        if let lp = lowPass, f > lp { return false }
        return true
    }
}

func validateBand(highPass: Double?, lowPass: Double?) throws(FunctionalError) {
    if let hp = highPass, !(hp >= 0 && hp.isFinite) { throw .invalidParameter("high-pass must be >= 0 Hz, got \(hp)") }
    if let lp = lowPass, !(lp > 0) { throw .invalidParameter("low-pass must be > 0 Hz, got \(lp)") }
    if let hp = highPass, let lp = lowPass, hp >= lp {
        throw .invalidParameter("high-pass (\(hp) Hz) must be below low-pass (\(lp) Hz)")
    }
}

/// Zero-phase ideal band-pass filter by FFT.
///
/// The real FFT `X_k` (k = 0...n/2, frequency `f_k = k / (n TR)`) is computed with FFTW's
/// r2c transform; bins with `f_k < highPass` (and the DC bin whenever a high-pass is given)
/// or `f_k > lowPass` are set to zero; the c2r transform and a 1/n scale give the filtered
/// series. Bins on the cut-offs are kept. A sinusoid on a kept bin passes unchanged; one on
/// a removed bin is removed to rounding error. Either bound may be nil.
///
/// - Parameters:
///   - series: evenly sampled values (detrend first: the filter is circular).
///   - repetitionTime: sampling interval in seconds.
///   - highPass: lower cut-off in Hz, or nil.
///   - lowPass: upper cut-off in Hz, or nil.
/// - Throws: `FunctionalError.invalidParameter` for a bad interval or cut-off.
public func bandPassFilter(
    _ series: [Double], repetitionTime: Double, highPass: Double?, lowPass: Double?
) throws(FunctionalError) -> [Double] {
    guard repetitionTime > 0 else { throw .invalidParameter("repetition time must be positive") }
    try validateBand(highPass: highPass, lowPass: lowPass)
    guard !series.isEmpty, highPass != nil || lowPass != nil else { return series }
    let plan = RealFFTPlan.shared(length: series.count)
    let work = plan.makeWorkspace()
    var y = series
    y.withUnsafeMutableBufferPointer {
        filterInPlace($0, plan: plan, work: work, band: SpectralBand(highPass: highPass, lowPass: lowPass, repetitionTime: repetitionTime))
    }
    return y
}

func filterInPlace(_ y: UnsafeMutableBufferPointer<Double>, plan: RealFFTPlan, work: RealFFTPlan.Workspace, band: SpectralBand) {
    let n = y.count
    for t in 0..<n { work.real[t] = y[t] }
    plan.forward(work)
    for k in 0..<work.bins where !band.keeps(bin: k, length: n) { work.complex[k] = (0, 0) }
    plan.backward(work)
    let scale = 1 / Double(n)
    for t in 0..<n { y[t] = work.real[t] * scale }
}

// MARK: - Regression

/// Orthonormal basis of the column space of a column-major `rows x columns` design, by
/// column-pivoted modified Gram-Schmidt with one re-orthogonalisation pass.
///
/// Each column is first scaled to unit norm; at each step the remaining column with the
/// largest residual norm is taken; the process stops when that norm is below 1e-10
/// (the rest are linearly dependent on the columns taken). Returns the basis, column-major
/// `rows x rank`, and the rank.
func orthonormalBasis(_ design: [Double], rows n: Int, columns p: Int) -> (q: [Double], rank: Int) {
    var a = design
    var norms = [Double](repeating: 0, count: p)
    for j in 0..<p {
        var s = 0.0
        for t in 0..<n { s += a[j * n + t] * a[j * n + t] }
        let norm = s.squareRoot()
        norms[j] = norm
        if norm > 0 { for t in 0..<n { a[j * n + t] /= norm } }
    }
    var remaining = Array(0..<p).filter { norms[$0] > 0 }
    var q: [Double] = []
    var rank = 0
    let tolerance = 1e-10
    while !remaining.isEmpty, rank < n {
        // Pivot: the remaining column with the largest residual norm (first on ties).
        var best = -1
        var bestNorm = 0.0
        for (position, j) in remaining.enumerated() {
            var s = 0.0
            for t in 0..<n { s += a[j * n + t] * a[j * n + t] }
            if s > bestNorm { bestNorm = s; best = position }
        }
        guard best >= 0, bestNorm.squareRoot() > tolerance else { break }
        let j = remaining.remove(at: best)
        var v = Array(a[(j * n)..<((j + 1) * n)])
        // Re-orthogonalise against the basis so far ("twice is enough").
        for k in 0..<rank {
            var c = 0.0
            for t in 0..<n { c += q[k * n + t] * v[t] }
            for t in 0..<n { v[t] -= c * q[k * n + t] }
        }
        var s = 0.0
        for t in 0..<n { s += v[t] * v[t] }
        let norm = s.squareRoot()
        guard norm > tolerance else { continue }
        for t in 0..<n { v[t] /= norm }
        q.append(contentsOf: v)
        rank += 1
        // Remove the new direction from the remaining columns.
        for other in remaining {
            var c = 0.0
            for t in 0..<n { c += v[t] * a[other * n + t] }
            for t in 0..<n { a[other * n + t] -= c * v[t] }
        }
    }
    return (q, rank)
}

/// `y <- y - Q Q^T y`, one basis vector at a time (modified Gram-Schmidt order).
func projectOut(_ y: UnsafeMutableBufferPointer<Double>, basis q: UnsafeBufferPointer<Double>, rank: Int) {
    let n = y.count
    for k in 0..<rank {
        var c = 0.0
        for t in 0..<n { c += q[k * n + t] * y[t] }
        for t in 0..<n { y[t] -= c * q[k * n + t] }
    }
}
