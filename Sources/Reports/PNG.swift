import CDeflate

/// An 8-bit raster: `channels` samples per pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA),
/// rows top to bottom, pixels left to right.
public struct RasterImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && (1...4).contains(channels), "a raster has a size and 1-4 channels")
        precondition(pixels.count == width * height * channels, "one sample per channel and pixel")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A blank image filled with one colour (`colour.count == channels`).
    public init(width: Int, height: Int, fill colour: [UInt8]) {
        var pixels = [UInt8](repeating: 0, count: width * height * colour.count)
        for p in 0..<(width * height) { for c in colour.indices { pixels[p * colour.count + c] = colour[c] } }
        self.init(width: width, height: height, channels: colour.count, pixels: pixels)
    }

    public subscript(x: Int, y: Int) -> ArraySlice<UInt8> {
        let start = (y * width + x) * channels
        return pixels[start..<(start + channels)]
    }

    /// Sets the pixel at (x, y); a point outside the image is ignored.
    public mutating func set(_ x: Int, _ y: Int, _ colour: [UInt8]) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let start = (y * width + x) * channels
        for c in 0..<channels { pixels[start + c] = colour[c] }
    }
}

/// The problems a PNG decode can meet, each naming what was wrong.
public struct PNGError: Error, CustomStringConvertible, Equatable, Sendable {
    public let reason: String
    public var description: String { "PNG: \(reason)" }
}

/// PNG encoding and decoding (ISO/IEC 15948, W3C PNG 2nd edition) of 8-bit, non-interlaced
/// images, the zlib streams made and read by libdeflate.
///
/// The encoder writes IHDR, one IDAT and IEND, every row with filter 0 (none): mosaics are
/// large runs of equal pixels, which deflate takes as well without a filter, and the bytes
/// depend only on the pixels (no time stamp, no text chunk), so a report is reproducible.
/// The decoder reads what browsers write too (several IDAT chunks, filters 0-4,
/// ancillary chunks skipped), so tests can inspect screenshots.
public enum PNG {
    /// libdeflate's level for the image data. On the standard visit's mosaics level 9 spent
    /// most of the report's time; see docs/benchmarks.md for the sizes and times by level.
    public static let defaultLevel: Int32 = 4

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The PNG file of `image`.
    public static func encode(_ image: RasterImage, level: Int32 = PNG.defaultLevel) -> [UInt8] {
        let colourType: UInt8 = [0, 4, 2, 6][image.channels - 1]
        var header = bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        header += [8, colourType, 0, 0, 0]
        let rowBytes = image.width * image.channels
        var raw = [UInt8](repeating: 0, count: image.height * (rowBytes + 1))
        for y in 0..<image.height {
            let source = y * rowBytes, target = y * (rowBytes + 1) + 1
            raw.replaceSubrange(target..<(target + rowBytes), with: image.pixels[source..<(source + rowBytes)])
        }
        var file = signature
        file += chunk("IHDR", header)
        file += chunk("IDAT", zlibCompress(raw, level: level))
        file += chunk("IEND", [])
        return file
    }

