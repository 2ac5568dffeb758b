import CHDF5
import Foundation

/// An HDF5 file open for reading (`H5Fopen`), closed in deinit: the one owner of HDF5 handles.
///
/// The serial HDF5 library Debian ships is not thread-safe, so every call into it is made under
/// one process-wide lock.
final class HDF5File {
    private static let lock = NSLock()
    /// HDF5 prints its error stack to stderr unless told not to; done once, before the first call.
    private static let silenced: Bool = {
        chdf5_silence_errors()
        return true
    }()

    let path: String
    private let file: hid_t

    /// Opens `path` read-only (`H5Fopen` with `H5F_ACC_RDONLY`).
    /// - Throws: ``TransformFileError`` when the file is not HDF5 or cannot be opened.
    init(path: String) throws {
        self.path = path
        let handle: hid_t = Self.locked {
            _ = Self.silenced
            guard H5Fis_hdf5(path) > 0 else { return -1 }
            return H5Fopen(path, chdf5_read_only(), chdf5_file_access_default())
        }
        guard handle >= 0 else { throw TransformFileError(path, "not a readable HDF5 file") }
        file = handle
    }

    deinit { _ = Self.locked { H5Fclose(file) } }

    private static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Whether a link (group or dataset) exists at `name`, each parent checked in turn (`H5Lexists`).
    func exists(_ name: String) -> Bool {
        Self.locked {
            var prefix = ""
            for part in name.split(separator: "/") {
                prefix += "/" + part
                guard H5Lexists(file, prefix, chdf5_file_access_default()) > 0 else { return false }
            }
            return true
        }
    }

    /// The string held by the dataset `name` (one fixed-length or variable-length string).
    func string(_ name: String) throws -> String {
        try Self.locked {
            let dataset = try open(name)
            defer { H5Dclose(dataset) }
            let fileType = H5Dget_type(dataset)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_STRING else { throw TransformFileError(path, "\(name) is not a string") }
            guard try elementCount(dataset, name) == 1 else { throw TransformFileError(path, "\(name) holds more than one string") }
            let memoryType = H5Tcopy(chdf5_c_string())
            defer { H5Tclose(memoryType) }
            if H5Tis_variable_str(fileType) > 0 {
                H5Tset_size(memoryType, chdf5_variable_size())
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Dread(dataset, memoryType, chdf5_all(), chdf5_all(), chdf5_file_access_default(), &pointer) >= 0,
                      let pointer else { throw TransformFileError(path, "\(name): the string cannot be read") }
                defer { H5free_memory(pointer) }
                return String(cString: pointer)
            }
            let size = H5Tget_size(fileType)
            guard size > 0, size < 1 << 20 else { throw TransformFileError(path, "\(name): a string of \(size) bytes") }
            H5Tset_size(memoryType, size)
            var bytes = [CChar](repeating: 0, count: size + 1)
            guard H5Dread(dataset, memoryType, chdf5_all(), chdf5_all(), chdf5_file_access_default(), &bytes) >= 0 else {
                throw TransformFileError(path, "\(name): the string cannot be read")
            }
            return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
    }

    /// The numbers of the floating-point dataset `name`, converted by HDF5 to double.
    func doubles(_ name: String) throws -> [Double] { try numbers(name, as: Double.self, type: chdf5_native_double()) }

    /// The numbers of the floating-point dataset `name`, converted by HDF5 to float.
    func floats(_ name: String) throws -> [Float] { try numbers(name, as: Float.self, type: chdf5_native_float()) }

    private func numbers<T: BinaryFloatingPoint>(_ name: String, as _: T.Type, type: hid_t) throws -> [T] {
        try Self.locked {
            let dataset = try open(name)
            defer { H5Dclose(dataset) }
            let fileType = H5Dget_type(dataset)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_FLOAT else { throw TransformFileError(path, "\(name) is not a floating-point dataset") }
            let count = try elementCount(dataset, name)
            var values = [T](repeating: 0, count: count)
            guard count == 0 || values.withUnsafeMutableBytes({
                H5Dread(dataset, type, chdf5_all(), chdf5_all(), chdf5_file_access_default(), $0.baseAddress)
            }) >= 0 else { throw TransformFileError(path, "\(name): the data cannot be read (truncated file?)") }
            return values
        }
    }

    private func open(_ name: String) throws -> hid_t {
        let dataset = H5Dopen2(file, name, chdf5_file_access_default())
        guard dataset >= 0 else { throw TransformFileError(path, "no dataset \(name)") }
        return dataset
    }

    private func elementCount(_ dataset: hid_t, _ name: String) throws -> Int {
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let count = H5Sget_simple_extent_npoints(space)
        guard count >= 0 else { throw TransformFileError(path, "\(name): unreadable dataspace") }
        return Int(count)
    }
}
