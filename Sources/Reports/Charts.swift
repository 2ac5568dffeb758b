import Foundation

/// One panel of a small-multiples figure.
public struct Panel: Sendable {
    public var title: String
    public var series: [PlotSeries]
    /// Vertical intervals drawn as error bars: x, low, high, colour (a confidence interval).
    public var intervals: [(x: Double, low: Double, high: Double, colour: String)]
    /// A reference line at y (zero change).
    public var referenceY: Double?
    /// A note in the panel's corner (a trend slope, say).
    public var note: String?
    /// The y axis label of this panel, when not the figure's.
    public var yLabel: String?

    public init(title: String, series: [PlotSeries], intervals: [(x: Double, low: Double, high: Double, colour: String)] = [],
                referenceY: Double? = nil, note: String? = nil, yLabel: String? = nil) {
        self.title = title
        self.series = series
        self.intervals = intervals
        self.referenceY = referenceY
        self.note = note
        self.yLabel = yLabel
    }
}

/// Figures built from plot primitives: small multiples, scatter, heat map, carpet.
public enum Charts {
    /// Panels in a grid sharing one x axis (`xLabel`, ticks at `xTicks`) and each its own
    /// y range (`yLabel` on every panel), with a legend of the series below.
    public static func smallMultiples(_ panels: [Panel], title: String, summary: String, xLabel: String, yLabel: String,
                                      xTicks: [Double]? = nil, columns: Int = 4, panelWidth: Double = 210,
                                      panelHeight: Double = 150, sharedY: Bool = false, legend: Bool = true) -> String {
        let rows = max(1, (panels.count + columns - 1) / columns)
        let cellWidth = panelWidth + 75, cellHeight = panelHeight + 62
        let legendEntries = uniqueSeries(panels)
        let legendRows = legend ? Int(ceil(Double(legendEntries.count) * 60 / (cellWidth * Double(columns)))) + 1 : 0
        var svg = SVGFigure(width: cellWidth * Double(min(columns, max(1, panels.count))) + 10,
                            height: cellHeight * Double(rows) + Double(legendRows) * 14 + 10, title: title, summary: summary)
        let allX = panels.flatMap { $0.series.flatMap { $0.points.map(\.x) } }
        var xAxis = PlotAxis.covering(allX, label: xLabel)
        if let xTicks, let low = xTicks.min(), let high = xTicks.max() {
            let pad = max((high - low) * 0.05, 0.5)
            xAxis = PlotAxis(label: xLabel, minimum: low - pad, maximum: high + pad, ticks: xTicks)
        }
        let sharedAxis = PlotAxis.covering(panels.flatMap(allY), label: yLabel)
        for (k, panel) in panels.enumerated() {
            let left = Double(k % columns) * cellWidth + 68, top = Double(k / columns) * cellHeight + 22
            var yAxis = sharedY ? sharedAxis : PlotAxis.covering(allY(panel), label: yLabel)
            if let own = panel.yLabel { yAxis.label = own }
            let frame = PlotFrame(left: left, top: top, width: panelWidth, height: panelHeight, x: xAxis, y: yAxis)
            svg.add("<g class=\"panel\" data-panel=\"\(escapeXML(panel.title))\">")
            frame.drawAxes(into: &svg)
            svg.text(panel.title, x: left + panelWidth / 2, y: top - 7, anchor: "middle", size: 11, weight: "bold")
            if let note = panel.note { svg.text(note, x: left + panelWidth - 3, y: top + 11, anchor: "end", size: 9, fill: "#b00") }
            if let reference = panel.referenceY, reference >= yAxis.minimum, reference <= yAxis.maximum {
                svg.line(left, frame.py(reference), left + panelWidth, frame.py(reference), stroke: "#777", dashed: true)
            }
            for interval in panel.intervals where interval.low.isFinite && interval.high.isFinite {
                let x = frame.px(interval.x)
                svg.line(x, frame.py(interval.low), x, frame.py(interval.high), stroke: interval.colour, width: 1.5)
                svg.line(x - 3, frame.py(interval.low), x + 3, frame.py(interval.low), stroke: interval.colour)
                svg.line(x - 3, frame.py(interval.high), x + 3, frame.py(interval.high), stroke: interval.colour)
            }
            frame.drawSeries(panel.series, into: &svg, panel: panel.title)
            svg.add("</g>")
        }
        if legend {
            drawLegend(legendEntries, into: &svg, x: 55, y: cellHeight * Double(rows) + 4, width: svg.width - 60)
        }
        return svg.rendered()
    }

