import SlabParallel
// Brain masking from the mean b=0 image, in the spirit of DIPY's median_otsu.

/// A problem with the inputs of ``brainMask(meanB0:shape:medianRadius:threads:)``.
public enum BrainMaskError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The image does not have shape.x * shape.y * shape.z values, or a dimension is < 1
    /// (`expected` is -1 when the shape is negative or its product overflows).
    case shapeMismatch(expected: Int, actual: Int)
    /// The median radius is negative or larger than 3.
    case invalidRadius(Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(expected, actual):
            return "mean b=0 image has \(actual) voxels, shape gives \(expected)"
        case let .invalidRadius(radius):
            return "median filter radius must be 0...3, got \(radius)"
        }
    }
}

/// A brain mask from the mean b=0 volume: median filter, Otsu threshold, largest connected
/// component, hole filling.
///
/// DIPY's `median_otsu` (Garyfallidis et al. 2014, Front Neuroinform 8:8) smooths with a
/// median filter of radius 4 applied 4 times and then thresholds with Otsu's method (Otsu
/// 1979, IEEE Trans SMC 9:62). Those passes mostly remove speckle outside the head and fill
/// small gaps, at 4 x 729 values per voxel. Here one pass of radius 1 (27 values) removes the
/// voxel-scale noise, and the two morphological steps that follow do what the repeated large
/// filters did, exactly and cheaply: keep the largest 6-connected component (drops noise
/// blobs and detached non-brain tissue) and fill 6-connected holes not reachable from the
/// image border (ventricles, dark CSF). This costs a small fraction of DIPY's defaults
/// (docs/benchmarks.md).
///
/// Details: the median of the in-bounds neighbourhood (at the border fewer than 27 values;
/// the upper median when the count is even). Otsu's threshold is computed on a 256-bin
/// histogram of the filtered image between its minimum and maximum, as scikit-image's
/// `threshold_otsu`; voxels strictly above it are foreground. Non-finite inputs are treated as 0.
///
/// - Parameters:
///   - meanB0: the mean of the b=0 volumes, x fastest (NIfTI order).
///   - shape: the grid dimensions.
///   - medianRadius: the median filter radius in voxels (default 1; 0 disables the filter).
///   - threads: slabs for the median filter (the result does not depend on it).
/// - Returns: one Bool per voxel.
/// - Throws: ``BrainMaskError``.
public func brainMask(meanB0: [Float], shape: (x: Int, y: Int, z: Int), medianRadius: Int = 1,
                      threads: Int = 1) throws -> [Bool] {
    let (nx, ny, nz) = shape
    let expected = checkedProduct(nx, ny, nz) ?? -1
    guard nx >= 1, ny >= 1, nz >= 1, expected == meanB0.count else {
        throw BrainMaskError.shapeMismatch(expected: expected, actual: meanB0.count)
    }
    guard (0...3).contains(medianRadius) else { throw BrainMaskError.invalidRadius(medianRadius) }
    let image = meanB0.map { $0.isFinite ? $0 : 0 }
    let filtered = medianFilter(image, shape: shape, radius: medianRadius, threads: threads)
    let threshold = otsuThreshold(filtered)
    var mask = filtered.map { $0 > threshold }
    mask = largestConnectedComponent(mask, shape: shape)
    fillHoles(&mask, shape: shape)
    return mask
}

