import Foundation
import Tabular
import Testing
@testable import Phantoms

/// Pearson correlation.
func correlation(_ a: [Double], _ b: [Double]) -> Double {
    let n = Double(a.count)
    let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in a.indices {
        sab += (a[i] - ma) * (b[i] - mb)
        saa += (a[i] - ma) * (a[i] - ma)
        sbb += (b[i] - mb) * (b[i] - mb)
    }
    return sab / (saa * sbb).squareRoot()
}

@Suite("Functional phantom")
struct FunctionalPhantomTests {
    @Test("empirical region correlations approach the planted ones in a long run")
    func networkCorrelation() {
        var random = PhantomRandom(seed: 5)
        let networks = ["A", "A", "A", "B", "B", "B", "C", "C"]
        let planted = ["A": 0.8, "B": 0.4, "C": 0.0]
        // 1200 volumes at TR 2 s: 168 Fourier frequencies in 0.01-0.08 Hz, so sample
        // correlations scatter with a standard error below 0.06.
        let signals = NetworkSignals(networks: networks, withinNetworkCorrelation: planted, volumeCount: 1200,
                                     repetitionTime: 2, random: &random)
        var worst = 0.0, total = 0.0, pairs = 0.0
        for a in networks.indices {
            #expect(signals.trueCorrelation[a][a] == 1)
            for b in (a + 1)..<networks.count {
                let truth = signals.trueCorrelation[a][b]
                #expect(truth == (networks[a] == networks[b] ? planted[networks[a]]! : 0))
                let error = abs(correlation(signals.signals[a], signals.signals[b]) - truth)
                worst = max(worst, error)
                total += error
                pairs += 1
            }
        }
        #expect(worst < 0.2)
        #expect(total / pairs < 0.07)
    }

    @Test("band-limited process: unit variance, no power outside the band")
    func bandLimited() {
        var random = PhantomRandom(seed: 9)
        var variance = 0.0
        let runs = 40
        for _ in 0..<runs {
            let x = bandLimitedProcess(volumeCount: 200, repetitionTime: 2, band: 0.01...0.08, random: &random)
            variance += x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
            // The DFT at 0.1 Hz (k = 40 of 200 at TR 2 s) is zero: outside the band.
            let k = 40.0
            let re = x.indices.reduce(0.0) { $0 + x[$1] * cos(2 * .pi * k * Double($1) / 200) }
            #expect(abs(re) < 1e-9)
        }
        #expect(abs(variance / Double(runs) - 1) < 0.15)
    }

    @Test("a BOLD run on the demo atlas: shapes, region signal in the voxels, confounds from the data")
    func run() throws {
        let atlas = PhantomAtlas.demo()
        var random = PhantomRandom(seed: 3)
        let phantom = FunctionalPhantom(atlas: atlas, configuration: .init(volumeCount: 100, repetitionTime: 2))
        let run = phantom.simulate(withinNetworkCorrelation: ["DMN": 0.6], random: &random)
        let n = atlas.voxelCount
        #expect(run.shape == [24, 28, 20, 100])
        #expect(run.voxels.count == n * 100)
        #expect(run.regions.count == 14)
        #expect(run.networkMembership.first! == ("L_mPFC", "DMN"))
        #expect(run.confounds.rows.count == 100)
        // Outside the head: 0. Inside: about 1000.
        let outside = atlas.brainMask.firstIndex(of: false)!
        #expect((0..<100).allSatisfy { run.voxels[$0 * n + outside] == 0 })
        // The region mean, with the shared drift and motion term removed through the
        // unlabelled-tissue (csf) column, follows the planted region signal.
        let pcc = atlas.voxels(withLabel: atlas.regions.first { $0.name == "L_PCC" }!.index)
        let row = run.regions.firstIndex { $0.name == "L_PCC" }!
        let mean = (0..<100).map { t in pcc.reduce(0.0) { $0 + Double(run.voxels[t * n + $1]) } / Double(pcc.count) }
        let csf = try run.confounds.numericColumn("csf")
        let cleaned = mean.indices.map { mean[$0] - csf[$0] }
        #expect(correlation(cleaned, run.networkSignals.signals[row]) > 0.8)
        // global_signal is the mean over the head.
        let head = atlas.brainMask.indices.filter { atlas.brainMask[$0] }
        let global0 = head.reduce(0.0) { $0 + Double(run.voxels[$1]) } / Double(head.count)
        #expect(abs(try run.confounds.numericColumn("global_signal")[0] - global0) < 1e-3)
    }