    static func allY(_ panel: Panel) -> [Double] {
        panel.series.flatMap { $0.points.compactMap(\.y) } + panel.intervals.flatMap { [$0.low, $0.high] }
            + (panel.referenceY.map { [$0] } ?? [])
    }

    static func uniqueSeries(_ panels: [Panel]) -> [(name: String, colour: String)] {
        var seen = Set<String>(), out: [(name: String, colour: String)] = []
        for panel in panels { for s in panel.series where seen.insert(s.name).inserted { out.append((s.name, s.colour)) } }
        return out
    }

    /// A scatter plot of labelled points, with dashed zero lines.
    public static func scatter(_ points: [(label: String, x: Double, y: Double, colour: String)], title: String, summary: String,
                               xLabel: String, yLabel: String, width: Double = 300, height: Double = 220) -> String {
        var svg = SVGFigure(width: width + 70, height: height + 50, title: title, summary: summary)
        let xAxis = PlotAxis.covering(points.map(\.x), label: xLabel, includeZero: true)
        let yAxis = PlotAxis.covering(points.map(\.y), label: yLabel, includeZero: true)
        let frame = PlotFrame(left: 60, top: 10, width: width, height: height, x: xAxis, y: yAxis)
        frame.drawAxes(into: &svg)
        svg.line(frame.px(0), frame.top, frame.px(0), frame.top + height, stroke: "#999", dashed: true)
        svg.line(frame.left, frame.py(0), frame.left + width, frame.py(0), stroke: "#999", dashed: true)
        for p in points where p.x.isFinite && p.y.isFinite {
            svg.add("<circle class=\"point\" data-series=\"\(escapeXML(p.label))\" data-x=\"\(dataValue(p.x))\" data-y=\"\(dataValue(p.y))\" cx=\"\(coordinate(frame.px(p.x)))\" cy=\"\(coordinate(frame.py(p.y)))\" r=\"3.5\" fill=\"\(p.colour)\" fill-opacity=\"0.8\"><title>\(escapeXML(p.label)): \(dataValue(p.x)), \(dataValue(p.y))</title></circle>")
        }
        return svg.rendered()
    }

    /// A diverging colour for r in [-1, 1]: blue (negative) - white - red (positive).
    static func divergingRGB(_ r: Double) -> (UInt8, UInt8, UInt8) {
        let t = max(-1, min(1, r))
        let (cr, cg, cb): (Double, Double, Double) = t >= 0
            ? (255, 255 - 200 * t, 255 - 210 * t)
            : (255 + 210 * t, 255 + 160 * t, 255 + 30 * t)
        return (UInt8(cr.rounded()), UInt8(cg.rounded()), UInt8(cb.rounded()))
    }

    static func divergingColour(_ r: Double) -> String {
        let (red, green, blue) = divergingRGB(r)
        return String(format: "#%02X%02X%02X", red, green, blue)
    }

    /// The grey of an n/a cell.
    static let notAvailableGrey: (UInt8, UInt8, UInt8) = (170, 170, 170)

