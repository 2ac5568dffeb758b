// The DWI signal of the mask's voxels, as the pipeline gathers it while the series streams
// in and as the fit consumes it.

import Foundation
import SlabParallel

/// A DWI signal gathered voxel-compact (only the mask's voxels, as DIPY fits only masked
/// voxels), one volume at a time as the series is read, kept as stored: Int16 when the series
/// holds small integers without scaling (half the memory of Float; the fit is the same).
///
/// The voxels are stored in chunks of ``chunkVoxels`` consecutive mask voxels, each chunk an
/// allocation of its own holding its voxels of every volume, volume-major (value of chunk
/// voxel i in volume k at `k * width + i`). The fit reads a chunk from a few hundred
/// kilobytes instead of from rows a whole volume apart, and frees each chunk as soon as it
/// has fitted it, so the signal and the fit's outputs never take their full memory at once
/// (docs/benchmarks.md).
///
/// Each volume's sum of finite values (in voxel order) and count of non-finite values are
/// kept as it is stored, so the checks before the fit (``nonFiniteFractions()``,
/// ``meanSignals(isB0:)``) need no pass over the signal.
///
/// `@unchecked Sendable`: volumes are stored by one thread; the fit then gives each chunk to
/// one slab, which alone reads and frees it.
public final class MaskedSignal: @unchecked Sendable {
    /// How the values are kept.
    public enum Storage: Sendable {
        case int16
        case float
    }

    /// Mask voxels per chunk: a chunk of an int16 series of 100 volumes is 800 KiB.
    public static let chunkVoxels = 4096

    public let storage: Storage
    /// Mask voxels (values per volume).
    public let voxelCount: Int
    /// Volumes.
    public let volumeCount: Int
    private var chunks: [UnsafeMutableRawPointer?]
    private var stored: [Bool]
    private var finiteSums: [Double]
    private var nonFiniteCounts: [Int]

    /// An empty signal of `volumeCount` volumes of `voxelCount` mask voxels, each volume to be
    /// stored with ``store(volume:gathering:from:)-(_,_,UnsafeBufferPointer<Int16>)``. The
    /// chunks are allocated, not filled: their memory is taken as the volumes arrive.
    public init(voxelCount: Int, volumeCount: Int, storage: Storage) {
        precondition(voxelCount >= 0 && volumeCount >= 0, "a signal has a non-negative size")
        self.storage = storage
        self.voxelCount = voxelCount
        self.volumeCount = volumeCount
        let chunkCount = (voxelCount + Self.chunkVoxels - 1) / Self.chunkVoxels
        let scalarBytes = storage == .int16 ? 2 : 4
        chunks = (0..<chunkCount).map { c in
            let width = min(Self.chunkVoxels, voxelCount - c * Self.chunkVoxels)
            return Self.allocateChunk(byteCount: width * volumeCount * scalarBytes)
        }
        stored = [Bool](repeating: false, count: volumeCount)
        finiteSums = [Double](repeating: 0, count: volumeCount)
        nonFiniteCounts = [Int](repeating: 0, count: volumeCount)
    }

    /// A signal from volume-major values (`values[k * voxelCount + j]`: mask voxel j of volume k).
    public convenience init(float values: [Float], voxelCount: Int) {
        self.init(values: values, voxelCount: voxelCount, storage: .float)
    }

    /// A signal from volume-major stored integers; see ``init(float:voxelCount:)``.
    public convenience init(int16 values: [Int16], voxelCount: Int) {
        self.init(values: values, voxelCount: voxelCount, storage: .int16)
    }

    private convenience init<T: SignalScalar>(values: [T], voxelCount: Int, storage: Storage) {
        precondition(voxelCount > 0 && values.count % voxelCount == 0, "a whole number of volumes")
        self.init(voxelCount: voxelCount, volumeCount: values.count / voxelCount, storage: storage)
        let identity = (0..<voxelCount).map(Int32.init)
        identity.withUnsafeBufferPointer { voxels in
            values.withUnsafeBufferPointer { all in
                for k in 0..<volumeCount {
                    gather(volume: k, voxels, UnsafeBufferPointer(rebasing: all[(k * voxelCount)..<((k + 1) * voxelCount)]))
                }
            }
        }
    }

