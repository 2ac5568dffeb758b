import Foundation
import NIfTI
import Tabular

/// Head motion over a run: three translations (mm) and three rotations (radians) per volume,
/// as fMRIPrep reports them (`trans_x` … `rot_z`).
public struct MotionParameters: Equatable, Sendable {
    /// `[trans_x, trans_y, trans_z, rot_x, rot_y, rot_z]` for each volume.
    public var volumes: [[Double]]

    public init(volumes: [[Double]]) {
        precondition(volumes.allSatisfy { $0.count == 6 }, "six motion parameters per volume")
        self.volumes = volumes
    }

    public static let columnNames = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]

    /// Framewise displacement (Power et al. 2012, "Spurious but systematic correlations in
    /// functional connectivity MRI networks arise from subject motion", NeuroImage
    /// 59:2142-2154): FD_t = |Δtx| + |Δty| + |Δtz| + r(|Δα| + |Δβ| + |Δγ|), rotations in radians
    /// turned into arc length on a sphere of radius `radius` mm (50 mm, the cortex's distance
    /// from the head's centre). The first volume has no predecessor: nil.
    public func framewiseDisplacement(radius: Double = 50) -> [Double?] {
        volumes.indices.map { t in
            guard t > 0 else { return nil }
            let d = (0..<6).map { abs(volumes[t][$0] - volumes[t - 1][$0]) }
            return d[0] + d[1] + d[2] + radius * (d[3] + d[4] + d[5])
        }
    }

    /// A smooth random walk with a few abrupt jerks, like a resting participant's head:
    /// translation steps N(0, 0.02 mm), rotation steps N(0, 0.0003 rad), and `jerks` volumes
    /// with an extra step of 0.3–0.6 mm (so FD exceeds the usual 0.5 mm scrubbing threshold).
    public static func randomWalk(volumeCount: Int, jerks: Int = 2, random: inout PhantomRandom) -> MotionParameters {
        var jerkVolumes = Set<Int>()
        while jerkVolumes.count < min(jerks, max(0, volumeCount - 1)) {
            jerkVolumes.insert(1 + Int(random.uniform() * Double(volumeCount - 1)))
        }
        var current = [Double](repeating: 0, count: 6)
        var volumes: [[Double]] = []
        for t in 0..<volumeCount {
            if t > 0 {
                for p in 0..<3 { current[p] += 0.02 * random.gaussian() }
                for p in 3..<6 { current[p] += 0.0003 * random.gaussian() }
                if jerkVolumes.contains(t) {
                    let axis = Int(random.uniform() * 3)
                    current[axis] += (random.uniform() < 0.5 ? -1 : 1) * random.uniform(0.3, 0.6)
                }
            }
            volumes.append(current)
        }
        return MotionParameters(volumes: volumes)
    }
}

/// Region-level resting-state signals with a planted network structure.
///
/// Every network n has a latent signal Lₙ(t); region r of network n has
///
///     x_r(t) = √ρₙ · Lₙ(t) + √(1 − ρₙ) · e_r(t)
///
/// with Lₙ and e_r independent, zero-mean, unit-variance band-limited Gaussian processes
/// (``bandLimitedProcess(volumeCount:repetitionTime:band:random:)``). So the population
/// correlation of two regions is ρₙ within network n and 0 between networks, and since all
/// signal power lies in the same band, band-pass filtering does not change it.
public struct NetworkSignals: Sendable {
    /// The network of each region.
    public var networks: [String]
    /// Region × time (unit population variance).
    public var signals: [[Double]]
    /// The population correlation matrix of the regions.
    public var trueCorrelation: [[Double]]

