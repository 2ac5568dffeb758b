import Geometry
import NIfTI
import Testing
@testable import Phantoms

@Suite("Demo atlas")
struct AtlasTests {
    @Test("every region has voxels inside the head; tracts and cortex as documented")
    func regions() {
        let atlas = PhantomAtlas.demo()
        #expect(atlas.shape == [24, 28, 20])
        #expect(atlas.affine.axisCodes == "LAS")
        #expect(atlas.regions.map(\.index) == Array(1...19))
        #expect(atlas.networks == ["DMN", "SMN", "VIS", "FPN"])
        for region in atlas.regions {
            let voxels = atlas.voxels(withLabel: region.index)
            #expect(voxels.count >= 12, "\(region.name) has \(voxels.count) voxels")
            #expect(voxels.allSatisfy { atlas.brainMask[$0] })
            #expect((region.tissue == .whiteMatter) == (region.network == nil))
            #expect((region.tissue == .whiteMatter) == (region.fiberDirection != nil))
        }
        // Left regions lie at negative world x (RAS+), i.e. high voxel i on a LAS grid.
        let leftCST = atlas.voxels(withLabel: 1).map { $0 % 24 }
        #expect(leftCST.allSatisfy { $0 > 12 })
        let brain = atlas.brainMask.filter { $0 }.count
        #expect(brain > 3000 && brain < 6000)
    }

    @Test("the builder paints regions in order, inside the head, without overwriting")
    func builder() {
        let atlas = PhantomAtlas.build(
            shape: [5, 5, 5], affine: Affine(rows: [[2, 0, 0, -4], [0, 2, 0, -4], [0, 0, 2, -4], [0, 0, 0, 1]]),
            headRadii: [4.5, 4.5, 4.5], regions: [
                .init(name: "T", network: nil, shape: .box(centre: [0, 0, 0], halfSize: [4, 0.5, 0.5]),
                      fiberDirection: [1, 0, 0], fractionalAnisotropy: 0.7, meanDiffusivity: 0.7e-3),
                .init(name: "C", network: "DMN", shape: .ellipsoid(centre: [0, 0, 0], radii: [2.5, 2.5, 2.5]),
                      fiberDirection: nil, fractionalAnisotropy: 0.1, meanDiffusivity: 0.9e-3),
            ])
        // The tract: the x line through the centre, 5 voxels (x = -4 ... 4, all within 4.5 mm).
        #expect(atlas.voxels(withLabel: 1).count == 5)
        // The sphere: centre and its 6 neighbours (2 mm away), minus the 3 the tract took.
        #expect(atlas.voxels(withLabel: 2).count == 4)
        // Head: voxel centres at -4, -2, 0, 2, 4 mm with x² + y² + z² ≤ 20.25: the 27 with no
        // coordinate at ±4, plus 3 axes × 2 signs × 5 with one coordinate at ±4 and the others
        // contributing at most 4 mm².
        #expect(atlas.brainMask.filter { $0 }.count == 57)
        #expect(atlas.table.text == "index\tname\tnetwork\ttissue\n1\tT\tn/a\twhite_matter\n2\tC\tDMN\tgray_matter\n")
    }
}