/// Median filter over the in-bounds (2r+1)³ neighbourhood of each voxel.
///
/// For radius 1 the interior voxels take a fast path: the window is three sorted columns of
/// 9 values (3 x 3 in y, z) at x−1, x, x+1; each column is sorted once by a 25-comparator
/// network and reused by three consecutive windows, and the 14th smallest of the 27 is picked
/// by a branch-free three-way merge, which avoids the mispredicted branches that quickselect
/// takes on noisy data (docs/benchmarks.md). Border voxels (truncated windows) and other radii
/// use quickselect.
func medianFilter(_ image: [Float], shape: (x: Int, y: Int, z: Int), radius: Int, threads: Int) -> [Float] {
    guard radius > 0 else { return image }
    let (nx, ny, nz) = shape
    let window = (2 * radius + 1) * (2 * radius + 1) * (2 * radius + 1)
    var result = [Float](repeating: 0, count: image.count)
    image.withUnsafeBufferPointer { inBuffer in
    result.withUnsafeMutableBufferPointer { outBuffer in
        let input = SharedReadBuffer(inBuffer), output = SharedBuffer(outBuffer)
        // Slabs of z-planes.
        forEachSlab(count: nz, threads: threads) { planes in
            let values = UnsafeMutablePointer<Float>.allocate(capacity: window)
            // Three sorted columns of 9 plus a +infinity sentinel each.
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: 30)
            defer { values.deallocate(); columns.deallocate() }
            for z in planes {
                let z0 = max(0, z - radius), z1 = min(nz - 1, z + radius)
                for y in 0..<ny {
                    let y0 = max(0, y - radius), y1 = min(ny - 1, y + radius)
                    let interiorRow = radius == 1 && z > 0 && z < nz - 1 && y > 0 && y < ny - 1 && nx >= 3
                    if interiorRow {
                        // Fast path for x in 1..<nx-1; x = 0 and x = nx-1 below.
                        for c in 0..<2 { loadSortedColumn(input, x: c, y: y, z: z, nx: nx, ny: ny, into: columns + 10 * c) }
                        for x in 1..<(nx - 1) {
                            let newest = (x + 1) % 3
                            loadSortedColumn(input, x: x + 1, y: y, z: z, nx: nx, ny: ny, into: columns + 10 * newest)
                            output[(z * ny + y) * nx + x] = fourteenthOfThree(columns)
                        }
                    }
                    for x in 0..<nx where !(interiorRow && x > 0 && x < nx - 1) {
                        let x0 = max(0, x - radius), x1 = min(nx - 1, x + radius)
                        var count = 0
                        for zz in z0...z1 {
                            for yy in y0...y1 {
                                let row = (zz * ny + yy) * nx
                                for xx in x0...x1 {
                                    values[count] = input[row + xx]
                                    count += 1
                                }
                            }
                        }
                        output[(z * ny + y) * nx + x] = select(values, count: count, k: count / 2)
                    }
                }
            }
        }
    }}
    return result
}

/// Loads the 3 x 3 (y, z) column of voxels at `x` around (y, z), sorted ascending, followed by
/// a +infinity sentinel. The 25-comparator network sorts 9 inputs (checked exhaustively on
/// 0-1 inputs, Knuth's 0-1 principle).
@inline(__always)
func loadSortedColumn(_ input: SharedReadBuffer<Float>, x: Int, y: Int, z: Int, nx: Int, ny: Int,
                      into c: UnsafeMutablePointer<Float>) {
    var k = 0
    for zz in (z - 1)...(z + 1) {
        for yy in (y - 1)...(y + 1) {
            c[k] = input[(zz * ny + yy) * nx + x]
            k += 1
        }
    }
    @inline(__always) func order(_ a: Int, _ b: Int) {
        let u = c[a], v = c[b]
        c[a] = min(u, v)
        c[b] = max(u, v)
    }
    order(0, 1); order(3, 4); order(6, 7); order(1, 2); order(4, 5); order(7, 8); order(0, 1); order(3, 4)
    order(6, 7); order(0, 3); order(3, 6); order(0, 3); order(1, 4); order(4, 7); order(1, 4); order(2, 5)
    order(5, 8); order(2, 5); order(1, 3); order(5, 7); order(2, 6); order(4, 6); order(2, 4); order(2, 3)
    order(5, 6)
    c[9] = .infinity
}

/// The 14th smallest (the median) of three sorted runs of 9 at offsets 0, 10 and 20.
@inline(__always)
func fourteenthOfThree(_ c: UnsafeMutablePointer<Float>) -> Float {
    var ia = 0, ib = 10, ic = 20
    var m: Float = 0
    for _ in 0..<14 {
        let a = c[ia], b = c[ib], cc = c[ic]
        m = min(a, min(b, cc))
        // Integer flags rather than Bool logic, so the compiler emits setcc, not branches.
        let aFirstOfB = a <= b ? 1 : 0, aFirstOfC = a <= cc ? 1 : 0, bFirstOfC = b <= cc ? 1 : 0
        let takeA = aFirstOfB & aFirstOfC
        let takeB = (1 - aFirstOfB) & bFirstOfC
        ia += takeA
        ib += takeB
        ic += 1 - takeA - takeB
    }
    return m
}