    /// Draws the region signals.
    /// - Parameters:
    ///   - networks: the network of each region.
    ///   - withinNetworkCorrelation: ρₙ for each network, in [0, 1]; a network not listed has 0.
    ///   - volumeCount: time points.
    ///   - repetitionTime: seconds between time points.
    ///   - band: the frequencies (Hz) the signal occupies (0.01–0.08 Hz, the resting-state band
    ///     of Biswal et al. 1995, Magn Reson Med 34:537-541).
    public init(networks: [String], withinNetworkCorrelation: [String: Double], volumeCount: Int,
                repetitionTime: Double, band: ClosedRange<Double> = 0.01...0.08, random: inout PhantomRandom) {
        self.networks = networks
        var latent: [String: [Double]] = [:]
        for network in networks where latent[network] == nil {
            latent[network] = bandLimitedProcess(volumeCount: volumeCount, repetitionTime: repetitionTime, band: band, random: &random)
        }
        signals = networks.map { network in
            let rho = min(max(withinNetworkCorrelation[network] ?? 0, 0), 1)
            let own = bandLimitedProcess(volumeCount: volumeCount, repetitionTime: repetitionTime, band: band, random: &random)
            let shared = latent[network]!
            return (0..<volumeCount).map { rho.squareRoot() * shared[$0] + (1 - rho).squareRoot() * own[$0] }
        }
        trueCorrelation = networks.indices.map { a in
            networks.indices.map { b in
                a == b ? 1 : networks[a] == networks[b] ? min(max(withinNetworkCorrelation[networks[a]] ?? 0, 0), 1) : 0
            }
        }
    }
}

/// A zero-mean Gaussian process with unit population variance and a flat spectrum on `band`:
///
///     x(t) = Σₖ aₖ cos(2π fₖ t) + bₖ sin(2π fₖ t),   aₖ, bₖ ~ N(0, 1/K)
///
/// over the K Fourier frequencies fₖ = k / (N · TR) inside `band`. Distinct Fourier
/// frequencies are orthogonal over the run, so processes drawn this way have sample
/// correlations that scatter around their population value with about 2K degrees of freedom.
/// - Precondition: the run is long enough for at least one frequency in `band`.
public func bandLimitedProcess(volumeCount: Int, repetitionTime: Double, band: ClosedRange<Double>,
                               random: inout PhantomRandom) -> [Double] {
    let duration = Double(volumeCount) * repetitionTime
    let nyquistIndex = volumeCount / 2
    let frequencies = (1..<max(nyquistIndex, 1)).filter { band.contains(Double($0) / duration) }
    precondition(!frequencies.isEmpty, "the run is too short for any frequency in \(band) Hz")
    let scale = (1 / Double(frequencies.count)).squareRoot()
    var x = [Double](repeating: 0, count: volumeCount)
    for k in frequencies {
        let a = scale * random.gaussian()
        let b = scale * random.gaussian()
        let omega = 2 * Double.pi * Double(k) / Double(volumeCount)
        for t in 0..<volumeCount {
            let phase = omega * Double(t)
            x[t] += a * cos(phase) + b * sin(phase)
        }
    }
    return x
}

/// A resting-state BOLD run on an atlas grid, with known network structure and known confounds.
///
/// Each voxel v inside the head, with label r (cortical), is
///
///     y_v(t) = B_v + d_v(t) + A · x_r(t) + c_v · m(t) + ε_v(t)
///
/// B_v the baseline (1000 in cortex, 900 in white matter, 1100 elsewhere in the head), d_v a
/// slow quadratic drift shared by the head (scaled per voxel), A the BOLD amplitude (1 % of
/// baseline by default), x_r the region signal of ``NetworkSignals``, m(t) = Σ translations +
/// 50 mm · Σ rotations the head displacement (a linear function of the six motion parameters,
/// so regressing them out removes it), c_v its per-voxel coupling, ε_v white noise.
/// White-matter tracts and unlabelled voxels carry no network signal. Outside the head: 0.
///
/// Non-steady-state volumes (``Configuration/nonSteadyStateVolumes``, N): before the
/// longitudinal magnetisation reaches its steady state the first volumes of a run are
/// brighter. Volume t < N gets
///
///     y_v(t) += a · B_v · exp(−t · TR / T1)
///
/// with a = ``Configuration/nonSteadyStateExcess`` and T1 the tissue's longitudinal relaxation
/// time at 3 T (Wansapura et al. 1999, "NMR relaxation times in the human brain at 3.0 tesla",
/// J Magn Reson Imaging 9:531-538: cortex 1.33 s, white matter 0.83 s; 2 s for the unlabelled,
/// partly CSF, tissue). From volume N on the run is exactly the steady-state model above, with
/// the same random draws as a run without the transient. The transient is shared by every
/// cortical region and is not in the motion parameters: kept, with no confounds or a motion
/// model (6P, 24P), it drives every cortical correlation towards 1 (0.99 on the demo trial).
/// The tissue signals of the confounds table carry it too, so the 36P model (their
/// derivatives and squares span the first few volumes) regresses it out. Dropped, as fMRIPrep's
/// `non_steady_state_outlierXX` columns say, it leaves no trace.
public struct FunctionalPhantom: Sendable {
    /// Acquisition and signal settings.
    public struct Configuration: Sendable {
        public var volumeCount: Int
        public var repetitionTime: Double
        public var bloodOxygenAmplitude: Double
        public var voxelNoise: Double
        public var driftAmplitude: Double
        /// Signal change per millimetre of head displacement.
        public var motionCoupling: Double
        public var band: ClosedRange<Double>
        /// Leading volumes before the steady state (0: none).
        public var nonSteadyStateVolumes: Int
        /// Excess signal of volume 0 as a fraction of the steady-state baseline.
        public var nonSteadyStateExcess: Double

