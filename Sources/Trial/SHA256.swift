internal import CCrypto
import FileSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 (FIPS 180-4, Secure Hash Standard, NIST 2015), computed by OpenSSL's libcrypto.
///
/// Streaming: feed bytes with ``update(_:)`` in any chunking, then call ``finalize()``.
/// Used to fingerprint every input file of a visit, so a re-run can tell an unchanged
/// visit from a changed one.
///
/// libcrypto is used because it takes the CPU's SHA extensions (or AVX2) when present, which
/// makes hashing the inputs a small part of a visit (docs/benchmarks.md).
///
/// A value type: a copy hashes on independently (the libcrypto state is copied before the
/// first update of a shared copy).
public struct SHA256: Sendable {
    private var context: DigestContext

    /// A hasher for the empty message.
    public init() { context = DigestContext() }

    /// Adds bytes to the message.
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if let done = bytes.withContiguousStorageIfAvailable({ buffer -> Bool in
            update(UnsafeRawBufferPointer(buffer))
            return true
        }), done { return }
        Array(bytes).withUnsafeBytes { update($0) }
    }

    private mutating func update(_ bytes: UnsafeRawBufferPointer) {
        makeUnique()
        context.update(bytes)
    }

    /// Returns the 32-byte digest of the message so far, and starts a new empty message.
    public mutating func finalize() -> [UInt8] {
        makeUnique()
        return context.finalize()
    }

    /// The digest of `bytes` as 64 lowercase hex digits.
    public static func hex<Bytes: Sequence>(of bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hexString(hasher.finalize())
    }

    /// Bytes read at a time by ``hex(ofFile:)``, into one buffer reused for the whole file.
    /// 1 MiB: as fast as larger blocks, with less memory (docs/benchmarks.md).
    static let fileBlockBytes = 1 << 20

    /// The digest of a file, read in ``fileBlockBytes`` blocks into one reused buffer, so
    /// large images never sit in memory whole.
    ///
    /// Only a regular file is hashed: a FIFO among a visit's inputs once blocked the whole
    /// batch here, so the path is checked before it is opened, and the open descriptor again
    /// (opened with `O_NONBLOCK`, so even a FIFO swapped in between cannot block).
    /// - Throws: ``TrialError/io(path:reason:)`` naming the file when it is missing, not a
    ///   regular file ("not a regular file (a FIFO)"), or cannot be opened or read.
    public static func hex(ofFile path: String) throws(TrialError) -> String {
        let descriptor = try openRegularFile(path)
        defer { close(descriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: fileBlockBytes, alignment: 64)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        while true {
            let got = read(descriptor, buffer.baseAddress, buffer.count)
            if got < 0 {
                let code = errno
                if code == EINTR { continue }
                throw TrialError.io(path: path, reason: "read failed while hashing: \(String(cString: strerror(code)))")
            }
            if got == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        }
        return hexString(hasher.finalize())
    }

    /// Checks that `path` can be hashed (a regular file that opens), with the errors of
    /// ``hex(ofFile:)``, without reading it: a visit whose inputs are hashed while it is
    /// processed still fails on a missing input before anything is done.
    public static func checkHashable(_ path: String) throws(TrialError) {
        close(try openRegularFile(path))
    }

    /// Opens a regular file for reading, checked as ``hex(ofFile:)`` describes.
    private static func openRegularFile(_ path: String) throws(TrialError) -> Int32 {
        do { try FileSystem.checkRegularFile(path) } catch { throw TrialError.io(path: path, reason: error.reason) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            let code = errno
            throw TrialError.io(path: path, reason: code == ENOENT ? "no such file" : "cannot open the file for hashing: \(String(cString: strerror(code)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw TrialError.io(path: path, reason: "not a regular file")
        }
        return descriptor
    }

    static func hexString(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(2 * digest.count)
        for byte in digest { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&context) { context = DigestContext(copying: context) }
    }
}

/// Owns one libcrypto digest context (`EVP_MD_CTX`) set up for SHA-256, freed in deinit.
///
/// `@unchecked Sendable`: the context is a C resource that is never mutated while shared.
/// ``SHA256`` copies it (`EVP_MD_CTX_copy_ex`) before mutating unless it holds the only
/// reference, the copy-on-write discipline of Swift's own collections.
///
/// libcrypto's digest calls fail only when memory runs out (the algorithm is built in and
/// the arguments are checked here), so a failure stops the program as Swift's own
/// allocator does, rather than making every hash throwing.
private final class DigestContext: @unchecked Sendable {
    private let context: OpaquePointer

    /// A context for the empty message (`EVP_MD_CTX_new`, `EVP_DigestInit_ex` with `EVP_sha256`).
    init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("libcrypto: out of memory (EVP_MD_CTX_new)") }
        self.context = context
        reset()
    }

    /// A context in the same state as `other` (`EVP_MD_CTX_copy_ex`).
    init(copying other: DigestContext) {
        guard let context = EVP_MD_CTX_new() else { fatalError("libcrypto: out of memory (EVP_MD_CTX_new)") }
        self.context = context
        guard EVP_MD_CTX_copy_ex(context, other.context) == 1 else { fatalError("libcrypto: EVP_MD_CTX_copy_ex failed") }
    }

    deinit { EVP_MD_CTX_free(context) }

    private func reset() {
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { fatalError("libcrypto: EVP_DigestInit_ex(SHA-256) failed") }
    }

    /// Adds `bytes` to the message (`EVP_DigestUpdate`).
    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1 else { fatalError("libcrypto: EVP_DigestUpdate failed") }
    }

    /// The digest (`EVP_DigestFinal_ex`); the context then starts a new message.
    func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1 else { fatalError("libcrypto: EVP_DigestFinal_ex failed") }
        reset()
        return Array(digest.prefix(Int(length)))
    }
}
