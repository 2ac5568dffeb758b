import Foundation

/// A self-contained HTML page: inline CSS, figures as inline SVG or `data:` URI PNGs, no
/// script and nothing fetched from the network, so it reads the same offline and from a
/// copied folder.
public struct HTMLPage: Sendable {
    public var title: String
    var body: [String] = []

    public init(title: String) { self.title = title }

    public mutating func add(_ html: String) { body.append(html) }
    public mutating func heading(_ text: String, level: Int = 2, id: String? = nil) {
        let anchor = id.map { " id=\"\(escapeXML($0))\"" } ?? ""
        add("<h\(level)\(anchor)>\(escapeXML(text))</h\(level)>")
    }
    public mutating func paragraph(_ text: String, cssClass: String? = nil) {
        add("<p\(cssClass.map { " class=\"\($0)\"" } ?? "")>\(escapeXML(text))</p>")
    }

    /// A figure with its caption; `content` is an `<svg>` or `<img>` element.
    public mutating func figure(_ content: String, caption: String) {
        add("<figure>\(content)<figcaption>\(escapeXML(caption))</figcaption></figure>")
    }

    /// A PNG as an `<img>` with its text alternative.
    public static func image(png: [UInt8], alt: String, width: Int? = nil) -> String {
        let size = width.map { " width=\"\($0)\"" } ?? ""
        return "<img alt=\"\(escapeXML(alt))\"\(size) src=\"data:image/png;base64,\(png.base64)\">"
    }

    /// A table; `classes` gives a CSS class per row (or nil).
    public static func table(header: [String], rows: [[String]], classes: [String?]? = nil, caption: String? = nil) -> String {
        var out = "<table>"
        if let caption { out += "<caption>\(escapeXML(caption))</caption>" }
        out += "<thead><tr>" + header.map { "<th>\(escapeXML($0))</th>" }.joined() + "</tr></thead><tbody>"
        for (k, row) in rows.enumerated() {
            let cls = classes?[k].map { " class=\"\($0)\"" } ?? ""
            out += "<tr\(cls)>" + row.map { "<td>\(escapeXML($0))</td>" }.joined() + "</tr>"
        }
        return out + "</tbody></table>"
    }

    /// A folded section (`<details>`), closed unless `open`.
    public static func folded(_ summary: String, _ content: String, open: Bool = false) -> String {
        "<details\(open ? " open" : "")><summary>\(escapeXML(summary))</summary>\(content)</details>"
    }

    /// Preformatted text.
    public static func preformatted(_ text: String) -> String { "<pre>\(escapeXML(text))</pre>" }

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1400px;padding:0 18px 40px;color:#222;background:#fff}
        h1{font-size:1.5em;border-bottom:2px solid #0072B2;padding-bottom:4px}
        h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
        h3{font-size:1.05em;margin-top:1.2em}
        figure{margin:10px 0 18px}figcaption{font-size:.85em;color:#555;max-width:900px}
        img{max-width:100%;height:auto;image-rendering:pixelated;border:1px solid #ccc}
        svg{max-width:100%;height:auto}
        table{border-collapse:collapse;font-size:.85em;margin:6px 0 14px}
        th,td{border:1px solid #ccc;padding:2px 7px;text-align:left}th{background:#f0f4f8}
        tr.failed td{background:#fdd;font-weight:bold}tr.missing td{background:#fff3cd;font-style:italic}
        tr.outlier td{background:#ffe5cc}
        .warning{background:#fff3cd;border-left:4px solid #E69F00;padding:6px 10px}
        .error{background:#fdd;border-left:4px solid #c00;padding:6px 10px}
        .ok{color:#006d2c}.muted{color:#666;font-size:.85em}
        details{margin:8px 0}summary{cursor:pointer;font-weight:bold}
        pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:.8em}
        nav a{margin-right:12px}
        """

    /// The whole document.
    public func rendered(generator: String) -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        // The page may load nothing but its own inline style and data: images: a browser
        // refuses (and reports) anything else, so a report cannot reach the network.
        out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        out += "<meta name=\"generator\" content=\"\(escapeXML(generator))\">"
        out += "<title>\(escapeXML(title))</title><style>\(HTMLPage.style)</style></head><body>\n"
        out += "<h1>\(escapeXML(title))</h1>\n"
        for part in body { out += part + "\n" }
        out += "<footer class=\"muted\">\(escapeXML(generator))</footer>\n</body></html>\n"
        return out
    }
}
