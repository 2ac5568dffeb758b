import Dispatch
import Foundation
import Synchronization

// The parallel loops of nimetrics and the views of preallocated buffers that several slabs
// of a `concurrentPerform` loop read, or write at disjoint indices (the C tensor kernel
// writes through pointers into these views, one slab's voxels per call). Other raw memory
// that crosses threads is owned by a type that states its own hand-over rule where it is
// declared: NIfTI's ByteBuffer (a volume read ahead), ChunkSlot (a chunk compressed by a
// worker) and InflateStream (the background read), Functional's RealFFTPlan and Trial's
// DigestContext.

/// A writable view of a preallocated buffer that several slabs write at disjoint indices.
///
/// `@unchecked Sendable` is sound only under that discipline, which every caller keeps:
/// slab `k` writes exactly the indices that belong to it, and the buffer outlives
/// `concurrentPerform`, which returns only when all slabs are done.
public struct SharedBuffer<Element>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Element>
    public let count: Int

    public init(_ buffer: UnsafeMutableBufferPointer<Element>) {
        // An empty Swift array may hand out a nil base; no slab touches such a buffer.
        self.base = buffer.baseAddress ?? UnsafeMutablePointer<Element>(bitPattern: MemoryLayout<Element>.alignment)!
        self.count = buffer.count
    }

    @inline(__always) public subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }

    /// The `length` elements from `start`, for a slab that owns them.
    public func slice(_ start: Int, _ length: Int) -> UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: base + start, count: length)
    }
}

/// Calls `body` with a shareable view of `array`'s storage.
public func withSharedBuffer<Element, Result>(_ array: inout [Element], _ body: (SharedBuffer<Element>) throws -> Result) rethrows -> Result {
    try array.withUnsafeMutableBufferPointer { try body(SharedBuffer($0)) }
}

/// A read-only view of a buffer shared by all slabs.
public struct SharedReadBuffer<Element>: @unchecked Sendable {
    public let base: UnsafePointer<Element>
    public let count: Int

    public init(_ buffer: UnsafeBufferPointer<Element>) {
        self.base = buffer.baseAddress ?? UnsafePointer<Element>(bitPattern: MemoryLayout<Element>.alignment)!
        self.count = buffer.count
    }

    @inline(__always) public subscript(index: Int) -> Element { base[index] }
}

/// Splits `0..<count` into `threads` contiguous slabs (at most `count`) and runs `body` on
/// each with `DispatchQueue.concurrentPerform`; with one slab it runs on the calling thread.
///
/// Slab boundaries depend on the thread count, so a body must compute each index's result
/// independently of where the boundaries fall; reductions must not be combined per slab
/// (use ``forEachFixedBlock(count:blockSize:threads:_:)`` for those).
public func forEachSlab(count: Int, threads: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let slabs = max(1, min(threads, count))
    if slabs == 1 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: slabs) { slab in
        body((count * slab / slabs)..<(count * (slab + 1) / slabs))
    }
}

/// Runs `body` on fixed-size blocks of `0..<count` (block `b` covers
/// `b * blockSize ..< min(count, (b + 1) * blockSize)`), spread over `threads` workers.
///
/// The blocks do not depend on the thread count, so per-block partial sums combined in
/// block order give the same bits for any number of threads.
public func forEachFixedBlock(count: Int, blockSize: Int, threads: Int, _ body: @Sendable (_ block: Int, _ range: Range<Int>) -> Void) {
    let blocks = (count + blockSize - 1) / blockSize
    guard blocks > 0 else { return }
    let workers = max(1, min(threads, blocks))
    if workers == 1 {
        for b in 0..<blocks { body(b, (b * blockSize)..<min(count, (b + 1) * blockSize)) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        var b = worker
        while b < blocks {
            body(b, (b * blockSize)..<min(count, (b + 1) * blockSize))
            b += workers
        }
    }
}

/// Runs `body` for every index of `0..<count`, worker `w` of at most `threads` taking the
/// indices `w, w + workers, w + 2 workers, ...`. The interleaving balances triangular
/// workloads (row i of a symmetric matrix costing p - i); each index is processed by the
/// same code whatever the thread count.
public func forEachInterleaved(count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    guard count > 0 else { return }
    let workers = max(1, min(threads, count))
    if workers == 1 {
        for i in 0..<count { body(i) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        for i in stride(from: w, to: count, by: workers) { body(i) }
    }
}

/// Errors thrown by the iterations of a parallel loop, kept by index so the one reported is
/// the same whatever the thread count.
public final class ParallelFailures: Sendable {
    private let errors: Mutex<[(any Error)?]>

    public init(count: Int) { errors = Mutex(Array(repeating: nil, count: count)) }

    public func record(_ error: any Error, at index: Int) {
        errors.withLock { $0[index] = error }
    }

    /// Throws the error of the lowest failed index, if any.
    public func throwFirst() throws {
        if let first = errors.withLock({ $0.lazy.compactMap { $0 }.first }) { throw first }
    }
}

/// A piece of work run on a thread of its own (or at once, on this one), whose value or
/// error the owner collects with ``wait()``.
///
/// The one background-work type of nimetrics: the diffusion pipeline writes its large maps
/// with it, the volume reader inflates the next volume with it, and the participant run's
/// workers are instances of it. Each background piece runs on a serial queue of its own,
/// which libdispatch backs with a thread of its own (an overcommitting queue), so work that
/// blocks (file reads, waits for a lock) neither waits for nor starves the threads of
/// `DispatchQueue.concurrentPerform`.
///
/// ```swift
/// let next = BackgroundWork { try readVolume(index + 1) }   // starts now
/// process(current)
/// let volume = try next.wait()                              // its value, or its error
/// ```
public final class BackgroundWork<Value: Sendable>: Sendable {
    /// Signalled once when the work has finished; every wait passes the signal on, so any
    /// number of waits return.
    private let finished = DispatchSemaphore(value: 0)
    /// The work's value or error, set before `finished` is signalled.
    private let outcome = Mutex<Result<Value, any Error>?>(nil)

    /// Starts `body`: on a thread of its own when `inBackground` (the default), else on
    /// this thread before returning.
    public init(inBackground: Bool = true, _ body: @escaping @Sendable () throws -> Value) {
        if inBackground {
            DispatchQueue(label: "nimetrics.background-work").async { self.run(body) }
        } else {
            run(body)
        }
    }

    private func run(_ body: () throws -> Value) {
        let result = Result { try body() }
        outcome.withLock { $0 = result }
        finished.signal()
    }

    /// Blocks until the work has finished, then returns its value or throws its error.
    /// May be called any number of times, from any thread.
    @discardableResult
    public func wait() throws -> Value {
        finished.wait()
        finished.signal()
        return try outcome.withLock { $0! }.get()
    }

    /// Blocks until the work has finished (for a `defer` on an error path, where the first
    /// error is the one reported).
    public func waitIgnoringErrors() {
        _ = try? wait()
    }
}
