import Foundation
import Testing
@testable import Functional

@Suite("Amplitude")
struct AmplitudeTests {
    @Test("ALFF and fALFF of a bin-centred sinusoid mix equal the analytic values")
    func analytic() throws {
        let n = 200, tr = 2.0  // f_k = k / 400 Hz; 0.01-0.08 Hz is bins 4...32 (29 bins)
        func wave(_ a: Double, _ k: Int, _ phase: Double) -> [Double] {
            (0..<n).map { a * cos(2 * Double.pi * Double(k * $0) / Double(n) + phase) }
        }
        let parts = [wave(3, 10, 0.3), wave(2, 20, -1.1), wave(1.5, 80, 0.7), wave(0.5, 2, 0)]
        let series = (0..<n).map { t in 100 + parts.reduce(0) { $0 + $1[t] } }
        // The Nyquist bin (k = 100) alone: amplitude |X|/n = a, power a^2.
        let nyquist = (0..<n).map { 0.8 * (($0 % 2 == 0) ? 1.0 : -1.0) }
        let x = try TimeSeriesMatrix(regionSeries: [series, nyquist, [Double](repeating: .nan, count: n)])
        let measures = try amplitudeOfLowFrequencyFluctuations(x, repetitionTime: tr)
        #expect(abs(measures[0].alff - (3 + 2) / 29.0) < 1e-4)
        let bandPower = (9.0 + 4.0) / 2, totalPower = (9.0 + 4.0 + 2.25 + 0.25) / 2
        #expect(abs(measures[0].falff - bandPower / totalPower) < 1e-4)
        #expect(abs(measures[1].falff) < 1e-12)
        #expect(abs(measures[1].alff) < 1e-12)
        #expect(measures[2].alff.isNaN && measures[2].falff.isNaN)
        // Narrower band: only the 0.05 Hz wave (bins 16...24, 9 bins).
        let narrow = try amplitudeOfLowFrequencyFluctuations(x, repetitionTime: tr, band: (0.04, 0.06))
        #expect(abs(narrow[0].alff - 2 / 9.0) < 1e-4)
        #expect(abs(narrow[0].falff - 2 / totalPower) < 1e-4)
    }

    @Test("temporal SNR is mean over population sd")
    func tsnr() throws {
        #expect(abs(temporalSNR([9, 11, 9, 11]) - 10) < 1e-12)
        #expect(temporalSNR([]).isNaN)
        let x = try TimeSeriesMatrix(regionSeries: [[9, 11, 9, 11], [1, .nan, 1, 1]])
        let values = try temporalSNR(x)
        #expect(abs(values[0] - 10) < 1e-12 && values[1].isNaN)
    }
}

@Suite("Graph summaries")
struct GraphSummaryTests {
    static func matrix(_ rows: [[Double]]) throws -> SquareMatrix {
        try SquareMatrix(size: rows.count, values: rows.flatMap { $0 })
    }

