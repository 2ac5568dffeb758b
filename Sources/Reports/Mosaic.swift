import Foundation
import Geometry
import NIfTI

/// A 3D image turned to the nearest RAS+ voxel order (x to the subject's right, y
/// anterior, z superior), so that slices display in the neurological convention (the
/// subject's left on the viewer's left) whatever the file's axis order.
public struct OrientedVolume: Sendable {
    public var nx: Int, ny: Int, nz: Int
    public var values: [Float]

    public init(nx: Int, ny: Int, nz: Int, values: [Float]) {
        precondition(values.count == nx * ny * nz, "one value per voxel")
        self.nx = nx
        self.ny = ny
        self.nz = nz
        self.values = values
    }

    @inline(__always) public func index(_ x: Int, _ y: Int, _ z: Int) -> Int { x + nx * (y + ny * z) }
    @inline(__always) public subscript(x x: Int, y y: Int, z z: Int) -> Float { values[index(x, y, z)] }

    /// For each world axis (x, y, z), the voxel axis shown along it, and per voxel axis
    /// whether it runs against its world axis.
    public static func axisOrder(_ header: NIfTIHeader) -> (voxelOf: [Int], flipped: [Bool]) {
        let rows = header.affine.rows
        var worldOf = [0, 1, 2], flipped = [false, false, false]
        for axis in 0..<3 {
            let column = (0..<3).map { rows[$0][axis] }
            let world = (0..<3).max { abs(column[$0]) < abs(column[$1]) }!
            worldOf[axis] = world
            flipped[axis] = column[world] < 0
        }
        if Set(worldOf).count < 3 { worldOf = [0, 1, 2]; flipped = [false, false, false] }
        var voxelOf = [0, 1, 2]
        for axis in 0..<3 { voxelOf[worldOf[axis]] = axis }
        return (voxelOf, flipped)
    }

    /// Volume `volume` of `voxels` (file order, `header`'s grid) reoriented by flips and an
    /// axis permutation chosen from the affine: each voxel axis goes to the world axis it is
    /// closest to. An affine too oblique to tell (two voxel axes nearest one world axis)
    /// keeps the file's order.
    public static func reoriented(_ voxels: [Float], header: NIfTIHeader, volume: Int = 0) -> OrientedVolume {
        let shape = header.spatialShape
        let n = [shape.x, shape.y, shape.z]
        let (voxelOf, flipped) = axisOrder(header)
        let m = voxelOf.map { n[$0] }
        let strides = [1, n[0], n[0] * n[1]]
        // Per output axis: the source step and, for a flipped axis, the start at its far end.
        var start = volume * header.voxelsPerVolume
        var step = [0, 0, 0]
        for w in 0..<3 {
            let axis = voxelOf[w]
            step[w] = flipped[axis] ? -strides[axis] : strides[axis]
            if flipped[axis] { start += (n[axis] - 1) * strides[axis] }
        }
        var out = [Float](repeating: 0, count: m[0] * m[1] * m[2])
        voxels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                var k = 0
                for z in 0..<m[2] {
                    for y in 0..<m[1] {
                        var index = start + z * step[2] + y * step[1]
                        for _ in 0..<m[0] {
                            target[k] = source[index]
                            index += step[0]
                            k += 1
                        }
                    }
                }
            }
        }
        return OrientedVolume(nx: m[0], ny: m[1], nz: m[2], values: out)
    }

    /// Reads a NIfTI file (volume `volume` of it) and reorients it.
    public static func read(_ path: String, volume: Int = 0) throws -> OrientedVolume {
        let image = try NIfTIFile.read(path, as: Float.self)
        return reoriented(image.voxels, header: image.header, volume: volume)
    }

    /// The values at `fraction` (0...1) of the sorted finite non-zero values (nearest rank).
    /// For a display window only: large images are sampled (every k-th voxel, at most
    /// 16 384 values), which moves the window by a fraction of a grey level.
    public func percentile(_ fraction: Double) -> Float {
        let stride = max(1, values.count / 16_384)
        let finite = Swift.stride(from: 0, to: values.count, by: stride).map { values[$0] }.filter { $0.isFinite && $0 != 0 }.sorted()
        guard !finite.isEmpty else { return 0 }
        return finite[min(finite.count - 1, max(0, Int((Double(finite.count - 1) * fraction).rounded())))]
    }
}

