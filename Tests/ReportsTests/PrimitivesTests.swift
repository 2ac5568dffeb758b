import CDeflate
import Foundation
import Geometry
import NIfTI
@testable import Reports
import Testing
import TestSupport

/// The `<circle class="point">` markers of an SVG: their attributes by name.
func plottedPoints(_ svg: String) -> [[String: String]] {
    var points: [[String: String]] = []
    var rest = svg[...]
    while let start = rest.range(of: "<circle class=\"point\"") {
        let end = rest[start.upperBound...].firstIndex(of: ">")!
        let tag = rest[start.upperBound..<end]
        var attributes: [String: String] = [:]
        var scan = tag[...]
        while let eq = scan.range(of: "=\"") {
            let name = scan[..<eq.lowerBound].split(separator: " ").last.map(String.init) ?? ""
            let close = scan[eq.upperBound...].firstIndex(of: "\"")!
            attributes[name] = String(scan[eq.upperBound..<close])
            scan = scan[scan.index(after: close)...]
        }
        points.append(attributes)
        rest = rest[end...]
    }
    return points
}

@Suite("Report primitives")
struct PrimitivesTests {
    @Test("PNG: what is encoded decodes to the same pixels, the same bytes every time, CRCs and zlib checked")
    func pngRoundTrip() throws {
        var random = SplitMix64(seed: 7)
        for channels in 1...4 {
            for (width, height) in [(1, 1), (17, 5), (64, 33)] {
                let pixels = (0..<(width * height * channels)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let image = RasterImage(width: width, height: height, channels: channels, pixels: pixels)
                let bytes = PNG.encode(image)
                #expect(bytes == PNG.encode(image))
                #expect(try PNG.decode(bytes) == image)
                // The zlib stream is checked by libdeflate (Adler-32), each chunk by its CRC-32.
                var corrupt = bytes
                corrupt[bytes.count / 2] ^= 0x10
                #expect(throws: PNGError.self) { try PNG.decode(corrupt) }
            }
        }
    }

    @Test("PNG decoding undoes all five row filters (as a browser writes them)")
    func pngFilters() throws {
        var random = SplitMix64(seed: 11)
        let width = 9, height = 6, channels = 3, rowBytes = width * channels
        let pixels = (0..<(width * height * channels)).map { _ in UInt8(truncatingIfNeeded: random.next() % 200) }
        // Filter each row with filter (y % 5), by the definitions of PNG section 9.
        var raw: [UInt8] = []
        for y in 0..<height {
            let filter = UInt8(y % 5)
            raw.append(filter)
            for i in 0..<rowBytes {
                let x = Int(pixels[y * rowBytes + i])
                let a = i >= channels ? Int(pixels[y * rowBytes + i - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * rowBytes + i]) : 0
                let c = (y > 0 && i >= channels) ? Int(pixels[(y - 1) * rowBytes + i - channels]) : 0
                let p = a + b - c
                let paeth = (abs(p - a) <= abs(p - b) && abs(p - a) <= abs(p - c)) ? a : (abs(p - b) <= abs(p - c) ? b : c)
                let predictor = [0, a, b, (a + b) / 2, paeth][Int(filter)]
                raw.append(UInt8(truncatingIfNeeded: x - predictor))
            }
        }
        let header = PNG.bigEndian(UInt32(width)) + PNG.bigEndian(UInt32(height)) + [8, 2, 0, 0, 0]
        let file = PNG.signature + PNG.chunk("IHDR", header) + PNG.chunk("IDAT", PNG.zlibCompress(raw, level: 6)) + PNG.chunk("IEND", [])
        #expect(try PNG.decode(file).pixels == pixels)
    }

    @Test("Base64 matches Foundation's")
    func base64() {
        for count in 0..<20 {
            let bytes = (0..<count).map { UInt8(($0 * 37 + 11) % 256) }
            #expect(bytes.base64 == Data(bytes).base64EncodedString())
        }
    }

    @Test("Plotted values read back from the SVG, at the documented coordinates")
    func svgReadBack() {
        let series = [PlotSeries(name: "sub-01", colour: "#000", points: [(0, 0.51), (1, 0.52), (3, nil), (6, 0.5355)]),
                      PlotSeries(name: "sub-02", colour: "#f00", points: [(0, 0.49), (6, 0.47)])]
        let svg = Charts.smallMultiples([Panel(title: "L_CST", series: series)], title: "t", summary: "d",
                                        xLabel: "visit month", yLabel: "fa_mean (unitless)", xTicks: [0, 1, 3, 6])
        let points = plottedPoints(svg)
        #expect(points.count == 5)
        #expect(points.map { $0["data-y"]! } == ["0.51", "0.52", "0.5355", "0.49", "0.47"])
        #expect(points.allSatisfy { $0["data-panel"] == "L_CST" })
        // The mapping: y_svg = top + height - (y - ymin) / (ymax - ymin) * height.
        let axis = PlotAxis.covering([0.51, 0.52, 0.5355, 0.49, 0.47], label: "")
        let frame = PlotFrame(left: 68, top: 22, width: 210, height: 150, x: PlotAxis(label: "", minimum: -0.5, maximum: 6.5, ticks: []), y: axis)
        for point in points {
            let y = Double(point["data-y"]!)!, x = Double(point["data-x"]!)!
            #expect(abs(Double(point["cy"]!)! - frame.py(y)) <= 0.005)
            #expect(abs(Double(point["cx"]!)! - frame.px(x)) <= 0.005)
        }
        #expect(svg.contains("<title>t</title><desc>d</desc>"))
        #expect(svg.contains(">visit month</text>") && svg.contains(">fa_mean (unitless)</text>"))
    }

    @Test("Coordinates: at most two decimals, no trailing zeros, the same text as a format string")
    func coordinates() {
        for value in [0.0, -0.004, -0.005, 0.05, 1.5, 12.345, -7.1, 100, 99.999, 1e-9, -123.456] {
            var expected = String(format: "%.2f", (value * 100).rounded() / 100)
            while expected.contains(".") && (expected.hasSuffix("0") || expected.hasSuffix(".")) { expected.removeLast() }
            if expected == "-0" { expected = "0" }
            #expect(coordinate(value) == expected, "\(value)")
        }
    }

    @Test("Nice axes cover the data with round ticks")
    func axes() {
        let axis = PlotAxis.covering([0.47, 0.5355], label: "")
        #expect(axis.minimum <= 0.47 && axis.maximum >= 0.5355)
        #expect(axis.ticks.first == axis.minimum && axis.ticks.last == axis.maximum)
        let flat = PlotAxis.covering([2, 2], label: "")
        #expect(flat.minimum < 2 && flat.maximum > 2)
        #expect(PlotAxis.covering([], label: "").ticks.count >= 2)
    }

    @Test("Text is escaped in SVG and HTML")
    func escaping() {
        #expect(escapeXML("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;")
        var page = HTMLPage(title: "<script>")
        page.paragraph("<img src=x>")
        let html = page.rendered(generator: "g")
        #expect(!html.contains("<script>") && !html.contains("<img src=x>"))
        #expect(html.contains("Content-Security-Policy"))
    }

    @Test("Heat map: one pixel per cell in the diverging scale, n/a grey, blocks outlined")
    func heatMap() throws {
        let svg = Charts.heatMap([[1, 0.5, nil], [0.5, 1, -0.2], [nil, -0.2, 1]], names: ["a", "b", "c"],
                                 blocks: [("DMN", 0..<2)], title: "m", summary: "s")
        #expect(svg.contains("class=\"block\" data-network=\"DMN\""))
        let encoded = try #require(svg.components(separatedBy: "data:image/png;base64,").dropFirst().first?.prefix { $0 != "\"" })
        let image = try PNG.decode([UInt8](try #require(Data(base64Encoded: String(encoded)))))
        #expect(image.width == 3 && image.height == 3)
        let cell = { (i: Int, j: Int) in Array(image[j, i]) }
        #expect(cell(0, 0) == [255, 55, 45])           // r = 1: red
        #expect(cell(0, 2) == [170, 170, 170])         // n/a: grey
        #expect(cell(1, 2) == [213, 223, 249])         // r = -0.2: light blue
        #expect(cell(0, 1) == cell(1, 0))
    }

    @Test("Carpet: censored and dropped volumes are marked, one band each")
    func carpet() {
        let rows: [[Float]] = (0..<4).map { r in (0..<10).map { Float(r * 10 + $0) } }
        let svg = Charts.carpet(rows: rows, groups: [("A", 2), ("B", 2)], framewiseDisplacement: [nil, 0.1, 0.9, 0.1, 1.2, 0.1, 0.1, 0.1, 0.1, 0.1],
                                threshold: 0.5, dropped: [true] + [Bool](repeating: false, count: 9),
                                censored: [false, false, true, false, true, false, false, false, false, false], repetitionTime: 2,
                                title: "c", summary: "s")
        #expect(svg.components(separatedBy: "class=\"censored\"").count - 1 == 2)
        #expect(svg.contains("class=\"censored\" data-volume=\"2\"") && svg.contains("class=\"censored\" data-volume=\"4\""))
        #expect(svg.contains("class=\"dropped\" data-volume=\"0\""))
        #expect(svg.contains("data:image/png;base64,"))
    }

    @Test("Mosaics: an LAS image shows the subject's left on the left, superior at the top; outlines drawn")
    func mosaicOrientation() throws {
        // LAS: voxel x runs to the subject's left. Mark the voxel at the left end (x index 3).
        let header = NIfTIHeader.make(shape: [4, 3, 2], affine: Affine(rows: [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
        var voxels = [Float](repeating: 0.5, count: 24)
        voxels[3 + 4 * (0 + 3 * 1)] = 1 // x = 3 (subject's left), y = 0 (posterior), z = 1 (superior)
        let volume = OrientedVolume.reoriented(voxels, header: header)
        #expect(volume.nx == 4 && volume.ny == 3 && volume.nz == 2)
        #expect(volume[x: 0, y: 0, z: 1] == 1) // RAS x = 0 is the subject's left
        var layers = MosaicLayers(base: .grey(volume, low: 0, high: 1))
        let mask = OrientedVolume(nx: 4, ny: 3, nz: 2, values: (0..<24).map { $0 % 4 == 0 ? 0 : 1 })
        layers.outlines = [(mask, [255, 0, 0])]
        let image = Mosaic.render(layers, slices: 1, targetTile: 8)
        #expect(image.channels == 3)
        #expect(image.pixels.enumerated().contains { $0.offset % 3 == 0 && $0.element == 255 && image.pixels[$0.offset + 1] == 0 })
        let again = Mosaic.render(layers, slices: 1, targetTile: 8)
        #expect(PNG.encode(image) == PNG.encode(again))
    }
}
