import Foundation

/// Text made safe for XML and HTML content and attribute values.
public func escapeXML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// A coordinate with at most two decimals and no trailing zeros: the same text for the
/// same number on every machine (the figures are byte-for-byte reproducible).
func coordinate(_ value: Double) -> String {
    guard value.isFinite, abs(value) < 1e12 else { return "0" }
    // In hundredths, as integers: exact, and much faster than a format string.
    let hundredths = Int((value * 100).rounded())
    let sign = hundredths < 0 ? "-" : ""
    let magnitude = abs(hundredths)
    let whole = magnitude / 100, fraction = magnitude % 100
    if fraction == 0 { return sign + String(whole) }
    if fraction % 10 == 0 { return sign + String(whole) + "." + String(fraction / 10) }
    return sign + String(whole) + (fraction < 10 ? ".0" : ".") + String(fraction)
}

/// A data value as the shortest text that reads back as the same Double.
func dataValue(_ value: Double) -> String {
    guard value.isFinite else { return "n/a" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

/// A short tick label (up to four significant digits).
func tickLabel(_ value: Double) -> String {
    if value == 0 { return "0" }
    let magnitude = abs(value)
    if magnitude >= 1e-3 && magnitude < 1e5 {
        var text = String(format: "%.4g", value)
        if text.contains("e") { text = String(format: "%.4f", value) }
        return text
    }
    return String(format: "%.2e", value)
}

/// The categorical colours of lines and points (Okabe & Ito 2008, colour-blind safe, then
/// darker tones), in a fixed order.
public let categoricalColours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                                 "#882255", "#117733", "#332288"]

/// An SVG figure under construction: its size, its text alternative (`<title>` and
/// `<desc>`, read by screen readers and shown as a tooltip) and its elements in order.
public struct SVGFigure: Sendable {
    public var width: Double
    public var height: Double
    public var title: String
    public var summary: String
    var elements: [String] = []

    public init(width: Double, height: Double, title: String, summary: String) {
        self.width = width
        self.height = height
        self.title = title
        self.summary = summary
    }

    public mutating func add(_ element: String) { elements.append(element) }

    public mutating func text(_ content: String, x: Double, y: Double, anchor: String = "start", size: Double = 11,
                              weight: String? = nil, rotate: Bool = false, fill: String = "#222") {
        let transform = rotate ? " transform=\"rotate(-90 \(coordinate(x)) \(coordinate(y)))\"" : ""
        let bold = weight.map { " font-weight=\"\($0)\"" } ?? ""
        add("<text x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" text-anchor=\"\(anchor)\" font-size=\"\(coordinate(size))\"\(bold) fill=\"\(fill)\"\(transform)>\(escapeXML(content))</text>")
    }

    public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#444",
                              width: Double = 1, dashed: Bool = false) {
        let dash = dashed ? " stroke-dasharray=\"4 3\"" : ""
        add("<line x1=\"\(coordinate(x1))\" y1=\"\(coordinate(y1))\" x2=\"\(coordinate(x2))\" y2=\"\(coordinate(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(coordinate(width))\"\(dash)/>")
    }

    public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil,
                              strokeWidth: Double = 1, opacity: Double? = nil, extra: String = "") {
        let s = stroke.map { " stroke=\"\($0)\" stroke-width=\"\(coordinate(strokeWidth))\"" } ?? ""
        let o = opacity.map { " fill-opacity=\"\(coordinate($0))\"" } ?? ""
        add("<rect x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" width=\"\(coordinate(w))\" height=\"\(coordinate(h))\" fill=\"\(fill)\"\(s)\(o)\(extra)/>")
    }

    /// An embedded raster (a PNG as a `data:` URI), scaled to the box.
    public mutating func image(png: [UInt8], x: Double, y: Double, width w: Double, height h: Double) {
        add("<image x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" width=\"\(coordinate(w))\" height=\"\(coordinate(h))\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(png.base64)\"/>")
    }

    /// The `<svg>` element, with `role="img"` and its title and description first.
    public func rendered() -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" role=\"img\" font-family=\"sans-serif\">"
        out += "<title>\(escapeXML(title))</title><desc>\(escapeXML(summary))</desc>"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
        for element in elements { out += element + "\n" }
        return out + "</svg>"
    }
}

/// One axis of a plot: its label (with the unit), its range and its ticks.
public struct PlotAxis: Sendable {
    public var label: String
    public var minimum: Double
    public var maximum: Double
    public var ticks: [Double]

    public init(label: String, minimum: Double, maximum: Double, ticks: [Double]) {
        self.label = label
        self.minimum = minimum
        self.maximum = maximum
        self.ticks = ticks
    }