/// The three slicing planes.
public enum SlicePlane: String, Sendable, CaseIterable {
    case axial, coronal, sagittal
}

/// What a mosaic draws: a base image (grey-scale with a window, or RGB) and outlines and
/// fills over it.
public struct MosaicLayers: Sendable {
    public enum Base: Sendable {
        case grey(OrientedVolume, low: Float, high: Float)
        /// Red, green, blue in 0...1.
        case rgb(OrientedVolume, OrientedVolume, OrientedVolume)
    }

    public var base: Base
    /// Outlines: where a voxel's label differs from its in-plane neighbour's (a mask's
    /// contour, or every region boundary of an atlas).
    public var outlines: [(labels: OrientedVolume, colour: [UInt8])] = []
    /// Voxels filled with a colour at half opacity (regions reported n/a).
    public var fills: [(voxels: OrientedVolume, colour: [UInt8])] = []
    /// Where the slices are taken from: the bounding box of its non-zero voxels (nil: the base's).
    public var extent: OrientedVolume?

    public init(base: Base) { self.base = base }

    var shape: (Int, Int, Int) {
        switch base {
        case .grey(let v, _, _): (v.nx, v.ny, v.nz)
        case .rgb(let r, _, _): (r.nx, r.ny, r.nz)
        }
    }
}

/// Mosaics of slices: one row per plane (axial, coronal, sagittal), `slices` evenly spaced
/// slices per row across the image's non-zero extent, each voxel drawn as a block of
/// `scale` x `scale` pixels, outlines on the block edges.
public enum Mosaic {
    public static func render(_ layers: MosaicLayers, slices: Int = 6, targetTile: Int = 150) -> RasterImage {
        let (nx, ny, nz) = layers.shape
        let scale = max(1, targetTile / max(nx, ny, nz))
        let box = boundingBox(layers)
        let gap = 2
        let rowsLayout: [(SlicePlane, Int, Int)] = [(.axial, nx, ny), (.coronal, nx, nz), (.sagittal, ny, nz)]
        let width = rowsLayout.map { $0.1 * scale * slices + gap * (slices + 1) }.max()!
        let height = rowsLayout.map { $0.2 * scale + gap }.reduce(gap, +)
        var image = RasterImage(width: width, height: height, fill: [0, 0, 0])
        var top = gap
        for (plane, tileWidth, tileHeight) in rowsLayout {
            let (low, high) = box[plane]!
            for k in 0..<slices {
                let position = low + Int((Double(high - low) * Double(k + 1) / Double(slices + 1)).rounded())
                let left = gap + k * (tileWidth * scale + gap)
                drawTile(layers, plane: plane, position: position, scale: scale, into: &image, left: left, top: top,
                         tileWidth: tileWidth, tileHeight: tileHeight)
            }
            top += tileHeight * scale + gap
        }
        return image
    }

    /// The range of slice positions per plane: the non-zero extent of the extent volume
    /// (or of the base), the whole axis when it is empty.
    static func boundingBox(_ layers: MosaicLayers) -> [SlicePlane: (Int, Int)] {
        let volume: OrientedVolume
        if let extent = layers.extent { volume = extent } else {
            switch layers.base {
            case .grey(let v, _, _): volume = v
            case .rgb(let r, let g, let b):
                volume = OrientedVolume(nx: r.nx, ny: r.ny, nz: r.nz, values: zip(zip(r.values, g.values), b.values).map { $0.0 + $0.1 + $1 })
            }
        }
        var lo = [Int.max, Int.max, Int.max], hi = [Int.min, Int.min, Int.min]
        var x0 = Int.max, y0 = Int.max, z0 = Int.max, x1 = Int.min, y1 = Int.min, z1 = Int.min
        volume.values.withUnsafeBufferPointer { values in
            var k = 0
            for z in 0..<volume.nz { for y in 0..<volume.ny { for x in 0..<volume.nx {
                let v = values[k]
                k += 1
                guard v != 0, v.isFinite else { continue }
                if x < x0 { x0 = x }
                if x > x1 { x1 = x }
                if y < y0 { y0 = y }
                if y > y1 { y1 = y }
                if z < z0 { z0 = z }
                if z > z1 { z1 = z }
            } } }
        }
        if x0 != Int.max { lo = [x0, y0, z0]; hi = [x1, y1, z1] }
        if lo[0] == Int.max { lo = [0, 0, 0]; hi = [volume.nx - 1, volume.ny - 1, volume.nz - 1] }
        return [.sagittal: (lo[0], hi[0]), .coronal: (lo[1], hi[1]), .axial: (lo[2], hi[2])]
    }

