// Read-only memory maps of uncompressed voxel data.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (`mmap(2)`, `MAP_PRIVATE`), unmapped in deinit.
///
/// Uncompressed `.nii` voxels are converted straight from the page cache through the map,
/// with no read into a buffer first: one pass over the bytes instead of a copy and a pass
/// (docs/benchmarks.md, "Uncompressed inputs": 1.04-1.05 x faster than `fread` into a
/// buffer for dti and fmri on `.nii` inputs, 8-9 ms less system time, the same peak RSS and
/// the same output bytes). The kernel is told the access is sequential
/// (`MADV_SEQUENTIAL`), so a cold file is read ahead in large blocks.
///
/// A file truncated by another process while it is mapped would fault on access (`SIGBUS`),
/// as with any memory-mapped reader (nibabel's `mmap=True`, MRtrix3); the size is checked
/// against the header when the map is made.
///
/// `@unchecked Sendable`: the mapping is read-only and immutable for its lifetime.
final class MappedFile: @unchecked Sendable {
    /// The first byte of the file.
    let base: UnsafeRawPointer
    /// The file's size in bytes (at least 1).
    let count: Int

    /// Maps `path`, or returns nil when it cannot be mapped (an empty file, a pipe, a file
    /// system without mmap): the caller then reads it with `read(2)`.
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else { return nil }
        let size = Int(info.st_size)
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else { return nil }
        _ = madvise(address, size, MADV_SEQUENTIAL)
        base = UnsafeRawPointer(address)
        count = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), count) }

    /// Drops this process's mapping of the whole pages in `offset ..< end` (`MADV_DONTNEED`;
    /// the file and the page cache are untouched, a later access maps them again), so a
    /// series read volume by volume keeps one volume resident, not the whole file.
    func release(offset: Int, end: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, stop = min(count, end) / page * page
        guard stop > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), stop - start, MADV_DONTNEED)
    }

    /// Asks the kernel to start reading `count` bytes from `offset` (`MADV_WILLNEED`), so the
    /// next volume is on its way from disk while this one is converted. Only a hint.
    func prefetch(offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min(self.count, offset + count)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_WILLNEED)
    }
}