    /// An axis covering `values` (non-finite ones ignored) with about `count` round ticks
    /// (steps of 1, 2 or 5 times a power of ten; Heckbert 1990, "Nice numbers for graph
    /// labels"); a single value gets a small range around it.
    public static func covering(_ values: [Double], label: String, count: Int = 5, includeZero: Bool = false) -> PlotAxis {
        var finite = values.filter(\.isFinite)
        if includeZero { finite.append(0) }
        var low = finite.min() ?? 0, high = finite.max() ?? 1
        if low == high {
            let pad = low == 0 ? 1 : abs(low) * 0.05
            low -= pad
            high += pad
        }
        let rawStep = (high - low) / Double(max(1, count))
        let power = pow(10, floor(log10(rawStep)))
        let fraction = rawStep / power
        let step = (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * power
        let start = floor(low / step) * step, end = ceil(high / step) * step
        var ticks: [Double] = []
        var k = 0
        while true {
            let tick = start + Double(k) * step
            if tick > end + step * 1e-9 { break }
            ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            k += 1
        }
        return PlotAxis(label: label, minimum: start, maximum: end, ticks: ticks)
    }
}

/// The plotting area of a panel and the mapping from data to SVG coordinates:
/// `x_svg = left + (x - xmin) / (xmax - xmin) * width`,
/// `y_svg = top + height - (y - ymin) / (ymax - ymin) * height`.
public struct PlotFrame: Sendable {
    public var left: Double, top: Double, width: Double, height: Double
    public var x: PlotAxis, y: PlotAxis

    public init(left: Double, top: Double, width: Double, height: Double, x: PlotAxis, y: PlotAxis) {
        self.left = left
        self.top = top
        self.width = width
        self.height = height
        self.x = x
        self.y = y
    }

    public func px(_ value: Double) -> Double { left + (value - x.minimum) / (x.maximum - x.minimum) * width }
    public func py(_ value: Double) -> Double { top + height - (value - y.minimum) / (y.maximum - y.minimum) * height }

    /// Draws the frame, the grid, the ticks and the axis labels.
    public func drawAxes(into svg: inout SVGFigure, xLabels: [Double: String] = [:]) {
        svg.rect(left, top, width, height, fill: "#fafafa", stroke: "#999")
        for tick in y.ticks {
            let ty = py(tick)
            svg.line(left, ty, left + width, ty, stroke: "#e4e4e4")
            svg.text(tickLabel(tick), x: left - 4, y: ty + 3.5, anchor: "end", size: 9)
        }
        for tick in x.ticks {
            let tx = px(tick)
            svg.line(tx, top + height, tx, top + height + 3, stroke: "#999")
            svg.text(xLabels[tick] ?? tickLabel(tick), x: tx, y: top + height + 13, anchor: "middle", size: 9)
        }
        svg.text(x.label, x: left + width / 2, y: top + height + 26, anchor: "middle", size: 10)
        svg.text(y.label, x: left - 50, y: top + height / 2, anchor: "middle", size: 10, rotate: true)
    }
}

/// A line of data points; `nil` y values are gaps (`n/a` in the tables).
public struct PlotSeries: Sendable {
    public var name: String
    public var colour: String
    public var points: [(x: Double, y: Double?)]
    public var dashed: Bool

    public init(name: String, colour: String, points: [(x: Double, y: Double?)], dashed: Bool = false) {
        self.name = name
        self.colour = colour
        self.points = points
        self.dashed = dashed
    }
}

extension PlotFrame {
    /// Draws each series as a polyline (broken at gaps) with a marker per point. Every
    /// marker is `<circle class="point" data-series=… data-x=… data-y=…>` carrying the
    /// plotted values exactly (shortest round-trip text), so the values can be read back
    /// from the figure; its centre follows this frame's mapping.
    public func drawSeries(_ series: [PlotSeries], into svg: inout SVGFigure, markers: Bool = true, panel: String = "") {
        for s in series {
            var runs: [[(Double, Double)]] = [[]]
            for point in s.points {
                if let y = point.y, y.isFinite { runs[runs.count - 1].append((point.x, y)) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where run.count > 1 {
                let text = run.map { "\(coordinate(px($0.0))),\(coordinate(py($0.1)))" }.joined(separator: " ")
                let dash = s.dashed ? " stroke-dasharray=\"4 3\"" : ""
                svg.add("<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"1.5\"\(dash) points=\"\(text)\"/>")
            }
            guard markers else { continue }
            for point in s.points {
                guard let y = point.y, y.isFinite else { continue }
                svg.add("<circle class=\"point\" data-panel=\"\(escapeXML(panel))\" data-series=\"\(escapeXML(s.name))\" data-x=\"\(dataValue(point.x))\" data-y=\"\(dataValue(y))\" cx=\"\(coordinate(px(point.x)))\" cy=\"\(coordinate(py(y)))\" r=\"2.5\" fill=\"\(s.colour)\"><title>\(escapeXML(s.name)): \(dataValue(point.x)), \(dataValue(y))</title></circle>")
            }
        }
    }
}

/// A legend row of coloured names, wrapped to the width.
func drawLegend(_ entries: [(name: String, colour: String)], into svg: inout SVGFigure, x: Double, y: Double, width: Double) {
    var cx = x, cy = y
    for entry in entries {
        let w = Double(entry.name.count) * 6.5 + 22
        if cx + w > x + width { cx = x; cy += 14 }
        svg.rect(cx, cy - 8, 10, 10, fill: entry.colour)
        svg.text(entry.name, x: cx + 14, y: cy + 1, size: 10)
        cx += w
    }
}