    /// A correlation matrix as a heat map (colour scale -1..1), names along both axes in the
    /// order given, the blocks (network ranges of that order) outlined, `nil` cells (n/a)
    /// grey. The cells are one PNG pixel each, scaled up without smoothing (a 400-region
    /// matrix as SVG rectangles would be 160 000 elements).
    public static func heatMap(_ matrix: [[Double?]], names: [String], blocks: [(name: String, range: Range<Int>)],
                               title: String, summary: String, legendLabel: String = "Pearson r (unitless)") -> String {
        let n = names.count
        let cell = max(1.0, min(22.0, 440.0 / Double(max(1, n))))
        let labelSpace = 110.0, size = cell * Double(n)
        var svg = SVGFigure(width: labelSpace + size + 110, height: labelSpace + size + 20, title: title, summary: summary)
        if n > 0 {
            var raster = RasterImage(width: n, height: n, fill: [0, 0, 0])
            for i in 0..<n {
                for j in 0..<n {
                    let (r, g, b) = matrix[i][j].map(divergingRGB) ?? notAvailableGrey
                    raster.pixels[(i * n + j) * 3] = r
                    raster.pixels[(i * n + j) * 3 + 1] = g
                    raster.pixels[(i * n + j) * 3 + 2] = b
                }
            }
            svg.image(png: PNG.encode(raster), x: labelSpace, y: labelSpace, width: size, height: size)
        }
        let fontSize = min(10, cell * 0.9)
        if cell >= 6 {
            for (i, name) in names.enumerated() {
                let c = labelSpace + (Double(i) + 0.5) * cell
                svg.text(name, x: labelSpace - 3, y: c + fontSize * 0.35, anchor: "end", size: fontSize)
                svg.add("<text x=\"\(coordinate(c + fontSize * 0.35))\" y=\"\(coordinate(labelSpace - 3))\" font-size=\"\(coordinate(fontSize))\" fill=\"#222\" transform=\"rotate(-90 \(coordinate(c + fontSize * 0.35)) \(coordinate(labelSpace - 3)))\">\(escapeXML(name))</text>")
            }
        }
        for block in blocks {
            let start = labelSpace + Double(block.range.lowerBound) * cell, length = Double(block.range.count) * cell
            svg.rect(start, start, length, length, fill: "none", stroke: "#000", strokeWidth: 1.5,
                     extra: " class=\"block\" data-network=\"\(escapeXML(block.name))\"")
        }
        // Colour bar.
        let barX = labelSpace + size + 20
        for k in 0..<40 {
            let r = 1 - Double(k) / 39 * 2
            svg.rect(barX, labelSpace + Double(k) * size / 40, 12, size / 40 + 0.5, fill: divergingColour(r))
        }
        svg.text("1", x: barX + 16, y: labelSpace + 8, size: 9)
        svg.text("0", x: barX + 16, y: labelSpace + size / 2 + 3, size: 9)
        svg.text("-1", x: barX + 16, y: labelSpace + size, size: 9)
        svg.text(legendLabel, x: barX, y: labelSpace - 8, anchor: "start", size: 9)
        return svg.rendered()
    }