        public init(volumeCount: Int = 120, repetitionTime: Double = 2, bloodOxygenAmplitude: Double = 10,
                    voxelNoise: Double = 8, driftAmplitude: Double = 10, motionCoupling: Double = 15,
                    band: ClosedRange<Double> = 0.01...0.08, nonSteadyStateVolumes: Int = 0, nonSteadyStateExcess: Double = 1.5) {
            precondition(nonSteadyStateVolumes == 0 || (0..<volumeCount).contains(nonSteadyStateVolumes),
                         "non-steady-state volumes: at least 0 and fewer than the volumes")
            self.volumeCount = volumeCount; self.repetitionTime = repetitionTime
            self.bloodOxygenAmplitude = bloodOxygenAmplitude; self.voxelNoise = voxelNoise
            self.driftAmplitude = driftAmplitude; self.motionCoupling = motionCoupling; self.band = band
            self.nonSteadyStateVolumes = nonSteadyStateVolumes; self.nonSteadyStateExcess = nonSteadyStateExcess
        }

        /// T1 (s) at 3 T of the tissue of a voxel (nil: unlabelled), for the non-steady-state transient.
        static func longitudinalRelaxation(_ tissue: TissueClass?) -> Double {
            switch tissue {
            case .grayMatter: 1.33
            case .whiteMatter: 0.83
            case nil: 2.0
            }
        }
    }

    /// The simulated run and its truth.
    public struct Run: Sendable {
        /// Volume-major voxels (`voxels[t * voxelsPerVolume + i]`).
        public var voxels: [Float]
        /// Grid then time.
        public var shape: [Int]
        /// The cortical regions (atlas order) that carry network signals.
        public var regions: [AtlasRegion]
        /// Their signals and population correlation (same order as ``regions``).
        public var networkSignals: NetworkSignals
        public var motion: MotionParameters
        /// The fMRIPrep-style confounds table.
        public var confounds: TSVTable

        /// The population correlation of the regions.
        public var trueCorrelation: [[Double]] { networkSignals.trueCorrelation }
        /// Region name → network.
        public var networkMembership: [(region: String, network: String)] {
            regions.map { ($0.name, $0.network ?? "n/a") }
        }
    }

    public var atlas: PhantomAtlas
    public var configuration: Configuration

    public init(atlas: PhantomAtlas, configuration: Configuration = .init()) {
        self.atlas = atlas
        self.configuration = configuration
    }

