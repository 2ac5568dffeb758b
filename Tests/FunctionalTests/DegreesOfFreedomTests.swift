import Foundation
import Functional
import Testing

@Suite("Degrees of freedom and non-finite samples")
struct DegreesOfFreedomTests {
    @Test("counts against truth: no filter, a band, confounds, censoring")
    func counts() {
        // No filter: 100 volumes - 2 (constant + linear) - 6 confounds (rank 7 with the constant).
        let plain = DegreesOfFreedom(volumes: 100, options: CleaningOptions(repetitionTime: 2), regressorRank: 7, keptVolumes: 100)
        #expect(plain.passband == 100 && plain.detrending == 2 && plain.regressors == 6 && plain.remaining == 92)
        // 0.01-0.08 Hz at TR 2 s over 40 volumes: bins k / 80 Hz, k = 1...6 kept (DC removed by
        // the high-pass), 2 dimensions each = 12 = 2 * 40 * 0.07 * 2 rounded to whole bins.
        let band = CleaningOptions(repetitionTime: 2, highPass: 0.01, lowPass: 0.08)
        let banded = DegreesOfFreedom(volumes: 40, options: band, regressorRank: 7, keptVolumes: 40)
        #expect(banded.passband == 12 && banded.detrending == 1 && banded.regressors == 6 && banded.remaining == 5)
        // Censoring half the volumes keeps half of what is left.
        let censored = DegreesOfFreedom(volumes: 100, options: CleaningOptions(repetitionTime: 2), regressorRank: 0, keptVolumes: 50)
        #expect(censored.remaining == 49)
        // A low-pass alone keeps the DC bin and the Nyquist bin of an even length once each.
        let low = DegreesOfFreedom(volumes: 10, options: CleaningOptions(repetitionTime: 1, lowPass: 0.5), regressorRank: 0, keptVolumes: 10)
        #expect(low.passband == 10 && low.detrending == 2)
    }

    @Test("too few degrees of freedom is an error naming the numbers; rounding-noise correlations are never returned")
    func tooFew() throws {
        let x = try TimeSeriesMatrix(regionSeries: (0..<3).map { r in (0..<20).map { sin(Double($0 * (r + 1))) } })
        let options = CleaningOptions(repetitionTime: 2, highPass: 0.01, lowPass: 0.1)
        do {
            _ = try cleanSignals(x, options: options)
            Issue.record("accepted")
        } catch {
            guard case .tooFewDegreesOfFreedom(let dof, let minimum) = error else { Issue.record("\(error)"); return }
            #expect(minimum == defaultMinimumDegreesOfFreedom && dof.remaining < 10)
            #expect(error.description.contains("20 volumes"))
        }
        var relaxed = options
        relaxed.minimumDegreesOfFreedom = 0
        #expect(throws: Never.self) { try cleanSignals(x, options: relaxed) }
    }

    @Test("a non-finite sample censors its volume; a constant or mostly non-finite region is missing with its reason")
    func nonFinite() throws {
        var series: [[Double]] = []
        for r in 0..<4 {
            let frequency = 0.3 * Double(r + 1)
            series.append((0..<60).map { (t: Int) -> Double in sin(Double(t) * frequency) + 0.01 * Double(t % 7) })
        }
        series[0][10] = .nan
        series[1][20] = .infinity
        series[2] = [Double](repeating: 5, count: 60)
        for t in 0..<10 { series[3][t] = .nan }
        let x = try TimeSeriesMatrix(regionSeries: series)
        let cleaned = try cleanSignals(x, options: CleaningOptions(repetitionTime: 2))
        #expect(cleaned.qc.nonFiniteVolumes == [10, 20])
        #expect(cleaned.qc.keptVolumes == 58)
        #expect(cleaned.qc.missingRegions == [2, 3])
        let reasons: [MissingRegionReason] = [.constant, .nonFinite(volumes: 10, of: 60)]
        #expect(cleaned.qc.missingRegionReasons == reasons)
        for r in 0..<2 { for t in 0..<58 { #expect(cleaned.signals[t, r].isFinite) } }
        // For ALFF the volumes are kept, the samples interpolated.
        let kept = try cleanSignals(x, options: CleaningOptions(repetitionTime: 2, censorNonFiniteVolumes: false))
        #expect(kept.qc.keptVolumes == 60 && kept.qc.nonFiniteVolumes == [10, 20])
        for r in 0..<2 { for t in 0..<60 { #expect(kept.signals[t, r].isFinite) } }
    }
}