/// The k-th smallest of `values[0..<count]` by quickselect (Hoare), reordering the buffer.
@inline(__always)
func select(_ values: UnsafeMutablePointer<Float>, count: Int, k: Int) -> Float {
    var lo = 0, hi = count - 1
    while lo < hi {
        let pivot = values[(lo + hi) / 2]
        var i = lo, j = hi
        while i <= j {
            while values[i] < pivot { i += 1 }
            while values[j] > pivot { j -= 1 }
            if i <= j {
                let t = values[i]; values[i] = values[j]; values[j] = t
                i += 1; j -= 1
            }
        }
        if k <= j { hi = j } else if k >= i { lo = i } else { return values[k] }
    }
    return values[k]
}

/// Otsu's threshold (Otsu 1979) on a 256-bin histogram between the minimum and maximum, as
/// scikit-image's `threshold_otsu`: the bin centre maximising the between-class variance.
func otsuThreshold(_ values: [Float]) -> Float {
    guard let lo = values.min(), let hi = values.max(), hi > lo else { return values.first ?? 0 }
    let bins = 256
    var histogram = [Double](repeating: 0, count: bins)
    let width = Double(hi - lo) / Double(bins)
    for v in values {
        let b = min(bins - 1, Int(Double(v - lo) / width))
        histogram[b] += 1
    }
    let centres = (0..<bins).map { Double(lo) + (Double($0) + 0.5) * width }
    let total = histogram.reduce(0, +)
    let totalSum = zip(histogram, centres).reduce(0) { $0 + $1.0 * $1.1 }
    var weightBelow = 0.0, sumBelow = 0.0
    var best = -1.0, threshold = centres[0]
    for b in 0..<(bins - 1) {
        weightBelow += histogram[b]
        sumBelow += histogram[b] * centres[b]
        let weightAbove = total - weightBelow
        guard weightBelow > 0, weightAbove > 0 else { continue }
        let meanBelow = sumBelow / weightBelow
        let meanAbove = (totalSum - sumBelow) / weightAbove
        let between = weightBelow * weightAbove * (meanBelow - meanAbove) * (meanBelow - meanAbove)
        if between > best {
            best = between
            threshold = centres[b]
        }
    }
    return Float(threshold)
}

/// Breadth-first flood fill over 6-neighbours: from the voxels already in `queue` (marked in
/// `visited`), visits every voxel with `passable` true, marking it and appending it to `queue`.
/// Plain buffers and an explicit queue (no recursion, no closures over mutable state).
func floodFill(passable: UnsafeBufferPointer<Bool>, visited: UnsafeMutableBufferPointer<Bool>,
               queue: inout [Int], shape: (x: Int, y: Int, z: Int)) {
    let (nx, ny, nz) = shape
    let plane = nx * ny
    var head = 0
    while head < queue.count {
        let v = queue[head]
        head += 1
        let x = v % nx, y = (v / nx) % ny, z = v / plane
        if x > 0, passable[v - 1], !visited[v - 1] { visited[v - 1] = true; queue.append(v - 1) }
        if x < nx - 1, passable[v + 1], !visited[v + 1] { visited[v + 1] = true; queue.append(v + 1) }
        if y > 0, passable[v - nx], !visited[v - nx] { visited[v - nx] = true; queue.append(v - nx) }
        if y < ny - 1, passable[v + nx], !visited[v + nx] { visited[v + nx] = true; queue.append(v + nx) }
        if z > 0, passable[v - plane], !visited[v - plane] { visited[v - plane] = true; queue.append(v - plane) }
        if z < nz - 1, passable[v + plane], !visited[v + plane] { visited[v + plane] = true; queue.append(v + plane) }
    }
}