    /// The voxel shown at tile column u, row v (row 0 at the top) of a slice.
    @inline(__always) static func voxel(_ plane: SlicePlane, position: Int, u: Int, v: Int, tileHeight: Int) -> (Int, Int, Int) {
        let up = tileHeight - 1 - v
        switch plane {
        case .axial: return (u, up, position)
        case .coronal: return (u, position, up)
        case .sagittal: return (position, u, up)
        }
    }

    static func drawTile(_ layers: MosaicLayers, plane: SlicePlane, position: Int, scale: Int, into image: inout RasterImage,
                         left: Int, top: Int, tileWidth: Int, tileHeight: Int) {
        let width = image.width
        image.pixels.withUnsafeMutableBufferPointer { pixels in
            for v in 0..<tileHeight {
                for u in 0..<tileWidth {
                    let (x, y, z) = voxel(plane, position: position, u: u, v: v, tileHeight: tileHeight)
                    var colour = baseColour(layers.base, x, y, z)
                    for fill in layers.fills where fill.voxels[x: x, y: y, z: z] != 0 {
                        colour = (UInt8((Int(colour.0) + Int(fill.colour[0])) / 2), UInt8((Int(colour.1) + Int(fill.colour[1])) / 2),
                                  UInt8((Int(colour.2) + Int(fill.colour[2])) / 2))
                    }
                    for dy in 0..<scale {
                        var at = ((top + v * scale + dy) * width + left + u * scale) * 3
                        for _ in 0..<scale {
                            pixels[at] = colour.0
                            pixels[at + 1] = colour.1
                            pixels[at + 2] = colour.2
                            at += 3
                        }
                    }
                }
            }
        }
        for outline in layers.outlines {
            let labels = outline.labels
            func label(_ u: Int, _ v: Int) -> Float? {
                guard u >= 0, v >= 0, u < tileWidth, v < tileHeight else { return nil }
                let (x, y, z) = voxel(plane, position: position, u: u, v: v, tileHeight: tileHeight)
                return labels[x: x, y: y, z: z]
            }
            for v in 0..<tileHeight {
                for u in 0..<tileWidth {
                    guard let here = label(u, v) else { continue }
                    let differs = { (du: Int, dv: Int) -> Bool in
                        let there = label(u + du, v + dv) ?? 0
                        return there != here && (here != 0 || there != 0)
                    }
                    let x0 = left + u * scale, y0 = top + v * scale
                    if scale == 1 {
                        if here != 0 && (differs(-1, 0) || differs(1, 0) || differs(0, -1) || differs(0, 1)) { image.set(x0, y0, outline.colour) }
                        continue
                    }
                    guard here != 0 else { continue }
                    if differs(-1, 0) { for d in 0..<scale { image.set(x0, y0 + d, outline.colour) } }
                    if differs(1, 0) { for d in 0..<scale { image.set(x0 + scale - 1, y0 + d, outline.colour) } }
                    if differs(0, -1) { for d in 0..<scale { image.set(x0 + d, y0, outline.colour) } }
                    if differs(0, 1) { for d in 0..<scale { image.set(x0 + d, y0 + scale - 1, outline.colour) } }
                }
            }
        }
    }

    @inline(__always) static func baseColour(_ base: MosaicLayers.Base, _ x: Int, _ y: Int, _ z: Int) -> (UInt8, UInt8, UInt8) {
        @inline(__always) func byte(_ t: Float) -> UInt8 { t.isFinite ? UInt8(max(0, min(255, t * 255)).rounded()) : 0 }
        switch base {
        case .grey(let volume, let low, let high):
            let g = byte((volume[x: x, y: y, z: z] - low) / max(high - low, .leastNormalMagnitude))
            return (g, g, g)
        case .rgb(let r, let g, let b):
            return (byte(r[x: x, y: y, z: z]), byte(g[x: x, y: y, z: z]), byte(b[x: x, y: y, z: z]))
        }
    }
}
