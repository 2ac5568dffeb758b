import TestSupport
import Foundation
import Testing
@testable import Functional

@Suite("Confound strategies")
struct ConfoundStrategyTests {
    static func motionTable(timePoints: Int, seed: UInt64) -> [String: [Double]] {
        var rng = SplitMix64(seed: seed)
        var table: [String: [Double]] = [:]
        for name in ConfoundStrategy.motionParameters + ConfoundStrategy.physiologicalSignals {
            var level = 0.0
            table[name] = (0..<timePoints).map { _ in level += 0.05 * rng.normal(); return level }
        }
        return table
    }

    @Test("strategy names parse case-insensitively; unknown names are a typed error")
    func parsing() throws {
        #expect(try ConfoundStrategy(parsing: "none") == ConfoundStrategy.none)
        #expect(try ConfoundStrategy(parsing: "6p") == .sixP)
        #expect(try ConfoundStrategy(parsing: " 24P ") == .twentyFourP)
        #expect(try ConfoundStrategy(parsing: "36p") == .thirtySixP)
        #expect(throws: FunctionalError.unknownConfoundStrategy("12P")) { try ConfoundStrategy(parsing: "12P") }
        #expect(ConfoundStrategy.sixP.columnNames.count == 6)
        #expect(ConfoundStrategy.twentyFourP.columnNames.count == 24)
        #expect(ConfoundStrategy.thirtySixP.columnNames.count == 36)
        #expect(ConfoundStrategy.thirtySixP.columnNames.contains("global_signal_derivative1_power2"))
    }

    @Test("missing base column is an error naming it")
    func missingColumn() {
        var table = Self.motionTable(timePoints: 20, seed: 1)
        table["rot_y"] = nil
        #expect(throws: FunctionalError.missingConfoundColumn("rot_y")) {
            try resolveConfounds(.twentyFourP, available: table)
        }
        table = Self.motionTable(timePoints: 20, seed: 1)
        table["csf"] = nil
        #expect(throws: FunctionalError.missingConfoundColumn("csf")) { try resolveConfounds(.thirtySixP, available: table) }
    }

    @Test("expansions: fMRIPrep columns used when present, computed otherwise; first-row n/a filled from row 1")
    func expansions() throws {
        var table = Self.motionTable(timePoints: 10, seed: 3)
        // fMRIPrep-provided expansion, distinguishable from the computed one.
        var provided = [Double](repeating: 0.25, count: 10)
        provided[0] = .nan
        table["trans_x_derivative1"] = provided
        let resolved = try resolveConfounds(.twentyFourP, available: table)
        #expect(resolved.names.count == 24)
        let names = resolved.names
        let dx = resolved.column(names.firstIndex(of: "trans_x_derivative1")!)
        #expect(dx == [Double](repeating: 0.25, count: 10))
        let dx2 = resolved.column(names.firstIndex(of: "trans_x_derivative1_power2")!)
        #expect(dx2 == [Double](repeating: 0.0625, count: 10))
        let y = table["trans_y"]!
        let dy = resolved.column(names.firstIndex(of: "trans_y_derivative1")!)
        #expect(dy[0] == y[1] - y[0])  // n/a at row 0 replaced by row 1 (nilearn)
        for t in 1..<10 { #expect(dy[t] == y[t] - y[t - 1]) }
        let y2 = resolved.column(names.firstIndex(of: "trans_y_power2")!)
        for t in 0..<10 { #expect(y2[t] == y[t] * y[t]) }
        let dy2 = resolved.column(names.firstIndex(of: "trans_y_derivative1_power2")!)
        #expect(dy2[0] == dy[0] * dy[0])
    }

    @Test("n/a beyond the first row is an error")
    func nonFinite() {
        var table = Self.motionTable(timePoints: 10, seed: 3)
        table["rot_z"]![4] = .nan
        do {
            _ = try resolveConfounds(.sixP, available: table)
            Issue.record("n/a accepted")
        } catch {
            // Data row 4 is file line 6 (the header is line 1); n/a is called n/a.
            #expect(error.description == "confounds: line 6 (the header is line 1): column 'rot_z' is n/a")
        }
        table["rot_z"]![4] = .infinity
        #expect(throws: FunctionalError.nonFiniteConfound(column: "rot_z", row: 4, value: .infinity)) {
            try resolveConfounds(.sixP, available: table)
        }
        #expect(FunctionalError.nonFiniteConfound(column: "rot_z", row: 4, value: .infinity).description
                == "confounds: line 6 (the header is line 1): column 'rot_z' is inf")
        table = Self.motionTable(timePoints: 10, seed: 3)
        table["rot_z"] = [1, 2, 3]
        #expect(throws: FunctionalError.self) { try resolveConfounds(.sixP, available: table) }
    }
}

