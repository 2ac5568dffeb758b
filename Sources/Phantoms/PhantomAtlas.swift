import Foundation
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
        let shape = demoShape
        let affine = demoAffine
        enum Shape { case box(half: [Double]), sphere(radius: Double) }
        struct Spec { let name: String; let network: String?; let centre: [Double]; let shape: Shape; let direction: [Double]?; let fa: Double }
        let tractMD = 0.75e-3, cortexMD = 0.85e-3
        let specs: [Spec] = [
            Spec(name: "L_CST", network: nil, centre: [-12, -3, -6], shape: .box(half: [3, 3, 12]), direction: [0, 0, 1], fa: 0.65),
            Spec(name: "R_CST", network: nil, centre: [12, -3, -6], shape: .box(half: [3, 3, 12]), direction: [0, 0, 1], fa: 0.65),
            Spec(name: "CC_body", network: nil, centre: [0, 0, 12], shape: .box(half: [7.5, 7.5, 3]), direction: [1, 0, 0], fa: 0.75),
            Spec(name: "L_SLF", network: nil, centre: [-21, -3, 6], shape: .box(half: [3, 12, 3]), direction: [0, 1, 0], fa: 0.55),
            Spec(name: "R_SLF", network: nil, centre: [21, -3, 6], shape: .box(half: [3, 12, 3]), direction: [0, 1, 0], fa: 0.55),
            Spec(name: "L_mPFC", network: "DMN", centre: [-6, 30, 3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_mPFC", network: "DMN", centre: [6, 30, 3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_PCC", network: "DMN", centre: [-6, -27, 9], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_PCC", network: "DMN", centre: [6, -27, 9], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_M1", network: "SMN", centre: [-18, -6, 18], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_M1", network: "SMN", centre: [18, -6, 18], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_S1", network: "SMN", centre: [-18, -18, 15], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_S1", network: "SMN", centre: [18, -18, 15], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_V1", network: "VIS", centre: [-6, -33, -3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_V1", network: "VIS", centre: [6, -33, -3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_DLPFC", network: "FPN", centre: [-21, 18, 9], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_DLPFC", network: "FPN", centre: [21, 18, 9], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "L_IPL", network: "FPN", centre: [-21, -21, 3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
            Spec(name: "R_IPL", network: "FPN", centre: [21, -21, 3], shape: .sphere(radius: 6), direction: nil, fa: 0.15),
        ]
        let count = shape.reduce(1, *)
        var labels = [Int](repeating: 0, count: count)
        var mask = [Bool](repeating: false, count: count)
        var world: [[Double]] = []
        world.reserveCapacity(count)
        for k in 0..<shape[2] {
            for j in 0..<shape[1] {
                for i in 0..<shape[0] {
                    let (x, y, z) = affine.apply(Double(i), Double(j), Double(k))
                    world.append([x, y, z])
                    mask[world.count - 1] = (x / 30) * (x / 30) + (y / 39) * (y / 39) + (z / 27) * (z / 27) <= 1
                }
            }
        }
        var regions: [AtlasRegion] = []
        for (offset, spec) in specs.enumerated() {
            let label = offset + 1
            for v in 0..<count where mask[v] && labels[v] == 0 {
                let d = (0..<3).map { world[v][$0] - spec.centre[$0] }
                let inside: Bool
                switch spec.shape {
                case .box(let half): inside = (0..<3).allSatisfy { abs(d[$0]) <= half[$0] }
                case .sphere(let radius): inside = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= radius * radius
                }
                if inside { labels[v] = label }
            }
            regions.append(AtlasRegion(
                index: label, name: spec.name, network: spec.network,
                tissue: spec.direction == nil ? .grayMatter : .whiteMatter, fiberDirection: spec.direction,
                fractionalAnisotropy: spec.fa, meanDiffusivity: spec.direction == nil ? cortexMD : tractMD))
        }
        return PhantomAtlas(shape: shape, affine: affine, labels: labels, brainMask: mask, regions: regions)
    }
}
