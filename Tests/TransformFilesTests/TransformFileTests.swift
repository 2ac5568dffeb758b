import CHDF5
import Foundation
import Geometry
import NIfTI
import Testing
import TransformFiles

/// A fresh folder for one test's files.
private func scratch(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "nimetrics-transformfiles-\(name)-\(ProcessInfo.processInfo.processIdentifier)"
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes an ITK HDF5 transform file with HDF5's C API, in the layout ITK's HDF5TransformIO
/// writes: /TransformGroup/<n>/TransformType (a variable-length string), TransformParameters
/// and TransformFixedParameters (1-D doubles). Serial HDF5 is not thread-safe, so writes are
/// made under a lock.
private enum ITKHDF5Writer {
    static let lock = NSLock()

    static func write(_ path: String, _ entries: [(type: String, parameters: [Double], fixed: [Double])]) {
        lock.lock()
        defer { lock.unlock() }
        let file = H5Fcreate(path, chdf5_truncate(), chdf5_file_access_default(), chdf5_file_access_default())
        precondition(file >= 0)
        let top = H5Gcreate2(file, "/TransformGroup", chdf5_file_access_default(), chdf5_file_access_default(), chdf5_file_access_default())
        for (n, entry) in entries.enumerated() {
            let group = H5Gcreate2(file, "/TransformGroup/\(n)", chdf5_file_access_default(), chdf5_file_access_default(), chdf5_file_access_default())
            let stringType = H5Tcopy(chdf5_c_string())
            H5Tset_size(stringType, chdf5_variable_size())
            let scalar = H5Screate(H5S_SCALAR)
            let typeSet = H5Dcreate2(group, "TransformType", stringType, scalar, chdf5_file_access_default(), chdf5_file_access_default(), chdf5_file_access_default())
            entry.type.withCString { text in
                var pointer: UnsafePointer<CChar>? = text
                _ = H5Dwrite(typeSet, stringType, chdf5_all(), chdf5_all(), chdf5_file_access_default(), &pointer)
            }
            H5Dclose(typeSet); H5Sclose(scalar); H5Tclose(stringType)
            for (name, values) in [("TransformParameters", entry.parameters), ("TransformFixedParameters", entry.fixed)] {
                var dims: [hsize_t] = [hsize_t(values.count)]
                let space = H5Screate_simple(1, &dims, nil)
                let set = H5Dcreate2(group, name, chdf5_native_double(), space, chdf5_file_access_default(), chdf5_file_access_default(), chdf5_file_access_default())
                _ = values.withUnsafeBytes { H5Dwrite(set, chdf5_native_double(), chdf5_all(), chdf5_all(), chdf5_file_access_default(), $0.baseAddress) }
                H5Dclose(set); H5Sclose(space)
            }
            H5Gclose(group)
        }
        H5Gclose(top)
        H5Fclose(file)
    }
}

/// A MATLAB level-4 file of double (or float) column vectors, little- or big-endian, as ITK's
/// MatlabTransformIO writes ANTs' affine `.mat` files.
private func matlabFile(_ variables: [(String, [Double])], float: Bool = false, bigEndian: Bool = false) -> Data {
    var data = Data()
    func int32(_ v: Int32) { var x = bigEndian ? v.bigEndian : v.littleEndian; data.append(Data(bytes: &x, count: 4)) }
    for (name, values) in variables {
        int32((bigEndian ? 1000 : 0) + (float ? 10 : 0))
        int32(Int32(values.count)); int32(1); int32(0); int32(Int32(name.utf8.count + 1))
        data.append(contentsOf: Array(name.utf8) + [0])
        for v in values {
            if float {
                var bits = Float(v).bitPattern; bits = bigEndian ? bits.bigEndian : bits.littleEndian
                data.append(Data(bytes: &bits, count: 4))
            } else {
                var bits = v.bitPattern; bits = bigEndian ? bits.bigEndian : bits.littleEndian
                data.append(Data(bytes: &bits, count: 8))
            }
        }
    }
    return data
}

private let rotationParameters: [Double] = [0, -1, 0, 1, 0, 0, 0, 0, 1, 1.5, -2, 3]

private func expectRotation(_ transforms: [SpatialTransform]) throws {
    #expect(transforms.count == 1)
    guard case .affine(let affine) = try #require(transforms.first) else { Issue.record("not an affine"); return }
    let expected = AffineTransform(matrix: Matrix3(rows: SIMD3(0, -1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1)),
                                   translation: SIMD3(1.5, -2, 3), center: SIMD3(4, 5, 6))
    #expect(affine.map.maximumDifference(to: expected.map) < 1e-6)
}

@Suite("Transform files: ITK HDF5 and text, ANTs .mat, NIfTI displacement fields")
struct TransformFileTests {
    @Test("ITK text: an affine with a centre, and a composite holding a translation and an affine")
    func text() throws {
        let folder = try scratch("text")
        let path = folder + "/affine.txt"
        try """
        #Insight Transform File V1.0
        #Transform 0
        Transform: AffineTransform_double_3_3
        Parameters: \(rotationParameters.map { String($0) }.joined(separator: " "))
        FixedParameters: 4 5 6

        """.write(toFile: path, atomically: true, encoding: .utf8)
        try expectRotation(try TransformFile.read(path))
        let composite = folder + "/composite.tfm"
        try """
        #Insight Transform File V1.0
        #Transform 0
        Transform: CompositeTransform_double_3_3
        #Transform 1
        Transform: TranslationTransform_double_3_3
        Parameters: 1 2 3
        FixedParameters:
        #Transform 2
        Transform: MatrixOffsetTransformBase_double_3_3
        Parameters: 2 0 0 0 2 0 0 0 2 0 0 0
        FixedParameters: 0 0 0
        """.write(toFile: composite, atomically: true, encoding: .utf8)
        let chain = TransformChain(try TransformFile.read(composite))
        // Listed order kept: the affine (last) applies first, then the translation.
        #expect(chain.apply(SIMD3(1, 1, 1)) == SIMD3(3, 4, 5))
        let inverse = TransformChain(try TransformFile.read(composite, invert: true))
        #expect(inverse.apply(SIMD3(3, 4, 5)) == SIMD3(1, 1, 1))
    }

    @Test("ANTs .mat: double and float, little- and big-endian, read as the same affine")
    func matlab() throws {
        let folder = try scratch("mat")
        for (n, (float, bigEndian)) in [(false, false), (true, false), (false, true), (true, true)].enumerated() {
            let path = folder + "/affine\(n).mat"
            let name = float ? "AffineTransform_float_3_3" : "AffineTransform_double_3_3"
            try matlabFile([(name, rotationParameters), ("fixed", [4, 5, 6])], float: float, bigEndian: bigEndian).write(to: URL(fileURLWithPath: path))
            try expectRotation(try TransformFile.read(path))
        }
        let inverted = try TransformFile.read(folder + "/affine0.mat", invert: true)
        guard case .affine(let inverse) = try #require(inverted.first), case .affine(let forward) = try #require(try TransformFile.read(folder + "/affine0.mat").first) else {
            Issue.record("not affine"); return
        }
        let x = SIMD3(7.0, -3.0, 2.5)
        #expect(abs(inverse.apply(forward.apply(x)).x - x.x) < 1e-12)
    }

    @Test("ITK HDF5: a composite of an affine and a displacement field, as fMRIPrep writes")
    func hdf5() throws {
        let folder = try scratch("h5")
        let path = folder + "/sub-01_from-MNI_to-T1w_mode-image_xfm.h5"
        let size = (x: 3, y: 4, z: 2)
        var vectors: [Double] = []
        for k in 0..<size.z { for j in 0..<size.y { for i in 0..<size.x { vectors += [Double(i) * 0.5, Double(j), -Double(k)] } } }
        let fixed: [Double] = [3, 4, 2, 10, 20, 30, 2, 2, 2, 1, 0, 0, 0, 1, 0, 0, 0, 1]
        ITKHDF5Writer.write(path, [("CompositeTransform_double_3_3", [], []),
                                   ("AffineTransform_double_3_3", rotationParameters, [4, 5, 6]),
                                   ("DisplacementFieldTransform_float_3_3", vectors, fixed)])
        let transforms = try TransformFile.read(path)
        #expect(transforms.count == 2)
        try expectRotation([transforms[0]])
        guard case .displacementField(let field) = transforms[1] else { Issue.record("not a field"); return }
        #expect(field.shape == (3, 4, 2) ? true : false)
        // Voxel (2, 1, 1) lies at LPS (14, 22, 32) and holds (1, 1, -1).
        #expect(field.displacement(at: SIMD3(14, 22, 32)) == SIMD3(1, 1, -1))
        #expect(throws: TransformFileError.self) { try TransformFile.read(path, invert: true) }
    }

    @Test("NIfTI displacement field: 5-D, vector intent read as LPS, displacement-vector intent flipped from RAS")
    func niftiField() throws {
        let folder = try scratch("nii")
        let affine = Affine(linear: Matrix3(diagonal: SIMD3(2, 2, 2)), translation: SIMD3(-3, -4, -2))
        let s = (x: 3, y: 2, z: 2), n = 12
        // Component planes: x = 1, y = 2, z = 3 everywhere.
        let voxels = [Float](repeating: 1, count: n) + [Float](repeating: 2, count: n) + [Float](repeating: 3, count: n)
        for (intent, expected) in [(1007, SIMD3<Double>(1, 2, 3)), (1006, SIMD3<Double>(-1, -2, 3))] {
            var header = NIfTIHeader.make(shape: [s.x, s.y, s.z, 1, 3], affine: affine)
            header.intentCode = intent
            let path = folder + "/warp\(intent).nii.gz"
            try NIfTIFile.write(voxels, shape: [s.x, s.y, s.z, 1, 3], geometry: header, to: path)
            guard case .displacementField(let field) = try #require(try TransformFile.read(path).first) else { Issue.record("not a field"); return }
            // The field grid in LPS: RAS voxel (1, 1, 0) = RAS (-1, -2, -2) = LPS (1, 2, -2).
            #expect(field.displacement(at: SIMD3(1, 2, -2)) == expected)
        }
        let flat = folder + "/flat.nii.gz"
        try NIfTIFile.write(voxels, shape: [s.x, s.y, s.z, 3], geometry: .make(shape: [s.x, s.y, s.z, 3], affine: affine), to: flat)
        #expect(throws: TransformFileError.self) { try TransformFile.read(flat) }
        #expect(throws: TransformFileError.self) { try TransformFile.read(flat, invert: true) }
    }

    @Test("Bad files give one-line errors naming the file")
    func badFiles() throws {
        let folder = try scratch("bad")
        let cases: [(String, Data)] = [
            ("notitk.txt", Data("hello\n".utf8)),
            ("badnumber.txt", Data("#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\nParameters: 1 x\n".utf8)),
            ("short.txt", Data("#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\nParameters: 1 2 3\nFixedParameters: 0 0 0\n".utf8)),
            ("bspline.txt", Data("#Insight Transform File V1.0\nTransform: BSplineTransform_double_3_3\nParameters: 1\n".utf8)),
            ("notmat.mat", Data([1, 2, 3])),
            ("nothdf5.h5", Data("plain text".utf8)),
            ("transform.xfm", Data("x".utf8)),
        ]
        for (name, data) in cases {
            let path = folder + "/" + name
            try data.write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: TransformFileError.self) { try TransformFile.read(path) }
            #expect(error?.path == path)
            #expect(error?.description.contains("\n") == false)
        }
        let wrongMat = folder + "/wrong.mat"
        try matlabFile([("something", [1, 2, 3])]).write(to: URL(fileURLWithPath: wrongMat))
        #expect(throws: TransformFileError.self) { try TransformFile.read(wrongMat) }
        let noGroup = folder + "/empty.h5"
        ITKHDF5Writer.write(noGroup, [])
        #expect(throws: TransformFileError.self) { try TransformFile.read(noGroup) }
    }
}