@Suite("Cleaning")
struct CleaningTests {
    /// Projection onto the orthogonal complement of span(columns), by classical Gram-Schmidt
    /// applied twice (test reference, written independently of the library).
    static func residual(_ y: [Double], onto columns: [[Double]]) -> [Double] {
        var basis: [[Double]] = []
        for c in columns {
            var v = c
            for _ in 0..<2 {
                for q in basis {
                    let dot = zip(q, v).reduce(0) { $0 + $1.0 * $1.1 }
                    for t in v.indices { v[t] -= dot * q[t] }
                }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-9 { basis.append(v.map { $0 / norm }) }
        }
        var r = y
        for q in basis {
            let dot = zip(q, r).reduce(0) { $0 + $1.0 * $1.1 }
            for t in r.indices { r[t] -= dot * q[t] }
        }
        return r
    }

    @Test("6P without filtering equals projection onto the complement of [1, t, 6 confounds]")
    func sixPProjection() throws {
        let t = 240, regions = 6
        var series = randomSeries(timePoints: t, regions: regions, seed: 11)
        let table = ConfoundStrategyTests.motionTable(timePoints: t, seed: 12)
        // Make the signals share motion so the regression matters.
        for r in 0..<regions { for i in 0..<t { series[r][i] += Double(r + 1) * 5 * table["trans_x"]![i] } }
        let x = try TimeSeriesMatrix(regionSeries: series)
        let confounds = try resolveConfounds(.sixP, available: table)
        let cleaned = try cleanSignals(x, confounds: confounds, options: CleaningOptions(repetitionTime: 2))
        #expect(cleaned.qc.regressorRank == 7 && cleaned.qc.droppedRegressors == 0)
        let design = [[Double](repeating: 1, count: t), (0..<t).map(Double.init)]
            + ConfoundStrategy.motionParameters.map { table[$0]! }
        let reference = try TimeSeriesMatrix(regionSeries: series.map { Self.residual($0, onto: design) })
        for r in 0..<regions {
            for i in 0..<t { #expect(abs(cleaned.signals[i, r] - reference[i, r]) < 1e-8) }
        }
        let rc = try pearsonCorrelation(cleaned.signals), rr = try pearsonCorrelation(reference)
        for i in 0..<(regions * regions) { #expect(abs(rc.values[i] - rr.values[i]) < 1e-6) }
    }

    @Test("collinear confounds are dropped by the rank guard")
    func rankGuard() throws {
        let t = 100
        let x = try TimeSeriesMatrix(regionSeries: randomSeries(timePoints: t, regions: 2, seed: 5))
        let a = (0..<t).map { sin(Double($0) * 0.3) }
        let confounds = try ConfoundColumns(names: ["a", "twice_a", "b"], columns: [a, a.map { 2 * $0 }, (0..<t).map { Double($0 % 7) }])
        let cleaned = try cleanSignals(x, confounds: confounds, options: CleaningOptions(repetitionTime: 1))
        #expect(cleaned.qc.regressorRank == 3)
        #expect(cleaned.qc.droppedRegressors == 1)
        #expect(cleaned.signals.values.allSatisfy { $0.isFinite })
    }

    @Test("FFT filter keeps an in-band bin sinusoid and removes an out-of-band one")
    func bandPass() throws {
        let n = 200, tr = 2.0  // bin spacing 1/(n TR) = 0.0025 Hz
        let inside = (0..<n).map { 3 * cos(2 * Double.pi * 20 * Double($0) / Double(n) + 0.4) }  // 0.05 Hz
        let outside = (0..<n).map { 2 * sin(2 * Double.pi * 60 * Double($0) / Double(n)) }  // 0.15 Hz
        let slow = (0..<n).map { 1.5 * cos(2 * Double.pi * 2 * Double($0) / Double(n)) }  // 0.005 Hz
        let mixed = (0..<n).map { 7 + inside[$0] + outside[$0] + slow[$0] }
        let filtered = try bandPassFilter(mixed, repetitionTime: tr, highPass: 0.01, lowPass: 0.1)
        let removedPower = (outside.map { $0 * $0 }.reduce(0, +) + slow.map { $0 * $0 }.reduce(0, +)) / Double(n)
        var residualPower = 0.0
        for t in 0..<n {
            #expect(abs(filtered[t] - inside[t]) < 1e-10)
            residualPower += (filtered[t] - inside[t]) * (filtered[t] - inside[t])
        }
        #expect(residualPower / Double(n) < 1e-6 * removedPower)
        // Low-pass only keeps DC and the slow wave; high-pass only removes DC and the slow wave.
        let lowOnly = try bandPassFilter(mixed, repetitionTime: tr, highPass: nil, lowPass: 0.1)
        for t in 0..<n { #expect(abs(lowOnly[t] - (7 + inside[t] + slow[t])) < 1e-10) }
        let highOnly = try bandPassFilter(mixed, repetitionTime: tr, highPass: 0.01, lowPass: nil)
        for t in 0..<n { #expect(abs(highOnly[t] - (inside[t] + outside[t])) < 1e-10) }
        #expect(throws: FunctionalError.self) { try bandPassFilter(mixed, repetitionTime: tr, highPass: 0.1, lowPass: 0.01) }
    }

    @Test("non-steady-state volumes are dropped first, censored volumes removed last")
    func dropAndCensor() throws {
        let t = 120
        let series = randomSeries(timePoints: t, regions: 3, seed: 21)
        let table = ConfoundStrategyTests.motionTable(timePoints: t, seed: 22)
        let x = try TimeSeriesMatrix(regionSeries: series)
        let confounds = try resolveConfounds(.twentyFourP, available: table)
        let options = CleaningOptions(repetitionTime: 2, nonSteadyStateVolumes: 4, highPass: 0.01, lowPass: 0.1)
        var censor = [Bool](repeating: false, count: t)
        for i in [0, 2, 10, 11, 12, 50, 119] { censor[i] = true }
        let censored = try cleanSignals(x, confounds: confounds, censor: censor, options: options)
        let full = try cleanSignals(x, confounds: confounds, options: options)
        // Same as cleaning the truncated input (drop happens before anything else).
        let truncated = try TimeSeriesMatrix(regionSeries: series.map { Array($0[4...]) })
        let truncatedConfounds = try ConfoundColumns(
            names: confounds.names, columns: (0..<confounds.names.count).map { Array(confounds.column($0)[4...]) })
        let direct = try cleanSignals(truncated, confounds: truncatedConfounds,
                                      options: CleaningOptions(repetitionTime: 2, highPass: 0.01, lowPass: 0.1))
        #expect(full.signals == direct.signals)
        // Censoring only removes rows; flags on dropped volumes are ignored.
        let kept = (4..<t).filter { !censor[$0] }.map { $0 - 4 }
        #expect(censored.qc.keptVolumes == kept.count)
        #expect(censored.qc.censoredVolumes == 5)
        #expect(censored.qc.nonSteadyStateVolumes == 4)
        #expect(abs(censored.qc.censoredFraction - 5.0 / 116.0) < 1e-15)
        for r in 0..<3 { for (k, i) in kept.enumerated() { #expect(censored.signals[k, r] == full.signals[i, r]) } }
    }

    @Test("missing regions come out as NaN columns; bad input is a typed error")
    func missingAndErrors() throws {
        var series = randomSeries(timePoints: 50, regions: 3, seed: 9)
        series[1][7] = .nan
        series.append([Double](repeating: 5, count: 50))
        let x = try TimeSeriesMatrix(regionSeries: series)
        let cleaned = try cleanSignals(x, options: CleaningOptions(repetitionTime: 2, highPass: 0.01))
        // One NaN sample censors its volume (it does not make the region missing); the
        // constant region is missing, with its reason.
        #expect(cleaned.qc.missingRegions == [3])
        #expect(cleaned.qc.missingRegionReasons == [MissingRegionReason.constant])
        #expect(cleaned.qc.nonFiniteVolumes == [7] && cleaned.qc.keptVolumes == 49)
        #expect(cleaned.signals.series(3).allSatisfy { $0.isNaN })
        #expect(cleaned.signals.series(1).allSatisfy { $0.isFinite })
        #expect(cleaned.signals.series(0).allSatisfy { $0.isFinite })
        #expect(throws: FunctionalError.self) { try cleanSignals(x, censor: [true], options: CleaningOptions(repetitionTime: 2)) }
        #expect(throws: FunctionalError.self) { try cleanSignals(x, options: CleaningOptions(repetitionTime: 0)) }
        #expect(throws: FunctionalError.self) { try cleanSignals(x, options: CleaningOptions(repetitionTime: 2), threads: 0) }
        #expect(throws: FunctionalError.self) {
            try cleanSignals(x, options: CleaningOptions(repetitionTime: 2, nonSteadyStateVolumes: 50))
        }
    }
}