    deinit {
        for c in chunks.indices { release(chunk: c) }
    }

    /// A chunk's memory, mapped from the kernel: unmapping it gives the memory back at once,
    /// where the C allocator could keep a freed block of this size in its heap.
    private static func allocateChunk(byteCount: Int) -> UnsafeMutableRawPointer {
        let length = max(1, byteCount)
        guard let pages = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), pages != MAP_FAILED else {
            fatalError("out of memory: cannot map \(length) bytes for the DWI signal")
        }
        return pages
    }

    private func chunkBytes(_ c: Int) -> Int {
        max(1, voxelRange(ofChunk: c).count * volumeCount * (storage == .int16 ? 2 : 4))
    }

    var chunkCount: Int { chunks.count }

    /// The mask voxels of chunk `c`.
    func voxelRange(ofChunk c: Int) -> Range<Int> {
        (c * Self.chunkVoxels)..<min(voxelCount, (c + 1) * Self.chunkVoxels)
    }

    /// Whether every volume has been stored.
    public var isComplete: Bool { !stored.contains(false) }

    /// Stores volume `k`: mask voxel j takes `volume[voxels[j]]`, and the volume's sum and
    /// non-finite count are kept.
    public func store(volume k: Int, gathering voxels: UnsafeBufferPointer<Int32>, from volume: UnsafeBufferPointer<Int16>) {
        precondition(storage == .int16, "an int16 volume stored in a Float signal")
        gather(volume: k, voxels, volume)
    }

    /// Stores volume `k` of a Float signal; see the Int16 version.
    public func store(volume k: Int, gathering voxels: UnsafeBufferPointer<Int32>, from volume: UnsafeBufferPointer<Float>) {
        precondition(storage == .float, "a Float volume stored in an int16 signal")
        gather(volume: k, voxels, volume)
    }

    private func gather<T: SignalScalar>(volume k: Int, _ voxels: UnsafeBufferPointer<Int32>, _ volume: UnsafeBufferPointer<T>) {
        precondition(voxels.count == voxelCount && k >= 0 && k < volumeCount, "one index per mask voxel, a volume of the signal")
        var accumulator = T.SumAccumulator()
        for c in chunks.indices {
            let range = voxelRange(ofChunk: c)
            let row = chunks[c]!.assumingMemoryBound(to: T.self) + k * range.count
            for (i, j) in range.enumerated() {
                let value = volume[Int(voxels[j])]
                row[i] = value
                accumulator.add(value)
            }
        }
        finiteSums[k] = accumulator.sum
        nonFiniteCounts[k] = accumulator.nonFinite
        stored[k] = true
    }

    /// The values of volume `k`, in mask-voxel order.
    public func values(volume k: Int) -> [Float] {
        precondition(k >= 0 && k < volumeCount, "a volume of the signal")
        var out: [Float] = []
        out.reserveCapacity(voxelCount)
        for c in chunks.indices {
            let width = voxelRange(ofChunk: c).count
            guard let chunk = chunks[c] else { preconditionFailure("the signal was fitted: its chunks are gone") }
            switch storage {
            case .int16: out += UnsafeBufferPointer(start: chunk.assumingMemoryBound(to: Int16.self) + k * width, count: width).map(Float.init)
            case .float: out += UnsafeBufferPointer(start: chunk.assumingMemoryBound(to: Float.self) + k * width, count: width)
            }
        }
        return out
    }

    /// The fraction of non-finite values in each volume (0 for integer signals).
    public func nonFiniteFractions() -> [Double] {
        nonFiniteCounts.map { voxelCount > 0 ? Double($0) / Double(voxelCount) : 0 }
    }

    /// The same signal without the given volumes (0-based, in this signal's order).
    public func removingVolumes(_ volumes: Set<Int>) -> MaskedSignal {
        let kept = (0..<volumeCount).filter { !volumes.contains($0) }
        let out = MaskedSignal(voxelCount: voxelCount, volumeCount: kept.count, storage: storage)
        let scalarBytes = storage == .int16 ? 2 : 4
        for c in chunks.indices {
            let width = voxelRange(ofChunk: c).count
            for (position, k) in kept.enumerated() {
                (out.chunks[c]! + position * width * scalarBytes).copyMemory(from: chunks[c]! + k * width * scalarBytes,
                                                                             byteCount: width * scalarBytes)
            }
        }
        for (position, k) in kept.enumerated() {
            out.stored[position] = stored[k]
            out.finiteSums[position] = finiteSums[k]
            out.nonFiniteCounts[position] = nonFiniteCounts[k]
        }
        return out
    }

    /// The mean b=0 signal and the mean diffusion-weighted signal over the voxels and volumes
    /// of each kind (non-finite values left out; NaN when a kind has no finite value).
    ///
    /// Diffusion attenuates: in tissue `S(b) = S0 exp(-b ADC) < S0`, so the weighted mean is
    /// below the b=0 mean in any brain (about 0.3 to 0.5 of it at b = 1000 s/mm²). A weighted
    /// mean at or above the b=0 mean means the b-values label the wrong volumes.
    /// - Parameter isB0: one flag per volume of the signal.
    public func meanSignals(isB0: [Bool]) -> (b0: Double, weighted: Double) {
        precondition(isB0.count == volumeCount, "one flag per volume")
        var sums = (b0: 0.0, weighted: 0.0), counts = (b0: 0, weighted: 0)
        for (k, b0) in isB0.enumerated() {
            let finite = voxelCount - nonFiniteCounts[k]
            if b0 { sums.b0 += finiteSums[k]; counts.b0 += finite } else { sums.weighted += finiteSums[k]; counts.weighted += finite }
        }
        return (counts.b0 > 0 ? sums.b0 / Double(counts.b0) : .nan,
                counts.weighted > 0 ? sums.weighted / Double(counts.weighted) : .nan)
    }

    /// Chunk `c` as the fit reads it: `width` voxels of every volume, a row of `width` per volume.
    func chunkSamples(_ c: Int) -> SignalSamples {
        guard let chunk = chunks[c] else { preconditionFailure("chunk \(c) of the signal was already fitted") }
        let count = voxelRange(ofChunk: c).count * volumeCount
        switch storage {
        case .int16: return .int16(SharedReadBuffer(UnsafeBufferPointer(start: chunk.assumingMemoryBound(to: Int16.self), count: count)))
        case .float: return .float(SharedReadBuffer(UnsafeBufferPointer(start: chunk.assumingMemoryBound(to: Float.self), count: count)))
        }
    }

    /// Frees chunk `c` (the fit is done with it).
    func release(chunk c: Int) {
        guard let chunk = chunks[c] else { return }
        munmap(chunk, chunkBytes(c))
        chunks[c] = nil
    }
}

/// The two stored types of a masked signal, with the running sum ``MaskedSignal`` keeps.
protocol SignalScalar {
    associatedtype SumAccumulator: VolumeSumAccumulator where SumAccumulator.Value == Self
}

protocol VolumeSumAccumulator {
    associatedtype Value
    init()
    mutating func add(_ value: Value)
    var sum: Double { get }
    var nonFinite: Int { get }
}

extension Int16: SignalScalar {
    /// Integers sum exactly (any order gives the same Double).
    struct SumAccumulator: VolumeSumAccumulator {
        private var total: Int64 = 0
        init() {}
        @inline(__always) mutating func add(_ value: Int16) { total += Int64(value) }
        var sum: Double { Double(total) }
        var nonFinite: Int { 0 }
    }
}

extension Float: SignalScalar {
    /// Finite values summed in voxel order in Double; non-finite ones counted.
    struct SumAccumulator: VolumeSumAccumulator {
        private(set) var sum = 0.0
        private(set) var nonFinite = 0
        init() {}
        @inline(__always) mutating func add(_ value: Float) {
            if value.isFinite { sum += Double(value) } else { nonFinite += 1 }
        }
    }
}
