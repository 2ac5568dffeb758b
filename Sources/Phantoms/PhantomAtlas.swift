import Foundation
import Geometry
import NIfTI
import Tabular

/// What a phantom region is made of, and so which pipeline uses it.
public enum TissueClass: String, Sendable, Equatable {
    /// A white-matter tract: anisotropic diffusion along ``AtlasRegion/fiberDirection``; used
    /// by the DTI metrics (regional FA); carries no BOLD network signal.
    case whiteMatter = "white_matter"
    /// A cortical region: nearly isotropic diffusion; carries the BOLD signal of its network;
    /// used by the connectivity metrics.
    case grayMatter = "gray_matter"
}

/// One labelled region of a phantom atlas.
public struct AtlasRegion: Equatable, Sendable {
    /// The label value in the atlas image (1, 2, …).
    public var index: Int
    /// `L_CST`, `R_PCC`, …
    public var name: String
    /// Resting-state network (`DMN`, `SMN`, `VIS`, `FPN`) for cortical regions, nil for tracts.
    public var network: String?
    public var tissue: TissueClass
    /// Unit fibre direction in the world (RAS+) frame, for tracts.
    public var fiberDirection: [Double]?
    /// The healthy FA of a tract (before lesions and per-voxel variation), or of cortex.
    public var fractionalAnisotropy: Double
    /// Mean diffusivity in mm²/s.
    public var meanDiffusivity: Double

    public init(index: Int, name: String, network: String?, tissue: TissueClass, fiberDirection: [Double]?,
                fractionalAnisotropy: Double, meanDiffusivity: Double) {
        self.index = index; self.name = name; self.network = network; self.tissue = tissue
        self.fiberDirection = fiberDirection
        self.fractionalAnisotropy = fractionalAnisotropy
        self.meanDiffusivity = meanDiffusivity
    }
}

/// A label atlas on a small voxel grid, with a brain-shaped ellipsoid mask.
///
/// Voxels are in NIfTI order (x fastest). Label 0 is "no region" (brain tissue outside any
/// region inside the mask, background outside it).
public struct PhantomAtlas: Sendable {
    /// Spatial grid dimensions (x, y, z).
    public var shape: [Int]
    /// Voxel-to-world transform (RAS+ millimetres).
    public var affine: Affine
    /// One label per voxel (0 = none).
    public var labels: [Int]
    /// Inside the head ellipsoid.
    public var brainMask: [Bool]
    /// The labelled regions, in label order.
    public var regions: [AtlasRegion]

    public init(shape: [Int], affine: Affine, labels: [Int], brainMask: [Bool], regions: [AtlasRegion]) {
        precondition(shape.count == 3 && labels.count == shape.reduce(1, *) && brainMask.count == labels.count,
                     "one label and one mask value per voxel of a 3D grid")
        self.shape = shape; self.affine = affine; self.labels = labels
        self.brainMask = brainMask; self.regions = regions
    }

    public var voxelCount: Int { labels.count }

    /// The region with label `index`.
    public func region(index: Int) -> AtlasRegion? { regions.first { $0.index == index } }

    /// The voxel indices (NIfTI order) carrying `label`.
    public func voxels(withLabel label: Int) -> [Int] {
        labels.indices.filter { labels[$0] == label }
    }

    /// The names of the networks, in the order they first appear among the regions.
    public var networks: [String] {
        var seen: [String] = []
        for region in regions { if let n = region.network, !seen.contains(n) { seen.append(n) } }
        return seen
    }

    /// The atlas table: `index`, `name`, `network` (`n/a` for tracts), `tissue`
    /// (`white_matter` or `gray_matter`).
    public var table: TSVTable {
        TSVTable(columns: ["index", "name", "network", "tissue"],
                 rows: regions.map { [String($0.index), $0.name, $0.network ?? "n/a", $0.tissue.rawValue] })
    }

