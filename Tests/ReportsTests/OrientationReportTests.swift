import Foundation
import Geometry
import NIfTI
import Phantoms
import Pipelines
@testable import Reports
import Testing

/// A visit folder whose DWI is a curved bundle (half a torus in a plane oblique to every
/// axis, fibres along the ring) in isotropic tissue, its b-vectors written with one axis
/// negated (or as they are), processed by the DTI pipeline and recorded as a batch records
/// it: the report reads only what the pipeline wrote.
func curvedBundleVisit(bvecFlip: Int?) throws -> String {
    let root = NSTemporaryDirectory() + "nimetrics-report-" + UUID().uuidString
    let visit = root + "/sub-01/ses-01"
    try FileManager.default.createDirectory(atPath: visit + "/dwi", withIntermediateDirectories: true)
    let n = 20
    let affine = Affine(rows: [[2, 0, 0, -20], [0, 2, 0, -20], [0, 0, 2, -20], [0, 0, 0, 1]])
    let centre = [9.2, 10.1, 9.3]
    let length = (0.3 * 0.3 + 0.4 * 0.4 + 1.0).squareRoot()
    let normal = [0.3 / length, 0.4 / length, 1.0 / length]
    var truth: [TensorTruth] = []
    for z in 0..<n { for y in 0..<n { for x in 0..<n {
        let p = zip([Double(x), Double(y), Double(z)], centre).map { $0 - $1 }
        let height = zip(p, normal).reduce(0) { $0 + $1.0 * $1.1 }
        let inPlane = zip(p, normal).map { $0 - height * $1 }
        let rho = inPlane.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if (rho - 6.5) * (rho - 6.5) + height * height <= 9 && inPlane[0] - 0.5 * inPlane[1] + 0.2 * inPlane[2] >= 0 {
            let along = [normal[1] * inPlane[2] - normal[2] * inPlane[1], normal[2] * inPlane[0] - normal[0] * inPlane[2],
                         normal[0] * inPlane[1] - normal[1] * inPlane[0]]
            truth.append(TensorTruth(eigenvalues: [1.7e-3, 0.3e-3, 0.3e-3], principalDirection: along))
        } else {
            truth.append(TensorTruth(eigenvalues: [0.8e-3, 0.8e-3, 0.8e-3], principalDirection: [1, 0, 0]))
        }
    } } }
    let phantom = DiffusionPhantom(shape: [n, n, n], affine: affine, scheme: .halfSphere(b0Count: 3, directionCount: 30),
                                   s0: [Double](repeating: 1000, count: truth.count), truth: truth)
    let stem = root + "/sub-01_ses-01_dwi"
    try NIfTIFile.write(phantom.noiselessSignal(), shape: phantom.seriesShape,
                        geometry: NIfTIHeader.make(shape: phantom.seriesShape, affine: affine), to: stem + ".nii.gz")
    var written = phantom.scheme
    if let bvecFlip { written.directions = written.directions.map { g in var g = g; g[bvecFlip] = -g[bvecFlip]; return g } }
    try written.bvalText.write(toFile: stem + ".bval", atomically: true, encoding: .utf8)
    try written.bvecText.write(toFile: stem + ".bvec", atomically: true, encoding: .utf8)
    try NIfTIFile.write([Float](repeating: 1, count: truth.count), shape: [n, n, n], datatype: .uint8,
                        geometry: NIfTIHeader.make(shape: [n, n, n], affine: affine), to: root + "/mask.nii.gz")
    var options = DiffusionOptions(dwiPath: stem + ".nii.gz", bvalPath: stem + ".bval", bvecPath: stem + ".bvec",
                                   outputFolder: visit + "/dwi", prefix: "sub-01_ses-01")
    options.maskPath = root + "/mask.nii.gz"
    let result = try DiffusionPipeline.run(options)
    let record = """
        {"participant_id": "sub-01", "session_id": "ses-01", "modality": "dwi", "status": "ok", "error": null,
         "nimetrics_version": "\(NimetricsVersion.string)", "parameters": {}, "inputs": [], "outputs": [],
         "warnings": [\(result.warnings.map { "\"\($0)\"" }.joined(separator: ", "))]}
        """
    try record.write(toFile: visit + "/sub-01_ses-01_desc-dwi_visit.json", atomically: true, encoding: .utf8)
    return visit
}

@Suite("Visit report: gradient orientation")
struct OrientationReportTests {
    @Test("A visit with a flipped gradient axis shows the warning in its report; an intact one passes", arguments: [nil, 0, 1, 2] as [Int?])
    func flippedAxis(flip: Int?) throws {
        let visit = try curvedBundleVisit(bvecFlip: flip)
        let path = try VisitReport.write(folder: visit, prefix: "sub-01_ses-01", generator: "test")
        let html = try String(contentsOfFile: path, encoding: .utf8)
        if let flip {
            let axis = ["x", "y", "z"][flip]
            #expect(html.contains("Gradient orientation check: WARNING, the table with the \(axis) axis flipped"))
            #expect(html.contains("flipping voxel axis \(axis) gives more coherent fibres"))
        } else {
            #expect(html.contains("Gradient orientation check: passed"))
            #expect(!html.contains("flipping voxel axis"))
        }
        // The DWI figures are there: mosaics of S0, FA and the colour map.
        #expect(html.components(separatedBy: "<img alt=").count - 1 >= 3)
    }
}
