/// The voxel datatypes nimetrics reads and writes (NIfTI `datatype` codes).
///
/// Complex, RGB and 128-bit types are rejected with a clear error: none of them can hold a
/// diffusion or BOLD signal that the metrics here are defined for.
public enum NIfTIDataType: Int, CaseIterable, Sendable, CustomStringConvertible {
    case uint8 = 2
    case int16 = 4
    case int32 = 8
    case float32 = 16
    case float64 = 64
    case int8 = 256
    case uint16 = 512
    case uint32 = 768
    case int64 = 1024
    case uint64 = 1280

    /// Bytes per voxel.
    public var size: Int {
        switch self {
        case .uint8, .int8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .int64, .uint64, .float64: 8
        }
    }

    /// The name nibabel and numpy use (`"int16"`, `"float32"`).
    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .int16: "int16"
        case .uint16: "uint16"
        case .int32: "int32"
        case .uint32: "uint32"
        case .int64: "int64"
        case .uint64: "uint64"
        case .float32: "float32"
        case .float64: "float64"
        }
    }

    /// Why a NIfTI datatype code is not supported, or nil when it is.
    static func unsupportedReason(code: Int) -> String? {
        if NIfTIDataType(rawValue: code) != nil { return nil }
        switch code {
        case 0: return "datatype is 0 (unknown)"
        case 1: return "datatype binary (1) is not supported"
        case 32, 1792, 2048: return "complex datatype (\(code)) is not supported"
        case 128, 2304: return "RGB datatype (\(code)) is not supported"
        case 1536: return "float128 datatype (1536) is not supported"
        default: return "unknown datatype code \(code)"
        }
    }
}