    @Test("non-steady-state volumes: brighter and decaying, flagged one column each; the later volumes unchanged",
          arguments: [1, 3, 4])
    func nonSteadyState(volumes: Int) throws {
        let atlas = PhantomAtlas.demo()
        let n = atlas.voxelCount
        func simulate(_ nonSteady: Int) -> FunctionalPhantom.Run {
            var random = PhantomRandom(seed: 11)
            return FunctionalPhantom(atlas: atlas, configuration: .init(volumeCount: 60, nonSteadyStateVolumes: nonSteady))
                .simulate(withinNetworkCorrelation: ["DMN": 0.3], random: &random)
        }
        let steady = simulate(0), run = simulate(volumes)
        // From volume N on, the same numbers as a run without the transient.
        #expect(run.voxels[(volumes * n)...] == steady.voxels[(volumes * n)...])
        #expect(try run.confounds.column("trans_x") == steady.confounds.column("trans_x"))
        // Before it, brighter and decaying: the cortical mean above the steady-state one, as a
        // fraction of the cortical baseline (1000).
        let cortex = atlas.voxels(withLabel: atlas.regions.first { $0.name == "L_PCC" }!.index)
        func cortexMean(_ r: FunctionalPhantom.Run, _ t: Int) -> Double {
            cortex.reduce(0.0) { $0 + Double(r.voxels[t * n + $1]) } / Double(cortex.count)
        }
        let excess = (0..<volumes).map { (cortexMean(run, $0) - cortexMean(steady, $0)) / 1000 }
        #expect(abs(excess[0] - 1.5) < 1e-4)
        for t in 1..<volumes {
            #expect(abs(excess[t] - 1.5 * exp(-Double(t) * 2 / 1.33)) < 1e-4)
            #expect(excess[t] < excess[t - 1])
        }
        // One column per flagged volume, 1 on its volume only; the global signal carries the transient.
        let flags = run.confounds.columns.filter { $0.hasPrefix("non_steady_state_outlier") }
        #expect(flags == (0..<volumes).map { String(format: "non_steady_state_outlier%02d", $0) })
        for (k, name) in flags.enumerated() {
            let column = try run.confounds.numericColumn(name)
            #expect(column.indices.allSatisfy { column[$0] == ($0 == k ? 1 : 0) })
        }
        #expect(try run.confounds.numericColumn("global_signal")[0] > 2 * steady.confounds.numericColumn("global_signal")[0])
        #expect(!steady.confounds.columns.contains { $0.hasPrefix("non_steady_state") })
        // Kept, the transient makes two regions of different networks look connected (shared
        // drift and motion taken out through the steady run's csf column, as in `run()` above).
        let csf = try steady.confounds.numericColumn("csf")
        func cleanedMeans(_ r: FunctionalPhantom.Run) -> [[Double]] {
            ["L_PCC", "L_V1"].map { name in
                let voxels = atlas.voxels(withLabel: atlas.regions.first { $0.name == name }!.index)
                return (0..<60).map { t in voxels.reduce(0.0) { $0 + Double(r.voxels[t * n + $1]) } / Double(voxels.count) - csf[t] }
            }
        }
        let kept = cleanedMeans(run), without = cleanedMeans(steady)
        #expect(correlation(kept[0], kept[1]) > 0.9)
        #expect(abs(correlation(without[0], without[1])) < 0.5)
    }

    @Test("confounds table: fMRIPrep columns, n/a first rows, Power 2012 FD by hand")
    func confounds() throws {
        let motion = MotionParameters(volumes: [
            [0, 0, 0, 0, 0, 0],
            [0.1, -0.2, 0.3, 0.01, 0, -0.02],
            [0.1, -0.2, 0.3, 0.01, 0, -0.02],
            [0, 0, 0.5, 0, 0.002, 0],
        ])
        // FD_1 = 0.1 + 0.2 + 0.3 + 50 (0.01 + 0 + 0.02) = 2.1; FD_2 = 0;
        // FD_3 = 0.1 + 0.2 + 0.2 + 50 (0.01 + 0.002 + 0.02) = 2.1.
        let fd = motion.framewiseDisplacement()
        #expect(fd[0] == nil)
        #expect(abs(fd[1]! - 2.1) < 1e-12 && fd[2]! == 0 && abs(fd[3]! - 2.1) < 1e-12)
        let table = confoundsTable(motion: motion, tissueSignals: [("global_signal", [1, 2, 4, 3]), ("csf", [0, 0, 0, 0]),
                                                                    ("white_matter", [5, 5, 5, 5])])
        for base in ["global_signal", "csf", "white_matter"] + MotionParameters.columnNames {
            for suffix in ["", "_derivative1", "_power2", "_derivative1_power2"] {
                #expect(table.index(of: base + suffix) != nil, "missing \(base + suffix)")
            }
        }
        #expect(table.columns.last == "framewise_displacement")
        #expect(table.columns.count == 9 * 4 + 1)
        for (c, name) in table.columns.enumerated() {
            let derived = name.contains("derivative1") || name == "framewise_displacement"
            #expect((table.rows[0][c] == "n/a") == derived, "\(name) row 1: \(table.rows[0][c])")
            #expect(table.rows[1...].allSatisfy { $0[c] != "n/a" })
        }
        #expect(try table.column("framewise_displacement") == ["n/a", "2.100000", "0.000000", "2.100000"])
        #expect(try table.numericColumn("global_signal_derivative1").dropFirst() == [1, 2, -1])
        #expect(try table.numericColumn("global_signal_derivative1_power2").dropFirst() == [1, 4, 1])
        #expect(try table.numericColumn("trans_z_power2") == [0, 0.09, 0.09, 0.25])
        // Round trip through the TSV reader.
        let parsed = try TSVTable(text: table.text, source: "confounds")
        #expect(parsed == TSVTable(columns: table.columns, rows: table.rows, source: "confounds"))
    }

    @Test("random-walk motion has the requested jerks above 0.5 mm FD")
    func motion() {
        var random = PhantomRandom(seed: 4)
        let motion = MotionParameters.randomWalk(volumeCount: 150, jerks: 2, random: &random)
        let fd = motion.framewiseDisplacement().compactMap { $0 }
        #expect(fd.count == 149)
        #expect(fd.filter { $0 > 0.3 }.count >= 2)
        #expect(fd.filter { $0 < 0.3 }.count >= 140)
    }
}