    /// The carpet plot (Power 2017): each row one brain voxel (rows grouped by region,
    /// each row z-scored over time for display), each column one volume, with framewise
    /// displacement above on the same time axis and the dropped (non-steady-state) and
    /// censored volumes marked in both. Marked volumes are `<rect class="censored"
    /// data-volume=…>` and `<rect class="dropped" data-volume=…>`.
    public static func carpet(rows: [[Float]], groups: [(name: String, count: Int)], framewiseDisplacement: [Double?],
                              threshold: Double?, dropped: [Bool], censored: [Bool], repetitionTime: Double,
                              title: String, summary: String) -> String {
        let volumes = max(framewiseDisplacement.count, rows.first?.count ?? 0)
        let width = 760.0, left = 70.0, fdHeight = 90.0, carpetHeight = 260.0
        var svg = SVGFigure(width: left + width + 120, height: fdHeight + carpetHeight + 80, title: title, summary: summary)
        let seconds = Double(max(volumes - 1, 1)) * repetitionTime
        let xAxis = PlotAxis(label: "time (s)", minimum: 0, maximum: seconds,
                             ticks: PlotAxis.covering([0, seconds], label: "").ticks.filter { $0 <= seconds })
        let fdValues = framewiseDisplacement.compactMap { $0 } + (threshold.map { [$0] } ?? [])
        let fdAxis = PlotAxis.covering(fdValues, label: "FD (mm)", count: 3, includeZero: true)
        let fdFrame = PlotFrame(left: left, top: 10, width: width, height: fdHeight, x: xAxis, y: fdAxis)
        fdFrame.drawAxes(into: &svg)
        let step = width / Double(max(volumes, 1))
        for t in 0..<volumes {
            let x = left + Double(t) * step
            if t < dropped.count, dropped[t] {
                svg.rect(x, 10, step, fdHeight + 40 + carpetHeight, fill: "#888", opacity: 0.35,
                         extra: " class=\"dropped\" data-volume=\"\(t)\"")
            } else if t < censored.count, censored[t] {
                svg.rect(x, 10, step, fdHeight + 40 + carpetHeight, fill: "#e00", opacity: 0.25,
                         extra: " class=\"censored\" data-volume=\"\(t)\"")
            }
        }
        let fdSeries = PlotSeries(name: "framewise displacement", colour: "#0072B2",
                                  points: framewiseDisplacement.enumerated().map { (Double($0.offset) * repetitionTime, $0.element) })
        fdFrame.drawSeries([fdSeries], into: &svg, markers: false)
        if let threshold {
            svg.line(left, fdFrame.py(threshold), left + width, fdFrame.py(threshold), stroke: "#D55E00", dashed: true)
            svg.text("threshold \(tickLabel(threshold)) mm", x: left + width + 4, y: fdFrame.py(threshold) + 3, size: 9, fill: "#D55E00")
        }
        // The carpet: a grey raster, one pixel per voxel and volume, scaled into place.
        let carpetTop = 10 + fdHeight + 40
        if !rows.isEmpty, volumes > 0 {
            var image = RasterImage(width: volumes, height: rows.count, fill: [0])
            for (r, row) in rows.enumerated() {
                let finite = row.filter(\.isFinite).map(Double.init)
                let mean = finite.isEmpty ? 0 : finite.reduce(0, +) / Double(finite.count)
                let sd = finite.count > 1 ? (finite.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(finite.count - 1)).squareRoot() : 0
                for t in 0..<min(volumes, row.count) {
                    let z = sd > 0 ? (Double(row[t]) - mean) / sd : 0
                    image.pixels[r * volumes + t] = UInt8(max(0, min(255, (z + 2) / 4 * 255)).rounded())
                }
            }
            svg.image(png: PNG.encode(image), x: left, y: carpetTop, width: width, height: carpetHeight)
            svg.rect(left, carpetTop, width, carpetHeight, fill: "none", stroke: "#999")
            var start = 0
            for (k, group) in groups.enumerated() {
                let y0 = carpetTop + Double(start) / Double(rows.count) * carpetHeight
                let h = Double(group.count) / Double(rows.count) * carpetHeight
                svg.rect(left - 8, y0, 6, h, fill: categoricalColours[k % categoricalColours.count])
                if h >= 9 { svg.text(group.name, x: left + width + 4, y: y0 + h / 2 + 3, size: 8) }
                start += group.count
            }
        }
        svg.text("voxels by region (z-scored)", x: left - 12, y: carpetTop + carpetHeight / 2, anchor: "middle", size: 10, rotate: true)
        for tick in xAxis.ticks {
            svg.text(tickLabel(tick), x: fdFrame.px(tick), y: carpetTop + carpetHeight + 13, anchor: "middle", size: 9)
        }
        svg.text("time (s); grey bands: dropped (non-steady-state), red bands: censored", x: left + width / 2,
                 y: carpetTop + carpetHeight + 28, anchor: "middle", size: 10)
        return svg.rendered()
    }
}
