import Foundation
import Geometry

/// A diffusion acquisition: one b-value and one unit gradient direction per volume.
///
/// Directions are stored as FSL writes them in a `.bvec` file: in the image's voxel axes,
/// with the x component negated when the voxel-to-world affine has a positive determinant
/// (neurological storage, e.g. RAS). For the radiological (LAS) grid of the demo trial no
/// sign changes, so the stored vector is the gradient in voxel axes, and the world (RAS)
/// gradient is (−gx, gy, gz). ``worldDirections(linear:)`` does that conversion in general.
public struct GradientScheme: Equatable, Sendable {
    /// s/mm², one per volume.
    public var bValues: [Double]
    /// Unit vectors (or zero for b = 0), one per volume, in the FSL bvec frame.
    public var directions: [[Double]]

    public init(bValues: [Double], directions: [[Double]]) {
        precondition(bValues.count == directions.count && directions.allSatisfy { $0.count == 3 },
                     "one b-value and one 3-vector per volume")
        self.bValues = bValues
        self.directions = directions
    }

    public var volumeCount: Int { bValues.count }

    /// `b0Count` volumes at b = 0 spread through the run (as scanners interleave them), and
    /// `directionCount` directions at `bValue` on the upper half-sphere (z ≥ 0), evenly spread
    /// by the Fibonacci (golden-angle) spiral: zᵢ = 1 − (i + ½)/m, φᵢ = i · π(3 − √5)
    /// (González 2010, "Measurement of areas on a sphere using Fibonacci and
    /// latitude–longitude lattices", Math Geosci 42:49-64). Diffusion is antipodally
    /// symmetric, so the half-sphere covers every orientation.
    ///
    /// The b = 0 volumes sit at volumes round(k · (n + m) / n), k = 0 … n − 1 (the first
    /// volume is always b = 0).
    public static func halfSphere(b0Count: Int = 5, directionCount: Int = 30, bValue: Double = 1000) -> GradientScheme {
        precondition(b0Count >= 1 && directionCount >= 6, "at least one b = 0 volume and six directions")
        return multiShell(b0Count: b0Count, shells: [(bValue, directionCount)])
    }

    /// A multi-shell acquisition: `b0Count` volumes at b = 0 placed as in
    /// ``halfSphere(b0Count:directionCount:bValue:)``, and for each shell its `directionCount`
    /// directions. The directions of all shells together are one Fibonacci half-sphere of
    /// Σ directionCount points (as in ``halfSphere(b0Count:directionCount:bValue:)``), dealt
    /// out to the shells in turn, so each shell is spread over the half-sphere and the shells
    /// do not repeat each other's directions; the diffusion-weighted volumes are acquired in
    /// that order, the shells interleaved.
    public static func multiShell(b0Count: Int = 5, shells: [(bValue: Double, directionCount: Int)]) -> GradientScheme {
        precondition(b0Count >= 1 && !shells.isEmpty && shells.allSatisfy { $0.directionCount >= 6 && $0.bValue > 0 },
                     "at least one b = 0 volume, and six directions on each shell")
        let directionCount = shells.reduce(0) { $0 + $1.directionCount }
        let total = b0Count + directionCount
        let b0Positions = Set((0..<b0Count).map { Int((Double($0 * total) / Double(b0Count)).rounded(.down)) })
        // Deal the points out: shell s takes the next point while it still needs directions.
        var remaining = shells.map(\.directionCount)
        var shellOfPoint: [Int] = []
        var shell = 0
        while shellOfPoint.count < directionCount {
            if remaining[shell] > 0 {
                shellOfPoint.append(shell)
                remaining[shell] -= 1
            }
            shell = (shell + 1) % shells.count
        }
        let goldenAngle = Double.pi * (3 - 5.0.squareRoot())
        var bValues: [Double] = []
        var directions: [[Double]] = []
        var next = 0
        for volume in 0..<total {
            if b0Positions.contains(volume) {
                bValues.append(0)
                directions.append([0, 0, 0])
            } else {
                let z = 1 - (Double(next) + 0.5) / Double(directionCount)
                let r = (1 - z * z).squareRoot()
                let phi = Double(next) * goldenAngle
                bValues.append(shells[shellOfPoint[next]].bValue)
                directions.append([r * cos(phi), r * sin(phi), z])
                next += 1
            }
        }
        return GradientScheme(bValues: bValues, directions: directions)
    }

    /// The directions in the world (RAS+) frame for an image with this voxel-to-world
    /// `linear` block: g_world = R · F · g_bvec, R the rotation part of the affine (unit
    /// columns) and F = diag(−1, 1, 1) when det > 0 (FSL's convention), else the identity.
    public func worldDirections(linear: Matrix3) -> [[Double]] {
        let norms = linear.columnNorms
        let rotation = Matrix3(columns: linear.column(0) / norms.x, linear.column(1) / norms.y, linear.column(2) / norms.z)
        let flipX = rotation.determinant > 0
        return directions.map { g in
            let world = rotation * SIMD3(flipX ? -g[0] : g[0], g[1], g[2])
            return [world.x, world.y, world.z]
        }
    }

    /// The FSL `.bval` text: one row of integers (b-values rounded), newline-terminated.
    public var bvalText: String {
        bValues.map { String(Int($0.rounded())) }.joined(separator: " ") + "\n"
    }

    /// The MRtrix3 gradient table (`.b`, as `mrconvert -grad` reads it and QSIPrep writes it):
    /// one row per volume, `x y z b`, the direction in the scanner (world, RAS+) frame
    /// (``worldDirections(linear:)``), six decimals, the b-value an integer.
    public func mrtrixText(linear: Matrix3) -> String {
        zip(worldDirections(linear: linear), bValues).map { g, b in
            g.map { component -> String in
                let text = String(format: "%.6f", component)
                return text == "-0.000000" ? "0.000000" : text
            }.joined(separator: " ") + " " + String(Int(b.rounded()))
        }.joined(separator: "\n") + "\n"
    }

    /// The FSL `.bvec` text: three rows (x, y, z), one column per volume, six decimals.
    public var bvecText: String {
        (0..<3).map { axis in
            directions.map { String(format: "%.6f", $0[axis] == 0 ? 0 : $0[axis]) }.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
    }
}
