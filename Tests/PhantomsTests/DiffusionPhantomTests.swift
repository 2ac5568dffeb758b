import Foundation
import Geometry
import NIfTI
import Testing
@testable import Phantoms

@Suite("Diffusion phantom")
struct DiffusionPhantomTests {
    static let las = Affine(rows: [[-2, 0, 0, 10], [0, 2, 0, -10], [0, 0, 2, -10], [0, 0, 0, 1]])
    static let ras = Affine(rows: [[2, 0, 0, -10], [0, 2, 0, -10], [0, 0, 2, -10], [0, 0, 0, 1]])

    @Test("cylindrical eigenvalues have the requested FA and MD", arguments: [0.0, 0.15, 0.4, 0.65, 0.9])
    func cylindrical(fa: Double) {
        let l = cylindricalEigenvalues(fractionalAnisotropy: fa, meanDiffusivity: 0.8e-3)
        #expect(abs(fractionalAnisotropy(eigenvalues: l) - fa) < 1e-12)
        #expect(abs(meanDiffusivity(eigenvalues: l) - 0.8e-3) < 1e-18)
        #expect(l[0] >= l[1] && l[1] == l[2])
    }

    @Test("a tensor built from eigenvalues has them: D e1 = l1 e1 and trace = sum")
    func tensorEigenvalues() {
        let v = [1.0, 2.0, -0.5]
        let norm = (v.reduce(0) { $0 + $1 * $1 }).squareRoot()
        let e1 = v.map { $0 / norm }
        let l = [1.7e-3, 0.5e-3, 0.3e-3]
        let d = DiffusionTensor(eigenvalues: l, principalDirection: v)
        let m = [[d.xx, d.xy, d.xz], [d.xy, d.yy, d.yz], [d.xz, d.yz, d.zz]]
        for r in 0..<3 {
            let product = (0..<3).reduce(0.0) { $0 + m[r][$1] * e1[$1] }
            #expect(abs(product - l[0] * e1[r]) < 1e-15)
        }
        #expect(abs(d.xx + d.yy + d.zz - l.reduce(0, +)) < 1e-15)
        #expect(abs(d.apparentDiffusion(along: e1) - l[0]) < 1e-15)
    }

    @Test("the scheme: b = 0 volumes spread, unit directions on the upper half-sphere, well separated")
    func scheme() {
        let scheme = GradientScheme.halfSphere(b0Count: 5, directionCount: 30, bValue: 1000)
        #expect(scheme.volumeCount == 35)
        #expect(scheme.bValues.indices.filter { scheme.bValues[$0] == 0 } == [0, 7, 14, 21, 28])
        let weighted = scheme.directions.indices.filter { scheme.bValues[$0] > 0 }.map { scheme.directions[$0] }
        #expect(weighted.count == 30)
        for g in weighted {
            #expect(abs(g.reduce(0) { $0 + $1 * $1 } - 1) < 1e-12)
            #expect(g[2] >= 0)
        }
        // Smallest angle between two axes (antipodes are the same axis).
        var smallest = 90.0
        for a in 0..<weighted.count {
            for b in (a + 1)..<weighted.count {
                let dot = abs((0..<3).reduce(0.0) { $0 + weighted[a][$1] * weighted[b][$1] })
                smallest = min(smallest, acos(min(dot, 1)) * 180 / .pi)
            }
        }
        #expect(smallest > 12)
        let bval = scheme.bvalText.split(separator: " ")
        #expect(bval.count == 35)
        let rows = scheme.bvecText.split(separator: "\n")
        #expect(rows.count == 3 && rows.allSatisfy { $0.split(separator: " ").count == 35 })
    }

    @Test("multi-shell scheme: b = 0 placed as in the single shell, each shell its count of distinct spread directions")
    func multiShell() {
        let scheme = GradientScheme.multiShell(b0Count: 5, shells: [(bValue: 1000, directionCount: 30), (bValue: 2000, directionCount: 30)])
        #expect(scheme.volumeCount == 65)
        #expect(scheme.bValues.indices.filter { scheme.bValues[$0] == 0 } == [0, 13, 26, 39, 52])
        #expect(Set(scheme.bValues) == [0, 1000, 2000])
        for b in [1000.0, 2000] {
            let shell = scheme.directions.indices.filter { scheme.bValues[$0] == b }.map { scheme.directions[$0] }
            #expect(shell.count == 30)
            var smallest = 90.0
            for a in 0..<shell.count {
                #expect(abs(shell[a].reduce(0) { $0 + $1 * $1 } - 1) < 1e-12 && shell[a][2] >= 0)
                for c in (a + 1)..<shell.count {
                    let dot = abs((0..<3).reduce(0.0) { $0 + shell[a][$1] * shell[c][$1] })
                    smallest = min(smallest, acos(min(dot, 1)) * 180 / .pi)
                }
            }
            #expect(smallest > 8, "directions of the b = \(b) shell too close: \(smallest) degrees")
        }
        // No direction is repeated across the shells.
        let weighted = scheme.directions.indices.filter { scheme.bValues[$0] > 0 }.map { scheme.directions[$0] }
        #expect(Set(weighted.map { $0.map { ($0 * 1e9).rounded() } }).count == 60)
        // One shell is the single-shell scheme exactly.
        let single = GradientScheme.multiShell(b0Count: 5, shells: [(bValue: 1000, directionCount: 30)])
        #expect(single == GradientScheme.halfSphere(b0Count: 5, directionCount: 30, bValue: 1000))
    }

