import Foundation
import Geometry
@testable import Diffusion

/// `count` directions on a golden-angle (Fibonacci) spiral over the sphere: deterministic and
/// well spread, enough for the tensor.
func spiralDirections(_ count: Int) -> [SIMD3<Double>] {
    (0..<count).map { k in
        let z = 1 - (2 * Double(k) + 1) / Double(count)
        let r = (1 - z * z).squareRoot()
        let phi = Double(k) * Double.pi * (3 - 5.0.squareRoot())
        return SIMD3(r * Foundation.cos(phi), r * Foundation.sin(phi), z)
    }
}

/// 5 b=0 volumes then `directions` at b = `b`.
func standardTable(directions: Int = 30, b: Double = 1000) throws -> GradientTable {
    try GradientTable(bValues: Array(repeating: 0, count: 5) + Array(repeating: b, count: directions),
                      directions: Array(repeating: .zero, count: 5) + spiralDirections(directions))
}

/// A tensor with eigenvalues `l` and principal axis `v1` (the other axes any orthonormal completion).
struct SyntheticTensor {
    var eigenvalues: SIMD3<Double>
    var axes: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)

    init(eigenvalues: SIMD3<Double>, v1: SIMD3<Double>, roll: Double = 0.3) {
        self.eigenvalues = eigenvalues
        let a = v1 / (v1 * v1).sum().squareRoot()
        let helper: SIMD3<Double> = abs(a.x) < 0.9 ? SIMD3(1, 0, 0) : SIMD3(0, 1, 0)
        var b = cross(a, helper)
        b /= (b * b).sum().squareRoot()
        var c = cross(a, b)
        // Rotate the secondary axes about v1 by `roll`, so they are not aligned with anything.
        let b2 = Foundation.cos(roll) * b + Foundation.sin(roll) * c
        c = cross(a, b2)
        axes = (a, b2, c)
    }

    /// g D g for a unit direction.
    func adc(_ g: SIMD3<Double>) -> Double {
        let p0 = (axes.0 * g).sum(), p1 = (axes.1 * g).sum(), p2 = (axes.2 * g).sum()
        return eigenvalues.x * p0 * p0 + eigenvalues.y * p1 * p1 + eigenvalues.z * p2 * p2
    }

    /// Signal S0 exp(-b gDg) for each volume.
    func signal(_ table: GradientTable, s0: Double) -> [Double] {
        (0..<table.count).map { s0 * Foundation.exp(-table.bValues[$0] * adc(table.directions[$0])) }
    }
}

/// Builds volume-major data from per-voxel signals.
func volumeMajor(_ signals: [[Double]], volumes: Int) -> [Float] {
    var data = [Float](repeating: 0, count: volumes * signals.count)
    for (i, s) in signals.enumerated() {
        for v in 0..<volumes { data[v * signals.count + i] = Float(s[v]) }
    }
    return data
}
