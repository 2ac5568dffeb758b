import FileSystem
import Geometry

extension TransformFile {
    /// Reads an ANTs affine `.mat` file: MATLAB level-4 variables, each a 20-byte header
    /// (type `MOPT`, rows, columns, imaginary flag, name length; int32 in the file's byte
    /// order), the name (NUL-terminated), then the real values by columns. M (thousands) is
    /// the byte order, 0 little-endian or 1 big-endian; P (tens) the number type, 0 double or
    /// 1 float. ITK's `MatlabTransformIO` writes the parameters as `AffineTransform_double_3_3`
    /// (12 values: the matrix by rows, then the translation) and the centre as `fixed` (3).
    static func readMatlab(_ path: String) throws -> AffineTransform {
        let bytes = try FileSystem.readFile(path)
        var variables: [String: [Double]] = [:]
        var offset = 0
        while offset < bytes.count {
            guard offset + 20 <= bytes.count else { throw TransformFileError(path, "truncated MATLAB variable header at byte \(offset)") }
            var bigEndian = false
            var header = (0..<5).map { int32(bytes, offset + 4 * $0, bigEndian: false) }
            if header[0] < 0 || header[0] > 9999 {
                bigEndian = true
                header = (0..<5).map { int32(bytes, offset + 4 * $0, bigEndian: true) }
            }
            let type = header[0], rows = header[1], columns = header[2], imaginary = header[3], nameLength = header[4]
            let order = type / 1000, precision = (type / 10) % 10, matrixType = type % 10
            guard type >= 0, type <= 9999, order == (bigEndian ? 1 : 0), precision <= 1, matrixType == 0, imaginary == 0,
                  rows >= 0, columns >= 0, rows <= 1 << 16, columns <= 1 << 16, nameLength > 0, nameLength < 256 else {
                throw TransformFileError(path, "not a MATLAB v4 file of real double or float matrices (variable header at byte \(offset))")
            }
            let nameStart = offset + 20
            let valueSize = precision == 0 ? 8 : 4
            let count = Int(rows) * Int(columns)
            let dataStart = nameStart + Int(nameLength)
            guard dataStart + count * valueSize <= bytes.count else { throw TransformFileError(path, "truncated MATLAB variable at byte \(offset)") }
            let name = String(decoding: bytes[nameStart..<(dataStart - 1)].prefix { $0 != 0 }, as: UTF8.self)
            variables[name] = (0..<count).map { n in
                let at = dataStart + n * valueSize
                if valueSize == 8 {
                    var bits: UInt64 = 0
                    for b in 0..<8 { bits |= UInt64(bytes[at + (bigEndian ? 7 - b : b)]) << (8 * b) }
                    return Double(bitPattern: bits)
                }
                return Double(Float(bitPattern: UInt32(bitPattern: int32(bytes, at, bigEndian: bigEndian))))
            }
            offset = dataStart + count * valueSize
        }
        let names = ["AffineTransform_double_3_3", "AffineTransform_float_3_3",
                     "MatrixOffsetTransformBase_double_3_3", "MatrixOffsetTransformBase_float_3_3"]
        guard let name = names.first(where: { variables[$0] != nil }), let parameters = variables[name] else {
            throw TransformFileError(path, "no affine transform variable (found \(variables.keys.sorted().joined(separator: ", ")); expected AffineTransform_double_3_3 or AffineTransform_float_3_3)")
        }
        let fixed = variables["fixed"] ?? []
        guard let affine = AffineTransform(parameters: parameters, fixedParameters: fixed) else {
            throw TransformFileError(path, "\(name): expected 12 finite parameters and 3 fixed parameters, found \(parameters.count) and \(fixed.count)")
        }
        return affine
    }

    private static func int32(_ bytes: [UInt8], _ at: Int, bigEndian: Bool) -> Int32 {
        var bits: UInt32 = 0
        for b in 0..<4 { bits |= UInt32(bytes[at + (bigEndian ? 3 - b : b)]) << (8 * b) }
        return Int32(bitPattern: bits)
    }
}