    @Test("MRtrix .b rows: world (RAS) direction then b, for LAS and RAS grids alike")
    func mrtrixTable() {
        let scheme = GradientScheme(bValues: [0, 1000, 2000], directions: [[0, 0, 0], [0.6, 0.8, 0], [0, 0.6, 0.8]])
        for affine in [Self.las, Self.ras] {
            let rows = scheme.mrtrixText(linear: affine.linear).split(separator: "\n").map { $0.split(separator: " ").map { String($0) } }
            #expect(rows == [["0.000000", "0.000000", "0.000000", "0"],
                             ["-0.600000", "0.800000", "0.000000", "1000"],
                             ["0.000000", "0.600000", "0.800000", "2000"]])
        }
    }

    @Test("FSL bvecs give the same world gradients on LAS and RAS grids: (-x, y, z)")
    func fslConvention() {
        let scheme = GradientScheme(bValues: [1000], directions: [[0.6, 0.8, 0]])
        for affine in [Self.las, Self.ras] {
            let world = scheme.worldDirections(linear: affine.linear)[0]
            #expect(abs(world[0] + 0.6) < 1e-12 && abs(world[1] - 0.8) < 1e-12 && abs(world[2]) < 1e-12)
        }
    }

    @Test("noiseless signal matches an independent Stejskal-Tanner computation")
    func signalEquation() {
        let scheme = GradientScheme.halfSphere(b0Count: 2, directionCount: 12, bValue: 1000)
        // Voxel 0: oblique cylinder along (1, 1, 0)/sqrt 2; voxel 1: along z; voxel 2: background.
        let oblique = cylindricalEigenvalues(fractionalAnisotropy: 0.7, meanDiffusivity: 0.75e-3)
        let axial = cylindricalEigenvalues(fractionalAnisotropy: 0.3, meanDiffusivity: 0.9e-3)
        let truth = [TensorTruth(eigenvalues: oblique, principalDirection: [1, 1, 0]),
                     TensorTruth(eigenvalues: axial, principalDirection: [0, 0, 1]),
                     TensorTruth.empty]
        let phantom = DiffusionPhantom(shape: [3, 1, 1], affine: Self.las, scheme: scheme, s0: [1000, 800, 0], truth: truth)
        let signal = phantom.noiselessSignal()
        #expect(signal.count == 3 * scheme.volumeCount)
        for v in 0..<scheme.volumeCount {
            let b = scheme.bValues[v]
            // FSL bvec on a LAS grid: world gradient = (-gx, gy, gz).
            let g = [-scheme.directions[v][0], scheme.directions[v][1], scheme.directions[v][2]]
            // Cylinder: g'Dg = l_perp + (l_par - l_perp) (g . e1)^2.
            let cosine = (g[0] + g[1]) / 2.0.squareRoot()
            let adcOblique = oblique[1] + (oblique[0] - oblique[1]) * cosine * cosine
            let adcAxial = axial[1] + (axial[0] - axial[1]) * g[2] * g[2]
            #expect(abs(signal[v * 3 + 0] - 1000 * exp(-b * adcOblique)) < 1e-9)
            #expect(abs(signal[v * 3 + 1] - 800 * exp(-b * adcAxial)) < 1e-9)
            #expect(signal[v * 3 + 2] == 0)
        }
    }

    @Test("Rician noise: Rayleigh mean sigma*sqrt(pi/2) at zero signal, E[M^2] = S^2 + 2 sigma^2")
    func rician() {
        var random = PhantomRandom(seed: 11)
        let sigma = 20.0
        let n = 100_000
        let background = (0..<n).map { _ in ricianMagnitude(signal: 0, sigma: sigma, random: &random) }
        let mean = background.reduce(0, +) / Double(n)
        // Rayleigh sd = sigma sqrt(2 - pi/2) = 13.1; standard error 0.04.
        #expect(abs(mean - sigma * (Double.pi / 2).squareRoot()) < 0.2)
        let bright = (0..<n).map { _ in ricianMagnitude(signal: 300, sigma: sigma, random: &random) }
        let secondMoment = bright.reduce(0) { $0 + $1 * $1 } / Double(n)
        #expect(abs(secondMoment / (300 * 300 + 2 * sigma * sigma) - 1) < 0.003)
        #expect(bright.allSatisfy { $0 >= 0 })
    }

    @Test("simulate with sigma 0 returns the noiseless signal; with noise it changes")
    func simulate() {
        let truth = [TensorTruth(eigenvalues: [1.5e-3, 0.4e-3, 0.4e-3], principalDirection: [0, 1, 0])]
        let phantom = DiffusionPhantom(shape: [1, 1, 1], affine: Self.las, scheme: .halfSphere(), s0: [1000], truth: truth)
        var random = PhantomRandom(seed: 1)
        #expect(phantom.simulate(noiseSigma: 0, random: &random) == phantom.noiselessSignal().map { Float($0) })
        #expect(phantom.simulate(noiseSigma: 30, random: &random) != phantom.noiselessSignal().map { Float($0) })
    }
}
