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
}
