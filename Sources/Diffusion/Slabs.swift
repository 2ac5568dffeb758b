import Dispatch

/// The one place where raw pointers cross threads: a view of a preallocated buffer that
/// several slabs write at disjoint indices.
///
/// `@unchecked Sendable` is sound only under that discipline, which every caller in this
/// module keeps: slab `k` writes exactly the indices that belong to it, and the buffer
/// outlives `concurrentPerform`, which returns only when all slabs are done.
struct SharedBuffer<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
    let count: Int

    init(_ buffer: UnsafeMutableBufferPointer<Element>) {
        // An empty Swift array may hand out a nil base; no slab touches such a buffer.
        self.base = buffer.baseAddress ?? UnsafeMutablePointer<Element>(bitPattern: MemoryLayout<Element>.alignment)!
        self.count = buffer.count
    }

    @inline(__always) subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}

/// A read-only view of a buffer shared by all slabs.
struct SharedReadBuffer<Element>: @unchecked Sendable {
    let base: UnsafePointer<Element>
    let count: Int

    init(_ buffer: UnsafeBufferPointer<Element>) {
        self.base = buffer.baseAddress ?? UnsafePointer<Element>(bitPattern: MemoryLayout<Element>.alignment)!
        self.count = buffer.count
    }

    @inline(__always) subscript(index: Int) -> Element { base[index] }
}

/// Splits `0..<count` into `threads` contiguous slabs (at most `count`) and runs `body` on each
/// with `DispatchQueue.concurrentPerform`; with one slab it runs on the calling thread.
///
/// The slab boundaries depend on the thread count, so bodies must produce per-index results
/// that do not depend on the boundaries (they do here: voxel-wise work, or per-slab partial
/// sums combined by the caller in slab order only where the result is split-invariant).
func forEachSlab(count: Int, threads: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let slabs = max(1, min(threads, count))
    if slabs == 1 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: slabs) { slab in
        let start = count * slab / slabs
        let end = count * (slab + 1) / slabs
        body(start..<end)
    }
}

/// The product of non-negative sizes, or nil when one is negative or the product overflows, so
/// absurd sizes from a corrupt header become errors instead of traps.
func checkedProduct(_ factors: Int...) -> Int? {
    var product = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        product = p
    }
    return product
}