    /// Writes the label image (int16) and its table.
    /// - Throws: ``NIfTIError`` or ``AtomicWriteError`` naming the file.
    public func write(image imagePath: String, table tablePath: String) throws {
        let header = NIfTIHeader.make(shape: shape, affine: affine, datatype: .int16)
        try NIfTIFile.write(labels.map { Float($0) }, shape: shape, datatype: .int16, geometry: header,
                            to: imagePath, description: "nimetrics phantom atlas")
        try table.write(to: tablePath)
    }

    // MARK: - The demo atlas

    /// The grid of the demo trial: 24 × 28 × 20 voxels of 3 mm, radiological (LAS) storage:
    /// voxel i increases towards the subject's left, so x_world = −3(i − 11.5). LAS makes the
    /// FSL bvec convention matter (see ``GradientScheme``). The grid centre is at world (0, 0, 0).
    public static let demoShape = [24, 28, 20]
    public static let demoVoxelSize = 3.0
    public static var demoAffine: Affine {
        let s = demoVoxelSize
        return Affine(rows: [
            [-s, 0, 0, s * 11.5],
            [0, s, 0, -s * 13.5],
            [0, 0, s, -s * 9.5],
            [0, 0, 0, 1],
        ])
    }

    /// The shared atlas of the demo trial, on ``demoShape`` / ``demoAffine``.
    ///
    /// Head: the ellipsoid x²/30² + y²/39² + z²/27² ≤ 1 (mm, centred on the grid).
    ///
    /// White-matter tracts (labels 1–5; boxes, fibre direction in RAS+, healthy FA):
    /// `L_CST`, `R_CST` (corticospinal, inferior–superior, FA 0.65), `CC_body` (corpus callosum,
    /// left–right, FA 0.75), `L_SLF`, `R_SLF` (superior longitudinal fasciculus,
    /// anterior–posterior, FA 0.55); MD 0.75e-3 mm²/s.
    ///
    /// Cortical regions (labels 6–19; spheres of radius 6 mm, FA 0.15, MD 0.85e-3 mm²/s):
    /// DMN `L_mPFC`, `R_mPFC`, `L_PCC`, `R_PCC`; SMN `L_M1`, `R_M1`, `L_S1`, `R_S1`;
    /// VIS `L_V1`, `R_V1`; FPN `L_DLPFC`, `R_DLPFC`, `L_IPL`, `R_IPL`.
    ///
    /// Regions are painted in label order and never overwrite an earlier one, and only inside
    /// the head.
    public static func demo() -> PhantomAtlas {
        let tractMD = 0.75e-3, cortexMD = 0.85e-3
        func tract(_ name: String, _ centre: [Double], _ half: [Double], _ direction: [Double], _ fa: Double) -> RegionSpec {
            RegionSpec(name: name, network: nil, shape: .box(centre: centre, halfSize: half),
                       fiberDirection: direction, fractionalAnisotropy: fa, meanDiffusivity: tractMD)
        }
        func cortical(_ name: String, _ network: String, _ centre: [Double]) -> RegionSpec {
            RegionSpec(name: name, network: network, shape: .ellipsoid(centre: centre, radii: [6, 6, 6]),
                       fiberDirection: nil, fractionalAnisotropy: 0.15, meanDiffusivity: cortexMD)
        }
        return build(shape: demoShape, affine: demoAffine, headRadii: [30, 39, 27], regions: [
            tract("L_CST", [-12, -3, -6], [3, 3, 12], [0, 0, 1], 0.65),
            tract("R_CST", [12, -3, -6], [3, 3, 12], [0, 0, 1], 0.65),
            tract("CC_body", [0, 0, 12], [7.5, 7.5, 3], [1, 0, 0], 0.75),
            tract("L_SLF", [-21, -3, 6], [3, 12, 3], [0, 1, 0], 0.55),
            tract("R_SLF", [21, -3, 6], [3, 12, 3], [0, 1, 0], 0.55),
            cortical("L_mPFC", "DMN", [-6, 30, 3]), cortical("R_mPFC", "DMN", [6, 30, 3]),
            cortical("L_PCC", "DMN", [-6, -27, 9]), cortical("R_PCC", "DMN", [6, -27, 9]),
            cortical("L_M1", "SMN", [-18, -6, 18]), cortical("R_M1", "SMN", [18, -6, 18]),
            cortical("L_S1", "SMN", [-18, -18, 15]), cortical("R_S1", "SMN", [18, -18, 15]),
            cortical("L_V1", "VIS", [-6, -33, -3]), cortical("R_V1", "VIS", [6, -33, -3]),
            cortical("L_DLPFC", "FPN", [-21, 18, 9]), cortical("R_DLPFC", "FPN", [21, 18, 9]),
            cortical("L_IPL", "FPN", [-21, -21, 3]), cortical("R_IPL", "FPN", [21, -21, 3]),
        ])
    }