    @Test("global efficiency on tiny graphs computed by hand")
    func efficiency() throws {
        // Path 0-1-2 (weights 1 and 0.5), negative 0-2 edge ignored: d = 1, 2, 3.
        let path = try Self.matrix([[1, 1, -0.3], [1, 1, 0.5], [-0.3, 0.5, 1]])
        #expect(abs(try globalEfficiency(path) - (2 * (1 + 0.5 + 1.0 / 3)) / 6) < 1e-15)
        // A direct 0-2 edge of weight 0.5 (length 2) beats the path of length 3.
        let triangle = try Self.matrix([[1, 1, 0.5], [1, 1, 0.5], [0.5, 0.5, 1]])
        #expect(abs(try globalEfficiency(triangle) - 2.0 / 3) < 1e-15)
        // A shortcut through a node: 0-2 weight 0.2 (length 5) vs 0-1-2 lengths 1 + 2 = 3.
        let shortcut = try Self.matrix([[1, 1, 0.2], [1, 1, 0.5], [0.2, 0.5, 1]])
        #expect(abs(try globalEfficiency(shortcut) - (2 * (1 + 0.5 + 1.0 / 3)) / 6) < 1e-15)
        // Two components: {0,1} weight 1, {2,3} weight 0.5; unreachable pairs count 0.
        let split = try Self.matrix([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0.5], [0, 0, 0.5, 1]])
        #expect(abs(try globalEfficiency(split) - 3.0 / 12) < 1e-15)
        // A missing (NaN) region is not a node.
        let n = Double.nan
        let withMissing = try Self.matrix([[1, 1, n, 0.5], [1, 1, n, 0.5], [n, n, n, n], [0.5, 0.5, n, 1]])
        #expect(abs(try globalEfficiency(withMissing) - 2.0 / 3) < 1e-15)
    }

    @Test("within/between network means, mean connectivity and strength on a constructed matrix")
    func networks() throws {
        let r = try Self.matrix([
            [1.0, 0.8, 0.1, 0.2, 0.9],
            [0.8, 1.0, 0.3, 0.4, 0.9],
            [0.1, 0.3, 1.0, 0.6, 0.9],
            [0.2, 0.4, 0.6, 1.0, 0.9],
            [0.9, 0.9, 0.9, 0.9, 1.0],
        ])
        let summary = try networkConnectivity(r, networks: ["DMN", "DMN", "SMN", "SMN", nil])
        #expect(summary.networks.map(\.network) == ["DMN", "SMN"])
        #expect(abs(summary.networks[0].within - 0.8) < 1e-15)
        #expect(abs(summary.networks[1].within - 0.6) < 1e-15)
        #expect(abs(summary.networks[0].between - 0.25) < 1e-15)
        #expect(abs(summary.networks[1].between - 0.25) < 1e-15)
        #expect(summary.networks[0].withinEdges == 1 && summary.networks[0].betweenEdges == 4)
        #expect(abs(summary.within - 0.7) < 1e-15)
        #expect(abs(summary.between - 0.25) < 1e-15)
        #expect(throws: FunctionalError.self) { try networkConnectivity(r, networks: ["A"]) }

        let four = try Self.matrix([
            [1.0, 0.8, 0.1, 0.2], [0.8, 1.0, 0.3, 0.4], [0.1, 0.3, 1.0, 0.6], [0.2, 0.4, 0.6, 1.0],
        ])
        #expect(abs(meanConnectivity(four) - 2.4 / 6) < 1e-15)
        let strength = nodeStrength(four)
        #expect(abs(strength[0] - 1.1) < 1e-15 && abs(strength[3] - 1.2) < 1e-15)
        var withNaN = four
        withNaN[0, 3] = .nan; withNaN[3, 0] = .nan
        #expect(abs(meanConnectivity(withNaN) - 2.2 / 5) < 1e-15)
    }
}

@Suite("Determinism")
struct DeterminismTests {
    @Test("results are bit-identical for 1, 2 and 7 threads")
    func threadCounts() throws {
        let t = 150, regions = 23
        var series = randomSeries(timePoints: t, regions: regions, seed: 99)
        series[5] = [Double](repeating: .nan, count: t)
        let table = ConfoundStrategyTests.motionTable(timePoints: t, seed: 100)
        let confounds = try resolveConfounds(.thirtySixP, available: table)
        let x = try TimeSeriesMatrix(regionSeries: series)
        var censor = [Bool](repeating: false, count: t)
        censor[40] = true; censor[41] = true
        let options = CleaningOptions(repetitionTime: 2, nonSteadyStateVolumes: 3, highPass: 0.01, lowPass: 0.1)

        func run(_ threads: Int) throws -> [[UInt64]] {
            let cleaned = try cleanSignals(x, confounds: confounds, censor: censor, options: options, threads: threads)
            let unfiltered = try cleanSignals(x, confounds: confounds, options: CleaningOptions(repetitionTime: 2), threads: threads)
            let r = try pearsonCorrelation(cleaned.signals, threads: threads)
            let partial = try partialCorrelation(cleaned.signals, threads: threads)
            let amplitude = try amplitudeOfLowFrequencyFluctuations(unfiltered.signals, repetitionTime: 2, threads: threads)
            return [
                bits(cleaned.signals.values), bits(r.values), bits(partial.values),
                bits(amplitude.map(\.alff)), bits(amplitude.map(\.falff)),
                bits([try globalEfficiency(r, threads: threads)]), bits(try temporalSNR(x, threads: threads)),
            ]
        }
        let one = try run(1)
        #expect(try run(2) == one)
        #expect(try run(7) == one)
        #expect(one[1].count == regions * regions)
    }
}
