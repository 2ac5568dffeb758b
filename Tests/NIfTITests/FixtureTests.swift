import Foundation
import Geometry
import Testing
@testable import NIfTI

/// What nibabel read from each fixture (Scripts/make_nifti_fixtures.py).
struct Expected: Decodable {
    let nifti_version: Int
    let shape: [Int]
    let zooms: [Double]
    let affine: [[Double]]
    let axcodes: String
    let datatype: String
    let tr: Double?
    let values: [Double]?
    let sum: Double
}

let expectedFixtures: [String: Expected] = {
    let data = FileManager.default.contents(atPath: fixturesFolder + "/nifti/expected.json")!
    return try! JSONDecoder().decode([String: Expected].self, from: data)
}()

@Suite("Files written by nibabel")
struct FixtureTests {
    @Test("header agrees with nibabel", arguments: expectedFixtures.keys.sorted())
    func header(name: String) throws {
        let expected = expectedFixtures[name]!
        let header = try NIfTIFile.readHeader(fixturesFolder + "/nifti/" + name)
        #expect(header.niftiVersion == expected.nifti_version)
        #expect(header.shape == expected.shape)
        #expect(header.datatype.description == expected.datatype)
        #expect(header.axisCodes == expected.axcodes)
        #expect(header.affine.maximumDifference(to: Affine(rows: expected.affine)) < 1e-5)
        for (axis, zoom) in expected.zooms.prefix(3).enumerated() {
            #expect(abs(header.voxelSize[axis] - zoom) < 1e-6)
        }
        if let tr = expected.tr {
            #expect(abs((header.repetitionTime ?? -1) - tr) < 1e-9)
        } else {
            #expect(header.repetitionTime == nil)
        }
    }

    @Test("voxels agree with nibabel, scaling applied", arguments: expectedFixtures.keys.sorted())
    func voxels(name: String) throws {
        let expected = expectedFixtures[name]!
        let image = try NIfTIFile.read(fixturesFolder + "/nifti/" + name, as: Double.self)
        #expect(image.voxels.count == expected.shape.reduce(1, *))
        if let values = expected.values {
            for (index, value) in values.enumerated() {
                let tolerance = max(1e-9, abs(value) * 1e-12)
                #expect(abs(image.voxels[index] - value) <= tolerance, "voxel \(index)")
            }
        }
        let sum = image.voxels.reduce(0, +)
        #expect(abs(sum - expected.sum) <= max(1e-6, abs(expected.sum) * 1e-9))
    }

    @Test("volume-by-volume reading gives the same voxels as a whole read")
    func streaming() throws {
        let path = fixturesFolder + "/nifti/las_int16_scaled_4d.nii.gz"
        let whole = try NIfTIFile.read(path, as: Float.self)
        let reader = try NIfTIFile.volumes(path)
        var volume: [Float] = []
        var index = 0
        while try reader.next(into: &volume) {
            let n = whole.header.voxelsPerVolume
            #expect(Array(whole.voxels[index * n ..< (index + 1) * n]) == volume)
            index += 1
        }
        #expect(index == 6)
    }

    @Test("slope 0 means no scaling, as in nibabel")
    func slopeZero() throws {
        let header = try NIfTIFile.readHeader(fixturesFolder + "/nifti/slope_zero.nii")
        #expect(header.sclSlope == 0)
        #expect(header.scaling == nil)
    }
}