    // MARK: - Building an atlas

    /// Where a region lies, in world (RAS+) millimetres.
    public enum RegionShape: Sendable, Equatable {
        /// |x − cₓ| ≤ hₓ, |y − c_y| ≤ h_y, |z − c_z| ≤ h_z.
        case box(centre: [Double], halfSize: [Double])
        /// Σ ((x − c)/r)² ≤ 1.
        case ellipsoid(centre: [Double], radii: [Double])

        func contains(_ p: [Double]) -> Bool {
            switch self {
            case .box(let c, let h): return (0..<3).allSatisfy { abs(p[$0] - c[$0]) <= h[$0] }
            case .ellipsoid(let c, let r):
                var sum = 0.0
                for axis in 0..<3 {
                    let u = (p[axis] - c[axis]) / r[axis]
                    sum += u * u
                }
                return sum <= 1
            }
        }
    }

    /// One region to paint: a shape plus the properties of ``AtlasRegion`` (a non-nil
    /// `fiberDirection` makes a white-matter tract, nil a cortical region).
    public struct RegionSpec: Sendable, Equatable {
        public var name: String
        public var network: String?
        public var shape: RegionShape
        public var fiberDirection: [Double]?
        public var fractionalAnisotropy: Double
        public var meanDiffusivity: Double

        public init(name: String, network: String?, shape: RegionShape, fiberDirection: [Double]?,
                    fractionalAnisotropy: Double, meanDiffusivity: Double) {
            self.name = name; self.network = network; self.shape = shape; self.fiberDirection = fiberDirection
            self.fractionalAnisotropy = fractionalAnisotropy; self.meanDiffusivity = meanDiffusivity
        }
    }

    /// Paints an atlas on a grid: the head is the ellipsoid with semi-axes `headRadii` (mm)
    /// centred at world (0, 0, 0); regions get labels 1, 2, … in the order given, each taking
    /// the head voxels (by voxel centre) inside its shape that no earlier region took.
    /// Small grids built this way make fast test data.
    public static func build(shape: [Int], affine: Affine, headRadii: [Double], regions specs: [RegionSpec]) -> PhantomAtlas {
        precondition(shape.count == 3 && headRadii.count == 3, "a 3D grid and three head radii")
        let count = shape.reduce(1, *)
        let head = RegionShape.ellipsoid(centre: [0, 0, 0], radii: headRadii)
        var world: [[Double]] = []
        world.reserveCapacity(count)
        for k in 0..<shape[2] {
            for j in 0..<shape[1] {
                for i in 0..<shape[0] {
                    let p = affine.apply(SIMD3(Double(i), Double(j), Double(k)))
                    world.append([p.x, p.y, p.z])
                }
            }
        }
        let mask = world.map { head.contains($0) }
        var labels = [Int](repeating: 0, count: count)
        var regions: [AtlasRegion] = []
        for (offset, spec) in specs.enumerated() {
            let label = offset + 1
            for v in 0..<count where mask[v] && labels[v] == 0 && spec.shape.contains(world[v]) { labels[v] = label }
            regions.append(AtlasRegion(
                index: label, name: spec.name, network: spec.network,
                tissue: spec.fiberDirection == nil ? .grayMatter : .whiteMatter, fiberDirection: spec.fiberDirection,
                fractionalAnisotropy: spec.fractionalAnisotropy, meanDiffusivity: spec.meanDiffusivity))
        }
        return PhantomAtlas(shape: shape, affine: affine, labels: labels, brainMask: mask, regions: regions)
    }
}
