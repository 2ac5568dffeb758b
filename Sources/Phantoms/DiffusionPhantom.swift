import Foundation
import Geometry
import NIfTI

/// A diffusion-weighted acquisition of a voxel grid whose every voxel has a known tensor.
///
/// The noiseless signal of voxel i in volume v is the Stejskal–Tanner equation for a
/// Gaussian diffusion tensor (Stejskal & Tanner 1965, J Chem Phys 42:288; Basser, Mattiello &
/// LeBihan 1994, "MR diffusion tensor spectroscopy and imaging", Biophys J 66:259-267):
///
///     S(i, v) = S0(i) · exp(−b_v · g_vᵀ D(i) g_v)
///
/// with g_v the gradient direction in the world frame (see ``GradientScheme``). Magnitude
/// images carry Rician noise (Gudbjartsson & Patz 1995, "The Rician distribution of noisy MRI
/// data", Magn Reson Med 34:910-914): the measured value is |S + n₁ + i·n₂| with n₁, n₂
/// independent N(0, σ²).
public struct DiffusionPhantom: Sendable {
    /// Spatial grid (x, y, z).
    public var shape: [Int]
    /// Voxel-to-world transform of the grid.
    public var affine: Affine
    public var scheme: GradientScheme
    /// Non-diffusion-weighted signal per voxel (0 outside the head).
    public var s0: [Double]
    /// The true tensor of each voxel, in the world frame.
    public var truth: [TensorTruth]

    public init(shape: [Int], affine: Affine, scheme: GradientScheme, s0: [Double], truth: [TensorTruth]) {
        precondition(shape.count == 3 && s0.count == shape.reduce(1, *) && truth.count == s0.count,
                     "one S0 and one tensor per voxel of a 3D grid")
        self.shape = shape; self.affine = affine; self.scheme = scheme; self.s0 = s0; self.truth = truth
    }

    public var voxelsPerVolume: Int { s0.count }

    /// The 4D shape of the DWI series: the grid, then one volume per gradient.
    public var seriesShape: [Int] { shape + [scheme.volumeCount] }

    /// The noiseless signal, volume-major (`signal[v * voxelsPerVolume + i]`).
    public func noiselessSignal() -> [Double] {
        let world = scheme.worldDirections(linear: affine.linear)
        let n = voxelsPerVolume
        var out = [Double](repeating: 0, count: n * scheme.volumeCount)
        for v in 0..<scheme.volumeCount {
            let b = scheme.bValues[v]
            let g = world[v]
            for i in 0..<n where s0[i] != 0 {
                out[v * n + i] = b == 0 ? s0[i] : s0[i] * exp(-b * truth[i].tensor.apparentDiffusion(along: g))
            }
        }
        return out
    }

    /// The measured magnitude signal, volume-major, with Rician noise of standard deviation
    /// `noiseSigma` (per real and imaginary channel) in every voxel, background included.
    /// `noiseSigma = 0` returns the noiseless signal.
    public func simulate(noiseSigma: Double, random: inout PhantomRandom) -> [Float] {
        let clean = noiselessSignal()
        guard noiseSigma > 0 else { return clean.map { Float($0) } }
        return clean.map { Float(ricianMagnitude(signal: $0, sigma: noiseSigma, random: &random)) }
    }

    /// Writes a DWI series as FSL and BIDS expect: `<stem>.nii.gz` (int16, as scanners store
    /// magnitude images: values rounded and clamped to 0…32767, no scaling needed for S0
    /// around 1000), `<stem>.bval` and `<stem>.bvec` (three rows).
    /// - Parameters:
    ///   - signal: volume-major voxels, as ``simulate(noiseSigma:random:)`` returns them.
    ///   - stem: the path without extension, e.g. `…/dwi/sub-01_ses-baseline_dwi`.
    /// - Throws: ``NIfTIError`` or `AtomicWriteError` naming the file.
    public func write(signal: [Float], stem: String) throws {
        let header = NIfTIHeader.make(shape: seriesShape, affine: affine, datatype: .int16)
        try NIfTIFile.write(signal, shape: seriesShape, datatype: .int16, geometry: header,
                            to: stem + ".nii.gz", description: "nimetrics phantom DWI")
        try writeText(scheme.bvalText, to: stem + ".bval")
        try writeText(scheme.bvecText, to: stem + ".bvec")
    }
}

/// One Rician magnitude sample: |s + n₁ + i·n₂| with n₁, n₂ ~ N(0, σ²)
/// (Gudbjartsson & Patz 1995). For s = 0 it is Rayleigh, with mean σ√(π/2).
public func ricianMagnitude(signal: Double, sigma: Double, random: inout PhantomRandom) -> Double {
    let real = signal + sigma * random.gaussian()
    let imaginary = sigma * random.gaussian()
    return (real * real + imaginary * imaginary).squareRoot()
}