    /// Simulates one run.
    /// - Parameter withinNetworkCorrelation: ρₙ per network (see ``NetworkSignals``).
    public func simulate(withinNetworkCorrelation: [String: Double], random: inout PhantomRandom) -> Run {
        let c = configuration
        let n = atlas.voxelCount
        let T = c.volumeCount
        let cortical = atlas.regions.filter { $0.network != nil }
        let signals = NetworkSignals(networks: cortical.map { $0.network! }, withinNetworkCorrelation: withinNetworkCorrelation,
                                     volumeCount: T, repetitionTime: c.repetitionTime, band: c.band, random: &random)
        var signalRow = [Int: Int]()
        for (row, region) in cortical.enumerated() { signalRow[region.index] = row }
        let motion = MotionParameters.randomWalk(volumeCount: T, random: &random)
        let displacement = motion.volumes.map { $0[0] + $0[1] + $0[2] + 50 * ($0[3] + $0[4] + $0[5]) }
        let linear = c.driftAmplitude * random.gaussian()
        let quadratic = c.driftAmplitude * random.gaussian()
        let drift = (0..<T).map { t -> Double in
            let u = T > 1 ? Double(t) / Double(T - 1) - 0.5 : 0
            return linear * u + quadratic * (u * u - 1.0 / 12)
        }
        var voxels = [Float](repeating: 0, count: n * T)
        var whiteMatter = [Double](repeating: 0, count: T), csf = [Double](repeating: 0, count: T)
        var global = [Double](repeating: 0, count: T)
        var whiteMatterCount = 0, csfCount = 0, globalCount = 0
        for i in 0..<n where atlas.brainMask[i] {
            let label = atlas.labels[i]
            let tissue = label == 0 ? nil : atlas.region(index: label)?.tissue
            let baseline: Double = tissue == .grayMatter ? 1000 : tissue == .whiteMatter ? 900 : 1100
            let driftScale = 1 + 0.2 * random.gaussian()
            let coupling = c.motionCoupling * (1 + 0.5 * random.gaussian())
            let row = signalRow[label]
            let relaxation = Configuration.longitudinalRelaxation(tissue)
            for t in 0..<T {
                var y = baseline + driftScale * drift[t] + coupling * displacement[t] + c.voxelNoise * random.gaussian()
                if let row { y += c.bloodOxygenAmplitude * signals.signals[row][t] }
                if t < c.nonSteadyStateVolumes {
                    y += c.nonSteadyStateExcess * baseline * exp(-Double(t) * c.repetitionTime / relaxation)
                }
                voxels[t * n + i] = Float(y)
                global[t] += y
                if tissue == .whiteMatter { whiteMatter[t] += y } else if tissue == nil { csf[t] += y }
            }
            globalCount += 1
            if tissue == .whiteMatter { whiteMatterCount += 1 } else if tissue == nil { csfCount += 1 }
        }
        let means = [
            ("global_signal", global.map { $0 / Double(max(globalCount, 1)) }),
            ("csf", csf.map { $0 / Double(max(csfCount, 1)) }),
            ("white_matter", whiteMatter.map { $0 / Double(max(whiteMatterCount, 1)) }),
        ]
        return Run(voxels: voxels, shape: atlas.shape + [T], regions: cortical, networkSignals: signals, motion: motion,
                   confounds: confoundsTable(motion: motion, tissueSignals: means, nonSteadyStateVolumes: c.nonSteadyStateVolumes))
    }
}

/// An fMRIPrep-style `desc-confounds_timeseries.tsv` (Esteban et al. 2019, Nat Methods 16:111):
/// for each of `tissueSignals` (in order) and then the six motion parameters, the column, its
/// `_derivative1` (backward difference, `n/a` on the first row), `_power2` and
/// `_derivative1_power2` (Satterthwaite et al. 2013's 24-parameter expansion), then
/// `framewise_displacement` (Power et al. 2012, 50 mm radius; `n/a` on the first row), then,
/// as fMRIPrep flags the volumes before the steady state, one `non_steady_state_outlierXX`
/// column per such volume (XX from 00; 1 on that volume, 0 elsewhere; none when there are none).
/// Numbers are written with 6 decimals (fMRIPrep's own precision is similar).
public func confoundsTable(motion: MotionParameters, tissueSignals: [(String, [Double])], nonSteadyStateVolumes: Int = 0) -> TSVTable {
    let T = motion.volumes.count
    var series = tissueSignals
    for (p, name) in MotionParameters.columnNames.enumerated() { series.append((name, motion.volumes.map { $0[p] })) }
    var columns: [String] = []
    var cells: [[String]] = []
    func cell(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "n/a" }
        let text = String(format: "%.6f", v)
        return text == "-0.000000" ? "0.000000" : text
    }
    for (name, x) in series {
        precondition(x.count == T, "one value per volume")
        let derivative: [Double?] = (0..<T).map { $0 == 0 ? nil : x[$0] - x[$0 - 1] }
        columns += [name, name + "_derivative1", name + "_power2", name + "_derivative1_power2"]
        cells.append(x.map { cell($0) })
        cells.append(derivative.map { cell($0) })
        cells.append(x.map { cell($0 * $0) })
        cells.append(derivative.map { d in cell(d.map { $0 * $0 }) })
    }
    columns.append("framewise_displacement")
    cells.append(motion.framewiseDisplacement().map { cell($0) })
    for volume in 0..<nonSteadyStateVolumes {
        columns.append(String(format: "non_steady_state_outlier%02d", volume))
        cells.append((0..<T).map { cell($0 == volume ? 1 : 0) })
    }
    let rows = (0..<T).map { t in cells.map { $0[t] } }
    return TSVTable(columns: columns, rows: rows, source: "desc-confounds_timeseries.tsv")
}
