import Foundation
import Geometry
import NIfTI
import Phantoms
import Pipelines
import Testing

/// Which volumes `dti` fits: a single shell whole, the b <= 1500 part of a multi-shell series
/// by default, and exactly b <= `--max-b` as written when it is given.
@Suite("dti: the shells fitted")
struct ShellSelectionTests {
    /// `b0Count` b=0 volumes, then `directions` half-sphere directions on each shell in turn.
    static func scheme(b0Count: Int = 3, shells: [Double], directions: Int = 30) -> GradientScheme {
        var bValues = [Double](repeating: 0, count: b0Count)
        var vectors = [[Double]](repeating: [0, 0, 0], count: b0Count)
        for shell in shells {
            let half = GradientScheme.halfSphere(b0Count: 1, directionCount: directions, bValue: shell)
            for i in half.bValues.indices where half.bValues[i] > 0 {
                bValues.append(shell)
                vectors.append(half.directions[i])
            }
        }
        return GradientScheme(bValues: bValues, directions: vectors)
    }

    static let affine = Affine(rows: [[-2, 0, 0, 6], [0, 2, 0, -5], [0, 0, 2, -4], [0, 0, 0, 1]])

    /// Runs the pipeline with the automatic choice, or `--max-b`, and reads the sidecar.
    static func run(_ dwi: SmallDWI, maximumB: Double? = nil) throws -> (result: DiffusionResult, sidecar: [String: Any]) {
        var options = dwi.options(frame: .fsl)
        options.parameters.maximumB = maximumB
        options.parameters.orientationCheck = false
        let result = try DiffusionPipeline.run(options)
        let path = try #require(result.files.first { $0.hasSuffix("_model-tensor_dwimap.json") })
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path)))
        return (result, try #require(json as? [String: Any]))
    }

    /// The fitted FA of every voxel against the phantom's truth.
    static func worstFAError(_ dwi: SmallDWI, _ result: DiffusionResult) throws -> Double {
        let fa = try #require(result.files.first { $0.hasSuffix("_param-fa_dwimap.nii.gz") })
        let values = try NIfTIFile.read(fa, as: Double.self).voxels
        return zip(values, dwi.phantom.truth).map { abs($0 - $1.fractionalAnisotropy) }.max() ?? .infinity
    }

    @Test("a single-shell DWI is fitted whole by default at any b-value, with the true FA", arguments: [700.0, 2000, 3000])
    func singleShell(b: Double) throws {
        let dwi = try SmallDWI(affine: Self.affine, scheme: Self.scheme(shells: [b]))
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let (result, sidecar) = try Self.run(dwi)
        #expect(try Self.worstFAError(dwi, result) < 1e-4)
        #expect(sidecar["MaximumBValue"] is NSNull)
        #expect(sidecar["ShellSelection"] as? String == "automatic: single shell, every volume")
        #expect(sidecar["BValuesUsed"] as? [Double] == [0, b])
        #expect(sidecar["Shells"] as? [Double] == [b])
        #expect(sidecar["BValuesLeftOut"] as? [Double] == [])
        #expect(sidecar["VolumesUsed"] as? Int == 33 && sidecar["VolumesLeftOut"] as? Int == 0)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
    }

    @Test("multi-shell b=0/1000/2000/3000: the default fits b <= 1500 and the sidecar and warning count what was left out")
    func multiShellDefault() throws {
        let dwi = try SmallDWI(affine: Self.affine, scheme: Self.scheme(shells: [1000, 2000, 3000]))
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let (result, sidecar) = try Self.run(dwi)
        #expect(try Self.worstFAError(dwi, result) < 1e-4)
        #expect(sidecar["ShellSelection"] as? String == "automatic: multi-shell, b <= 1500")
        #expect(sidecar["BValuesUsed"] as? [Double] == [0, 1000])
        #expect(sidecar["BValuesLeftOut"] as? [Double] == [2000, 3000])
        #expect(sidecar["Shells"] as? [Double] == [1000] && sidecar["ShellsLeftOut"] as? [Double] == [2000, 3000])
        #expect(sidecar["VolumesUsed"] as? Int == 33 && sidecar["VolumesLeftOut"] as? Int == 60)
        #expect(sidecar["DirectionsUsed"] as? Int == 30)
        #expect(result.selection.volumeIndices == Array(0..<33))
        #expect(result.warnings == ["multi-shell series: 60 of 93 volumes (b = 2000, 3000) left out of the tensor fit, which uses b <= 1500 by default; --max-b sets the limit"])
        #expect(sidecar["Warnings"] as? [String] == result.warnings)
    }

    @Test("multi-shell with every shell at or below 1500: every volume fitted, no warning")
    func multiShellAllLow() throws {
        let dwi = try SmallDWI(affine: Self.affine, scheme: Self.scheme(shells: [500, 1000]))
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let (result, sidecar) = try Self.run(dwi)
        #expect(sidecar["ShellSelection"] as? String == "automatic: multi-shell, b <= 1500")
        #expect(sidecar["BValuesUsed"] as? [Double] == [0, 500, 1000] && sidecar["VolumesLeftOut"] as? Int == 0)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
    }

    @Test("multi-shell with every shell above 1500: the default fits the lowest shell and says so")
    func multiShellLowestShell() throws {
        let dwi = try SmallDWI(affine: Self.affine, scheme: Self.scheme(shells: [2000, 3000]))
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let (result, sidecar) = try Self.run(dwi)
        #expect(try Self.worstFAError(dwi, result) < 1e-4)
        #expect(sidecar["BValuesUsed"] as? [Double] == [0, 2000] && sidecar["BValuesLeftOut"] as? [Double] == [3000])
        #expect(result.warnings == ["multi-shell series with no shell at b <= 1500: the tensor is fitted to the lowest shell (b ~ 2000); 30 of 63 volumes (b = 3000) left out; --max-b sets the limit"])
    }

    @Test("--max-b 2000 keeps b = 1995 and leaves out 2005: the limit is compared with the b-values as written")
    func givenMaximumNotRounded() throws {
        var scheme = Self.scheme(shells: [2000])
        var weighted = 0
        for i in scheme.bValues.indices where scheme.bValues[i] > 0 {
            scheme.bValues[i] = weighted % 2 == 0 ? 1995 : 2005
            weighted += 1
        }
        let dwi = try SmallDWI(affine: Self.affine, scheme: scheme)
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        let (result, sidecar) = try Self.run(dwi, maximumB: 2000)
        #expect(try Self.worstFAError(dwi, result) < 1e-4)
        #expect(sidecar["MaximumBValue"] as? Double == 2000)
        #expect(sidecar["ShellSelection"] as? String == "b <= 2000")
        #expect(sidecar["BValuesUsed"] as? [Double] == [0, 1995] && sidecar["BValuesLeftOut"] as? [Double] == [2005])
        #expect(sidecar["VolumesUsed"] as? Int == 18 && sidecar["VolumesLeftOut"] as? Int == 15)
        #expect(result.warnings == ["15 of 33 volumes with b > 2000 (b = 2005) left out of the tensor fit",
                                    "the limit cuts the b ~ 2000 shell: 15 of its volumes kept, 15 left out"])
        // By default the one shell, 1995 and 2005 together, is fitted whole.
        let (automatic, automaticSidecar) = try Self.run(dwi)
        #expect(automatic.selection.leftOutIndices.isEmpty && automatic.warnings.isEmpty)
        #expect(automaticSidecar["BValuesUsed"] as? [Double] == [0, 1995, 2005])
    }

    @Test("--max-b below every shell is an error naming the b-value file, the b-values and the option; nothing is written")
    func givenMaximumBelowEveryShell() throws {
        let dwi = try SmallDWI(affine: Self.affine, scheme: Self.scheme(shells: [1000, 2000]))
        defer { try? FileManager.default.removeItem(atPath: dwi.folder) }
        var options = dwi.options(frame: .fsl)
        options.parameters.maximumB = 800
        #expect { try DiffusionPipeline.run(options) } throws: { error in
            "\(error)" == "\(dwi.stem).bval: --max-b 800 keeps no diffusion-weighted volume (b-values in the file: 0, 1000, 2000); give --max-b 1000 or more, or leave --max-b out for the automatic choice"
        }
        #expect(!FileManager.default.fileExists(atPath: options.outputFolder))
    }
}
