// Brain masking from the mean b=0 image, in the spirit of DIPY's median_otsu.

/// A problem with the inputs of ``brainMask(meanB0:shape:medianRadius:threads:)``.
public enum BrainMaskError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The image does not have shape.x * shape.y * shape.z values, or a dimension is < 1.
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
/// image border (ventricles, dark CSF). That runs in a few tens of milliseconds on
/// 96 x 96 x 60 at 2 threads in release builds, where DIPY's defaults take seconds.
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
    guard nx >= 1, ny >= 1, nz >= 1, nx * ny * nz == meanB0.count else {
        throw BrainMaskError.shapeMismatch(expected: max(0, nx) * max(0, ny) * max(0, nz), actual: meanB0.count)
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
            defer { values.deallocate() }
            for z in planes {
                let z0 = max(0, z - radius), z1 = min(nz - 1, z + radius)
                for y in 0..<ny {
                    let y0 = max(0, y - radius), y1 = min(ny - 1, y + radius)
                    for x in 0..<nx {
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

/// The 6-neighbours of a voxel index, calling `body` for each in-bounds one.
@inline(__always)
func forEachFaceNeighbour(_ index: Int, shape: (x: Int, y: Int, z: Int), _ body: (Int) -> Void) {
    let (nx, ny, nz) = shape
    let x = index % nx, y = (index / nx) % ny, z = index / (nx * ny)
    if x > 0 { body(index - 1) }
    if x < nx - 1 { body(index + 1) }
    if y > 0 { body(index - nx) }
    if y < ny - 1 { body(index + nx) }
    if z > 0 { body(index - nx * ny) }
    if z < nz - 1 { body(index + nx * ny) }
}

/// Keeps the largest 6-connected component of `mask` (the first found, in voxel order, on ties).
func largestConnectedComponent(_ mask: [Bool], shape: (x: Int, y: Int, z: Int)) -> [Bool] {
    var label = [Int32](repeating: 0, count: mask.count)
    var queue = [Int]()
    queue.reserveCapacity(mask.count)
    var bestLabel: Int32 = 0, bestSize = 0
    var current: Int32 = 0
    for seed in 0..<mask.count where mask[seed] && label[seed] == 0 {
        current += 1
        label[seed] = current
        queue.removeAll(keepingCapacity: true)
        queue.append(seed)
        var head = 0
        while head < queue.count {
            let v = queue[head]
            head += 1
            forEachFaceNeighbour(v, shape: shape) { w in
                if mask[w] && label[w] == 0 {
                    label[w] = current
                    queue.append(w)
                }
            }
        }
        if queue.count > bestSize {
            bestSize = queue.count
            bestLabel = current
        }
    }
    return label.map { $0 == bestLabel && bestLabel != 0 }
}

/// Sets to true every background voxel not 6-connected to the image border through background.
func fillHoles(_ mask: inout [Bool], shape: (x: Int, y: Int, z: Int)) {
    let (nx, ny, nz) = shape
    var outside = [Bool](repeating: false, count: mask.count)
    var queue = [Int]()
    queue.reserveCapacity(mask.count)
    for z in 0..<nz {
        for y in 0..<ny {
            for x in 0..<nx where x == 0 || y == 0 || z == 0 || x == nx - 1 || y == ny - 1 || z == nz - 1 {
                let i = (z * ny + y) * nx + x
                if !mask[i] && !outside[i] {
                    outside[i] = true
                    queue.append(i)
                }
            }
        }
    }
    var head = 0
    while head < queue.count {
        let v = queue[head]
        head += 1
        forEachFaceNeighbour(v, shape: shape) { w in
            if !mask[w] && !outside[w] {
                outside[w] = true
                queue.append(w)
            }
        }
    }
    for i in 0..<mask.count where !outside[i] { mask[i] = true }
}