/// Keeps the largest 6-connected component of `mask` (the first found, in voxel order, on ties).
func largestConnectedComponent(_ mask: [Bool], shape: (x: Int, y: Int, z: Int)) -> [Bool] {
    var visited = [Bool](repeating: false, count: mask.count)
    var queue = [Int]()
    queue.reserveCapacity(mask.count)
    var bestSeed = -1, bestSize = 0
    mask.withUnsafeBufferPointer { passable in
    visited.withUnsafeMutableBufferPointer { seen in
        for seed in 0..<passable.count where passable[seed] && !seen[seed] {
            queue.removeAll(keepingCapacity: true)
            seen[seed] = true
            queue.append(seed)
            floodFill(passable: passable, visited: seen, queue: &queue, shape: shape)
            if queue.count > bestSize {
                bestSize = queue.count
                bestSeed = seed
            }
        }
    }}
    var result = [Bool](repeating: false, count: mask.count)
    guard bestSeed >= 0 else { return result }
    queue.removeAll(keepingCapacity: true)
    result[bestSeed] = true
    queue.append(bestSeed)
    mask.withUnsafeBufferPointer { passable in
    result.withUnsafeMutableBufferPointer { component in
        floodFill(passable: passable, visited: component, queue: &queue, shape: shape)
    }}
    return result
}

/// Sets to true every background voxel not 6-connected to the image border through background.
func fillHoles(_ mask: inout [Bool], shape: (x: Int, y: Int, z: Int)) {
    let (nx, ny, nz) = shape
    let background = mask.map { !$0 }
    var outside = [Bool](repeating: false, count: mask.count)
    var queue = [Int]()
    queue.reserveCapacity(mask.count)
    for z in 0..<nz {
        for y in 0..<ny {
            for x in 0..<nx where x == 0 || y == 0 || z == 0 || x == nx - 1 || y == ny - 1 || z == nz - 1 {
                let i = (z * ny + y) * nx + x
                if background[i] && !outside[i] {
                    outside[i] = true
                    queue.append(i)
                }
            }
        }
    }
    background.withUnsafeBufferPointer { passable in
    outside.withUnsafeMutableBufferPointer { seen in
        floodFill(passable: passable, visited: seen, queue: &queue, shape: shape)
    }}
    for i in 0..<mask.count where !outside[i] { mask[i] = true }
}

/// The voxel-wise mean of the b=0 volumes, the input of ``brainMask(meanB0:shape:medianRadius:threads:)``.
///
/// Sums in Double in volume order, so the result does not depend on `threads`.
/// - Parameters:
///   - data: volume-major signal, `data[v * voxelCount + i]`.
///   - table: the gradient table (its b=0 volumes are averaged).
///   - voxelCount: voxels per volume.
///   - threads: slabs of voxels.
/// - Throws: ``TensorModelError/dataSizeMismatch(expected:actual:)`` when the sizes disagree.
public func meanB0(data: UnsafeBufferPointer<Float>, table: GradientTable, voxelCount: Int,
                   threads: Int = 1) throws -> [Float] {
    let expected = checkedProduct(table.count, voxelCount) ?? -1
    guard data.count == expected else {
        throw TensorModelError.dataSizeMismatch(expected: expected, actual: data.count)
    }
    let volumes = table.b0Indices
    var result = [Float](repeating: 0, count: voxelCount)
    guard !volumes.isEmpty else { return result }
    let input = SharedReadBuffer(data)
    result.withUnsafeMutableBufferPointer { buffer in
        let output = SharedBuffer(buffer)
        forEachSlab(count: voxelCount, threads: threads) { range in
            for i in range {
                var sum = 0.0
                for v in volumes { sum += Double(input[v * voxelCount + i]) }
                output[i] = Float(sum / Double(volumes.count))
            }
        }
    }
    return result
}

/// The voxel-wise mean of the b=0 volumes of an array; see the buffer version.
public func meanB0(data: [Float], table: GradientTable, voxelCount: Int, threads: Int = 1) throws -> [Float] {
    try data.withUnsafeBufferPointer { try meanB0(data: $0, table: table, voxelCount: voxelCount, threads: threads) }
}