    /// The image in a PNG file: 8-bit grey, grey + alpha, RGB or RGBA, not interlaced.
    public static func decode(_ bytes: [UInt8]) throws -> RasterImage {
        guard bytes.count > 8, Array(bytes[0..<8]) == signature else { throw PNGError(reason: "no PNG signature") }
        var offset = 8
        var width = 0, height = 0, channels = 0
        var compressed: [UInt8] = []
        while offset + 12 <= bytes.count {
            let length = Int(readBigEndian(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw PNGError(reason: "chunk \(type) runs past the end") }
            let data = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            let crc = readBigEndian(bytes, offset + 8 + length)
            guard crc == crc32(Array(bytes[(offset + 4)..<(offset + 8)]) + data) else { throw PNGError(reason: "chunk \(type): CRC mismatch") }
            switch type {
            case "IHDR":
                guard length == 13 else { throw PNGError(reason: "IHDR of \(length) bytes") }
                width = Int(readBigEndian(data, 0))
                height = Int(readBigEndian(data, 4))
                guard data[8] == 8, data[12] == 0 else { throw PNGError(reason: "only 8-bit non-interlaced images are read") }
                switch data[9] {
                case 0: channels = 1
                case 4: channels = 2
                case 2: channels = 3
                case 6: channels = 4
                default: throw PNGError(reason: "colour type \(data[9]) is not read")
                }
            case "IDAT": compressed += data
            case "IEND": offset = bytes.count
            default: break
            }
            offset += 12 + length
        }
        guard width > 0, height > 0, channels > 0 else { throw PNGError(reason: "no IHDR") }
        let rowBytes = width * channels
        let raw = try zlibDecompress(compressed, size: height * (rowBytes + 1))
        return RasterImage(width: width, height: height, channels: channels,
                           pixels: try unfilter(raw, width: width, height: height, channels: channels))
    }

    /// Undoes the per-row filters (PNG section 9: None, Sub, Up, Average, Paeth).
    static func unfilter(_ raw: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        let rowBytes = width * channels
        var out = [UInt8](repeating: 0, count: height * rowBytes)
        for y in 0..<height {
            let filter = raw[y * (rowBytes + 1)]
            let source = y * (rowBytes + 1) + 1, target = y * rowBytes
            for i in 0..<rowBytes {
                let x = raw[source + i]
                let a = i >= channels ? Int(out[target + i - channels]) : 0
                let b = y > 0 ? Int(out[target - rowBytes + i]) : 0
                let c = (y > 0 && i >= channels) ? Int(out[target - rowBytes + i - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)
                default: throw PNGError(reason: "row \(y): unknown filter \(filter)")
                }
                out[target + i] = UInt8(truncatingIfNeeded: Int(x) + predictor)
            }
        }
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func readBigEndian(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16) | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }

    /// CRC-32 (ISO 3309, as PNG and gzip use it), by `libdeflate_crc32`.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(libdeflate_crc32(0, $0.baseAddress, $0.count)) }
    }

    /// A zlib stream (RFC 1950) of `bytes`, by `libdeflate_zlib_compress`.
    static func zlibCompress(_ bytes: [UInt8], level: Int32) -> [UInt8] {
        guard let compressor = libdeflate_alloc_compressor(level) else { fatalError("libdeflate: out of memory") }
        defer { libdeflate_free_compressor(compressor) }
        let bound = libdeflate_zlib_compress_bound(compressor, bytes.count)
        var out = [UInt8](repeating: 0, count: bound)
        let written = bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { output in
                libdeflate_zlib_compress(compressor, input.baseAddress, input.count, output.baseAddress, output.count)
            }
        }
        precondition(written > 0, "libdeflate's bound holds any input")
        return Array(out[0..<written])
    }

    /// The `size` bytes of a zlib stream, by `libdeflate_zlib_decompress`.
    static func zlibDecompress(_ bytes: [UInt8], size: Int) throws -> [UInt8] {
        guard let decompressor = libdeflate_alloc_decompressor() else { throw PNGError(reason: "out of memory") }
        defer { libdeflate_free_decompressor(decompressor) }
        var out = [UInt8](repeating: 0, count: size)
        var actual = 0
        let result = bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { output in
                libdeflate_zlib_decompress(decompressor, input.baseAddress, input.count, output.baseAddress, output.count, &actual)
            }
        }
        guard result == LIBDEFLATE_SUCCESS, actual == size else {
            throw PNGError(reason: "image data does not inflate to \(size) bytes")
        }
        return out
    }
}

extension [UInt8] {
    /// Base64 (RFC 4648) of the bytes, for `data:` URIs.
    public var base64: String {
        let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let length = (count + 2) / 3 * 4
        let out = [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
            alphabet.withUnsafeBufferPointer { alphabet in
            withUnsafeBufferPointer { bytes in
                var i = 0, o = 0
                while i + 2 < bytes.count {
                    let n = (Int(bytes[i]) << 16) | (Int(bytes[i + 1]) << 8) | Int(bytes[i + 2])
                    out[o] = alphabet[n >> 18]; out[o + 1] = alphabet[(n >> 12) & 63]
                    out[o + 2] = alphabet[(n >> 6) & 63]; out[o + 3] = alphabet[n & 63]
                    i += 3; o += 4
                }
                // The last one or two bytes, padded with "=".
                if i < bytes.count {
                    let second = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
                    let n = (Int(bytes[i]) << 16) | (second << 8)
                    out[o] = alphabet[n >> 18]; out[o + 1] = alphabet[(n >> 12) & 63]
                    out[o + 2] = i + 1 < bytes.count ? alphabet[(n >> 6) & 63] : 61
                    out[o + 3] = 61
                }
            }}
            initialized = length
        }
        return String(decoding: out, as: UTF8.self)
    }
}
