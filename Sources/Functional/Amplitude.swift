// Amplitude of low-frequency fluctuations (ALFF, fALFF) and temporal SNR.

import Foundation
import SlabParallel

/// ALFF and fALFF of one series.
public struct AmplitudeMeasures: Sendable, Equatable {
    /// Mean single-sided amplitude over the band bins.
    public var alff: Double
    /// Band power over total power without DC.
    public var falff: Double
}

/// ALFF and fALFF of each region series (Zang et al. 2007, Brain Dev 29:83-91;
/// Zou et al. 2008, J Neurosci Methods 172:137-141).
///
/// The input must be the detrended, confound-regressed and **unfiltered** series (run
/// `cleanSignals` without cut-offs and without censoring). With `X_k` the FFTW r2c
/// transform of the n samples (k = 0...n/2, `f_k = k / (n TR)`):
///
/// - single-sided amplitude `A_k = 2 |X_k| / n` for 0 < k < n/2 and `|X_k| / n` at the
///   Nyquist bin (k = n/2, n even), so a sinusoid `a cos(2 pi f_k t + phi)` on bin k has
///   `A_k = a`;
/// - **ALFF** = mean of `A_k` over the bins with `band.low <= f_k <= band.high`
///   (Zang 2007 / REST: the average square root of the power spectrum in the band);
/// - power `P_k = A_k^2 / 2` for 0 < k < n/2 and `A_k^2` at Nyquist (so that
///   `sum_{k>=1} P_k` is the variance of a zero-mean series, by Parseval);
/// - **fALFF** = `sum_{band} P_k / sum_{k>=1} P_k`: power in the band over the power of
///   the whole spectrum without DC.
///
/// Regions with non-finite samples get NaN; a zero-power series gets fALFF NaN.
///
/// - Parameters:
///   - x: T x R series (T >= 2).
///   - repetitionTime: sampling interval in seconds.
///   - band: low and high frequency in Hz (default 0.01-0.08 Hz).
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Returns: one `AmplitudeMeasures` per region.
/// - Throws: `FunctionalError.invalidParameter` for a bad interval, band or thread count;
///   `.tooFewTimePoints` when T < 2.
public func amplitudeOfLowFrequencyFluctuations(
    _ x: TimeSeriesMatrix, repetitionTime: Double, band: (low: Double, high: Double) = (0.01, 0.08),
    threads: Int = 1
) throws(FunctionalError) -> [AmplitudeMeasures] {
    let threads = try validatedThreads(threads)
    guard repetitionTime > 0, repetitionTime.isFinite else {
        throw .invalidParameter("repetition time must be positive, got \(repetitionTime)")
    }
    guard band.low >= 0, band.high > band.low else {
        throw .invalidParameter("ALFF band must satisfy 0 <= low < high, got \(band.low)-\(band.high) Hz")
    }
    let n = x.timePoints
    guard n >= 2 else { throw .tooFewTimePoints(needed: 2, available: n) }
    let plan = RealFFTPlan.shared(length: n)
    let input = x.values
    let low = band.low, high = band.high
    var alff = [Double](repeating: .nan, count: x.regions)
    var falff = alff
    withSharedBuffer(&alff) { alffOut in
        withSharedBuffer(&falff) { falffOut in
            forEachSlab(count: x.regions, threads: threads) { regions in
                let work = plan.makeWorkspace()
                for region in regions {
                    var finite = true
                    for t in 0..<n {
                        let v = input[region * n + t]
                        if !v.isFinite { finite = false }
                        work.real[t] = v
                    }
                    guard finite else { continue }
                    plan.forward(work)
                    var amplitudeSum = 0.0, bandBins = 0, bandPower = 0.0, totalPower = 0.0
                    for k in 1..<work.bins {
                        let (re, im) = work.complex[k]
                        let nyquist = 2 * k == n
                        let amplitude = (nyquist ? 1.0 : 2.0) * (re * re + im * im).squareRoot() / Double(n)
                        let power = nyquist ? amplitude * amplitude : amplitude * amplitude / 2
                        totalPower += power
                        let f = Double(k) / (Double(n) * repetitionTime)
                        if f >= low, f <= high {
                            amplitudeSum += amplitude
                            bandPower += power
                            bandBins += 1
                        }
                    }
                    alffOut[region] = bandBins > 0 ? amplitudeSum / Double(bandBins) : .nan
                    falffOut[region] = totalPower > 0 ? bandPower / totalPower : .nan
                }
            }
        }
    }
    return (0..<x.regions).map { AmplitudeMeasures(alff: alff[$0], falff: falff[$0]) }
}

/// Temporal signal-to-noise ratio of a series: `mean / sd`, with the population standard
/// deviation (ddof = 0, as nipype's TSNR used by fMRIPrep). Apply to the raw (uncleaned)
/// series: cleaning removes the mean. NaN for empty or non-finite input, infinity for a
/// constant non-zero series.
public func temporalSNR(_ series: [Double]) -> Double {
    guard !series.isEmpty, series.allSatisfy(\.isFinite) else { return .nan }
    let n = Double(series.count)
    var mean = 0.0
    for v in series { mean += v }
    mean /= n
    var ss = 0.0
    for v in series { ss += (v - mean) * (v - mean) }
    return mean / (ss / n).squareRoot()
}

/// `temporalSNR` of each region series (regions split across threads).
/// - Throws: `FunctionalError.invalidParameter` for a bad thread count.
public func temporalSNR(_ x: TimeSeriesMatrix, threads: Int = 1) throws(FunctionalError) -> [Double] {
    let threads = try validatedThreads(threads)
    var out = [Double](repeating: .nan, count: x.regions)
    let input = x.values
    let n = x.timePoints
    withSharedBuffer(&out) { o in
        forEachSlab(count: x.regions, threads: threads) { regions in
            for r in regions { o[r] = temporalSNR(Array(input[(r * n)..<((r + 1) * n)])) }
        }
    }
    return out
}
