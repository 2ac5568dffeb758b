import FileSystem
import Foundation
import Geometry
import NIfTI

/// A transform file that cannot be used, with the file and the problem in one line.
public typealias TransformFileError = FileSystemError

/// Reading transform files as antsApplyTransforms reads them, into ``Geometry``'s transforms
/// (LPS millimetres, see ``LPS``):
///
/// - ITK HDF5 (`.h5`, `.hdf5`): `/TransformGroup/<n>/TransformType`, `TransformParameters`,
///   `TransformFixedParameters`, n = 0, 1, ...; a `CompositeTransform` entry stands for the
///   transforms after it, listed in its own order (its first is applied last, like the first
///   `-t`). fMRIPrep's and QSIPrep's `*_mode-image_xfm.h5` hold an affine and a displacement field.
/// - ITK text (`.txt`, `.tfm`): `#Insight Transform File V1.0`, then `Transform:`,
///   `Parameters:` and `FixedParameters:` lines per transform.
/// - ANTs affine (`.mat`): MATLAB v4 variables `AffineTransform_double_3_3` (or `_float_`,
///   or `MatrixOffsetTransformBase_…`; 12 parameters) and `fixed` (the centre).
/// - Displacement fields as NIfTI (`.nii`, `.nii.gz`; ANTs `*Warp.nii.gz`): 5-D with
///   `dim5 = 3`. ITK and ANTs write the vectors in LPS even in NIfTI, with the vector intent
///   (1007); a field with the displacement-vector intent (1006) holds RAS vectors (NIfTI's
///   convention, which ITK converts on reading since version 5.3), flipped here to LPS.
///
/// Affine types read: `AffineTransform`, `MatrixOffsetTransformBase`, `TranslationTransform`,
/// `IdentityTransform` (double or float, 3-D). Displacement fields: `DisplacementFieldTransform`.
public enum TransformFile {
    /// Reads the transforms of `path`, in the order they are listed (the file's -t order), or
    /// the inverse of an affine file (`invert`, ANTs' `-t [file,1]`): the inverses in reverse order.
    /// - Throws: ``TransformFileError`` for an unreadable, unknown or malformed file and for
    ///   `invert` on a file holding a displacement field; ``NIfTIError`` for an unreadable field image.
    public static func read(_ path: String, invert: Bool = false) throws -> [SpatialTransform] {
        try FileSystem.checkRegularFile(path)
        let lower = path.lowercased()
        let transforms: [SpatialTransform]
        if lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") {
            transforms = try readHDF5(path)
        } else if lower.hasSuffix(".txt") || lower.hasSuffix(".tfm") {
            transforms = try readText(path)
        } else if lower.hasSuffix(".mat") {
            transforms = [.affine(try readMatlab(path))]
        } else if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") {
            transforms = [.displacementField(try readNIfTIField(path))]
        } else {
            throw TransformFileError(path, "unknown transform file type (expected .h5, .txt, .tfm, .mat, .nii or .nii.gz)")
        }
        guard invert else { return transforms }
        return try transforms.reversed().map { transform in
            guard case .affine(let affine) = transform else {
                throw TransformFileError(path, "cannot be inverted: it holds a \(transform.summary), and only affine transforms are inverted (give the inverse warp file instead)")
            }
            guard let inverse = affine.inverse else { throw TransformFileError(path, "cannot be inverted: the affine matrix is singular") }
            return .affine(inverse)
        }
    }

    /// One transform as ITK names and parameterises it.
    static func make(type: String, parameters: [Double], fixed: [Double], path: String,
                     field: () throws -> [Float]) throws -> SpatialTransform? {
        let base = type.split(separator: "_").first.map(String.init) ?? type
        guard type.hasSuffix("_3_3") || type.hasSuffix("_3") else {
            throw TransformFileError(path, "\(type): only 3-D transforms are read")
        }
        switch base {
        case "CompositeTransform":
            return nil
        case "AffineTransform", "MatrixOffsetTransformBase":
            guard let affine = AffineTransform(parameters: parameters, fixedParameters: fixed) else {
                throw TransformFileError(path, "\(type): expected 12 finite parameters and 3 fixed parameters, found \(parameters.count) and \(fixed.count)")
            }
            return .affine(affine)
        case "TranslationTransform":
            guard parameters.count == 3, parameters.allSatisfy(\.isFinite) else {
                throw TransformFileError(path, "\(type): expected 3 finite parameters, found \(parameters.count)")
            }
            return .affine(AffineTransform(matrix: .identity, translation: SIMD3(parameters[0], parameters[1], parameters[2])))
        case "IdentityTransform":
            return .affine(AffineTransform(matrix: .identity, translation: .zero))
        case "DisplacementFieldTransform":
            return .displacementField(try displacementField(fixed: fixed, vectors: field(), type: type, path: path))
        default:
            throw TransformFileError(path, "unsupported transform type \(type) (read: AffineTransform, MatrixOffsetTransformBase, TranslationTransform, IdentityTransform, DisplacementFieldTransform, CompositeTransform)")
        }
    }

    /// A displacement field from ITK's fixed parameters: size (3), origin (3), spacing (3),
    /// direction (9, by rows), all LPS; the vectors three per voxel, x fastest.
    static func displacementField(fixed: [Double], vectors: [Float], type: String, path: String) throws -> DisplacementField {
        guard fixed.count == 18, fixed.allSatisfy(\.isFinite) else {
            throw TransformFileError(path, "\(type): expected 18 fixed parameters (size, origin, spacing, direction), found \(fixed.count)")
        }
        let size = fixed[0..<3].map { Int(exactly: $0) ?? -1 }
        guard size.allSatisfy({ $0 > 0 && $0 < 1 << 16 }) else { throw TransformFileError(path, "\(type): invalid field size \(fixed[0..<3].map { $0 })") }
        let grid = LPS.gridAffine(origin: SIMD3(fixed[3], fixed[4], fixed[5]), spacing: SIMD3(fixed[6], fixed[7], fixed[8]),
                                  direction: Matrix3(rows: SIMD3(fixed[9], fixed[10], fixed[11]), SIMD3(fixed[12], fixed[13], fixed[14]),
                                                     SIMD3(fixed[15], fixed[16], fixed[17])))
        let expected = 3 * size[0] * size[1] * size[2]
        guard vectors.count == expected else {
            throw TransformFileError(path, "\(type): \(vectors.count) displacement values for a \(size[0])x\(size[1])x\(size[2]) field (expected \(expected))")
        }
        guard vectors.allSatisfy(\.isFinite) else { throw TransformFileError(path, "\(type): the displacement field holds non-finite values") }
        guard let field = DisplacementField(shape: (size[0], size[1], size[2]), gridToLPS: grid, vectors: vectors) else {
            throw TransformFileError(path, "\(type): the field's grid is singular (zero spacing or degenerate direction)")
        }
        return field
    }

    // MARK: - ITK HDF5

    static func readHDF5(_ path: String) throws -> [SpatialTransform] {
        let file = try HDF5File(path: path)
        guard file.exists("/TransformGroup/0") else {
            throw TransformFileError(path, "not an ITK transform file (no /TransformGroup/0)")
        }
        var transforms: [SpatialTransform] = []
        var n = 0
        while file.exists("/TransformGroup/\(n)") {
            let group = "/TransformGroup/\(n)"
            let type = try file.string(group + "/TransformType")
            let isField = type.hasPrefix("DisplacementFieldTransform")
            let parameters = isField || !file.exists(group + "/TransformParameters") ? [] : try file.doubles(group + "/TransformParameters")
            let fixed = file.exists(group + "/TransformFixedParameters") ? try file.doubles(group + "/TransformFixedParameters") : []
            if let transform = try make(type: type, parameters: parameters, fixed: fixed, path: path,
                                        field: { try file.floats(group + "/TransformParameters") }) {
                transforms.append(transform)
            }
            n += 1
        }
        guard !transforms.isEmpty else { throw TransformFileError(path, "the file holds no transform") }
        return transforms
    }

    // MARK: - ITK text

    static func readText(_ path: String) throws -> [SpatialTransform] {
        let text = try FileSystem.readText(path)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first?.hasPrefix("#Insight Transform File") == true else {
            throw TransformFileError(path, "not an ITK text transform (no '#Insight Transform File V1.0' first line)")
        }
        var entries: [(type: String, parameters: [Double], fixed: [Double])] = []
        for (number, line) in lines.enumerated() where !line.isEmpty && !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { throw TransformFileError(path, "line \(number + 1): expected 'Key: values'") }
            let key = line[..<colon], value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "Transform":
                entries.append((value, [], []))
            case "Parameters", "FixedParameters":
                guard !entries.isEmpty else { throw TransformFileError(path, "line \(number + 1): \(key) before any Transform line") }
                let numbers = try value.split(separator: " ").map { word -> Double in
                    guard let x = Double(word) else { throw TransformFileError(path, "line \(number + 1): '\(word)' is not a number") }
                    return x
                }
                if key == "Parameters" { entries[entries.count - 1].parameters = numbers } else { entries[entries.count - 1].fixed = numbers }
            default:
                throw TransformFileError(path, "line \(number + 1): unknown key '\(key)'")
            }
        }
        let transforms = try entries.compactMap { entry in
            try make(type: entry.type, parameters: entry.parameters, fixed: entry.fixed, path: path,
                     field: { entry.parameters.map { Float($0) } })
        }
        guard !transforms.isEmpty else { throw TransformFileError(path, "the file holds no transform") }
        return transforms
    }

    // MARK: - NIfTI displacement fields

    static func readNIfTIField(_ path: String) throws -> DisplacementField {
        let image = try NIfTIFile.read(path, as: Float.self)
        let header = image.header
        let s = header.spatialShape
        guard header.shape.count == 5, header.shape[3] == 1, header.shape[4] == 3 else {
            throw TransformFileError(path, "not a displacement field: expected a 5-D image of shape X x Y x Z x 1 x 3, found \(header.shape.map(String.init).joined(separator: "x"))")
        }
        // 1006 NIFTI_INTENT_DISPVECT: RAS vectors (NIfTI's convention); 1007 NIFTI_INTENT_VECTOR
        // (what ITK and ANTs write) and unset: LPS vectors (ITK's).
        guard [0, 1006, 1007].contains(header.intentCode) else {
            throw TransformFileError(path, "not a displacement field: intent code \(header.intentCode) (expected 1007, vector, or 1006, displacement vector)")
        }
        let flip: Float = header.intentCode == 1006 ? -1 : 1
        let n = s.x * s.y * s.z
        var vectors = [Float](repeating: 0, count: 3 * n)
        image.voxels.withUnsafeBufferPointer { v in
            for i in 0..<n {
                vectors[3 * i] = flip * v[i]
                vectors[3 * i + 1] = flip * v[n + i]
                vectors[3 * i + 2] = v[2 * n + i]
            }
        }
        guard vectors.allSatisfy(\.isFinite) else { throw TransformFileError(path, "the displacement field holds non-finite values") }
        guard let field = DisplacementField(shape: s, gridToLPS: LPS.voxelToLPS(header.affine), vectors: vectors) else {
            throw TransformFileError(path, "the field's affine is singular")
        }
        return field
    }
}
